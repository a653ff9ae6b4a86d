"""The time-in-stage curves of docs/metrics.md (`survival`, `duration_distribution`) in plain Python.

Written from docs/metrics.md, like tests/oracle/oracle.py, whose spells, durations (integer
microseconds, calendar or business) and segment values it reuses through an ``Oracle``; nothing
here looks at queries/ or warehouse/. The grid constants are restated from the doc on purpose.

Readings of the contract (continuing oracle.py's R1-R18)
------------------------------------------------------
R19 Both metrics read exactly the spells of ``time_in_stage``: funnel stages before the last,
    entered in ``[start, end)`` and by as_of, filters on lead attributes; open spells count with
    their age at as_of (censored). A stage without such spells has no rows.
R20 The horizon h of a stage is the ceil(0.99 n)-th smallest duration of its completed spells
    (of all its spells when none is completed), over every segment value.
R21 ``survival``: step w = the first of WIDTHS with K = max(ceil(h / w - SLACK), 0) <= 200; grid
    points t_k = k * w for k = 0..K (computed as the float ``k * w``). A duration counts at t_k
    when ``days <= (k + SLACK) * w``. Each curve also gets a point at each KM p50/p75/p90 time that
    exists (exact comparisons there); a grid point within SLACK * w of such a point gives way to it.
    ``km_quantile`` is the space-joined sorted names of the quantiles at that time, else None.
    Rows by stage order, segment value, days.
R22 ``duration_distribution``: width w = the first of WIDTHS with B = floor(h / w + SLACK) + 1
    <= 40; a spell goes in bin min(floor(days / w + SLACK), B). Bins 0..B-1 are listed even when
    empty, bin B (``bin_end`` None) only when it has spells.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from datetime import datetime

from tests.oracle.oracle import Oracle, _days, _in_period, km_quantile

WIDTHS = (1 / 24, 0.125, 0.25, 0.5, 1.0, 2.0, 3.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0, 730.0)
MAX_STEPS = 200
MAX_BINS = 40
SLACK = 1e-6
QUANTILES = (("p50", 0.5), ("p75", 0.75), ("p90", 0.9))


def stage_groups(
    oracle: Oracle, start: datetime, end: datetime, *, segment=None, business_days=False, filters=None
) -> dict[str, dict[str, list[tuple[int, bool]]]]:
    """stage -> segment value ('(all)' without a segment) -> [(duration in us, completed)] (R19)."""
    groups: dict[str, dict[str, list[tuple[int, bool]]]] = {stage: defaultdict(list) for stage in oracle.stages[:-1]}
    for spell in oracle._all_spells(oracle._leads(filters)):
        if spell.stage not in groups or not _in_period(spell.entered_at, start, end):
            continue
        value = "(all)" if segment is None else oracle._segment_value(spell.lead_id, segment)
        groups[spell.stage][value].append(oracle._spell_duration_us(spell, business_days))
    return groups


def horizon(curves: dict[str, list[tuple[int, bool]]]) -> float:
    """R20: the ceil(0.99 n)-th smallest completed duration of the stage, in days."""
    items = [item for values in curves.values() for item in values]
    chosen = sorted(us for us, completed in items if completed) or sorted(us for us, _ in items)
    return _days(chosen[math.ceil(0.99 * len(chosen)) - 1])


def km_steps(items: list[tuple[int, bool]]) -> list[tuple[int, float]]:
    """(t, S(t)) at every distinct completed duration t (us), ascending: S = prod (1 - d_i / n_i)."""
    durations = sorted(us for us, _ in items)
    deaths: dict[int, int] = defaultdict(int)
    for us, completed in items:
        if completed:
            deaths[us] += 1
    steps, s = [], 1.0
    for t in sorted(deaths):
        at_risk = len(durations) - bisect_left(durations, t)  # spells with duration >= t
        s *= 1 - deaths[t] / at_risk
        steps.append((t, s))
    return steps


def _row(stage, segment, value, days, items, upto, survival, mark) -> dict:
    """One output row: counts of spells with duration `upto(us)` true."""
    completed = sum(1 for us, c in items if c and upto(us))
    censored = sum(1 for us, c in items if not c and upto(us))
    row = {"stage": stage}
    if segment is not None:
        row[segment] = value
    row.update({
        "days": days,
        "at_risk": len(items) - completed - censored,
        "completed": completed,
        "censored": censored,
        "survival": survival,
        "km_quantile": mark,
    })
    return row


def survival(oracle: Oracle, start, end, *, segment=None, business_days=False, filters=None) -> list[dict]:
    rows = []
    groups = stage_groups(oracle, start, end, segment=segment, business_days=business_days, filters=filters)
    for stage in oracle.stages[:-1]:
        curves = groups[stage]
        if not curves:
            continue
        h = horizon(curves)
        width = next(w for w in WIDTHS if max(math.ceil(h / w - SLACK), 0) <= MAX_STEPS)
        steps = max(math.ceil(h / width - SLACK), 0)
        for value in sorted(curves):
            items = curves[value]
            km = km_steps(items)
            marks: dict[int, list[str]] = defaultdict(list)
            for name, p in QUANTILES:
                t = km_quantile(items, p)
                if t is not None:
                    marks[t].append(name)
            points = []
            for t, names in marks.items():
                s = next(s for u, s in km if u == t)
                points.append(_row(stage, segment, value, _days(t), items, lambda us, t=t: us <= t, s, " ".join(sorted(names))))
            mark_days = [p["days"] for p in points]
            for k in range(steps + 1):
                days = k * width
                if any(abs(m - days) <= SLACK * width for m in mark_days):
                    continue
                bound = (k + SLACK) * width
                before = [s_u for u, s_u in km if _days(u) <= bound]
                s = before[-1] if before else 1.0
                points.append(_row(stage, segment, value, days, items, lambda us, b=bound: _days(us) <= b, s, None))
            rows.extend(sorted(points, key=lambda r: r["days"]))
    return rows


def duration_distribution(oracle: Oracle, start, end, *, segment=None, business_days=False, filters=None) -> list[dict]:
    rows = []
    groups = stage_groups(oracle, start, end, segment=segment, business_days=business_days, filters=filters)
    for stage in oracle.stages[:-1]:
        curves = groups[stage]
        if not curves:
            continue
        h = horizon(curves)
        width = next(w for w in WIDTHS if math.floor(h / w + SLACK) + 1 <= MAX_BINS)
        bins = math.floor(h / width + SLACK) + 1
        for value in sorted(curves):
            counts = defaultdict(lambda: [0, 0])
            for us, completed in curves[value]:
                k = min(math.floor(_days(us) / width + SLACK), bins)
                counts[k][0 if completed else 1] += 1
            for k in range(bins + 1):
                if k == bins and k not in counts:
                    continue
                row = {"stage": stage}
                if segment is not None:
                    row[segment] = value
                row.update({
                    "bin_start": k * width,
                    "bin_end": (k + 1) * width if k < bins else None,
                    "completed": counts[k][0],
                    "open": counts[k][1],
                })
                rows.append(row)
    return rows
