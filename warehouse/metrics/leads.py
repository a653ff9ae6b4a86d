"""Lead-level metrics: the leads behind a conversion number, and one lead's timeline.

These are what the dashboard's drill-downs open (a funnel bar, a segment bar, a heatmap cell
-> the lead list -> one lead), and `funnelboard query leads|lead_history` prints the same rows.
"""

from __future__ import annotations

from dataclasses import replace

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
    business_day_clock,
    conversion_identifiers,
    conversion_stages,
    maturity_days,
    period_params,
    scoped,
    week_of,
)
from funnelboard.warehouse.metrics.conversion import conversion
from funnelboard.warehouse.metrics.stalled import SLIP_COLUMNS

WHICH = ("all", "converted", "not_converted")


LEADS_ORDER = [("from_at", True), ("lead_id", False)]


def leads_query(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING):
    """The leads query for a window (sorted, cut and counted in its `page` step, so the stage each
    lead is in now is looked up for the window's leads only), its values and the row shaper."""
    req = ctx.resolve(req)
    if req.which not in WHICH:
        raise UserError(f"unknown --which '{req.which}'; expected one of {', '.join(WHICH)}.")
    from_stage, to_stage = conversion_stages(ctx, req)
    params = {
        **period_params(req), "which": req.which, "limit": None, "offset": 0, "latest": at_latest_event(ctx, req.as_of),
        "maturity_days": maturity_days(ctx, from_stage, to_stage, req.as_of, req.window_days),
    }
    tree, params = ctx.compile("leads", req, params, conversion_identifiers(ctx, req))
    page = next(c.this for c in tree.ctes if c.alias == "page")
    slips = list(SLIP_COLUMNS) if ctx.config.close_date_column else []
    money = amount_columns(ctx, "p")
    sortable = ["lead_id", "from_at", "to_at", "converted", "immature", *ctx.config.segments, "amount", *slips]
    in_page = {c: exp.column("amount_value" if c == "amount" else c, quoted=c in ctx.config.segments) for c in sortable}
    in_final = {c: exp.column("amount_value" if c == "amount" else c, table="p", quoted=c in ctx.config.segments) for c in sortable}
    page.set("order", None)
    page.set("limit", None)
    page.set("offset", None)
    page.order_by(*ordering(sl, in_page, LEADS_ORDER), copy=False)
    cut(page, sl, params)
    tree.set("order", exp.Order(expressions=ordering(sl, in_final, LEADS_ORDER)))
    # The list's columns, in SQL (rows stream out as they are, and list_table gets the same columns):
    # ids and times, where the lead is now, owner, the other segments, amount.
    named = {p.alias_or_name: p for p in tree.expressions}
    has_owner = OWNER in attribute_columns(ctx.config)
    columns = [
        named["lead_id"], exp.alias_(exp.Placeholder(this="from_stage"), "from_stage"), named["from_at"],
        exp.alias_(exp.Placeholder(this="to_stage"), "to_stage"), named["to_at"], named["converted"],
        exp.alias_(exp.Placeholder(this="window_days"), "window_days"), named["immature"], named["stage_now"], named["in_stage_since"],
        named[OWNER] if has_owner else exp.alias_(exp.cast(exp.null(), "varchar"), OWNER, quoted=True),
        *(named[c] for c in ctx.config.segments if c != OWNER),
        *(exp.alias_(e, name) for name, e in money.items()),
        *(exp.column(c, table="p") for c in slips),
    ]
    tree.set("expressions", [c.copy() for c in columns])
    params["from_stage"], params["to_stage"] = from_stage, to_stage
    return tree, params, dict


def leads_page(ctx: Context, req: MetricRequest, sl: Slice = EVERYTHING) -> tuple[list[dict], int]:
    """The cohort members of the window and the list's length (the cohort, its converted members or
    the rest: the conversion metric's counts for the same request)."""
    tree, params, shape = leads_query(ctx, req, sl)
    rows = ctx.run_tree("leads", tree, params)
    rows, total = with_total(rows, sl, lambda: _cohort_count(ctx, req))
    return [shape(r) for r in rows], total


def _cohort_count(ctx: Context, req: MetricRequest) -> int:
    from_stage, to_stage = conversion_stages(ctx, req)
    counts = conversion(ctx, replace(req, from_stage=from_stage, to_stage=to_stage))[0]
    return {"all": counts["cohort"], "converted": counts["converted"], "not_converted": counts["cohort"] - counts["converted"]}[req.which]


def leads(ctx: Context, req: MetricRequest) -> list[dict]:
    """The leads behind a conversion (--from-stage, --to-stage; --which converted|not_converted): the
    cohort with where each lead is now."""
    return leads_page(ctx, req)[0]


def lead_history(ctx: Context, req: MetricRequest) -> list[dict]:
    """One lead's timeline (--lead-id): every spell with its duration, next stage and reason."""
    req = ctx.resolve(req)
    if not req.lead_id:
        raise UserError("lead_history needs a lead: give --lead-id.")
    params = {
        "lead_id": req.lead_id,
        "as_of": req.as_of,
        "business_days": req.business_days,
        "as_of_bd": business_day_clock(req.as_of, ctx.config.timezone),
    }
    rows = ctx.run_sql("lead_history", req, params, {})
    if not rows and not lead_exists(ctx, req.lead_id, req):
        raise UserError(f"there is no lead '{req.lead_id}' in this warehouse.")  # outside a scope, none either
    return rows


def lead_exists(ctx: Context, lead_id: str, req: MetricRequest = MetricRequest()) -> bool:
    """Whether the lead is in the warehouse (and in the request's scope)."""
    sql, params = scoped("select 1 from fct_leads where lead_id = $id limit 1", req)
    return bool(ctx.gateway.query(sql, {**params, "id": lead_id}).rows)


def lead_attributes(ctx: Context, lead_id: str, req: MetricRequest = MetricRequest()) -> dict | None:
    """The lead's row of fct_leads (created_at, reached_<stage>, attributes), or None (also outside the
    request's scope); not the columns derived for aggregates (score and amount as numbers, local weeks)."""
    derived = ["score_value", "amount_value", "current_since", "created_week", "last_week", *(week_of(s) for s in ctx.config.stages)]
    names = ", ".join(exp.to_identifier(c, quoted=True).sql("duckdb") for c in derived)  # config names, quoted
    sql, params = scoped(f"select * exclude ({names}) from fct_leads where lead_id = $id", req)
    found = ctx.gateway.query(sql, {**params, "id": lead_id}).dicts()
    return found[0] if found else None
