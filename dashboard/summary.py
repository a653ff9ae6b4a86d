"""The weekly review in a few sentences (docs/report.md, Summary), each read off `weekly_kpis` rows
(the cards' numbers, nothing computed again) and never claiming a change that chance explains:

- the key rate against last week: its counts, and the pooled two-proportion z-test (p < 0.05 is a
  change; otherwise "within what chance gives"); a cohort under `min_sample` is too few to judge;
- the counts (new leads, each stage reached, exits, losses) that moved beyond chance against last
  week (the two counts as Poisson: |a - b| / sqrt(a + b) >= 1.96, with a + b >= 10), the largest
  three;
- when the key rate changed beyond chance and `mix` (`week_mix` rows by a segment column) is given:
  how many of its points the mix of that column moved and how many the rates within its values,
  naming the value whose share moved it most (its part of the mix effect, docs/metrics.md);
- the stages whose time in stage changed beyond chance (`time_in_stage_change` rows: the log-rank
  test's BH q < 0.05, the last 4 weeks against the 4 before at the same age) and the exit reasons
  whose share did (`disqualifier_change` rows: q < 0.05, the week against the 4 weeks before);
- "Nothing changed beyond chance this week." when none of these did; "No lead came in or moved this
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


def week_summary(rows: list[dict], monday: date, config: FunnelConfig, *, partial: bool = False, days_in: float = 7.0,
                 mix: list[dict] | None = None, by: str | None = None, stages: list[dict] | None = None,
                 reasons: list[dict] | None = None) -> list[str]:
    """The sentences for the week of `monday` from `weekly_kpis` rows (and `week_mix` rows by column
    `by`, `time_in_stage_change` and `disqualifier_change` rows)."""
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
    if rate_changed and mix and by:
        out.append(mix_sentence(mix, by, config))
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
    slower = stage_sentence(stages or [])
    shifted = reason_sentence(reasons or [])
    out += [sentence for sentence in (slower, shifted) if sentence]
    if not moved and not rate_changed and not slower and not shifted:
        out.append("Nothing changed beyond chance this week.")
    return out


def chance(name: str, value: float | None) -> str:
    """A p- or q-value as the sentences print it: three decimals below 0.1 (so 0.052 is not "0.05"),
    two above, "< 0.001" below that; no test (None) reads as 1."""
    if value is None:
        return f"{name} = 1.00"
    if value < 0.001:
        return f"{name} < 0.001"
    return f"{name} = {value:.3f}" if value < 0.1 else f"{name} = {value:.2f}"


def stage_sentence(rows: list[dict]) -> str | None:
    """The stages that got slower or faster beyond chance, with their medians and q-values."""
    changed = [r for r in rows if r["change"] != "none"]
    if not changed:
        return None
    parts = []
    for r in changed:
        if r["km_p50_before"] is not None and r["km_p50_after"] is not None:
            how = f"median {r['km_p50_before']:.1f} → {r['km_p50_after']:.1f} days"
        else:  # fewer than half left the stage: no median; the log-rank's counts say it
            how = f"{r['observed_after']:,} left it where {r['expected_after']:,.0f} would have at the earlier pace"
        parts.append(f"{stage_label(r['stage'])} {r['change']} ({how}, {chance('q', r['q_value'])})")
    return "Time in stage, the last 4 weeks against the 4 before at the same age: " + "; ".join(parts) + "."


def reason_name(outcome: str, reason: str) -> str:
    """"Budget (disqualified)"; "lost with no reason recorded"."""
    return f"{outcome} with no reason recorded" if reason == "(no reason recorded)" else f"{reason} ({outcome})"


def reason_sentence(rows: list[dict], most: int = MOST) -> str | None:
    """The exit reasons whose share of exits moved beyond chance, the largest moves first."""
    changed = [r for r in rows if r["significant"]][:most]
    if not changed:
        return None
    parts = [f"{reason_name(r['outcome'], r['reason'])} {'up' if r['delta_share'] > 0 else 'down'} to {r['share_after']:.0%} of exits "
             f"from {r['share_before']:.0%} ({chance('q', r['q_value'])})" for r in changed]
    return "Exit reasons against the 4 weeks before: " + "; ".join(parts) + "."


def _key_rate(week: dict, config: FunnelConfig) -> tuple[str | None, bool]:
    key = config.review_rate
    rate = week.get("key_rate")
    cohort = week.get("new_leads" if key.from_stage == config.stages[0] else f"reached_{key.from_stage}")
    if not cohort or not cohort["value"]:
        return f"No lead reached {stage_label(key.from_stage)} this week: no {key.name} to read.", False
    if not rate or rate["value"] is None:
        return None, False
    n1, p1 = int(cohort["value"]), rate["value"]
    x1 = round(p1 * n1)
    window = f", within {rate['window_days']} days" if rate.get("window_days") else ""  # the conversion window
    name = f"{key.name} ({stage_label(key.from_stage)} → {stage_label(key.to_stage)}{window})"
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
                f"more than chance gives ({chance('p', p_value)}).{still}"), True
    return f"{head} against {before}: within what chance gives ({chance('p', p_value)}), not a change to act on.{still}", False


def mix_sentence(rows: list[dict], by: str, config: FunnelConfig) -> str:
    """How much of the key rate's change the mix of column `by` made and how much the rates within
    its values, from `week_mix` rows; the value whose share moved the rate most is named."""
    total = next(r for r in rows if r["segment"] == "(total)")
    values = [r for r in rows if r["segment"] != "(total)"]
    mix, rate = total["mix_effect"] * 100, total["rate_effect"] * 100
    column = by.replace("_", " ")

    def part(r: dict) -> float:  # the value's part of the mix effect (they add up to it)
        return (r["share_after"] - r["share_before"]) * (r["rate_before"] - total["rate_before"]) * 100

    def moved(points: float) -> str:
        return f"{'up' if points > 0 else 'down'} {abs(points):.1f} points"

    mixed = f"the {column} mix moved it {moved(mix)}" if round(abs(mix), 1) else f"the {column} mix moved it less than 0.1 points"
    top = max(values, key=lambda r: part(r) * (1 if mix > 0 else -1), default=None)
    if top is not None and round(abs(part(top)), 1) and part(top) * mix > 0:
        toward = "toward" if top["share_after"] > top["share_before"] else "away from"
        cohort = f"leads reaching {stage_label(config.review_rate.from_stage)}"
        mixed += (f", most of it the shift {toward} {top['segment']} ({top['share_before']:.0%} → {top['share_after']:.0%} "
                  f"of {cohort}, which converted at {top['rate_before']:.0%} last week)")
    within = f"rates within each {column} moved it {moved(rate)}" if round(abs(rate), 1) else f"rates within each {column} moved it less than 0.1 points"
    return f"By {column}: {mixed}; {within}."
