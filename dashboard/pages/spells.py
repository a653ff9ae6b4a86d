"""Spells: the list behind a mark that counts spells (a stage-accounting bar, a disqualifier bar or
point, a duration-histogram bar, a survival-curve point), one row per stay of a lead in a stage,
each lead a link to its timeline. The address carries the mark's filters (warehouse/metrics/spells.py)."""

from __future__ import annotations

from dataclasses import replace

import dash
from dash import Input, Output, callback, html

from funnelboard.dashboard import theme
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.tables import body_id, column, lead_columns, paged_body, paged_table_block, streams, windows
from funnelboard.dashboard.views import configured, guarded, view_request
from funnelboard.warehouse.lists import Slice
from funnelboard.warehouse.metrics import Context, run_list, stream_list
from funnelboard.warehouse.metrics.spells import spells_count

dash.register_page(__name__, path="/spells", name="Spells", order=8, hidden=True, title="funnelboard · spells")

TABLE = "spells"
HEADER = "spells-header"
BODY = body_id(TABLE)
NEXT_WORDS = {"advanced": "advanced", "exited": "exited", "regressed": "went back", "returned": "returned to the funnel",
              "terminal": "ended there", "open": "still open", "closed": "left the stage"}


def columns(config) -> list[dict]:
    return [
        column("lead_id", "Lead", width=110, kind="id") | {"cellClass": "link-cell", "pinned": "left"},
        column("stage", "Stage", width=110),
        column("entered_at", "Entered (UTC)", width=150),
        column("left_at", "Left (UTC)", width=150),
        column("left_to", "Left to", width=110),
        column("next_kind", "What came next", width=130),
        column("reason", "Reason", width=150),
        column("stage_left", "Stage left", width=110),
        column("duration_days", "Days in stage", kind="number", width=120),
        *lead_columns(config),
    ]


def spells_request(g, search: str | None, *, strict: bool = False):
    """The view's request with the spell filters of its address (stage, outcome, reason, next, ...)."""
    req, view = view_request(g, search, strict=strict)
    filters = (*req.filters, *(("stage", s) for s in view.stages), *view.spell_filters)
    return replace(req, filters=filters, outcome=view.outcome, reason=view.reason, business_days=view.business_days), view


def _days(text: str) -> str:
    return f"{float(text):g}"


def describe(view) -> str:
    """The list's filters as words: stage, outcome, reason, what came next, length, week, lead filters."""
    marks = dict(view.spell_filters)
    parts = []
    stages = [theme.stage_label(s) for s in view.stages] + ([view.outcome] if view.outcome else [])
    if stages:
        parts.append("in " + " or ".join(stages))
    if "next" in marks:
        parts.append(NEXT_WORDS.get(marks["next"], marks["next"]) + (f" to {marks['left_to']}" if "left_to" in marks else ""))
    elif "left_to" in marks:
        parts.append(f"left to {marks['left_to']}")
    if view.reason:
        parts.append(f"reason: {view.reason}")
    if "other_than_top" in marks:
        parts.append(f"exits for reasons outside the top {marks['other_than_top']}")
    if "stage_left" in marks:
        parts.append(f"stage left: {marks['stage_left']}")
    if "week" in marks:
        parts.append(f"entered in the week of {marks['week']}")
    unit = "business days" if view.business_days else "days"
    if "min_days" in marks or "max_days" in marks:
        low, high = marks.get("min_days"), marks.get("max_days")
        if low is not None and high is not None:
            parts.append(f"{_days(low)} to under {_days(high)} {unit} in the stage")
        else:
            parts.append(f"at least {_days(low)} {unit} in the stage" if low is not None else f"under {_days(high)} {unit} in the stage")
    if "longer_than" in marks:
        parts.append(f"still in the stage after {_days(marks['longer_than'])} {unit}")
    parts += [f"{k.replace('_', ' ')} = {v}" for k, v in view.filters]
    return " · ".join(parts)


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Spells", className="page-title"),
            html.P(
                "Stays of leads in a stage, entered in the period: the spells a chart's bar or point counts. "
                "A completed spell's length is its duration, an open one's its age so far. Click a lead for its timeline.",
                className="page-subtitle",
            ),
            html.Div(id=HEADER),
            paged_table_block(TABLE, "Spells"),
        ]
    )


@streams(TABLE)
def spell_rows(search: str | None):
    g = gateway()
    req, _view = spells_request(g, search, strict=True)
    return "spells", stream_list(g, "spells", req)


@windows(TABLE)
def spell_window(search: str | None, sl: Slice):
    g = gateway()
    req, _view = spells_request(g, search)
    return run_list(g, "spells", req, sl)


@callback(Output(HEADER, "children"), Output(BODY, "children"), Input(URL, "search"))
@guarded(outputs=2)
def update(search: str | None):
    g = gateway()
    req, view = spells_request(g, search)
    counts = spells_count(Context(g), req)
    n, leads = counts["spells"], counts["leads"]
    line = f"{n:,} spell{'' if n == 1 else 's'} of {leads:,} lead{'' if leads == 1 else 's'}"
    what = describe(view)
    header = html.P([html.Strong(line, className="spells-count"), f" · {what}" if what else ""], className="notice spells-what")
    return header, paged_body(TABLE, columns(configured()), search)
