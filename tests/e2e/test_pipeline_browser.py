"""The Pipeline page served and drawn in headless Chromium: the waterfall's bars, the weekly bars and
the forecast's are `funnelboard query pipeline_changes` / `pipeline_snapshot` / `forecast` for the same
address (a close window: pulled in and pushed out drawn), at desktop and phone width, with no console
error; a click on Lost lists the CLI's deals. Screenshots (FUNNELBOARD_SCREENSHOTS) at both widths."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from selenium.webdriver import ActionChains

from funnelboard.cli import main
from tests.e2e.chromium import SCREENSHOTS, browser_or_fail, chromium, served_demo, severe, wait
from tests.e2e.every_page import emulate_width, full_page_png, open_settled

ADDRESS = "/pipeline?from=2026-10-01&to=2026-10-31&closing=quarter"


def query(db: Path, name: str, *more: str) -> list[dict]:
    out = CliRunner().invoke(main, ["query", name, "--from", "2026-10-01", "--to", "2026-10-31", "--closing", "quarter", *more,
                                    "--db", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.mark.parametrize("width", [1440, 390])
def test_the_served_page_draws_the_cli_s_numbers(tmp_path, width):
    browser_or_fail()
    with served_demo(tmp_path) as (base, db), chromium(max(width, 800), 1000) as browser:
        emulate_width(browser, width)
        open_settled(browser, base + ADDRESS)
        graphs = browser.execute_script(
            "return Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => g.data.map(t => ({type: t.type, name: t.name, x: t.x, y: t.y})))")
        waterfall, snapshot, forecast = graphs
        (row,) = query(db, "pipeline_changes")
        assert waterfall[0]["type"] == "waterfall"
        assert waterfall[0]["y"] == pytest.approx([row["start"], row["created"], row["pulled_in"], row["increased"], -row["decreased"],
                                                   -row["pushed_out"], -row["won"], -row["lost"], -row["exited"], row["end"]])
        assert row["n_created"] > 0 and row["n_pushed_out"] > 0 and row["n_won"] + row["n_lost"] + row["n_exited"] > 0
        bars = {t["name"]: dict(zip(t["x"], t["y"])) for t in snapshot if t["type"] == "bar"}
        rows = query(db, "pipeline_snapshot")
        assert rows
        for r in rows:
            week = date.fromisoformat(str(r["week"])[:10])
            assert bars[r["stage"].capitalize()][next(x for x in bars[r["stage"].capitalize()] if x.startswith(week.isoformat()))] == pytest.approx(r["value"])
        categories = {t["name"]: dict(zip(t["x"], t["y"])) for t in forecast}
        for r in query(db, "forecast"):
            name = "Closed (won in the week)" if r["category"] == "closed" else r["category"].capitalize()
            week = date.fromisoformat(str(r["week"])[:10]).isoformat()
            drawn = next((v for x, v in categories.get(name, {}).items() if x.startswith(week)), 0.0)
            assert drawn == pytest.approx(r["value"])
        # a click on the Lost bar (one a finger can hit on a phone) lists its deals under the charts, as many as the CLI's
        lost = query(db, "pipeline_deals", "--change", "lost")
        assert lost
        bars = browser.find_elements("css selector", "#pl-change .point path")
        assert len(bars) == 10
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", bars[7])
        ActionChains(browser).move_to_element(bars[7]).click().perform()
        wait(browser, lambda d: "bar=lost" in d.current_url and d.find_elements("css selector", "#pl-deals tbody tr"))
        assert len(browser.find_elements("css selector", "#pl-deals tbody tr")) == min(len(lost), 500)
        assert browser.find_element("css selector", "#pl-deals h2").text.startswith(f"{len(lost):,} deals lost")
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, overflow
        if SCREENSHOTS:
            full_page_png(browser, Path(SCREENSHOTS) / ("pipeline.png" if width > 800 else "phone-pipeline.png"), width)
        assert not severe(browser), severe(browser)
