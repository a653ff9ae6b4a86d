"""Disqualifiers: the Pareto of exit reasons and their weekly trend."""

from __future__ import annotations

from datetime import timedelta

import dash
from dash import Input, Output, callback, html

from funnelboard.dashboard import figures
from funnelboard.dashboard.notes import empty_for, week_notes
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.spell_drill import disqualifier_mark
from funnelboard.dashboard.spell_drill import register as register_spell_drill
from funnelboard.dashboard.views import graph_page, guarded, view_request
from funnelboard.warehouse.metrics import MetricRequest, run_metric

dash.register_page(__name__, path="/disqualifiers", name="Disqualifiers", order=4, title="funnelboard · disqualifiers")

PARETO = "dq-pareto"
TREND = "dq-trend"


def layout(**_query) -> html.Div:
    return graph_page(
        "Disqualifiers",
        "Why leads leave the funnel: exits by normalised reason, biggest first, and by week.",
        [PARETO, TREND],
    )


def left_to_outcome(g) -> str:
    """What an empty chart of exits has none of."""
    return f"No lead left the funnel to an outcome ({', '.join(g.config().outcomes)})"


@callback(Output(PARETO, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    return figures.disqualifier_pareto_figure(run_metric(g, "disqualifiers", req), outcomes=g.config().outcomes, empty=empty_for(g, view, left_to_outcome(g)))


@callback(Output(TREND, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_trend(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    rows = run_metric(g, "disqualifiers", req.__class__(**{**req.__dict__, "by": "week"}))
    fig = figures.disqualifier_trend_figure(rows, empty=empty_for(g, view, left_to_outcome(g)), colors=colors_of_reasons(g, req))
    weeks = sorted({r["week"] for r in rows})
    if weeks:  # the notes of the weeks drawn (funnelboard notes)
        figures.add_notes(fig, week_notes(g, view.filters, weeks[0], weeks[-1] + timedelta(days=6)))
    return fig


def colors_of_reasons(g, req: MetricRequest) -> dict:
    """Each reason's colour by its rank in all the exits the user may see (no other filter), so
    narrowing the page never recolours a reason."""
    unfiltered = run_metric(g, "disqualifiers", MetricRequest(scope=req.scope))
    ranked = sorted(unfiltered, key=lambda r: (-r["exits"], r["outcome"], r["reason"]))
    return figures.reason_colors([(r["outcome"], r["reason"]) for r in ranked])


register_spell_drill(PARETO, disqualifier_mark)
register_spell_drill(TREND, disqualifier_mark)
