"""The lead-level metrics of docs/metrics.md (leads, lead_history) computed again from an Oracle.

Written from the doc: the leads list is the conversion cohort of `Oracle._cohort` (the same
members `conversion` counts), each lead's position is its last spell as of as_of.
"""

from __future__ import annotations

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
            "immature": immature,
            "stage_now": last.stage if last else None,
            "in_stage_since": last.entered_at if last else None,
        }
        row.update({col: oracle._attribute(lead_id, col) for col in ["owner"] + [c for c in oracle.config.segments if c != "owner"]})
        amount_col = oracle.config.amount_column
        row["amount"] = _number(oracle._attribute(lead_id, amount_col)) if amount_col else None
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


def movers(oracle: Oracle, end, *, segment=None, filters=None) -> list[dict]:
    """Leads reaching mql / sql in the review week (as_of's, or end's when earlier) and the week before, per value."""
    from datetime import timedelta

    anchor = oracle.as_of if end is None else min(oracle.as_of, end - timedelta(microseconds=1))
    this_week = oracle.week_of(anchor)
    last_week = this_week - timedelta(days=7)
    leads = oracle._leads(filters)
    out = []
    for column in [segment] if segment else oracle.config.segments:
        counts: dict[str, dict[str, int]] = {}
        for lead_id in leads:
            weeks = {}
            for stage in ("mql", "sql"):
                at = oracle.reached(lead_id, stage)
                weeks[stage] = oracle.week_of(at) if at is not None else None
            if not {weeks["mql"], weeks["sql"]} & {this_week, last_week}:
                continue
            value = oracle._attribute(lead_id, column)
            c = counts.setdefault("(none)" if value is None else value, {"mt": 0, "ml": 0, "st": 0, "sl": 0})
            c["mt"] += weeks["mql"] == this_week
            c["ml"] += weeks["mql"] == last_week
            c["st"] += weeks["sql"] == this_week
            c["sl"] += weeks["sql"] == last_week
        for value, c in counts.items():
            out.append({
                "week": this_week, "segment": column, "value": value,
                "mqls_this_week": c["mt"], "mqls_last_week": c["ml"],
                "sqls_this_week": c["st"], "sqls_last_week": c["sl"], "delta_sqls": c["st"] - c["sl"],
            })
    out.sort(key=lambda r: (-abs(r["delta_sqls"]), r["segment"], r["value"]))
    return out
