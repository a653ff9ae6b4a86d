"""Time in stage: p50 / p75 / p90 per stage (completed spells only beside Kaplan-Meier), the Kaplan-Meier
survival curves (per segment value with ?segment=) and the distribution of durations, in calendar days
or, with ?days=business, business days."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl, urlencode

import dash
from dash import Input, Output, callback, dcc, html

from funnelboard.dashboard import figures
from funnelboard.dashboard.notes import empty_for
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.spell_drill import histogram_bar, survival_point
from funnelboard.dashboard.spell_drill import register as register_spell_drill
from funnelboard.dashboard.views import graph_page, guarded, view_request
from funnelboard.warehouse.metrics import run_metric

PATH = "/time-in-stage"
dash.register_page(__name__, path=PATH, name="Time in stage", order=3, title="funnelboard · time in stage")

QUANTILES = "tis-quantiles"
SURVIVAL = "tis-survival"
DISTRIBUTION = "tis-distribution"
DAYS_SWITCH = "tis-days"
DAYS_KEY = "days"
BUSINESS = "business"
_SWITCH_STYLE = {"display": "flex", "gap": "6px", "alignItems": "center", "margin": "0 0 12px", "fontSize": "13px"}
_LINK_STYLE = {"padding": "4px 10px", "borderRadius": "6px", "textDecoration": "none", "border": "1px solid #e4e7eb"}
_ACTIVE_STYLE = {**_LINK_STYLE, "background": "#2f6fde", "color": "#fff", "borderColor": "#2f6fde"}


def wants_business_days(search: str | None) -> bool:
    """?days=business (the last `days` wins, as in a form); anything else means calendar days."""
    values = [v for k, v in parse_qsl((search or "").lstrip("?")) if k == DAYS_KEY]
    return bool(values) and values[-1] == BUSINESS


def days_hrefs(search: str | None) -> tuple[str, str]:
    """(calendar, business): this page's URL with the same query, without and with days=business."""
    pairs = [(k, v) for k, v in parse_qsl((search or "").lstrip("?"), keep_blank_values=True) if k != DAYS_KEY]
    calendar = PATH + ("?" + urlencode(pairs) if pairs else "")
    return calendar, PATH + "?" + urlencode(pairs + [(DAYS_KEY, BUSINESS)])


def days_switch(search: str | None) -> html.Div:
    """Calendar / business days as two links; the state is in the URL, so no callback is needed."""
    business = wants_business_days(search)
    calendar_href, business_href = days_hrefs(search)
    return html.Div(
        [
            html.Span("Count time in", style={"color": "#616e7c"}),
            dcc.Link("Calendar days", href=calendar_href, style=_LINK_STYLE if business else _ACTIVE_STYLE),
            dcc.Link("Business days (Mon–Fri)", href=business_href, style=_ACTIVE_STYLE if business else _LINK_STYLE),
        ],
        id=DAYS_SWITCH,
        style=_SWITCH_STYLE,
    )


def layout(**query) -> html.Div:
    page = graph_page(
        "Time in stage",
        (
            "Days spent in each stage by spells entered in the period. Completed spells alone understate it when many "
            "leads are still in a stage; Kaplan-Meier counts the open ones as censored. The curves show the share "
            "still in the stage after so many days (per segment value with ?segment=channel); the bars how long "
            "completed spells lasted and how old the open ones are."
        ),
        [QUANTILES, SURVIVAL, DISTRIBUTION],
    )
    search = "?" + urlencode(query, doseq=True) if query else ""
    page.children.insert(2, days_switch(search))
    return page


def _request(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    return g, replace(req, business_days=wants_business_days(search)), empty_for(g, view)


@callback(Output(QUANTILES, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update(search: str | None):
    g, req, empty = _request(search)
    return figures.time_in_stage_figure(run_metric(g, "time_in_stage", req), business_days=req.business_days, empty=empty)


@callback(Output(SURVIVAL, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_survival(search: str | None):
    g, req, empty = _request(search)
    rows = run_metric(g, "survival", replace(req, segment2=None))
    return figures.survival_figure(rows, business_days=req.business_days, stages=g.config().stages, empty=empty)


@callback(Output(DISTRIBUTION, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_distribution(search: str | None):
    g, req, empty = _request(search)
    rows = run_metric(g, "duration_distribution", replace(req, segment=None, segment2=None))
    return figures.duration_histogram_figure(rows, business_days=req.business_days, stages=g.config().stages, empty=empty)


register_spell_drill(SURVIVAL, survival_point)
register_spell_drill(DISTRIBUTION, histogram_bar)
