"""`funnelboard report`: the weekly review as one HTML file. Its numbers are `funnelboard query`'s for
the same week and filters (read back from the HTML), it carries everything it needs (plotly.js once,
the styles inline, no address outside the dashboard's links), and bad weeks, filters and views are
one sentence each."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core import saved_views
from funnelboard.core.errors import UserError
from funnelboard.dashboard.report import parse_week, render
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric


class Texts(HTMLParser):
    """The text of every element with a class, by class, in document order."""

    def __init__(self):
        super().__init__()
        self.stack: list[str | None] = []
        self.by_class: dict[str, list[str]] = {}
        self.open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag, attrs):
        classes = dict(attrs).get("class")
        self.open.append((tag, [classes] if classes else []))
        if classes:
            for c in classes.split():
                self.by_class.setdefault(c, []).append("")

    def handle_endtag(self, tag):
        if self.open:
            self.open.pop()

    def handle_data(self, data):
        for _tag, classes in self.open:
            for cls in classes:
                for c in cls.split():
                    self.by_class[c][-1] += data


def texts(page: str) -> dict[str, list[str]]:
    parser = Texts()
    parser.feed(page)
    return {k: [" ".join(v.split()) for v in vs] for k, vs in parser.by_class.items()}


def last_full_week(db) -> date:
    (week,) = run_metric(Gateway(db), "review_week", MetricRequest())
    return week["week"] - timedelta(weeks=1) if week["partial"] else week["week"]


@pytest.mark.slow
def test_the_pack_shows_the_cli_s_numbers_for_its_week_and_filters(app, db):
    monday = last_full_week(db)
    pack = render(app, monday, (("channel", "referral"),), base_url="http://review.example:8050")
    assert pack.monday == monday and pack.search == f"?to={monday + timedelta(days=6)}&channel=referral"
    found = texts(pack.html)
    sunday = (monday + timedelta(days=6)).isoformat()
    kpis = query(db, "weekly_kpis", "--to", sunday, "--filter", "channel=referral")
    values = {r["kpi"]: r["value"] for r in kpis if r["week"] == monday.isoformat()}
    cards = dict(zip(found["card-label"], found["card-value"]))
    assert cards["Reached SQL"].startswith(f"{values['reached_sql']:,}")
    assert cards["New leads"].startswith(f"{values['new_leads']:,}")
    assert cards["SQL rate MQL → SQL"].startswith(f"{values['key_rate']:.1%}")
    # the changes of the week: each stage's entered count is the CLI's
    changes = query(db, "changes", "--from", monday.isoformat(), "--to", sunday, "--filter", "channel=referral")
    for row in changes:
        pattern = rf"<t[hd][^>]*>{re.escape(row['stage'].capitalize() if row['stage'] != 'mql' and row['stage'] != 'sql' else row['stage'].upper())}</t[hd]><td[^>]*>(?:<a [^>]*>)?{row['entered']:,}<"
        assert re.search(pattern, pack.html), row
    # the other views' charts over the week, each its own section
    for section in ("Summary", "Cards", "Trend", "Funnel", "Key rate by segment", "Mix and rate", "Time in stage", "Disqualifiers"):
        assert f'aria-label="{section}"' in pack.html, section
    assert pack.html.count('class="plotly-graph-div"') == 6
    # links open the dashboard with the same filters
    assert 'href="http://review.example:8050/stalled?' in pack.html and "channel=referral" in pack.html


def table_rows(page: str, class_name: str) -> list[list[str]]:
    """The body cells of the pack's table with this class, as text."""
    table = re.search(rf'<table class="[^"]*\b{class_name}\b[^"]*">(.*?)</table>', page, re.S).group(1)
    body = table[table.index("<tbody>"):]
    return [[" ".join(re.sub("<[^>]+>", "", c).split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


@pytest.mark.slow
def test_the_mix_stage_and_reason_tables_are_the_cli_s(app, db):
    monday = last_full_week(db)
    sunday = (monday + timedelta(days=6)).isoformat()
    pack = render(app, monday)
    # mix and rate by channel: the week against last week at the same point, the cards' two rates
    mix = query(db, "week_mix", "--to", sunday, "--segment", "channel")
    shown = table_rows(pack.html, "pack-mix")
    assert [r[0] for r in shown] == [r["segment"] for r in mix]
    for cells, row in zip(shown, mix):
        assert cells[1] == f"{row['share_before']:.1%} → {row['share_after']:.1%}"
        assert cells[2] == f"{row['rate_before']:.1%} → {row['rate_after']:.1%} ({row['n_before']:,} → {row['n_after']:,})"
    kpis = {r["kpi"]: r for r in query(db, "weekly_kpis", "--to", sunday) if r["week"] == monday.isoformat()}
    assert mix[-1]["rate_after"] == pytest.approx(kpis["key_rate"]["value"], abs=1e-12)
    assert mix[-1]["rate_before"] == pytest.approx(kpis["key_rate"]["previous"], abs=1e-12)
    # time in stage: the 4 weeks ending with the review week against the 4 before
    stages = query(db, "time_in_stage_change", "--from", (monday - timedelta(weeks=3)).isoformat(), "--to", sunday)
    shown = table_rows(pack.html, "pack-stages")
    assert len(shown) == len(stages) == 5
    for cells, row in zip(shown, stages):
        assert cells[2] == f"{row['n_before']:,} → {row['n_after']:,}"
        assert cells[3] == f"{row['observed_after']:,} ({row['expected_after']:,.0f})"
        assert cells[1].startswith(f"{row['km_p50_before']:.1f} → ")
    # the exit reasons of the week against the 4 weeks before
    reasons = query(db, "disqualifier_change", "--from", monday.isoformat(), "--to", sunday)
    shown = table_rows(pack.html, "pack-reasons")
    assert [(c[0], c[1], c[3]) for c in shown] == [(r["reason"], r["outcome"], f"{r['exits_after']:,}") for r in reasons[:8]]


def query(db, *args: str) -> list[dict]:
    out = CliRunner().invoke(main, ["query", *args, "--db", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.mark.slow
def test_the_pack_needs_no_network(app, db):
    pack = render(app, last_full_week(db), base_url="http://127.0.0.1:8050")
    page = pack.html
    assert page.count("plotly.js v") == 1 or page.count("Plotly=") >= 1  # the library once, inline
    assert len(re.findall(r"<script[^>]*\bsrc=", page)) == 0 and "<link" not in page  # nothing fetched
    library = page.index("<script")
    own = page[:library] + page[page.index("</script>", library):]  # the HTML around plotly.js (whose source names sites)
    addresses = set(re.findall(r'(?:src|href)="(https?://[^"/]+)', own))
    assert addresses <= {"http://127.0.0.1:8050"}, addresses  # only the dashboard's links
    assert page.count('class="plotly-graph-div"') >= 1 and "@media print" in page


def test_weeks_are_iso_weeks_or_dates():
    assert parse_week("2026-W47") == date(2026, 11, 16) == parse_week("2026-11-18") == parse_week("2026-w47")
    for bad in ("2026-W54", "last week", "2026-13-01"):
        with pytest.raises(UserError, match="neither an ISO week like 2026-W47 nor a date"):
            parse_week(bad)


@pytest.mark.slow
def test_bad_weeks_filters_and_views_are_one_sentence(db, tmp_path):
    def run(*args):
        return CliRunner().invoke(main, ["report", "--db", str(db), "--out", str(tmp_path / "r.html"), *args])

    first = Gateway(db).query("select min(entered_at), max(entered_at) from fct_spells").rows[0]
    for args, says in (
        (("--week", "2099-W01"), "is after the data, which ends on"),
        (("--week", (first[0] - timedelta(weeks=3)).date().isoformat()), "is before the data, which starts on"),
        (("--filter", "colour=red"), "No report written, the address has bad values: 'colour' is not a filter"),
        (("--view", "nope"), "no saved view 'nope' in the shared list"),
        (("--week", "soon"), "neither an ISO week"),
        (("--by", "colour"), "--by 'colour' is not a segment column of this funnel (channel, "),
    ):
        out = run(*args)
        assert out.exit_code != 0 and says in out.output and "Traceback" not in out.output, (args, out.output)
        assert len(out.output.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()
    # a saved view's filters, the week from --week
    saved_views.save(saved_views.views_path(db), "", "referral", "/segments?channel=referral&from=2020-01-01")
    week = last_full_week(db)
    out = run("--view", "referral", "--week", week.isoformat())
    assert out.exit_code == 0, out.output
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "filters: channel = referral" in page and "from=2020-01-01" not in page
    assert "<caption>Each channel: " in page  # the split by channel, the default
    # a saved view's segment is the split unless --by says otherwise
    saved_views.save(saved_views.views_path(db), "", "by owner", "/segments?segment=owner&channel=referral")
    assert run("--view", "by owner", "--week", week.isoformat()).exit_code == 0
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "<caption>Each owner: " in page and "segment=owner&amp;segment=" not in page
    assert run("--view", "by owner", "--by", "region", "--week", week.isoformat()).exit_code == 0
    assert "<caption>Each region: " in (tmp_path / "r.html").read_text("utf-8")


def test_pdf_without_chromium_is_one_sentence_before_any_work(db, tmp_path):
    out = CliRunner().invoke(main, ["report", "--db", str(db), "--out", str(tmp_path / "r.html"), "--format", "pdf"],
                             env={"FUNNELBOARD_CHROMIUM": str(tmp_path / "no-chromium")})
    assert out.exit_code != 0 and "--format pdf prints through Chromium, which is not installed here" in out.output
    assert not (tmp_path / "r.html").exists() and "Traceback" not in out.output


@pytest.mark.slow
def test_a_week_without_data_inside_the_data_is_one_sentence(tmp_path):
    from tests.warehouse.metrics.logs import warehouse

    rows = ["A,lead,2024-01-02,,x", "A,mql,2024-01-03,,x", "B,lead,2024-01-16,,y", "B,mql,2024-01-17,,y"]
    warehouse(tmp_path, rows).close()
    out = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "wh.duckdb"), "--week", "2024-W02", "--out", str(tmp_path / "r.html")])
    assert out.exit_code == 2 and "week 2024-W02 has no data for these filters: no lead came in or moved" in out.output, out.output
    assert "(the data runs from 02 Jan 2024 to 17 Jan 2024)" in out.output and not (tmp_path / "r.html").exists()
    ok = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "wh.duckdb"), "--week", "2024-W03", "--out", str(tmp_path / "r.html")])
    assert ok.exit_code == 0, ok.output
    assert "Stalled by stage and owner" in (tmp_path / "r.html").read_text("utf-8")


@pytest.mark.slow
def test_the_pack_says_where_the_data_runs(app, db):
    """A reader of a file sent by mail sees how far the data goes (a review of old data says so)."""
    from zoneinfo import ZoneInfo

    from funnelboard.warehouse.metrics.base import local_time

    facts = Gateway(db).facts()
    tz = ZoneInfo(Gateway(db).config().timezone)
    first, last = (local_time(facts[k], tz) for k in ("first_event", "last_event"))
    meta = texts(render(app, last_full_week(db)).html)["pack-meta"][0]
    assert f"the data runs from {first:%a %d %b %Y} to {last:%a %d %b %Y}" in meta


@pytest.mark.slow
def test_with_a_window_the_key_rate_card_and_headline_say_so(tmp_path):
    from funnelboard.dashboard.app import create_app
    from tests.warehouse.metrics.logs import warehouse

    rows = ["A,lead,2024-01-15,,x", "A,mql,2024-01-15,,x", "A,sql,2024-01-16,,x",
            "B,lead,2024-01-16,,y", "B,mql,2024-01-16,,y", "B,sql,2024-01-30,,y"]
    warehouse(tmp_path, rows, "[funnel]\nconversion_window_days = 3\n").close()
    pack = render(create_app(tmp_path / "wh.duckdb"), date(2024, 1, 15))
    rate = next(line for line in pack.lines if line.startswith("SQL rate: "))
    assert rate.startswith("SQL rate: 50.0% (") and rate.endswith("; conversions within 3 days only (the conversion window))")
    assert texts(pack.html)["card-foot"] == ["conversions within 3 days only (the conversion window)"]
