"""Handoff quality (docs/metrics.md, Handoff): the move from marketing's stage to sales' stage.

The pair is the key rate's ([review] key_rate: F -> T, MQL -> SQL in the demo), never hard-coded
names. queries/metrics/handoff.sql yields one row per lead that reached F or T in the period; the
counts are those rows grouped per segment value and the list (`handoff_leads`) is those rows
filtered, so a count and its list cannot disagree. What counts as work on a lead besides a move
(the [attributes] last_activity and first_response timestamps) is added here, as quoted columns.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from funnelboard.core.errors import UserError
from funnelboard.warehouse.build import attribute_columns
from funnelboard.warehouse.lists import EVERYTHING, Slice, cut, ordering, with_total
from funnelboard.warehouse.metrics.base import OWNER, Context, MetricRequest, amount_columns, period_params, ratio, reached
from funnelboard.warehouse.stats import wilson_interval

KINDS = ("handoff", "sent_back", "no_disposition", "never_worked")  # the rows `handoff_leads --change KIND` lists
COLUMNS = (
    "from_stage", "to_stage", "handoff_days", "handoffs", "settled_handoffs", "sent_back", "sent_back_rate", "wilson_low",
    "wilson_high", "too_few", "median_days_to_accept", "p90_days_to_accept", "from_cohort", "from_settled", "no_disposition", "never_worked",
    "never_worked_share", "note",
)

# The counts per segment value over the lead rows `h`; `never_worked` (a bare column) is replaced by its test.
COUNTS_SQL = """
select
    h.segment,
    count(*) filter (where h.handoff) as handoffs,
    count(*) filter (where h.settled) as settled_handoffs,
    count(*) filter (where h.sent_back) as sent_back,
    quantile_cont(h.days_to_accept, 0.5) as median_days_to_accept,
    quantile_cont(h.days_to_accept, 0.9) as p90_days_to_accept,
    count(*) filter (where h.from_member) as from_cohort,
    count(*) filter (where h.from_settled) as from_settled,
    count(*) filter (where h.from_settled and not h.moved) as no_disposition,
    count(*) filter (where never_worked) as never_worked
from h
group by h.segment
order by h.segment
"""


def handoff_pair(ctx: Context) -> tuple[str, str]:
    """F and T: the key rate's stages (marketing's stage, and the stage sales accepts a lead at)."""
    key = ctx.config.review_rate
    return key.from_stage, key.to_stage


def not_applicable(ctx: Context) -> str | None:
    """Why sent back and never worked say nothing for this funnel, or None: when T is the win, no lead
    is handed to a sales stage before it (Olist records only MQLs and won deals)."""
    _from_stage, to_stage = handoff_pair(ctx)
    if to_stage != ctx.config.won_stage:
        return None
    return (f"the key rate ends at the win ({to_stage}): this funnel has no sales stage to hand a lead to, "
            "so sent back and never worked do not apply")


def handoff_days(ctx: Context, req: MetricRequest) -> int:
    """N: --window when given (0: any time), else [review] handoff_days."""
    days = ctx.config.handoff_days if req.window_days is None else req.window_days
    if days < 0:
        raise UserError("the handoff window must be 0 (any time) or a positive number of days.")
    return days


def _activity(ctx: Context) -> exp.Expression:
    """Work recorded on a lead after it reached F, by as_of: a configured activity timestamp
    ([attributes] last_activity, first_response) in (reached_at(F), as_of]."""
    names = [c for c in (ctx.config.last_activity_column, ctx.config.first_response_column) if c]
    names = [c for c in dict.fromkeys(names) if c in attribute_columns(ctx.config)]
    tests = []
    for name in names:
        at = exp.TryCast(this=exp.column(name, table="h", quoted=True), to=exp.DataType.build("timestamp"))
        after = exp.GT(this=at, expression=exp.column("from_at", table="h"))
        by_as_of = exp.LTE(this=at.copy(), expression=exp.cast(exp.Placeholder(this="as_of"), "timestamp"))
        tests.append(exp.func("coalesce", exp.and_(after, by_as_of), exp.false()))
    return exp.or_(*tests) if tests else exp.false()


def _rows(ctx: Context, req: MetricRequest) -> tuple[exp.Query, dict, int, exp.Expression]:
    """The lead rows of handoff.sql (to select from as `h`), their values, N and the never-worked test."""
    days = handoff_days(ctx, req)
    req = ctx.resolve(req)
    from_stage, to_stage = handoff_pair(ctx)
    stages = ctx.config.stages
    params = {
        **period_params(req),
        "from_order": stages.index(from_stage) + 1,
        "to_order": stages.index(to_stage) + 1,
        "handoff_days": days,
        "sent_back": list(ctx.config.sent_back),
    }
    identifiers = {"__from__": reached(from_stage), "__to__": reached(to_stage), "__segment__": req.segment}
    tree, bound = ctx.compile("handoff", req, params, identifiers)
    worked = exp.or_(exp.column("moved", table="h"), _activity(ctx))
    never = exp.and_(exp.column("from_settled", table="h"), exp.not_(exp.paren(worked)))
    return tree, {**bound, "as_of": req.as_of}, days, never


def handoff(ctx: Context, req: MetricRequest) -> list[dict]:
    """Handoff quality of the key rate's stages (first to second): handoffs in the period, the share
    sent back within N days (--window; default [review] handoff_days) with its Wilson interval, days to
    acceptance (median, p90) and the leads that reached the first stage and were never worked (--segment)."""
    tree, params, days, never = _rows(ctx, req)
    counts = sqlglot.parse_one(COUNTS_SQL, read="duckdb")
    for column in list(counts.find_all(exp.Column)):
        if column.name == "never_worked" and not column.table:
            column.replace(never.copy())
    counts = counts.with_("h", as_=tree, copy=False)
    rows = ctx.run_tree("handoff", counts, params)
    from_stage, to_stage = handoff_pair(ctx)
    note = not_applicable(ctx)
    segment = req.segment
    if segment is None and not rows:
        rows = [{"segment": "(all)", "handoffs": 0, "settled_handoffs": 0, "sent_back": 0, "median_days_to_accept": None,
                 "p90_days_to_accept": None, "from_cohort": 0, "from_settled": 0, "no_disposition": 0, "never_worked": 0}]
    out = []
    for r in rows:
        settled = r["settled_handoffs"]
        low, high = wilson_interval(r["sent_back"], settled) if settled and not note else (None, None)
        row = {} if segment is None else {segment: r["segment"]}
        row.update({
            "from_stage": from_stage,
            "to_stage": to_stage,
            "handoff_days": days,
            "handoffs": r["handoffs"],
            "settled_handoffs": settled,
            "sent_back": None if note else r["sent_back"],
            "sent_back_rate": None if note else ratio(r["sent_back"], settled),
            "wilson_low": low,
            "wilson_high": high,
            "too_few": settled < ctx.config.min_sample,
            "median_days_to_accept": r["median_days_to_accept"],
            "p90_days_to_accept": r["p90_days_to_accept"],
            "from_cohort": r["from_cohort"],
            "from_settled": r["from_settled"],
            "no_disposition": None if note else r["no_disposition"],
            "never_worked": None if note else r["never_worked"],
            "never_worked_share": None if note else ratio(r["never_worked"], r["from_settled"]),
            "note": note,
        })
        out.append(row)
    return out


def _list_columns(ctx: Context) -> dict[str, exp.Expression]:
    """The list's output columns (the sort allow-list): the lead's handoff, then owner, the other segments, amount."""
    columns: dict[str, exp.Expression] = {
        name: exp.column(name, table="h")
        for name in ("lead_id", "from_at", "to_at", "days_to_accept", "sent_back_to", "sent_back_at")
    }
    has_owner = OWNER in attribute_columns(ctx.config)
    columns[OWNER] = exp.column(OWNER, table="h", quoted=True) if has_owner else exp.cast(exp.null(), "varchar")
    columns.update({c: exp.column(c, table="h", quoted=True) for c in ctx.config.segments if c != OWNER})
    columns.update(amount_columns(ctx, "h"))
    return columns


HANDOFF_ORDER = [("to_at", True), ("from_at", True), ("lead_id", False)]


def _picked(req: MetricRequest, never: exp.Expression) -> exp.Expression:
    kind = req.change or "handoff"
    if kind not in KINDS:
        raise UserError(f"unknown handoff list '{kind}'; expected one of {', '.join(KINDS)}.")
    if kind == "sent_back":
        return exp.column("sent_back", table="h")
    if kind == "never_worked":
        return never
    if kind == "no_disposition":
        return exp.and_(exp.column("from_settled", table="h"), exp.not_(exp.column("moved", table="h")))
    return exp.column("handoff", table="h")


def handoff_leads_query(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING):
    """The list behind one count of `handoff` for a window, its values and row shaper."""
    if req.segment is not None:
        raise UserError("handoff_leads lists leads; pick a segment value with --filter COLUMN=VALUE.")
    tree, params, _days, never = _rows(ctx, req)
    select = exp.select().from_(tree.subquery("h"))
    if not_applicable(ctx) and (req.change or "handoff") != "handoff":
        raise UserError(not_applicable(ctx) + ".")
    columns = _list_columns(ctx)
    select = select.select(*(exp.alias_(e, name, quoted=True) for name, e in columns.items()), copy=False)
    select = select.select(exp.alias_(exp.Placeholder(this="handoff_days"), "handoff_days"), copy=False)
    select = select.where(_picked(req, never), copy=False)
    select = select.order_by(*ordering(sl, columns, HANDOFF_ORDER), copy=False)
    cut(select, sl, params)
    return select, params, dict


def handoff_leads_page(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING) -> tuple[list[dict], int]:
    """A window of the list and its length."""
    select, params, _shape = handoff_leads_query(ctx, req, sl)
    rows = ctx.run_tree("handoff_leads", select, params)

    def count() -> int:
        tree, values, _days, never = _rows(ctx, req)
        counted = exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(tree.subquery("h")).where(_picked(req, never))
        return ctx.run_tree("handoff_leads", counted, values)[0]["n"]

    return with_total(rows, sl, count)


def handoff_leads(ctx: Context, req: MetricRequest) -> list[dict]:
    """The leads behind a handoff count, latest handoff first: --change handoff (default), sent_back,
    no_disposition or never_worked (those sort by when they reached the first stage)."""
    return handoff_leads_page(ctx, req)[0]
