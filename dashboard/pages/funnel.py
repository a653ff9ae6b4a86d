"""Funnel: stage-to-stage and cumulative conversion (cohort and period views) and the stage accounting."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, html

from dashboard import figures
from dashboard.app import URL, gateway
from dashboard.views import graph_page, guarded, view_request
from warehouse.metrics import run_metric

dash.register_page(__name__, path="/funnel", name="Funnel", order=1, title="funnelboard · funnel")

FUNNEL = "funnel-graph"
ACCOUNTING = "accounting-graph"


def layout(**_query) -> html.Div:
    return graph_page(
        "Funnel",
        "Cohort view: leads entering the first stage in the period, and how far they got by the as-of date.",
        [FUNNEL, ACCOUNTING], side_by_side=True,
    )


@callback(Output(FUNNEL, "figure"), Output(ACCOUNTING, "figure"), Input(URL, "search"))
@guarded(outputs=2, first="figure")
def update(search: str | None):
    g = gateway()
    req, _state = view_request(g, search)
    outcomes = g.config().outcomes
    return (
        figures.funnel_figure(run_metric(g, "funnel", req)),
        figures.stage_accounting_figure(run_metric(g, "stage_accounting", req), outcomes),
    )
