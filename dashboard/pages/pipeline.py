"""Pipeline: what the open pipeline was worth and how it changed, in money: the period's change as a
waterfall (start, created, amount up and down, won, lost, exited, end; default the review week) and
the open pipeline at the end of each week by stage, weighted by the stage probabilities."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import dash
from dash import Input, Output, callback, dcc, html

from funnelboard.dashboard import figures, state
from funnelboard.dashboard.drill import register as register_drill
from funnelboard.dashboard.notes import empty_for
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.theme import fmt_money, stage_label
from funnelboard.dashboard.views import graph_page, guarded, period_text, view_request
from funnelboard.warehouse.metrics import run_metric

dash.register_page(__name__, path="/pipeline", name="Pipeline", order=6, title="funnelboard · pipeline")

CHANGE = "pl-change"
SNAPSHOT = "pl-snapshot"
DEALS = "pl-deals"
MAX_ROWS = 500  # the deals a bar lists on the page (`funnelboard query pipeline_deals --change KIND` gives them all)
BAR_NAMES = {"start": "in the pipeline at the start", "created": "created (entered the pipeline)", "increased": "amount raised",
             "decreased": "amount cut", "won": "won", "lost": "lost", "exited": "left otherwise", "end": "in the pipeline at the end"}


def layout(**_query) -> html.Div:
    page = graph_page(
        "Pipeline",
        "The pipeline in money: how it changed over the period (the review week without one), and what was open at the end of each week. "
        "Click a bar of the change to list its deals.",
        [CHANGE, SNAPSHOT],
    )
    page.children.insert(3, html.Div(id=DEALS, className="panel pipeline-deals"))
    return page


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


@callback(Output(DEALS, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_deals(search: str | None):
    """The deals behind the bar the address names (?bar=won), each a link to its timeline."""
    found, no_amounts = _money_view(search, "")
    if no_amounts:
        return None
    g, req, view, config = found
    if view.bar is None:
        return html.P("Click a bar of the pipeline change to list its deals here.", className="muted")
    rows = run_metric(g, "pipeline_deals", replace(req, change=view.bar))
    keep = state.keep_global(search, config.segments)
    head = ["Deal", "When (UTC)", "Stage", "Amount before", "Amount after", "Adds to the bar"]
    body = [html.Tr([html.Td(dcc.Link(r["lead_id"], href=f"/lead/{quote(str(r['lead_id']), safe='')}{keep}")),
                     html.Td(f"{r['moved_at']:%Y-%m-%d %H:%M}"), html.Td(stage_label(r["stage"])),
                     html.Td(fmt_money(r["amount_before"], config.currency)), html.Td(fmt_money(r["amount_after"], config.currency)),
                     html.Td(fmt_money(r["value"], config.currency))]) for r in rows[:MAX_ROWS]]
    total = sum(r["value"] for r in rows)
    title = f"{len(rows):,} deals {BAR_NAMES[view.bar]}: {fmt_money(total, config.currency)}"
    more = (f" The first {MAX_ROWS:,} are listed; `funnelboard query pipeline_deals --change {view.bar}` gives them all."
            if len(rows) > MAX_ROWS else "")
    return [html.H2(title, className="panel-title"),
            html.P(f"The deals behind the bar, in time order.{more}", className="muted"),
            html.Div(html.Table([html.Thead(html.Tr([html.Th(h, scope="col") for h in head])), html.Tbody(body)],
                                className="changes-table"), className="board-scroll")]


def pipeline_bar(point: dict, _config, _search: str | None = None) -> dict | None:
    """A waterfall bar: its deals, listed under the charts (?bar=)."""
    step = point.get("step")
    return {"bar": step} if step in BAR_NAMES else None


def pipeline_href(search: str | None, changes: dict, _config) -> str:
    return "/pipeline" + state.replace_keys(search, changes)


register_drill(CHANGE, pipeline_bar, href=pipeline_href, kind="pipeline_deals")
