"""The app and its page callbacks, called directly (no browser): numbers equal `funnelboard query`."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.conftest import NOW


def test_every_page_is_served(app):
    client = app.server.test_client()
    for path in ("/", "/funnel"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"funnelboard" in response.data


def test_weekly_cards_and_trend_match_the_metric(app, db):
    import funnelboard.dashboard.pages.weekly as weekly

    with app.server.test_request_context():
        cards, figure, week_line = weekly.update("?channel=referral")
        stalled = weekly.update_stalled("?channel=referral")
    rows = run_metric(Gateway(db), "weekly_kpis", MetricRequest(filters=(("channel", "referral"),)))
    last = rows[-1]["week"]
    sqls = next(r["value"] for r in rows if r["week"] == last and r["kpi"] == "reached_sql")
    values = {_text(card.children[0]): _text(card.children[1].children[0]) for card in cards}  # the number is a link to its leads
    assert values["Reached SQL"] == f"{sqls:,}"
    rate = next(r["value"] for r in rows if r["week"] == last and r["kpi"] == "key_rate")
    assert values["SQL rate MQL → SQL"] == f"{rate:.1%}"
    summary = run_metric(Gateway(db), "stalled_summary", MetricRequest(filters=(("channel", "referral"),)))[0]
    assert stalled[0].children.startswith(f"{summary['stalled']:,} leads stalled")
    assert figure.data, "the trend has traces"
    assert figure.layout.title.text == "SQL rate and its stages, week by week"
    line = _text(week_line)
    assert line.startswith(f"Week of {last:%a %d %b %Y} to {last + timedelta(days=6):%a %d %b}")
    # The fixture's last event (Fri 20 Nov) is 3 days before its load: live data, this week to date,
    # compared with the same point of the weeks before.
    as_of = Gateway(db).facts()["last_event"]
    assert as_of.date() < last + timedelta(days=6)
    days_in = (as_of - datetime.combine(last, datetime.min.time())) / timedelta(days=1)
    assert f"week to date: {days_in:.1f} of 7 days, compared with the same point of the weeks before" in line
    assert "SQL rate counts every MQL → SQL conversion, however long it takes (no window)" in line


def _text(component) -> str:
    """The text a component shows, children flattened."""
    if component is None:
        return ""
    if isinstance(component, str):
        return component
    if isinstance(component, (list, tuple)):
        return "".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def test_funnel_page_numbers_match_the_metric(app, db):
    import funnelboard.dashboard.pages.funnel as funnel

    with app.server.test_request_context():
        funnel_fig = funnel.update("?from=2026-01-01&to=2026-06-30")
        accounting_fig = funnel.update_accounting("?from=2026-01-01&to=2026-06-30")
    rows = run_metric(Gateway(db), "funnel", MetricRequest(start=NOW.replace(year=2026, month=1, day=1, hour=0, tzinfo=None), end=NOW.replace(year=2026, month=7, day=1, hour=0, tzinfo=None)))
    assert list(funnel_fig.data[0].x) == [r["reached"] for r in rows]
    assert [c["stage"] for c in funnel_fig.data[0].customdata] == [r["stage"] for r in rows]
    assert accounting_fig.data


def test_a_missing_warehouse_is_a_message_with_what_to_do(tmp_path):
    import funnelboard.dashboard.pages.weekly as weekly
    from funnelboard.dashboard.app import create_app

    app = create_app(tmp_path / "none.duckdb")
    with app.server.test_request_context():
        shown, *_rest = weekly.update("")
    text = str(shown)
    assert "No warehouse is published here yet" in text and "funnelboard demo" in text
    assert str(tmp_path) not in text, "the server's paths stay on the server"


def test_a_bad_filter_in_the_url_is_ignored_not_an_error(app):
    import funnelboard.dashboard.pages.funnel as funnel

    with app.server.test_request_context():
        funnel_fig = funnel.update("?segment=lead_id&lead_id=L1&from_stage=nope")
    assert funnel_fig.data


def test_segments_page_matches_segment_conversion(app, db):
    import funnelboard.dashboard.pages.segments as segments

    with app.server.test_request_context():
        conversion_fig = segments.update("?segment=channel")
        mix_fig = segments.update_mix("?segment=channel")
    rows = run_metric(Gateway(db), "segment_conversion", MetricRequest(segment="channel"))
    shown = {c["channel"]: y for trace in conversion_fig.data for c, y in zip(trace.customdata, trace.y if trace.orientation != "h" else trace.x)}
    assert {r["channel"] for r in rows} == set(shown)
    # the reference line is the conversion metric's rate (summed from the segments, not queried again)
    (line,) = [s for s in conversion_fig.layout.shapes if s.type == "line"]
    assert line.x0 == pytest.approx(run_metric(Gateway(db), "conversion", MetricRequest())[0]["rate"], abs=1e-12)
    assert mix_fig.data


def test_weekly_key_rate_card_carries_the_window_as_a_footnote(app):
    import funnelboard.dashboard.pages.weekly as weekly

    with app.server.test_request_context():
        windowed, _trend, _line = weekly.update("?window=3")
        unwindowed, _trend, _line = weekly.update("")
    feet = {_text(card.children[0]): _text(card) for card in windowed if "card-foot" in str(card)}
    assert list(feet) == ["SQL rate MQL → SQL"] and "within 3 days only" in feet["SQL rate MQL → SQL"]
    assert "card-foot" not in str(unwindowed)


def test_cohort_heatmap_footnote_names_the_window_or_the_maturity_horizon(app):
    import funnelboard.dashboard.pages.funnel as funnel

    with app.server.test_request_context():
        unwindowed, windowed = (" ".join(a.text for a in funnel.update_heatmap(search).layout.annotations) for search in ("", "?window=3"))
    assert "maturity horizon" in unwindowed and "inside the conversion window" not in unwindowed
    assert "younger than the 3-day conversion window" in windowed


def test_segments_conversion_charts_name_the_window_when_one_is_set(app):
    import funnelboard.dashboard.pages.segments as segments

    with app.server.test_request_context():
        windowed = [segments.update("?segment=channel&window=3"), segments.update("?segment=channel&segment2=region&window=3"),
                    segments.update_mix("?segment=channel&window=3")]
        unwindowed = [segments.update("?segment=channel"), segments.update_mix("?segment=channel")]
    for figure in windowed:
        assert "within 3 days only (the conversion window)" in figure.layout.title.text
    for figure in unwindowed:
        assert "conversion window" not in figure.layout.title.text


def test_disqualifiers_page_draws_every_reason(app, db):
    import funnelboard.dashboard.pages.disqualifiers as disqualifiers

    with app.server.test_request_context():
        pareto, trend = disqualifiers.update(""), disqualifiers.update_trend("")
    rows = run_metric(Gateway(db), "disqualifiers", MetricRequest())
    drawn = sum(len(t.customdata) for t in pareto.data if t.type == "bar")
    assert drawn == len(rows)
    assert trend.data


def test_time_in_stage_page_draws_the_metric(app, db):
    import funnelboard.dashboard.pages.time_in_stage as page

    with app.server.test_request_context():
        figure = page.update("?segment=region")
    rows = run_metric(Gateway(db), "time_in_stage", MetricRequest(segment="region"))
    completed = next(t for t in figure.data if "ompleted" in t.name)
    medians = [c for c in completed.customdata if c and c.get("quantile") in ("p50", 0.5, "50")]
    assert len(medians) == sum(1 for r in rows if r["p50"] is not None)


def test_a_second_app_in_the_same_process_answers_its_callbacks(app, db, tmp_path):
    """Dash hands the global callbacks to the first app that serves; each of ours has its own."""
    from funnelboard.dashboard.app import BADGE, create_app

    def badge(some_app) -> str:
        payload = {
            "output": f"..{BADGE}.children...{BADGE}.className..",
            "outputs": [{"id": BADGE, "property": "children"}, {"id": BADGE, "property": "className"}],
            "inputs": [{"id": "url", "property": "pathname", "value": "/"}],
            "changedPropIds": ["url.pathname"],
        }
        response = some_app.server.test_client().post("/_dash-update-component", json=payload)
        assert response.status_code == 200, response.data[:300]
        return response.json["response"][BADGE]["children"]

    first = badge(app)
    second = badge(create_app(db))
    assert first == second and first
