"""What changed in a period (docs/metrics.md, Changes): the moves leads made, counted per stage and
per exit reason, and the list of the moves behind any count.

One query (queries/metrics/changes.sql) yields one row per change; the counts are that query
grouped and the lists are that query filtered, so a count and its list cannot disagree. Without a
period the changes are the review week's (weekly.review), as the weekly review shows them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlglot import exp

from funnelboard.core.errors import UserError
from funnelboard.warehouse.build import attribute_columns
from funnelboard.warehouse.lists import EVERYTHING, Slice, cut, ordering, with_total
from funnelboard.warehouse.metrics.base import OWNER, Context, MetricRequest, amount_columns, at_latest_event, reached, utc_midnight
from funnelboard.warehouse.metrics.stalled import threshold_params
from funnelboard.warehouse.metrics.weekly import review

# the kinds of the changes table, in its column order, and the kinds the weekly review's cards add
KINDS = ("entered", "advanced", "went_back", "exited", "newly_stalled", "recovered")
CARD_KINDS = ("new", "won", "lost", "closed")  # closed: won or lost, the win rate's closes
NO_STAGE = "(none)"  # an exit with no funnel stage before it


def period(ctx: Context, req: MetricRequest) -> MetricRequest:
    """The request resolved, its period the review week (local Monday to Monday) when it names none."""
    if req.start is None and req.end is None:
        week = review(ctx, req)
        tz = ZoneInfo(ctx.config.timezone)

        req = replace(req, start=utc_midnight(week.monday, tz), end=utc_midnight(week.monday + timedelta(weeks=1), tz), as_of=week.as_of)
    return ctx.resolve(req)


def _changes_query(ctx: Context, req: MetricRequest) -> tuple[exp.Select, dict]:
    """The changes query of a resolved request, as a subquery `c` to select from."""
    params = {
        "start": req.start, "end": req.end, "as_of": req.as_of, "open_after": req.start,
        **threshold_params(ctx, replace(req, segment=None)),
        "lost": list(ctx.config.lost), "won_stage": ctx.config.won_stage,
        "latest": at_latest_event(ctx, req.as_of),
    }
    identifiers = {"__won__": reached(ctx.config.won_stage), "__segment__": None}
    tree, bound = ctx.compile("changes", req, params, identifiers)
    return exp.select().from_(tree.subquery("c")), bound


def _count(kind: str, condition: exp.Expression | None = None) -> exp.Expression:
    where = exp.EQ(this=exp.column("change", table="c"), expression=exp.Placeholder(this=f"kind_{kind}"))
    if condition is not None:
        where = exp.and_(where, condition)
    return exp.alias_(exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=where)), kind)


def changes(ctx: Context, req: MetricRequest) -> list[dict]:
    """Changes in the period (default: the review week): per funnel stage, the leads that entered it,
    advanced from it, went back from it, exited from it, newly stalled and recovered in it."""
    req = period(ctx, req)
    select, params = _changes_query(ctx, req)
    stage = exp.column("stage", table="c")
    select = select.select(exp.alias_(stage, "stage"), *(_count(k) for k in KINDS), copy=False)
    select = select.where(exp.column("change", table="c").isin(*(exp.Placeholder(this=f"kind_{k}") for k in KINDS)), copy=False)
    select = select.group_by(stage, copy=False)
    params.update({f"kind_{k}": k for k in KINDS})
    counted = {r["stage"]: r for r in ctx.run_tree("changes", select, params)}
    out = []
    for name in (*ctx.config.stages, None):
        row = counted.get(name)
        if name is None and row is None:
            continue  # the "(none)" row only when an exit had no funnel stage before it
        out.append({"stage": NO_STAGE if name is None else name, **{k: (row or {}).get(k, 0) for k in KINDS}})
    return out


def change_exits(ctx: Context, req: MetricRequest) -> list[dict]:
    """Exits in the period (default: the review week) by outcome and normalised reason, most first:
    the `exited` column of `changes`, split by why."""
    req = period(ctx, req)
    select, params = _changes_query(ctx, req)
    outcome, reason = exp.column("to_stage", table="c"), exp.column("reason", table="c")
    select = select.select(exp.alias_(outcome, "outcome"), exp.alias_(reason, "reason"),
                           exp.alias_(exp.Count(this=exp.Star()), "exited"), copy=False)
    select = select.where(exp.EQ(this=exp.column("change", table="c"), expression=exp.Placeholder(this="kind")), copy=False)
    select = select.group_by(outcome, reason, copy=False)
    select = select.order_by(exp.Ordered(this=exp.column("exited"), desc=True), exp.column("outcome"), exp.column("reason"), copy=False)
    return ctx.run_tree("change_exits", select, {**params, "kind": "exited"})


def _list_columns(ctx: Context) -> dict[str, exp.Expression]:
    """The change list's output columns (the sort allow-list) over the changes query's rows."""
    segments = ctx.config.segments
    columns: dict[str, exp.Expression] = {
        name: exp.column(name, table="c") for name in ("lead_id", "change", "stage", "to_stage", "changed_at", "reason", "stage_now")
    }
    has_owner = OWNER in attribute_columns(ctx.config)
    columns[OWNER] = exp.column(OWNER, table="c", quoted=True) if has_owner else exp.cast(exp.null(), "varchar")
    columns.update({c: exp.column(c, table="c", quoted=True) for c in segments if c != OWNER})
    columns.update(amount_columns(ctx, "c"))
    return columns


CHANGE_ORDER = [("changed_at", True), ("lead_id", False), ("change", False), ("stage", False)]


def _cell(ctx: Context, req: MetricRequest) -> tuple[exp.Expression, dict]:
    """The condition that picks one count's rows: its kind, and its stage, outcome or reason when given."""
    kind = req.change
    if kind is not None and kind not in KINDS + CARD_KINDS:
        raise UserError(f"unknown change '{kind}'; expected one of {', '.join(KINDS + CARD_KINDS)}.")
    if req.stage is not None and req.stage != NO_STAGE and req.stage not in ctx.config.stages:
        raise UserError(f"unknown stage '{req.stage}'; expected one of {', '.join(ctx.config.stages)} or {NO_STAGE}.")
    if req.outcome is not None and req.outcome not in ctx.config.outcomes:
        raise UserError(f"unknown outcome '{req.outcome}'; expected one of {', '.join(ctx.config.outcomes)}.")
    if (req.outcome is not None or req.reason is not None) and kind != "exited":
        raise UserError("--outcome and --reason pick exits: use them with --change exited.")
    change = exp.column("change", table="c")
    kinds = ("won", "lost") if kind == "closed" else (kind,) if kind else ()
    params: dict = {f"pick_{k}": k for k in kinds}
    condition: exp.Expression = change.isin(*(exp.Placeholder(this=f"pick_{k}") for k in kinds)) if kinds else exp.true()
    picks = (("stage", None if req.stage == NO_STAGE else req.stage, req.stage is not None), ("to_stage", req.outcome, req.outcome is not None),
             ("reason", req.reason, req.reason is not None))
    for column, value, given in picks:
        if not given:
            continue
        if value is None:  # the "(none)" stage: exits with no funnel stage before them
            condition = exp.and_(condition, exp.column(column, table="c").is_(exp.null()))
        else:
            params[f"pick_{column}"] = value
            condition = exp.and_(condition, exp.EQ(this=exp.column(column, table="c"), expression=exp.Placeholder(this=f"pick_{column}")))
    return condition, params


def change_leads_query(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING):
    """The list of one count's changes for a window (latest first), its values and row shaper."""
    req = period(ctx, req)
    select, params = _changes_query(ctx, req)
    condition, picked = _cell(ctx, req)
    columns = _list_columns(ctx)
    select = select.select(*(exp.alias_(e, name, quoted=True) for name, e in columns.items()), copy=False)
    select = select.where(condition, copy=False)
    select = select.order_by(*ordering(sl, columns, CHANGE_ORDER), copy=False)
    params.update(picked)
    cut(select, sl, params)
    return select, params, dict


def change_count(ctx: Context, req: MetricRequest) -> int:
    """How many rows the list of one count has (the count itself)."""
    req = period(ctx, req)
    select, params = _changes_query(ctx, req)
    condition, picked = _cell(ctx, req)
    select = select.select(exp.alias_(exp.Count(this=exp.Star()), "n"), copy=False).where(condition, copy=False)
    return ctx.run_tree("change_leads", select, {**params, **picked})[0]["n"]


def change_leads_page(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING) -> tuple[list[dict], int]:
    """A window of one count's changes and the list's length."""
    select, params, _shape = change_leads_query(ctx, req, sl)
    rows = ctx.run_tree("change_leads", select, params)
    return with_total(rows, sl, lambda: change_count(ctx, req))


def change_leads(ctx: Context, req: MetricRequest) -> list[dict]:
    """The changes of the period (default: the review week), one row per change, latest first: every
    kind, or the ones behind one count (--change KIND, --stage; --outcome, --reason for exits)."""
    return change_leads_page(ctx, req)[0]
