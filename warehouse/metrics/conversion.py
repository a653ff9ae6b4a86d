"""Conversion between stages (docs/metrics.md): the cohort and period views, the SQL rate and the funnel."""

from __future__ import annotations

from dataclasses import replace

from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    period_params,
    ratio,
    reached,
)


def conversion(ctx: Context, req: MetricRequest) -> list[dict]:
    """Cohort conversion between two funnel stages (--from-stage, --to-stage), with maturity and the
    period view."""
    req = ctx.resolve(req)
    cfg = ctx.config
    from_stage = req.from_stage or cfg.stages[1]
    to_stage = req.to_stage or cfg.stages[2]
    rows = ctx.run_sql(
        "conversion",
        req,
        {**period_params(req), "from_stage": from_stage, "to_stage": to_stage},
        {"__from__": reached(from_stage), "__to__": reached(to_stage)},
    )
    row = rows[0]
    row["rate"] = ratio(row["converted"], row["cohort"])
    row["rate_mature"] = ratio(row["mature_converted"], row["mature_cohort"])
    order = ("from_stage", "to_stage", "cohort", "converted", "rate", "immature", "mature_cohort",
             "mature_converted", "rate_mature", "period_from", "period_to", "window_days")
    return [{k: row[k] for k in order}]


def sql_rate(ctx: Context, req: MetricRequest) -> list[dict]:
    """The SQL rate (MQL -> SQL of the MQL cohort) with lead -> SQL beside it."""
    stages = ctx.config.stages
    mql_sql = conversion(ctx, replace(req, from_stage=stages[1], to_stage=stages[2]))[0]
    lead_sql = conversion(ctx, replace(req, from_stage=stages[0], to_stage=stages[2]))[0]
    return [{
        "mqls": mql_sql["cohort"],
        "mql_sqls": mql_sql["converted"],
        "sql_rate": mql_sql["rate"],
        "immature": mql_sql["immature"],
        "rate_mature": mql_sql["rate_mature"],
        "leads": lead_sql["cohort"],
        "lead_sqls": lead_sql["converted"],
        "lead_sql_rate": lead_sql["rate"],
    }]


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
