"""Disqualifiers (docs/metrics.md): exits by outcome and normalised reason, in Pareto order."""

from __future__ import annotations

from datetime import date

from funnelboard.core.errors import UserError
from funnelboard.warehouse.metrics.base import Context, MetricRequest, period_params


def _exit_grouping(ctx: Context, by: str | None) -> str | None:
    """The fct_spells column behind disqualifiers --by (the output column is named by itself)."""
    if by is None or by == "stage_left":
        return by
    if by == "week":
        return "entered_week"
    if by in ctx.config.segments:
        return by
    raise UserError(f"unknown grouping '{by}'; expected stage_left, week or one of {', '.join(ctx.config.segments)}.")


def disqualifiers(ctx: Context, req: MetricRequest) -> list[dict]:
    """Exits by outcome and normalised reason in Pareto order, optionally --by stage_left, week or a
    segment."""
    req = ctx.resolve(req)
    rows = ctx.run_sql("disqualifiers", req, period_params(req), {"__by__": _exit_grouping(ctx, req.by)})
    if req.by == "stage_left":
        # Groups in funnel order, '(none)' (started in an outcome) first; Pareto order within.
        order = {stage: i for i, stage in enumerate(ctx.config.stages)}
        rows.sort(key=lambda r: order.get(r["grp"], -1))
    out = []
    for r in rows:
        row = {}
        if req.by is not None:
            row[req.by] = date.fromisoformat(r["grp"]) if req.by == "week" else r["grp"]
        row.update({k: r[k] for k in ("outcome", "reason", "exits", "share", "cumulative_share")})
        out.append(row)
    return out


def top_reasons(rows: list[dict], n: int) -> list[tuple[str, str]]:
    """The n (outcome, reason) pairs with the most exits over `rows` (disqualifiers rows, any --by:
    summed over the groups), ties by outcome then reason: the disqualifier trend's lines, the rest
    its "Other reasons"."""
    totals: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["outcome"], r["reason"])
        totals[key] = totals.get(key, 0) + r["exits"]
    return sorted(totals, key=lambda k: (-totals[k], k))[:n]
