"""Every graph of every page sits in a chart <figure> (dashboard/a11y.py::chart) whose caption opens
its numbers, and every graph a callback draws has the clientside callback that names it and fills
that table."""

from __future__ import annotations

import dash
from dash import dcc, html

from funnelboard.dashboard import a11y


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            yield from _walk(child)


def _graphs_and_charts(layout) -> tuple[set[str], set[str]]:
    nodes = list(_walk(layout))
    graphs = {n.id for n in nodes if isinstance(n, dcc.Graph)}
    charts = set()
    for n in nodes:
        if isinstance(n, html.Figure) and isinstance(n.id, dict) and n.id.get("type") == a11y.CHART:
            inside = [c for c in _walk(n) if isinstance(c, dcc.Graph)]
            ids = [c.id for c in _walk(n) if isinstance(getattr(c, "id", None), dict)]
            assert [g.id for g in inside] == [n.id["graph"]]
            assert {"type": a11y.CHART_SUMMARY, "graph": n.id["graph"]} in ids and {"type": a11y.CHART_DATA, "graph": n.id["graph"]} in ids
            charts.add(n.id["graph"])
    return graphs, charts


def test_every_graph_of_every_page_is_a_chart_with_its_data(app):
    seen = set()
    with app.server.test_request_context("/"):
        for page in dash.page_registry.values():
            query = {"lead_id": "L0000001"} if page["path_template"] else {}
            graphs, charts = _graphs_and_charts(page["layout"](**query))
            assert graphs == charts, f"{page['path']}: graphs without a text alternative: {sorted(graphs - charts)}"
            seen |= graphs
    assert len(seen) >= 10


def test_every_drawn_graph_gets_its_name_and_table_in_the_browser(app):
    drawn = set(a11y.figure_outputs(app))
    assert {"funnel-graph", "tis-survival", "dq-pareto"} <= drawn
    named = {c["output"] for c in app._callback_list if (c.get("clientside_function") or {}).get("function_name") == "chartData"}
    for graph in drawn:
        assert any(f'"graph":"{graph}"' in out for out in named), graph
