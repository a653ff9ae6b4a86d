"""The score threshold review (docs/metrics.md, Score threshold) computed again from an Oracle's leads.

Written from the doc. Readings:

S1  A lead is in a period when its created_at lies in the period (half-open) and at or before as_of
    (R5: leads of the leads file only count too), it matches the filters, and its score is a number in
    [0, 100] (R17). "Reached T" / "won" is reached_at(T) / reached_at(last stage) not None at as_of.
S2  Without a period asked, the current period is the last full calendar quarter before the quarter of
    as_of's local day (the configured time zone); with one, [start, end). The previous one: when both
    ends are local midnights on a first of a month, the same number of whole months before start,
    else [start - (end - start), start).
S3  The thresholds are 0, 10, ..., 90, the configured one and the asked one, each once, ascending. A
    lead passes a threshold when its score is >= it.
S4  Rows: current before previous, then segment value (as text), then threshold; a (period, value)
    without scored leads has no rows. Rates are None when their denominator is 0, and so are their
    Wilson bounds. Added / removed compare with the configured threshold of the same period and value;
    None without a configured threshold.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tests.oracle.oracle import Oracle, _number, wilson_interval

EDGES = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def utc_midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc).replace(tzinfo=None)


def local_time(t: datetime, tz: str) -> datetime:
    return t.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def local_day(t: datetime, tz: str) -> date:
    return local_time(t, tz).date()


def periods(oracle: Oracle, start: datetime | None, end: datetime | None) -> dict[str, tuple[datetime, datetime]]:
    """S2: the current and the previous period, UTC, half-open."""
    tz = oracle.config.timezone
    if start is not None or end is not None:
        start = start or min(min(e.entered_at for e in oracle.all_events), oracle.as_of)
        end = end or oracle.as_of + timedelta(microseconds=1)
    else:
        this = quarter_start(local_day(oracle.as_of, tz))
        last = quarter_start(this - timedelta(days=1))
        start, end = utc_midnight(last, tz), utc_midnight(this, tz)
    first, stop = local_time(start, tz), local_time(end, tz)
    if first.day == 1 and stop.day == 1 and first.time() == stop.time() == datetime.min.time():
        day = first.date()
        for _ in range(12 * (stop.year - first.year) + stop.month - first.month):
            day = (day - timedelta(days=1)).replace(day=1)
        return {"current": (start, end), "previous": (utc_midnight(day, tz), start)}
    return {"current": (start, end), "previous": (start - (end - start), start)}


def _rate(x: int, n: int) -> tuple:
    if n == 0:
        return None, None, None
    low, high = wilson_interval(x, n)
    return x / n, low, high


def score_threshold(oracle: Oracle, start=None, end=None, *, asked=None, segment=None, filters=None) -> list[dict]:
    config = oracle.config
    tz = config.timezone
    to_stage = oracle.key[1]
    won_stage = oracle.stages[-1]
    configured = config.score_threshold
    thresholds = sorted({float(t) for t in EDGES} | {float(t) for t in (configured, asked) if t is not None})
    spans = periods(oracle, start, end)
    members: dict[tuple[str, str], list[tuple[float, bool, bool]]] = defaultdict(list)
    for lead_id in sorted(oracle._attributes):
        created = oracle.created_at(lead_id)
        if created is None or created > oracle.as_of or not oracle._matches(lead_id, filters):
            continue
        score = _number(oracle._attribute(lead_id, config.score_column))
        if score is None or not 0 <= score <= 100:
            continue
        for name, (first, stop) in spans.items():
            if first <= created < stop:
                value = oracle._segment_value(lead_id, segment) if segment else "(all)"
                members[(name, value)].append(
                    (score, oracle.reached(lead_id, to_stage) is not None, oracle.reached(lead_id, won_stage) is not None))
    rows = []
    for name in ("current", "previous"):
        first, stop = spans[name]
        for value in sorted(v for p, v in members if p == name):
            group = members[(name, value)]

            def counts(t: float) -> tuple[int, int, int]:
                passed = [m for m in group if m[0] >= t]
                return len(passed), sum(1 for m in passed if m[1]), sum(1 for m in passed if m[2])

            base = counts(configured) if configured is not None else None
            reached = sum(1 for m in group if m[1])
            won = sum(1 for m in group if m[2])
            for t in thresholds:
                passed, passed_reached, passed_won = counts(t)
                row = {"period": name, "period_start": local_day(first, tz), "period_end": local_day(stop - timedelta(microseconds=1), tz)}
                if segment:
                    row[segment] = value
                p, p_lo, p_hi = _rate(passed_reached, passed)
                r, r_lo, r_hi = _rate(passed_reached, reached)
                wp, wp_lo, wp_hi = _rate(passed_won, passed)
                wr, wr_lo, wr_hi = _rate(passed_won, won)
                row.update({
                    "threshold": t, "configured": configured is not None and t == configured, "asked": asked is not None and t == asked,
                    "to_stage": to_stage, "won_stage": won_stage,
                    "leads": len(group), "reached": reached, "won": won,
                    "passed": passed, "passed_reached": passed_reached, "passed_won": passed_won,
                    "precision": p, "precision_low": p_lo, "precision_high": p_hi,
                    "recall": r, "recall_low": r_lo, "recall_high": r_hi,
                    "won_precision": wp, "won_precision_low": wp_lo, "won_precision_high": wp_hi,
                    "won_recall": wr, "won_recall_low": wr_lo, "won_recall_high": wr_hi,
                })
                for label, now, then in zip(("leads", "reached", "won"), (passed, passed_reached, passed_won), base or (None,) * 3):
                    row[f"{label}_added"] = None if then is None else max(now - then, 0)
                    row[f"{label}_removed"] = None if then is None else max(then - now, 0)
                rows.append(row)
    return rows

