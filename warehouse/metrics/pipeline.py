"""Pipeline value (docs/metrics.md, Pipeline value): what the open pipeline was worth at the end of each
week, how it changed over a period move by move, and the forecast categories. Every query reads
fct_pipeline_moves through queries/shared/pipeline_seen.sql: a deal counts while it sits in a funnel
stage from [pipeline] from_stage on, before the win, with an amount (its latest value), and, given a
close window, a close date in it. Money is converted to the reporting currency here (the rates)."""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from funnelboard.core.errors import UserError
from funnelboard.core.money import FORECAST_CATEGORIES
from funnelboard.warehouse.metrics.base import Context, MetricRequest, local_time, ratio, segment_column, utc_midnight
from funnelboard.warehouse.metrics.changes import period as review_period
from funnelboard.warehouse.metrics.weekly import DEFAULT_WEEKS, shown_weeks

MOVES = ("created", "pulled_in", "increased", "decreased", "pushed_out", "won", "lost", "exited")
KINDS = ("start", *MOVES, "end")
CLOSING = ("all", "month", "quarter", "year")
US = timedelta(microseconds=1)


def _amounts(ctx: Context) -> None:
    if ctx.config.amount_column is None:
        raise UserError("pipeline value needs amounts: name the amount column under [attributes] amount in funnel.toml.")


def close_window(ctx: Context, closing: str | None, day: date) -> tuple[date | None, date | None]:
    """The close window's first and last day: None, None for all; the calendar month, quarter or
    year of `day` (the period's last local day); or FROM:TO dates, both included."""
    if closing in (None, "all"):
        return None, None
    if closing in CLOSING:
        first_month = {"month": day.month, "quarter": (day.month - 1) // 3 * 3 + 1, "year": 1}[closing]
        last_month = {"month": day.month, "quarter": first_month + 2, "year": 12}[closing]
        window = date(day.year, first_month, 1), date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])
    else:
        parts = closing.split(":")
        days = [_day(p) for p in parts] if len(parts) == 2 else []
        if len(days) != 2 or None in days:
            raise UserError(f"--closing '{closing}' is not a close window; expected all, month, quarter, year or FROM:TO dates (2026-10-01:2026-12-31).")
        if days[0] > days[1]:
            raise UserError(f"--closing '{closing}' ends before it starts.")
        window = days[0], days[1]
    if ctx.config.close_date_column is None:
        raise UserError("a close window needs close dates: name the close-date column under [pipeline] close_date in funnel.toml.")
    return window


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _currencies(ctx: Context) -> list[str]:
    """The deals' currencies in the warehouse (once per published file)."""
    def compute() -> list[str]:
        sql = "select distinct currency_after as c from fct_pipeline_moves where currency_after is not null order by 1"
        return [r["c"] for r in ctx.gateway.query(sql, {}).dicts()]
    return ctx.per_file(("pipeline_currencies",), compute)


def rates_at(ctx: Context, moment: datetime) -> dict[str, float]:
    """Each deal currency's rate to the reporting currency at `moment` (UTC): its month's rate from the
    rates file (the local month of the last instant before the moment), else the latest earlier month's,
    else its fixed rate. A currency without one is refused: amounts are never summed across currencies."""
    cfg = ctx.config
    month = local_time(moment - US, ZoneInfo(cfg.timezone)).strftime("%Y-%m")
    out = {}
    for code in _currencies(ctx):
        if code == cfg.currency:
            out[code] = 1.0
            continue
        monthly = [r for c, m, r in cfg.monthly_rates if c == code and m <= month]
        rate = monthly[-1] if monthly else cfg.fixed_rates.get(code)
        if rate is None:
            raise UserError(f"the pipeline holds amounts in {code} and funnel.toml has no {code} rate to {cfg.currency or 'a reporting currency'} "
                            f"for {month}: add one to [pipeline] rates or its rates file, so they are converted, not summed as they are.")
        out[code] = rate
    return out


def _params(ctx: Context, req: MetricRequest, since: datetime, rates: dict[str, float], window: tuple) -> dict:
    forecast = ctx.config.forecast_by_stage
    # a move counts from `since` on when its next move comes later or is not known yet (after as_of)
    return {"since": min(since, req.as_of), "as_of": req.as_of, "currencies": list(rates), "rates": list(rates.values()),
            "close_from": window[0], "close_to": window[1], "forecast_stages": list(forecast), "forecast_categories": list(forecast.values()),
            "won": ctx.config.won_stage, "lost": list(ctx.config.lost)}


def _period(ctx: Context, req: MetricRequest) -> tuple[MetricRequest, dict, tuple]:
    """The request over its period (default: the review week) and the parameters of a period query:
    rates at the period's end, the close window of its last day."""
    _amounts(ctx)
    req = review_period(ctx, req) if req.start is None and req.end is None else ctx.resolve(req)
    window = close_window(ctx, req.closing, local_time(req.end - US, ZoneInfo(ctx.config.timezone)).date())
    params = {**_params(ctx, req, req.start, rates_at(ctx, req.end), window), "start": req.start, "end": req.end}
    return req, params, window


def _extra(ctx: Context, req: MetricRequest, window: tuple) -> dict:
    return {"period_from": req.start, "period_to": req.end, "as_of": req.as_of, "closing_from": window[0], "closing_to": window[1],
            "currency": ctx.config.currency}


def pipeline_changes(ctx: Context, req: MetricRequest) -> list[dict]:
    """The pipeline's change over the period (default: the review week) in value and deals, per segment
    value (--segment), in deals closing in --closing (default all): start, created, pulled_in, increased,
    decreased, pushed_out, won, lost, exited, end; start + created + pulled_in + increased - decreased -
    pushed_out - won - lost - exited = end."""
    req, params, window = _period(ctx, req)
    rows = ctx.run_sql("pipeline_changes", req, params, {"__segment__": req.segment})
    if req.segment is None and not rows:
        moves = [c for m in MOVES for c in (f"n_{m}", m)]
        rows = [{"segment": "(all)", **dict.fromkeys(("start_deals", "start", *moves, "end_deals", "end"), 0)}]
    extra = _extra(ctx, req, window)
    return segment_column([{**r, **extra} for r in sorted(rows, key=lambda r: str(r["segment"]))], req.segment)


def pipeline_deals(ctx: Context, req: MetricRequest, limit: int | None = None) -> list[dict]:
    """The deals behind each bar of the pipeline waterfall (default period: the review week), with the
    amounts, currencies and close dates before and after: --change start|created|pulled_in|increased|
    decreased|pushed_out|won|lost|exited|end for one bar."""
    if req.change is not None and req.change not in KINDS:
        raise UserError(f"--change '{req.change}' is not a bar of the pipeline waterfall; expected one of {', '.join(KINDS)}.")
    req, params, _ = _period(ctx, req)
    params = {**params, "change": req.change}
    if limit is None:
        return ctx.run_sql("pipeline_deals", req, params, {})
    tree, bound = ctx.compile("pipeline_deals", req, params, {})  # the first rows only (the dashboard's list)
    return ctx.run_tree("pipeline_deals", tree.limit(limit, copy=False), bound)


def forecast_moves(ctx: Context, req: MetricRequest) -> list[dict]:
    """The moves between forecast categories over the period (default: the review week), per --segment
    value: deals whose category at the start ('(new)': not counted then) differs from the one at the
    end or their way out (closed, lost, pushed out, exited), with their values."""
    req, params, window = _period(ctx, req)
    rows = ctx.run_sql("forecast_moves", req, params, {"__segment__": req.segment})
    extra = _extra(ctx, req, window)
    return segment_column([{**r, **extra} for r in rows], req.segment)


def deal_value(ctx: Context, req: MetricRequest) -> list[dict]:
    """Won and lost deals in money over the period (default: the review week), per --segment value: the
    win rate by count and by value, the average won deal and the median sales cycle in days."""
    req, params, window = _period(ctx, req)
    rows = ctx.run_sql("deal_value", req, params, {"__segment__": req.segment})
    if req.segment is None and not rows:
        rows = [{"segment": "(all)", "won_deals": 0, "won_value": 0.0, "lost_deals": 0, "lost_value": 0.0, "median_cycle_days": None}]
    out = []
    for r in rows:
        out.append({**r, "win_rate": ratio(r["won_deals"], r["won_deals"] + r["lost_deals"]),
                    "value_win_rate": ratio(r["won_value"], r["won_value"] + r["lost_value"]),
                    "avg_won_deal": r["won_value"] / r["won_deals"] if r["won_deals"] else None, **_extra(ctx, req, window)})
    return segment_column(out, req.segment)


def _weekly(ctx: Context, req: MetricRequest) -> tuple[MetricRequest, list[date], list[dict], dict]:
    """The snapshot rows of the weeks shown (default: the 13 ending with the review week), each converted
    at its week end's rates: per week the 'open' deals at its end and the deals 'won' in it."""
    _amounts(ctx)
    first, last = shown_weeks(ctx, req, DEFAULT_WEEKS if req.start is None else None)
    req = ctx.resolve(req)
    tz = ZoneInfo(ctx.config.timezone)
    weeks = [first + timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]
    moments = [min(utc_midnight(w + timedelta(weeks=1), tz), req.as_of + US) for w in weeks]
    starts = [utc_midnight(w, tz) for w in weeks]
    window = close_window(ctx, req.closing, local_time(moments[-1] - US, tz).date() if moments else req.as_of.date())
    if not weeks:  # the period starts after the review week
        return req, weeks, [], {"closing_from": window[0], "closing_to": window[1], "currency": ctx.config.currency}
    params = {**_params(ctx, req, starts[0], {}, window), "moments": moments, "week_starts": starts}
    rows = ctx.run_sql("pipeline_snapshot", req, params, {"__segment__": req.segment})
    rates = {m: rates_at(ctx, m) for m in moments}
    week_of = dict(zip(moments, weeks))
    out = [{**r, "week": week_of[r["moment"]], "value": r["amount"] * rates[r["moment"]].get(r["currency"], 1.0)} for r in rows]
    return req, weeks, out, {"closing_from": window[0], "closing_to": window[1], "currency": ctx.config.currency}


def pipeline_snapshot(ctx: Context, req: MetricRequest) -> list[dict]:
    """The open pipeline at the end of each local week (default: the 13 weeks ending with the review
    week; the week as_of falls in: at as_of) per stage (and --segment value), in deals closing in
    --closing: deals, value, and value weighted by the stage's [pipeline] probability."""
    req, _, rows, extra = _weekly(ctx, req)
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    order = {}
    for r in rows:
        if r["kind"] == "open":
            key = (r["week"], r["stage"], r["segment"])
            totals[key][0] += r["deals"]
            totals[key][1] += r["value"]
            order[key] = (r["week"], r["stage_order"], str(r["segment"]))
    probability = ctx.config.stage_probability
    out = []
    for key in sorted(totals, key=order.get):
        (week, stage, segment), (deals, value) = key, totals[key]
        share = probability.get(stage)
        out.append({"week": week, "stage": stage, **({req.segment: segment} if req.segment else {}), "deals": deals, "value": value,
                    "probability": share, "weighted_value": value * (share or 0.0), **extra})
    return out


def forecast(ctx: Context, req: MetricRequest) -> list[dict]:
    """The forecast categories at the end of each local week (default: the 13 weeks ending with the
    review week), per --segment value: the open deals' value by category (the CRM's forecast category,
    else [pipeline] forecast by stage, else pipeline) and closed, the value won in the week."""
    req, weeks, rows, extra = _weekly(ctx, req)
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    for r in rows:
        key = (r["week"], r["segment"], r["category"])
        totals[key][0] += r["deals"]
        totals[key][1] += r["value"]
    segments = sorted({r["segment"] for r in rows}, key=str) if req.segment else ["(all)"]
    out = []
    for week in weeks:
        for segment in segments:
            for category in FORECAST_CATEGORIES:
                deals, value = totals.get((week, segment, category), (0, 0.0))
                out.append({"week": week, **({req.segment: segment} if req.segment else {}), "category": category, "deals": deals,
                            "value": value, **extra})
    return out
