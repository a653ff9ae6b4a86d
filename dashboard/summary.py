"""The weekly review in a few sentences (docs/report.md, Summary), each read off `weekly_kpis` rows
(the cards' numbers, nothing computed again) and never claiming a change that chance explains:

- the key rate against last week: its counts, and the pooled two-proportion z-test (p < 0.05 is a
  change; otherwise "within what chance gives"); a cohort under `min_sample` is too few to judge;
- the counts (new leads, each stage reached, exits, losses) that moved beyond chance against last
  week (the two counts as Poisson: |a - b| / sqrt(a + b) >= 1.96, with a + b >= 10), the largest
  three;
- "Nothing changed beyond chance this week." when neither did; "No lead came in or moved this
  week." for an empty week.
"""

from __future__ import annotations

import math
from datetime import date

from funnelboard.core.config import FunnelConfig, stage_label
from funnelboard.warehouse.stats import Z95, two_proportion_p_value

ALPHA = 0.05
MIN_EVENTS = 10  # two counts that add up to fewer say nothing either way
MOST = 3  # counts named at the most
NO_DATA = "No lead came in or moved this week."


def _counts(config: FunnelConfig) -> list[tuple[str, str]]:
    return [("new_leads", "new leads"), *((f"reached_{s}", f"leads reaching {stage_label(s)}") for s in config.stages),
            ("exits", "exits"), ("lost", "lost deals")]


def week_summary(rows: list[dict], monday: date, config: FunnelConfig, *, partial: bool = False, days_in: float = 7.0) -> list[str]:
    """The sentences for the week of `monday` from `weekly_kpis` rows."""
    week = {r["kpi"]: r for r in rows if str(r["week"])[:10] == monday.isoformat()}
    counts = _counts(config)
    if not week or not any((week.get(k) or {}).get("value") for k, _ in counts):
        return [NO_DATA]
    out = []
    if partial:
        out.append(f"The week is to date ({days_in:.1f} of 7 days), compared with last week at the same point.")
    rate_sentence, rate_changed = _key_rate(week, config)
    if rate_sentence:
        out.append(rate_sentence)
    moved = []
    for kpi, name in counts:
        r = week.get(kpi)
        if not r or r["value"] is None or r.get("previous") is None:
            continue
        a, b = int(r["value"]), int(r["previous"])
        if a + b >= MIN_EVENTS and abs(a - b) / math.sqrt(a + b) >= Z95:
            moved.append((abs(a - b) / math.sqrt(a + b), f"{a:,} {name}, {'up' if a > b else 'down'} from {b:,} last week"))
    moved.sort(key=lambda m: -m[0])
    if moved:
        out.append("Beyond chance: " + "; ".join(text for _, text in moved[:MOST]) + ".")
    if not moved and not rate_changed:
        out.append("Nothing changed beyond chance this week.")
    return out


def _key_rate(week: dict, config: FunnelConfig) -> tuple[str | None, bool]:
    key = config.review_rate
    rate = week.get("key_rate")
    cohort = week.get("new_leads" if key.from_stage == config.stages[0] else f"reached_{key.from_stage}")
    if not rate or rate["value"] is None or not cohort or not cohort["value"]:
        return None, False
    n1, p1 = int(cohort["value"]), rate["value"]
    x1 = round(p1 * n1)
    name = f"{key.name} ({stage_label(key.from_stage)} → {stage_label(key.to_stage)})"
    still = " Its leads are still converting: the rate will rise." if (week.get("immature") or {}).get("value") else ""
    head = f"{name} {p1:.1%} ({x1:,} of {n1:,})"
    if n1 < config.min_sample:
        return f"{head}: too few leads to judge.{still}", False
    n2, p2 = cohort.get("previous"), rate.get("previous")
    if not n2 or p2 is None:
        return f"{head}; no week before to compare with.{still}", False
    n2 = int(n2)
    x2 = round(p2 * n2)
    p_value = two_proportion_p_value(x1, n1, x2, n2)
    points = (p1 - p2) * 100
    before = f"{p2:.1%} ({x2:,} of {n2:,}) last week"
    if p_value is not None and p_value < ALPHA and abs(points) >= 0.05:
        return (f"{head}, {'up' if points > 0 else 'down'} {abs(points):.1f} points on {before}: "
                f"more than chance gives (p = {p_value:.3f}).{still}"), True
    shown = "1.000" if p_value is None else f"{p_value:.2f}"
    return f"{head} against {before}: within what chance gives (p = {shown}), not a change to act on.{still}", False
