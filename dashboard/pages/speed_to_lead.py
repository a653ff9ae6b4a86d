"""Speed to lead: how fast leads were answered after they came in, against the response SLA
([response] in funnel.toml), how the key rate falls as the wait grows, and the leads that breached it."""

from __future__ import annotations

from dataclasses import replace

import dash
from dash import Input, Output, callback, html

from funnelboard.dashboard.a11y import chart
from funnelboard.dashboard.figures import empty_figure
from funnelboard.dashboard.figures.response import response_bands_figure, response_time_figure
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.tables import column, exports, grid_ids, grid_rows, table_block
from funnelboard.dashboard.theme import fmt_count, fmt_pct
from funnelboard.dashboard.views import empty_state, guarded, view_request
from funnelboard.warehouse.metrics import run_metric

dash.register_page(__name__, path="/speed-to-lead", name="Speed to lead", order=4, title="funnelboard · speed to lead")

NO_RESPONSE = ("This data has no first response per lead: set [attributes] first_response in funnel.toml to the column "
               "holding it (a timestamp, e.g. first_response_at) and load again.")
SUMMARY = "stl-summary"
TIMES = "stl-times"
BANDS = "stl-bands"
BREACHES = "stl-breaches"
HANDOFF = "stl-handoff"
HANDOFF_COLUMNS = [
    column("handoffs", "Handoffs", kind="int", width=100),
    column("sent_back", "Sent back", kind="int", width=100),
    column("sent_back_rate", "Sent back (%)", kind="percent", width=120),
    column("wilson_low", "95% low", kind="percent", width=100),
    column("wilson_high", "95% high", kind="percent", width=100),
    column("median_days_to_accept", "Median days to accept", kind="number", width=150),
    column("p90_days_to_accept", "p90 days", kind="number", width=100),
    column("never_worked", "Never worked", kind="int", width=120),
    column("too_few", "Too few", kind="bool", width=90),
]
COLUMNS = [
    column("lead_id", "Lead", width=110, kind="id") | {"cellClass": "link-cell"},  # a click opens the lead (tables.open_lead)
    column("started_at", "Came in (UTC)", width=160),
    column("answered_at", "First response (UTC)", width=170),
    column("hours", "Hours", kind="number", width=90),
    column("business_hours", "Business hours", kind="number", width=130),
    column("sla_hours", "SLA (hours)", kind="number", width=110),
    column("band", "Band", width=90),
    column("converted", "Converted", kind="bool", width=110),
]


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Speed to lead", className="page-title"),
            html.P(
                "How long leads that came in during the period waited for their first response, against the response SLA "
                "([response] in funnel.toml), and how the key rate falls as the wait grows. Per channel by default "
                "(?segment= picks another column).",
                className="page-subtitle",
            ),
            html.Div(id=SUMMARY, className="notice"),
            html.Div([html.Div(chart(TIMES), className="panel"), html.Div(chart(BANDS), className="panel")], className="grid-2"),
            table_block(HANDOFF, "Handoff quality", handoff_columns(None), height=320,
                        note="Per channel (?segment= another column): leads handed from the key rate's first stage to its second, "
                             "those sent back within the handoff window (settled handoffs only, with a 95% interval), the days "
                             "from the first stage to acceptance, and leads of the first stage never worked. The export is "
                             "`funnelboard query handoff --segment channel` with these filters."),
            table_block(BREACHES, "SLA breaches", COLUMNS,
                        note="Leads answered later than their SLA, or not at all once it ran out; newest first. "
                             "The export is `funnelboard query response_leads --filter status=breach` with these filters."),
        ]
    )


def _request(g, search: str | None, *, strict: bool = False):
    """The view's request, split by channel when the funnel has one and no segment is asked."""
    req, view = view_request(g, search, strict=strict)
    if req.segment is None and "channel" in g.config().segments:
        req = replace(req, segment="channel")
    return req, view


@exports(BREACHES)
def breach_rows(_pathname: str | None, search: str | None) -> tuple[str, list[dict]]:
    g = gateway()
    req, _view = view_request(g, search, strict=True)
    return "response-breaches", run_metric(g, "response_leads", replace(req, filters=(*req.filters, ("status", "breach"))))


def handoff_columns(segment: str | None) -> list[dict]:
    """The handoff table's columns: the segment's first (when split), then the metric's."""
    return ([column(segment, segment.replace("_", " ").capitalize(), width=130)] if segment else []) + HANDOFF_COLUMNS


@exports(HANDOFF)
def handoff_rows(_pathname: str | None, search: str | None) -> tuple[str, list[dict]]:
    g = gateway()
    req, _view = _request(g, search, strict=True)
    return "handoff", run_metric(g, "handoff", req)


@callback(Output(SUMMARY, "children"), Output(TIMES, "figure"), Output(BANDS, "figure"),
          *(Output(i, p) for i, p in zip(grid_ids(BREACHES), ("rowData", "children"))),
          *(Output(i, p) for i, p in zip(grid_ids(HANDOFF), ("rowData", "children"))), Output(grid_ids(HANDOFF)[0], "columnDefs"),
          Input(URL, "search"))
@guarded(outputs=8)
def update(search: str | None):
    g = gateway()
    config = g.config()
    if not config.first_response_column:  # every output says so: the charts too, not blank axes
        message = NO_RESPONSE
        return (empty_state(message), empty_figure(message, title="Time to first response"),
                empty_figure(message, title=f"{config.review_rate.name} by time to first response"), *grid_rows([]),
                *grid_rows(handoff_rows(None, search)[1]), handoff_columns(_request(g, search)[0].segment))
    req, _view = _request(g, search)
    rows = run_metric(g, "speed_to_lead", req)
    (total,) = run_metric(g, "speed_to_lead", replace(req, segment=None))
    bands = run_metric(g, "response_bands", replace(req, segment=None))
    clock = "business hours" if config.response.business else "hours"
    summary = html.P([
        html.Strong(f"{fmt_count(total['leads'])} leads came in"),
        f" · {fmt_count(total['answered'])} answered · p50 {_hours(total, config.response.business, 'p50')} {clock} · ",
        html.Strong(f"{fmt_count(total['breaches'])} SLA breaches"),
        f" of {fmt_count(total['judged'])} judged ({fmt_pct(total['within_sla_share'])} within the SLA)"
        if total["judged"] else " (no SLA set: [response] sla_hours)",
    ])
    times = response_time_figure(rows, req.segment, business=config.response.business, sla_hours=config.response.sla_hours)
    chart_bands = response_bands_figure(bands, rate_name=config.review_rate.name)
    listed = breach_rows(None, search)[1]
    return (summary, times, chart_bands, *grid_rows(listed), *grid_rows(handoff_rows(None, search)[1]), handoff_columns(req.segment))


def _hours(row: dict, business: bool, q: str) -> str:
    value = row[f"{q}_{'business_hours' if business else 'hours'}"]
    return "—" if value is None else f"{value:,.1f}"
