"""The lead-level metrics of docs/metrics.md (leads, lead_history) computed again from an Oracle.

Written from the doc: the leads list is the conversion cohort of `Oracle._cohort` (the same
members `conversion` counts), each lead's position is its last spell as of as_of.
"""

from __future__ import annotations

from tests.oracle import oracle_money
from tests.oracle.oracle import NO_REASON, Oracle, _days, _number


def leads(oracle: Oracle, from_stage, to_stage, start, end, *, which="all", window_days=None, filters=None) -> list[dict]:
    window = oracle._window(window_days)
    rows = []
    for lead_id, converted, immature in oracle._cohort(from_stage, to_stage, start, end, window, oracle._leads(filters)):
        if which != "all" and converted != (which == "converted"):
            continue
        last = oracle._spells[lead_id][-1] if oracle._spells.get(lead_id) else None
        row = {
            "lead_id": lead_id,
            "from_stage": from_stage,
            "from_at": oracle.reached(lead_id, from_stage),
            "to_stage": to_stage,
            "to_at": oracle.reached(lead_id, to_stage),
            "converted": converted,
            "window_days": window,
            "immature": immature,
            "stage_now": last.stage if last else None,
            "in_stage_since": last.entered_at if last else None,
        }
        row.update({col: oracle._attribute(lead_id, col) for col in ["owner"] + [c for c in oracle.config.segments if c != "owner"]})
        amount_col = oracle.config.amount_column
        row["amount"] = _number(oracle._attribute(lead_id, amount_col)) if amount_col else None
        if oracle.config.deal_currency_column:
            row["amount_currency"] = oracle._attribute(lead_id, oracle.config.deal_currency_column)
        if oracle.config.close_date_column:
            row.update(oracle_money.slips(oracle, lead_id))
        rows.append(row)
    rows.sort(key=lambda r: r["lead_id"])
    rows.sort(key=lambda r: r["from_at"], reverse=True)
    return rows


def lead_history(oracle: Oracle, lead_id: str, *, business_days=False) -> list[dict]:
    spells = oracle._spells.get(lead_id, [])
    rows = []
    for i, s in enumerate(spells):
        current = i == len(spells) - 1
        rows.append({
            "spell_no": s.spell_no,
            "stage": s.stage,
            "entered_at": s.entered_at,
            "exited_at": s.exited_at,
            "next_stage": s.next_stage,
            "days": _days(oracle._duration_us(s.entered_at, oracle.as_of if current else s.exited_at, business_days)),
            "current": current,
            "reason": None if s.reason == NO_REASON else s.reason,
        })
    return rows
