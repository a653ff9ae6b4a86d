"""Handoff quality (docs/metrics.md, Handoff) computed again from an Oracle's spells.

Written from the doc. Readings:

H1  F and T are the key rate's stages (Oracle.key). The handoff is reached_at(T) (by as_of: the
    Oracle's spells are those of as_of); a lead counts once, at its first handoff.
H2  The handoff spell is the first spell (in spell order) entered at reached_at(T) whose stage is T
    or a later funnel stage; the departure is the first later spell whose stage is not T or a later
    funnel stage. Sent back: the departure is an earlier funnel stage or a sent-back outcome, and,
    when N > 0, began at most N days (in microseconds) after the handoff.
H3  Settled: as_of - moment >= N days, for a handoff (moment reached_at(T)) and an F cohort member
    (moment reached_at(F)).
H4  Worked: reached_at(T) not None, or a spell entered at or after reached_at(F) of a funnel stage
    after F or of an outcome, or an activity timestamp (the attribute read as TRY_CAST to timestamp
    reads it) strictly after reached_at(F) and at or before as_of.
H5  When T is the funnel's last stage, sent back and never worked do not apply (NULL, with a note).
H6  Filters pick leads by their attributes; a segment's missing value is "(none)"; groups in value
    order, only values with a handoff or an F cohort member; without a segment one row always.
"""

from __future__ import annotations

from datetime import datetime

from tests.oracle.oracle import US, US_PER_DAY, Oracle, _days, _in_period, _ratio, _timestamp, quantile, wilson_interval


def _activity_columns(oracle: Oracle) -> list[str]:
    cfg = oracle.config
    return list(dict.fromkeys(c for c in (cfg.last_activity_column, cfg.first_response_column) if c))


def _older(oracle: Oracle, moment: datetime, days: int) -> bool:
    return (oracle.as_of - moment) // US >= days * US_PER_DAY


def lead_rows(oracle: Oracle, start: datetime, end: datetime, *, handoff_days: int, filters=None) -> list[dict]:
    """One row per lead with reached_at(T) or reached_at(F) in the period, with the doc's flags."""
    f, t = oracle.key
    stages = oracle.stages
    t_order = stages.index(t)
    f_order = stages.index(f)
    sent_back_outcomes = oracle.config.sent_back
    rows = []
    for lead_id in oracle._leads(filters):
        from_at, to_at = oracle.reached(lead_id, f), oracle.reached(lead_id, t)
        handoff, from_member = _in_period(to_at, start, end), _in_period(from_at, start, end)
        if not (handoff or from_member):
            continue
        spells = oracle._spells[lead_id]
        sales = [s.stage in stages and stages.index(s.stage) >= t_order for s in spells]
        sent_back_to = sent_back_at = None
        settled = handoff and _older(oracle, to_at, handoff_days)
        if handoff:
            k = next(i for i, s in enumerate(spells) if s.entered_at == to_at and sales[i])
            departure = next((s for i, s in enumerate(spells) if i > k and not sales[i]), None)
            if departure is not None:
                back = departure.stage in stages or departure.stage in sent_back_outcomes
                soon = handoff_days == 0 or (departure.entered_at - to_at) // US <= handoff_days * US_PER_DAY
                if settled and back and soon:
                    sent_back_to, sent_back_at = departure.stage, departure.entered_at
        moved = to_at is not None or (from_at is not None and any(
            s.entered_at >= from_at and (s.stage not in stages or stages.index(s.stage) > f_order) for s in spells))
        active = False
        for column in _activity_columns(oracle):
            at = _timestamp(oracle._attribute(lead_id, column))
            if at is not None and from_at is not None and from_at < at <= oracle.as_of:
                active = True
        from_settled = from_member and _older(oracle, from_at, handoff_days)
        rows.append({
            "lead_id": lead_id,
            "from_at": from_at,
            "to_at": to_at,
            "handoff": handoff,
            "settled": settled,
            "sent_back": sent_back_to is not None,
            "sent_back_to": sent_back_to,
            "sent_back_at": sent_back_at,
            "days_to_accept": _days((to_at - from_at) // US) if handoff and from_at is not None else None,
            "from_member": from_member,
            "from_settled": from_settled,
            "no_disposition": from_settled and not moved,
            "never_worked": from_settled and not (moved or active),
        })
    return rows


def handoff(oracle: Oracle, start: datetime, end: datetime, *, handoff_days: int | None = None, segment: str | None = None,
            filters=None) -> list[dict]:
    days = oracle.config.handoff_days if handoff_days is None else handoff_days
    f, t = oracle.key
    note_applies = t == oracle.stages[-1]
    groups: dict[str, list[dict]] = {}
    for row in lead_rows(oracle, start, end, handoff_days=days, filters=filters):
        value = "(all)" if segment is None else oracle._segment_value(row["lead_id"], segment)
        groups.setdefault(value, []).append(row)
    if segment is None:
        groups.setdefault("(all)", [])
    out = []
    for value in sorted(groups):
        rows = groups[value]
        settled = sum(r["settled"] for r in rows)
        sent = sum(r["sent_back"] for r in rows)
        never = sum(r["never_worked"] for r in rows)
        undisposed = sum(r["no_disposition"] for r in rows)
        from_settled = sum(r["from_settled"] for r in rows)
        gaps = [r["days_to_accept"] for r in rows if r["days_to_accept"] is not None]
        low, high = wilson_interval(sent, settled) if settled and not note_applies else (None, None)
        row = {} if segment is None else {segment: value}
        row.update({
            "from_stage": f,
            "to_stage": t,
            "handoff_days": days,
            "handoffs": sum(r["handoff"] for r in rows),
            "settled_handoffs": settled,
            "sent_back": None if note_applies else sent,
            "sent_back_rate": None if note_applies else _ratio(sent, settled),
            "wilson_low": low,
            "wilson_high": high,
            "too_few": settled < oracle.config.min_sample,
            "median_days_to_accept": quantile(gaps, 0.5),
            "p90_days_to_accept": quantile(gaps, 0.9),
            "from_cohort": sum(r["from_member"] for r in rows),
            "from_settled": from_settled,
            "no_disposition": None if note_applies else undisposed,
            "never_worked": None if note_applies else never,
            "never_worked_share": None if note_applies else _ratio(never, from_settled),
        })
        out.append(row)
    return out


def listed(oracle: Oracle, start: datetime, end: datetime, kind: str, *, handoff_days: int | None = None, filters=None) -> list[str]:
    """The lead ids behind one count (handoff, sent_back, no_disposition, never_worked), sorted."""
    days = oracle.config.handoff_days if handoff_days is None else handoff_days
    rows = lead_rows(oracle, start, end, handoff_days=days, filters=filters)
    return sorted(r["lead_id"] for r in rows if r[kind])

