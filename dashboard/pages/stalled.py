"""Stalled: open spells past their stage's threshold, newly stalled first, for operations to chase."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, html

from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.tables import body_id, column, lead_columns, paged_body, paged_table_block, streams, windows
from funnelboard.dashboard.views import configured_segments, guarded, view_request
from funnelboard.warehouse.lists import Slice
from funnelboard.warehouse.metrics import run_list, run_metric, stream_list

dash.register_page(__name__, path="/stalled", name="Stalled", order=5, title="funnelboard · stalled leads")

TABLE = "stalled"
SUMMARY = "stalled-summary"
BODY = body_id(TABLE)


def columns(segments) -> list[dict]:
    return [
        column("lead_id", "Lead", width=110) | {"cellClass": "link-cell", "pinned": "left"},
        column("newly_stalled", "New this week", width=120),
        column("stage", "Stage", width=110),
        column("age_days", "Age (days)", kind="number", width=110),
        column("threshold_days", "Threshold (days)", kind="number", width=130),
        column("threshold_source", "Threshold from", width=130),
        *lead_columns(segments),
        column("entered_at", "In stage since (UTC)", width=160),
    ]


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Stalled leads", className="page-title"),
            html.P(
                "Leads whose current stage is older than its threshold: the stage's SLA when set, else the p90 of completed "
                "time in that stage (per segment value with ?segment=channel). Newly stalled this week first. Click a lead "
                "for its timeline.",
                className="page-subtitle",
            ),
            html.Div(id=SUMMARY, className="notice"),
            paged_table_block(TABLE, "Stalled now"),
        ]
    )


@streams(TABLE)
def stalled_rows(search: str | None):
    g = gateway()
    req, _view = view_request(g, search, strict=True)
    return "stalled", stream_list(g, "stalled", req)


@windows(TABLE)
def stalled_window(search: str | None, sl: Slice):
    g = gateway()
    req, _view = view_request(g, search)
    return run_list(g, "stalled", req, sl)


@callback(Output(SUMMARY, "children"), Output(BODY, "children"), Input(URL, "search"))
@guarded(outputs=2)
def update(search: str | None):
    g = gateway()
    req, _view = view_request(g, search)
    counts = run_metric(g, "stalled_summary", req)[0]
    body = paged_body(TABLE, columns(configured_segments()), search)
    if not counts["stalled"]:
        return "No lead is stalled for these filters.", body
    return f"{counts['stalled']:,} leads stalled · {counts['newly_stalled']:,} newly stalled this week", body
