"""time_to_convert (and its first name time_to_sql) and time_in_stage_by_lead on hand-made logs (expected rows worked out in the comments)."""

from __future__ import annotations

import pytest

from tests.warehouse.metrics.logs import JAN, D, approx_rows, run, warehouse

# --- time_to_convert -----------------------------------------------------------------------

PAIR = {"from_stage": "mql", "to_stage": "sql"}
TIME_TO_SQL_EVENTS = [
    "A,lead,2024-01-01", "A,mql,2024-01-02", "A,sql,2024-01-12",  # 10 days
    "B,mql,2024-01-05", "B,sql,2024-02-20",  # 46 days
    "C,mql,2024-01-10",  # no SQL
    "D,lead,2024-01-03", "D,sql,2024-01-08",  # skipped mql: reached both at 01-08, 0 days
    "E,mql,2024-01-31T12:00", "E,sql,2024-02-02",  # 1.5 days; 29.5 days before as_of
    "F,mql,2024-02-05", "F,sql,2024-02-06",  # outside the period
    "G,mql,2024-01-20", "G,sql,2024-03-05",  # SQL after as_of: not reached
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("within_days", "expected"),
    [
        # cohort A B C D E G; mature (>= 30 days before 03-01): all but E; within 30: A, D.
        # sqls: A B D E with days 10, 46, 0, 1.5 -> median (1.5 + 10) / 2.
        (30, {**PAIR, "entered": 6, "mature": 5, "reached_within": 2, "share_within": 0.4, "reached": 4, "median_days": 5.75}),
        # N = 10: every member mature; within 10 days: A (exactly 10), D, E.
        (10, {**PAIR, "entered": 6, "mature": 6, "reached_within": 3, "share_within": 0.5, "reached": 4, "median_days": 5.75}),
    ],
)
def test_time_to_convert(tmp_path, within_days, expected):
    gw = warehouse(tmp_path, TIME_TO_SQL_EVENTS)
    rows = run(gw, "time_to_convert", **JAN, as_of=D(2024, 3, 1), within_days=within_days)
    assert rows == approx_rows([expected])
    assert run(gw, "time_to_sql", **JAN, as_of=D(2024, 3, 1), within_days=within_days) == rows  # the first name


def test_time_to_convert_of_an_empty_cohort(tmp_path):
    gw = warehouse(tmp_path, TIME_TO_SQL_EVENTS)
    rows = run(gw, "time_to_convert", start=D(2023, 1, 1), end=D(2023, 2, 1), as_of=D(2024, 3, 1))
    assert rows == [{**PAIR, "entered": 0, "mature": 0, "reached_within": 0, "share_within": None, "reached": 0, "median_days": None}]


def test_time_to_convert_names_its_stages_not_mql_and_sql(tmp_path):
    """--from-stage/--to-stage (or a key rate of other stages) name the columns' pair; no column says mql or sql."""
    gw = warehouse(tmp_path, TIME_TO_SQL_EVENTS)
    (row,) = run(gw, "time_to_convert", **JAN, as_of=D(2024, 3, 1), from_stage="lead", to_stage="mql")
    assert (row["from_stage"], row["to_stage"], row["entered"], row["reached"]) == ("lead", "mql", 6, 6)  # reaching mql reaches lead too
    assert not [c for c in row if "sql" in c or "mql" in c]


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
@pytest.mark.slow
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
