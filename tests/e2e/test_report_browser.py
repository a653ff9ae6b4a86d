"""`funnelboard report`'s file in headless Chromium with no server at all: it opens from disk, draws
its charts, logs no error, and reads on a phone. Screenshots (FUNNELBOARD_SCREENSHOTS) at both widths."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from funnelboard.cli import main
from tests.e2e.chromium import SCREENSHOTS, browser_or_fail, chromium, severe, wait
from tests.e2e.every_page import emulate_width, full_page_png


def test_the_pack_opens_from_disk_draws_its_charts_and_reads_on_a_phone(tmp_path):
    from funnelboard.core.config import load_config
    from funnelboard.etl.generate import generate
    from funnelboard.warehouse.pipeline import load_files
    from tests.conftest import NOW

    browser_or_fail()
    events = generate(out=tmp_path / "events.csv", n_leads=3000, seed=13, dirty=True).path
    load_files(tmp_path / "wh.duckdb", [events], load_config(None), now=NOW)
    out = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "wh.duckdb"), "--out", str(tmp_path / "review.html")])
    assert out.exit_code == 0, out.output
    page = (tmp_path / "review.html").as_uri()
    for width, name in ((1440, "report"), (390, "phone-report")):
        with chromium(max(width, 800), 1000) as browser:
            emulate_width(browser, width)  # a window cannot be narrower than 500 px: a phone is emulated
            browser.get(page)
            wait(browser, lambda d: d.execute_script("return document.querySelectorAll('.js-plotly-plot .main-svg').length") >= 1)
            assert browser.execute_script("return document.querySelectorAll('.card').length") >= 6
            # nothing wider than the screen but the tables, which scroll in their own box
            overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (width, overflow)
            if SCREENSHOTS:
                full_page_png(browser, Path(SCREENSHOTS) / f"{name}.png", width)
            assert not severe(browser), severe(browser)


def test_format_pdf_prints_the_pack_through_chromium(tmp_path):
    import re

    from funnelboard.core.config import load_config
    from funnelboard.etl.generate import generate
    from funnelboard.warehouse.pipeline import load_files
    from tests.conftest import NOW

    browser_or_fail()
    events = generate(out=tmp_path / "events.csv", n_leads=2000, seed=5).path
    load_files(tmp_path / "wh.duckdb", [events], load_config(None), now=NOW)
    out = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "wh.duckdb"), "--out", str(tmp_path / "review.html"), "--format", "pdf"])
    assert out.exit_code == 0, out.output
    pdf = (tmp_path / "review.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and (tmp_path / "review.html").is_file()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages >= 5, pages  # the sections after the trend each start a page
