"""Stalled: open spells past their stage's threshold, newly stalled first, for operations to chase.

Above the list, a board counts them by stage (funnel order) and owner; each cell is a link that
sets `stage=` and `owner=` in the address, so the list below (and its export) is that cell's leads.
The board itself leaves out the stage and owner it drills to, so it stays whole and marks the cell.
"""

from __future__ import annotations

import math
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from funnelboard.core.config import stage_label
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.tables import body_id, column, lead_columns, paged_body, paged_table_block, slip_columns, streams, windows
from funnelboard.dashboard.theme import fmt_count
from funnelboard.dashboard.views import guarded, view_request
from funnelboard.warehouse.lists import Slice
from funnelboard.warehouse.metrics import Context, run_list, stream_list
from funnelboard.warehouse.metrics.base import OWNER
from funnelboard.warehouse.metrics.stalled import OVER, STAGE, stalled_board, stalled_summary

dash.register_page(__name__, path="/stalled", name="Stalled", order=5, title="funnelboard · stalled leads")

TABLE = "stalled"
SUMMARY = "stalled-summary"
BOARD = "stalled-board"
STAGE_PICKER = "stalled-stage-picker"
BODY = body_id(TABLE)
OWNER_COLUMNS = 12  # owners beyond these (by stalled count) share one "Other" column
ALL, OTHER, NONE = "(all)", "(other)", "(none)"


def columns(config) -> list[dict]:
    """The list's columns; with [attributes] last_activity configured, the last activity and the days since."""
    activity = bool(config and config.last_activity_column)
    business = bool(config and any(s.clock == "business" for s in config.stage_slas))
    return [
        column("lead_id", "Lead", width=110, kind="id") | {"cellClass": "link-cell", "pinned": "left"},
        column("newly_stalled", "New this week", kind="bool", width=120),
        column("stage", "Stage", width=110),
        column("age_days", "Age (days)", kind="days", width=110),
        column("threshold_days", "Threshold (days)", kind="days", width=130),
        column("threshold_source", "Threshold from", width=130),
        column("sla_hours", "SLA (hours)", kind="number", width=110),
        *([column("clock", "SLA clock", width=110)] if business else []),
        column("breached_at", "Over since (UTC)", width=160),
        *lead_columns(config),
        *([column("last_activity_at", "Last activity", width=160),
           column("days_since_activity", "Days since activity", kind="days", width=150)] if activity else []),
        *slip_columns(config),
        column("entered_at", "In stage since (UTC)", width=160),
    ]


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Stalled leads", className="page-title"),
            html.P(
                "Leads whose current stage is older than its threshold: the stage's SLA when set (in hours, business hours "
                "or days, per channel where the config says so), else the p90 of completed time in that stage (per segment "
                "value with ?segment=channel). Newly stalled this week first. Click a board cell for its leads, a lead for "
                "its timeline.",
                className="page-subtitle",
            ),
            html.Div(
                html.Label(
                    [html.Span("Stage", className="filter-label"),
                     dcc.Dropdown(id=STAGE_PICKER, options=[], value=[], multi=True, placeholder="every stage",
                                  className="stalled-stage-picker")],
                    className="stalled-picker",
                ),
                className="stalled-controls",
            ),
            html.Div(id=BOARD, className="panel stalled-board-panel"),
            html.Div(id=SUMMARY, className="notice"),
            paged_table_block(TABLE, "Stalled now"),
        ]
    )


def stalled_request(g, search: str | None, *, strict: bool = False):
    """The view's request with its `?stage=` values as the stall metrics' stage filter."""
    req, view = view_request(g, search, strict=strict)
    return replace(req, filters=(*req.filters, *((STAGE, s) for s in view.stages), *(((OVER, view.over),) if view.over else ()))), view


@streams(TABLE)
def stalled_rows(search: str | None):
    g = gateway()
    req, _view = stalled_request(g, search, strict=True)
    return "stalled", stream_list(g, "stalled", req)


@windows(TABLE)
def stalled_window(search: str | None, sl: Slice):
    g = gateway()
    req, _view = stalled_request(g, search)
    return run_list(g, "stalled", req, sl)


def cell_search(search: str | None, stage: str | None, owner: str | None) -> str:
    """The address of a board cell's list: this one with its stage and owner replaced (None: left out)."""
    pairs = [(k, v) for k, v in parse_qsl((search or "").lstrip("?")) if k not in (STAGE, OWNER)]
    pairs += [(k, v) for k, v in ((STAGE, stage), (OWNER, owner)) if v is not None]
    return "?" + urlencode(pairs) if pairs else ""


def board_table(rows: list[dict], search: str | None, *, stages_shown: tuple[str, ...], owner: str | None,
                has_owner: bool, pooled: int) -> list:
    """The stage x owner board from `stalled_board` rows: a table of links, the chosen cell marked."""
    owners = [r["owner"] for r in rows if r["stage"] == ALL]
    owners = [o for o in owners if o == ALL] + [o for o in owners if o != ALL]  # the total first: seen without scrolling
    stages = [r["stage"] for r in rows if r["owner"] == ALL]
    by_cell = {(r["stage"], r["owner"]): r for r in rows}
    chosen = (stages_shown[0] if len(stages_shown) == 1 else ALL if not stages_shown else None, owner or ALL)

    def heading(name: str) -> str:
        return {ALL: "Total", OTHER: "Other", NONE: "No owner"}.get(name, name)

    def cell(stage: str, who: str):
        r = by_cell.get((stage, who))
        total = ALL in (stage, who)
        classes = "board-cell" + (" board-total" if total else "") + (" board-chosen" if (stage, who) == chosen else "")
        if r is None:
            return html.Td("·", className=classes + " board-empty")
        over = r["median_over_days"]
        parts = [
            html.Span(fmt_count(r["stalled"]), className="board-count"),
            html.Span(f"+{fmt_count(r['newly_stalled'])} new" if r["newly_stalled"] else "", className="board-new"),
            html.Span(f"median {math.floor(over):,} d over" if over is not None else "", className="board-over"),
        ]
        label = (f"{fmt_count(r['stalled'])} stalled in {heading(stage) if stage != ALL else 'every stage'}"
                 f" for {heading(who) if who != ALL else 'every owner'}")
        if who in (OTHER, NONE) or (who != ALL and not has_owner):
            # no address names these owners: the cell is a count, not a link
            return html.Td(html.Span(parts, className="board-link", title=label), className=classes)
        href = "/stalled" + cell_search(search, None if stage == ALL else stage, None if who == ALL else who)
        return html.Td(dcc.Link(parts, href=href, className="board-link", title=label), className=classes)

    header = html.Tr([html.Th("Stage", scope="col", className="board-corner"),
                      *[html.Th(heading(o), scope="col", className="board-owner", title=heading(o)) for o in owners]])
    body = [
        html.Tr([html.Th(stage_label(s) if s != ALL else "Total", scope="row", className="board-stage"), *[cell(s, o) for o in owners]],
                className="board-total-row" if s == ALL else None)
        for s in stages
    ]
    note = (f"Owners by stalled leads, most first; the first {OWNER_COLUMNS} have a column, the other {pooled} share Other. "
            if pooled else "Owners by stalled leads, most first. ")
    note += "Each cell: stalled leads, newly stalled this week, median days over the threshold. A cell opens its list below."
    return [
        html.H2("Stalled by stage and owner", className="panel-title"),
        html.P(note, className="table-note"),
        html.Div(html.Table([html.Thead(header), html.Tbody(body)], className="stalled-board"), className="board-scroll"),
    ]


@callback(Output(SUMMARY, "children"), Output(BODY, "children"), Input(URL, "search"))
@guarded(outputs=2)
def update(search: str | None):
    g = gateway()
    req, view = stalled_request(g, search)
    counts = stalled_summary(Context(g), req)[0]
    body = paged_body(TABLE, columns(g.config()), search)
    kind = {"sla": " past their stage SLA", "p90": " past their stage's p90 (no SLA)"}.get(view.over or "", "")
    if not counts["stalled"]:
        return f"No lead is stalled{kind} for these filters.", body
    return f"{counts['stalled']:,} leads stalled{kind} · {counts['newly_stalled']:,} newly stalled this week", body


@callback(Output(BOARD, "children"), Output(STAGE_PICKER, "options"), Output(STAGE_PICKER, "value"), Input(URL, "search"))
@guarded(outputs=3)
def update_board(search: str | None):
    """The board of the view without the stage and owner it drills to, and the stage picker."""
    g = gateway()
    req, view = stalled_request(g, search)
    ctx = Context(g)
    owner = next((v for c, v in req.filters if c == OWNER), None)
    whole = replace(req, filters=tuple((c, v) for c, v in req.filters if c not in (STAGE, OWNER)))
    rows = stalled_board(ctx, whole, owner_columns=OWNER_COLUMNS)
    pooled = next((r["owners"] for r in rows if r["stage"] == ALL and r["owner"] == OTHER), 0)
    board = (board_table(rows, search, stages_shown=view.stages, owner=owner, has_owner=OWNER in ctx.config.segments, pooled=pooled)
             if rows else [html.P("No lead is stalled for these filters.", className="table-note")])
    options = [{"label": stage_label(s), "value": s} for s in ctx.config.stages[:-1]]
    return board, options, list(view.stages)


@callback(
    Output(URL, "href", allow_duplicate=True),
    Input(STAGE_PICKER, "value"),
    State(URL, "pathname"),
    State(URL, "search"),
    prevent_initial_call=True,
)
def pick_stages(stages: list[str] | None, pathname: str | None, search: str | None):
    """The stage picker writes `?stage=` (one per stage chosen), other keys kept."""
    pairs = [(k, v) for k, v in parse_qsl((search or "").lstrip("?")) if k != STAGE]
    new = pairs + [(STAGE, s) for s in stages or []]
    if sorted(new) == sorted(parse_qsl((search or "").lstrip("?"))):
        return no_update
    return (pathname or "/stalled") + ("?" + urlencode(new) if new else "")
