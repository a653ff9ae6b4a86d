"""Funnel: stage-to-stage and cumulative conversion (cohort and period views, side by side and
labelled), the stage accounting, and the conversion of weekly cohorts with immature ones marked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import dash
from dash import Input, Output, callback, dcc, html

from funnelboard.dashboard import figures, state, theme
from funnelboard.dashboard.a11y import chart
from funnelboard.dashboard.drill import cohort_cell, funnel_bar, leads_href
from funnelboard.dashboard.drill import register as register_drill
from funnelboard.dashboard.notes import empty_for, week_notes
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.spell_drill import accounting_bar
from funnelboard.dashboard.spell_drill import register as register_spell_drill
from funnelboard.dashboard.views import guarded, view_request
from funnelboard.warehouse.metrics import run_metric

dash.register_page(__name__, path="/funnel", name="Funnel", order=1, title="funnelboard · funnel")

FUNNEL = "funnel-graph"
FUNNEL_LINKS = "funnel-links"
FUNNEL_VALUE = "funnel-value"  # the open pipeline's value per stage, under the funnel
ACCOUNTING = "accounting-graph"
HEATMAP = "cohort-heatmap-graph"

SUBTITLE = (
    "Cohort view: the leads that entered the funnel in the period, and the stage each reached by the "
    "as-of date. Period view: the leads that reached each stage during the period, whichever week they "
    "entered; it counts the period's activity and is not a conversion rate."
)
HEATMAP_NOTE = (
    "Each cell follows the leads that reached the first stage of the pair in that week (local ISO weeks, "
    "Monday start) and shows the share that reached the second stage by the as-of date (within the "
    "conversion window when one is set); {command} prints the same numbers. Without a start date the last "
    "13 weeks are shown; a cohort is immature while some of its leads are younger than the window, or, "
    "without one, than the pair's maturity horizon (the time 90 % of its conversions took)."
)


def layout(**_query) -> html.Div:
    def panel(graph_id: str, *extra) -> html.Div:
        return html.Div([chart(graph_id), *extra], className="panel")

    return html.Div(
        [
            html.H1("Funnel", className="page-title"),
            html.P(SUBTITLE, className="page-subtitle"),
            panel(FUNNEL, html.Div(id=FUNNEL_LINKS, className="funnel-links"), html.Div(id=FUNNEL_VALUE, className="funnel-links")),
            panel(ACCOUNTING),
            panel(HEATMAP, heatmap_note()),
        ]
    )


def heatmap_note() -> html.P:
    before, after = HEATMAP_NOTE.split("{command}")
    return html.P(
        [before, html.Code("funnelboard query cohort_conversion"), after],
        className="page-subtitle",
        style={"margin": "0 8px 4px", "fontSize": "12px"},
    )


# One callback per chart: each answers on its own, so the page fills in as each is ready.
@callback(Output(FUNNEL, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    return figures.funnel_figure(run_metric(g, "funnel", req), stages=tuple(g.config().stages), empty=empty_for(g, view))


@callback(Output(FUNNEL_LINKS, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_links(search: str | None):
    g = gateway()
    req, _view = view_request(g, search)
    return funnel_links(run_metric(g, "funnel", req), g.config(), search)


@callback(Output(FUNNEL_VALUE, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_value(search: str | None):
    """The open pipeline's value per stage at the end of the review week (pipeline_snapshot's last
    week), in the reporting currency; nothing without amounts."""
    g = gateway()
    req, _view = view_request(g, search)
    config = g.config()
    if config.amount_column is None:
        return None
    rows = run_metric(g, "pipeline_snapshot", replace(req, segment=None))
    last = max((r["week"] for r in rows), default=None)
    cells = [r for r in rows if r["week"] == last and r["deals"]]
    if not cells:
        return None
    parts = []
    for r in cells:
        parts += [" · " if parts else "", f"{theme.stage_label(r['stage'])} {theme.fmt_money(r['value'], config.currency)} "
                  f"({theme.fmt_count(r['deals'])} deals)"]
    weighted = sum(r["weighted_value"] for r in cells)
    tail = f"; weighted {theme.fmt_money(weighted, config.currency)}" if weighted else ""
    link = dcc.Link("how it changed", href="/pipeline" + state.keep_global(search, config.segments))
    return html.P([f"Open pipeline at the end of the week of {last:%d %b %Y}: ", *parts, tail, " (", link, ")."], className="page-subtitle")


def funnel_links(rows: list[dict], config, search: str | None) -> list:
    """The leads behind every bar of the funnel as links, one line per view: a bar of 0 leads has no
    area to click, and a keyboard reaches no bar; each link opens what a click on its bar opens."""
    lines = []
    for view, key, name in (("cohort", "reached", "Cohort view"), ("period", "period_reached", "Period view")):
        if not rows or any(r.get(key) is None for r in rows):
            continue
        links = []
        for r in rows:
            changes = funnel_bar({"stage": r["stage"], "view": view}, config)
            if changes is None:
                continue
            label = f"{theme.stage_label(r['stage'])} {theme.fmt_count(r[key])}"
            links += [" · " if links else "", dcc.Link(label, href=leads_href(search, changes, config))]
        lines.append(html.P([f"{name}, the leads of each bar: ", *links], className="page-subtitle"))
    return lines


@callback(Output(ACCOUNTING, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_accounting(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    return figures.stage_accounting_figure(run_metric(g, "stage_accounting", req), g.config().outcomes, empty=empty_for(g, view))


@callback(Output(HEATMAP, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_heatmap(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    rows = run_metric(g, "cohort_conversion", req)
    weeks = sorted({r["week"] for r in rows})
    notes = week_notes(g, view.filters, weeks[0], weeks[-1] + timedelta(days=6)) if weeks else []  # funnelboard notes
    return figures.cohort_heatmap_figure(heatmap_rows(rows), title=heatmap_title(rows, g.config().conversion_window_days),
                                         empty=empty_for(g, view), notes=notes)


def heatmap_rows(rows: list[dict]) -> list[dict]:
    """`cohort_conversion` rows as the heatmap takes them: a "Lead → MQL" label per pair, immature as a flag."""
    return [
        {**r, "stage_pair": f"{theme.stage_label(r['from_stage'])} → {theme.stage_label(r['to_stage'])}", "immature": r["immature"] > 0}
        for r in rows
    ]


def heatmap_title(rows: list[dict], configured_window: int) -> str:
    """The heatmap's title: what counts as converted (the window, or none) and when a cell is immature."""
    window = rows[0]["window_days"] if rows else configured_window
    if window:
        return f"Weekly cohorts: conversion of each stage pair within {window} days<br><sup>faded: a cohort younger than the window</sup>"
    return ("Weekly cohorts: conversion of each stage pair by the as-of date (no window)"
            "<br><sup>faded: a cohort younger than the time 90 % of that pair's conversions took</sup>")


register_drill(FUNNEL, funnel_bar)
register_drill(HEATMAP, cohort_cell)
register_spell_drill(ACCOUNTING, accounting_bar)
