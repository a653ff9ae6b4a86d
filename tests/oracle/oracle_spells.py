"""The spell list of docs/metrics.md (`spells`) in plain Python, from an ``Oracle``'s spells.

Readings of the contract (continuing oracle.py's R1-R22)
------------------------------------------------------
R23 Every spell entered in ``[start, end)`` and by as_of, of any stage (funnel stages and
    outcomes), filters on lead attributes. ``next_kind`` as of as_of: ``open`` without a next spell
    (``terminal`` for a last spell in a terminal stage); ``exited`` to an outcome; ``returned`` from
    an outcome back to a funnel stage; ``advanced`` / ``regressed`` to a later / not later funnel
    stage. ``reason`` is the normalised one, None for ``(no reason recorded)``; ``stage_left`` the
    stage of the latest funnel spell before, ``(none)`` for none. ``duration_days`` is time in
    stage's length (R19): completed to its exit, open to as_of, calendar or business days.
R24 The mark filters: a bin [lo, hi) with step w keeps ``floor(days / w + SLACK)`` in
    ``[round(lo / w), round(hi / w))`` (the histogram's bins, R22); ``longer_than`` t with step w
    keeps ``ceil(days / w - SLACK) > round(t / w)`` (survival's at_risk, R21), without a step
    ``days > t`` (the KM quantile points).
"""

from __future__ import annotations

import math
from datetime import datetime

from tests.oracle.oracle import NO_REASON, NONE_VALUE, Oracle, _days, _in_period
from tests.oracle.oracle_time import SLACK


def _next_kind(oracle: Oracle, spell) -> str:
    if spell.next_stage is None:
        return "terminal" if spell.stage in oracle.config.terminal_stages else "open"
    if spell.next_stage in oracle.outcomes:
        return "exited"
    if spell.stage in oracle.outcomes:
        return "returned"
    return "advanced" if oracle.rank[spell.next_stage] > oracle.rank[spell.stage] else "regressed"


def spells(oracle: Oracle, start: datetime, end: datetime, *, business_days: bool = False, filters=None) -> list[dict]:
    """Rows as the metric's columns up to the lead attributes, by entered_at, lead_id, spell_no (R23)."""
    rows = []
    for s in oracle._all_spells(oracle._leads(filters)):
        if not _in_period(s.entered_at, start, end):
            continue
        us, _completed = oracle._spell_duration_us(s, business_days)
        rows.append({
            "lead_id": s.lead_id, "spell_no": s.spell_no, "stage": s.stage, "entered_at": s.entered_at,
            "left_at": s.exited_at, "left_to": s.next_stage, "next_kind": _next_kind(oracle, s),
            "reason": None if s.reason == NO_REASON else s.reason,
            "stage_left": s.previous_funnel_stage or NONE_VALUE, "duration_days": _days(us),
            "entered_week": oracle.week_of(s.entered_at),
        })
    return sorted(rows, key=lambda r: (r["entered_at"], r["lead_id"], r["spell_no"]))


def in_bin(days: float, lo: float | None, hi: float | None, step: float | None) -> bool:
    """R24: the histogram's bin rule."""
    if step is None:
        return (lo is None or days >= lo) and (hi is None or days < hi)
    k = math.floor(days / step + SLACK)
    return (lo is None or k >= round(lo / step)) and (hi is None or k < round(hi / step))


def longer_than(days: float, t: float, step: float | None) -> bool:
    """R24: survival's at_risk rule."""
    return days > t if step is None else math.ceil(days / step - SLACK) > round(t / step)
