"""Pipeline value of docs/metrics.md computed again from an Oracle's event log, written from the doc.

P1  A lead's amount after an event: the latest non-empty [attributes] amount among its events so far,
    in event order (entered_at, stage rank, file, line), as a number.
P2  In the pipeline after an event: the event's stage is a funnel stage from [pipeline] from_stage on
    (every funnel stage without one) before the last, and the lead has an amount. Its value then is
    that amount, else 0. Before a lead's first event it is out, with value 0.
P3  pipeline_changes over [start, end) as of as_of: the events with entered_at < end and <= as_of.
    start = the value after the lead's last such event before start; end = after its last one. Each
    event in the period that touches the pipeline: out -> in is created (the value after); in -> in
    with another amount is increased / decreased by the difference; in -> out first changes the
    amount the same way, then leaves with the amount after: won (the last stage), lost ([review] lost)
    or exited. Per segment value of the lead's attributes, over the leads in the pipeline at the start
    or the end or with an event touching it in the period (a value with none has no row).
P4  pipeline_snapshot: for each week, at its end (the next local Monday 00:00, or as_of + 1 us when
    that is earlier), the leads in the pipeline after their last event before that moment, by the
    stage of that event: how many and the sum of their values; weighted by [pipeline] probability.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from tests.oracle.oracle import Oracle, _number

US = timedelta(microseconds=1)


_EVENTS: dict[int, tuple[Oracle, dict]] = {}


def _by_lead(oracle: Oracle) -> dict:
    """The oracle's whole log per lead in event order, worked out once per oracle."""
    if id(oracle) not in _EVENTS or _EVENTS[id(oracle)][0] is not oracle:
        _EVENTS[id(oracle)] = (oracle, oracle._events_by_lead(oracle.all_events))
    return _EVENTS[id(oracle)][1]


def moves(oracle: Oracle, lead_id: str, until) -> list[tuple]:
    """(at, stage, was_in, is_in, amount_before, amount_after) of the lead's events with entered_at <= until."""
    column = oracle.config.amount_column
    first = oracle.stages.index(oracle.config.pipeline_from) if oracle.config.pipeline_from else 0
    open_stages = set(oracle.stages[first:-1])
    events = [e for e in _by_lead(oracle).get(lead_id, []) if e.entered_at <= until]
    out, amount, was_in = [], None, False
    for e in events:
        value = _number(e.attrs.get(column)) if column else None
        before, amount = amount, (value if value is not None else amount)
        is_in = e.stage in open_stages and amount is not None
        out.append((e.entered_at, e.stage, was_in, is_in, before, amount))
        was_in = is_in
    return out


def _value(move) -> float:
    return move[5] if move[3] else 0.0


def _zero(kinds, money) -> dict:
    row = {"start_deals": 0, "start_value": money}
    for k in kinds:
        row.update({f"n_{k}": 0, k: money})
    return {**row, "end_deals": 0, "end_value": money}


def pipeline_changes(oracle: Oracle, start, end, *, segment=None, filters=None) -> list[dict]:
    groups: dict[str, dict] = {}
    kinds = ("created", "increased", "decreased", "won", "lost", "exited")
    for lead in oracle._leads(filters):
        ms = [m for m in moves(oracle, lead, oracle.as_of) if m[0] < end]
        before = [m for m in ms if m[0] < start]
        in_period = [m for m in ms if m[0] >= start and (m[2] or m[3])]
        if not ((before and before[-1][3]) or (ms and ms[-1][3]) or in_period):
            continue
        g = groups.setdefault(oracle._segment_value(lead, segment) if segment else "(all)", _zero(kinds, 0.0))
        if before and before[-1][3]:
            g["start_deals"] += 1
            g["start_value"] += _value(before[-1])
        for at, stage, was_in, is_in, amount_before, amount_after in ms:
            if at < start:
                continue
            if not was_in and is_in:
                g["n_created"] += 1
                g["created"] += amount_after
            if was_in and amount_after != amount_before:
                kind = "increased" if amount_after > amount_before else "decreased"
                g[f"n_{kind}"] += 1
                g[kind] += abs(amount_after - amount_before)
            if was_in and not is_in:
                kind = "won" if stage == oracle.stages[-1] else "lost" if stage in oracle.config.lost else "exited"
                g[f"n_{kind}"] += 1
                g[kind] += amount_after
        if ms[-1][3]:
            g["end_deals"] += 1
            g["end_value"] += _value(ms[-1])
    if segment is None and not groups:
        groups["(all)"] = _zero(kinds, 0)
    extra = {"period_from": start, "period_to": end, "as_of": oracle.as_of, "currency": oracle.config.currency}
    rows = []
    for value in sorted(groups):
        row = {segment: value} if segment else {}
        rows.append({**row, **groups[value], **extra})
    return rows


def pipeline_snapshot(oracle: Oracle, weeks, *, segment=None, filters=None) -> list[dict]:
    cells: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    journeys = {lead: moves(oracle, lead, oracle.as_of) for lead in oracle._leads(filters)}
    for week in weeks:
        moment = min(oracle._utc_monday(week + timedelta(weeks=1)), oracle.as_of + US)
        for lead, all_moves in journeys.items():
            ms = [m for m in all_moves if m[0] < moment]
            if ms and ms[-1][3]:
                cell = cells[(week, oracle.stages.index(ms[-1][1]), oracle._segment_value(lead, segment) if segment else "(all)")]
                cell[0] += 1
                cell[1] += _value(ms[-1])
    rows = []
    for (week, order, value), (deals, total) in sorted(cells.items()):
        stage = oracle.stages[order]
        share = oracle.config.stage_probability.get(stage)
        row = {"week": week, "stage": stage}
        if segment:
            row[segment] = value
        rows.append({**row, "deals": deals, "value": total, "probability": share, "weighted_value": total * (share or 0.0),
                     "currency": oracle.config.currency})
    return rows
