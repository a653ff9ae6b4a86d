"""The metrics of warehouse.metrics_more on tiny hand-made event logs (expected rows worked out by
hand in the comments), plus invariants on a generated demo log."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from etl.generate import generate
from etl.load import load_files
from funnelboard.config import load_config
from funnelboard.errors import UserError
from tests.conftest import NOW
from warehouse.build import expansion, expected_columns
from warehouse.gateway import Gateway
from warehouse.metrics import Context, MetricRequest, _metric_model, run_metric, start_week
from warehouse.metrics_more import comparison_periods, stall_thresholds

D = datetime
CSV_HEADER = "lead_id,stage,entered_at,reason,channel,region,owner,lead_score,amount"


def warehouse(tmp_path: Path, rows: list[str], config: str | None = None) -> Gateway:
    """Load events (CSV_HEADER columns, trailing ones may be left off) into a fresh warehouse."""
    width = CSV_HEADER.count(",") + 1
    lines = [r + "," * (width - 1 - r.count(",")) for r in rows]
    events = tmp_path / "events.csv"
    events.write_text(CSV_HEADER + "\n" + "\n".join(lines) + "\n", "utf-8")
    cfg_path = None
    if config is not None:
        cfg_path = tmp_path / "funnel.toml"
        cfg_path.write_text(config, "utf-8")
    db = tmp_path / "wh.duckdb"
    load_files(db, [events], load_config(cfg_path), now=NOW)
    return Gateway(db)


def run(gw: Gateway, name: str, **fields) -> list[dict]:
    return run_metric(gw, name, MetricRequest(**fields))


def approx_rows(rows: list[dict]) -> list[dict]:
    return [{k: pytest.approx(v, abs=1e-9) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


JAN = {"start": D(2024, 1, 1), "end": D(2024, 2, 1)}


# --- time_to_sql ---------------------------------------------------------------------------

TIME_TO_SQL_EVENTS = [
    "A,lead,2024-01-01", "A,mql,2024-01-02", "A,sql,2024-01-12",  # 10 days
    "B,mql,2024-01-05", "B,sql,2024-02-20",  # 46 days
    "C,mql,2024-01-10",  # no SQL
    "D,lead,2024-01-03", "D,sql,2024-01-08",  # skipped mql: reached both at 01-08, 0 days
    "E,mql,2024-01-31T12:00", "E,sql,2024-02-02",  # 1.5 days; 29.5 days before as_of
    "F,mql,2024-02-05", "F,sql,2024-02-06",  # outside the period
    "G,mql,2024-01-20", "G,sql,2024-03-05",  # SQL after as_of: not reached
]


@pytest.mark.parametrize(
    ("within_days", "expected"),
    [
        # cohort A B C D E G; mature (>= 30 days before 03-01): all but E; within 30: A, D.
        # sqls: A B D E with days 10, 46, 0, 1.5 -> median (1.5 + 10) / 2.
        (30, {"mqls": 6, "mature": 5, "sql_within": 2, "share_within": 0.4, "sqls": 4, "median_days": 5.75}),
        # N = 10: every member mature; within 10 days: A (exactly 10), D, E.
        (10, {"mqls": 6, "mature": 6, "sql_within": 3, "share_within": 0.5, "sqls": 4, "median_days": 5.75}),
    ],
)
def test_time_to_sql(tmp_path, within_days, expected):
    gw = warehouse(tmp_path, TIME_TO_SQL_EVENTS)
    rows = run(gw, "time_to_sql", **JAN, as_of=D(2024, 3, 1), within_days=within_days)
    assert rows == approx_rows([expected])


def test_time_to_sql_of_an_empty_cohort(tmp_path):
    gw = warehouse(tmp_path, TIME_TO_SQL_EVENTS)
    rows = run(gw, "time_to_sql", start=D(2023, 1, 1), end=D(2023, 2, 1), as_of=D(2024, 3, 1))
    assert rows == [{"mqls": 0, "mature": 0, "sql_within": 0, "share_within": None, "sqls": 0, "median_days": None}]


# --- time_in_stage_by_lead -------------------------------------------------------------------

BY_LEAD_EVENTS = [
    # A: lead [01-01, 01-03) 2d, mql [01-03, 01-05) 2d, lead [01-05, 01-06) 1d, mql [01-06, 01-10) 4d, sql open
    "A,lead,2024-01-01", "A,mql,2024-01-03", "A,lead,2024-01-05", "A,mql,2024-01-06", "A,sql,2024-01-10",
    # B: lead from 01-15 12:00, open at as_of 01-20 (the mql after as_of does not count)
    "B,lead,2024-01-15T12:00", "B,mql,2024-01-25",
    # C: mql 1d, nurture (an outcome, not shown), mql 2d, won (the last stage, not shown)
    "C,mql,2024-01-02", "C,nurture,2024-01-03", "C,mql,2024-01-04", "C,won,2024-01-06",
]


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (
            D(2024, 1, 20),
            [
                ("A", "lead", 2, 1.0, 3.0, False),
                ("A", "mql", 2, 4.0, 6.0, False),
                ("A", "sql", 1, 10.0, 10.0, True),
                ("B", "lead", 1, 4.5, 4.5, True),
                ("C", "mql", 2, 2.0, 3.0, False),
            ],
        ),
        (
            # At 01-08: A's second mql spell is 2 days old and open, its sql and all of B to come.
            D(2024, 1, 8),
            [
                ("A", "lead", 2, 1.0, 3.0, False),
                ("A", "mql", 2, 2.0, 4.0, True),
                ("C", "mql", 2, 2.0, 3.0, False),
            ],
        ),
    ],
)
def test_time_in_stage_by_lead(tmp_path, as_of, expected):
    gw = warehouse(tmp_path, BY_LEAD_EVENTS)
    # No period: the cumulative time is over all of a lead's spells (a period asked for changes nothing).
    rows = run(gw, "time_in_stage_by_lead", as_of=as_of)
    assert rows == run(gw, "time_in_stage_by_lead", as_of=as_of, start=D(2024, 1, 7), end=D(2024, 1, 8))
    columns = ("lead_id", "stage", "spells", "latest_days", "cumulative_days", "latest_open")
    assert rows == approx_rows([dict(zip(columns, e)) for e in expected])


def test_time_in_stage_by_lead_in_business_days(tmp_path):
    # Friday 2024-01-05 00:00 to Monday 2024-01-08 00:00: 3 calendar days, 1 business day
    # (Friday); the open mql spell from Monday 00:00 to Wednesday 12:00 is 2.5 of both.
    gw = warehouse(tmp_path, ["A,lead,2024-01-05", "A,mql,2024-01-08"])
    rows = run(gw, "time_in_stage_by_lead", as_of=D(2024, 1, 10, 12), business_days=True)
    assert [(r["stage"], r["latest_days"], r["latest_open"]) for r in rows] == [
        ("lead", pytest.approx(1.0), False),
        ("mql", pytest.approx(2.5), True),
    ]


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
MIN_SAMPLE_3 = '[funnel]\nmin_sample = 3\n'


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
                           "p_value", "q_value", "significant"]
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
        "significant": False,
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
    assert rows == approx_rows([dict(zip(columns, e)) for e in expected])


def test_mix_vs_rate_default_periods_are_the_28_days_to_as_of_and_the_28_before(tmp_path):
    as_of = D(2024, 3, 1)
    before, after = comparison_periods(MetricRequest(as_of=as_of))
    tick = timedelta(microseconds=1)
    assert after == (D(2024, 2, 2) + tick, as_of + tick)  # (as_of - 28 days, as_of]
    assert before == (D(2024, 1, 5) + tick, D(2024, 2, 2) + tick)
    gw = warehouse(tmp_path, MIX_EVENTS)
    rows = run(gw, "mix_vs_rate", as_of=as_of, window_days=0)
    # before (01-05, 02-02]: a2, b1, b2 (a1 at 01-05 00:00 is just outside); after: a3 b3 b4 b5 c1 c2.
    assert rows[-1]["segment"] == "(total)" and [r["segment"] for r in rows] == ["(all)", "(total)"]
    assert (rows[-1]["n_before"], rows[-1]["n_after"]) == (3, 6)
    assert rows[-1]["mix_effect"] == 0.0
    assert rows[-1]["rate_effect"] == pytest.approx(2 / 6 - 1 / 3)


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


# --- disqualifiers -------------------------------------------------------------------------------

EXIT_EVENTS = [
    "A,lead,2024-01-01,,x", "A,mql,2024-01-02", "A,disqualified,2024-01-03,no budget",
    "B,lead,2024-01-02,,x", "B,disqualified,2024-01-04,  Budget   too LOW ",
    "C,mql,2024-01-09,,x", "C,nurture,2024-01-10,",
    "D,nurture,2024-01-11,not ready yet",  # starts in an outcome: stage_left (none)
    "E,lead,2024-01-15", "E,sql,2024-01-16", "E,lost,2024-01-20,Chose offshore competitor",
    "F,lead,2024-01-20", "F,disqualified,2024-02-05,no budget",  # after the period
    "G,lead,2024-01-21", "G,rerouted,2024-01-25,Custom thing",  # unmapped reason kept as written
    "H,mql,2024-01-03", "H,nurture,2024-01-05,not now / no timeline", "H,mql,2024-01-07",
    "H,disqualified,2024-01-08,no budget",
]
EXIT_COLUMNS = ("outcome", "reason", "exits", "share", "cumulative_share")


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        (
            # 8 exits in January; Pareto: exits desc, then outcome, then reason.
            None,
            [
                ("disqualified", "Budget", 3, 3 / 8, 3 / 8),  # A, B, H
                ("lost", "Lost to competitor", 1, 1 / 8, 4 / 8),  # E
                ("nurture", "(no reason recorded)", 1, 1 / 8, 5 / 8),  # C
                ("nurture", "No timeline", 1, 1 / 8, 6 / 8),  # H
                ("nurture", "Not ready yet", 1, 1 / 8, 7 / 8),  # D
                ("rerouted", "Custom thing", 1, 1 / 8, 1.0),  # G
            ],
        ),
        (
            # Groups in funnel order, each its own Pareto (shares of the group's exits).
            "stage_left",
            [
                ("(none)", "nurture", "Not ready yet", 1, 1.0, 1.0),
                ("lead", "disqualified", "Budget", 1, 1 / 2, 1 / 2),  # B
                ("lead", "rerouted", "Custom thing", 1, 1 / 2, 1.0),  # G
                ("mql", "disqualified", "Budget", 2, 2 / 4, 2 / 4),  # A, H (left mql again after nurture)
                ("mql", "nurture", "(no reason recorded)", 1, 1 / 4, 3 / 4),  # C
                ("mql", "nurture", "No timeline", 1, 1 / 4, 1.0),  # H
                ("sql", "lost", "Lost to competitor", 1, 1.0, 1.0),  # E
            ],
        ),
        (
            "week",
            [
                (date(2024, 1, 1), "disqualified", "Budget", 2, 2 / 3, 2 / 3),  # A 01-03, B 01-04
                (date(2024, 1, 1), "nurture", "No timeline", 1, 1 / 3, 1.0),  # H 01-05
                (date(2024, 1, 8), "disqualified", "Budget", 1, 1 / 3, 1 / 3),  # H 01-08
                (date(2024, 1, 8), "nurture", "(no reason recorded)", 1, 1 / 3, 2 / 3),  # C 01-10
                (date(2024, 1, 8), "nurture", "Not ready yet", 1, 1 / 3, 1.0),  # D 01-11
                (date(2024, 1, 15), "lost", "Lost to competitor", 1, 1.0, 1.0),  # E 01-20
                (date(2024, 1, 22), "rerouted", "Custom thing", 1, 1.0, 1.0),  # G 01-25
            ],
        ),
        (
            "channel",
            [
                ("(none)", "disqualified", "Budget", 1, 1 / 5, 1 / 5),  # H
                ("(none)", "lost", "Lost to competitor", 1, 1 / 5, 2 / 5),
                ("(none)", "nurture", "No timeline", 1, 1 / 5, 3 / 5),
                ("(none)", "nurture", "Not ready yet", 1, 1 / 5, 4 / 5),
                ("(none)", "rerouted", "Custom thing", 1, 1 / 5, 1.0),
                ("x", "disqualified", "Budget", 2, 2 / 3, 2 / 3),  # A, B
                ("x", "nurture", "(no reason recorded)", 1, 1 / 3, 1.0),  # C
            ],
        ),
    ],
)
def test_disqualifiers(tmp_path, by, expected):
    gw = warehouse(tmp_path, EXIT_EVENTS)
    rows = run(gw, "disqualifiers", **JAN, as_of=D(2024, 2, 15), by=by)
    columns = ((by,) if by else ()) + EXIT_COLUMNS
    assert rows == approx_rows([dict(zip(columns, e)) for e in expected])


def test_disqualifiers_ignore_exits_after_as_of(tmp_path):
    gw = warehouse(tmp_path, EXIT_EVENTS)
    # as_of 01-19: E's loss (01-20), G's reroute (01-25) have not happened yet; 6 exits.
    rows = run(gw, "disqualifiers", **JAN, as_of=D(2024, 1, 19))
    assert [(r["outcome"], r["reason"], r["exits"]) for r in rows] == [
        ("disqualified", "Budget", 3),
        ("nurture", "(no reason recorded)", 1),
        ("nurture", "No timeline", 1),
        ("nurture", "Not ready yet", 1),
    ]
    assert rows[-1]["cumulative_share"] == pytest.approx(1.0)
    with pytest.raises(UserError):
        run(gw, "disqualifiers", by="colour")


# --- stalled ------------------------------------------------------------------------------------

STALLED_CONFIG = "[funnel]\nmin_sample = 2\n\n[sla_days]\nsql = 5\n"
STALLED_EVENTS = [
    # Completed lead spells: x 1, 2, 3 days (and W's 23 below); y 10 days.
    "X1,lead,2024-01-01,,x", "X1,disqualified,2024-01-02",
    "X2,lead,2024-01-01,,x", "X2,disqualified,2024-01-03",
    "X3,lead,2024-01-01,,x", "X3,disqualified,2024-01-04",
    "Y1,lead,2024-01-01,,y", "Y1,disqualified,2024-01-11",
    # W: lead 02-05 -> mql 02-28 (23 days); at 02-23 it was 18 days old: stalled then, recovered since.
    "W,lead,2024-02-05,,x", "W,mql,2024-02-28",
    # Open at as_of 03-01 00:00:
    "P,lead,2024-02-12T12:00,,x,,Ann",  # 17.5 days
    "Q,lead,2024-02-10,,y,,Bob",  # 20 days
    "R,lead,2024-02-01,,x,EU,Ann",  # 29 days
    "S,sql,2024-02-20,,y,,Cy,,1000",  # 10 days, SLA 5
    "T,mql,2024-02-25,,x",  # no mql spell completed, no SLA: no threshold
    "V,nurture,2024-01-01,,x",  # an outcome never stalls
    "U,lead,2024-01-01,,x", "U,won,2024-01-01T00:00:01",  # won is the last stage; U's 1-second lead spell counts
]
# Completed lead durations: x 1, 2, 3, 23 and U's 1/86400; y 10.
# Stage p90 over [0.0000116, 1, 2, 3, 10, 23]: position 4.5 -> 10 + 0.5 * 13 = 16.5.
# x p90 over [0.0000116, 1, 2, 3, 23]: position 3.6 -> 3 + 0.6 * 20 = 15.0.  y: 1 spell < min_sample 2.
STAGE_P90 = 16.5
X_P90 = 15.0


@pytest.mark.parametrize(
    ("segment", "expected", "summary"),
    [
        (
            None,
            # P (17.5) is over 16.5 too; Q and P were younger than the threshold a week ago, R was not.
            # Newly stalled first, each part by age.
            [
                ("Q", "lead", 20.0, STAGE_P90, "p90 stage", True, "Bob"),
                ("P", "lead", 17.5, STAGE_P90, "p90 stage", True, "Ann"),
                ("S", "sql", 10.0, 5.0, "sla", True, "Cy"),
                ("R", "lead", 29.0, STAGE_P90, "p90 stage", False, "Ann"),
            ],
            # a week ago: R (22 > 16.5) and W (18 > 16.5) stalled; W closed on 02-28.
            {"stalled": 4, "newly_stalled": 3, "recovered": 1},
        ),
        (
            "channel",
            [
                ("Q", "lead", 20.0, STAGE_P90, "p90 stage", True, "Bob"),  # y has too few
                ("P", "lead", 17.5, X_P90, "p90 segment", True, "Ann"),
                ("S", "sql", 10.0, 5.0, "sla", True, "Cy"),
                ("R", "lead", 29.0, X_P90, "p90 segment", False, "Ann"),
            ],
            {"stalled": 4, "newly_stalled": 3, "recovered": 1},
        ),
    ],
)
def test_stalled(tmp_path, segment, expected, summary):
    gw = warehouse(tmp_path, STALLED_EVENTS, STALLED_CONFIG)
    rows = run(gw, "stalled", as_of=D(2024, 3, 1), segment=segment)
    got = [(r["lead_id"], r["stage"], r["age_days"], r["threshold_days"], r["threshold_source"], r["newly_stalled"], r["owner"])
           for r in rows]
    assert got == [(e[0], e[1], pytest.approx(e[2]), pytest.approx(e[3], abs=1e-4), *e[4:]) for e in expected]
    assert run(gw, "stalled_summary", as_of=D(2024, 3, 1), segment=segment) == [summary]


def test_stalled_at_a_lower_p90_shows_the_segment_effect(tmp_path):
    # Without U's tiny spell the x p90 is 3 + 0.7 * 20 = 17.0 and the stage p90 10 + 0.6 * 13 = 17.8:
    # P (17.5) is stalled only against its segment's threshold.
    gw = warehouse(tmp_path, [e for e in STALLED_EVENTS if not e.startswith("U,")], STALLED_CONFIG)
    plain = {r["lead_id"]: r for r in run(gw, "stalled", as_of=D(2024, 3, 1))}
    by_channel = {r["lead_id"]: r for r in run(gw, "stalled", as_of=D(2024, 3, 1), segment="channel")}
    assert sorted(plain) == ["Q", "R", "S"] and plain["R"]["threshold_days"] == pytest.approx(17.8)
    assert sorted(by_channel) == ["P", "Q", "R", "S"] and by_channel["P"]["threshold_days"] == pytest.approx(17.0)
    assert run(gw, "stalled_summary", as_of=D(2024, 3, 1)) == [{"stalled": 3, "newly_stalled": 2, "recovered": 1}]


def test_stalled_filters_select_leads_not_thresholds(tmp_path):
    gw = warehouse(tmp_path, STALLED_EVENTS, STALLED_CONFIG)
    # Only x leads: R and P, with the thresholds of the whole warehouse (16.5 per stage).
    rows = run(gw, "stalled", as_of=D(2024, 3, 1), filters=(("channel", "x"),))
    assert [(r["lead_id"], r["threshold_days"]) for r in rows] == [("P", pytest.approx(STAGE_P90)), ("R", pytest.approx(STAGE_P90))]  # P newly stalled: first
    # x: R, P stalled (P new); W recovered.
    assert run(gw, "stalled_summary", as_of=D(2024, 3, 1), filters=(("channel", "x"),)) == [
        {"stalled": 2, "newly_stalled": 1, "recovered": 1}
    ]
    assert run(gw, "stalled_summary", as_of=D(2024, 3, 1), filters=(("owner", "Bob"),)) == [
        {"stalled": 1, "newly_stalled": 1, "recovered": 0}
    ]


def test_stalled_lead_columns(tmp_path):
    gw = warehouse(tmp_path, STALLED_EVENTS, STALLED_CONFIG)
    s = [r for r in run(gw, "stalled", as_of=D(2024, 3, 1)) if r["lead_id"] == "S"][0]
    segments = [c for c in gw.config().segments if c != "owner"]
    assert list(s) == ["lead_id", "stage", "entered_at", "age_days", "threshold_days", "threshold_source",
                       "newly_stalled", "owner", *segments, "amount"]
    assert (s["entered_at"], s["owner"], s["channel"], s["industry"], s["amount"]) == (D(2024, 2, 20), "Cy", "y", None, 1000.0)


def test_stalled_without_an_owner_attribute(tmp_path):
    config = STALLED_CONFIG + '\n[segments]\nchannel = "Channel"\n'
    gw = warehouse(tmp_path, STALLED_EVENTS, config)
    rows = run(gw, "stalled", as_of=D(2024, 3, 1))
    assert list(rows[0]) == ["lead_id", "stage", "entered_at", "age_days", "threshold_days", "threshold_source",
                             "newly_stalled", "owner", "channel", "amount"]
    assert all(r["owner"] is None for r in rows)


# --- weekly_kpis -----------------------------------------------------------------------------------

WEEKLY_CONFIG = '[funnel]\ntimezone = "America/New_York"\n'
WEEKLY_EVENTS = [  # UTC instants; local weeks (Monday) in New York, UTC-5 in winter
    "A,lead,2024-01-01T03:00Z",  # local Sunday 2023-12-31 22:00: week 12-25
    "A,mql,2024-01-02T12:00Z",  # week 01-01
    "A,sql,2024-01-09T13:00Z",  # week 01-08; 7 days 1 hour after its mql: outside a 7-day window
    "B,lead,2023-12-19T12:00Z", "B,mql,2023-12-20T12:00Z",  # week 12-18
    "B,sql,2023-12-27T12:00Z",  # week 12-25, exactly 7 days after its mql
    "C,lead,2024-01-15T12:00Z", "C,mql,2024-01-16T12:00Z", "C,disqualified,2024-01-17T12:00Z",  # week 01-15
    "D,lead,2024-01-22T12:00Z", "D,mql,2024-01-25T12:00Z",  # the mql comes after as_of
    "E,nurture,2023-12-26T12:00Z",  # a new lead and an exit in week 12-25
    "F,lead,2023-11-01T00:00Z",  # created before the first week
    "F,mql,2024-01-23T12:00Z", "F,sql,2024-01-24T00:00Z",  # week 01-22 (sql: local 01-23 19:00)
]
WEEKS = [date(2023, 12, 18) + timedelta(days=7 * i) for i in range(6)]
# week:                12-18  12-25  01-01  01-08  01-15  01-22
WEEKLY_VALUES = {
    "new_leads":           [1,    2,     0,     0,     1,     1],  # B; A, E; C; D
    "reached_mql":         [1,    0,     1,     0,     1,     1],  # B; A; C; F
    "reached_sql":         [0,    1,     0,     1,     0,     1],  # B; A; F
    "reached_opportunity": [0] * 6,
    "reached_proposal":    [0] * 6,
    "reached_won":         [0] * 6,
    "exits":               [0,    1,     0,     0,     1,     0],  # E; C
    # window 7 days: B converts (exactly 7), A does not (7d 1h), C not, F converts
    "sql_rate":            [1.0,  None,  0.0,   None,  0.0,   1.0],
    # immature (as_of - mql < 7 days, as_of 01-24 12:00): only F (1 day) in week 01-22
    "immature":            [0,    0,     0,     0,     0,     1],
    # lead -> sql: B 8 days; A 01-01 03:00 -> 01-09 13:00 = 8 + 10/24; F 11-01 -> 01-24 = 84 days
    "median_days_lead_to_sql": [None, 8.0, None, 8 + 10 / 24, None, 84.0],
}


def test_weekly_kpis_values_by_hand(tmp_path):
    gw = warehouse(tmp_path, WEEKLY_EVENTS, WEEKLY_CONFIG)
    # The period starts at local midnight 2023-12-18 (05:00 UTC): weeks 12-18 .. 01-22.
    rows = run(gw, "weekly_kpis", start=D(2023, 12, 18, 5), as_of=D(2024, 1, 24, 12), window_days=7)
    assert list(rows[0]) == ["week", "kpi", "value", "previous", "delta_week", "mean_4w", "delta_4w"]
    assert [r["week"] for r in rows[:: len(WEEKLY_VALUES)]] == WEEKS
    got = {}
    for r in rows:
        got.setdefault(r["kpi"], []).append(r["value"])
    assert list(got) == list(WEEKLY_VALUES)
    assert got == {k: [None if v is None else pytest.approx(v) for v in vs] for k, vs in WEEKLY_VALUES.items()}


def test_weekly_kpis_stop_at_the_period_end(tmp_path):
    gw = warehouse(tmp_path, WEEKLY_EVENTS, WEEKLY_CONFIG)
    # --to 2024-01-14 (local): end = local 01-15 00:00 = 05:00 UTC; the last week is 01-08.
    rows = run(gw, "weekly_kpis", start=D(2023, 12, 18, 5), end=D(2024, 1, 15, 5), as_of=D(2024, 1, 24, 12), window_days=7)
    assert sorted({r["week"] for r in rows}) == WEEKS[:4]
    # Values are still as of as_of: A's sql in week 01-08 counts.
    assert next(r["value"] for r in rows if r["week"] == WEEKS[3] and r["kpi"] == "reached_sql") == 1


@pytest.mark.parametrize(
    ("week", "kpi", "previous", "delta_week", "mean_4w", "delta_4w"),
    [
        (WEEKS[0], "new_leads", None, None, None, None),  # no week before it in the series
        (WEEKS[1], "new_leads", 1, 1, None, None),
        (WEEKS[3], "new_leads", 0, 0, None, None),  # only 3 weeks before it
        (WEEKS[4], "new_leads", 0, 1, 0.75, 0.25),  # mean of 1, 2, 0, 0
        (WEEKS[5], "new_leads", 1, 0, 0.75, 0.25),  # mean of 2, 0, 0, 1
        (WEEKS[5], "exits", 1, -1, 0.5, -0.5),  # mean of 1, 0, 0, 1
        (WEEKS[5], "immature", 0, 1, 0.0, 1.0),
        (WEEKS[5], "sql_rate", 0.0, 1.0, None, None),  # week 12-25 has no rate
        (WEEKS[4], "sql_rate", None, None, None, None),  # last week had no rate
        (WEEKS[5], "median_days_lead_to_sql", None, None, None, None),
    ],
)
def test_weekly_kpis_comparisons(tmp_path, week, kpi, previous, delta_week, mean_4w, delta_4w):
    gw = warehouse(tmp_path, WEEKLY_EVENTS, WEEKLY_CONFIG)
    rows = run(gw, "weekly_kpis", start=D(2023, 12, 18, 5), as_of=D(2024, 1, 24, 12), window_days=7)
    row = next(r for r in rows if r["week"] == week and r["kpi"] == kpi)
    assert (row["previous"], row["delta_week"], row["mean_4w"], row["delta_4w"]) == (previous, delta_week, mean_4w, delta_4w)


def test_weekly_kpis_default_is_13_weeks_to_as_of(tmp_path):
    gw = warehouse(tmp_path, WEEKLY_EVENTS, WEEKLY_CONFIG)
    rows = run(gw, "weekly_kpis", as_of=D(2024, 1, 24, 12))
    weeks = sorted({r["week"] for r in rows})
    assert weeks == [date(2024, 1, 22) - timedelta(days=7 * i) for i in range(12, -1, -1)]
    # F's lead week (2023-10-30) is the first week shown: its creation counts there.
    assert next(r["value"] for r in rows if r["week"] == date(2023, 10, 30) and r["kpi"] == "new_leads") == 1


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
    columns = ("band", "leads", "mqls", "sqls", "mql_rate", "sql_rate")
    expected = [
        ("0-9", 2, 1, 0, 0.5, 0.0),  # A, B
        ("40-49", 1, 0, 0, 0.0, None),  # H
        ("90-100", 2, 2, 1, 1.0, 0.5),  # C, D
    ]
    assert rows == approx_rows([dict(zip(columns, e)) for e in expected])


def test_score_bands_without_a_score_column(tmp_path):
    gw = warehouse(tmp_path, SCORE_EVENTS, '[attributes]\nscore = ""\n')
    assert run(gw, "score_bands", **JAN, as_of=D(2024, 3, 1)) == []


# --- invariants on a generated log -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Gateway:
    folder = tmp_path_factory.mktemp("demo")
    generate(out=folder / "events.csv", n_leads=3000, seed=3)
    load_files(folder / "wh.duckdb", [folder / "events.csv"], load_config(None), now=NOW)
    return Gateway(folder / "wh.duckdb")


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


@pytest.mark.parametrize("segment", [None, "channel", "owner"])
def test_demo_stalled_are_older_than_their_threshold(demo, segment):
    rows = run(demo, "stalled", segment=segment)
    assert rows
    assert all(r["age_days"] > r["threshold_days"] for r in rows)
    assert len({r["lead_id"] for r in rows}) == len(rows)
    summary = run(demo, "stalled_summary", segment=segment)[0]
    assert summary["stalled"] == len(rows)
    assert summary["newly_stalled"] == sum(r["newly_stalled"] for r in rows)
    sources = {r["threshold_source"] for r in rows}
    assert sources <= ({"p90 stage", "p90 segment"} if segment else {"p90 stage"})
    # A filter selects leads from the list; it does not move the thresholds.
    referral = run(demo, "stalled", segment=segment, filters=(("channel", "referral"),))
    assert referral and referral == [r for r in rows if r["channel"] == "referral"]


def test_demo_weekly_kpis_weeks_are_contiguous(demo):
    latest = demo.query("select max(entered_at) from raw_events").rows[0][0]
    rows = run(demo, "weekly_kpis")
    weeks = sorted({r["week"] for r in rows})
    assert len(weeks) == 13
    assert all(b - a == timedelta(days=7) for a, b in zip(weeks, weeks[1:]))
    assert all(w.weekday() == 0 for w in weeks)
    assert weeks[-1] == latest.date() - timedelta(days=latest.weekday())  # the demo is in UTC
    kpis = {r["kpi"] for r in rows}
    assert len(rows) == 13 * len(kpis) == 13 * 10
    total_new = sum(r["value"] for r in rows if r["kpi"] == "new_leads")
    assert total_new > 0


def test_demo_other_invariants(demo):
    conversion = run(demo, "conversion", window_days=0)[0]
    t = run(demo, "time_to_sql")[0]
    assert t["mqls"] == conversion["cohort"] and t["sqls"] == conversion["converted"]
    assert 0 <= t["sql_within"] <= t["mature"] <= t["mqls"]

    exits = run(demo, "disqualifiers")
    assert sum(r["share"] for r in exits) == pytest.approx(1.0)
    assert exits[-1]["cumulative_share"] == pytest.approx(1.0)
    assert [r["exits"] for r in exits] == sorted((r["exits"] for r in exits), reverse=True)
    for by in ("stage_left", "week", "channel"):
        grouped = run(demo, "disqualifiers", by=by)
        assert sum(r["exits"] for r in grouped) == sum(r["exits"] for r in exits)

    per_stage = {r["stage"]: r["n_completed"] + r["n_open"] for r in run(demo, "time_in_stage")}
    by_lead = run(demo, "time_in_stage_by_lead")
    for stage, n in per_stage.items():
        assert sum(r["spells"] for r in by_lead if r["stage"] == stage) == n
    assert all(r["cumulative_days"] >= r["latest_days"] >= 0 for r in by_lead)

    bands = run(demo, "score_bands")
    assert bands and all(0 <= r["mql_rate"] <= 1 for r in bands)
    scored = demo.query("select count(*) from fct_leads where score_value between 0 and 100").rows[0][0]
    assert sum(r["leads"] for r in bands) == scored
    assert not any(math.isnan(r["mql_rate"]) for r in bands)


MORE_METRICS = ["time_to_sql", "time_in_stage_by_lead", "segment_conversion", "mix_vs_rate", "disqualifiers", "stalled",
                "stalled_summary", "weekly_kpis", "score_bands"]


# stalled_summary reuses stalled.sql; stall_thresholds is a query of its own behind stalled
@pytest.mark.parametrize("name", [m for m in MORE_METRICS if m != "stalled_summary"] + ["stall_thresholds"])
def test_each_query_returns_the_columns_its_metadata_promises(demo, name):
    ctx = Context(demo)
    as_of = ctx.latest_event()
    params = {
        "start": ctx.earliest_event(), "end": as_of + timedelta(microseconds=1), "as_of": as_of, "window_days": 90,
        "within_days": 30, "business_days": False, "as_of_bd": 0.0, "segmented": True, "weeks": 13,
        "before_start": as_of - timedelta(days=56), "before_end": as_of - timedelta(days=28),
        "after_start": as_of - timedelta(days=28), "after_end": as_of,
        "first_week": (as_of - timedelta(weeks=12)).date(), "last_week": as_of.date(), "start_week": start_week(ctx.earliest_event()),
    }
    identifiers = {"__from__": "reached_mql", "__to__": "reached_sql", "__segment__": "channel", "__segment2__": "region",
                   "__by__": "stage_left", "__first__": "reached_lead", "__mql__": "reached_mql", "__sql__": "reached_sql",
                   "__mql_week__": "week_mql", "__sql_week__": "week_sql"}
    if name == "stalled":  # the thresholds come in as lists, from stall_thresholds (checked below)
        thresholds = stall_thresholds(ctx, ctx.resolve(MetricRequest(segment="channel")))
        for column, param in (("stage", "threshold_stages"), ("segment", "threshold_segments"),
                              ("threshold_days", "threshold_days"), ("threshold_source", "threshold_sources")):
            params[param] = [t[column] for t in thresholds]
    rows = ctx.run_sql(name, MetricRequest(), params, identifiers)
    assert rows, "a query that returns nothing checks nothing"
    assert list(rows[0]) == expected_columns(_metric_model(name), expansion(ctx.config))


@pytest.mark.parametrize("name", MORE_METRICS)
def test_filters_select_the_same_leads_in_every_metric(demo, name):
    req = {"filters": (("channel", "referral"),), "segment": "channel"}
    if name == "disqualifiers":
        req["by"] = "channel"
    rows = run(demo, name, **req)
    assert rows
    values = {r.get("segment", r.get("channel")) for r in rows} - {"(total)", None}
    if name in ("segment_conversion", "mix_vs_rate", "disqualifiers", "stalled"):
        assert values == {"referral"}
    if name == "segment_conversion":
        assert rows[0]["n"] == run(demo, "conversion", filters=req["filters"])[0]["cohort"]


# --- known bugs outside these metrics (strict: they fail loudly once fixed, then drop the mark) -----


def test_a_reason_recorded_after_as_of_is_not_known_at_as_of(tmp_path):
    gw = warehouse(tmp_path, ["A,lead,2024-01-01", "A,disqualified,2024-01-02", "A,disqualified,2024-01-10,no budget"])
    rows = run(gw, "disqualifiers", as_of=D(2024, 1, 5))
    assert [(r["outcome"], r["reason"]) for r in rows] == [("disqualified", "(no reason recorded)")]


def test_a_reason_with_a_leading_tab_is_still_mapped(tmp_path):
    gw = warehouse(tmp_path, ["A,lead,2024-01-01", 'A,disqualified,2024-01-02,"\tno budget"'])
    rows = run(gw, "disqualifiers", as_of=D(2024, 1, 5))
    assert [(r["outcome"], r["reason"]) for r in rows] == [("disqualified", "Budget")]


def test_an_as_of_before_the_first_event_is_an_empty_answer_not_an_error(tmp_path):
    gw = warehouse(tmp_path, ["A,lead,2024-01-10"])
    assert run(gw, "stalled", as_of=D(2024, 1, 5)) == []


def test_stall_thresholds_are_computed_once_per_file_for_every_filter(demo, monkeypatch):
    from warehouse import metrics

    runs = []
    real = metrics.Context.run_sql

    def counting(self, name, *args, **kwargs):
        runs.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(metrics.Context, "run_sql", counting)
    gateway = Gateway(demo.db, cache_rows=0)
    for filters in ((), (("channel", "referral"),), (("owner", "Maya Patel"),)):
        run_metric(gateway, "stalled_summary", MetricRequest(filters=filters))
    assert runs.count("stall_thresholds") == 1
    run_metric(gateway, "stalled_summary", MetricRequest(segment="region"))
    assert runs.count("stall_thresholds") == 2  # per segment column: its values' own p90s


@pytest.mark.parametrize("req", [
    MetricRequest(),
    MetricRequest(segment="channel", filters=(("region", "EMEA"),)),
    MetricRequest(segment="owner"),
])
def test_the_stalled_list_from_open_spells_equals_the_one_from_all_spells(demo, req, monkeypatch):
    """At the latest event (and later) fct_open_spells holds every candidate; before it, fct_spells serves."""
    import warehouse.metrics_more as more

    gateway = Gateway(demo.db, cache_rows=0)
    used = []
    real = more.at_latest_event
    monkeypatch.setattr(more, "at_latest_event", lambda ctx, as_of: used.append(real(ctx, as_of)) or used[-1])
    from_open = run_metric(gateway, "stalled", req), run_metric(gateway, "stalled_summary", req)
    assert used and all(used)  # the default as_of is the latest event: the open spells cover it
    monkeypatch.setattr(more, "at_latest_event", lambda ctx, as_of: False)
    from_all = run_metric(gateway, "stalled", req), run_metric(gateway, "stalled_summary", req)
    assert from_open == from_all and from_open[0] and from_open[1][0]["recovered"] > 0
    earlier = Context(gateway).latest_event() - timedelta(days=30)
    assert not real(Context(gateway), earlier)  # a month back, some candidates closed before open_at - 7 days


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "UTC", "America/New_York", "Asia/Kolkata"])
def test_start_week_is_on_or_before_the_local_week_of_start_in_any_zone(zone):
    from warehouse.metrics_more import local_monday

    for hours in range(0, 24 * 14, 5):  # every weekday and hour of two weeks, both sides of midnight
        start = datetime(2026, 3, 2) + timedelta(hours=hours, minutes=7)
        assert start_week(start) <= local_monday(start, zone), (zone, start)
        assert (local_monday(start, zone) - start_week(start)).days <= 7  # and at most a week before it
