"""Every funnel bar's leads are one link away, a bar of 0 leads included (it has no area to click):
each link opens a list as long as its bar, and the same list a click on the bar opens."""

from __future__ import annotations

from datetime import timedelta

import pytest

from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import run_metric
from tests.dashboard.test_lists import listed


def _links(children) -> list[tuple[str, str]]:
    from dash import dcc

    found = []

    def walk(node):
        if isinstance(node, dcc.Link):
            found.append((node.children, node.href))
        for child in getattr(node, "children", None) or [] if not isinstance(node, str) else []:
            walk(child)

    for node in children:
        walk(node)
    return found


@pytest.mark.slow
def test_every_bar_of_the_last_week_has_a_link_to_exactly_its_leads_zero_bars_included(app, db):
    import funnelboard.dashboard.pages.funnel as page
    import funnelboard.dashboard.pages.leads as leads_page
    from funnelboard.dashboard import drill

    g = Gateway(db)
    last = g.facts()["last_event"].date()
    search = f"?from={(last - timedelta(days=6)).isoformat()}&to={last.isoformat()}"
    with app.server.test_request_context():
        req, _view = page.view_request(g, search)
        rows = run_metric(g, "funnel", req)
        assert any(r["reached"] == 0 for r in rows), "a week-old cohort has stages nobody reached yet"
        links = _links(page.update_links(search))
        assert len(links) == 2 * len(rows)  # one per bar of each view
        for (label, href), (row, key, view) in zip(
            links, [(r, "reached", "cohort") for r in rows] + [(r, "period_reached", "period") for r in rows]
        ):
            assert label.endswith(f" {row[key]:,}")
            data, _count = listed(leads_page.TABLE, "?" + href.split("?", 1)[1])
            assert len(data) == row[key], (view, row)
            clicked = drill.click_target(drill.funnel_bar, {"points": [{"customdata": {"stage": row["stage"], "view": view}}]}, search)
            assert clicked == href


def test_without_a_warehouse_the_links_say_so_in_one_line(tmp_path):
    import funnelboard.dashboard.pages.funnel as page
    from funnelboard.dashboard.app import create_app

    app = create_app(tmp_path / "none.duckdb")
    with app.server.test_request_context():
        shown = page.update_links("")
    assert "No warehouse" in str(shown)
