"""Conversion between stages (docs/metrics.md): the cohort and period views, the key rate and the funnel."""

from __future__ import annotations

from dataclasses import replace

from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    conversion_horizon,
    conversion_stages,
    maturity_days,
    period_params,
    ratio,
    reached,
    rename_key,
)
from funnelboard.warehouse.metrics.segments import segment_conversion
from funnelboard.warehouse.stats import wilson_interval

CONVERSION_COLUMNS = (
    "from_stage", "to_stage", "cohort", "converted", "rate", "immature", "mature_cohort",
    "mature_converted", "rate_mature", "period_from", "period_to", "window_days", "maturity_days",
)


def conversion(ctx: Context, req: MetricRequest) -> list[dict]:
    """Cohort conversion between two funnel stages (--from-stage, --to-stage; default the key rate's),
    with maturity and the period view."""
    req = ctx.resolve(req)
    from_stage, to_stage = conversion_stages(ctx, req)
    params = {
        **period_params(req),
        "from_stage": from_stage,
        "to_stage": to_stage,
        "maturity_days": maturity_days(ctx, from_stage, to_stage, req.as_of, req.window_days),
    }
    row = ctx.run_sql("conversion", req, params, {"__from__": reached(from_stage), "__to__": reached(to_stage)})[0]
    row["rate"] = ratio(row["converted"], row["cohort"])
    row["rate_mature"] = ratio(row["mature_converted"], row["mature_cohort"])
    return [{k: row[k] for k in CONVERSION_COLUMNS}]


def key_rate(ctx: Context, req: MetricRequest) -> list[dict]:
    """The review's key rate (the stages and name [review] key_rate configures) of its cohort,
    with its Wilson interval and maturity, the first stage -> its second stage beside it; per segment
    value with --segment."""
    key = ctx.config.review_rate
    req = replace(req, from_stage=key.from_stage, to_stage=key.to_stage)
    named = {"rate_name": key.name, "from_stage": key.from_stage, "to_stage": key.to_stage}
    if req.segment is not None:
        return [{**named, **rename_key(row, "n", "cohort")} for row in segment_conversion(ctx, req)]
    row = conversion(ctx, req)[0]
    low, high = wilson_interval(row["converted"], row["cohort"]) if row["cohort"] else (None, None)
    first = conversion(ctx, replace(req, from_stage=ctx.config.stages[0]))[0]
    return [{
        **named,
        "cohort": row["cohort"],
        "converted": row["converted"],
        "rate": row["rate"],
        "wilson_low": low,
        "wilson_high": high,
        "immature": row["immature"],
        "rate_mature": row["rate_mature"],
        "window_days": row["window_days"],
        "maturity_days": row["maturity_days"],
        "first_stage": ctx.config.stages[0],
        "leads": first["cohort"],
        "lead_converted": first["converted"],
        "lead_rate": first["rate"],
    }]


def sql_rate(ctx: Context, req: MetricRequest) -> list[dict]:
    """key_rate under its first name: the same rows, whichever stages the key rate joins."""
    return key_rate(ctx, req)


def funnel(ctx: Context, req: MetricRequest) -> list[dict]:
    """Stage-by-stage and cumulative conversion of the period's lead cohort, with period counts."""
    req = ctx.resolve(req)
    stages = ctx.config.stages
    row = ctx.run_sql("funnel", req, period_params(req), {"__first__": reached(stages[0])})[0]
    cohort = row["cohort"]
    out, previous = [], None
    for stage in stages:
        n = row[f"reached_{stage}"]
        out.append({
            "stage": stage,
            "reached": n,
            "step_rate": None if previous is None else ratio(n, previous),
            "cumulative_rate": ratio(n, cohort),
            "period_reached": row[f"period_{stage}"],
        })
        previous = n
    return out


def window_left_out(gateway: Gateway, as_of=None) -> dict | None:
    """What the configured conversion window does to the key rate: the conversions it leaves out and
    all conversions (whole warehouse, by as_of), or None when there is no window or it leaves none out."""
    ctx = Context(gateway)
    req = ctx.resolve(MetricRequest(as_of=as_of))
    if not req.window_days:
        return None
    key = ctx.config.review_rate
    row = conversion_horizon(ctx, key.from_stage, key.to_stage, req.as_of, req.window_days)
    if not row["beyond_window"]:
        return None
    return {"left_out": row["beyond_window"], "conversions": row["conversions"], "window_days": req.window_days,
            "from_stage": key.from_stage, "to_stage": key.to_stage, "rate_name": key.name}
