"""More metrics (docs/metrics.md): time to SQL, time in stage per lead, segments, mix vs rate,
disqualifiers, stalled leads, weekly KPIs and score bands.

Each runs one query from `queries/metrics/` through `Context.run_sql` and shapes the rows in
Python only where SQL cannot: the segment statistics, the mix / rate sums, the week-on-week
comparisons. The stall metrics run their query without the request's filters, because a
stage's threshold belongs to the whole warehouse, and apply the filters to its rows in an outer
SELECT: a filtered list of stalled leads is part of the unfiltered one. The stalled list is
sorted, cut and counted in SQL (warehouse/lists.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from funnelboard.errors import UserError
from sqlglot import exp

from warehouse.build import attribute_columns
from warehouse.lists import EVERYTHING, Slice, cut, ordering, with_total
from warehouse.metrics import Context, MetricRequest, _period_params, business_day_clock, ratio, reached, register, week_of
from warehouse.stats import benjamini_hochberg, two_proportion_p_value, wilson_interval

COMPARISON_DAYS = 28  # default length of the before and after periods of mix_vs_rate
DEFAULT_WEEKS = 13  # weekly_kpis without a period start: the 13 weeks ending with as_of's week
SIGNIFICANT_Q = 0.05
OWNER = "owner"


def _conversion_stages(ctx: Context, req: MetricRequest) -> tuple[str, str]:
    """S and T of a conversion: the request's, else mql -> sql (the second and third funnel stages)."""
    return req.from_stage or ctx.config.stages[1], req.to_stage or ctx.config.stages[2]


def _conversion_identifiers(ctx: Context, req: MetricRequest) -> dict[str, str | None]:
    from_stage, to_stage = _conversion_stages(ctx, req)
    return {"__from__": reached(from_stage), "__to__": reached(to_stage)}


# --- time ----------------------------------------------------------------------------


def time_to_sql(ctx: Context, req: MetricRequest) -> list[dict]:
    req = ctx.resolve(req)
    if req.within_days < 0:
        raise UserError("the number of days to SQL must be 0 or more.")
    params = {**_period_params(req), "within_days": req.within_days}
    return ctx.run_sql("time_to_sql", req, params, _conversion_identifiers(ctx, req))


def time_in_stage_by_lead(ctx: Context, req: MetricRequest) -> list[dict]:
    req = ctx.resolve(req)
    params = {
        "as_of": req.as_of,
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
    }
    return ctx.run_sql("time_in_stage_by_lead", req, params, {})


# --- segments --------------------------------------------------------------------------


def segment_conversion(ctx: Context, req: MetricRequest) -> list[dict]:
    req = ctx.resolve(req)
    if req.segment2 is not None and req.segment in (None, req.segment2):
        raise UserError("--segment2 crosses a second column with --segment; give --segment, another column.")
    identifiers = {**_conversion_identifiers(ctx, req), "__segment__": req.segment, "__segment2__": req.segment2}
    rows = ctx.run_sql("segment_conversion", req, _period_params(req), identifiers)
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
        })
        out.append(row)
    return out


def comparison_periods(req: MetricRequest) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """(before, after) of a resolved request: after defaults to the 28 days ending at as_of, before to the 28 days before after."""
    end = req.as_of + timedelta(microseconds=1)  # as_of itself belongs to the after period, as to the default period
    after = req.after or (end - timedelta(days=COMPARISON_DAYS), end)
    before = req.before or (after[0] - timedelta(days=COMPARISON_DAYS), after[0])
    for name, (start, stop) in (("before", before), ("after", after)):
        if start >= stop:
            raise UserError(f"the {name} period is empty: its start must be before its end.")
    return before, after


def mix_vs_rate(ctx: Context, req: MetricRequest) -> list[dict]:
    req = ctx.resolve(req)
    before, after = comparison_periods(req)
    params = {
        "before_start": before[0],
        "before_end": before[1],
        "after_start": after[0],
        "after_end": after[1],
        "as_of": req.as_of,
        "window_days": req.window_days,
    }
    identifiers = {**_conversion_identifiers(ctx, req), "__segment__": req.segment}
    rows = ctx.run_sql("mix_vs_rate", req, params, identifiers)
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


# --- exits and stalls ------------------------------------------------------------------


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
    req = ctx.resolve(req)
    rows = ctx.run_sql("disqualifiers", req, _period_params(req), {"__by__": _exit_grouping(ctx, req.by)})
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


def stall_thresholds(ctx: Context, req: MetricRequest) -> list[dict]:
    """The thresholds of stall_thresholds.sql for this as_of and segment column: computed without the
    request's filters (a stage's threshold belongs to the whole warehouse), once per published file."""
    params = {"as_of": req.as_of, "segmented": req.segment is not None}

    def compute() -> list[dict]:
        return ctx.run_sql("stall_thresholds", replace(req, filters=()), params, {"__segment__": req.segment})

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


def at_latest_event(ctx: Context, as_of: datetime) -> bool:
    """Whether as_of is at or after the latest spell start (fct_open_spells' open_at): every spell has
    begun, so the marts' "as of the latest event" columns and fct_open_spells answer for it."""

    def open_at():
        rows = ctx.gateway.query("select max(open_at) from fct_open_spells").rows
        return rows[0][0] if rows else None

    since = ctx.per_file(("open_at",), open_at)
    return since is not None and as_of >= since


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
    return stalled_page(ctx, req)[0]


def stalled_summary(ctx: Context, req: MetricRequest) -> list[dict]:
    req = ctx.resolve(req)
    select, params = _stall_query(ctx, req)
    counts = [
        exp.alias_(exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=exp.column(k, table="s"))), k)
        for k in ("stalled", "newly_stalled", "recovered")
    ]
    return ctx.run_tree("stalled_summary", select.select(*counts, copy=False), params)


# --- weekly and score bands --------------------------------------------------------------


def weekly_kpis(ctx: Context, req: MetricRequest) -> list[dict]:
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


def local_monday(moment: datetime, tz: str) -> date:
    """Monday of the local ISO week (time zone tz) of a UTC instant."""
    local = moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).date()
    return local - timedelta(days=local.weekday())


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


def score_bands(ctx: Context, req: MetricRequest) -> list[dict]:
    req = ctx.resolve(req)
    if ctx.config.score_column is None:
        return []
    stages = ctx.config.stages
    return ctx.run_sql("score_bands", req, _period_params(req), {"__mql__": reached(stages[1]), "__sql__": reached(stages[2])})


register("time_to_sql", "Of the MQL cohort: share of mature members reaching SQL within N days (--within-days) and median days MQL -> SQL.", time_to_sql)
register("time_in_stage_by_lead", "Per lead and stage: spells, latest and cumulative days in the stage (open spells so far).", time_in_stage_by_lead)
register("segment_conversion", "Conversion per segment value (--segment, --segment2) with Wilson interval, test against the rest and BH q-value.", segment_conversion)
register("mix_vs_rate", "The SQL-rate change between a before and an after period split into segment mix and segment rates (--segment).", mix_vs_rate)
register("disqualifiers", "Exits by outcome and normalised reason in Pareto order, optionally --by stage_left, week or a segment.", disqualifiers)
register("stalled", "Open spells older than their stage's SLA or p90 (per segment value with --segment), newest stalls flagged.", stalled)
register("stalled_summary", "Stalled spells now, newly stalled and recovered in the last 7 days.", stalled_summary)
register("weekly_kpis", "Weekly KPIs per local ISO week with the change against last week and the 4 weeks before.", weekly_kpis)
register("movers", "Top movers: leads reaching MQL and SQL this week and last per segment value (every column, or --segment), biggest SQL change first.", movers)
register("score_bands", "Conversion to MQL and SQL by lead-score band (tens) of the leads created in the period.", score_bands)
