"""Stalled leads (docs/metrics.md): open spells older than their stage's SLA or p90.

The stall metrics run their query without the request's filters, because a stage's threshold
belongs to the whole warehouse, and apply the filters to its rows in an outer SELECT: a filtered
list of stalled leads is part of the unfiltered one. The list is sorted, cut and counted in SQL
(warehouse/lists.py).
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from funnelboard.warehouse.build import attribute_columns
from funnelboard.warehouse.lists import EVERYTHING, Slice, cut, ordering, with_total
from funnelboard.warehouse.metrics.base import (
    OWNER,
    Context,
    MetricRequest,
    at_latest_event,
)


def stall_thresholds(ctx: Context, req: MetricRequest) -> list[dict]:
    """The thresholds of stall_thresholds.sql for this as_of and segment column: computed without the
    request's filters (a stage's threshold belongs to the whole warehouse), once per published file."""
    params = {"as_of": req.as_of, "segmented": req.segment is not None}

    def compute() -> list[dict]:
        return ctx.run_sql("stall_thresholds", replace(req, filters=(), scope=()), params, {"__segment__": req.segment})

    return ctx.per_file(("stall_thresholds", req.as_of, req.segment), compute)


def _stall_query(ctx: Context, req: MetricRequest) -> tuple[exp.Select, dict]:
    """The stall query, filtered, as a subquery `s` (the stalled list and its summary select from it)."""
    thresholds = stall_thresholds(ctx, req)
    params = {
        "as_of": req.as_of,
        "threshold_stages": [t["stage"] for t in thresholds],
        "threshold_segments": [t["segment"] for t in thresholds],
        "threshold_days": [t["threshold_days"] for t in thresholds],
        "threshold_sources": [t["threshold_source"] for t in thresholds],
    }
    tree, bound = ctx.compile("stalled", req, params, {"__segment__": req.segment})
    if at_latest_event(ctx, req.as_of):  # fct_open_spells then holds every candidate
        tree = exp.replace_tables(tree, {"fct_spells": "fct_open_spells"})
    return exp.select().from_(tree.subquery("s")), bound


def stalled_columns(ctx: Context) -> dict[str, exp.Expression]:
    """The stalled list's output columns (the sort allow-list) over the stall query's rows."""
    has_owner = OWNER in attribute_columns(ctx.config)
    columns: dict[str, exp.Expression] = {
        name: exp.column(name, table="s")
        for name in ("lead_id", "stage", "entered_at", "age_days", "threshold_days", "threshold_source", "newly_stalled")
    }
    columns[OWNER] = exp.column(OWNER, table="s", quoted=True) if has_owner else exp.cast(exp.null(), "varchar")
    columns.update({c: exp.column(c, table="s", quoted=True) for c in ctx.config.segments if c != OWNER})
    columns["amount"] = exp.column("amount_value", table="s")
    return columns


STALLED_ORDER = [("newly_stalled", True), ("age_days", True), ("lead_id", False)]


def stalled_query(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING):
    """The stalled list's query for a window (newly stalled first, then by age), its values and row shaper."""
    req = ctx.resolve(req)
    select, params = _stall_query(ctx, req)
    columns = stalled_columns(ctx)
    select = select.select(*(exp.alias_(e, name, quoted=True) for name, e in columns.items()), copy=False)
    select = select.where(exp.column("stalled", table="s"), append=True, copy=False)
    select = select.order_by(*ordering(sl, columns, STALLED_ORDER), copy=False)
    cut(select, sl, params)
    return select, params, dict


def stalled_page(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING) -> tuple[list[dict], int]:
    """Stalled spells of the window and the list's length."""
    select, params, _shape = stalled_query(ctx, req, sl)
    rows = ctx.run_tree("stalled", select, params)
    return with_total(rows, sl, lambda: stalled_summary(ctx, req)[0]["stalled"])


def stalled(ctx: Context, req: MetricRequest) -> list[dict]:
    """Open spells older than their stage's SLA or p90 (per segment value with --segment), newest
    stalls flagged."""
    return stalled_page(ctx, req)[0]


def stalled_summary(ctx: Context, req: MetricRequest) -> list[dict]:
    """Stalled spells now, newly stalled and recovered in the last 7 days."""
    req = ctx.resolve(req)
    select, params = _stall_query(ctx, req)
    counts = [
        exp.alias_(exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=exp.column(k, table="s"))), k)
        for k in ("stalled", "newly_stalled", "recovered")
    ]
    return ctx.run_tree("stalled_summary", select.select(*counts, copy=False), params)
