"""The oracle checked against hand-worked examples, then against properties on generated logs.

Every expected value below is worked out by hand in the comment beside it, from docs/metrics.md.
Dates are 2024 unless said otherwise; 2024-01-01 is a Monday. Most examples switch the
conversion window off (the default config has 90 days) so that only the point under test moves.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelboard.core.config import KeyRate, StageSla, load_config
from tests.oracle import oracle_review
from tests.oracle.oracle import (
    NO_REASON,
    Event,
    LeadRow,
    Oracle,
    benjamini_hochberg,
    events_from_warehouse,
    km_quantile,
    quantile,
    two_proportion_p_value,
    wilson_interval,
)
from tests.oracle.strategies import config_variants, event_logs

DEFAULT = replace(load_config(None), stage_slas=(), sla_by=None)  # the demo funnel; thresholds p90 unless a test sets SLAs
JAN = (datetime(2024, 1, 1), datetime(2024, 2, 1))
_lines = itertools.count(2)


def d(day: int, hour: int = 0, minute: int = 0, month: int = 1, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, minute)


def ev(lead_id, stage, when, reason=None, *, file_id=1, line=None, **attrs) -> Event:
    return Event(lead_id, stage, when, reason, file_id, next(_lines) if line is None else line, attrs)


def journey(lead_id, *steps, **attrs) -> list[Event]:
    """steps: (stage, when) or (stage, when, reason); attrs go on every event."""
    return [ev(lead_id, stage, when, *rest, **attrs) for stage, when, *rest in steps]


def cfg(**overrides):
    if isinstance(overrides.get("key_rate"), tuple):
        overrides["key_rate"] = KeyRate(*overrides["key_rate"])
    return replace(DEFAULT, **{"conversion_window_days": 0, **overrides})


def approx(x):
    return pytest.approx(x, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Spells, ties, as_of
# ---------------------------------------------------------------------------------------------


def test_spells_of_the_doc_example():
    # A: lead 01-01, mql 01-03, mql 01-04, sql 01-10 -> lead [01-01, 01-03), mql [01-03, 01-10), sql [01-10, open)
    o = Oracle(journey("A", ("lead", d(1)), ("mql", d(3)), ("mql", d(4)), ("sql", d(10))), cfg())
    assert [(s["stage"], s["entered_at"], s["exited_at"], s["is_open"]) for s in o.spells()] == [
        ("lead", d(1), d(3), False),
        ("mql", d(3), d(10), False),
        ("sql", d(10), None, True),
    ]
    assert [s["spell_no"] for s in o.spells()] == [1, 2, 3]
    assert o.as_of == d(10)


def test_tie_funnel_rank_orders_stages_at_one_instant_not_the_file():
    # sql written before mql in the files, both at 01-03 10:00: rank puts mql (2) before sql (3),
    # so mql is a spell of length 0 and sql is open.
    events = [
        ev("E", "lead", d(1)),
        ev("E", "sql", d(3, 10), file_id=1, line=2),
        ev("E", "mql", d(3, 10), file_id=2, line=9),
    ]
    o = Oracle(events, cfg())
    assert [(s["stage"], s["entered_at"], s["exited_at"], s["is_open"]) for s in o.spells()] == [
        ("lead", d(1), d(3, 10), False),
        ("mql", d(3, 10), d(3, 10), False),
        ("sql", d(3, 10), None, True),
    ]


def test_tie_outcomes_rank_after_funnel_stages():
    # disqualified and sql at the same instant: sql (rank 3) first, then disqualified (rank 8),
    # which is terminal: sql [01-04, 01-04) exited to an outcome; disqualified not open.
    events = [ev("F", "mql", d(2)), ev("F", "disqualified", d(4), "no budget", line=3), ev("F", "sql", d(4), line=50)]
    o = Oracle(events, cfg())
    spells = o.spells()
    assert [(s["stage"], s["is_open"]) for s in spells] == [("mql", False), ("sql", False), ("disqualified", False)]
    assert spells[2]["exited_at"] is None and spells[2]["reason"] == "Budget"
    row = {r["stage"]: r for r in o.stage_accounting(*JAN)}["sql"]
    assert (row["entered"], row["exited"], row["exited_disqualified"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "first, second, reason",
    [
        # same instant, same stage twice: one spell; its reason is the first non-empty one in
        # (entered_at, rank, file_id, source_line) order.
        ((1, 8, "no budget"), (2, 3, "price"), "Budget"),   # file 1 before file 2, whatever the line
        ((1, 8, "no budget"), (1, 3, "price"), "Price"),    # same file: line 3 first
        ((1, 3, None), (1, 8, "price"), "Price"),           # the first has no reason: the next one's
        ((1, 3, "  "), (1, 8, None), NO_REASON),            # blank and None: no reason recorded
        ((1, 3, "Moved  to Mars"), (1, 8, "price"), "Moved  to Mars"),  # unmapped: kept as written
    ],
)
def test_tie_same_stage_twice_is_one_spell_and_file_order_decides_the_reason(first, second, reason):
    events = [ev("G", "lead", d(1))] + [
        ev("G", "nurture", d(2, 9), text, file_id=f, line=line) for f, line, text in (first, second)
    ]
    spells = Oracle(events, cfg()).spells()
    assert [(s["stage"], s["reason"]) for s in spells] == [("lead", NO_REASON), ("nurture", reason)]
    assert spells[1]["is_open"] is True  # nurture is not terminal


def test_reason_mapping_ignores_case_and_spacing():
    events = [ev("R", "lost", d(2), "  NOT now /   no TIMELINE ")]
    assert Oracle(events, cfg()).spells()[0]["reason"] == "No timeline"


def test_events_after_as_of_are_ignored_but_attributes_are_current():
    # I: lead 01-01, mql 01-05, sql 01-20 (channel changes to referral on that event); as_of 01-10.
    events = journey("I", ("lead", d(1)), ("mql", d(5)), channel="inbound") + [
        ev("I", "sql", d(20), channel="referral")
    ]
    o = Oracle(events, cfg(), as_of=d(10))
    assert [(s["stage"], s["is_open"]) for s in o.spells()] == [("lead", False), ("mql", True)]
    assert o.reached("I", "sql") is None
    conv = o.conversion("mql", "sql", *JAN)[0]
    assert (conv["cohort"], conv["converted"], conv["period_to"]) == (1, 0, 0)
    # the open mql spell is 5 days old at as_of (censored)
    row = {r["stage"]: r for r in o.time_in_stage(*JAN)}["mql"]
    assert (row["n_completed"], row["n_open"], row["km_p50"]) == (0, 1, None)
    assert o.lead_attributes()["I"]["channel"] == "referral"   # R4: current values
    assert o.conversion("mql", "sql", *JAN, filters={"channel": "referral"})[0]["cohort"] == 1


# ---------------------------------------------------------------------------------------------
# Reached: count vs strict
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, reached_mql, cohort, converted, funnel_reached, step_rates",
    [
        # B jumps lead -> sql on 01-05. count: reached mql at 01-05, cohort 1, converted 1;
        # funnel lead 1, mql 1, sql 1, rest 0; steps 1, 1, 0/1 = 0, then 0/0 = NULL.
        ("count", d(5), 1, 1, [1, 1, 1, 0, 0, 0], [None, 1.0, 1.0, 0.0, None, None]),
        # strict: never reached mql, so the mql cohort is empty (rate NULL); funnel lead 1, mql 0,
        # sql 1: step mql 0/1 = 0, sql 1/0 = NULL.
        ("strict", None, 0, 0, [1, 0, 1, 0, 0, 0], [None, 0.0, None, 0.0, None, None]),
    ],
)
def test_skipped_mql_count_vs_strict(rule, reached_mql, cohort, converted, funnel_reached, step_rates):
    o = Oracle(journey("B", ("lead", d(1)), ("sql", d(5))), cfg(skipped_stages=rule))
    assert o.reached("B", "mql") == reached_mql
    assert o.reached("B", "sql") == d(5)
    conv = o.conversion("mql", "sql", *JAN)[0]
    assert (conv["cohort"], conv["converted"]) == (cohort, converted)
    assert conv["rate"] == (None if cohort == 0 else 1.0)
    funnel = o.funnel(*JAN)
    assert [r["stage"] for r in funnel] == list(DEFAULT.stages)
    assert [r["reached"] for r in funnel] == funnel_reached
    assert [r["step_rate"] for r in funnel] == step_rates
    assert [r["cumulative_rate"] for r in funnel] == [x / 1 for x in funnel_reached]
    # explicit rule beats the config's
    assert o.reached("B", "mql", "count") == d(5) and o.reached("B", "mql", "strict") is None


def test_reached_under_count_is_the_earliest_spell_at_or_after_the_stage():
    # lead 01-01, sql 01-05, nurture 01-06, mql 01-08: count mql = 01-05 (the sql); strict mql = 01-08.
    o = Oracle(journey("C", ("lead", d(1)), ("sql", d(5)), ("nurture", d(6)), ("mql", d(8))), cfg())
    assert o.reached("C", "mql") == d(5)
    assert o.reached("C", "mql", "strict") == d(8)
    assert o.reached("C", "lead") == d(1)
    assert o.reached("C", "opportunity") is None


# ---------------------------------------------------------------------------------------------
# Backward moves, re-entries, nurture
# ---------------------------------------------------------------------------------------------

BACKWARD = journey(
    "C", ("lead", d(1)), ("mql", d(2)), ("sql", d(3)), ("opportunity", d(5)), ("proposal", d(8)),
    ("sql", d(12)), ("opportunity", d(20)),
)


def test_backward_move_is_regressed_in_stage_accounting():
    o = Oracle(BACKWARD, cfg(), as_of=d(25))
    rows = {r["stage"]: r for r in o.stage_accounting(*JAN)}
    assert list(rows) == ["lead", "mql", "sql", "opportunity", "proposal"]   # won is left out
    # lead -> mql, mql -> sql advanced; sql twice, both -> opportunity; opportunity 01-05 -> proposal
    # advanced, 01-20 still open; proposal -> sql regressed.
    expect = {
        "lead": (1, 1, 0, 0, 0), "mql": (1, 1, 0, 0, 0), "sql": (2, 2, 0, 0, 0),
        "opportunity": (2, 1, 0, 0, 1), "proposal": (1, 0, 0, 1, 0),
    }
    for stage, (entered, advanced, exited, regressed, open_) in expect.items():
        row = rows[stage]
        assert (row["entered"], row["advanced"], row["exited"], row["regressed"], row["open"]) == (
            entered, advanced, exited, regressed, open_)
    assert list(rows["lead"]) == [
        "stage", "entered", "advanced", "exited", "regressed", "open",
        "exited_nurture", "exited_disqualified", "exited_rerouted", "exited_lost",
    ]


def test_backward_move_is_a_re_entry_in_time_by_lead():
    o = Oracle(BACKWARD, cfg(), as_of=d(25))
    rows = {r["stage"]: r for r in o.time_in_stage_by_lead()}
    # sql: [01-03, 01-05) = 2 d, [01-12, 01-20) = 8 d -> latest 8, cumulative 10.
    # opportunity: [01-05, 01-08) = 3 d, [01-20, open at 01-25) = 5 d -> latest 5 (open), cumulative 8.
    # proposal: [01-08, 01-12) = 4 d.
    expect = {
        "lead": (1, 1.0, 1.0, False), "mql": (1, 1.0, 1.0, False), "sql": (2, 8.0, 10.0, False),
        "opportunity": (2, 5.0, 8.0, True), "proposal": (1, 4.0, 4.0, False),
    }
    assert {s: (r["spells"], r["latest_days"], r["cumulative_days"], r["latest_open"]) for s, r in rows.items()} == expect
    assert all(r["lead_id"] == "C" for r in rows.values())


def test_nurture_exit_that_re_enters_mql():
    # D: lead 01-01, mql 01-02, nurture 01-05 ("not now / no timeline"), mql 01-15, sql 01-20; as_of 01-31.
    events = journey("D", ("lead", d(1)), ("mql", d(2)), ("nurture", d(5), "not now / no timeline"),
                     ("mql", d(15)), ("sql", d(20)))
    o = Oracle(events, cfg(), as_of=d(31))
    mql = {r["stage"]: r for r in o.stage_accounting(*JAN)}["mql"]
    # two mql spells: one exited to nurture, one advanced to sql
    assert (mql["entered"], mql["advanced"], mql["exited"], mql["exited_nurture"], mql["open"]) == (2, 1, 1, 1, 0)
    assert o.reached("D", "mql") == d(2)   # the earliest spell
    assert o.conversion("mql", "sql", *JAN)[0]["converted"] == 1
    by_lead = {r["stage"]: r for r in o.time_in_stage_by_lead()}["mql"]
    # [01-02, 01-05) = 3 d and [01-15, 01-20) = 5 d
    assert (by_lead["spells"], by_lead["latest_days"], by_lead["cumulative_days"]) == (2, 5.0, 8.0)
    assert o.disqualifiers(*JAN) == [{
        "outcome": "nurture", "reason": "No timeline", "exits": 1, "share": 1.0, "cumulative_share": 1.0,
    }]
    assert o.disqualifiers(*JAN, by="stage_left")[0]["stage_left"] == "mql"


# ---------------------------------------------------------------------------------------------
# Time in stage: censoring, Kaplan-Meier, business days
# ---------------------------------------------------------------------------------------------


def censored_log():
    # H1..H4: mql 01-01, sql 01-02; H1 leaves sql 01-03 (1 d), H2 leaves 01-04 (2 d), H3 and H4
    # stay in sql (open, 5 d at as_of 01-07).
    events = []
    for i, leave in enumerate([d(3), d(4), None, None], start=1):
        steps = [("mql", d(1)), ("sql", d(2))] + ([("opportunity", leave)] if leave else [])
        events += journey(f"H{i}", *steps)
    return events


def test_open_spells_are_censored_and_km_differs_from_completed_quantiles():
    o = Oracle(censored_log(), cfg(), as_of=d(7))
    rows = {r["stage"]: r for r in o.time_in_stage(*JAN)}
    assert list(rows) == ["lead", "mql", "sql", "opportunity", "proposal"]
    sql = rows["sql"]
    # completed [1, 2]: p50 = 1.5, p75 = 1 + 0.75 = 1.75, p90 = 1.9
    assert (sql["n_completed"], sql["n_open"]) == (2, 2)
    assert (sql["p50"], sql["p75"], sql["p90"]) == (approx(1.5), approx(1.75), approx(1.9))
    # KM: t=1: n=4, d=1 -> S=0.75; t=2: n=3, d=1 -> S=0.5. p50 = 2; S never <= 0.25 or 0.1 -> NULL.
    assert (sql["km_p50"], sql["km_p75"], sql["km_p90"]) == (2.0, None, None)
    mql = rows["mql"]   # four spells of exactly 1 day: S(1) = 0
    assert (mql["n_completed"], mql["p50"], mql["km_p50"], mql["km_p90"]) == (4, 1.0, 1.0, 1.0)
    opp = rows["opportunity"]   # H1 open 4 d, H2 open 3 d
    assert (opp["n_completed"], opp["n_open"], opp["p50"], opp["km_p50"]) == (0, 2, None, None)
    assert rows["lead"] == {"stage": "lead", "n_completed": 0, "n_open": 0, "p50": None, "p75": None,
                            "p90": None, "km_p50": None, "km_p75": None, "km_p90": None}


def test_time_in_stage_by_segment_splits_the_spells():
    events = censored_log()
    events = [replace(e, attrs={"channel": "x"}) if e.lead_id in ("H1", "H3") else e for e in events]
    o = Oracle(events, cfg(), as_of=d(7))
    sql = [r for r in o.time_in_stage(*JAN, segment="channel") if r["stage"] == "sql"]
    # (none): H2 completed 2 d, H4 open; x: H1 completed 1 d, H3 open
    assert [(r["channel"], r["n_completed"], r["n_open"], r["p50"]) for r in sql] == [
        ("(none)", 1, 1, 2.0), ("x", 1, 1, 1.0)]


@pytest.mark.parametrize(
    "items, p, expected",
    [
        ([(2, True), (2, False)], 0.5, 2),      # the censored spell at t is at risk at t: S(2) = 1 - 1/2
        ([(2, True), (2, False)], 0.75, None),  # S never reaches 0.25
        ([(1, False), (2, True)], 0.5, 2),      # censored before 2 is not at risk: S(2) = 0
        ([(3, True), (1, True), (2, True), (4, True)], 0.5, 2),  # S: .75, .5 -> 2
        ([], 0.5, None),
    ],
)
def test_kaplan_meier_quantile(items, p, expected):
    assert km_quantile(items, p) == expected


def test_quantile_is_linear_interpolation():
    assert quantile([10, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0.9) == approx(9.1)   # position 8.1
    assert quantile([5], 0.75) == 5
    assert quantile([], 0.5) is None
    assert quantile([1, 2, 3, 4], 0.5) == 2.5


@pytest.mark.parametrize(
    "tz, start, end, expected",
    [
        # Fri 12:00 -> Mon 12:00 (UTC): 0.5 of Friday + 0.5 of Monday = 1 business day (3 calendar)
        ("UTC", d(5, 12), d(8, 12), 1.0),
        # Sat 10:00 -> Mon 06:00 UTC: only Monday 00:00-06:00 counts
        ("UTC", d(6, 10), d(8, 6), 0.25),
        # Kolkata (+05:30): Sat 15:30 -> Mon 11:30 local: 11.5 h
        ("Asia/Kolkata", d(6, 10), d(8, 6), 11.5 / 24),
        # New York (-05:00): Sat 05:00 -> Mon 01:00 local: 1 h
        ("America/New_York", d(6, 10), d(8, 6), 1 / 24),
        # New York: Fri 2024-01-05 23:00 UTC is Fri 18:00 local -> Mon 2024-01-08 05:00 UTC is Mon 00:00 local: 6 h
        ("America/New_York", d(5, 23), d(8, 5), 6 / 24),
        # a whole week Mon -> Mon: 5 business days, 7 calendar days
        ("UTC", d(1), d(8), 5.0),
    ],
)
def test_business_days_across_a_weekend(tz, start, end, expected):
    events = journey("W", ("sql", start), ("opportunity", end))
    o = Oracle(events, cfg(timezone=tz))
    row = {r["stage"]: r for r in o.time_in_stage_by_lead(business_days=True)}["sql"]
    assert row["latest_days"] == approx(expected)
    calendar = {r["stage"]: r for r in o.time_in_stage_by_lead()}["sql"]["latest_days"]
    assert calendar == approx((end - start) / timedelta(days=1))
    tis = {r["stage"]: r for r in o.time_in_stage(*JAN, business_days=True)}["sql"]
    assert tis["p50"] == approx(expected)


# ---------------------------------------------------------------------------------------------
# Conversion window, immaturity, time to SQL
# ---------------------------------------------------------------------------------------------


def window_log():
    return (
        journey("J1", ("mql", d(1)), ("sql", d(5)))      # 4 d: converted; mature (24 d)
        + journey("J2", ("mql", d(1)), ("sql", d(10)))   # 9 d: too late for W=7; mature
        + journey("J3", ("mql", d(20)))                  # no sql; immature (5 d < 7)
        + journey("J4", ("mql", d(24)), ("sql", d(25)))  # 1 d: converted; immature (1 d)
        + journey("J5", ("mql", d(2)), ("sql", d(9)))    # exactly 7 d: converted (<= W); mature
        + journey("J6", ("mql", d(18)))                  # exactly 7 d old at as_of: mature (not < W)
    )   # as_of = 01-25 (J4's sql, the latest event)


@pytest.mark.parametrize(
    "window, converted, immature, mature_cohort, mature_converted",
    [
        (7, 3, 2, 4, 2),   # converted J1 J4 J5; immature J3 J4; mature J1 J2 J5 J6, of which J1 J5
        # no window: J1 J2 J4 J5 converted; the horizon is the p90 of their times 4, 9, 1, 7 days:
        # 7 + 0.7 * (9 - 7) = 8.4 days, so J3 (5 d), J4 (1 d) and J6 (7 d) are immature
        (0, 4, 3, 3, 3),
        (30, 4, 6, 0, 0),  # everyone is younger than 30 d: rate_mature NULL
    ],
)
def test_conversion_window_and_immaturity(window, converted, immature, mature_cohort, mature_converted):
    o = Oracle(window_log(), cfg(conversion_window_days=window))
    assert o.as_of == d(25)
    row = o.conversion("mql", "sql", *JAN)[0]
    assert row == {
        "from_stage": "mql", "to_stage": "sql", "cohort": 6, "converted": converted, "rate": converted / 6,
        "immature": immature, "mature_cohort": mature_cohort, "mature_converted": mature_converted,
        "rate_mature": mature_converted / mature_cohort if mature_cohort else None,
        "period_from": 6, "period_to": 4, "window_days": window, "maturity_days": approx(float(window) if window else 8.4),
    }
    # the window argument overrides the config
    assert o.conversion("mql", "sql", *JAN, window_days=0)[0]["converted"] == 4


def test_period_view_counts_whatever_the_cohort():
    # mql in December, sql in January: not in January's cohort, but in January's period_to.
    o = Oracle(journey("P", ("mql", d(20, month=12, year=2023)), ("sql", d(3))), cfg())
    row = o.conversion("mql", "sql", *JAN)[0]
    assert (row["cohort"], row["converted"], row["period_from"], row["period_to"]) == (0, 0, 0, 1)
    assert row["rate"] is None


def test_key_rate_has_the_first_stage_beside_it():
    events = window_log() + journey("J7", ("lead", d(3)), ("mql", d(4)))   # J7 reaches lead and mql
    o = Oracle(events, cfg(conversion_window_days=7))
    # mql cohort: J1..J7 = 7, converted 3 (J1 J4 J5), immature J3 J4 -> mature 5 (J1 J2 J5 J6 J7), 2 converted.
    # lead cohort under count: everyone reached lead at their first funnel spell: 7, same 3 converted.
    low, high = wilson_interval(3, 7)
    assert o.key_rate(*JAN) == [{
        "rate_name": "SQL rate", "from_stage": "mql", "to_stage": "sql",
        "cohort": 7, "converted": 3, "rate": 3 / 7, "wilson_low": low, "wilson_high": high,
        "immature": 2, "rate_mature": 2 / 5, "window_days": 7, "maturity_days": 7.0,
        "first_stage": "lead", "leads": 7, "lead_converted": 3, "lead_rate": 3 / 7,
    }]


def test_a_key_rate_of_the_teams_own():
    """[review] key_rate names the pair and the rate; mql -> sql is only the default."""
    o = Oracle(window_log(), cfg(key_rate=("mql", "sql", "Qualified rate")))
    assert o.key_rate(*JAN)[0]["rate_name"] == "Qualified rate"
    o = Oracle(window_log(), cfg(key_rate=("lead", "sql", "Lead to SQL")))
    row = o.key_rate(*JAN)[0]
    assert (row["from_stage"], row["to_stage"], row["cohort"], row["converted"]) == ("lead", "sql", 6, 4)


def test_time_to_convert():
    o = Oracle(window_log(), cfg())
    # N = 7: entered mql 6; mature (as_of - mql >= 7 d): J1 J2 J5 J6 = 4; within 7 d: J1 (4) J5 (7) = 2;
    # reached sql J1 J2 J4 J5 with gaps 4, 9, 1, 7 -> median of [1, 4, 7, 9] = 5.5
    assert o.time_to_convert(*JAN, within_days=7) == [{
        "from_stage": "mql", "to_stage": "sql",
        "entered": 6, "mature": 4, "reached_within": 2, "share_within": 0.5, "reached": 4, "median_days": 5.5,
    }]
    # N = 30: nobody is mature -> share NULL
    assert o.time_to_convert(*JAN)[0]["share_within"] is None


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def test_wilson_interval_for_3_of_10():
    # the textbook value: 3/10 -> [0.1078, 0.6032] (e.g. Newcombe 1998, Brown-Cai-DasGupta 2001)
    low, high = wilson_interval(3, 10)
    assert low == pytest.approx(0.10779126740630099, abs=1e-12)
    assert high == pytest.approx(0.6032218525388546, abs=1e-12)
    assert round(low, 4) == 0.1078 and round(high, 4) == 0.6032
    assert wilson_interval(0, 0) == (None, None)
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and high == pytest.approx(0.43448, abs=1e-5)


@pytest.mark.parametrize(
    "p_values, q_values",
    [
        # sorted .005 .01 .03 .04, m = 4: p*m/j = .02 .02 .04 .04; running min from the top keeps them
        ([0.01, 0.04, 0.03, 0.005], [0.02, 0.04, 0.04, 0.02]),
        ([0.01, None, 0.04, 0.03, 0.005], [0.02, None, 0.04, 0.04, 0.02]),
        # .02*2/1 = .04 but .03*2/2 = .03 comes after it: q(.02) = min(.04, .03) = .03
        ([0.02, 0.03], [0.03, 0.03]),
        ([0.5], [0.5]),
        ([None, None], [None, None]),
        ([], []),
    ],
)
def test_benjamini_hochberg(p_values, q_values):
    assert benjamini_hochberg(p_values) == [None if q is None else approx(q) for q in q_values]


def test_two_proportion_z_test():
    # 30/100 vs 20/100: pooled .25, se = sqrt(.25 * .75 * .02) = .0612372, z = 1.6329932, p = .102470
    assert two_proportion_p_value(30, 100, 20, 100) == pytest.approx(0.10247, abs=1e-5)
    assert two_proportion_p_value(3, 10, 0, 0) is None      # the rest is empty
    assert two_proportion_p_value(0, 10, 0, 5) is None      # pooled rate 0
    assert two_proportion_p_value(10, 10, 5, 5) is None     # pooled rate 1


def segment_log():
    # channel a: 3 mqls, 1 sql; b: 2 mqls, 2 sqls; no channel: 1 mql, no sql.
    events = []
    for lead_id, channel, converts in [("a1", "a", True), ("a2", "a", False), ("a3", "a", False),
                                       ("b1", "b", True), ("b2", "b", True), ("n1", None, False)]:
        steps = [("mql", d(2))] + ([("sql", d(3))] if converts else [])
        events += journey(lead_id, *steps, channel=channel, owner="ana" if lead_id != "b2" else "ben")
    return events


def test_segment_conversion():
    o = Oracle(segment_log(), cfg())
    rows = o.segment_conversion(["channel"], *JAN)
    assert [r["channel"] for r in rows] == ["(none)", "a", "b"]
    assert [(r["n"], r["converted"]) for r in rows] == [(1, 0), (3, 1), (2, 2)]
    assert sum(r["n"] for r in rows) == 6
    assert list(rows[0]) == ["channel", "n", "converted", "rate", "wilson_low", "wilson_high", "too_few",
                             "p_value", "q_value", "significant", "immature", "rate_mature", "window_days"]
    # (none) 0/1 vs 3/5: pooled .5, se = sqrt(.25 * 1.2), z = .6 / sqrt(.3) = sqrt(1.2) -> erfc(sqrt(.6))
    # a 1/3 vs 2/3: se = sqrt(.25 * 2/3), z = sqrt(2/3) -> erfc(sqrt(1/3))
    # b 2/2 vs 1/4: se = sqrt(.25 * .75), z = sqrt(3) -> erfc(sqrt(1.5))
    p = {"(none)": math.erfc(math.sqrt(0.6)), "a": math.erfc(math.sqrt(1 / 3)), "b": math.erfc(math.sqrt(1.5))}
    assert {r["channel"]: r["p_value"] for r in rows} == {k: approx(v) for k, v in p.items()}
    # BH, m = 3: b (.0833, j=1) -> .2498; (none) (.2733, j=2) -> .4100; a (.4142, j=3) -> .4142
    q = {"b": 3 * p["b"], "(none)": 1.5 * p["(none)"], "a": p["a"]}
    assert {r["channel"]: r["q_value"] for r in rows} == {k: approx(v) for k, v in q.items()}
    assert [r["significant"] for r in rows] == [False, False, False]
    assert all(r["too_few"] for r in rows)            # min_sample 30
    assert not any(r["too_few"] for r in Oracle(segment_log(), cfg(min_sample=1)).segment_conversion(["channel"], *JAN))
    assert rows[1]["wilson_low"] == approx(wilson_interval(1, 3)[0])


def test_segment_conversion_crossed_and_filtered():
    o = Oracle(segment_log(), cfg())
    rows = o.segment_conversion(["channel", "owner"], *JAN)
    assert [(r["channel"], r["owner"], r["n"], r["converted"]) for r in rows] == [
        ("(none)", "ana", 1, 0), ("a", "ana", 3, 1), ("b", "ana", 1, 1), ("b", "ben", 1, 1)]
    # b ben 1/1 vs the rest 2/5; only one group in the filtered cohort -> no p-value
    filtered = o.segment_conversion(["channel"], *JAN, filters={"owner": "ben"})
    assert [(r["channel"], r["n"], r["p_value"], r["q_value"], r["significant"]) for r in filtered] == [
        ("b", 1, None, None, False)]


def test_mix_plus_rate_equals_the_change():
    # before (01-01..01-15): a 2 mqls 1 sql, b 2 mqls 0 sql -> rate .25
    # after (01-15..02-01): a 1 mql 1 sql, b 3 mqls 1 sql -> rate .5
    spec = [("a1", "a", 2, True), ("a2", "a", 3, False), ("b1", "b", 4, False), ("b2", "b", 5, False),
            ("a3", "a", 16, True), ("b3", "b", 17, True), ("b4", "b", 18, False), ("b5", "b", 19, False)]
    events = []
    for lead_id, channel, day, converts in spec:
        events += journey(lead_id, ("mql", d(day)), *([("sql", d(day + 1))] if converts else []), channel=channel)
    o = Oracle(events, cfg())
    rows = oracle_review.mix_vs_rate(o, "channel", None, None, before=(d(1), d(15)), after=(d(15), JAN[1]), mature_only=False)
    by = {r["segment"]: r for r in rows}
    assert [r["segment"] for r in rows] == ["a", "b", "(total)"]
    # a: shares .5 -> .25, rates .5 -> 1: mix (.25 - .5) * .5 = -.125, rate .25 * (1 - .5) = .125
    # b: shares .5 -> .75, rates 0 -> 1/3: mix .25 * 0 = 0, rate .75 * 1/3 = .25
    assert (by["a"]["mix_effect"], by["a"]["rate_effect"]) == (approx(-0.125), approx(0.125))
    assert (by["b"]["mix_effect"], by["b"]["rate_effect"]) == (approx(0.0), approx(0.25))
    total = by["(total)"]
    assert (total["n_before"], total["rate_before"], total["n_after"], total["rate_after"]) == (4, 0.25, 4, 0.5)
    # mix -0.125 + rate 0.375 = 0.25 = 0.5 - 0.25
    assert (total["mix_effect"], total["rate_effect"]) == (approx(-0.125), approx(0.375))
    assert total["mix_effect"] + total["rate_effect"] == approx(total["rate_after"] - total["rate_before"])
    assert list(rows[0]) == ["segment", "n_before", "share_before", "rate_before", "n_after", "share_after",
                             "rate_after", "mix_effect", "rate_effect", "before_from", "before_to", "after_from",
                             "after_to", "mature_only", "window_days", "maturity_days"]
    # Mature cohorts only: the horizon is 1 day (every conversion took a day) and as_of is b5's mql
    # (01-19): b5 itself is younger than a day and leaves the after period.
    mature = {r["segment"]: r for r in oracle_review.mix_vs_rate(o, "channel", None, None, before=(d(1), d(15)), after=(d(15), JAN[1]))}
    assert (mature["b"]["n_after"], mature["(total)"]["n_after"], mature["(total)"]["maturity_days"]) == (2, 3, 1.0)


def test_mix_vs_rate_value_absent_from_one_period():
    events = journey("x1", ("mql", d(2)), ("sql", d(3)), channel="x") + journey("y1", ("mql", d(20)), channel="y")
    rows = {r["segment"]: r for r in oracle_review.mix_vs_rate(Oracle(events, cfg()), "channel", None, None,
                                                               before=(d(1), d(15)), after=(d(15), JAN[1]), mature_only=False)}
    # x only before (share 1, rate 1), y only after (share 1, rate 0): mix x (0-1)*1 = -1, y (1-0)*0 = 0;
    # rate x 0 * (0 - 1) = 0, y 1 * (0 - 0) = 0; total change 0 - 1 = -1
    assert (rows["x"]["n_after"], rows["x"]["share_after"], rows["x"]["rate_after"]) == (0, 0.0, 0.0)
    assert (rows["y"]["n_before"], rows["y"]["share_before"], rows["y"]["rate_before"]) == (0, 0.0, 0.0)
    assert (rows["(total)"]["mix_effect"], rows["(total)"]["rate_effect"]) == (-1.0, 0.0)


# ---------------------------------------------------------------------------------------------
# Disqualifiers
# ---------------------------------------------------------------------------------------------


def exits_log():
    return (
        journey("K1", ("lead", d(1)), ("mql", d(2)), ("disqualified", d(3), "Budget too low"))
        + journey("K2", ("lead", d(1)), ("disqualified", d(4), "no budget"))
        + journey("K3", ("disqualified", d(5)))                                   # starts in an outcome
        + journey("K4", ("lead", d(1)), ("mql", d(2)), ("nurture", d(6), "went dark"),
                  ("disqualified", d(9), "Moved to Mars"))
        + journey("K5", ("mql", d(2)), ("sql", d(3)), ("lost", d(8), "  PRICE "))
    )


def test_disqualifiers_pareto():
    rows = Oracle(exits_log(), cfg()).disqualifiers(*JAN)
    # 6 outcome spells; Budget 2, the rest 1 each; ties by outcome then reason ("(" sorts before "M")
    assert [(r["outcome"], r["reason"], r["exits"]) for r in rows] == [
        ("disqualified", "Budget", 2),
        ("disqualified", NO_REASON, 1),
        ("disqualified", "Moved to Mars", 1),
        ("lost", "Price", 1),
        ("nurture", "No decision", 1),
    ]
    assert [r["share"] for r in rows] == [approx(x) for x in (2 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6)]
    assert [r["cumulative_share"] for r in rows] == [approx(x) for x in (2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0)]


def test_disqualifiers_by_stage_left_and_week():
    o = Oracle(exits_log(), cfg())
    rows = o.disqualifiers(*JAN, by="stage_left")
    # K3 started in an outcome -> (none); K4's disqualified follows nurture: the funnel stage left is mql
    assert [(r["stage_left"], r["outcome"], r["reason"], r["exits"], r["share"]) for r in rows] == [
        ("(none)", "disqualified", NO_REASON, 1, 1.0),
        ("lead", "disqualified", "Budget", 1, 1.0),
        ("mql", "disqualified", "Budget", 1, approx(1 / 3)),
        ("mql", "disqualified", "Moved to Mars", 1, approx(1 / 3)),
        ("mql", "nurture", "No decision", 1, approx(1 / 3)),
        ("sql", "lost", "Price", 1, 1.0),
    ]
    weeks = o.disqualifiers(*JAN, by="week")
    # week of 01-01: K1 (01-03), K2 (01-04), K3 (01-05), K4 nurture (01-06); week of 01-08: K5 (01-08), K4 (01-09)
    assert sorted({r["week"] for r in weeks}) == [date(2024, 1, 1), date(2024, 1, 8)]
    assert sum(r["exits"] for r in weeks if r["week"] == date(2024, 1, 1)) == 4
    assert [(r["week"], r["outcome"]) for r in weeks][-2:] == [(date(2024, 1, 8), "disqualified"), (date(2024, 1, 8), "lost")]


# ---------------------------------------------------------------------------------------------
# Stalled
# ---------------------------------------------------------------------------------------------


def test_stalled_with_sla():
    # sla sql = 3 d, as_of 01-10; a week ago = 01-03.
    events = (
        journey("S1", ("sql", d(1)), owner="ana", amount="1000")     # age 9 > 3; on 01-03 age 2: newly stalled
        + journey("S2", ("sql", d(8)), owner="ben")                  # age 2: not stalled
        + journey("S3", ("sql", d(25, month=12, year=2023)))         # age 16; on 01-03 age 9: stalled before
        + journey("S4", ("sql", d(28, month=12, year=2023)), ("opportunity", d(5)))  # stalled on 01-03 (6 d), closed: recovered
    )
    o = Oracle(events, cfg(sla_days={"sql": 3.0}, stage_slas=(StageSla("sql", None, "calendar", 72.0, 3.0),)), as_of=d(10))
    rows = o.stalled()
    assert [(r["lead_id"], r["age_days"], r["threshold_days"], r["threshold_source"], r["newly_stalled"])
            for r in rows] == [("S1", 9.0, 3.0, "sla", True), ("S3", 16.0, 3.0, "sla", False)]  # newly stalled first
    assert list(rows[0]) == [
        "lead_id", "stage", "entered_at", "age_days", "threshold_days", "threshold_source", "sla_hours", "clock", "breached_at", "newly_stalled",
        "owner", "channel", "industry", "service_line", "region", "company_size", "buyer_role", "amount", "amount_currency",
        "last_activity_at", "days_since_activity", "close_pushes", "days_slipped",
    ]
    assert (rows[0]["owner"], rows[0]["amount"], rows[0]["stage"], rows[0]["entered_at"]) == ("ana", 1000.0, "sql", d(1))
    assert (rows[0]["last_activity_at"], rows[0]["days_since_activity"]) == (None, None)  # the log records no activity
    # S4 sits in opportunity with no SLA and no completed opportunity spell: no threshold, not stalled
    assert o.stalled_summary() == [{"stalled": 2, "newly_stalled": 1, "recovered": 1}]
    assert o.stalled_summary(filters={"owner": "ana"}) == [{"stalled": 1, "newly_stalled": 1, "recovered": 0}]


def test_stalled_with_business_hour_slas_per_channel():
    # [sla] clock business, mql 16 h, inbound 8 h; 09:00-17:00 UTC; as_of Tuesday 2024-01-09 10:00.
    events = (
        journey("B1", ("mql", d(5, 15)), channel="inbound")   # Fri 2 h + Mon 8 + Tue 1 = 11 > 8: over since Mon 15:00
        + journey("B2", ("mql", d(5, 15)), channel="referral")  # 11 <= 16: not stalled (due Tue 15:00)
        + journey("B3", ("mql", d(1, 9)), channel="referral")   # 16 h used up at Tue 01-02 17:00: over from Wed 09:00
        + journey("B4", ("mql", d(6, 12)), channel="inbound")   # entered on a Saturday: Mon 8 + Tue 1 = 9 > 8, over from Tue 09:00
    )
    slas = (StageSla("mql", None, "business", 16.0), StageSla("mql", "inbound", "business", 8.0))
    o = Oracle(events, cfg(stage_slas=slas, sla_by="channel"), as_of=d(9, 10))
    rows = {r["lead_id"]: r for r in o.stalled()}
    assert sorted(rows) == ["B1", "B3", "B4"]
    assert [(rows[k]["threshold_source"], rows[k]["sla_hours"], rows[k]["clock"], rows[k]["threshold_days"], rows[k]["breached_at"])
            for k in ("B1", "B3", "B4")] == [
        ("sla segment", 8.0, "business", None, d(8, 15)),
        ("sla", 16.0, "business", None, d(3, 9)),
        ("sla segment", 8.0, "business", None, d(9, 9)),
    ]
    assert rows["B1"]["age_days"] == approx((d(9, 10) - d(5, 15)) / timedelta(days=1))  # the age stays calendar days
    # a week ago (01-02 10:00) B3 had 9 business hours of 16: every one is newly stalled
    assert o.stalled_summary() == [{"stalled": 3, "newly_stalled": 3, "recovered": 0}]


def p90_log():
    # M1..M10: mql 01-01 -> sql 01-01 + k d (completed mql durations 1..10; p90 = 9.1).
    # M1, M2 are channel x, the rest a. Open mql spells at as_of 01-20:
    # O1 (x) since 01-10 12:00 (9.5 d), O2 (a) since 01-11 (9 d), O3 (no channel) since 01-15 (5 d).
    events = []
    for k in range(1, 11):
        events += journey(f"M{k:02d}", ("mql", d(1)), ("sql", d(1) + timedelta(days=k)), channel="x" if k <= 2 else "a")
    events += journey("O1", ("mql", d(10, 12)), channel="x")
    events += journey("O2", ("mql", d(11)), channel="a")
    events += journey("O3", ("mql", d(15)))
    return events


@pytest.mark.parametrize(
    "segment, min_sample, expected",
    [
        # stage p90 = 9.1: only O1 (9.5) is past it
        (None, 2, [("O1", 9.5, 9.1, "p90 stage")]),
        # per channel with min_sample 2: x has [1, 2] -> p90 1.9, O1 stalled; a has [3..10] -> position 6.3 ->
        # 9.3, O2 (9) not; (none) has no completed spell -> stage p90 9.1, O3 (5) not
        ("channel", 2, [("O1", 9.5, 1.9, "p90 segment")]),
        # min_sample 30: no channel has enough, back to the stage p90
        ("channel", 30, [("O1", 9.5, 9.1, "p90 stage")]),
    ],
)
def test_stalled_with_p90_thresholds(segment, min_sample, expected):
    o = Oracle(p90_log(), cfg(min_sample=min_sample), as_of=d(20))
    rows = o.stalled(segment=segment)
    assert [(r["lead_id"], r["age_days"], approx(r["threshold_days"]), r["threshold_source"]) for r in rows] == [
        (lead, age, approx(threshold), source) for lead, age, threshold, source in expected]
    assert rows[0]["newly_stalled"] is (segment is None or min_sample == 30)  # on 01-13: 2.5 d; > 1.9 with the x p90
    # the M leads sit in sql with no completed sql spell: never stalled


# ---------------------------------------------------------------------------------------------
# Weekly KPIs
# ---------------------------------------------------------------------------------------------


def weekly_log():
    # weeks (Mondays) 01-01, 01-08, 01-15, 01-22, 01-29, 02-05 get 1, 2, 3, 4, 5, 1 new leads (lead stage);
    # in week 01-15, two of them reach mql on 01-16 and one of those sql on 01-17 10:00.
    events = []
    for week, count in enumerate([1, 2, 3, 4, 5, 1]):
        monday = d(1) + timedelta(weeks=week)
        for k in range(count):
            events += journey(f"W{week}{k}", ("lead", monday + timedelta(hours=k)))
    events += [ev("W20", "mql", d(16)), ev("W21", "mql", d(16)), ev("W20", "sql", d(17, 10))]
    return events


def test_weekly_kpis_deltas():
    o = Oracle(weekly_log(), cfg())
    assert o.as_of == d(5, month=2)
    rows = oracle_review.weekly_kpis(o, d(1), d(1, month=3))
    weeks = sorted({r["week"] for r in rows})
    assert weeks == [date(2024, 1, 1) + timedelta(weeks=i) for i in range(6)]   # up to as_of's week
    kpis = [r["kpi"] for r in rows if r["week"] == weeks[0]]
    assert kpis == ["new_leads", "reached_mql", "reached_sql", "reached_opportunity", "reached_proposal",
                    "reached_won", "exits", "key_rate", "immature", "median_days_to_target", "lost", "win_rate"]
    new = [(r["value"], r["previous"], r["delta_week"], r["mean_4w"], r["delta_4w"]) for r in rows if r["kpi"] == "new_leads"]
    assert new == [
        (1, None, None, None, None),
        (2, 1, 1, None, None),
        (3, 2, 1, None, None),
        (4, 3, 1, None, None),
        (5, 4, 1, 2.5, 2.5),     # mean of 1, 2, 3, 4
        # the review week (02-05) is at its very start (as_of Monday 00:00): each earlier week at the
        # same point holds only its Monday 00:00 lead, so 1 new lead is no drop (not 1 against 5)
        (1, 1, 0, 1.0, 0.0),
    ]
    assert [r["partial"] for r in rows if r["kpi"] == "new_leads"] == [False] * 5 + [True]
    third = {r["kpi"]: r for r in rows if r["week"] == date(2024, 1, 15)}
    assert (third["reached_mql"]["value"], third["reached_sql"]["value"], third["key_rate"]["value"]) == (2, 1, 0.5)
    # W20 was created 01-15 00:00, sql 01-17 10:00: 2 days 10 hours
    assert third["median_days_to_target"]["value"] == approx(2 + 10 / 24)
    # key_rate is NULL in weeks without mqls, so its deltas are NULL too
    assert third["key_rate"]["previous"] is None and third["key_rate"]["delta_week"] is None
    fourth = {r["kpi"]: r for r in rows if r["week"] == date(2024, 1, 22)}
    assert (fourth["reached_mql"]["previous"], fourth["reached_mql"]["delta_week"]) == (2, -2)
    # no window: the horizon is the one conversion's 1 day 10 hours, long past at as_of
    assert all(r["value"] == 0 for r in rows if r["kpi"] == "immature")
    assert all(r["value"] is None for r in rows if r["kpi"] in ("lost", "win_rate"))  # no loss in the log


def test_weekly_kpis_default_range_and_time_zone():
    o = Oracle(weekly_log(), cfg())
    weeks = sorted({r["week"] for r in oracle_review.weekly_kpis(o, None, None)})
    assert len(weeks) == 13 and weeks[-1] == date(2024, 2, 5)
    # 2024-01-08 03:00 UTC is Sunday 01-07 22:00 in New York: week of 01-01
    ny = Oracle(journey("Z", ("lead", d(8, 3))), cfg(timezone="America/New_York"))
    assert ny.week_of(d(8, 3)) == date(2024, 1, 1)
    # a period starts at a UTC instant: local midnight of Monday 01-01 in New York is 05:00 UTC ...
    assert [r["value"] for r in oracle_review.weekly_kpis(ny, d(1, 5), None) if r["kpi"] == "new_leads"] == [1]
    # ... while 01-01 00:00 UTC is still Sunday 12-31 there: the range starts a week earlier
    assert [(r["week"], r["value"]) for r in oracle_review.weekly_kpis(ny, d(1), None) if r["kpi"] == "new_leads"] == [
        (date(2023, 12, 25), 0), (date(2024, 1, 1), 1)]
    # in Kolkata it is Monday 08:30: week of 01-08
    assert Oracle(journey("Z", ("lead", d(8, 3))), cfg(timezone="Asia/Kolkata")).week_of(d(8, 3)) == date(2024, 1, 8)


def test_weekly_immature_flag():
    o = Oracle(window_log(), cfg(conversion_window_days=7))
    rows = {(r["week"], r["kpi"]): r["value"] for r in oracle_review.weekly_kpis(o, d(1), None)}
    # week 01-15: J6 (mql 01-18, mature exactly); week 01-22: J4 (01-24, immature)... J3 mql 01-20 is week 01-15
    # -> week 01-15 holds J3 (immature) and J6: flag 1; week 01-22 holds J4: flag 1; week 01-01: J1 J2 J5 mature
    assert rows[(date(2024, 1, 1), "immature")] == 0
    assert rows[(date(2024, 1, 15), "immature")] == 1
    assert rows[(date(2024, 1, 22), "immature")] == 1
    # week 01-01: J1 (4 d) J5 (7 d) converted, J2 (9 d) not -> 2/3
    assert rows[(date(2024, 1, 1), "key_rate")] == approx(2 / 3)


# ---------------------------------------------------------------------------------------------
# Lead attributes, created_at, score bands
# ---------------------------------------------------------------------------------------------


def test_lead_attributes_leads_file_wins_latest_row_wins_events_fill_gaps():
    events = [
        ev("A", "lead", d(1), channel="inbound", owner="ana"),
        ev("A", "mql", d(2), channel="referral", owner=None),    # latest event with a channel: referral
        ev("A", "sql", d(3), channel=" ", owner=None),           # blank is no value
    ]
    leads = [
        LeadRow("A", d(20, month=12, year=2023), file_id=10, source_line=2, attrs={"owner": "ben", "channel": None}),
        LeadRow("A", None, file_id=10, source_line=3, attrs={"owner": "chloe", "channel": ""}),
        LeadRow("Q", d(5), file_id=10, source_line=4, attrs={"owner": "dee"}),   # no events at all
    ]
    o = Oracle(events, cfg(), leads)
    attrs = o.lead_attributes()
    assert attrs["A"] == {"channel": "referral", "owner": "chloe"}
    assert attrs["Q"] == {"channel": None, "owner": "dee"}
    assert o.created_at("A") == d(20, month=12, year=2023)    # the latest leads row with a created_at
    assert o.created_at("Q") == d(5)
    assert Oracle(events, cfg()).created_at("A") == d(1)      # no leads file: the first event


@pytest.mark.slow
def test_events_from_warehouse_reads_the_raw_tables(tmp_path):
    from funnelboard.warehouse.pipeline import load_files
    from tests.conftest import NOW

    (tmp_path / "events.csv").write_text(
        "lead_id,stage,entered_at,reason,channel,owner\n"
        "L1,New Lead,2024-01-01 09:00:00,,inbound,Ann\n"
        "L1,Unqualified,2024-01-03T10:00:00Z, No  Budget ,,\n", "utf-8")
    (tmp_path / "leads.csv").write_text("lead_id,created_at,owner\nL1,2023-12-30,Bo\n", "utf-8")
    db = tmp_path / "wh.duckdb"
    load_files(db, [tmp_path / "events.csv"], DEFAULT, leads=[tmp_path / "leads.csv"], now=NOW)
    events, leads = events_from_warehouse(db)
    events.sort(key=lambda e: e.source_line)
    # attrs = every non-core column (the loader also adds the configured segment columns, empty here)
    assert {"channel", "owner"} <= set(events[0].attrs) and "stage_label" not in events[0].attrs
    given = lambda attrs: {k: v for k, v in attrs.items() if v is not None}  # noqa: E731
    assert [(e.lead_id, e.stage, e.entered_at, e.reason, e.source_line, given(e.attrs)) for e in events] == [
        ("L1", "lead", d(1, 9), None, 2, {"channel": "inbound", "owner": "Ann"}),
        ("L1", "disqualified", d(3, 10), "No  Budget", 3, {}),
    ]
    assert [(r.lead_id, r.created_at, r.source_line, given(r.attrs)) for r in leads] == [
        ("L1", d(30, month=12, year=2023), 2, {"owner": "Bo"})]
    o = Oracle(events, DEFAULT, leads)
    assert given(o.lead_attributes()["L1"]) == {"channel": "inbound", "owner": "Bo"}
    assert o.spells()[-1]["reason"] == "Budget"


@pytest.mark.parametrize(
    "band, leads, reached_from, reached_to, from_rate, key_rate",
    [
        ("0-9", 2, 1, 0, 0.5, 0.0),      # scores 0 (reaches mql) and 9
        ("10-19", 1, 0, 0, 0.0, None),   # score 10, no mql: sql_rate NULL
        ("90-100", 2, 1, 1, 0.5, 1.0),   # scores 99 and 100 (100 joins the top band; jumps to sql = mql too)
    ],
)
def test_score_bands_edges(band, leads, reached_from, reached_to, from_rate, key_rate):
    events = (
        journey("s0", ("lead", d(2)), ("mql", d(3)), lead_score="0")
        + journey("s9", ("lead", d(2)), lead_score="9")
        + journey("s10", ("lead", d(2)), lead_score="10")
        + journey("s99", ("lead", d(2)), lead_score="99")
        + journey("s100", ("lead", d(2)), ("sql", d(4)), lead_score="100")
        + journey("sNone", ("lead", d(2)), ("mql", d(3)), lead_score=None)   # no score: left out
        + journey("sText", ("lead", d(2)), lead_score="high")                # not a number: left out
        + journey("sLate", ("lead", d(2, month=2)), lead_score="50")         # created after the period
    )
    rows = Oracle(events, cfg()).score_bands(*JAN)
    assert [r["band"] for r in rows] == ["0-9", "10-19", "90-100"]
    row = {r["band"]: r for r in rows}[band]
    assert row == {"band": band, "from_stage": "mql", "to_stage": "sql", "leads": leads, "reached_from": reached_from,
                   "reached_to": reached_to, "from_rate": from_rate, "key_rate": key_rate}


def test_filters_select_leads_for_every_metric():
    o = Oracle(segment_log(), cfg())
    assert o.conversion("mql", "sql", *JAN, filters={"channel": "a"})[0]["cohort"] == 3
    assert o.conversion("mql", "sql", *JAN, filters={"channel": "a", "owner": "ben"})[0]["cohort"] == 0
    assert o.conversion("mql", "sql", *JAN, filters={"channel": None})[0]["cohort"] == 1   # R6
    assert o.funnel(*JAN, filters={"channel": "b"})[2]["reached"] == 2
    assert sum(r["entered"] for r in o.stage_accounting(*JAN, filters={"owner": "ben"})) == 2


# ---------------------------------------------------------------------------------------------
# Properties on generated logs
# ---------------------------------------------------------------------------------------------

PERIODS = st.sampled_from([(d(1), d(1, month=6)), (d(1, month=2), d(1, month=3)), (d(15), d(22))])
PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def unit(x) -> bool:
    return x is None or -1e-12 <= x <= 1 + 1e-12


@pytest.mark.slow
@PROPERTY
@given(log=event_logs(), config=config_variants(), period=PERIODS)
def test_stage_accounting_identity_on_every_row(log, config, period):
    events, leads = log
    for row in Oracle(events, config, leads).stage_accounting(*period):
        assert row["entered"] == row["advanced"] + row["exited"] + row["regressed"] + row["open"]
        assert row["exited"] == sum(row[f"exited_{o}"] for o in config.outcomes)


@pytest.mark.slow
@PROPERTY
@given(log=event_logs(), config=config_variants(), period=PERIODS)
def test_rates_are_in_0_1(log, config, period):
    events, leads = log
    o = Oracle(events, config, leads)
    count = config.skipped_stages == "count"
    for from_stage, to_stage in [("mql", "sql"), ("lead", "sql"), ("sql", "won")]:
        row = o.conversion(from_stage, to_stage, *period)[0]
        assert unit(row["rate"]) and unit(row["rate_mature"])
        assert row["converted"] <= row["cohort"] and row["mature_converted"] <= row["mature_cohort"]
    assert all(unit(o.key_rate(*period)[0][k]) for k in ("rate", "wilson_low", "wilson_high", "rate_mature", "lead_rate"))
    for row in o.funnel(*period):
        assert unit(row["cumulative_rate"]) or not count
        assert unit(row["step_rate"]) or not count   # strict: a skipped stage can make a step exceed 1
    assert unit(o.time_to_convert(*period, within_days=7)[0]["share_within"])
    for row in o.segment_conversion(["channel"], *period):
        assert all(unit(row[k]) for k in ("rate", "wilson_low", "wilson_high", "p_value", "q_value"))
    for row in o.disqualifiers(*period, by="stage_left"):
        assert unit(row["share"]) and unit(row["cumulative_share"])
    for row in oracle_review.mix_vs_rate(o, "owner", None, None, before=period, after=(d(1, month=3), d(1, month=6))):
        assert all(unit(row[k]) for k in ("share_before", "rate_before", "share_after", "rate_after"))
    for row in o.score_bands(*period):
        assert unit(row["from_rate"]) and (unit(row["key_rate"]) or not count)
    for row in oracle_review.weekly_kpis(o, period[0], None):
        if row["kpi"] in ("key_rate", "win_rate"):
            assert unit(row["value"])
    for row in oracle_review.win_rate(o, *period, segment="channel"):
        assert all(unit(row[k]) for k in ("win_rate", "wilson_low", "wilson_high", "cohort_win_rate"))


@pytest.mark.slow
@PROPERTY
@given(log=event_logs(), config=config_variants(), period=PERIODS, business=st.booleans())
def test_durations_are_not_negative(log, config, period, business):
    events, leads = log
    o = Oracle(events, config, leads)
    for s in o.spells():
        assert s["exited_at"] is None or s["exited_at"] >= s["entered_at"]
        assert s["entered_at"] <= o.as_of
    for row in o.time_in_stage(*period, segment="owner", business_days=business):
        assert all(row[k] is None or row[k] >= 0 for k in ("p50", "p75", "p90", "km_p50", "km_p75", "km_p90"))
        assert row["p50"] is None or row["p50"] <= row["p75"] <= row["p90"]
        assert row["km_p50"] is None or row["km_p75"] is None or row["km_p50"] <= row["km_p75"]
    for row in o.time_in_stage_by_lead(business_days=business):
        assert 0 <= row["latest_days"] <= row["cumulative_days"] + 1e-12
    for row in o.stalled(segment="channel"):
        if row["clock"] == "calendar":
            assert row["age_days"] > row["threshold_days"] >= 0
        else:  # business hours: the deadline is at least the SLA's hours after entry, and passed
            assert row["entered_at"] + timedelta(hours=row["sla_hours"]) <= row["breached_at"] < o.as_of
    if config.skipped_stages == "count":
        median = o.time_to_convert(*period)[0]["median_days"]
        assert median is None or median >= 0


@pytest.mark.slow
@PROPERTY
@given(log=event_logs(), config=config_variants(), period=PERIODS)
def test_segment_counts_sum_to_the_cohort(log, config, period):
    events, leads = log
    o = Oracle(events, config, leads)
    conv = o.conversion(*o.key, *period)[0]
    for segments in (["channel"], ["owner"], ["channel", "owner"]):
        rows = o.segment_conversion(segments, *period)
        assert sum(r["n"] for r in rows) == conv["cohort"]
        assert sum(r["converted"] for r in rows) == conv["converted"]
    whole = {r["stage"]: r for r in o.time_in_stage(*period)}
    by_channel = o.time_in_stage(*period, segment="channel")
    for stage, row in whole.items():
        parts = [r for r in by_channel if r["stage"] == stage]
        assert sum(r["n_completed"] for r in parts) == row["n_completed"]
        assert sum(r["n_open"] for r in parts) == row["n_open"]
    total = sum(r["exits"] for r in o.disqualifiers(*period))
    assert sum(r["exits"] for r in o.disqualifiers(*period, by="channel")) == total
    assert sum(r["exits"] for r in o.disqualifiers(*period, by="week")) == total
    mix = oracle_review.mix_vs_rate(o, "channel", None, None, before=period, after=period, mature_only=False)
    assert sum(r["n_before"] for r in mix[:-1]) == mix[-1]["n_before"] == conv["cohort"]


@pytest.mark.slow
@PROPERTY
@given(log=event_logs(), config=config_variants(), period=PERIODS)
def test_wilson_interval_contains_the_rate(log, config, period):
    events, leads = log
    for row in Oracle(events, config, leads).segment_conversion(["channel", "owner"], *period):
        assert row["wilson_low"] <= row["rate"] <= row["wilson_high"]
        assert row["too_few"] == (row["n"] < config.min_sample)


@pytest.mark.slow
@PROPERTY
@given(log=event_logs(), config=config_variants(), before=PERIODS, after=PERIODS,
       column=st.sampled_from(["channel", "owner", "lead_score"]))
def test_mix_plus_rate_effect_is_the_rate_change(log, config, before, after, column):
    events, leads = log
    rows = oracle_review.mix_vs_rate(Oracle(events, config, leads), column, None, None, before=before, after=after)
    total = rows[-1]
    assert total["segment"] == "(total)"
    assert abs(total["mix_effect"] + total["rate_effect"] - (total["rate_after"] - total["rate_before"])) <= 1e-12
    assert abs(sum(r["share_before"] for r in rows[:-1]) - total["share_before"]) <= 1e-12
