"""Time-in-stage curves (docs/metrics.md): Kaplan-Meier survival per stage and the duration distribution.

Both read the spells `time_in_stage` reads (entered in the period, open ones censored at as_of,
calendar or business days) and stay small on any warehouse: the survival curve of a stage is
evaluated on at most MAX_SURVIVAL_STEPS + 1 grid points (plus its KM quantile times), the
distribution has at most MAX_BINS bins per stage (plus one open-ended bin). The grid step and the
bin width are the smallest of GRID_WIDTHS that covers the stage's p99 duration within that budget.
"""

from __future__ import annotations

from warehouse.metrics import Context, MetricRequest, _period_params, _rename, business_day_clock, register

HOUR = 1 / 24
# Candidate grid steps and bin widths, in (calendar or business) days: 1 h, 3 h, 6 h, 12 h, 1 d, 2 d, 3 d, 1 w, 2 w, ~1 m, ...
GRID_WIDTHS = (HOUR, 0.125, 0.25, 0.5, 1.0, 2.0, 3.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0, 730.0)
MAX_SURVIVAL_STEPS = 200
MAX_BINS = 40
# A duration within this fraction of a step of a grid point or bin edge counts as on it: it absorbs
# the floating-point noise of the business-day clock, never a real difference (1e-6 of an hour is 3.6 ms).
GRID_SLACK = 1e-6


def _time_params(ctx: Context, req: MetricRequest) -> dict:
    return {
        **_period_params(req),
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
        "widths": list(GRID_WIDTHS),
        "slack": GRID_SLACK,
    }


def _segment_column(rows: list[dict], segment: str | None) -> list[dict]:
    """The segment column named after the attribute (as time_in_stage), or dropped without one."""
    if segment is not None:
        return [_rename(r, "segment", segment) for r in rows]
    return [{k: v for k, v in r.items() if k != "segment"} for r in rows]


def survival(ctx: Context, req: MetricRequest) -> list[dict]:
    req = ctx.resolve(req)
    params = {**_time_params(ctx, req), "max_steps": MAX_SURVIVAL_STEPS}
    rows = ctx.run_sql("survival", req, params, {"__segment__": req.segment})
    return _segment_column(rows, req.segment)


def duration_distribution(ctx: Context, req: MetricRequest) -> list[dict]:
    req = ctx.resolve(req)
    params = {**_time_params(ctx, req), "max_bins": MAX_BINS}
    rows = ctx.run_sql("duration_distribution", req, params, {"__segment__": req.segment})
    return _segment_column(rows, req.segment)


register(
    "survival",
    "Kaplan-Meier share of spells still in each stage after t days, on a grid of at most 201 points up to the p99 (--segment, --business-days).",
    survival,
)
register(
    "duration_distribution",
    "Spells per stage in at most 40 duration bins: completed by duration, open by age so far (--segment, --business-days).",
    duration_distribution,
)
