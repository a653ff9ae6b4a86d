"""Criteria health (docs/metrics.md, Criteria health) computed again from an Oracle's leads and spells.

Written from the doc. Readings:

K1  Weeks are local ISO weeks of the configured zone; week w covers [local Monday w 00:00, the next
    Monday 00:00), as UTC instants. The trend is 8 consecutive weeks, oldest first.
K2  A conversion check S -> T (too_broad, too_loose, targeting): H is the maturity horizon of S -> T.
    Its trend ends with the earlier of the review week and the week of as_of - H days. Its period is
    the request's when one was given, else its 8 trend weeks. A member is a lead (matching the
    filters) with reached_at(S) in the period, mature (as_of - reached_at(S) >= H); n = mature
    members; converted as in `conversion` (reached_at(T) by as_of, within the window). figure =
    converted / n; for targeting, per value of its column, (n - converted) / n. A week's trend value
    is the same over the week; NULL when n = 0.
K3  checklist_gap at stage X: exits = outcome spells entered in the period (by as_of) whose latest
    funnel stage before them is X. The top reason is the recorded reason (not "(no reason
    recorded)") with the most exits summed over outcomes, ties by name; figure = its exits / all
    exits (0 with no recorded reason; NULL with no exit). The trend weeks end with the review week;
    a week's value is the same reason's share of that week's exits.
K4  status: too_few when figure is NULL or n < min_sample; else fires when figure < threshold
    (too_broad) or > threshold (the others); else ok. A check whose stages are None is one row,
    not_applicable, segment value "(all)", before the others.
K5  With a segment: the values are those of the conversion checks' mature period members and of the leads
    with an exit (any stage) in the checklist period; every value gets a row per check (targeting: a
    row per value of its column, or one with no subject), values sorted, checks in config order.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from tests.oracle.oracle import NO_REASON, Oracle

WEEKS = 8
ALL = "(all)"
BELOW = ("too_broad",)


def _ratio(a, b):
    return a / b if b else None


def _weeks(oracle: Oracle, last: date) -> list[tuple[date, datetime, datetime]]:
    mondays = [last - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]
    return [(m, oracle._utc_monday(m), oracle._utc_monday(m + timedelta(weeks=1))) for m in mondays]


def _in(t, start, end) -> bool:
    return t is not None and start <= t < end


def criteria_health(oracle: Oracle, review_monday: date, *, start=None, end=None, segment=None, filters=None) -> list[dict]:
    """Rows as criteria_health returns them, without `reading`. review_monday: the request's review week."""
    config = oracle.config
    leads = oracle._leads(filters)
    window = config.conversion_window_days

    def value_of(lead_id):
        return ALL if segment is None else oracle._segment_value(lead_id, segment)

    results, values = {}, set()
    checks = config.health_checks
    for check in checks:
        if check.from_stage is None or check.name == "checklist_gap" or (check.name == "targeting" and check.segment is None):
            continue
        s, t = check.from_stage, check.to_stage
        h = oracle.maturity(s, t, window)
        last = min(review_monday, oracle.week_of(oracle.as_of - timedelta(days=h)))
        weeks = _weeks(oracle, last)
        period = (start, end) if start is not None else (weeks[0][1], weeks[-1][2])

        def counts(a, b):
            out = defaultdict(lambda: [0, 0])
            for lead_id in leads:
                r_s = oracle.reached(lead_id, s)
                if not _in(r_s, a, b) or oracle._immature(r_s, h):
                    continue
                r_t = oracle.reached(lead_id, t)
                converted = r_t is not None and (window <= 0 or r_t - r_s <= timedelta(days=window))
                subject = oracle._segment_value(lead_id, check.segment) if check.name == "targeting" else None
                key = (value_of(lead_id), subject)
                out[key][0] += 1
                out[key][1] += int(converted)
            return out

        groups = counts(*period)
        values |= {k[0] for k in groups}
        results[check.name] = (groups, [counts(a, b) for _, a, b in weeks], weeks, period, h)
    gap = next((c for c in checks if c.name == "checklist_gap" and c.from_stage is not None), None)
    if gap is not None:
        weeks = _weeks(oracle, review_monday)
        period = (start, end) if start is not None else (weeks[0][1], weeks[-1][2])
        exits = [sp for lead_id in leads for sp in oracle._spells.get(lead_id, []) if sp.stage in oracle.outcomes]

        def reasons(a, b):
            out = defaultdict(lambda: defaultdict(int))
            for sp in exits:
                if _in(sp.entered_at, a, b) and sp.previous_funnel_stage == gap.from_stage:
                    out[value_of(sp.lead_id)][sp.reason] += 1
            return out

        values |= {value_of(sp.lead_id) for sp in exits if _in(sp.entered_at, *period)}
        results[gap.name] = (reasons(*period), [reasons(a, b) for _, a, b in weeks], weeks, period, None)
    if segment is None:
        values = {ALL}

    rows = []
    for check in checks:
        if check.name not in results:
            rows.append(_row(check, ALL, segment, None, None, None, None, config.min_sample, window))
    for value in sorted(values):
        for check in checks:
            if check.name not in results:
                continue
            groups, trend, weeks, period, h = results[check.name]
            if check.name == "checklist_gap":
                by_reason = groups.get(value, {})
                total = sum(by_reason.values())
                recorded = sorted((-n, r) for r, n in by_reason.items() if r != NO_REASON)
                top = recorded[0][1] if recorded else None
                figure = _ratio(by_reason.get(top, 0), total) if total else None
                weekly = [_ratio(w.get(value, {}).get(top, 0), sum(w.get(value, {}).values())) for w in trend]
                rows.append(_row(check, value, segment, top, figure, total, (weeks, period, h, weekly), config.min_sample, window))
                continue
            subjects = [None]
            if check.name == "targeting":
                subjects = sorted(k[1] for k in groups if k[0] == value) or [None]
            for subject in subjects:
                n, x = groups.get((value, subject), (0, 0))
                weekly = [_figure(check, *w.get((value, subject), (0, 0))) for w in trend]
                rows.append(_row(check, value, segment, subject, _figure(check, n, x), n, (weeks, period, h, weekly), config.min_sample, window))
    return rows


def _figure(check, n, x):
    if not n:
        return None
    return (n - x) / n if check.name == "targeting" else x / n


def _row(check, value, segment, subject, figure, n, trend, min_sample, window) -> dict:
    below = check.name in BELOW
    if trend is None:
        status = "not_applicable"
    elif figure is None or n < min_sample:
        status = "too_few"
    else:
        status = "fires" if (figure < check.threshold if below else figure > check.threshold) else "ok"
    row = {} if segment is None else {segment: value}
    weeks, period, h, weekly = trend or (None, (None, None), None, [None] * WEEKS)
    row.update({
        "check": check.name, "from_stage": check.from_stage, "to_stage": check.to_stage, "subject": subject,
        "figure": figure, "threshold": check.threshold, "fires_when": "below" if below else "above", "n": n,
        "status": status, "period_from": period[0], "period_to": period[1], "maturity_days": h, "window_days": window,
        "trend_week": weeks[0][0] if weeks else None,
    })
    row.update({f"trend_w{i + 1}": v for i, v in enumerate(weekly)})
    return row

