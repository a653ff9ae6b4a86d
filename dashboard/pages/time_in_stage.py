"""Time in stage: p50 / p75 / p90 per stage, completed spells only beside Kaplan-Meier with open spells censored."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, html

from dashboard import figures
from dashboard.app import URL, gateway
from dashboard.views import graph_page, guarded, view_request
from warehouse.metrics import run_metric

dash.register_page(__name__, path="/time-in-stage", name="Time in stage", order=3, title="funnelboard · time in stage")

QUANTILES = "tis-quantiles"


def layout(**_query) -> html.Div:
    return graph_page(
        "Time in stage",
        (
            "Days spent in each stage by spells entered in the period. Completed spells alone understate it when many "
            "leads are still in a stage; Kaplan-Meier counts the open ones as censored. Per segment with ?segment=channel."
        ),
        [QUANTILES],
    )


@callback(Output(QUANTILES, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update(search: str | None):
    g = gateway()
    req, _view = view_request(g, search)
    return figures.time_in_stage_figure(run_metric(g, "time_in_stage", req))
