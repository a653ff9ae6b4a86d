"""Weekly cohort conversion (docs/metrics.md, `cohort_conversion`) computed again in plain Python.

Written from docs/metrics.md alone, like `oracle.py`, whose `Oracle` it builds on: reached_at,
filters, the local week of an instant and the conversion of one lead. Conventions as there:
naive UTC datetimes, half-open periods, ``window_days=None`` = the configured window.

Readings of the contract
------------------------
C1  The weeks run from the week of ``start`` (``None``: 12 weeks before as_of's week, i.e. the 13
    weeks ending with it) to the week of ``min(as_of, end - 1 microsecond)`` (``end`` None =
    as_of), every week listed even when nobody entered it; each cohort is the whole local week,
    also when ``start`` or ``end`` falls inside it.
C2  Pairs: with a from or a to stage, only that pair, a missing end being the neighbouring funnel
    stage (from sql: sql -> opportunity; to won: proposal -> won); else every consecutive pair of
    funnel stages in order, then first -> last (when the funnel has more than two stages). Rows:
    pair by pair, weeks ascending within a pair.
C3  A cell is ``conversion`` S -> T over [Monday 00:00, next Monday 00:00) local time: the same
    cohort, converted, immature and mature counts, rates NULL on an empty cohort.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tests.oracle.oracle import Oracle, _ratio
from tests.oracle.oracle_review import review_week


def week_list(oracle: Oracle, start: datetime | None, end: datetime | None, *, as_of_given=True, loaded_at=None) -> list[date]:
    last = review_week(oracle, end=end, as_of_given=as_of_given, loaded_at=loaded_at)
    first = oracle.week_of(start) if start is not None else last - timedelta(weeks=12)
    weeks = []
    week = first
    while week <= last:
        weeks.append(week)
        week += timedelta(weeks=1)
    return weeks


def pairs(stages: tuple[str, ...], from_stage: str | None, to_stage: str | None) -> list[tuple[str, str]]:
    if from_stage is None and to_stage is None:
        out = [(stages[i], stages[i + 1]) for i in range(len(stages) - 1)]
        if len(stages) > 2:
            out.append((stages[0], stages[-1]))
        return out
    return [(
        from_stage if from_stage is not None else stages[stages.index(to_stage) - 1],
        to_stage if to_stage is not None else stages[stages.index(from_stage) + 1],
    )]


def cohort_conversion(
    oracle: Oracle,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    from_stage: str | None = None,
    to_stage: str | None = None,
    window_days: int | None = None,
    filters=None,
    as_of_given: bool = True,
    loaded_at: datetime | None = None,
) -> list[dict]:
    window = oracle.config.conversion_window_days if window_days is None else window_days
    leads = oracle._leads(filters)
    weeks = week_list(oracle, start, end, as_of_given=as_of_given, loaded_at=loaded_at)
    rows = []
    for s, t in pairs(oracle.stages, from_stage, to_stage):
        maturity = oracle.maturity(s, t, window)
        by_week: dict[date, list[tuple[bool, bool]]] = {week: [] for week in weeks}
        for lead_id in leads:
            reached_s = oracle.reached(lead_id, s)
            if reached_s is None or oracle.week_of(reached_s) not in by_week:
                continue
            reached_t = oracle.reached(lead_id, t)
            converted = reached_t is not None and (window <= 0 or reached_t - reached_s <= timedelta(days=window))
            immature = oracle._immature(reached_s, maturity)
            by_week[oracle.week_of(reached_s)].append((converted, immature))
        for week in weeks:
            members = by_week[week]
            cohort = len(members)
            converted = sum(1 for c, _ in members if c)
            immature = sum(1 for _, i in members if i)
            mature_converted = sum(1 for c, i in members if c and not i)
            rows.append({
                "week": week,
                "from_stage": s,
                "to_stage": t,
                "cohort": cohort,
                "converted": converted,
                "rate": _ratio(converted, cohort),
                "immature": immature,
                "mature_cohort": cohort - immature,
                "mature_converted": mature_converted,
                "rate_mature": _ratio(mature_converted, cohort - immature),
                "window_days": window,
                "maturity_days": maturity,
            })
    return rows
