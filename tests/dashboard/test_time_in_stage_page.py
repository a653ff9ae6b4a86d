"""The Time-in-stage page, its callbacks called directly (no browser): the figures carry the metrics' numbers,
and the calendar / business-days switch lives in the URL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dash import dcc

from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.dashboard.test_figures import annotation_texts


@pytest.fixture(scope="module")
def page(app):
    import funnelboard.dashboard.pages.time_in_stage as page

    return page


def links(component) -> list[dcc.Link]:
    found = []
    for child in getattr(component, "children", None) or []:
        if isinstance(child, dcc.Link):
            found.append(child)
        elif not isinstance(child, str):
            found.extend(links(child))
    return found


def curves_of(fig) -> dict[tuple, list[tuple[float, float]]]:
    """(stage, segment value or None) -> [(days, S)] of every trace."""
    out = {}
    for trace in fig.data:
        first = trace.customdata[0]
        value = next((v for k, v in first.items() if k not in ("stage", "days", "step")), None)
        out[(first["stage"], value)] = list(zip(trace.x, trace.y))
    return out


def metric_curves(rows: list[dict], segment: str | None) -> dict[tuple, list[tuple[float, float]]]:
    out: dict[tuple, list] = {}
    for r in rows:
        out.setdefault((r["stage"], r[segment] if segment else None), []).append((r["days"], r["survival"]))
    return out


def test_the_days_switch_keeps_the_query_and_toggles_days(page):
    assert page.days_hrefs("?channel=referral&segment=region") == (
        "/time-in-stage?channel=referral&segment=region",
        "/time-in-stage?channel=referral&segment=region&days=business",
    )
    assert page.days_hrefs("?days=business&from=2026-01-01") == ("/time-in-stage?from=2026-01-01", "/time-in-stage?from=2026-01-01&days=business")
    assert page.days_hrefs("") == ("/time-in-stage", "/time-in-stage?days=business")
    assert page.wants_business_days("?days=business") and not page.wants_business_days("?days=calendar")
    assert not page.wants_business_days(None)


def test_the_layout_has_three_panels_and_the_switch_from_the_url(page):
    layout = page.layout(channel="referral", days="business")
    calendar, business = links(layout)
    assert calendar.href == "/time-in-stage?channel=referral"
    assert business.href == "/time-in-stage?channel=referral&days=business"
    assert business.style["color"] == "#fff" and "color" not in calendar.style  # the active one is filled
    plain = page.layout()
    assert [link.style.get("color") for link in links(plain)] == ["#fff", None]
    graphs = [c.children.id["graph"] for c in layout.children[3].children]  # each panel holds a11y.chart(graph id)
    assert graphs == [page.QUANTILES, page.SURVIVAL, page.DISTRIBUTION]


def test_survival_curves_are_the_metric_per_stage(app, db, page):
    with app.server.test_request_context():
        fig = page.update_survival("?channel=referral")
    rows = run_metric(Gateway(db), "survival", MetricRequest(filters=(("channel", "referral"),)))
    assert [t.name for t in fig.data] == ["Lead", "MQL", "SQL", "Opportunity", "Proposal"]
    assert curves_of(fig) == metric_curves(rows, None)
    medians = {t.name: [x for x, size in zip(t.x, t.marker.size) if size] for t in fig.data}
    km = {r["stage"]: r["km_p50"] for r in run_metric(Gateway(db), "time_in_stage", MetricRequest(filters=(("channel", "referral"),)))}
    assert all(km[stage] in medians[label] for stage, label in (("mql", "MQL"), ("sql", "SQL")))


def test_survival_curves_per_segment_value(app, db, page):
    with app.server.test_request_context():
        fig = page.update_survival("?segment=channel")
    rows = run_metric(Gateway(db), "survival", MetricRequest(segment="channel"))
    assert curves_of(fig) == metric_curves(rows, "channel")
    assert {t.xaxis for t in fig.data} == {"x", "x2", "x3", "x4", "x5"}  # a panel per stage


def test_business_days_reach_every_panel(app, db, page):
    search = "?days=business&segment=region"
    with app.server.test_request_context():
        quantiles = page.update(search)
        curves = page.update_survival(search)
        bars = page.update_distribution(search)
    req = MetricRequest(segment="region", business_days=True)
    g = Gateway(db)
    assert "Business days" in quantiles.layout.xaxis.title.text
    rows = run_metric(g, "time_in_stage", req)
    completed = next(t for t in quantiles.data if "ompleted" in t.name)
    p50s = [x for x, c in zip(completed.x, completed.customdata) if c and c["quantile"] == "p50"]
    assert p50s == [r["p50"] for r in rows if r["p50"] is not None]
    assert curves_of(curves) == metric_curves(run_metric(g, "survival", req), "region")
    assert "Business days" in bars.layout.xaxis4.title.text
    distribution = run_metric(g, "duration_distribution", replace(req, segment=None))
    drawn = {(c["stage"], c["min_days"], c["open"]): y for t in bars.data for c, y in zip(t.customdata, t.y)}
    assert drawn == {
        **{(r["stage"], r["bin_start"], False): r["completed"] for r in distribution},
        **{(r["stage"], r["bin_start"], True): r["open"] for r in distribution},
    }


def test_distribution_bars_are_the_metric(app, db, page):
    with app.server.test_request_context():
        fig = page.update_distribution("?channel=inbound&segment=channel")
    rows = run_metric(Gateway(db), "duration_distribution", MetricRequest(filters=(("channel", "inbound"),)))
    for stage in ("lead", "mql", "sql", "opportunity", "proposal"):
        completed = next(t for t in fig.data if t.customdata[0]["stage"] == stage and not t.customdata[0]["open"])
        assert list(completed.y) == [r["completed"] for r in rows if r["stage"] == stage]
        assert [c["max_days"] for c in completed.customdata] == [r["bin_end"] for r in rows if r["stage"] == stage]


def test_no_spells_and_no_warehouse_are_messages(app, page, tmp_path):
    with app.server.test_request_context():
        fig = page.update_survival("?channel=no-such-channel")
        bars = page.update_distribution("?channel=no-such-channel")
    says = "No leads match the filters (channel = no-such-channel) in the data."
    assert not fig.data and says in annotation_texts(fig)
    assert not bars.data and says in annotation_texts(bars)
    from funnelboard.dashboard.app import create_app

    empty = create_app(tmp_path / "none.duckdb")
    with empty.server.test_request_context():
        shown = page.update_survival("")
    assert "No warehouse is published here yet" in annotation_texts(shown)
