"""Conversion by segment (docs/metrics.md): per value with Wilson intervals and BH-corrected tests,
the rate change split into mix and rate, and conversion by lead-score band."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from funnelboard.core.errors import UserError
from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    conversion_identifiers,
    conversion_stages,
    maturity_days,
    period_params,
    ratio,
    reached,
)
from funnelboard.warehouse.stats import (
    benjamini_hochberg,
    two_proportion_p_value,
    wilson_interval,
)

COMPARISON_DAYS = 28  # default length of the before and after periods of mix_vs_rate


SIGNIFICANT_Q = 0.05


def segment_conversion(ctx: Context, req: MetricRequest) -> list[dict]:
    """Conversion per segment value (--segment, --segment2) with Wilson interval, test against the rest
    and BH q-value."""
    req = ctx.resolve(req)
    if req.segment2 is not None and req.segment in (None, req.segment2):
        raise UserError("--segment2 crosses a second column with --segment; give --segment, another column.")
    identifiers = {**conversion_identifiers(ctx, req), "__segment__": req.segment, "__segment2__": req.segment2}
    from_stage, to_stage = conversion_stages(ctx, req)
    params = {**period_params(req), "maturity_days": maturity_days(ctx, from_stage, to_stage, req.as_of, req.window_days)}
    rows = ctx.run_sql("segment_conversion", req, params, identifiers)
    total_n = sum(r["n"] for r in rows)
    total_converted = sum(r["converted"] for r in rows)
    # Each group against the rest of the cohort, then BH across the groups shown.
    p_values = [
        two_proportion_p_value(r["converted"], r["n"], total_converted - r["converted"], total_n - r["n"]) for r in rows
    ]
    q_values = benjamini_hochberg(p_values)
    out = []
    for r, p, q in zip(rows, p_values, q_values):
        low, high = wilson_interval(r["converted"], r["n"])
        # Group columns are named after the segment columns; without --segment the one row is the cohort.
        row = {} if req.segment is None else {req.segment: r["segment"]}
        if req.segment2 is not None:
            row[req.segment2] = r["segment2"]
        row.update({
            "n": r["n"],
            "converted": r["converted"],
            "rate": r["rate"],
            "wilson_low": low,
            "wilson_high": high,
            "too_few": r["n"] < ctx.config.min_sample,
            "p_value": p,
            "q_value": q,
            "significant": q is not None and q < SIGNIFICANT_Q,
            "immature": r["immature"],
            "rate_mature": ratio(r["mature_converted"], r["n"] - r["immature"]),
            "window_days": req.window_days,
        })
        out.append(row)
    return out


def comparison_periods(
    req: MetricRequest, explicit: bool = False, maturity: float = 0.0
) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """(before, after) of a resolved request. After: --after, else the request's period when it was
    given (`explicit`: the page's period), else the 28 days ending `maturity` days (whole days, rounded
    up) before as_of, so that its cohorts have matured. Before: --before, else the period of the same
    length just before after."""
    if req.after:
        after = req.after
    elif explicit:
        after = (req.start, req.end)
    else:
        end = req.as_of + timedelta(microseconds=1) - timedelta(days=math.ceil(maturity))
        after = (end - timedelta(days=COMPARISON_DAYS), end)
    before = req.before or (after[0] - (after[1] - after[0]), after[0])
    for name, (start, stop) in (("before", before), ("after", after)):
        if start >= stop:
            raise UserError(f"the {name} period is empty: its start must be before its end.")
    return before, after


def mix_vs_rate(ctx: Context, req: MetricRequest) -> list[dict]:
    """The change of a conversion rate (default the key rate) between a before and an after period,
    split into segment mix and segment rates (--segment); mature cohorts only unless asked otherwise."""
    explicit = req.start is not None or req.end is not None
    req = ctx.resolve(req)
    from_stage, to_stage = conversion_stages(ctx, req)
    maturity = maturity_days(ctx, from_stage, to_stage, req.as_of, req.window_days)
    before, after = comparison_periods(req, explicit, maturity)
    mature_only = True if req.mature_only is None else req.mature_only
    return run_mix(ctx, req, before, after, maturity, mature_only)


def run_mix(ctx: Context, req: MetricRequest, before: tuple[datetime, datetime], after: tuple[datetime, datetime],
            maturity: float, mature_only: bool, before_as_of: datetime | None = None) -> list[dict]:
    """mix_vs_rate.sql's cohorts of a resolved request's before and after periods (the before one as
    of `before_as_of`, default as_of) split into mix and rate, with the periods on every row."""
    params = {
        "before_start": before[0],
        "before_end": before[1],
        "after_start": after[0],
        "after_end": after[1],
        "as_of": req.as_of,
        "before_as_of": before_as_of or req.as_of,
        "window_days": req.window_days,
        "maturity_days": maturity,
        "mature_only": mature_only,
    }
    identifiers = {**conversion_identifiers(ctx, req), "__segment__": req.segment}
    rows = ctx.run_sql("mix_vs_rate", req, params, identifiers)
    periods = {
        "before_from": before[0], "before_to": before[1], "after_from": after[0], "after_to": after[1],
        "mature_only": mature_only, "window_days": req.window_days, "maturity_days": maturity,
    }
    return [{**row, **periods} for row in _mix_and_rate(rows)]


def _mix_and_rate(rows: list[dict]) -> list[dict]:
    """Shares, rates and the mix / rate effects per segment value, and the (total) row."""
    n_before = sum(r["n_before"] for r in rows)
    n_after = sum(r["n_after"] for r in rows)
    out = []
    for r in rows:
        # A value absent from a period has share 0 and rate 0 there; so has every value of an
        # empty period, which keeps mix + rate = the change of the total rate in every case.
        share_before = ratio(r["n_before"], n_before) or 0.0
        share_after = ratio(r["n_after"], n_after) or 0.0
        rate_before = ratio(r["converted_before"], r["n_before"]) or 0.0
        rate_after = ratio(r["converted_after"], r["n_after"]) or 0.0
        out.append({
            "segment": r["segment"],
            "n_before": r["n_before"],
            "share_before": share_before,
            "rate_before": rate_before,
            "n_after": r["n_after"],
            "share_after": share_after,
            "rate_after": rate_after,
            "mix_effect": (share_after - share_before) * rate_before,
            "rate_effect": share_after * (rate_after - rate_before),
        })
    out.append({
        "segment": "(total)",
        "n_before": n_before,
        "share_before": 1.0 if n_before else 0.0,
        "rate_before": ratio(sum(r["converted_before"] for r in rows), n_before) or 0.0,
        "n_after": n_after,
        "share_after": 1.0 if n_after else 0.0,
        "rate_after": ratio(sum(r["converted_after"] for r in rows), n_after) or 0.0,
        "mix_effect": sum(r["mix_effect"] for r in out),
        "rate_effect": sum(r["rate_effect"] for r in out),
    })
    return out


def score_bands(ctx: Context, req: MetricRequest) -> list[dict]:
    """Conversion by lead-score band (tens) of the leads created in the period: the share reaching the
    key rate's first stage, and the key rate of those."""
    req = ctx.resolve(req)
    if ctx.config.score_column is None:
        return []
    key = ctx.config.review_rate
    rows = ctx.run_sql("score_bands", req, period_params(req), {"__from__": reached(key.from_stage), "__to__": reached(key.to_stage)})
    return [{"band": r["band"], "from_stage": key.from_stage, "to_stage": key.to_stage, **{k: v for k, v in r.items() if k != "band"}} for r in rows]
