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
from datetime import datetime, timedelta

import numpy as np
from sqlglot import exp

from funnelboard.core.errors import UserError
from funnelboard.warehouse import durations
from funnelboard.warehouse.gateway import Result, param_key
from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    business_day_clock,
    conversion_identifiers,
    conversion_stages,
    period_params,
    rename_key,
    segment_column,
)
from funnelboard.warehouse.stats import benjamini_hochberg

HOUR = 1 / 24
# Candidate grid steps and bin widths, in (calendar or business) days: 1 h, 3 h, 6 h, 12 h, 1 d, 2 d, 3 d, 1 w, 2 w, ~1 m, ...
GRID_WIDTHS = (HOUR, 0.125, 0.25, 0.5, 1.0, 2.0, 3.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0, 730.0)
MAX_SURVIVAL_STEPS = 200
MAX_BINS = 40
# A duration within this fraction of a step of a grid point or bin edge counts as on it: it absorbs
# the floating-point noise of the business-day clock, never a real difference (1e-6 of an hour is 3.6 ms).
GRID_SLACK = 1e-6
FAST_PATH = True  # tests turn it off to compare the two paths
CHANGE_DAYS = 28  # time_in_stage_change without a period: the 28 days to as_of against the 28 before
SIGNIFICANT_Q = 0.05
US = timedelta(microseconds=1)
TIME_COLUMNS = ("n_completed", "n_open", "p50", "p75", "p90", "km_p50", "km_p75", "km_p90")


def _time_params(ctx: Context, req: MetricRequest) -> dict:
    return {
        **period_params(req),
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
        "widths": list(GRID_WIDTHS),
        "slack": GRID_SLACK,
    }


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


def time_in_stage_change(ctx: Context, req: MetricRequest) -> list[dict]:
    """Time in each funnel stage (but the last) of the spells entered in the period (default: the 28
    days to as_of) against those entered in the period of the same length before it (--before),
    each seen at its own moment (as_of, and as_of moved back by the gap between the periods' starts:
    the same age): the Kaplan-Meier p50 of each, the log-rank test and its BH q-value across the stages
    (--business-days)."""
    explicit = req.start is not None or req.end is not None
    req = ctx.resolve(req)
    after = (req.start, req.end) if explicit else (req.as_of + US - timedelta(days=CHANGE_DAYS), req.as_of + US)
    before = req.before or (after[0] - (after[1] - after[0]), after[0])
    if before[0] >= before[1]:
        raise UserError("the before period is empty: its start must be before its end.")
    before_as_of = req.as_of - (after[0] - before[0])
    names = {i: stage for i, stage in enumerate(ctx.config.stages, start=1)}
    groups = [{g.stage_order: g for g in _stage_groups(ctx, req, period, as_of)}
              for period, as_of in ((before, before_as_of), (after, req.as_of))]
    rows, tests = [], []
    for order in range(1, len(ctx.config.stages)):
        pair = [gs.get(order) or durations.Group(order, "(all)", np.zeros(0, np.int64), np.zeros(0, bool)) for gs in groups]
        (b, a) = (durations.time_in_stage_rows([g], names)[0] if g.us.size else dict.fromkeys(TIME_COLUMNS, 0) | {"km_p50": None}
                  for g in pair)
        test = durations.log_rank(*pair)
        tests.append(test)
        rows.append({
            "stage": names[order],
            "n_before": b["n_completed"] + b["n_open"], "open_before": b["n_open"], "km_p50_before": b["km_p50"],
            "n_after": a["n_completed"] + a["n_open"], "open_after": a["n_open"], "km_p50_after": a["km_p50"],
            "observed_after": int(test.observed), "expected_after": test.expected, "p_value": test.p_value,
        })
    for row, test, q in zip(rows, tests, benjamini_hochberg([t.p_value for t in tests])):
        changed = q is not None and q < SIGNIFICANT_Q
        row.update({
            "q_value": q,
            "change": ("slower" if test.observed < test.expected else "faster") if changed else "none",
            "before_from": before[0], "before_to": before[1], "before_as_of": before_as_of,
            "after_from": after[0], "after_to": after[1], "as_of": req.as_of,
        })
    return rows


def _stage_groups(ctx: Context, req: MetricRequest, period: tuple[datetime, datetime], as_of: datetime) -> list[durations.Group]:
    """The spells time_in_stage reads (funnel stages but the last) entered in `period`, seen at
    `as_of`, one group per stage: stage_durations.sql's keys, by the gateway's array where it has one."""
    params = {"start": period[0], "end": period[1], "as_of": as_of, "business_days": req.business_days,
              "as_of_bd": business_day_clock(as_of, ctx.config.timezone), "segments": ["(all)"], "segment_count": 1}
    if hasattr(ctx.gateway, "array"):
        tree, bound = ctx.compile("stage_durations", req, params, {"__segment__": None})
        keys = ctx.gateway.array(tree.sql(dialect="duckdb"), bound)
    else:
        rows = ctx.run_sql("stage_durations", req, params, {"__segment__": None})
        keys = np.sort(np.array([r["duration_key"] for r in rows], dtype=np.int64))
    return durations.groups(keys, ["(all)"], range(1, len(ctx.config.stages)))


def survival(ctx: Context, req: MetricRequest) -> list[dict]:
    """Kaplan-Meier share of spells still in each stage after t days, on a grid of at most 201 points
    up to the p99 (--segment, --business-days)."""
    req = ctx.resolve(req)
    params = {**_time_params(ctx, req), "max_steps": MAX_SURVIVAL_STEPS}

    def shape(gs, names):
        return durations.survival_rows(gs, names, widths=GRID_WIDTHS, max_steps=MAX_SURVIVAL_STEPS, slack=GRID_SLACK)

    return segment_column(_rows(ctx, "survival", req, params, shape), req.segment)


def duration_distribution(ctx: Context, req: MetricRequest) -> list[dict]:
    """Spells per stage in at most 40 duration bins: completed by duration, open by age so far
    (--segment, --business-days)."""
    req = ctx.resolve(req)
    params = {**_time_params(ctx, req), "max_bins": MAX_BINS}

    def shape(gs, names):
        return durations.distribution_rows(gs, names, widths=GRID_WIDTHS, max_bins=MAX_BINS, slack=GRID_SLACK)

    return segment_column(_rows(ctx, "duration_distribution", req, params, shape), req.segment)


def time_to_convert(ctx: Context, req: MetricRequest) -> list[dict]:
    """Of the key rate's cohort (or --from-stage to --to-stage): the share of mature members reaching the
    second stage within N days (--within-days) and the median days it took; from_stage and to_stage name the pair."""
    req = ctx.resolve(req)
    if req.within_days < 0:
        raise UserError("the number of days to convert must be 0 or more.")
    from_stage, to_stage = conversion_stages(ctx, req)
    params = {**period_params(req), "within_days": req.within_days, "from_stage": from_stage, "to_stage": to_stage}
    return ctx.run_sql("time_to_convert", req, params, conversion_identifiers(ctx, req))


def time_to_sql(ctx: Context, req: MetricRequest) -> list[dict]:
    """time_to_convert under its first name: the same rows, whichever stages the key rate joins."""
    return time_to_convert(ctx, req)


def time_in_stage_by_lead(ctx: Context, req: MetricRequest) -> list[dict]:
    """Per lead and stage: spells, latest and cumulative days in the stage (open spells so far)."""
    req = ctx.resolve(req)
    params = {
        "as_of": req.as_of,
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
    }
    return ctx.run_sql("time_in_stage_by_lead", req, params, {"__segment__": None})
