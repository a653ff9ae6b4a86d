"""Criteria health (docs/metrics.md): the qualification playbook's checks on the criteria, each a
figure against a configured threshold ([criteria_health]), with its 8-week trend and a reading.

Built on the existing metrics: the conversion checks on `segment_conversion`'s query (cohort
conversion per segment value, mature members only), the checklist check on `disqualifiers --by
stage_left`. The default stages are the key rate's (core/config.py, criteria_defaults); a check the
funnel cannot fill is one row saying so in its own stage names, never a guessed stage.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from funnelboard.core.config import CRITERIA_CHECKS, HealthCheck, stage_label
from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    local_monday,
    maturity_days,
    period_params,
    reached,
    utc_midnight,
)
from funnelboard.warehouse.metrics.disqualifiers import disqualifiers
from funnelboard.warehouse.metrics.weekly import review

TREND_WEEKS = 8
ALL = "(all)"  # the segment value of a check that does not apply, and of every row without --segment
NO_REASON = "(no reason recorded)"
BELOW = ("too_broad",)  # checks that fire below their threshold (a floor); the others above (a ceiling)
TREND = tuple(f"trend_w{i}" for i in range(1, TREND_WEEKS + 1))
COLUMNS = (
    "check", "from_stage", "to_stage", "subject", "figure", "threshold", "fires_when", "n", "status", "reading",
    "period_from", "period_to", "maturity_days", "trend_week", *TREND,
)


def criteria_health(ctx: Context, req: MetricRequest) -> list[dict]:
    """The playbook's checks on the qualification criteria ([criteria_health]): the key rate below a
    floor, its second stage -> the next above a ceiling, one exit reason at the second stage above a share,
    a channel whose leads mostly never make the key rate; each with figure, threshold, status, reading and 8-week trend; per segment
    value with --segment.

    Without --from/--to a check's figure is over its 8 trend weeks; with them, over that period."""
    week = review(ctx, req)
    explicit = req.start is not None or req.end is not None
    req = ctx.resolve(req)
    checks = ctx.config.health_checks
    why = {c.name: reason for c in checks if (reason := _not_applicable(ctx, c))}
    applicable = [c for c in checks if c.name not in why]
    results = {c.name: _conversion_check(ctx, req, c, week.monday, explicit) for c in applicable if c.name != "checklist_gap"}
    values = sorted({key[0] for result in results.values() for key in result["groups"]})
    for check in applicable:
        if check.name == "checklist_gap":  # after the others: it runs once per segment value they found
            results[check.name] = _checklist_check(ctx, req, check, week.monday, explicit, values)
            values = sorted(set(values) | {key[0] for key in results[check.name]["groups"]})
    if req.segment is None:
        values = [ALL]
    out = [_row(ctx, req, c, ALL, None, why=why[c.name]) for c in checks if c.name in why]
    for value in values:
        for check in applicable:
            out.extend(_rows(ctx, req, check, value, results[check.name]))
    return out


def _not_applicable(ctx: Context, check: HealthCheck) -> str | None:
    """Why a check cannot run on this funnel (its key-rate stage has no stage after it, no segment
    column), in the funnel's own stage names, else None."""
    if check.from_stage is None:
        source, to, win = ctx.config.review_rate.from_stage, ctx.config.review_rate.to_stage, ctx.config.won_stage
        if check.name == "checklist_gap":
            what = f"the key rate ends at {to!r}, the win, which no lead leaves to an outcome"
        elif check.name == "too_loose" and to == win:
            what = f"the key rate ends at {to!r}, the win, so no stage follows it"
        elif check.name == "too_loose":
            what = f"no stage comes between the key rate's {to!r} and the win {win!r}"
        elif to == win:
            what = (f"the key rate ({source!r} to {to!r}) ends at the win, so it is a close rate, and this check's "
                    "threshold is for a qualification step")
        else:
            what = f"the key rate's stages ({source!r}, {to!r}) do not fit it"
        stages = "a stage" if check.name == "checklist_gap" else "the stages"
        return f"Does not apply: {what}; name {stages} in [criteria_health] {check.name} to run it."
    if check.name == "targeting" and check.segment is None:
        return (f"Does not apply: there is no {CRITERIA_CHECKS['targeting']['segment']!r} segment column; name one in "
                f"[criteria_health] targeting to run it.")
    return None


def _weeks(ctx: Context, last: date) -> list[tuple[date, datetime, datetime]]:
    """The trend's weeks, oldest first, ending with the week of Monday `last`: (Monday, UTC start, UTC end)."""
    tz = ZoneInfo(ctx.config.timezone)

    mondays = [last - timedelta(weeks=TREND_WEEKS - 1 - i) for i in range(TREND_WEEKS)]
    return [(m, utc_midnight(m, tz), utc_midnight(m + timedelta(weeks=1), tz)) for m in mondays]


def _period(req: MetricRequest, weeks: list, explicit: bool) -> tuple[datetime, datetime]:
    return (req.start, req.end) if explicit else (weeks[0][1], weeks[-1][2])


def _conversion_check(ctx: Context, req: MetricRequest, check: HealthCheck, review_monday: date, explicit: bool) -> dict:
    """Mature cohort conversion S -> T of the period and of each trend week, per (segment value, value
    of the targeting column): {(value, subject): (mature members, mature converted)}."""
    maturity = maturity_days(ctx, check.from_stage, check.to_stage, req.as_of, req.window_days)
    # the trend ends with the latest week that has mature members (or the review week, if earlier)
    last = min(review_monday, local_monday(req.as_of - timedelta(days=maturity), ctx.config.timezone))
    weeks = _weeks(ctx, last)
    start, end = _period(req, weeks, explicit)
    by = check.segment if check.name == "targeting" else None

    def counts(period_start: datetime, period_end: datetime) -> dict[tuple[str, str | None], tuple[int, int]]:
        sub = replace(req, start=period_start, end=period_end)
        crossed = by is not None and by != req.segment
        identifiers = {
            "__from__": reached(check.from_stage), "__to__": reached(check.to_stage),
            "__segment__": req.segment if req.segment is not None else by, "__segment2__": by if crossed and req.segment else None,
        }
        rows = ctx.run_sql("segment_conversion", sub, {**period_params(sub), "maturity_days": maturity}, identifiers)
        out: dict[tuple[str, str | None], tuple[int, int]] = {}
        for r in rows:
            if r["n"] == r["immature"]:
                continue  # no mature member: the group is not there yet
            if by is None:
                key = (r["segment"] if req.segment is not None else ALL, None)
            elif req.segment is None:
                key = (ALL, r["segment"])
            else:
                key = (r["segment"], r["segment2"] if crossed else r["segment"])
            out[key] = (r["n"] - r["immature"], r["mature_converted"])
        return out

    groups = counts(start, end)
    trend = [counts(ws, we) for _, ws, we in weeks]
    return {"groups": groups, "trend": trend, "weeks": weeks, "period": (start, end), "maturity": maturity}


def _checklist_check(ctx: Context, req: MetricRequest, check: HealthCheck, review_monday: date, explicit: bool, values: list[str]) -> dict:
    """Exits from the stage (disqualifiers --by stage_left) of the period and of each trend week, per
    segment value: {(value, None): (exits, {reason: exits})}; the trend weeks end with the review week."""
    weeks = _weeks(ctx, review_monday)
    start, end = _period(req, weeks, explicit)

    def exits(period_start: datetime, period_end: datetime, value: str | None) -> tuple[int, dict[str, int]]:
        filters = req.filters if value is None else (*req.filters, (req.segment, value))
        rows = disqualifiers(ctx, replace(req, start=period_start, end=period_end, by="stage_left", filters=filters, segment=None))
        reasons: dict[str, int] = defaultdict(int)
        for r in rows:
            if r["stage_left"] == check.from_stage:
                reasons[r["reason"]] += r["exits"]  # one reason, whatever the outcome it led to
        return sum(reasons.values()), dict(reasons)

    if req.segment is None:
        keys = [ALL]
    else:
        by_value = disqualifiers(ctx, replace(req, start=start, end=end, by=req.segment, segment=None))
        keys = sorted(set(values) | {r[req.segment] for r in by_value})
    groups, trend = {}, [{} for _ in weeks]
    for value in keys:
        filter_value = None if value == ALL else value
        groups[(value, None)] = exits(start, end, filter_value)
        for i, (_, ws, we) in enumerate(weeks):
            trend[i][(value, None)] = exits(ws, we, filter_value)
    return {"groups": groups, "trend": trend, "weeks": weeks, "period": (start, end), "maturity": None}


def top_reason(reasons: dict[str, int]) -> str | None:
    """The reason with the most exits (ties: the first by name), a recorded one only."""
    recorded = [(-n, reason) for reason, n in reasons.items() if reason != NO_REASON]
    return min(recorded)[1] if recorded else None


def _rows(ctx: Context, req: MetricRequest, check: HealthCheck, value: str, result: dict) -> list[dict]:
    """The rows of one check for one segment value: one, or one per targeting value."""
    if check.name == "checklist_gap":
        total, reasons = result["groups"].get((value, None), (0, {}))
        reason = top_reason(reasons)
        figure = (reasons[reason] if reason else 0) / total if total else None
        trend = []
        for week in result["trend"]:
            week_total, week_reasons = week.get((value, None), (0, {}))
            trend.append(week_reasons.get(reason, 0) / week_total if week_total else None)
        return [_row(ctx, req, check, value, reason, figure=figure, n=total, trend=trend, result=result)]
    subjects = [None]
    if check.name == "targeting":  # a row per value of its column (one without a value when it has none)
        subjects = sorted(key[1] for key in result["groups"] if key[0] == value) or [None]
    rows = []
    for subject in subjects:
        n, converted = result["groups"].get((value, subject), (0, 0))
        trend = [_figure(check, *week.get((value, subject), (0, 0))) for week in result["trend"]]
        rows.append(_row(ctx, req, check, value, subject, figure=_figure(check, n, converted), n=n, trend=trend, result=result))
    return rows


def _figure(check: HealthCheck, n: int, converted: int) -> float | None:
    """The conversion rate of the mature members, or (targeting) the share that never converted."""
    if not n:
        return None
    return (n - converted) / n if check.name == "targeting" else converted / n


def status(figure: float | None, n: int, threshold: float, below: bool, min_sample: int) -> str:
    """fires / ok, or too_few when n < min_sample (the segments' too-few-to-judge rule)."""
    if figure is None or n < min_sample:
        return "too_few"
    return "fires" if (figure < threshold if below else figure > threshold) else "ok"


def _row(ctx: Context, req: MetricRequest, check: HealthCheck, value: str, subject: str | None, *, why: str | None = None,
         figure: float | None = None, n: int | None = None, trend: list | None = None, result: dict | None = None) -> dict:
    below = check.name in BELOW
    row = {} if req.segment is None else {req.segment: value}
    state = "not_applicable" if why else status(figure, n, check.threshold, below, ctx.config.min_sample)
    row.update({
        "check": check.name,
        "from_stage": check.from_stage,
        "to_stage": check.to_stage,
        "subject": subject,
        "figure": figure,
        "threshold": check.threshold,
        "fires_when": "below" if below else "above",
        "n": n,
        "status": state,
        "reading": why or _reading(ctx, check, state, subject, figure, n),
        "period_from": result["period"][0] if result else None,
        "period_to": result["period"][1] if result else None,
        "maturity_days": result["maturity"] if result else None,
        "window_days": req.window_days,
        "trend_week": result["weeks"][0][0] if result else None,
    })
    row.update(zip(TREND, trend or [None] * TREND_WEEKS))
    return row


def _pct(x: float) -> str:
    return f"{x * 100:.1f}".removesuffix(".0") + " %"


def _reading(ctx: Context, check: HealthCheck, state: str, subject: str | None, figure: float | None, n: int) -> str:
    """One sentence: the figure against the threshold, and what the playbook says it may mean."""
    s = stage_label(check.from_stage)
    t = stage_label(check.to_stage) if check.to_stage else None
    limit = f"the {_pct(check.threshold)} {'floor' if check.name in BELOW else 'ceiling'}"
    if state == "too_few":
        unit = f"exits from {s}" if check.name == "checklist_gap" else f"leads that reached {s} (mature cohorts)"
        if check.name == "targeting" and subject is not None:
            unit += f" from {_segment_label(ctx, check.segment)} {subject!r}"
        return f"Only {n:,} {unit} in the period: too few to judge (at least {ctx.config.min_sample:,} needed)."
    if state == "fires":
        beyond = "below" if check.name in BELOW else "above"
    else:
        beyond = "at or above" if check.name in BELOW else "at or below"
    if check.name == "too_broad":
        meaning = f": the {s} criteria may be too broad." if state == "fires" else "."
        return f"{_pct(figure)} of {n:,} leads that reached {s} (mature cohorts) went on to {t}, {beyond} {limit}{meaning}"
    if check.name == "too_loose":
        meaning = f": the {s} criteria may be too loose, or discovery too shallow." if state == "fires" else "."
        return f"{_pct(figure)} of {n:,} leads that reached {s} (mature cohorts) went on to {t}, {beyond} {limit}{meaning}"
    if check.name == "checklist_gap":
        if subject is None:
            return f"None of the {n:,} exits from {s} records a reason."
        meaning = f": the {s} checklist may need to confirm it earlier." if state == "fires" else "."
        return f"{subject!r}, the commonest reason, is {_pct(figure)} of {n:,} exits from {s}, {beyond} {limit}{meaning}"
    who = f"{_segment_label(ctx, check.segment)} {subject!r}"
    meaning = f": the targeting of {who} may be off." if state == "fires" else "."
    return f"{_pct(figure)} of {n:,} leads from {who} that reached {s} (mature cohorts) never reached {t}, {beyond} {limit}{meaning}"


def _segment_label(ctx: Context, column: str) -> str:
    return ctx.config.segments.get(column, column).lower()

