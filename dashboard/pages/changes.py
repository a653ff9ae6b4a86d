"""Changes: the moves behind one count of the weekly review's "changes this week" table or of a KPI
card (/changes?change=advanced&stage=mql&from=...&to=...), each lead a link to its timeline."""

from __future__ import annotations

from dataclasses import replace

import dash
from dash import Input, Output, callback, html

from funnelboard.dashboard import theme
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.tables import body_id, column, lead_columns, paged_body, paged_table_block, streams, windows
from funnelboard.dashboard.views import configured, guarded, view_request
from funnelboard.warehouse.lists import Slice
from funnelboard.warehouse.metrics import MetricRequest, run_list, stream_list

dash.register_page(__name__, path="/changes", name="Changes", order=7, hidden=True, title="funnelboard · changes")

TABLE = "changes"
HEADER = "changes-header"
BODY = body_id(TABLE)

WHAT = {
    None: "Every change",
    "entered": "Entered {stage}",
    "advanced": "Advanced from {stage} to a later stage",
    "went_back": "Went back from {stage} to an earlier stage",
    "exited": "Exited the funnel from {stage}",
    "newly_stalled": "Newly stalled in {stage}",
    "recovered": "Recovered: left {stage} after stalling there",
    "new": "New leads (created)",
    "won": "Won",
    "lost": "Lost",
    "closed": "Closed, won or lost",
}


def change_request(g, search: str | None, *, strict: bool = False) -> tuple[MetricRequest, object]:
    """The change_leads request an address asks for: the view's period and filters, the change kind,
    its stage (one ?stage=), and an exit's outcome and reason."""
    req, view = view_request(g, search, strict=strict)
    stage = view.stages[0] if len(view.stages) == 1 else None
    return replace(req, change=view.change, stage=stage, outcome=view.outcome, reason=view.reason), view


def columns(config) -> list[dict]:
    return [
        column("lead_id", "Lead", width=110) | {"cellClass": "link-cell", "pinned": "left"},
        column("change", "Change", width=120),
        column("stage", "At stage", width=120),
        column("to_stage", "To", width=120),
        column("changed_at", "When (UTC)", width=160),
        column("reason", "Reason", width=160),
        column("stage_now", "Stage now", width=120),
        *lead_columns(config),
    ]


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Changes", className="page-title"),
            html.Div(id=HEADER),
            paged_table_block(TABLE, "Changes"),
        ]
    )


@streams(TABLE)
def change_rows(search: str | None):
    g = gateway()
    req, _view = change_request(g, search, strict=True)
    return "changes", stream_list(g, "change_leads", req)


@windows(TABLE)
def change_window(search: str | None, sl: Slice):
    g = gateway()
    req, _view = change_request(g, search)
    return run_list(g, "change_leads", req, sl)


def describe(req: MetricRequest) -> str:
    """What the list holds, in words: "Advanced from MQL to a later stage", "Exited ... (lost: Price)"."""
    what = WHAT.get(req.change, "Every change").format(stage=theme.stage_label(req.stage) if req.stage else "any stage")
    if req.outcome or req.reason:
        what += " (" + ": ".join(x for x in (req.outcome, req.reason) if x) + ")"
    return what


@callback(Output(HEADER, "children"), Output(BODY, "children"), Input(URL, "search"))
@guarded(outputs=2)
def update(search: str | None):
    g = gateway()
    req, view = change_request(g, search)
    scope = [f"{k.replace('_', ' ')} = {v}" for k, v in view.filters]
    period = "in the review week" if view.start is None and view.end is None else \
        f"from {view.start or 'the first event'} to {view.end or 'the latest event'}"
    header = html.P(
        [
            f"{describe(req)} {period}", (" · " + ", ".join(scope)) if scope else "", ". ",
            html.Span("One row per change: a lead that made the same move twice is listed twice.", className="muted"),
        ],
        className="page-subtitle",
    )
    return header, paged_body(TABLE, columns(configured()), search)
