"""A funnel bar of 0 leads stays clickable: an invisible full-width bar behind every stage's row, in
each view, carries that stage's customdata, so a click there opens the stage's (empty) list through
the same drill-down as a click on the bar, and the real bars keep their hover."""

from __future__ import annotations

from datetime import timedelta

from funnelboard.dashboard.figures.common import HOVER
from funnelboard.dashboard.figures.funnel import HIT_AREA
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import run_metric
from tests.dashboard.test_lists import listed

VIEWS = (("cohort", "reached"), ("period", "period_reached"))


def _last_week(g: Gateway) -> str:
    last = g.facts()["last_event"].date()
    return f"?from={(last - timedelta(days=6)).isoformat()}&to={last.isoformat()}"


def test_every_stage_of_both_views_has_a_click_area_that_opens_as_many_leads_as_its_bar(app, db):
    import funnelboard.dashboard.pages.funnel as page
    import funnelboard.dashboard.pages.leads as leads_page
    from funnelboard.dashboard import drill

    g = Gateway(db)
    search = _last_week(g)
    with app.server.test_request_context():
        req, _view = page.view_request(g, search)
        rows = run_metric(g, "funnel", req)
        fig = page.update(search)
    assert rows[-1]["reached"] == 0, "a week-old cohort has won nobody yet"
    stages = [r["stage"] for r in rows]
    areas = {t.customdata[0]["view"]: t for t in fig.data if t.name == HIT_AREA}
    real = {t.customdata[0]["view"]: t for t in fig.data if t.name != HIT_AREA}
    assert set(areas) == set(real) == {"cohort", "period"}
    for view, key in VIEWS:
        area, bar = areas[view], real[view]
        assert [c["stage"] for c in area.customdata] == stages and list(area.customdata) == list(bar.customdata)
        assert list(area.y) == list(bar.y) and area.yaxis == bar.yaxis  # the same rows
        assert area.hoverinfo == "none" and area.marker.color == "rgba(0,0,0,0)"  # no label, nothing drawn
        axis = fig.layout[f"xaxis{area.xaxis[1:]}"]
        assert axis.overlaying == bar.xaxis and axis.visible is False and list(axis.range) == [0, 1]
        assert list(area.x) == [1] * len(stages) and area.width == 1  # the row's whole width and height
        assert bar.hovertemplate == HOVER and bar.hoverinfo is None  # the real bar's hover is untouched
    with app.server.test_request_context():
        for view, key in VIEWS:
            for i, row in enumerate(rows):
                click = {"points": [{"curveNumber": 2, "pointNumber": i, "customdata": areas[view].customdata[i]}]}
                href = drill.click_target(drill.funnel_bar, click, search)
                data, _count = listed(leads_page.TABLE, "?" + href.split("?", 1)[1])
                assert len(data) == row[key], (view, row)
    assert any(row[key] == 0 for row in rows for _view, key in VIEWS)


def test_a_figure_without_the_period_view_has_one_click_area_over_the_cohort_funnel(app, db):
    from funnelboard.dashboard import figures

    g = Gateway(db)
    with app.server.test_request_context():
        import funnelboard.dashboard.pages.funnel as page

        rows = run_metric(g, "funnel", page.view_request(g, _last_week(g))[0])
    fig = figures.funnel_figure(rows, period=False)
    (area,) = [t for t in fig.data if t.name == HIT_AREA]
    assert area.xaxis == "x2" and fig.layout.xaxis2.overlaying == "x" and area.yaxis == "y"
    assert [c for c in area.customdata] == [{"stage": r["stage"], "view": "cohort"} for r in rows]
