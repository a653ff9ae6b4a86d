"""The speed-to-lead page and the weekly review's speed-to-lead line: every number is what `funnelboard
query` prints for the same filters, the breach list's export is the CLI's, and a funnel without a
first-response column says what to set instead of drawing nothing."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.dashboard.test_any_funnel import rendered
from tests.dashboard.test_data_quality import export
from tests.dashboard.test_lists import cli_csv

SEARCH = "?from=2026-06-01&to=2026-10-31&region=EMEA"


def cli_json(db, *args) -> list[dict]:
    result = CliRunner().invoke(main, ["query", *args, "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.slow
def test_the_page_shows_what_the_cli_prints(app, db):
    from funnelboard.dashboard.pages import speed_to_lead as page

    with app.server.test_request_context():
        summary, times, bands, breaches, count, handoffs, _handoff_count, handoff_columns = page.update(SEARCH)
    period = ["--from", "2026-06-01", "--to", "2026-10-31", "--filter", "region=EMEA"]
    (total,) = cli_json(db, "speed_to_lead", *period)
    by_channel = cli_json(db, "speed_to_lead", *period, "--segment", "channel")
    text = rendered(summary)
    assert f"{total['leads']:,} leads came in" in text and f"{total['breaches']:,} SLA breaches" in text
    assert f"of {total['judged']:,} judged" in text
    # the chart: p50 and p90 business hours per channel, the SLA line at the default SLA
    points = [(p["channel"], p["quantile"], x) for p, x in zip(times.data[0].customdata, times.data[0].x) if p]
    want = [(r["channel"], q, r[f"{q}_business_hours"]) for r in by_channel for q in ("p50", "p90") if r[f"{q}_business_hours"] is not None]
    assert points == want and want
    assert any(shape.x0 == 4 for shape in times.layout.shapes)
    cli_bands = cli_json(db, "response_bands", *period)
    assert [p["band"] for p in bands.data[0].customdata] == [r["band"] for r in cli_bands]
    assert list(bands.data[0].y) == [r["rate"] for r in cli_bands]
    # the breach list: the CLI's rows, its count, its export
    listed = cli_json(db, "response_leads", *period, "--filter", "status=breach")
    assert [r["lead_id"] for r in breaches] == [r["lead_id"] for r in listed][:5000] and len(listed) == total["breaches"]
    assert count.startswith(f"{total['breaches']:,} row") or f"of {total['breaches']:,} rows" in count
    # the handoff table: the CLI's rows per channel, its export the CLI's file
    handoff = cli_json(db, "handoff", *period, "--segment", "channel")
    assert [c["field"] for c in handoff_columns][0] == "channel"
    assert [(r["channel"], r["handoffs"], r["sent_back"], r["never_worked"]) for r in handoffs] == \
        [(r["channel"], r["handoffs"], r["sent_back"], r["never_worked"]) for r in handoff] and handoff
    assert export(app, page.HANDOFF, "/speed-to-lead", SEARCH)[1] == cli_csv(db, "handoff", *period, "--segment", "channel")
    name, content = export(app, page.BREACHES, "/speed-to-lead", SEARCH)  # the Export CSV button, as the browser clicks it
    assert name.startswith("response-breaches") and content == cli_csv(db, "response_leads", *period, "--filter", "status=breach")



def test_the_weekly_line_counts_the_review_weeks_breaches_against_the_week_before(app, db):
    from funnelboard.dashboard.pages import weekly

    with app.server.test_request_context():
        line = weekly.update_response("")
    g = Gateway(db)
    try:
        (week,) = run_metric(g, "review_week", MetricRequest())
        monday = week["week"]
        start = datetime.combine(monday, time())
        (now,) = run_metric(g, "speed_to_lead", MetricRequest(start=start, end=start + timedelta(weeks=1), as_of=week["as_of"]))
        (before,) = run_metric(g, "speed_to_lead", MetricRequest(start=start - timedelta(weeks=1), end=start, as_of=week["as_of"] - timedelta(weeks=1)))
    finally:
        g.close()
    text = rendered(line)
    delta = now["breaches"] - before["breaches"]
    assert f"{now['leads']:,} leads came in" in text and f"{now['breaches']:,} response-SLA breaches" in text
    assert (f"+{delta}" if delta > 0 else f"\u2212{-delta}" if delta < 0 else "0") in text
    assert f"/speed-to-lead?from={monday.isoformat()}" in text


def test_the_weekly_criteria_panel_is_the_cli_s_checks_the_firing_ones_first(app, db):
    from funnelboard.dashboard.pages import weekly

    with app.server.test_request_context():
        panel = weekly.update_criteria("?channel=outbound")
    checks = cli_json(db, "criteria_health", "--filter", "channel=outbound")
    text = rendered(panel)
    fired = [c for c in checks if c["status"] == "fires"]
    title = f"{len(fired)} of {len(checks)} checks fire" if fired else f"none of {len(checks)} checks fires"
    assert title in text
    body = panel[1].children.children[1].children
    assert len(body) == len(checks)
    readings = [row.children[-1].children for row in body]
    assert sorted(readings) == sorted(c["reading"] for c in checks)
    statuses = [row.children[4].children for row in body]
    assert statuses == sorted(statuses, key=lambda s: {"fires": 0, "ok": 1, "too few to judge": 2, "does not apply": 3}[s])
