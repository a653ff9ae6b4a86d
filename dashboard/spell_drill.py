"""Drill-down of the marks that count spells: a click opens /spells with the mark's filters.

As dashboard/drill.py does for lead marks, each chart's figure puts a `customdata` dict on every
mark and a mapper here turns it (and the view) into the spell list's keys
(warehouse/metrics/spells.py): a stage-accounting bar -> stage and what came next (and the outcome
left to); a disqualifier bar or trend point -> outcome, reason (and week); a duration-histogram
bar -> stage, its bin and completed or open; a survival point -> stage, the spells still in the
stage after its days (survival's at_risk) and its segment value. The page's period, as-of, lead
filters and calendar or business days stay, so the list has exactly the mark's number of rows.
"""

from __future__ import annotations

from funnelboard.core.config import FunnelConfig
from funnelboard.dashboard import drill, state

SPELLS = "/spells"
SPELL_KEYS = ("stage", "outcome", "reason", "days", *state.SPELL_KEYS)


def spells_href(search: str | None, changes: dict[str, str | None], config: FunnelConfig) -> str:
    """/spells with the shared part of the current query, calendar or business days, then the mark's keys."""
    view = state.parse(search, config)
    keys = {k: None for k in SPELL_KEYS} | {"days": "business" if view.business_days else None} | changes
    return SPELLS + state.replace_keys(state.keep_global(search, config.segments), keys)


def _number(value) -> str | None:
    """A day count as the address carries it: repr keeps a float exact (1/24 stays 0.041666666666666664)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return repr(float(value))


def accounting_bar(point: dict, config: FunnelConfig, _search: str | None = None) -> dict | None:
    """A stage-accounting bar: the stage's spells entered in the period with that next step (an exit: to that outcome)."""
    stage, kind = point.get("stage"), point.get("next")
    if stage not in config.stages or kind not in ("advanced", "exited", "regressed", "open"):
        return None
    outcome = point.get("outcome")
    if outcome is not None and outcome not in config.outcomes:
        return None
    return {"stage": stage, "next": kind, "left_to": outcome}


def disqualifier_mark(point: dict, config: FunnelConfig, _search: str | None = None) -> dict | None:
    """A disqualifier bar (outcome, reason) or trend point (and its week): the outcome spells of that reason;
    the trend's "Other reasons" point: the week's exits outside the top N reasons."""
    outcome, reason = point.get("outcome"), point.get("reason")
    top, week = point.get("other_than_top"), point.get("week")
    if isinstance(top, int) and not isinstance(top, bool) and top > 0 and isinstance(week, str):
        return {"outcome": None, "reason": None, "week": week[:10], "other_than_top": str(top)}
    if outcome not in config.outcomes or not isinstance(reason, str):
        return None
    return {"outcome": outcome, "reason": reason, "week": str(week)[:10] if week else None, "other_than_top": None}


def histogram_bar(point: dict, config: FunnelConfig, _search: str | None = None) -> dict | None:
    """A duration-histogram bar: the stage's spells in the bin, completed ones or open ones."""
    stage, low, step = point.get("stage"), _number(point.get("min_days")), _number(point.get("step"))
    if stage not in config.stages or low is None:
        return None
    return {"stage": stage, "min_days": low, "max_days": _number(point.get("max_days")), "step": step,
            "next": "open" if point.get("open") else "closed"}


def survival_point(point: dict, config: FunnelConfig, _search: str | None = None) -> dict | None:
    """A survival point: the stage's spells still in it after that many days (the curve's at_risk), of its segment value."""
    stage, days = point.get("stage"), _number(point.get("days"))
    if stage not in config.stages or days is None:
        return None
    segment = {k: str(v) for k, v in point.items() if k in config.segments}
    return {"stage": stage, "longer_than": days, "step": _number(point.get("step")), **segment}


def click_target(mapper, click: dict | None, search: str | None) -> str | None:
    """The /spells address a click opens, or None when the mark has nothing to drill into."""
    return drill.click_target(mapper, click, search, spells_href)


def register(graph_id: str, mapper) -> None:
    """Clicking a mark of graph_id opens its spell list."""
    drill.register(graph_id, mapper, spells_href, "spells")
