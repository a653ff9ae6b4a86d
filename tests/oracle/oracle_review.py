"""The weekly review's metrics of docs/metrics.md computed again from an Oracle: the review week, the
weekly KPIs with same-point comparisons, the win rate, mix vs rate with its periods, the movers.

Written from the doc. Readings:

W1  "Reached by a moment m" is reached_at(S) <= m (reached_at is the earliest entry, so a lead that
    reached S by m reached it at the same instant whatever the as_of). A loss by m is the lead's
    first spell of a lost outcome entered by m, when it has not won by m.
W2  The review week of a request: the week of min(as_of, end - 1 us) when a period end is given; of
    as_of when as_of is given; else, when the latest event lies within 7 days of the load, the
    week of the latest event; else the last full week of new leads: the week of the latest
    created_at (by as_of) when that falls on a Sunday (local), else the week before it.
W3  weekly_kpis: weeks from the week of start (12 weeks before the review week without a start) to
    the review week. A week w's values as of a moment m: counts of instants in w by m; the key
    rate of the leads that reached S in w by m, converted by m (within the window), immature
    when m - reached_at(S) < the maturity horizon (computed once, at as_of). Every row is taken
    as of as_of; the review week's previous / mean_4w are the 4 weeks before it as of
    as_of - 7k days (k = 1..4): the same point of their week. Other rows compare with the rows
    before them. lost and win_rate: the closes of the week by its moment; NULL for every week
    when the data records no lost deal at all (any event, any time).
W4  mix_vs_rate: after = the given period when one is given (the page's), else the 28 days ending
    ceil(maturity) days before as_of + 1 us; before = the same length just before after; with
    mature_only, members immature at as_of are left out of both periods.
W6  time_in_stage_change: after = the given period, before = the period of the same length just
    before it; before's spells are seen as of as_of - (after start - before start) (an Oracle of the
    same log at that as_of), after's as of as_of; per funnel stage but the last, the time_in_stage
    KM p50 of each and the log-rank test (log_rank below); BH across the stages' p-values; "slower"
    when q < 0.05 and after's observed completions fall short of the expected ones.
W7  disqualifier_change: after = the given period, before = the 4 weeks before its start; per
    (outcome, reason) of either period, its exits / all exits of the period, the pooled two-proportion
    test of after's share against before's (none for a reason with fewer than 10 exits in the two
    periods together), BH across the tested reasons; significant changes first, then
    by |delta_share| descending, then outcome, reason.
W5  week_mix: the review week's key-rate cohort as of as_of (W3's members of the review week) against
    last week's as of as_of - 7 days (W3's "same point"), split with W4's shares, rates and
    effects; no member is left out, so its (total) rates are the review week's key_rate and previous.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta

from tests.oracle.oracle import TOTAL, US, Oracle, _ratio, benjamini_hochberg, quantile, two_proportion_p_value, wilson_interval

LIVE = timedelta(days=7)
COMPARISON_DAYS = 28


def review_week(oracle: Oracle, *, end: datetime | None, as_of_given: bool, loaded_at: datetime) -> date:
    if end is not None:
        return oracle.week_of(min(oracle.as_of, end - US))
    if as_of_given or not oracle.all_events:
        return oracle.week_of(oracle.as_of)
    latest = max(e.entered_at for e in oracle.all_events)
    if loaded_at - latest <= LIVE:
        return oracle.week_of(oracle.as_of)
    created = [t for t in oracle._created.values() if t is not None and t <= oracle.as_of]
    feed_end = max(created) if created else latest
    monday = oracle.week_of(feed_end)
    if oracle._local(feed_end).weekday() != 6:
        monday -= timedelta(weeks=1)
    return monday


def _won_lost_at(oracle: Oracle, lead_id: str, moment: datetime) -> tuple[bool, datetime] | None:
    """(won, closed_at) of a lead closed by the moment, else None."""
    won_at = oracle.reached(lead_id, oracle.stages[-1])
    if won_at is not None and won_at <= moment:
        return True, won_at
    losses = [s.entered_at for s in oracle._spells.get(lead_id, []) if s.stage in oracle.config.lost and s.entered_at <= moment]
    return (False, min(losses)) if losses else None


def losses_recorded(oracle: Oracle) -> bool:
    return any(e.stage in oracle.config.lost for e in oracle.all_events)


def week_values(oracle: Oracle, week: date, moment: datetime, maturity: float, filters) -> dict:
    """One week's KPIs as of a moment (W3)."""
    f, to = oracle.key
    window = oracle._window(None)
    leads = oracle._leads(filters)

    def in_week(t):
        return t is not None and t <= moment and oracle.week_of(t) == week

    all_leads = [l for l in sorted(oracle._attributes) if oracle._matches(l, filters)]
    values: dict[str, object] = {"new_leads": sum(1 for l in all_leads if in_week(oracle._created.get(l)))}
    for stage in oracle.stages[1:]:
        values[f"reached_{stage}"] = sum(1 for l in leads if in_week(oracle.reached(l, stage)))
    values["exits"] = sum(1 for s in oracle._all_spells(leads) if s.stage in oracle.outcomes and in_week(s.entered_at))
    members = []
    for l in leads:
        s_at = oracle.reached(l, f)
        if not in_week(s_at):
            continue
        t_at = oracle.reached(l, to)
        converted = t_at is not None and t_at <= moment and (window <= 0 or t_at - s_at <= timedelta(days=window))
        members.append((converted, oracle._immature(s_at, maturity, moment)))
    values["key_rate"] = _ratio(sum(1 for c, _ in members if c), len(members))
    values["immature"] = int(any(i for _, i in members))
    gaps = [
        (oracle.reached(l, to) - oracle.reached(l, oracle.stages[0])) // US / 86_400_000_000
        for l in leads
        if in_week(oracle.reached(l, to)) and oracle.reached(l, oracle.stages[0]) is not None
        and oracle.reached(l, oracle.stages[0]) <= moment
    ]
    values["median_days_to_target"] = quantile(gaps, 0.5)
    if losses_recorded(oracle):
        closes = [_won_lost_at(oracle, l, moment) for l in leads]
        closes = [c for c in closes if c is not None and oracle.week_of(c[1]) == week]
        won = sum(1 for w, _ in closes if w)
        values["lost"] = len(closes) - won
        values["win_rate"] = _ratio(won, len(closes))
    else:
        values["lost"] = values["win_rate"] = None
    return values


def weekly_kpis(oracle: Oracle, start, end, *, as_of_given=True, loaded_at=None, filters=None) -> list[dict]:
    last_week = review_week(oracle, end=end, as_of_given=as_of_given, loaded_at=loaded_at)
    first_week = oracle.week_of(start) if start is not None else last_week - timedelta(weeks=12)
    f, to = oracle.key
    maturity = oracle.maturity(f, to, oracle._window(None))
    weeks = []
    week = first_week
    while week <= last_week:
        weeks.append(week)
        week += timedelta(weeks=1)
    values = {w: week_values(oracle, w, oracle.as_of, maturity, filters) for w in weeks}
    then = {k: week_values(oracle, last_week - timedelta(weeks=k), oracle.as_of - timedelta(weeks=k), maturity, filters) for k in range(1, 5)}
    # the week is over once as_of has reached the instant its next local Monday begins (as_of holds
    # every event up to and including it, so its last microsecond of Sunday counts as reached)
    over = oracle.as_of + timedelta(microseconds=1) >= oracle._utc_monday(last_week + timedelta(weeks=1))
    rows = []
    for i, week in enumerate(weeks):
        last = i == len(weeks) - 1
        for kpi, value in values[week].items():
            if last:
                earlier = [then[k][kpi] for k in range(1, 5)]
            else:
                earlier = [values[weeks[j]][kpi] if j >= 0 else None for j in range(i - 1, i - 5, -1)]
            previous = earlier[0]
            mean_4w = sum(earlier) / 4 if None not in earlier else None
            rows.append({
                "week": week, "kpi": kpi, "value": value, "previous": previous,
                "delta_week": None if value is None or previous is None else value - previous,
                "mean_4w": mean_4w,
                "delta_4w": None if value is None or mean_4w is None else value - mean_4w,
                "partial": last and not over,
                "window_days": oracle._window(None),
            })
    return rows


def win_rate(oracle: Oracle, start, end, *, segment=None, filters=None) -> list[dict]:
    note = None if losses_recorded(oracle) else oracle.config.unnamed_losses() or "no lost deal is recorded"
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for l in oracle._leads(filters):
        closed = _won_lost_at(oracle, l, oracle.as_of)
        if closed is None:
            continue
        won, at = closed
        value = oracle._segment_value(l, segment) if segment else "(all)"
        first = oracle.reached(l, oracle.stages[0])
        in_period = start <= at < end
        in_cohort = first is not None and start <= first < end
        if not (in_period or in_cohort):
            continue
        g = groups[value]
        g[0] += int(in_period and won)
        g[1] += int(in_period and not won)
        g[2] += int(in_cohort and won)
        g[3] += int(in_cohort and not won)
    if segment is None and not groups:
        groups["(all)"] = [0, 0, 0, 0]
    rows = []
    for value in sorted(groups):
        won, lost, c_won, c_lost = groups[value]
        low, high = (None, None) if note else wilson_interval(won, won + lost)
        row = {segment: value} if segment else {}
        row.update({
            "won": won, "lost": lost, "closed": won + lost,
            "win_rate": None if note else _ratio(won, won + lost),
            "wilson_low": low, "wilson_high": high,
            "too_few": won + lost < oracle.config.min_sample,
            "cohort_won": c_won, "cohort_lost": c_lost,
            "cohort_win_rate": None if note else _ratio(c_won, c_won + c_lost),
            "won_stage": oracle.stages[-1], "lost_outcomes": ", ".join(oracle.config.lost), "note": note,
        })
        rows.append(row)
    return rows


def mix_periods(oracle: Oracle, start, end, maturity: float, before=None, after=None):
    """(before, after) of W4; explicit ones (--before / --after) win."""
    if after is None and (start is not None or end is not None):
        after = (start, end)
    elif after is None:
        stop = oracle.as_of + US - timedelta(days=math.ceil(maturity))
        after = (stop - timedelta(days=COMPARISON_DAYS), stop)
    return before or (after[0] - (after[1] - after[0]), after[0]), after


def mix_vs_rate(oracle: Oracle, segment, start, end, *, before=None, after=None, mature_only=True, filters=None) -> list[dict]:
    f, to = oracle.key
    window = oracle._window(None)
    maturity = oracle.maturity(f, to, window)
    before, after = mix_periods(oracle, start, end, maturity, before, after)
    leads = oracle._leads(filters)
    periods = {}
    for name, (p_start, p_end) in (("before", before), ("after", after)):
        members = [m for m in oracle._cohort(f, to, p_start, p_end, window, leads, maturity) if not (mature_only and m[2])]
        by_value: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for lead_id, converted, _ in members:
            by_value[oracle._segment_value(lead_id, segment) if segment else "(all)"][0] += 1
            by_value[oracle._segment_value(lead_id, segment) if segment else "(all)"][1] += int(converted)
        periods[name] = by_value
    extra = {"before_from": before[0], "before_to": before[1], "after_from": after[0], "after_to": after[1],
             "mature_only": mature_only, "window_days": window, "maturity_days": maturity}
    return [{**r, **extra} for r in _mix_split(periods)]


def _mix_split(periods: dict) -> list[dict]:
    """W4's shares, rates and effects of {"before"|"after": {value: [n, converted]}}, then the total."""
    totals = {name: (sum(n for n, _ in v.values()), sum(x for _, x in v.values())) for name, v in periods.items()}

    def share_and_rate(name, value):
        n, x = periods[name].get(value, (0, 0))
        return n, (n / totals[name][0] if totals[name][0] else 0.0), (x / n if n else 0.0)

    rows = []
    for value in sorted(set(periods["before"]) | set(periods["after"])):
        n_b, share_b, rate_b = share_and_rate("before", value)
        n_a, share_a, rate_a = share_and_rate("after", value)
        rows.append({
            "segment": value, "n_before": n_b, "share_before": share_b, "rate_before": rate_b,
            "n_after": n_a, "share_after": share_a, "rate_after": rate_a,
            "mix_effect": (share_a - share_b) * rate_b, "rate_effect": share_a * (rate_a - rate_b),
        })
    (n_b, x_b), (n_a, x_a) = totals["before"], totals["after"]
    rows.append({
        "segment": TOTAL, "n_before": n_b, "share_before": 1.0 if n_b else 0.0, "rate_before": x_b / n_b if n_b else 0.0,
        "n_after": n_a, "share_after": 1.0 if n_a else 0.0, "rate_after": x_a / n_a if n_a else 0.0,
        "mix_effect": sum(r["mix_effect"] for r in rows), "rate_effect": sum(r["rate_effect"] for r in rows),
    })
    return rows


def week_mix(oracle: Oracle, end, *, segment=None, as_of_given=True, loaded_at=None, filters=None) -> list[dict]:
    """W5: the review week's key-rate cohort (reached S in the week by as_of, converted by as_of within
    the window) against last week's as of as_of - 7 days, split by W4's formulas; no member left out."""
    this_week = review_week(oracle, end=end, as_of_given=as_of_given, loaded_at=loaded_at)
    f, to = oracle.key
    window = oracle._window(None)
    leads = oracle._leads(filters)
    periods = {}
    for name, week, moment in (("before", this_week - timedelta(weeks=1), oracle.as_of - timedelta(weeks=1)),
                               ("after", this_week, oracle.as_of)):
        by_value: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for lead in leads:
            s_at = oracle.reached(lead, f)
            if s_at is None or s_at > moment or oracle.week_of(s_at) != week:
                continue
            t_at = oracle.reached(lead, to)
            converted = t_at is not None and t_at <= moment and (window <= 0 or t_at - s_at <= timedelta(days=window))
            value = oracle._segment_value(lead, segment) if segment else "(all)"
            by_value[value][0] += 1
            by_value[value][1] += int(converted)
        periods[name] = by_value
    extra = {"before_from": oracle._utc_monday(this_week - timedelta(weeks=1)), "before_to": oracle._utc_monday(this_week),
             "after_from": oracle._utc_monday(this_week), "after_to": oracle._utc_monday(this_week + timedelta(weeks=1)),
             "mature_only": False, "window_days": window, "maturity_days": oracle.maturity(f, to, window)}
    return [{**r, **extra} for r in _mix_split(periods)]


def movers(oracle: Oracle, end, *, as_of_given=True, loaded_at=None, segment=None, filters=None) -> list[dict]:
    """Leads reaching the key rate's stages in the review week and the week before, per value."""
    this_week = review_week(oracle, end=end, as_of_given=as_of_given, loaded_at=loaded_at)
    last_week = this_week - timedelta(days=7)
    f, to = oracle.key
    leads = oracle._leads(filters)
    out = []
    for column in [segment] if segment else oracle.config.segments:
        counts: dict[str, list[int]] = {}
        for lead_id in leads:
            weeks = {}
            for stage in (f, to):
                at = oracle.reached(lead_id, stage)
                weeks[stage] = oracle.week_of(at) if at is not None else None
            if not {weeks[f], weeks[to]} & {this_week, last_week}:
                continue
            value = oracle._attribute(lead_id, column)
            c = counts.setdefault("(none)" if value is None else value, [0, 0, 0, 0])
            c[0] += weeks[f] == this_week
            c[1] += weeks[f] == last_week
            c[2] += weeks[to] == this_week
            c[3] += weeks[to] == last_week
        for value, c in counts.items():
            out.append({
                "week": this_week, "segment": column, "value": value, "from_stage": f, "to_stage": to,
                "from_this_week": c[0], "from_last_week": c[1], "to_this_week": c[2], "to_last_week": c[3],
                "delta_to": c[2] - c[3],
            })
    out.sort(key=lambda r: (-abs(r["delta_to"]), r["segment"], r["value"]))
    return out


def log_rank(a: list[tuple[int, bool]], b: list[tuple[int, bool]]) -> tuple[int, float, float | None]:
    """(observed, expected, p) of group b in the log-rank test, from (duration, completed) pairs: at each
    distinct completed duration t, n at risk (duration >= t), d completing at t; E_b += d n_b / n,
    V += d (n_b / n)(1 - n_b / n)(n - d) / (n - 1) for n > 1; chi2 = (O_b - E_b)^2 / V."""
    times = sorted({d for d, c in a + b if c})
    observed = sum(1 for _, c in b if c)
    expected = variance = 0.0
    for t in times:
        n_a = sum(1 for d, _ in a if d >= t)
        n_b = sum(1 for d, _ in b if d >= t)
        n = n_a + n_b
        d = sum(1 for x, c in a + b if c and x == t)
        expected += d * n_b / n
        if n > 1:
            variance += d * (n_b / n) * (1 - n_b / n) * (n - d) / (n - 1)
    if variance <= 0:
        return observed, expected, None
    chi2 = (observed - expected) ** 2 / variance
    return observed, expected, math.erfc(math.sqrt(chi2 / 2))


def time_in_stage_change(oracle: Oracle, start, end, *, business_days=False, filters=None) -> list[dict]:
    before = (start - (end - start), start)
    before_as_of = oracle.as_of - (start - before[0])
    then = Oracle(oracle.all_events, oracle.config, oracle.lead_rows, as_of=before_as_of)
    rows, tests = [], []
    for stage in oracle.stages[:-1]:
        items = []
        for o, (p_start, p_end) in ((then, before), (oracle, (start, end))):
            spells = [s for s in o._all_spells(o._leads(filters)) if s.stage == stage and p_start <= s.entered_at < p_end]
            items.append([o._spell_duration_us(s, business_days) for s in spells])
        b_row, a_row = (oracle._time_row(i) for i in items)
        observed, expected, p = log_rank(items[0], items[1])
        tests.append((observed, expected))
        rows.append({
            "stage": stage, "n_before": len(items[0]), "open_before": b_row["n_open"], "km_p50_before": b_row["km_p50"],
            "n_after": len(items[1]), "open_after": a_row["n_open"], "km_p50_after": a_row["km_p50"],
            "observed_after": observed, "expected_after": expected, "p_value": p,
        })
    for row, (observed, expected), q in zip(rows, tests, benjamini_hochberg([r["p_value"] for r in rows])):
        changed = q is not None and q < 0.05
        row.update({"q_value": q, "change": ("slower" if observed < expected else "faster") if changed else "none",
                    "before_from": before[0], "before_to": before[1], "before_as_of": before_as_of,
                    "after_from": start, "after_to": end, "as_of": oracle.as_of})
    return rows


def disqualifier_change(oracle: Oracle, start, end, *, filters=None) -> list[dict]:
    before = (start - timedelta(weeks=4), start)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"before": 0, "after": 0})
    for name, (p_start, p_end) in (("before", before), ("after", (start, end))):
        for r in oracle.disqualifiers(p_start, p_end, filters=filters):
            counts[(r["outcome"], r["reason"])][name] = r["exits"]
    n_b = sum(c["before"] for c in counts.values())
    n_a = sum(c["after"] for c in counts.values())
    keys = sorted(counts)
    p_values = [two_proportion_p_value(counts[k]["after"], n_a, counts[k]["before"], n_b)
                if counts[k]["after"] + counts[k]["before"] >= 10 else None for k in keys]
    rows = []
    for (outcome, reason), p, q in zip(keys, p_values, benjamini_hochberg(p_values)):
        c = counts[(outcome, reason)]
        share_b = c["before"] / n_b if n_b else 0.0
        share_a = c["after"] / n_a if n_a else 0.0
        rows.append({"outcome": outcome, "reason": reason, "exits_before": c["before"], "share_before": share_b,
                     "exits_after": c["after"], "share_after": share_a, "delta_share": share_a - share_b,
                     "p_value": p, "q_value": q, "significant": q is not None and q < 0.05,
                     "before_from": before[0], "before_to": before[1], "after_from": start, "after_to": end})
    rows.sort(key=lambda r: (not r["significant"], -abs(r["delta_share"]), r["outcome"], r["reason"]))
    return rows
