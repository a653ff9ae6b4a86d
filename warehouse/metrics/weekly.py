"""The weekly review's numbers (docs/metrics.md): which week it reviews, KPIs per local ISO week against
last week and the 4 weeks before (each seen at the same point of its week), and the segment values
that moved most."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from funnelboard.core.errors import UserError
from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    local_monday,
    local_time,
    maturity_days,
    ratio,
    reached,
    utc_midnight,
    week_of,
)
from funnelboard.warehouse.metrics.segments import run_mix
from funnelboard.warehouse.metrics.wins import losses_recorded, weekly_closes

DEFAULT_WEEKS = 13  # weekly_kpis without a period start: the 13 weeks ending with the review week
MAX_WEEKS = 520  # a weekly table of more than ten years is a mistake, not a review
LIVE_DAYS = 7  # data whose latest event is this close to its load is live: the review is this week, to date
COMPARED_WEEKS = 4


@dataclass(frozen=True)
class ReviewWeek:
    """The week the weekly review shows, and why that one."""

    monday: date  # local Monday
    as_of: datetime  # UTC
    partial: bool  # as_of falls inside the week: its counts are week to date
    days_in: float  # days of the week up to as_of (7 when it is over)
    reason: str  # period_end | as_of | live | last_full_week
    data_end: datetime | None  # the latest event (UTC)
    feed_end: datetime | None  # the latest new lead (UTC)


def review(ctx: Context, req: MetricRequest) -> ReviewWeek:
    """The review week of a request (not yet resolved): the week of the period end or of --as-of when
    one is given; else, when the data is live (its latest event within LIVE_DAYS of its load), the week
    of the latest event, to date; else (old data) the last full week of new leads."""
    resolved = ctx.resolve(req)
    tz = ctx.config.timezone
    as_of = resolved.as_of
    data_end, feed_end = ctx.latest_event(), latest_new_lead(ctx, as_of)
    if req.end is not None:
        monday, reason = local_monday(min(as_of, resolved.end - timedelta(microseconds=1)), tz), "period_end"
    elif req.as_of is not None or data_end is None:
        monday, reason = local_monday(as_of, tz), "as_of"
    elif is_live(ctx, data_end):
        monday, reason = local_monday(as_of, tz), "live"
    else:
        last = local_time(feed_end or data_end, ZoneInfo(tz))
        monday = last.date() - timedelta(days=last.weekday())
        if last.weekday() != 6:  # the feed stopped before the week's Sunday: take the full week before
            monday -= timedelta(weeks=1)
        reason = "last_full_week"
    # days on the local wall clock (a week with a clock change has 7 too); as_of is an instant seen to
    # its end, so its last microsecond (a Sunday's as_of, 23:59:59.999999) completes the week
    seen = local_time(as_of + timedelta(microseconds=1), ZoneInfo(tz)) - datetime.combine(monday, time.min)
    days_in = min(max(seen / timedelta(days=1), 0.0), 7.0)
    return ReviewWeek(monday, as_of, days_in < 7.0, days_in, reason, data_end, feed_end)


def last_complete_week(ctx: Context) -> date:
    """The Monday of the last complete week of the data: the review week, or the one before it while
    the review week is still to date (the weekly pack's and the alerts' default)."""
    week = review(ctx, MetricRequest())
    return week.monday - timedelta(weeks=1) if week.partial else week.monday


def is_live(ctx: Context, data_end: datetime) -> bool:
    """Whether the data is current: its latest event within LIVE_DAYS of the load that published it
    (of now, for a warehouse that does not say when it was loaded)."""
    loaded = ctx.gateway.facts().get("published_at") or datetime.now(timezone.utc).replace(tzinfo=None)
    return loaded - data_end <= timedelta(days=LIVE_DAYS)


def latest_new_lead(ctx: Context, as_of: datetime) -> datetime | None:
    """When the last lead entered the funnel by as_of (its created_at); once per published file."""

    def compute():
        rows = ctx.gateway.query("select max(created_at) from fct_leads where created_at <= $as_of", {"as_of": as_of}).rows
        return rows[0][0] if rows else None

    return ctx.per_file(("latest_new_lead", as_of), compute)


def review_week(ctx: Context, req: MetricRequest) -> list[dict]:
    """The week the weekly review shows and why: the period end's or as-of's week, this week to date
    when the data is live, else the last full week of new leads (old data)."""
    r = review(ctx, req)
    return [{
        "week": r.monday, "as_of": r.as_of, "partial": r.partial, "days_in": r.days_in, "reason": r.reason,
        "data_end": r.data_end, "new_leads_end": r.feed_end,
    }]


def weekly_kpis(ctx: Context, req: MetricRequest) -> list[dict]:
    """Weekly KPIs per local ISO week, the last one the review week, with the change against last
    week and the mean of the 4 weeks before; the review week is compared with those weeks as they
    stood at the same point (week to date, the same cohort age)."""
    weeks = DEFAULT_WEEKS if req.start is None else None  # the default start (earliest event) would be too long
    week = review(ctx, req)
    req = ctx.resolve(req)
    first_week = local_monday(req.start, ctx.config.timezone) if weeks is None else week.monday - timedelta(weeks=weeks - 1)
    check_span(first_week, week.monday)
    key = ctx.config.review_rate
    maturity = maturity_days(ctx, key.from_stage, key.to_stage, req.as_of, req.window_days)
    rows = _weekly_rows(ctx, req, first_week, week.monday, maturity, same_point=False)
    # the 4 weeks before, each as it stood the same time after its start: the last of them as of
    # as_of - 7 days, the one before as of as_of - 14 days, ...
    earlier_req = replace(req, as_of=req.as_of - timedelta(weeks=1))
    first_then = week.monday - timedelta(weeks=COMPARED_WEEKS)
    then = _weekly_rows(ctx, earlier_req, first_then, week.monday - timedelta(weeks=1), maturity, same_point=True)
    then = {r["week"]: r for r in then}
    kpis = [k for k in rows[0] if k != "week"] if rows else []
    out = []
    for i, row in enumerate(rows):
        last = i == len(rows) - 1
        for kpi in kpis:
            value = row[kpi]
            if last:  # the review week: against the earlier weeks as they stood at the same point
                earlier = [then.get(row["week"] - timedelta(weeks=k), {}).get(kpi) for k in range(1, COMPARED_WEEKS + 1)]
            else:
                earlier = [rows[j][kpi] if j >= 0 else None for j in range(i - 1, i - 1 - COMPARED_WEEKS, -1)]
            previous = earlier[0]
            mean_4w = sum(earlier) / COMPARED_WEEKS if all(v is not None for v in earlier) else None
            out.append({
                "week": row["week"],
                "kpi": kpi,
                "value": value,
                "previous": previous,
                "delta_week": None if value is None or previous is None else value - previous,
                "mean_4w": mean_4w,
                "delta_4w": None if value is None or mean_4w is None else value - mean_4w,
                "partial": last and week.partial,
                "window_days": req.window_days,
            })
    return out


def week_mix(ctx: Context, req: MetricRequest) -> list[dict]:
    """The review week's key rate against last week's at the same point (the weekly cards' two
    numbers), its change split into segment mix and segment rates (--segment): mix_vs_rate over the
    two weeks, this week's cohort as of as_of and last week's as of a week earlier, every member kept."""
    week = review(ctx, req)
    key = ctx.config.review_rate
    req = replace(ctx.resolve(req), from_stage=key.from_stage, to_stage=key.to_stage)
    tz = ZoneInfo(ctx.config.timezone)
    maturity = maturity_days(ctx, key.from_stage, key.to_stage, req.as_of, req.window_days)
    before = (utc_midnight(week.monday - timedelta(weeks=1), tz), utc_midnight(week.monday, tz))
    after = (before[1], utc_midnight(week.monday + timedelta(weeks=1), tz))
    return run_mix(ctx, req, before, after, maturity, False, before_as_of=req.as_of - timedelta(weeks=1))


def _weekly_rows(ctx: Context, req: MetricRequest, first_week: date, last_week: date, maturity: float, *, same_point: bool) -> list[dict]:
    """weekly_kpis.sql's rows from first_week to last_week (none when that is empty), with the win
    rate of the closes of each week, in KPI order; `maturity` is the key rate's horizon (at as_of)."""
    if first_week > last_week:
        return []
    stages, key = ctx.config.stages, ctx.config.review_rate
    params = {
        "as_of": req.as_of, "first_week": first_week, "last_week": last_week, "window_days": req.window_days,
        "same_point": int(same_point),
        "maturity_days": maturity,
    }
    identifiers = {
        "__first__": reached(stages[0]), "__from__": reached(key.from_stage), "__to__": reached(key.to_stage),
        "__from_week__": week_of(key.from_stage), "__to_week__": week_of(key.to_stage),
    }
    rows = ctx.run_sql("weekly_kpis", req, params, identifiers)
    closes = _closes_by_week(ctx, req, first_week, last_week, same_point)
    out = []
    for row in rows:
        won, lost = closes.get(row["week"], (0, 0)) if closes is not None else (None, None)
        out.append({
            "week": row["week"],
            "new_leads": row["new_leads"],
            **{reached(s): row[reached(s)] for s in stages[1:]},
            "exits": row["exits"],
            "key_rate": row["key_rate"],
            "immature": int(row["immature"]),  # a KPI like the others: 1 when the week's cohort has immature members
            "median_days_to_target": row["median_days_to_target"],
            "lost": lost,
            "win_rate": None if won is None else ratio(won, won + lost),
        })
    return out


def _closes_by_week(ctx: Context, req: MetricRequest, first_week: date, last_week: date, same_point: bool) -> dict | None:
    """(won, lost) per local week from first_week to last_week, each week as of its moment; None when
    the warehouse records no lost deal (a win rate would then mean nothing)."""
    if not losses_recorded(ctx):
        return None
    tz = ZoneInfo(ctx.config.timezone)

    if not same_point:
        return weekly_closes(ctx, replace(req, start=utc_midnight(first_week, tz), end=utc_midnight(last_week + timedelta(weeks=1), tz)))
    out = {}
    week = first_week
    while week <= last_week:
        moment = req.as_of - (last_week - week)
        out.update(weekly_closes(ctx, replace(req, start=utc_midnight(week, tz), end=utc_midnight(week + timedelta(weeks=1), tz), as_of=moment)))
        week += timedelta(weeks=1)
    return out


def shown_weeks(ctx: Context, req: MetricRequest, weeks: int | None) -> tuple[date, date]:
    """The first and last local Mondays of a weekly table for a request (not yet resolved): from the
    period start's week (or, given `weeks`, from weeks - 1 weeks before the review week) to the review week."""
    last = review(ctx, req).monday
    start = ctx.resolve(req).start
    first = local_monday(start, ctx.config.timezone) if weeks is None else last - timedelta(weeks=weeks - 1)
    check_span(first, last)
    return first, last


def check_span(first: date, last: date) -> None:
    """UserError when a weekly table would run over more than MAX_WEEKS weeks."""
    weeks = (last - first).days // 7 + 1
    if weeks > MAX_WEEKS:
        raise UserError(f"the period spans {weeks:,} weeks; a weekly view shows at most {MAX_WEEKS} (ten years): shorten it.")


def movers(ctx: Context, req: MetricRequest) -> list[dict]:
    """Top movers: leads reaching the key rate's two stages in the review week and the week before per
    segment value (every column, or --segment), biggest change at the second stage first."""
    this_week = review(ctx, req).monday
    req = ctx.resolve(req)
    key = ctx.config.review_rate
    out = []
    for column in ([req.segment] if req.segment else ctx.config.segments):
        rows = ctx.run_sql(
            "movers", req, {"as_of": req.as_of, "this_week": this_week},
            {"__segment__": column, "__from__": reached(key.from_stage), "__to__": reached(key.to_stage),
             "__from_week__": week_of(key.from_stage), "__to_week__": week_of(key.to_stage)},
        )
        for r in rows:
            out.append({
                "week": this_week,
                "segment": column,
                "value": r["segment"],
                "from_stage": key.from_stage,
                "to_stage": key.to_stage,
                "from_this_week": r["from_this_week"],
                "from_last_week": r["from_last_week"],
                "to_this_week": r["to_this_week"],
                "to_last_week": r["to_last_week"],
                "delta_to": r["to_this_week"] - r["to_last_week"],
            })
    out.sort(key=lambda r: (-abs(r["delta_to"]), r["segment"], r["value"]))
    return out
