"""The Pipeline page, its callbacks called directly: the waterfall's bars are `pipeline_changes`' row
for the page's period and filters, the weekly bars `pipeline_snapshot`'s, and a funnel without
amounts or a filter that matches nothing says so in a sentence."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric


@pytest.fixture(scope="module")
def page(app):
    import funnelboard.dashboard.pages.pipeline as page

    return page


def title(fig) -> str:
    return fig.layout.title.text or ""


def test_the_waterfall_is_the_metric_s_row_for_the_review_week(app, db, page):
    with app.server.test_request_context():
        fig = page.update("")
    (row,) = run_metric(Gateway(db), "pipeline_changes", MetricRequest())
    (bars,) = fig.data
    steps = [c["step"] for c in bars.customdata]
    assert steps == ["start", "created", "increased", "decreased", "won", "lost", "exited", "end"]  # no close window: nothing pulled in or pushed out
    expected = [row["start"], row["created"], row["increased"], -row["decreased"], -row["won"], -row["lost"], -row["exited"], row["end"]]
    assert list(bars.y) == pytest.approx(expected)
    assert row["end"] > 0 and row["n_won"] + row["n_lost"] + row["n_created"] > 0
    (week,) = run_metric(Gateway(db), "review_week", MetricRequest())
    assert f"{week['week']:%d %b} – " in title(fig)


def test_a_period_and_a_filter_reach_the_waterfall(app, db, page):
    with app.server.test_request_context():
        fig = page.update("?from=2026-09-01&to=2026-09-30&channel=referral")
    (row,) = run_metric(Gateway(db), "pipeline_changes", MetricRequest(
        start=datetime(2026, 9, 1), end=datetime(2026, 10, 1), filters=(("channel", "referral"),)))
    assert list(fig.data[0].y)[0] == pytest.approx(row["start"]) and list(fig.data[0].y)[-1] == pytest.approx(row["end"])
    assert "01 Sep – 30 Sep 2026" in title(fig)
    with app.server.test_request_context():
        empty = page.update("?channel=nobody")
    assert not empty.data and "No leads match the filters (channel = nobody)" in str(empty.layout.annotations[0].text)


def test_the_weekly_bars_are_the_snapshot(app, db, page):
    with app.server.test_request_context():
        fig = page.update_snapshot("")
    rows = run_metric(Gateway(db), "pipeline_snapshot", MetricRequest())
    bars = {t.name: dict(zip([date.fromisoformat(str(x)[:10]) for x in t.x], t.y)) for t in fig.data if t.type == "bar"}
    for r in rows:
        label = r["stage"].capitalize()
        assert bars[label][r["week"]] == pytest.approx(r["value"])
    weighted = next(t for t in fig.data if t.type == "scatter")
    last = max(r["week"] for r in rows)
    assert list(weighted.y)[-1] == pytest.approx(sum(r["weighted_value"] for r in rows if r["week"] == last))
    assert len({r["week"] for r in rows}) == 13 and last - min(r["week"] for r in rows) == timedelta(weeks=12)


def test_without_amounts_the_page_says_how_to_name_them(app, page, monkeypatch):
    from funnelboard.dashboard import runtime

    with app.server.test_request_context():
        g = runtime.gateway()
        without = replace(g.config(), amount_column=None)
        monkeypatch.setattr(g, "config", lambda: without)
        fig = page.update("")
        snap = page.update_snapshot("")
    for f in (fig, snap):
        assert not f.data and "No amounts in this data" in str(f.layout.annotations[0].text)


def test_a_click_on_a_bar_lists_its_deals(app, db, page):
    from funnelboard.dashboard.drill import click_target

    with app.server.test_request_context():
        href = click_target(page.pipeline_bar, {"points": [{"customdata": {"step": "won"}}]}, "?from=2026-10-01&to=2026-10-31",
                            page.pipeline_href)
        assert href == "/pipeline?from=2026-10-01&to=2026-10-31&bar=won"
        listed = page.update_deals("?from=2026-10-01&to=2026-10-31&bar=won")
        hint = page.update_deals("?from=2026-10-01&to=2026-10-31")
        bad = page.update_deals("?bar=pushed")
    deals = run_metric(Gateway(db), "pipeline_deals", MetricRequest(start=datetime(2026, 10, 1), end=datetime(2026, 11, 1), change="won"))
    assert deals
    head, _, table = listed
    title, export = head.children
    assert export.href == "/export/pipeline-deals.csv?from=2026-10-01&to=2026-10-31&bar=won"
    assert title.children.startswith(f"{len(deals):,} deals won: USD ")
    body = table.children.children[1].children
    assert [row.children[0].children.children for row in body] == [d["lead_id"] for d in deals][:page.MAX_ROWS]
    assert body[0].children[0].children.href.startswith(f"/lead/{deals[0]['lead_id']}?from=2026-10-01")
    assert "Click a bar" in hint.children
    assert "Click a bar" in bad.children  # a bad bar is named under the filter bar; the list shows none


def test_a_close_window_adds_pulled_in_and_pushed_out(app, db, page):
    with app.server.test_request_context():
        fig = page.update("?from=2026-10-01&to=2026-10-31&closing=quarter")
    (row,) = run_metric(Gateway(db), "pipeline_changes", MetricRequest(start=datetime(2026, 10, 1), end=datetime(2026, 11, 1), closing="quarter"))
    (bars,) = fig.data
    assert [c["step"] for c in bars.customdata] == ["start", "created", "pulled_in", "increased", "decreased", "pushed_out", "won", "lost",
                                                    "exited", "end"]
    assert list(bars.y) == pytest.approx([row["start"], row["created"], row["pulled_in"], row["increased"], -row["decreased"], -row["pushed_out"],
                                          -row["won"], -row["lost"], -row["exited"], row["end"]])
    assert row["n_pushed_out"] > 0 and f"closing {row['closing_from']:%d %b} – {row['closing_to']:%d %b %Y}" in title(fig)


def test_the_split_rows_are_the_metric_per_segment_and_add_up(app, db, page):
    with app.server.test_request_context():
        split = page.update_split("?segment=region&closing=quarter")
        hint = page.update_split("")
    rows = run_metric(Gateway(db), "pipeline_changes", MetricRequest(segment="region", closing="quarter"))
    (total,) = run_metric(Gateway(db), "pipeline_changes", MetricRequest(closing="quarter"))
    _, _, table = split
    body = table.children.children[1].children
    assert [r.children[0].children for r in body] == [str(r["region"]) for r in rows]
    assert sum(r["end"] for r in rows) == pytest.approx(total["end"]) and sum(r["pushed_out"] for r in rows) == pytest.approx(total["pushed_out"])
    assert "Split the change by a segment" in hint.children


def test_the_forecast_bars_are_the_metric(app, db, page):
    with app.server.test_request_context():
        fig = page.update_forecast("")
    rows = run_metric(Gateway(db), "forecast", MetricRequest())
    for t in fig.data:
        category = t.customdata[0]["category"]
        for x, y in zip(t.x, t.y):
            (r,) = [r for r in rows if r["category"] == category and r["week"] == date.fromisoformat(str(x)[:10])]
            assert y == pytest.approx(r["value"])
    assert {t.customdata[0]["category"] for t in fig.data} >= {"pipeline", "best case", "closed"}


def test_the_deals_csv_is_the_cli_s(app, db):
    from click.testing import CliRunner

    from funnelboard.cli import main

    client = app.server.test_client()
    got = client.get("/export/pipeline-deals.csv?from=2026-10-01&to=2026-10-31&bar=pushed_out&closing=quarter")
    assert got.status_code == 200 and "pipeline-deals-pushed_out.csv" in got.headers["Content-Disposition"]
    cli = CliRunner().invoke(main, ["query", "pipeline_deals", "--from", "2026-10-01", "--to", "2026-10-31", "--change", "pushed_out",
                                    "--closing", "quarter", "--format", "csv", "--db", str(db)])
    assert cli.exit_code == 0 and got.data.decode() == cli.output and cli.output.count("\n") > 1
    bad = client.get("/export/pipeline-deals.csv?closing=soon")
    assert bad.status_code == 400 and "Closing 'soon' is not one of all, month, quarter, year" in bad.data.decode()


def test_money_on_the_funnel_and_segments_pages_is_the_metrics(app, db):
    import funnelboard.dashboard.pages.funnel as funnel
    import funnelboard.dashboard.pages.segments as segments
    from funnelboard.dashboard.theme import fmt_money
    from funnelboard.warehouse.metrics.base import Context

    with app.server.test_request_context():
        line = funnel.update_value("")
        table = segments.update_deal_value("?segment=region&from=2026-01-01&to=2026-11-30")
    snapshot = run_metric(Gateway(db), "pipeline_snapshot", MetricRequest())
    last = max(r["week"] for r in snapshot)
    text = "".join(c if isinstance(c, str) else "" for c in line.children)
    for r in snapshot:
        if r["week"] == last:
            assert f"{r['stage'].capitalize()} {fmt_money(r['value'], 'USD')} ({r['deals']:,} deals)" in text
    req = Context(Gateway(db)).resolve(MetricRequest(start=datetime(2026, 1, 1), end=datetime(2026, 12, 1), segment="region"))
    rows = [r for r in run_metric(Gateway(db), "deal_value", req) if r["won_deals"] + r["lost_deals"]]
    _, _, grid = table
    body = grid.children.children[1].children
    assert [b.children[0].children for b in body] == [r["region"] for r in rows]
    assert [b.children[4].children for b in body] == [f"{r['value_win_rate']:.0%}" for r in rows]
    assert [b.children[5].children for b in body] == [fmt_money(r["avg_won_deal"], "USD") for r in rows]
