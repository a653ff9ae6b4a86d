"""Time in stage (docs/metrics.md): quantiles per stage, Kaplan-Meier survival curves and the
duration distribution.

All three read the same spells (funnel stages but the last, entered in the period, open ones
censored at as_of, calendar or business days) and stay small on any warehouse: the survival curve
of a stage is evaluated on at most MAX_SURVIVAL_STEPS + 1 grid points (plus its KM quantile times),
the distribution has at most MAX_BINS bins per stage (plus one open-ended bin). The grid step and
the bin width are the smallest of GRID_WIDTHS that covers the stage's p99 duration within that budget.

Two paths compute the same rows. On DuckDB (a gateway with `array`), `stage_durations.sql` hands
back the spells as one sorted key array and warehouse/durations.py walks it: tens of milliseconds
where the SQL estimator sorts for seconds at 10M events. Elsewhere (Spark), and for a request whose
groups do not fit the key, the metrics' own SQL files (`time_in_stage.sql`, `survival.sql`,
`duration_distribution.sql`) compute them. Tests hold the two paths to 1e-9.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from funnelboard.core.errors import UserError
from funnelboard.warehouse import durations
from funnelboard.warehouse.gateway import Result, param_key
from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    business_day_clock,
    conversion_identifiers,
    period_params,
    rename_key,
)

HOUR = 1 / 24
# Candidate grid steps and bin widths, in (calendar or business) days: 1 h, 3 h, 6 h, 12 h, 1 d, 2 d, 3 d, 1 w, 2 w, ~1 m, ...
GRID_WIDTHS = (HOUR, 0.125, 0.25, 0.5, 1.0, 2.0, 3.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0, 730.0)
MAX_SURVIVAL_STEPS = 200
MAX_BINS = 40
# A duration within this fraction of a step of a grid point or bin edge counts as on it: it absorbs
# the floating-point noise of the business-day clock, never a real difference (1e-6 of an hour is 3.6 ms).
GRID_SLACK = 1e-6
FAST_PATH = True  # tests turn it off to compare the two paths
TIME_COLUMNS = ("n_completed", "n_open", "p50", "p75", "p90", "km_p50", "km_p75", "km_p90")


def _time_params(ctx: Context, req: MetricRequest) -> dict:
    return {
        **period_params(req),
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
        "widths": list(GRID_WIDTHS),
        "slack": GRID_SLACK,
    }


def _segment_column(rows: list[dict], segment: str | None) -> list[dict]:
    """The segment column named after the attribute (as time_in_stage), or dropped without one."""
    if segment is not None:
        return [rename_key(r, "segment", segment) for r in rows]
    return [{k: v for k, v in r.items() if k != "segment"} for r in rows]


def segment_domain(ctx: Context, segment: str) -> list[str] | None:
    """A segment column's values as the time queries group them ('(none)' for a missing one), sorted;
    read once per published file; None when they are too many for the key (the SQL path then).
    `segment` is from the configured allow-list (Context.resolve)."""
    column = exp.column(segment, table="l", quoted=True).sql("duckdb")

    def read() -> list[str] | None:
        sql = f"select distinct coalesce(cast({column} as varchar), '(none)') as v from fct_leads as l"
        result = ctx.gateway.query(sql, row_cap=durations.GROUP_LIMIT)
        return None if result.truncated else sorted({"(none)", *(v for (v,) in result.rows)})

    return ctx.per_file(("segment_domain", segment), read)


def _rows(ctx: Context, name: str, req: MetricRequest, params: dict, shape: Callable[[list[durations.Group], dict[int, str]], list[dict]]) -> list[dict]:
    """The metric's rows by the fast path where it applies, else by its SQL file."""
    fast = FAST_PATH and hasattr(ctx.gateway, "array")
    segments = (["(all)"] if req.segment is None else segment_domain(ctx, req.segment)) if fast else None
    if segments is None or not durations.fits(len(ctx.config.stages), len(segments)):
        return ctx.run_sql(name, req, params, {"__segment__": req.segment})
    key_params = {k: params[k] for k in ("start", "end", "as_of", "business_days", "as_of_bd")}
    tree, bound = ctx.compile(
        "stage_durations", req, {**key_params, "segments": segments, "segment_count": len(segments)}, {"__segment__": req.segment}
    )
    sql = tree.sql(dialect="duckdb")
    names = {i: stage for i, stage in enumerate(ctx.config.stages, start=1)}
    orders = list(range(1, len(ctx.config.stages)))  # funnel stages but the last

    def read() -> list[durations.Group]:
        return durations.groups(ctx.gateway.array(sql, bound), segments, orders)

    def compute() -> Result:
        # the page's three charts read the same spells: one read serves them (Gateway.shared)
        rows = shape(ctx.gateway.shared(("stage_durations", sql, param_key(bound)), read), names)
        columns = list(rows[0]) if rows else []
        return Result(columns, [tuple(r.values()) for r in rows])

    result = ctx.gateway.remembered(("durations", name, sql, param_key(bound), param_key(params)), compute)
    return result.dicts()


def time_in_stage(ctx: Context, req: MetricRequest) -> list[dict]:
    """Completed-only and Kaplan-Meier p50/p75/p90 of time in each stage (--segment, --business-days)."""
    req = ctx.resolve(req)
    params = {
        **period_params(req),
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
    }
    rows = _rows(ctx, "time_in_stage", req, params, durations.time_in_stage_rows)
    if req.segment is not None:
        return [rename_key(r, "segment", req.segment) for r in rows]
    # Without a segment every stage gets a row, empty ones included (as stage_accounting).
    by_stage = {r["stage"]: r for r in rows}
    empty = {"n_completed": 0, "n_open": 0, **{k: None for k in TIME_COLUMNS[2:]}}
    out = []
    for stage in ctx.config.stages[:-1]:
        row = by_stage.get(stage, {"stage": stage, **empty})
        out.append({k: v for k, v in row.items() if k != "segment"})
    return out


def survival(ctx: Context, req: MetricRequest) -> list[dict]:
    """Kaplan-Meier share of spells still in each stage after t days, on a grid of at most 201 points
    up to the p99 (--segment, --business-days)."""
    req = ctx.resolve(req)
    params = {**_time_params(ctx, req), "max_steps": MAX_SURVIVAL_STEPS}

    def shape(gs, names):
        return durations.survival_rows(gs, names, widths=GRID_WIDTHS, max_steps=MAX_SURVIVAL_STEPS, slack=GRID_SLACK)

    return _segment_column(_rows(ctx, "survival", req, params, shape), req.segment)


def duration_distribution(ctx: Context, req: MetricRequest) -> list[dict]:
    """Spells per stage in at most 40 duration bins: completed by duration, open by age so far
    (--segment, --business-days)."""
    req = ctx.resolve(req)
    params = {**_time_params(ctx, req), "max_bins": MAX_BINS}

    def shape(gs, names):
        return durations.distribution_rows(gs, names, widths=GRID_WIDTHS, max_bins=MAX_BINS, slack=GRID_SLACK)

    return _segment_column(_rows(ctx, "duration_distribution", req, params, shape), req.segment)


def time_to_sql(ctx: Context, req: MetricRequest) -> list[dict]:
    """Of the key rate's cohort (or --from-stage to --to-stage): the share of mature members reaching the
    second stage within N days (--within-days) and the median days it took."""
    req = ctx.resolve(req)
    if req.within_days < 0:
        raise UserError("the number of days to SQL must be 0 or more.")
    params = {**period_params(req), "within_days": req.within_days}
    return ctx.run_sql("time_to_sql", req, params, conversion_identifiers(ctx, req))


def time_in_stage_by_lead(ctx: Context, req: MetricRequest) -> list[dict]:
    """Per lead and stage: spells, latest and cumulative days in the stage (open spells so far)."""
    req = ctx.resolve(req)
    params = {
        "as_of": req.as_of,
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
    }
    return ctx.run_sql("time_in_stage_by_lead", req, params, {"__segment__": None})
