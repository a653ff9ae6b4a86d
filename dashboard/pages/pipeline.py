"""Pipeline: what the open pipeline was worth and how it changed, in money: the period's change as a
waterfall (start, created, amount up and down, won, lost, exited, end; default the review week) and
the open pipeline at the end of each week by stage, weighted by the stage probabilities."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, html

from funnelboard.dashboard import figures
from funnelboard.dashboard.notes import empty_for
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.views import graph_page, guarded, period_text, view_request
from funnelboard.warehouse.metrics import run_metric

dash.register_page(__name__, path="/pipeline", name="Pipeline", order=6, title="funnelboard · pipeline")

CHANGE = "pl-change"
SNAPSHOT = "pl-snapshot"


def layout(**_query) -> html.Div:
    return graph_page(
        "Pipeline",
        "The pipeline in money: how it changed over the period (the review week without one), and what was open at the end of each week.",
        [CHANGE, SNAPSHOT],
    )


def _money_view(search: str | None, title: str):
    """The gateway, request, view and config of an address; or the figure that says this data has no amounts."""
    g = gateway()
    req, view = view_request(g, search)
    config = g.config()
    if config.amount_column is None:
        return None, figures.empty_figure("No amounts in this data", hint="Name the amount column under [attributes] amount in funnel.toml.",
                                          title=title)
    return (g, req, view, config), None


@callback(Output(CHANGE, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update(search: str | None):
    """The period's change: one pipeline_changes row for the view's period and filters."""
    found, no_amounts = _money_view(search, "Pipeline change")
    if no_amounts:
        return no_amounts
    g, req, view, config = found
    (row,) = run_metric(g, "pipeline_changes", req)
    title = f"Pipeline change, {period_text(row['period_from'], row['period_to'], config.timezone)}"
    return figures.pipeline_waterfall_figure(row, currency=config.currency, title=title,
                                             empty=empty_for(g, view, "No deal with an amount was in the pipeline"))


@callback(Output(SNAPSHOT, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_snapshot(search: str | None):
    """The open pipeline at each week's end, by stage."""
    title = "Open pipeline at the end of each week, by stage"
    found, no_amounts = _money_view(search, title)
    if no_amounts:
        return no_amounts
    g, req, view, config = found
    rows = run_metric(g, "pipeline_snapshot", req)
    return figures.pipeline_snapshot_figure(rows, config.stages[:-1], currency=config.currency, title=title,
                                            empty=empty_for(g, view, "No deal with an amount was open at the end of these weeks"))
