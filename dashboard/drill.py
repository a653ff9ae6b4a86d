"""Drill-down: a click on a bar, point or cell opens the list of leads behind it (/leads?...).

Each chart's figure puts a `customdata` dict on every mark (dashboard/figures/ says which);
a mapper here turns that dict and the current view into the lead list's query: the stage pair
and side of the cohort (from_stage, to_stage, which, window), and the period or the segment
filter the mark stands for. The list then shows exactly the leads counted in that mark.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from html import unescape

import dash
from dash import Input, Output, State, callback

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.dashboard import state
from funnelboard.dashboard.runtime import URL, gateway

AXES = "_axes"  # a point known only by its (x, y) category values
Mapper = Callable[[dict, FunnelConfig, str | None], dict[str, str | None] | None]
LEADS = "/leads"


def leads_href(search: str | None, changes: dict[str, str | None], config: FunnelConfig) -> str:
    """/leads with the shared part of the current query, then the mark's keys (None drops a key)."""
    return LEADS + state.replace_keys(state.keep_global(search, config.segments), changes)


def week_span(week: str) -> dict[str, str]:
    monday = date.fromisoformat(week[:10])
    return {"from": monday.isoformat(), "to": (monday + timedelta(days=6)).isoformat()}


def funnel_bar(point: dict, config: FunnelConfig, _search: str | None = None) -> dict | None:
    """A cohort-view bar: cohort members (first stage in the period) that reached the stage, no window.
    A period-view bar: the leads that reached the stage in the period (its cohort, whatever came next)."""
    stage = point.get("stage")
    if stage not in config.stages:
        return None
    if point.get("view") == "period":
        following = config.stages[min(config.stages.index(stage) + 1, len(config.stages) - 1)]
        return {"from_stage": stage, "to_stage": following, "which": None, "window": None}
    return {"from_stage": config.stages[0], "to_stage": stage, "which": "converted", "window": "0"}


DEFAULT_SEGMENT = "channel"  # the segments page's column when the address names none


def default_segment(config: FunnelConfig) -> str:
    return DEFAULT_SEGMENT if DEFAULT_SEGMENT in config.segments else next(iter(config.segments))


def segment_point(point: dict, config: FunnelConfig, search: str | None = None) -> dict | None:
    """A segment's rate: that segment's cohort for the page's stage pair (filters added). A matrix
    cell arrives as its axis values (a heatmap click carries no customdata): row = segment, column = segment2."""
    view = state.parse(search, config)
    if AXES in point and view.segment2 and config.segments:
        point = {view.segment or default_segment(config): point[AXES][1], view.segment2: point[AXES][0]}
    values = {k: v for k, v in point.items() if k in config.segments}
    if not values:
        return None
    return {**values, "from_stage": view.from_stage, "to_stage": view.to_stage, "which": None}


def cohort_cell(point: dict, config: FunnelConfig, _search: str | None = None) -> dict | None:
    """A heatmap cell: the week's cohort for the cell's stage pair (from its axis values when the
    click carries no customdata: the week, and the pair's label "MQL → SQL")."""
    if AXES in point:
        from funnelboard.dashboard.theme import stage_label

        labels = {stage_label(s): s for s in config.stages}
        names = str(point[AXES][1]).split(" → ")
        if len(names) != 2 or not all(n in labels for n in names):
            return None
        point = {"week": str(point[AXES][0]), "from_stage": labels[names[0]], "to_stage": labels[names[1]]}
    if "week" not in point or point.get("from_stage") not in config.stages or point.get("to_stage") not in config.stages:
        return None
    return {**week_span(point["week"]), "from_stage": point["from_stage"], "to_stage": point["to_stage"], "which": None}


def weekly_point(point: dict, config: FunnelConfig, _search: str | None = None) -> dict | None:
    """A weekly KPI point: reached_<stage> -> the leads reaching it that week; key_rate -> that week's
    cohort of the key rate's first stage."""
    kpi, week = point.get("kpi", ""), point.get("week")
    if not week:
        return None
    if kpi == "key_rate":
        key = config.review_rate
        return {**week_span(week), "from_stage": key.from_stage, "to_stage": key.to_stage, "which": None}
    stage = kpi.removeprefix("reached_")
    if kpi.startswith("reached_") and stage in config.stages:
        following = config.stages[min(config.stages.index(stage) + 1, len(config.stages) - 1)]
        return {**week_span(week), "from_stage": stage, "to_stage": following, "which": None}
    return None


def click_target(mapper, click: dict | None, search: str | None, href=None) -> str | None:
    """The address a click opens (`href(search, changes, config)`, /leads by default; dashboard/spell_drill.py
    passes its /spells one), or None when the mark has nothing to drill into."""
    if not click or not click.get("points"):
        return None
    first = click["points"][0]
    point = first.get("customdata")
    if not isinstance(point, dict):
        # Dash drops a heatmap cell's customdata (its index is a pair): the cell's axis values stand in
        if "x" not in first or "y" not in first or not isinstance(first.get("z"), (int, float)):
            return None
        point = {AXES: (unescape(str(first["x"])), unescape(str(first["y"])))}
    try:
        config = gateway().config()
    except UserError:
        return None
    changes = mapper(point, config, search)
    return None if changes is None else (href or leads_href)(search, changes, config)


def register(graph_id: str, mapper, href=None, kind: str = "leads") -> None:
    """Clicking a mark of graph_id opens its list: the leads by default, or what `href` addresses."""

    @callback(
        Output(URL, "href", allow_duplicate=True),
        Input(graph_id, "clickData"),
        State(URL, "search"),
        prevent_initial_call=True,
    )
    def open_list(click, search):
        target = click_target(mapper, click, search, href)
        return dash.no_update if target is None else target

    open_list.__name__ = f"open_{kind}_{graph_id.replace('-', '_')}"
