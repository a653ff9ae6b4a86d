"""The weekly summary's sentences on hand-made weeks: up, down, flat, no data, a change inside what
chance gives, too few leads, a partial week; each figure is the rows', and a change is claimed only
when the test says so (the p-value checked by hand)."""

from __future__ import annotations

import math
from datetime import date

import pytest

from funnelboard.core.config import load_config
from funnelboard.dashboard.summary import chance, week_summary

MONDAY = date(2026, 11, 9)
CONFIG = load_config(None)  # the demo funnel: SQL rate = MQL -> SQL, min_sample 30


def week(sql_rate=None, mql=(0, 0), sqls=(0, 0), new=(0, 0), immature=0):
    """weekly_kpis rows of one week: (this week, last week) per KPI; the rate as (x, n, x_before, n_before)."""
    rows = [
        {"week": MONDAY, "kpi": "new_leads", "value": new[0], "previous": new[1]},
        {"week": MONDAY, "kpi": "reached_mql", "value": mql[0], "previous": mql[1]},
        {"week": MONDAY, "kpi": "reached_sql", "value": sqls[0], "previous": sqls[1]},
        {"week": MONDAY, "kpi": "immature", "value": immature, "previous": 0},
    ]
    if sql_rate:
        x1, n1, x2, n2 = sql_rate
        rows.append({"week": MONDAY, "kpi": "key_rate", "value": x1 / n1 if n1 else None, "previous": x2 / n2 if n2 else None})
        rows[1] = {**rows[1], "value": n1, "previous": n2}
    return rows


def pooled_p(x1, n1, x2, n2):
    p = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def test_a_rate_up_beyond_chance_is_said_with_its_counts_and_p():
    (rate,) = [s for s in week_summary(week((60, 100, 30, 100)), MONDAY, CONFIG) if s.startswith("SQL rate")]
    assert pooled_p(60, 100, 30, 100) < 0.001
    assert rate == ("SQL rate (MQL → SQL) 60.0% (60 of 100), up 30.0 points on 30.0% (30 of 100) last week: "
                    "more than chance gives (p < 0.001).")
    (rate,) = [s for s in week_summary(week((45, 100, 30, 100)), MONDAY, CONFIG) if s.startswith("SQL rate")]
    assert rate.endswith(f"more than chance gives (p = {pooled_p(45, 100, 30, 100):.3f}).")


def test_a_rate_a_window_limits_says_so():
    rows = [{**r, "window_days": 3} if r["kpi"] == "key_rate" else r for r in week((60, 100, 30, 100))]
    (rate,) = [s for s in week_summary(rows, MONDAY, CONFIG) if s.startswith("SQL rate")]
    assert rate.startswith("SQL rate (MQL → SQL, within 3 days) 60.0% (60 of 100), up 30.0 points")


def test_a_rate_down_beyond_chance():
    lines = week_summary(week((30, 100, 60, 100)), MONDAY, CONFIG)
    assert "down 30.0 points on 60.0% (60 of 100) last week" in lines[0]
    assert "Nothing changed beyond chance this week." not in lines


def test_a_change_inside_what_chance_gives_is_not_a_change():
    lines = week_summary(week((33, 100, 30, 100)), MONDAY, CONFIG)
    assert lines[0] == (f"SQL rate (MQL → SQL) 33.0% (33 of 100) against 30.0% (30 of 100) last week: within what chance gives "
                        f"(p = {pooled_p(33, 100, 30, 100):.2f}), not a change to act on.")
    assert lines[-1] == "Nothing changed beyond chance this week."


def test_a_flat_week_and_an_empty_one():
    assert week_summary(week((30, 100, 30, 100)), MONDAY, CONFIG)[-1] == "Nothing changed beyond chance this week."
    assert week_summary(week(), MONDAY, CONFIG) == ["No lead came in or moved this week."]
    assert week_summary([], MONDAY, CONFIG) == ["No lead came in or moved this week."]


@pytest.mark.parametrize("now,before,claimed", [(200, 100, True), (110, 100, False), (100, 200, True), (6, 1, False)])
def test_counts_are_named_only_beyond_chance(now, before, claimed):
    lines = week_summary(week((30, 100, 30, 100), new=(now, before)), MONDAY, CONFIG)
    said = [s for s in lines if s.startswith("Beyond chance:")]
    assert bool(said) is claimed, lines
    if claimed:
        assert f"{now:,} new leads, {'up' if now > before else 'down'} from {before:,} last week" in said[0]


def test_too_few_leads_and_a_week_to_date_say_so():
    lines = week_summary(week((5, 10, 1, 12), immature=1), MONDAY, CONFIG, partial=True, days_in=3.5)
    assert lines[0] == "The week is to date (3.5 of 7 days), compared with last week at the same point."
    assert lines[1] == "SQL rate (MQL → SQL) 50.0% (5 of 10): too few leads to judge. Its leads are still converting: the rate will rise."


def test_the_demo_pack_s_summary_reads_the_cli_s_numbers(app, db):
    import json

    from click.testing import CliRunner

    from funnelboard.cli import main
    from funnelboard.dashboard.report import render
    from tests.dashboard.test_report import last_full_week

    monday = last_full_week(db)
    pack = render(app, monday)
    out = CliRunner().invoke(main, ["query", "weekly_kpis", "--to", str(date.fromordinal(monday.toordinal() + 6)),
                                    "--db", str(db), "--format", "json"])
    rows = {r["kpi"]: r for r in json.loads(out.output) if r["week"] == monday.isoformat()}
    rate, mql = rows["key_rate"], rows["reached_mql"]
    assert pack.summary[0].startswith(f"SQL rate (MQL → SQL) {rate['value']:.1%} ({round(rate['value'] * mql['value']):,} of {mql['value']:,})")
    assert all(s in pack.html for s in pack.summary)


@pytest.mark.parametrize("value,text", [(0.052, "p = 0.052"), (0.0499, "p = 0.050"), (0.65, "p = 0.65"), (0.1, "p = 0.10"),
                                        (0.0004, "p < 0.001"), (None, "p = 1.00")])
def test_p_values_near_the_line_keep_three_decimals(value, text):
    assert chance("p", value) == text


def test_a_week_without_the_rate_s_first_stage_says_so():
    lines = week_summary(week(new=(40, 30)), MONDAY, CONFIG)
    assert lines[0] == "No lead reached MQL this week: no SQL rate to read."


def mix_rows(values):
    """week_mix rows from (value, n_before, x_before, n_after, x_after), through the metric's own split."""
    from funnelboard.warehouse.metrics.segments import _mix_and_rate

    return _mix_and_rate([{"segment": v, "n_before": nb, "converted_before": xb, "n_after": na, "converted_after": xa}
                          for v, nb, xb, na, xa in values])


def test_a_drop_that_is_the_mix_names_the_shift():
    # inbound converts at 40 %, outbound at 10 % in both weeks; outbound's share grows from 20 % to 60 %
    rows = mix_rows([("inbound", 160, 64, 80, 32), ("outbound", 40, 4, 120, 12)])
    total = rows[-1]
    before, after = total["rate_before"], total["rate_after"]
    assert (before, after) == (68 / 200, 44 / 200)
    lines = week_summary(week((44, 200, 68, 200)), MONDAY, CONFIG, mix=rows, by="channel")
    assert "down 12.0 points" in lines[0] and "more than chance gives" in lines[0]
    # all 12 points are the mix: (0.4 - 0.8) * 0.4 + (0.6 - 0.2) * 0.1 = -0.12; the rates did not move
    mix, rate = total["mix_effect"] * 100, total["rate_effect"] * 100
    assert round(mix, 1) == -12.0 and round(rate, 1) == 0.0
    assert lines[1] == ("By channel: the channel mix moved it down 12.0 points, most of it the shift toward outbound "
                        "(20% → 60% of leads reaching MQL, which converted at 10% last week); "
                        "rates within each channel moved it less than 0.1 points.")


def test_a_drop_within_the_values_is_said_to_be_the_rates():
    rows = mix_rows([("inbound", 100, 40, 100, 20), ("outbound", 100, 10, 100, 5)])
    lines = week_summary(week((25, 200, 50, 200)), MONDAY, CONFIG, mix=rows, by="channel")
    assert lines[1] == ("By channel: the channel mix moved it less than 0.1 points; "
                        "rates within each channel moved it down 12.5 points.")


def test_no_mix_sentence_when_the_rate_did_not_change_beyond_chance():
    rows = mix_rows([("inbound", 100, 40, 90, 36), ("outbound", 100, 10, 110, 11)])
    lines = week_summary(week((47, 200, 50, 200)), MONDAY, CONFIG, mix=rows, by="channel")
    assert not any(s.startswith("By channel") for s in lines)


def stage(name, change, q, before=5.0, after=8.0, observed=40, expected=55.0):
    return {"stage": name, "change": change, "q_value": q, "km_p50_before": before, "km_p50_after": after,
            "observed_after": observed, "expected_after": expected}


def test_stages_that_got_slower_are_named_and_the_rest_are_not():
    rows = [stage("mql", "none", 0.4), stage("sql", "slower", 0.004), stage("opportunity", "faster", 0.03, 9.0, 6.5)]
    lines = week_summary(week((30, 100, 30, 100)), MONDAY, CONFIG, stages=rows)
    assert lines[-1] == ("Time in stage, the last 4 weeks against the 4 before at the same age: SQL slower "
                         "(median 5.0 → 8.0 days, q = 0.004); Opportunity faster (median 9.0 → 6.5 days, q = 0.030).")
    # without a median (fewer than half left), the test's counts say it
    lines = week_summary(week((30, 100, 30, 100)), MONDAY, CONFIG, stages=[stage("mql", "slower", 0.01, None, None, 120, 144.2)])
    assert "MQL slower (120 left it where 144 would have at the earlier pace, q = 0.010)" in lines[-1]
    # nothing beyond chance: the week says so
    lines = week_summary(week((30, 100, 30, 100)), MONDAY, CONFIG, stages=[stage("mql", "none", 0.2)])
    assert lines[-1] == "Nothing changed beyond chance this week."


def test_exit_reasons_whose_share_moved_are_named():
    rows = [{"outcome": "disqualified", "reason": "Budget", "significant": True, "q_value": 0.01, "delta_share": 0.14,
             "share_before": 0.18, "share_after": 0.32},
            {"outcome": "lost", "reason": "(no reason recorded)", "significant": True, "q_value": 0.0002, "delta_share": -0.05,
             "share_before": 0.08, "share_after": 0.03},
            {"outcome": "nurture", "reason": "Not ready", "significant": False, "q_value": 0.5, "delta_share": 0.2,
             "share_before": 0.1, "share_after": 0.3}]
    lines = week_summary(week((30, 100, 30, 100)), MONDAY, CONFIG, reasons=rows)
    assert lines[-1] == ("Exit reasons against the 4 weeks before: Budget (disqualified) up to 32% of exits from 18% (q = 0.010); "
                         "lost with no reason recorded down to 3% of exits from 8% (q < 0.001).")
