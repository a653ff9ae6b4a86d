"""Weekly review (home): KPI cards against last week and the 4-week mean, trends, stalled leads."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, dcc, html

from funnelboard.dashboard import figures
from funnelboard.dashboard.drill import register as register_drill
from funnelboard.dashboard.drill import weekly_point
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.views import empty_state, guarded, view_request
from funnelboard.warehouse.metrics import Context

dash.register_page(__name__, path="/", name="Weekly review", order=0, title="funnelboard · weekly review")

CARDS = "weekly-cards"
WEEK = "weekly-week"
MOVERS = "weekly-movers"
TOP_MOVERS = 8
TREND = "weekly-trend"
STALLED = "weekly-stalled"
TREND_KPIS = ("reached_mql", "reached_sql", "sql_rate")
IMMATURE_HINT = "Some of this week's MQLs have not had the whole conversion window yet: the rate will still rise."


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Weekly review", className="page-title"),
            html.P("This week against last week and the mean of the 4 weeks before.", className="page-subtitle"),
            html.Div(id=WEEK, className="week-line"),
            dcc.Loading(html.Div(id=CARDS, className="cards")),
            html.Div(id=STALLED, className="notice"),
            html.Div(id=MOVERS, className="panel movers"),
            html.Div(dcc.Loading(dcc.Graph(id=TREND, config={"displaylogo": False})), className="panel"),
        ]
    )


@callback(Output(MOVERS, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_movers(search: str | None):
    """The segment values whose SQL count changed most against last week, each a link to those SQLs."""
    from funnelboard.dashboard.drill import leads_href, week_span
    from funnelboard.dashboard.theme import fmt_signed_count, stage_label

    g = gateway()
    req, _view = view_request(g, search)
    config = g.config()
    rows = [r for r in run(g, "movers", req) if r["delta_sqls"]][:TOP_MOVERS]
    title = html.H2("Top movers: SQLs this week against last week", className="panel-title")
    if not rows:
        return [title, html.P("No segment value's SQL count changed against last week.", className="muted")]
    sql, following = config.stages[2], config.stages[min(3, len(config.stages) - 1)]
    items = []
    for r in rows:
        changes = {**week_span(r["week"].isoformat()), "from_stage": sql, "to_stage": following, "which": None,
                   r["segment"]: r["value"]}
        tone = "tone-good" if r["delta_sqls"] > 0 else "tone-bad"
        items.append(html.Li([
            html.Span(r["segment"].replace("_", " "), className="mover-col"),
            dcc.Link(r["value"], href=leads_href(search, changes, config), className="mover-value",
                     title=f"the {r['sqls_this_week']} leads that reached {stage_label(sql)} this week"),
            html.Span(fmt_signed_count(r["delta_sqls"]), className=f"mover-delta {tone}"),
            html.Span(f"{r['sqls_this_week']:,} SQLs vs {r['sqls_last_week']:,} · MQLs {r['mqls_this_week']:,} vs {r['mqls_last_week']:,}",
                      className="mover-detail"),
        ]))
    return [title, html.Ul(items, className="mover-list")]


@callback(Output(CARDS, "children"), Output(TREND, "figure"), Output(WEEK, "children"), Input(URL, "search"))
@guarded(outputs=3)
def update(search: str | None):
    g = gateway()
    req, _state = view_request(g, search)
    rows = run(g, "weekly_kpis", req)
    if not rows:
        return empty_state("No weeks to show for these filters."), figures.weekly_trend_figure([], TREND_KPIS), ""
    week = rows[-1]["week"]
    cards = [
        html.Div(
            [
                html.Div(card["label"], className="card-label"),
                html.Div(
                    [card["value_text"]] + ([html.Span("immature", className="immature", title=IMMATURE_HINT)] if card["immature"] else []),
                    className="card-value",
                ),
                html.Div(
                    [html.Span(card["delta_week_text"], className=f"tone-{card['tone']}"), " vs last week · ", card["delta_4w_text"], " vs 4-wk mean"],
                    className="card-delta",
                ),
            ],
            className="card",
        )
        for card in figures.kpi_card_values(rows, week)
    ]
    return cards, figures.weekly_trend_figure(rows, TREND_KPIS), week_line(week, Context(g).resolve(req).as_of, g.config().timezone)


@callback(Output(STALLED, "children"), Input(URL, "search"))
def update_stalled(search: str | None):
    """The stalled line under the cards: its own callback, so the cards never wait for it. A user
    error (no warehouse, a bad filter) leaves it empty: the cards above already say what is wrong."""
    from funnelboard.core.errors import UserError

    try:
        g = gateway()
        req, _state = view_request(g, search)
        summary = run(g, "stalled_summary", req)[0]
    except UserError:
        return ""
    return dcc.Link(
        f"{summary['stalled']:,} leads stalled · {summary['newly_stalled']:,} newly stalled this week · {summary['recovered']:,} recovered",
        href="/stalled",
    )


def week_line(week, as_of, tz: str) -> list:
    """Which week the cards are, and a week-to-date marker when as_of falls before its end."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    local = as_of.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    monday = datetime.combine(week, datetime.min.time()) if not isinstance(week, datetime) else week
    line = [html.Strong(f"Week of {monday:%a %d %b %Y}")]
    if local < monday + timedelta(days=7) - timedelta(microseconds=1) and local.date() < (monday + timedelta(days=6)).date():
        days = (local.date() - monday.date()).days + 1
        line += [
            " · ",
            html.Span(f"week to date: {days} of 7 days, to {local:%a %d %b %H:%M}", className="wtd"),
            " — counts compare with full weeks only at the end of the week.",
        ]
    return line


register_drill(TREND, weekly_point)


def run(g, name, req):
    from funnelboard.warehouse.metrics import run_metric

    return run_metric(g, name, req)
