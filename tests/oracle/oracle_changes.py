"""The changes of a period (docs/metrics.md, Changes) computed again from an Oracle's spells.

Written from the doc. Readings:

C1  A change happens at one instant; it counts in the period [start, end) when that instant is in
    it, and only what happened by as_of has happened (the Oracle's spells are those of as_of).
C2  entered S: a spell of funnel stage S begins. advanced / went_back from S: a spell of funnel
    stage S ends because a spell of a later / earlier funnel stage begins (a skip is one advance;
    a lead that moves twice counts twice). exited from S: an outcome spell begins; S is the latest
    funnel stage before it, "(none)" when there is none; its outcome and normalised reason come with it.
C3  newly_stalled at S (funnel stages before the last, with a threshold at as_of, no segment): the
    stall moment m = entered_at + threshold days (in microseconds, as a float), or for an SLA on
    the business clock its deadline (Oracle.breached_at), lies in the period
    and before as_of, and the spell had not ended by m. recovered from S: the spell ended in the
    period after m.
C4  new: created_at in the period (leads without events too). won: reached_at(last stage) in the
    period. lost: the lead's first spell of a lost outcome begins in the period and it has not won
    by as_of. closed: won or lost.
C5  Filters pick leads by their attributes; thresholds are the whole warehouse's (R15).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta

from tests.oracle.oracle import US, US_PER_DAY, Oracle

KINDS = ("entered", "advanced", "went_back", "exited", "newly_stalled", "recovered")
EPOCH = datetime(1970, 1, 1)
NO_STAGE = "(none)"


def _us(t: datetime) -> int:
    return (t - EPOCH) // US


def change_rows(oracle: Oracle, start: datetime, end: datetime, *, filters=None) -> list[dict]:
    """Every change of the period: lead_id, change, stage, to_stage, changed_at, reason."""
    rows = []

    def add(lead_id, change, stage, to_stage, at, reason=None):
        if start <= at < end and at <= oracle.as_of:
            rows.append({"lead_id": lead_id, "change": change, "stage": stage, "to_stage": to_stage, "changed_at": at, "reason": reason})

    threshold = oracle._thresholds(None)
    stages = oracle.stages
    for lead_id in oracle._leads(filters):
        for s in oracle._spells[lead_id]:
            if s.stage in stages:
                add(lead_id, "entered", s.stage, None, s.entered_at)
                if s.next_stage in stages:
                    kind = "advanced" if stages.index(s.next_stage) > stages.index(s.stage) else "went_back"
                    add(lead_id, kind, s.stage, s.next_stage, s.exited_at)
            else:
                add(lead_id, "exited", s.previous_funnel_stage, s.stage, s.entered_at, s.reason)
            if s.stage in stages[:-1]:
                t = threshold(s.stage, lead_id)
                if t.clock == "business":  # the deadline of an SLA in business hours, walked day by day
                    m = _us(oracle.breached_at(t, s.entered_at))
                elif t.days is None:
                    continue
                else:
                    m = _us(s.entered_at) + t.days * US_PER_DAY
                if _us(start) <= m < _us(end) and m < _us(oracle.as_of) and (s.exited_at is None or m < _us(s.exited_at)):
                    rows.append({"lead_id": lead_id, "change": "newly_stalled", "stage": s.stage, "to_stage": None,
                                 "changed_at": EPOCH + timedelta(microseconds=math.floor(m)), "reason": None})
                if s.exited_at is not None and m < _us(s.exited_at):
                    add(lead_id, "recovered", s.stage, None, s.exited_at)
    won_stage = stages[-1]
    for lead_id, created in oracle._created.items():
        if created is not None and oracle._matches(lead_id, filters):
            add(lead_id, "new", None, None, created)
    for lead_id in oracle._leads(filters):
        won = oracle.reached(lead_id, won_stage)
        if won is not None:
            add(lead_id, "won", won_stage, None, won)
        losses = [s for s in oracle._spells[lead_id] if s.stage in oracle.config.lost]
        if losses and won is None:  # the spells are those of as_of: won by as_of or not at all
            first = min(losses, key=lambda s: s.entered_at)
            add(lead_id, "lost", None, first.stage, first.entered_at)
    return rows


def changes(oracle: Oracle, start: datetime, end: datetime, *, filters=None) -> list[dict]:
    """Per funnel stage (then "(none)" when an exit had no stage before it): the count of each kind."""
    counts = Counter((r["stage"], r["change"]) for r in change_rows(oracle, start, end, filters=filters) if r["change"] in KINDS)
    out = [{"stage": s, **{k: counts[(s, k)] for k in KINDS}} for s in oracle.stages]
    if any(stage is None for stage, _ in counts):
        out.append({"stage": NO_STAGE, **{k: counts[(None, k)] for k in KINDS}})
    return out


def change_exits(oracle: Oracle, start: datetime, end: datetime, *, filters=None) -> list[dict]:
    """Exits by outcome and reason, most first, then by outcome and reason."""
    counts = Counter((r["to_stage"], r["reason"]) for r in change_rows(oracle, start, end, filters=filters) if r["change"] == "exited")
    rows = [{"outcome": o, "reason": reason, "exited": n} for (o, reason), n in counts.items()]
    return sorted(rows, key=lambda r: (-r["exited"], r["outcome"], r["reason"]))
