"""segment_conversion, mix_vs_rate and score_bands on hand-made logs, and their invariants on a demo log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from funnelboard.core.errors import UserError
from funnelboard.warehouse.metrics import MetricRequest
from funnelboard.warehouse.metrics.segments import comparison_periods
from tests.warehouse.metrics.logs import JAN, D, approx_rows, run, warehouse

# --- segment_conversion ----------------------------------------------------------------------

SEGMENT_EVENTS = [
    # channel a: 4 MQLs in January, 3 reach SQL within the 90-day window
    "a1,mql,2024-01-02,,a", "a1,sql,2024-01-05",
    "a2,mql,2024-01-03,,a", "a2,sql,2024-01-20",
    "a3,mql,2024-01-04,,a", "a3,sql,2024-02-01",
    "a4,mql,2024-01-05,,a",
    # channel b: 4 MQLs, 1 within the window, 1 after 100 days (not converted)
    "b1,mql,2024-01-02,,b", "b1,sql,2024-01-04",
    "b2,mql,2024-01-03,,b", "b2,sql,2024-04-12",
    "b3,mql,2024-01-04,,b",
    "b4,mql,2024-01-05,,b",
    # no channel: 2 MQLs, none converted
    "n1,mql,2024-01-06", "n2,mql,2024-01-07",
    # outside the period
    "x1,mql,2024-02-10,,a", "x1,sql,2024-02-11",
]
MIN_SAMPLE_3 = '[funnel]\nmin_sample = 3\nconversion_window_days = 90\n'


def test_segment_conversion_statistics_by_hand(tmp_path):
    gw = warehouse(tmp_path, SEGMENT_EVENTS, MIN_SAMPLE_3)
    rows = run(gw, "segment_conversion", **JAN, as_of=D(2024, 6, 1), segment="channel")
    # Cohort 10, converted 4, pooled rate 0.4 for every group against its rest:
    # (none) 0/2 vs 4/8: se = sqrt(0.24 * (1/2 + 1/8)) = 0.387298, z = -1.290994, p = 0.196706
    # a      3/4 vs 1/6: se = sqrt(0.24 * (1/4 + 1/6)) = 0.316228, z =  1.844662, p = 0.0650867
    # b      1/4 vs 3/6: se = 0.316228,                            z = -0.790569, p = 0.429195
    # BH, m = 3, sorted a, (none), b: 0.0650867*3 = 0.195260, 0.196706*3/2 = 0.295059, 0.429195.
    # Wilson: 0/2 -> (0, 0.6576), 3/4 -> (0.3006, 0.9544), 1/4 -> (0.0456, 0.6994).
    expected = [
        ("(none)", 2, 0, 0.0, 0.0, 0.6576, True, 0.196706, 0.295059),
        ("a", 4, 3, 0.75, 0.3006, 0.9544, False, 0.0650867, 0.195260),
        ("b", 4, 1, 0.25, 0.0456, 0.6994, False, 0.429195, 0.429195),
    ]
    assert [r["channel"] for r in rows] == [e[0] for e in expected]
    for r, (segment, n, converted, rate, low, high, too_few, p, q) in zip(rows, expected):
        assert list(r) == ["channel", "n", "converted", "rate", "wilson_low", "wilson_high", "too_few",
                           "p_value", "q_value", "significant", "immature", "rate_mature", "window_days"]
        # the 90-day window is the maturity horizon: by June every January MQL is mature
        assert (r["immature"], r["rate_mature"]) == (0, pytest.approx(rate))
        assert (r["n"], r["converted"], r["too_few"], r["significant"]) == (n, converted, too_few, False)
        assert r["rate"] == pytest.approx(rate)
        assert (round(r["wilson_low"], 4), round(r["wilson_high"], 4)) == (low, high)
        assert r["p_value"] == pytest.approx(p, abs=1e-6)
        assert r["q_value"] == pytest.approx(q, abs=1e-6)


def test_segment_conversion_marks_a_clear_difference_significant(tmp_path):
    # 40 MQLs each: a converts 36, b converts 4. Pooled 0.5, se = sqrt(0.25 * (1/40 + 1/40)) = 0.1118,
    # z = 0.8 / 0.1118 = 7.16: p ~ 8e-13 for both; BH with m = 2 keeps both far below 0.05.
    events = []
    for ch, wins in (("a", 36), ("b", 4)):
        for i in range(40):
            events.append(f"{ch}{i},mql,2024-01-10,,{ch}")
            if i < wins:
                events.append(f"{ch}{i},sql,2024-01-15")
    gw = warehouse(tmp_path, events)
    rows = run(gw, "segment_conversion", **JAN, as_of=D(2024, 6, 1), segment="channel")
    assert [(r["channel"], r["n"], r["converted"], r["too_few"], r["significant"]) for r in rows] == [
        ("a", 40, 36, False, True),
        ("b", 40, 4, False, True),
    ]
    assert rows[0]["p_value"] == pytest.approx(rows[1]["p_value"]) and rows[0]["p_value"] < 1e-11


def test_segment_conversion_crossed(tmp_path):
    events = [
        "a1,mql,2024-01-02,,a,EU", "a1,sql,2024-01-03",
        "a2,mql,2024-01-02,,a,US",
        "b1,mql,2024-01-02,,b,EU",
        "b2,mql,2024-01-02,,b",
    ]
    gw = warehouse(tmp_path, events)
    rows = run(gw, "segment_conversion", **JAN, as_of=D(2024, 6, 1), segment="channel", segment2="region")
    assert [tuple(r.values())[:4] for r in rows] == [
        ("a", "EU", 1, 1), ("a", "US", 1, 0), ("b", "(none)", 1, 0), ("b", "EU", 1, 0),
    ]
    assert list(rows[0])[:2] == ["channel", "region"]
    # a/EU 1/1 against 0/3: pooled 1/4; the others 0/1 against 1/3.
    assert all(r["p_value"] is not None for r in rows)
    # Without a segment: the whole cohort, no rest to test against.
    assert run(gw, "segment_conversion", **JAN, as_of=D(2024, 6, 1)) == [{
        "n": 4, "converted": 1, "rate": 0.25, "wilson_low": pytest.approx(0.0456, abs=1e-4),
        "wilson_high": pytest.approx(0.6994, abs=1e-4), "too_few": True, "p_value": None, "q_value": None,
        "significant": False, "immature": 0, "rate_mature": 0.25, "window_days": 0,
    }]
    for wrong in ({"segment2": "region"}, {"segment": "channel", "segment2": "channel"}):
        with pytest.raises(UserError):
            run(gw, "segment_conversion", **wrong)


# --- mix_vs_rate -------------------------------------------------------------------------------

MIX_EVENTS = [
    # before (January): a 2/2, b 0/2
    "a1,mql,2024-01-05,,a", "a1,sql,2024-01-06",
    "a2,mql,2024-01-06,,a", "a2,sql,2024-01-08",
    "b1,mql,2024-01-07,,b",
    "b2,mql,2024-01-08,,b",
    # after (February): a 1/1, b 1/3, c 0/2
    "a3,mql,2024-02-05,,a", "a3,sql,2024-02-06",
    "b3,mql,2024-02-05,,b", "b3,sql,2024-02-07",
    "b4,mql,2024-02-06,,b",
    "b5,mql,2024-02-07,,b",
    "c1,mql,2024-02-08,,c",
    "c2,mql,2024-02-09,,c",
]


def test_mix_vs_rate_by_hand(tmp_path):
    gw = warehouse(tmp_path, MIX_EVENTS)
    rows = run(
        gw, "mix_vs_rate", segment="channel", as_of=D(2024, 6, 1), window_days=0,
        before=(D(2024, 1, 1), D(2024, 2, 1)), after=(D(2024, 2, 1), D(2024, 3, 1)),
    )
    # shares before 2/4, 2/4, 0; after 1/6, 3/6, 2/6; rates before 1, 0, 0; after 1, 1/3, 0.
    # a: mix (1/6 - 1/2) * 1 = -1/3, rate 1/6 * 0 = 0
    # b: mix (1/2 - 1/2) * 0 = 0,    rate 1/2 * 1/3 = 1/6
    # c: mix (1/3 - 0) * 0 = 0,      rate 1/3 * 0 = 0
    # total: 1/3 - 1/2 = -1/6 = -1/3 + 1/6
    columns = ("segment", "n_before", "share_before", "rate_before", "n_after", "share_after", "rate_after",
               "mix_effect", "rate_effect")
    expected = [
        ("a", 2, 0.5, 1.0, 1, 1 / 6, 1.0, -1 / 3, 0.0),
        ("b", 2, 0.5, 0.0, 3, 0.5, 1 / 3, 0.0, 1 / 6),
        ("c", 0, 0.0, 0.0, 2, 1 / 3, 0.0, 0.0, 0.0),
        ("(total)", 4, 1.0, 0.5, 6, 1.0, 1 / 3, -1 / 3, 1 / 6),
    ]
    assert [{k: r[k] for k in columns} for r in rows] == approx_rows([dict(zip(columns, e)) for e in expected])
    assert all((r["before_from"], r["after_to"]) == (D(2024, 1, 1), D(2024, 3, 1)) for r in rows)


def test_mix_vs_rate_default_periods_end_where_cohorts_have_matured(tmp_path):
    as_of = D(2024, 3, 1)
    tick = timedelta(microseconds=1)
    # The maturity horizon: the p90 of the conversion times 1, 2, 1 and 2 days = 2 days, so the after
    # period is the 28 days ending 2 days before as_of, and before is the 28 days before that.
    before, after = comparison_periods(MetricRequest(as_of=as_of), maturity=2.0)
    assert after == (D(2024, 1, 31) + tick, D(2024, 2, 28) + tick)
    assert before == (D(2024, 1, 3) + tick, D(2024, 1, 31) + tick)
    gw = warehouse(tmp_path, MIX_EVENTS)
    rows = run(gw, "mix_vs_rate", as_of=as_of, window_days=0)
    assert (rows[-1]["after_from"], rows[-1]["after_to"], rows[-1]["before_from"]) == (after[0], after[1], before[0])
    assert rows[-1]["maturity_days"] == pytest.approx(2.0) and rows[-1]["mature_only"] is True
    # before: a1 a2 b1 b2 (January); after: a3 b3 b4 b5 c1 c2, all older than 2 days at as_of.
    assert rows[-1]["segment"] == "(total)" and [r["segment"] for r in rows] == ["(all)", "(total)"]
    assert (rows[-1]["n_before"], rows[-1]["n_after"]) == (4, 6)
    assert rows[-1]["rate_effect"] == pytest.approx(2 / 6 - 2 / 4)


def test_mix_vs_rate_follows_the_period_and_leaves_immature_members_out(tmp_path):
    gw = warehouse(tmp_path, MIX_EVENTS)
    # The page's period is February: before is the 29 days just before it.
    rows = run(gw, "mix_vs_rate", start=D(2024, 2, 1), end=D(2024, 3, 1), as_of=D(2024, 2, 9, 12), window_days=0)
    total = rows[-1]
    assert (total["after_from"], total["after_to"], total["before_from"]) == (D(2024, 2, 1), D(2024, 3, 1), D(2024, 1, 3))
    # as_of 02-09 12:00 with a 2-day horizon: c1 (02-08) and c2 (02-09) are immature and left out
    assert (total["n_before"], total["n_after"]) == (4, 4)
    everyone = run(gw, "mix_vs_rate", start=D(2024, 2, 1), end=D(2024, 3, 1), as_of=D(2024, 2, 9, 12), window_days=0, mature_only=False)
    assert everyone[-1]["n_after"] == 6 and everyone[-1]["mature_only"] is False


def test_mix_vs_rate_from_an_empty_period(tmp_path):
    gw = warehouse(tmp_path, MIX_EVENTS, '[funnel]\nconversion_window_days = 0\n')
    rows = run(gw, "mix_vs_rate", segment="channel", as_of=D(2024, 6, 1),
               before=(D(2023, 1, 1), D(2023, 2, 1)), after=(D(2024, 2, 1), D(2024, 3, 1)))
    # Nothing before: shares and rates 0 there, so the mix part is 0 and the rate part is all
    # of the change: a 1/6 * 1 + b 1/2 * 1/3 + c 0 = 1/3.
    total = rows[-1]
    assert (total["n_before"], total["share_before"], total["rate_before"]) == (0, 0.0, 0.0)
    assert total["mix_effect"] == 0.0
    assert total["rate_effect"] == pytest.approx(1 / 3) == total["rate_after"]
    with pytest.raises(UserError):
        run(gw, "mix_vs_rate", before=(D(2024, 2, 1), D(2024, 1, 1)))


# --- score_bands ----------------------------------------------------------------------------------

SCORE_EVENTS = [
    "A,lead,2024-01-02,,,,,5", "A,mql,2024-01-03",
    "B,lead,2024-01-04,,,,,9.5",  # fractions go down: 0-9
    "C,lead,2024-01-05,,,,,100", "C,sql,2024-01-06",  # 100 joins 90-100; sql counts mql too
    "D,lead,2024-01-05,,,,,90", "D,mql,2024-01-07",
    "E,lead,2024-01-05,,,,,150",  # out of range
    "F,lead,2024-01-05,,,,,abc",  # not a number
    "G,lead,2024-02-05,,,,,45",  # created after the period
    "H,lead,2024-01-10,,,,,47", "H,mql,2024-03-05",  # mql after as_of
    "I,lead,2024-01-10", "I,mql,2024-01-11",  # no score
]


def test_score_bands(tmp_path):
    gw = warehouse(tmp_path, SCORE_EVENTS)
    rows = run(gw, "score_bands", **JAN, as_of=D(2024, 3, 1))
    columns = ("band", "from_stage", "to_stage", "leads", "reached_from", "reached_to", "from_rate", "key_rate")
    expected = [
        ("0-9", "mql", "sql", 2, 1, 0, 0.5, 0.0),  # A, B
        ("40-49", "mql", "sql", 1, 0, 0, 0.0, None),  # H
        ("90-100", "mql", "sql", 2, 2, 1, 1.0, 0.5),  # C, D
    ]
    assert rows == approx_rows([dict(zip(columns, e)) for e in expected])


def test_score_bands_without_a_score_column(tmp_path):
    gw = warehouse(tmp_path, SCORE_EVENTS, '[attributes]\nscore = ""\n')
    assert run(gw, "score_bands", **JAN, as_of=D(2024, 3, 1)) == []


SEGMENTS = ["channel", "industry", "region"]


@pytest.mark.parametrize("segment", SEGMENTS)
def test_demo_segments_sum_to_the_cohort_and_wilson_contains_the_rate(demo, segment):
    whole = run(demo, "conversion")[0]
    rows = run(demo, "segment_conversion", segment=segment)
    assert sum(r["n"] for r in rows) == whole["cohort"]
    assert sum(r["converted"] for r in rows) == whole["converted"]
    for r in rows:
        assert r["wilson_low"] <= r["rate"] <= r["wilson_high"]
        assert 0 <= r["wilson_low"] and r["wilson_high"] <= 1
        assert r["too_few"] == (r["n"] < 30)
        if r["p_value"] is not None:
            assert r["p_value"] <= r["q_value"] <= 1
            assert r["significant"] == (r["q_value"] < 0.05)
    crossed = run(demo, "segment_conversion", segment=segment, segment2="company_size")
    assert sum(r["n"] for r in crossed) == whole["cohort"]


@pytest.mark.parametrize("segment", [None, *SEGMENTS])
@pytest.mark.parametrize("periods", ["default", "quarters"])
def test_demo_mix_plus_rate_is_the_change(demo, segment, periods):
    fields = {}
    if periods == "quarters":
        fields = {"before": (D(2026, 1, 1), D(2026, 4, 1)), "after": (D(2026, 4, 1), D(2026, 7, 1))}
    rows = run(demo, "mix_vs_rate", segment=segment, **fields)
    total = rows[-1]
    assert total["segment"] == "(total)" and total["n_before"] > 0 and total["n_after"] > 0
    assert total["mix_effect"] + total["rate_effect"] == pytest.approx(total["rate_after"] - total["rate_before"], abs=1e-12)
    assert sum(r["share_before"] for r in rows[:-1]) == pytest.approx(1.0)
    assert sum(r["n_after"] for r in rows[:-1]) == total["n_after"]
