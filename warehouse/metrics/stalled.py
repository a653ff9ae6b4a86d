"""Stalled leads (docs/metrics.md): open spells older than their stage's SLA or p90.

The stall metrics run their query without the request's filters, because a stage's threshold
belongs to the whole warehouse, and apply the filters to its rows in an outer SELECT: a filtered
list of stalled leads is part of the unfiltered one. The list is sorted, cut and counted in SQL
(warehouse/lists.py).

A filter on `stage` (`--filter stage=proposal`, `?stage=proposal` on /stalled) is not a lead
attribute: it keeps the spells whose stage, the lead's current one, is one of the values given
(repeated, any of them). `stalled_board` counts the same rows by stage and owner.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlglot
from sqlglot import exp

from funnelboard.core.errors import UserError
from funnelboard.warehouse.build import attribute_columns
from funnelboard.warehouse.lists import EVERYTHING, Slice, cut, ordering, with_total
from funnelboard.warehouse.metrics.base import (
    OWNER,
    Context,
    MetricRequest,
    amount_columns,
    at_latest_event,
    business_clock,
    local_time,
)


def stall_thresholds(ctx: Context, req: MetricRequest) -> list[dict]:
    """The thresholds of stall_thresholds.sql for this as_of and segment column: computed without the
    request's filters (a stage's threshold belongs to the whole warehouse), once per published file."""
    params = {"as_of": req.as_of, "segmented": req.segment is not None}

    def compute() -> list[dict]:
        return ctx.run_sql("stall_thresholds", replace(req, filters=(), scope=()), params, {"__segment__": req.segment})

    return ctx.per_file(("stall_thresholds", req.as_of, req.segment), compute)


def threshold_params(ctx: Context, req: MetricRequest) -> dict:
    """The thresholds of a request as the parallel lists stalled.sql and changes.sql unnest, and the
    business-hour clock (docs/metrics.md, Stalled) at as_of and a week before for SLAs on that clock."""
    thresholds = stall_thresholds(ctx, req)
    response = ctx.config.response
    tz = ZoneInfo(ctx.config.timezone)

    def clock(moment: datetime) -> float:
        return business_clock(local_time(moment, tz), response.open_hour, response.close_hour)

    return {
        "threshold_stages": [t["stage"] for t in thresholds],
        "threshold_segments": [t["segment"] for t in thresholds],
        "threshold_days": [t["threshold_days"] for t in thresholds],
        "threshold_sources": [t["threshold_source"] for t in thresholds],
        "as_of_bh": clock(req.as_of),
        "week_ago_bh": clock(req.as_of - timedelta(days=7)),
    }


STAGE = "stage"
OVER = "over"  # --filter over=sla / over=p90: the spells held against an SLA / a p90 (threshold_source)
OVER_VALUES = {"sla": ("sla", "sla segment"), "p90": ("p90 segment", "p90 stage")}


def stall_filters(ctx: Context, req: MetricRequest) -> tuple[MetricRequest, tuple[str, ...], tuple[str, ...]]:
    """The request without its `stage` and `over` filters, the stages they name (checked against the
    funnel's) and the threshold sources `over` keeps (none: every source)."""
    stages = tuple(v for c, v in req.filters if c == STAGE)
    for stage in stages:
        if stage not in ctx.config.stages:
            raise UserError(f"unknown stage '{stage}'; expected one of {', '.join(ctx.config.stages)}.")
    sources: tuple[str, ...] = ()
    for value in (v for c, v in req.filters if c == OVER):
        if value not in OVER_VALUES:
            raise UserError(f"unknown over '{value}'; expected sla (past an SLA) or p90 (past the p90 of its stage).")
        sources += OVER_VALUES[value]
    return replace(req, filters=tuple((c, v) for c, v in req.filters if c not in (STAGE, OVER))), stages, sources


def _stall_query(ctx: Context, req: MetricRequest) -> tuple[exp.Select, dict]:
    """The stall query of a request, filtered, as a subquery `s` (the stalled list, its summary and its
    board select from it); a `stage` filter keeps the spells in those stages, `over` those held against
    that kind of threshold."""
    req, stages, sources = stall_filters(ctx, req)
    req = ctx.resolve(req)
    params = {"as_of": req.as_of, "open_after": req.as_of - timedelta(days=7), **threshold_params(ctx, req)}
    tree, bound = ctx.compile("stalled", req, params, {"__segment__": req.segment})
    if at_latest_event(ctx, req.as_of):  # fct_open_spells then holds every candidate
        tree = exp.replace_tables(tree, {"fct_spells": "fct_open_spells"})
    select = exp.select().from_(tree.subquery("s"))
    for name, values, column in (("stage_filter", stages, "stage"), ("source_filter", sources, "threshold_source")):
        if values:
            bound[name] = list(values)
            kept = exp.Anonymous(this="list_contains", expressions=[exp.Placeholder(this=name), exp.column(column, table="s")])
            select = select.where(kept, copy=False)
    return select, bound


def stalled_columns(ctx: Context) -> dict[str, exp.Expression]:
    """The stalled list's output columns (the sort allow-list) over the stall query's rows."""
    has_owner = OWNER in attribute_columns(ctx.config)
    columns: dict[str, exp.Expression] = {
        name: exp.column(name, table="s")
        for name in ("lead_id", "stage", "entered_at", "age_days", "threshold_days", "threshold_source", "sla_hours", "clock",
                     "breached_at", "newly_stalled")
    }
    columns[OWNER] = exp.column(OWNER, table="s", quoted=True) if has_owner else exp.cast(exp.null(), "varchar")
    columns.update({c: exp.column(c, table="s", quoted=True) for c in ctx.config.segments if c != OWNER})
    columns.update(amount_columns(ctx, "s"))
    activity = ctx.config.last_activity_column
    if activity:  # [attributes] last_activity: when the lead was last worked, and how long ago at as_of
        last = exp.TryCast(this=exp.column(activity, table="s", quoted=True), to=exp.DataType.build("timestamp"))
        columns["last_activity_at"] = last
        since = exp.Sub(this=exp.func("epoch_us", exp.cast(exp.Placeholder(this="as_of"), "timestamp")), expression=exp.func("epoch_us", last.copy()))
        columns["days_since_activity"] = exp.Div(this=exp.paren(since), expression=exp.Literal.number("86400000000.0"))
    if ctx.config.close_date_column:  # [pipeline] close_date: how often the deal's close date slipped (fct_leads' columns)
        columns.update({c: exp.column(c, table="s") for c in SLIP_COLUMNS})
    return columns


SLIP_COLUMNS = ("close_pushes", "days_slipped")


STALLED_ORDER = [("newly_stalled", True), ("age_days", True), ("lead_id", False)]


def stalled_query(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING):
    """The stalled list's query for a window (newly stalled first, then by age), its values and row shaper."""
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
    """Open spells older than their stage's SLA or p90 (per segment value with --segment), newest
    stalls flagged."""
    return stalled_page(ctx, req)[0]


SUMMARY_COUNTS = ("stalled", "newly_stalled", "recovered")


def _counts() -> list[exp.Expression]:
    return [exp.alias_(exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=exp.column(k, table="s"))), k)
            for k in SUMMARY_COUNTS]


def stalled_summary(ctx: Context, req: MetricRequest) -> list[dict]:
    """Stalled spells now, newly stalled and recovered in the last 7 days."""
    select, params = _stall_query(ctx, req)
    return ctx.run_tree("stalled_summary", select.select(*_counts(), copy=False), params)


def stalled_by_stage(ctx: Context, req: MetricRequest) -> list[dict]:
    """`stalled_summary` per stage and kind of threshold (`over`: 'sla' for an SLA, 'p90'), in one
    query: the weekly review's line sums it and lists each stage's SLA breaches."""
    select, params = _stall_query(ctx, req)
    kind = exp.If(this=exp.column("sla_hours", table="s").is_(exp.null()).not_(), true=exp.Literal.string("sla"),
                  false=exp.Literal.string("p90"))
    select = select.select(exp.column("stage", table="s"), exp.alias_(kind, "over"), *_counts(), copy=False)
    rows = ctx.run_tree("stalled_by_stage", select.group_by(exp.column("stage", table="s"), kind.copy(), copy=False), params)
    place = {stage: i for i, stage in enumerate(ctx.config.stages)}
    return sorted(rows, key=lambda r: (place.get(r["stage"], len(place)), r["over"]))


# The board's SQL over `stall` (the stalled spells: stage, owner, newly_stalled, over_days), which
# `stalled_board` prepends as a CTE. Owners past the first $owner_columns by stalled count (then
# name) are pooled as '(other)', so the medians of that column and of the totals are of their rows.
BOARD_SQL = """
with owners as (
    select owner, count(*) as n
    from stall
    group by owner
),

ranked as (
    select owner, row_number() over (order by n desc, owner) as owner_rank
    from owners
),

cells as (
    select
        s.stage,
        case when r.owner_rank <= coalesce(cast($owner_columns as bigint), 9223372036854775807) then r.owner else '(other)' end as owner,
        s.owner as lead_owner,
        s.newly_stalled,
        s.over_days
    from stall as s
    inner join ranked as r on r.owner = s.owner
)

select
    case when grouping(stage) = 1 then '(all)' else stage end as stage,
    case when grouping(owner) = 1 then '(all)' else owner end as owner,
    count(*) as stalled,
    count(*) filter (where newly_stalled) as newly_stalled,
    median(over_days) as median_over_days,
    count(distinct lead_owner) as owners
from cells
group by grouping sets ((stage, owner), (stage), (owner), ())
"""


# Days past the threshold: age - threshold in calendar days, or since the business-hour deadline
OVER_DAYS = sqlglot.parse_one(
    "case when s.clock = 'business' then (epoch_us(cast($as_of as timestamp)) - epoch_us(s.breached_at)) / 86400000000.0 "
    "else s.age_days - s.threshold_days end",
    dialect="duckdb",
)


def stalled_board(ctx: Context, req: MetricRequest, owner_columns: int | None = None) -> list[dict]:
    """The stalled list counted by stage and owner: stalled, newly stalled, median days over threshold;
    '(all)' rows and columns are the totals.

    `owner_columns` (the dashboard's cap) pools the owners after that many into '(other)'; `owners`
    says how many owners a row counts ('(none)' is one)."""
    select, params = _stall_query(ctx, req)
    owner = stalled_columns(ctx)[OWNER]
    stall = select.select(
        exp.column("stage", table="s"),
        exp.alias_(exp.func("coalesce", exp.cast(owner, "varchar"), exp.Literal.string("(none)")), "owner"),
        exp.column("newly_stalled", table="s"),
        exp.alias_(OVER_DAYS.copy(), "over_days"),
        copy=False,
    ).where(exp.column("stalled", table="s"), append=True, copy=False)
    tree = sqlglot.parse_one(BOARD_SQL, dialect="duckdb")
    tree.args["with_"].expressions.insert(0, exp.CTE(this=stall, alias=exp.TableAlias(this=exp.to_identifier("stall"))))
    rows = ctx.run_tree("stalled_board", tree, {**params, "owner_columns": owner_columns})
    return board_order(rows, ctx.config.stages)


def board_order(rows: list[dict], stages: tuple[str, ...]) -> list[dict]:
    """Stages in funnel order, then owners by stalled count (most first, then name), '(other)' and the
    '(all)' totals last."""
    totals = {r["owner"]: r["stalled"] for r in rows if r["stage"] == "(all)"}
    place = {s: i for i, s in enumerate(stages)}

    def owner_key(owner: str) -> tuple:
        return (owner == "(all)", owner == "(other)", -totals.get(owner, 0), owner)

    return sorted(rows, key=lambda r: (r["stage"] == "(all)", place.get(r["stage"], len(place)), owner_key(r["owner"])))
