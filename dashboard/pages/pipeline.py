"""Pipeline: what the open pipeline was worth and how it changed, in money: the period's change as a
waterfall (start, created, pulled in, value up and down, pushed out, won, lost, exited, end; default
the review week), split by a segment on request, the open pipeline at the end of each week by stage
(weighted by the stage probabilities) and by forecast category, and the period's moves between
categories. Every figure in the reporting currency; a close window narrows them to the deals closing in it."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import dash
from dash import Input, Output, callback, dcc, html

from funnelboard.core.errors import UserError
from funnelboard.dashboard import figures, state
from funnelboard.dashboard.drill import register as register_drill
from funnelboard.dashboard.notes import empty_for
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.tables import export_href, streams
from funnelboard.dashboard.theme import fmt_count, fmt_money, stage_label
from funnelboard.dashboard.views import graph_page, guarded, period_text, view_request
from funnelboard.warehouse.metrics import run_metric
from funnelboard.warehouse.metrics.pipeline import MOVES

dash.register_page(__name__, path="/pipeline", name="Pipeline", order=6, title="funnelboard · pipeline")

CHANGE = "pl-change"
SPLIT = "pl-split"
SNAPSHOT = "pl-snapshot"
FORECAST = "pl-forecast"
DEALS = "pl-deals"
DEALS_TABLE = "pipeline-deals"
MAX_ROWS = 500  # the deals a bar lists on the page (the CSV export and `funnelboard query pipeline_deals` give them all)
BAR_NAMES = {"start": "in the pipeline at the start", "created": "created (entered the pipeline)", "pulled_in": "pulled in (close date moved into the window)",
             "increased": "value raised", "decreased": "value cut", "pushed_out": "pushed out (close date moved out of the window)", "won": "won",
             "lost": "lost", "exited": "left otherwise", "end": "in the pipeline at the end"}
WINDOWS = [("all", "every open deal"), ("month", "this month"), ("quarter", "this quarter"), ("year", "this year")]


def layout(**query) -> html.Div:
    page = graph_page(
        "Pipeline",
        "The pipeline in money: how it changed over the period (the review week without one), and what was open at the end of each week, "
        "by stage and by forecast category. Click a bar of the change to list its deals.",
        [CHANGE, SNAPSHOT, FORECAST],
    )
    page.children.insert(2, controls(query))
    page.children.insert(4, html.Div(id=SPLIT, className="panel pipeline-split"))
    page.children.insert(5, html.Div(id=DEALS, className="panel pipeline-deals"))
    return page


def controls(query: dict) -> html.Div:
    """The close window (with close dates) and the segment the change is split by, kept in the URL."""
    from funnelboard.dashboard.filters import page_control

    try:
        config = gateway().config()
    except UserError:
        return html.Div()
    value = query.get("closing")
    items = []
    if config.close_date_column:
        items.append(page_control("closing", "Deals closing", WINDOWS, value if value in dict(WINDOWS) else None,
                                  placeholder="every open deal"))
    segment = query.get("segment")
    items.append(page_control("segment", "Split the change by", [(c, c.replace("_", " ")) for c in config.segments],
                              segment if isinstance(segment, str) and segment in config.segments else None, clearable=True, placeholder="nothing"))
    return html.Div(items, className="page-controls")


def _money_view(search: str | None, title: str):
    """The gateway, request, view and config of an address; or the figure that says this data has no amounts."""
    g = gateway()
    req, view = view_request(g, search)
    config = g.config()
    if config.amount_column is None:
        return None, figures.empty_figure("No amounts in this data", hint="Name the amount column under [attributes] amount in funnel.toml.",
                                          title=title)
    return (g, replace(req, segment=None), view, config), None


def _window_text(row: dict) -> str:
    if row.get("closing_from") is None:
        return ""
    first, last = row["closing_from"], row["closing_to"]
    return f", closing {first:%d %b} – {last:%d %b %Y}" if first.year == last.year else f", closing {first:%d %b %Y} – {last:%d %b %Y}"


@callback(Output(CHANGE, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update(search: str | None):
    """The period's change: one pipeline_changes row for the view's period, filters and close window."""
    found, no_amounts = _money_view(search, "Pipeline change")
    if no_amounts:
        return no_amounts
    g, req, view, config = found
    (row,) = run_metric(g, "pipeline_changes", req)
    title = f"Pipeline change, {period_text(row['period_from'], row['period_to'], config.timezone)}{_window_text(row)}"
    return figures.pipeline_waterfall_figure(row, currency=config.currency, title=title,
                                             empty=empty_for(g, view, "No deal with an amount was in the pipeline"))


@callback(Output(SPLIT, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_split(search: str | None):
    """The change per value of the chosen segment (?segment=), one row each, adding up to the waterfall."""
    found, no_amounts = _money_view(search, "")
    if no_amounts:
        return None
    g, req, view, config = found
    if view.segment is None:
        names = ", ".join(c.replace("_", " ") for c in list(config.segments)[:3])
        return html.P(f"Split the change by a segment (above) to see it per {names}{', ...' if len(config.segments) > 3 else ''}.", className="muted")
    rows = run_metric(g, "pipeline_changes", replace(req, segment=view.segment))
    windowed = rows and rows[0].get("closing_from") is not None
    moves = [m for m in MOVES if windowed or m not in ("pulled_in", "pushed_out")]
    head = [view.segment.replace("_", " ").capitalize(), "Start", *(m.replace("_", " ").capitalize() for m in moves), "End"]
    money = config.currency
    body = [html.Tr([html.Th(str(r[view.segment]), scope="row"), html.Td(fmt_money(r["start"], money)),
                     *(html.Td(fmt_money(r[m], money) if r[m] else "–", title=f"{fmt_count(r['n_' + m])} deals") for m in moves),
                     html.Td(fmt_money(r["end"], money))]) for r in rows]
    return [html.H2(f"The change by {view.segment.replace('_', ' ')}", className="panel-title"),
            html.P("Each row adds up as the waterfall does: start + created + pulled in + up − down − pushed out − won − lost − exited = end. "
                   "Hover a cell for its deals.", className="muted"),
            html.Div(html.Table([html.Thead(html.Tr([html.Th(h, scope="col") for h in head])), html.Tbody(body)],
                                className="changes-table"), className="board-scroll")]


def _weekly_figure(search: str | None, title: str, metric: str, draw, empty: str):
    """A weekly chart of the page: `metric`'s rows for the address drawn by `draw(rows, config, title, empty)`."""
    found, no_amounts = _money_view(search, title)
    if no_amounts:
        return no_amounts
    g, req, view, config = found
    rows = run_metric(g, metric, req)
    return draw(rows, config, title + (_window_text(rows[0]) if rows else ""), empty_for(g, view, empty))


@callback(Output(SNAPSHOT, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_snapshot(search: str | None):
    """The open pipeline at each week's end, by stage."""
    return _weekly_figure(search, "Open pipeline at the end of each week, by stage", "pipeline_snapshot",
                          lambda rows, config, title, empty: figures.pipeline_snapshot_figure(
                              rows, config.stages[:-1], currency=config.currency, title=title, empty=empty),
                          "No deal with an amount was open at the end of these weeks")


@callback(Output(FORECAST, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_forecast(search: str | None):
    """The forecast categories at each week's end and the value closed in the week."""
    return _weekly_figure(search, "Forecast categories at the end of each week", "forecast",
                          lambda rows, config, title, empty: figures.forecast_figure(rows, currency=config.currency, title=title, empty=empty),
                          "No deal with an amount was open or won in these weeks")


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
    from funnelboard.warehouse.metrics.base import Context
    from funnelboard.warehouse.metrics.pipeline import pipeline_deals

    # the bar's count and value from its waterfall row (the same query the chart drew, remembered); its
    # first MAX_ROWS deals listed (the CSV has them all)
    (bar,) = run_metric(g, "pipeline_changes", req)
    count = bar["start_deals" if view.bar == "start" else "end_deals" if view.bar == "end" else f"n_{view.bar}"]
    total = bar[{"start": "start", "end": "end"}.get(view.bar, view.bar)]
    rows = pipeline_deals(Context(g), replace(req, change=view.bar), limit=MAX_ROWS)
    keep = state.keep_global(search, config.segments)
    money = config.currency

    def amount(value, code) -> str:
        return fmt_money(value, code or money)

    head = ["Deal", "When (UTC)", "Stage", "Amount before", "Amount after", "Close date before", "Close date after", f"Adds to the bar ({money})" if money else "Adds to the bar"]
    body = [html.Tr([html.Td(dcc.Link(r["lead_id"], href=f"/lead/{quote(str(r['lead_id']), safe='')}{keep}")),
                     html.Td(f"{r['moved_at']:%Y-%m-%d %H:%M}"), html.Td(stage_label(r["stage"])),
                     html.Td(amount(r["amount_before"], r["currency_before"])), html.Td(amount(r["amount_after"], r["currency_after"])),
                     html.Td(f"{r['close_before']:%Y-%m-%d}" if r["close_before"] else "–"),
                     html.Td(f"{r['close_after']:%Y-%m-%d}" if r["close_after"] else "–"),
                     html.Td(fmt_money(r["value"], money))]) for r in rows]
    title = f"{count:,} deals {BAR_NAMES[view.bar]}: {fmt_money(total, money)}"
    more = f" The first {MAX_ROWS:,} are listed; the CSV has them all." if count > MAX_ROWS else ""
    return [html.Div([html.H2(title, className="panel-title"),
                      html.A("Export CSV", href=export_href(DEALS_TABLE, search), className="button", download=f"{DEALS_TABLE}.csv")],
                     className="table-head"),
            html.P(f"The deals behind the bar, in time order; amounts in each deal's own currency.{more}", className="muted"),
            html.Div(html.Table([html.Thead(html.Tr([html.Th(h, scope="col") for h in head])), html.Tbody(body)],
                                className="changes-table"), className="board-scroll")]


@streams(DEALS_TABLE)
def deal_rows(search: str | None):
    """The CSV of the deals behind the address's bar (every bar without one): `funnelboard query
    pipeline_deals --change BAR --format csv` with the view's period, filters and close window."""
    g = gateway()
    req, view = view_request(g, search, strict=True)
    return f"pipeline-deals-{view.bar or 'all'}", run_metric(g, "pipeline_deals", replace(req, segment=None, change=view.bar))


def pipeline_bar(point: dict, _config, _search: str | None = None) -> dict | None:
    """A waterfall bar: its deals, listed under the charts (?bar=)."""
    step = point.get("step")
    return {"bar": step} if step in BAR_NAMES else None


def pipeline_href(search: str | None, changes: dict, _config) -> str:
    return "/pipeline" + state.replace_keys(search, changes)


register_drill(CHANGE, pipeline_bar, href=pipeline_href, kind="pipeline_deals")
