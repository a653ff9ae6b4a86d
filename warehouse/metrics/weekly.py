"""The weekly review's numbers (docs/metrics.md): KPIs per local ISO week against last week and the
4 weeks before, and the segment values that moved most."""

from __future__ import annotations

from datetime import date, timedelta

from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    local_monday,
    reached,
    week_of,
)

DEFAULT_WEEKS = 13  # weekly_kpis without a period start: the 13 weeks ending with as_of's week


def weekly_kpis(ctx: Context, req: MetricRequest) -> list[dict]:
    """Weekly KPIs per local ISO week with the change against last week and the 4 weeks before."""
    weeks = DEFAULT_WEEKS if req.start is None else None  # the default start (earliest event) would be too long
    req = ctx.resolve(req)
    stages = ctx.config.stages
    first_week, last_week = shown_weeks(ctx, req, weeks)
    params = {"as_of": req.as_of, "first_week": first_week, "last_week": last_week, "window_days": req.window_days}
    identifiers = {
        "__first__": reached(stages[0]), "__mql__": reached(stages[1]), "__sql__": reached(stages[2]),
        "__mql_week__": week_of(stages[1]), "__sql_week__": week_of(stages[2]),
    }
    rows = ctx.run_sql("weekly_kpis", req, params, identifiers)
    kpis = ["new_leads", *(reached(s) for s in stages[1:]), "exits", "sql_rate", "immature", "median_days_lead_to_sql"]
    for row in rows:
        row["immature"] = int(row["immature"])  # a KPI like the others: 1 when the week's cohort has immature members
    out = []
    for i, row in enumerate(rows):
        for kpi in kpis:
            value = row[kpi]
            previous = rows[i - 1][kpi] if i >= 1 else None
            before = [rows[j][kpi] for j in range(i - 4, i)] if i >= 4 else []
            mean_4w = sum(before) / 4 if before and all(v is not None for v in before) else None
            out.append({
                "week": row["week"],
                "kpi": kpi,
                "value": value,
                "previous": previous,
                "delta_week": None if value is None or previous is None else value - previous,
                "mean_4w": mean_4w,
                "delta_4w": None if value is None or mean_4w is None else value - mean_4w,
            })
    return out


def review_week(ctx: Context, req: MetricRequest) -> date:
    """Monday (local) of the weekly review's week: as_of's, or the period end's when that is earlier."""
    return local_monday(min(req.as_of, req.end - timedelta(microseconds=1)), ctx.config.timezone)


def shown_weeks(ctx: Context, req: MetricRequest, weeks: int | None) -> tuple[date, date]:
    """The first and last local Mondays of a weekly table: from the period start's week (or, given
    `weeks`, from weeks - 1 weeks before as_of's week) to the review week."""
    tz = ctx.config.timezone
    first = local_monday(req.start, tz) if weeks is None else local_monday(req.as_of, tz) - timedelta(weeks=weeks - 1)
    return first, review_week(ctx, req)


def movers(ctx: Context, req: MetricRequest) -> list[dict]:
    """Top movers: leads reaching MQL and SQL this week and last per segment value (every column, or
    --segment), biggest SQL change first."""
    req = ctx.resolve(req)
    stages = ctx.config.stages
    this_week = review_week(ctx, req)
    out = []
    for column in ([req.segment] if req.segment else ctx.config.segments):
        rows = ctx.run_sql(
            "movers", req, {"as_of": req.as_of, "this_week": this_week},
            {"__segment__": column, "__mql__": reached(stages[1]), "__sql__": reached(stages[2]),
             "__mql_week__": week_of(stages[1]), "__sql_week__": week_of(stages[2])},
        )
        for r in rows:
            out.append({
                "week": this_week,
                "segment": column,
                "value": r["segment"],
                "mqls_this_week": r["mqls_this_week"],
                "mqls_last_week": r["mqls_last_week"],
                "sqls_this_week": r["sqls_this_week"],
                "sqls_last_week": r["sqls_last_week"],
                "delta_sqls": r["sqls_this_week"] - r["sqls_last_week"],
            })
    out.sort(key=lambda r: (-abs(r["delta_sqls"]), r["segment"], r["value"]))
    return out
