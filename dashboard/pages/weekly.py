"""Weekly review (home): KPI cards against last week and the 4-week mean, trends, stalled leads."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import figures
from dashboard.app import URL, gateway
from dashboard.views import empty_state, guarded, view_request

dash.register_page(__name__, path="/", name="Weekly review", order=0, title="funnelboard · weekly review")

CARDS = "weekly-cards"
TREND = "weekly-trend"
STALLED = "weekly-stalled"
TREND_KPIS = ("reached_mql", "reached_sql", "sql_rate")
IMMATURE_HINT = "Some of this week's MQLs have not had the whole conversion window yet: the rate will still rise."


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Weekly review", className="page-title"),
            html.P("This week against last week and the mean of the 4 weeks before.", className="page-subtitle"),
            dcc.Loading(html.Div(id=CARDS, className="cards")),
            html.Div(id=STALLED, className="notice"),
            html.Div(dcc.Loading(dcc.Graph(id=TREND, config={"displaylogo": False})), className="panel"),
        ]
    )


@callback(Output(CARDS, "children"), Output(TREND, "figure"), Output(STALLED, "children"), Input(URL, "search"))
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
    summary = run(g, "stalled_summary", req)[0]
    stalled = dcc.Link(
        f"{summary['stalled']:,} leads stalled · {summary['newly_stalled']:,} newly stalled this week · {summary['recovered']:,} recovered",
        href="/stalled",
    )
    return cards, figures.weekly_trend_figure(rows, TREND_KPIS), stalled


def run(g, name, req):
    from warehouse.metrics import run_metric

    return run_metric(g, name, req)
