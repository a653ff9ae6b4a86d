"""The score threshold review (docs/metrics.md, Score threshold): for candidate lead-score thresholds,
how well "score at or above the threshold" picks the leads that reach T (the key rate's second stage,
SQL by default) and the win, and what moving the configured threshold would add or remove; the
current period beside the one before it, so drift shows.

The candidate threshold a user asks about comes as `--filter threshold=X` (`?threshold=X` on the
dashboard), spells-style: taken out of the filters here, checked and bound as a value.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from funnelboard.core.errors import UserError
from funnelboard.core.periods import resolve as resolve_period
from funnelboard.warehouse.metrics.base import Context, MetricRequest, reached, start_week, utc_midnight
from funnelboard.warehouse.stats import wilson_interval

THRESHOLD = "threshold"  # the filter key of the asked-for threshold
GRID = tuple(range(0, 100, 10))  # the score bands' lower edges (docs/metrics.md, Score bands)
PERIODS = ("current", "previous")


def asked_threshold(req: MetricRequest) -> tuple[MetricRequest, float | None]:
    """The request without its `threshold` filter, and the threshold it asks about (None: none)."""
    values = [v for c, v in req.filters if c == THRESHOLD]
    if len(values) > 1:
        raise UserError("give one threshold (--filter threshold=X), not several.")
    rest = replace(req, filters=tuple((c, v) for c, v in req.filters if c != THRESHOLD))
    if not values:
        return rest, None
    try:
        value = float(values[0])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"threshold '{values[0]}' is not a number; give a lead score such as 60.")
    return rest, value


def review_periods(ctx: Context, req: MetricRequest, explicit: bool) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """The current and the previous period (UTC, half-open). Current: the request's period; without one
    asked, the last full calendar quarter before as_of's (local time). Previous: as many whole months
    before when the current one runs from a first of a month to a first of a month (local midnights),
    else the span of the same length just before."""
    tz = ZoneInfo(ctx.config.timezone)

    def local(moment: datetime) -> datetime:
        return moment.replace(tzinfo=timezone.utc).astimezone(tz)

    if explicit:
        start, end = req.start, req.end
    else:
        first, last = resolve_period("last_quarter", local(req.as_of).date())
        start, end = utc_midnight(first, tz), utc_midnight(last + timedelta(days=1), tz)
    first, stop = local(start), local(end)
    if all(t.day == 1 and t.time() == time.min for t in (first, stop)):
        months = 12 * (stop.year - first.year) + stop.month - first.month
        year, month = divmod(12 * first.year + first.month - 1 - months, 12)
        return (start, end), (utc_midnight(date(year, month + 1, 1), tz), start)
    return (start, end), (start - (end - start), start)


def _local_day(moment: datetime, tz: str) -> date:
    return moment.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz)).date()


def _rate(x: int, n: int) -> tuple[float | None, float | None, float | None]:
    if n == 0:
        return None, None, None
    low, high = wilson_interval(x, n)
    return x / n, low, high


def score_threshold(ctx: Context, req: MetricRequest) -> list[dict]:
    """Score threshold review: per candidate lead-score threshold, precision and recall against reaching
    the key rate's second stage and the win, with Wilson intervals, and the leads a move from the
    configured threshold would add or remove; this period and the one before (default: the last two
    full quarters). Ask about a threshold with --filter threshold=X."""
    cfg = ctx.config
    if cfg.score_column is None:
        raise UserError("score_threshold needs a lead score, and this funnel has no [attributes] score configured.")
    req, asked = asked_threshold(req)
    explicit = req.start is not None or req.end is not None
    req = ctx.resolve(req)
    (start, end), (previous_start, previous_end) = review_periods(ctx, req, explicit)
    configured = cfg.score_threshold
    grid = sorted({float(t) for t in GRID} | {t for t in (configured, asked) if t is not None})
    key = cfg.review_rate
    params = {
        "start_week": start_week(previous_start), "start": start, "end": end, "previous_start": previous_start,
        "previous_end": previous_end, "as_of": req.as_of, "thresholds": grid,
    }
    identifiers = {"__segment__": req.segment, "__to__": reached(key.to_stage), "__won__": reached(cfg.won_stage)}
    rows = ctx.run_sql("score_threshold", req, params, identifiers)
    spans = {"current": (start, end), "previous": (previous_start, previous_end)}
    at_configured = {(r["period"], r["segment"]): r for r in rows if configured is not None and r["threshold"] == configured}
    out = []
    for r in sorted(rows, key=lambda r: (PERIODS.index(r["period"]), r["segment"], r["threshold"])):
        first, stop = spans[r["period"]]
        row = {"period": r["period"], "period_start": _local_day(first, cfg.timezone),
               "period_end": _local_day(stop - timedelta(microseconds=1), cfg.timezone)}
        if req.segment is not None:
            row[req.segment] = r["segment"]
        precision, precision_low, precision_high = _rate(r["passed_reached"], r["passed"])
        recall, recall_low, recall_high = _rate(r["passed_reached"], r["reached"])
        won_precision, won_precision_low, won_precision_high = _rate(r["passed_won"], r["passed"])
        won_recall, won_recall_low, won_recall_high = _rate(r["passed_won"], r["won"])
        row.update({
            "threshold": r["threshold"],
            "configured": configured is not None and r["threshold"] == configured,
            "asked": asked is not None and r["threshold"] == asked,
            "to_stage": key.to_stage,
            "won_stage": cfg.won_stage,
            "leads": r["leads"],
            "reached": r["reached"],
            "won": r["won"],
            "passed": r["passed"],
            "passed_reached": r["passed_reached"],
            "passed_won": r["passed_won"],
            "precision": precision, "precision_low": precision_low, "precision_high": precision_high,
            "recall": recall, "recall_low": recall_low, "recall_high": recall_high,
            "won_precision": won_precision, "won_precision_low": won_precision_low, "won_precision_high": won_precision_high,
            "won_recall": won_recall, "won_recall_low": won_recall_low, "won_recall_high": won_recall_high,
        })
        base = at_configured.get((r["period"], r["segment"]))
        for name, column in (("leads", "passed"), ("reached", "passed_reached"), ("won", "passed_won")):
            change = None if base is None else r[column] - base[column]
            row[f"{name}_added"] = None if change is None else max(change, 0)
            row[f"{name}_removed"] = None if change is None else max(-change, 0)
        out.append(row)
    return out
