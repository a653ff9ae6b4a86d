"""Pipeline value (docs/metrics.md, Pipeline value): what the open pipeline was worth at the end of each
week, and how it changed over a period, move by move. Both read fct_pipeline_moves, where a lead is in
the pipeline while it sits in a funnel stage from [pipeline] from_stage on, before the win, with an
amount ([attributes] amount, its latest value)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from funnelboard.core.errors import UserError
from funnelboard.warehouse.metrics.base import Context, MetricRequest, segment_column, utc_midnight
from funnelboard.warehouse.metrics.changes import period as review_period
from funnelboard.warehouse.metrics.weekly import DEFAULT_WEEKS, shown_weeks

MOVES = ("created", "increased", "decreased", "won", "lost", "exited")
US = timedelta(microseconds=1)


def _amounts(ctx: Context) -> None:
    if ctx.config.amount_column is None:
        raise UserError("pipeline value needs amounts: name the amount column under [attributes] amount in funnel.toml.")


def pipeline_changes(ctx: Context, req: MetricRequest) -> list[dict]:
    """The pipeline's change over the period (default: the review week) in value and deals, per
    segment value (--segment): the value at the start, created, increased, decreased, won, lost,
    exited, the value at the end; start + created + increased - decreased - won - lost - exited = end."""
    _amounts(ctx)
    req = review_period(ctx, req) if req.start is None and req.end is None else ctx.resolve(req)
    params = {"start": req.start, "end": req.end, "as_of": req.as_of, "won": ctx.config.won_stage, "lost": list(ctx.config.lost)}
    rows = ctx.run_sql("pipeline_changes", req, params, {"__segment__": req.segment})
    if req.segment is None and not rows:
        moves = [c for m in MOVES for c in (f"n_{m}", m)]
        rows = [{"segment": "(all)", **dict.fromkeys(("start_deals", "start_value", *moves, "end_deals", "end_value"), 0)}]
    extra = {"period_from": req.start, "period_to": req.end, "as_of": req.as_of, "currency": ctx.config.currency}
    return segment_column([{**r, **extra} for r in sorted(rows, key=lambda r: str(r["segment"]))], req.segment)


KINDS = ("start", *MOVES, "end")


def pipeline_deals(ctx: Context, req: MetricRequest) -> list[dict]:
    """The deals behind each bar of the pipeline waterfall (default period: the review week), with
    the amounts before and after: --change start|created|increased|decreased|won|lost|exited|end for one bar."""
    _amounts(ctx)
    if req.change is not None and req.change not in KINDS:
        raise UserError(f"--change '{req.change}' is not a bar of the pipeline waterfall; expected one of {', '.join(KINDS)}.")
    req = review_period(ctx, req) if req.start is None and req.end is None else ctx.resolve(req)
    params = {"start": req.start, "end": req.end, "as_of": req.as_of, "won": ctx.config.won_stage, "lost": list(ctx.config.lost),
              "change": req.change}
    return ctx.run_sql("pipeline_deals", req, params, {})


def pipeline_snapshot(ctx: Context, req: MetricRequest) -> list[dict]:
    """The open pipeline at the end of each local week (default: the 13 weeks ending with the review
    week; the week as_of falls in: at as_of) per stage (and --segment value): deals, value, and value
    weighted by the stage's [pipeline] probability."""
    _amounts(ctx)
    first, last = shown_weeks(ctx, req, DEFAULT_WEEKS if req.start is None else None)
    req = ctx.resolve(req)
    tz = ZoneInfo(ctx.config.timezone)
    weeks = [first + timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]
    moments = [min(utc_midnight(w + timedelta(weeks=1), tz), req.as_of + US) for w in weeks]
    rows = ctx.run_sql("pipeline_snapshot", req, {"moments": moments}, {"__segment__": req.segment})
    week_of = dict(zip(moments, weeks))
    probability = ctx.config.stage_probability
    out = []
    for r in rows:
        share = probability.get(r["stage"])
        row = {"week": week_of[r["moment"]], "stage": r["stage"], **({req.segment: r["segment"]} if req.segment else {}), "deals": r["deals"],
               "value": r["value"], "probability": share, "weighted_value": r["value"] * (share or 0.0), "currency": ctx.config.currency}
        out.append(row)
    return out
