"""The Funnel page's callbacks, called directly: the cohort and period views side by side, and the
weekly cohort heatmap, each carrying the numbers of `funnelboard query` and what a click drills into."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from funnelboard.core.config import load_config
from funnelboard.dashboard import figures as F
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.dashboard.test_figures import annotation_texts


def utc(day: date) -> datetime:
    """Local midnight of a day (the page's dates are local) as naive UTC, as the page's request does."""
    tz = ZoneInfo(load_config(None).timezone)
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)


def cells(figure) -> dict[tuple[str, str, str], tuple]:
    """(week, from_stage, to_stage) -> (rate, hover text, trace name) of every drawn cell of the heatmap."""
    out = {}
    for trace in figure.data:
        for i, row in enumerate(trace.z):
            for j, rate in enumerate(row):
                drill = trace.customdata[i][j]
                if rate is not None:
                    out[(drill["week"], drill["from_stage"], drill["to_stage"])] = (rate, trace.hovertext[i][j], trace.name)
    return out


def test_the_layout_has_the_three_panels_and_labels_both_views(app):
    import funnelboard.dashboard.pages.funnel as funnel

    page = str(funnel.layout())
    for graph in (funnel.FUNNEL, funnel.ACCOUNTING, funnel.HEATMAP):
        assert f"id='{graph}'" in page
    assert "Cohort view" in page and "Period view" in page and "whichever week they" in page


def test_the_heatmap_cells_carry_the_metric(app, db):
    import funnelboard.dashboard.pages.funnel as funnel

    # from June (mature by now under the 90-day window) to mid-September (not yet)
    with app.server.test_request_context():
        figure = funnel.update_heatmap("?from=2026-06-01&to=2026-09-15&channel=referral")
    request = MetricRequest(start=utc(date(2026, 6, 1)), end=utc(date(2026, 9, 16)), filters=(("channel", "referral"),))
    rows = run_metric(Gateway(db), "cohort_conversion", request)
    drawn = cells(figure)
    with_leads = [r for r in rows if r["cohort"]]
    assert with_leads and len(drawn) == len(with_leads)
    assert any(r["immature"] for r in with_leads) and any(not r["immature"] for r in with_leads)
    for r in with_leads:
        rate, hover, trace = drawn[(r["week"].isoformat(), r["from_stage"], r["to_stage"])]
        assert rate == r["rate"]
        assert f"{r['converted']:,} of {r['cohort']:,} converted" in hover
        assert trace == ("immature" if r["immature"] else "mature")
        assert (F.IMMATURE_NOTE in hover) == bool(r["immature"])
    pairs = list(figure.data[0].y)
    assert pairs == ["Lead → MQL", "MQL → SQL", "SQL → Opportunity", "Opportunity → Proposal", "Proposal → Won", "Lead → Won"]
    assert list(figure.data[0].x) == sorted({r["week"].isoformat() for r in rows})
    # the demo funnel has no window: every conversion counts, and the title says so
    assert "by the as-of date (no window)" in figure.layout.title.text and "90 %" in figure.layout.title.text


def test_without_a_start_the_heatmap_shows_the_13_weeks_ending_with_the_as_of_week(app, db):
    import funnelboard.dashboard.pages.funnel as funnel

    with app.server.test_request_context():
        figure = funnel.update_heatmap("?as_of=2026-10-07")
    rows = run_metric(Gateway(db), "cohort_conversion", MetricRequest(as_of=utc(date(2026, 10, 8)) - timedelta(microseconds=1)))
    assert list(figure.data[0].x) == sorted({r["week"].isoformat() for r in rows})
    assert len(figure.data[0].x) == 13 and figure.data[0].x[-1] == "2026-10-05"
    assert {k: v[0] for k, v in cells(figure).items()} == {
        (r["week"].isoformat(), r["from_stage"], r["to_stage"]): r["rate"] for r in rows if r["cohort"]
    }


def test_the_heatmap_follows_the_period_and_the_stage_pair_of_the_url(app, db):
    import funnelboard.dashboard.pages.funnel as funnel

    with app.server.test_request_context():
        figure = funnel.update_heatmap("?from=2026-03-04&to=2026-04-30&from_stage=mql&to_stage=sql")
    rows = run_metric(
        Gateway(db),
        "cohort_conversion",
        MetricRequest(start=utc(date(2026, 3, 4)), end=utc(date(2026, 5, 1)), from_stage="mql", to_stage="sql"),
    )
    assert list(figure.data[0].y) == ["MQL → SQL"]
    assert list(figure.data[0].x) == [r["week"].isoformat() for r in rows]
    assert list(figure.data[0].x)[0] == "2026-03-02"  # the whole week holding the start date
    assert {k: v[0] for k, v in cells(figure).items()} == {
        (r["week"].isoformat(), "mql", "sql"): r["rate"] for r in rows if r["cohort"]
    }
    # each cell is the conversion metric over its week
    first = rows[0]
    (week,) = run_metric(
        Gateway(db), "conversion",
        MetricRequest(start=utc(first["week"]), end=utc(first["week"] + timedelta(days=7)), from_stage="mql", to_stage="sql"),
    )
    assert (week["cohort"], week["converted"], week["rate"]) == (first["cohort"], first["converted"], first["rate"])


def test_the_funnel_shows_the_cohort_and_the_period_view_of_the_metric(app, db):
    import funnelboard.dashboard.pages.funnel as funnel

    with app.server.test_request_context():
        funnel_fig = funnel.update("?from=2026-05-01&to=2026-07-31")
        accounting_fig = funnel.update_accounting("?from=2026-05-01&to=2026-07-31")
    rows = run_metric(Gateway(db), "funnel", MetricRequest(start=utc(date(2026, 5, 1)), end=utc(date(2026, 8, 1))))
    cohort, period = funnel_fig.data[:2]  # then the invisible click areas behind each view
    assert list(cohort.x) == [r["reached"] for r in rows]
    assert list(period.x) == [r["period_reached"] for r in rows]
    assert [r["reached"] for r in rows] != [r["period_reached"] for r in rows]  # the two views differ here
    assert [c["stage"] for c in cohort.customdata] == [c["stage"] for c in period.customdata] == [r["stage"] for r in rows]
    assert {c["view"] for c in cohort.customdata} == {"cohort"} and {c["view"] for c in period.customdata} == {"period"}
    assert accounting_fig.data


def test_no_matching_leads_give_empty_states_not_errors(app):
    import funnelboard.dashboard.pages.funnel as funnel

    with app.server.test_request_context():
        heatmap = funnel.update_heatmap("?channel=no-such-channel")
        funnel_fig = funnel.update("?channel=no-such-channel")
    for figure in (heatmap, funnel_fig):
        assert not figure.data
        assert "No leads match the filters (channel = no-such-channel) in the data." in annotation_texts(figure)
