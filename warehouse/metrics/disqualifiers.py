"""Disqualifiers (docs/metrics.md): exits by outcome and normalised reason, in Pareto order."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from funnelboard.core.errors import UserError
from funnelboard.warehouse.metrics.base import Context, MetricRequest, period_params, ratio
from funnelboard.warehouse.stats import benjamini_hochberg, two_proportion_p_value

BEFORE_WEEKS = 4  # disqualifier_change: the week against the 4 weeks before it
SIGNIFICANT_Q = 0.05
MIN_EXITS = 10


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


def disqualifier_change(ctx: Context, req: MetricRequest) -> list[dict]:
    """What changed in why leads leave: each outcome and reason's share of the exits in the period
    (default: the review week) against its share over the 4 weeks before it (--before), the
    two-proportion test of the two shares and its BH q-value across the reasons (a reason with fewer
    than 10 exits in the two periods together is not tested)."""
    from funnelboard.warehouse.metrics.changes import period as review_period

    req = review_period(ctx, req) if req.start is None and req.end is None else ctx.resolve(req)
    before = req.before or (req.start - timedelta(weeks=BEFORE_WEEKS), req.start)
    if before[0] >= before[1]:
        raise UserError("the before period is empty: its start must be before its end.")
    counts = {}
    for name, (start, end) in (("before", before), ("after", (req.start, req.end))):
        for r in disqualifiers(ctx, replace(req, start=start, end=end, by=None)):
            counts.setdefault((r["outcome"], r["reason"]), {"before": 0, "after": 0})[name] = r["exits"]
    n_before = sum(c["before"] for c in counts.values())
    n_after = sum(c["after"] for c in counts.values())
    keys = sorted(counts)
    # a reason with fewer than MIN_EXITS exits in the two periods together is too rare to test
    p_values = [two_proportion_p_value(counts[k]["after"], n_after, counts[k]["before"], n_before)
                if counts[k]["after"] + counts[k]["before"] >= MIN_EXITS else None for k in keys]
    out = []
    for (outcome, reason), p, q in zip(keys, p_values, benjamini_hochberg(p_values)):
        c = counts[(outcome, reason)]
        share_before, share_after = ratio(c["before"], n_before) or 0.0, ratio(c["after"], n_after) or 0.0
        out.append({
            "outcome": outcome, "reason": reason,
            "exits_before": c["before"], "share_before": share_before, "exits_after": c["after"], "share_after": share_after,
            "delta_share": share_after - share_before, "p_value": p, "q_value": q,
            "significant": q is not None and q < SIGNIFICANT_Q,
            "before_from": before[0], "before_to": before[1], "after_from": req.start, "after_to": req.end,
        })
    # the changes beyond chance first, then by how far the share moved
    out.sort(key=lambda r: (not r["significant"], -abs(r["delta_share"]), r["outcome"], r["reason"]))
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
