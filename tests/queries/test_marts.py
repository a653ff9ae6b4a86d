"""Table-driven tests of the marts on hand-made journeys: given events -> expected rows."""

from __future__ import annotations

from datetime import datetime as dt

import pytest

from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, model_select, rows, write

EVENTS = """lead_id,stage,entered_at,reason,channel,owner
A,New Lead,2024-01-01,,referral,Ann
A,Sales Qualified,2024-01-05,,referral,Bob
B,New Lead,2024-01-01,,inbound,Ann
B,MQL,2024-01-02,,inbound,Ann
B,SQL,2024-01-03,,inbound,Cy
B,Scoping,2024-01-04,,inbound,Cy
B,Proposal Sent,2024-01-05,,inbound,Cy
B,SQL,2024-01-10,,inbound,Cy
C,New Lead,2024-01-01,,events,Ann
C,MQL,2024-01-02,,events,Ann
C,Nurture,2024-01-03, NOT READY   yet ,events,Ann
C,MQL,2024-02-01,,events,Dee
C,SQL,2024-02-03,,events,Dee
D,Disqualified,2024-01-02 10:00,budget,outbound,
D,MQL,2024-01-02 10:00,,outbound,Ann
E,New Lead,2024-01-01,,partners,Ann
E,lead,2024-01-01,,partners,
E,Closed Won,2024-03-01,,partners,Eve
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from funnelboard.core.config import load_config

    tmp = tmp_path_factory.mktemp("marts")
    db = tmp / "wh.duckdb"
    load_files(db, [write(tmp / "e.csv", EVENTS)], load_config(None), now=NOW)
    return db


def test_spells(db):
    got = rows(db, f"select lead_id, spell_no, stage, entered_at, exited_at, next_kind, stage_left, reason, events from ({model_select('int_spells')}) order by lead_id, spell_no")
    assert got == [
        # A skips MQL: one lead spell that advanced straight to sql, then an open sql spell
        ("A", 1, "lead", dt(2024, 1, 1), dt(2024, 1, 5), "advanced", None, None, 1),
        ("A", 2, "sql", dt(2024, 1, 5), None, "open", "lead", None, 1),
        # B goes back from proposal to sql: a regression, then a second sql spell
        ("B", 1, "lead", dt(2024, 1, 1), dt(2024, 1, 2), "advanced", None, None, 1),
        ("B", 2, "mql", dt(2024, 1, 2), dt(2024, 1, 3), "advanced", "lead", None, 1),
        ("B", 3, "sql", dt(2024, 1, 3), dt(2024, 1, 4), "advanced", "mql", None, 1),
        ("B", 4, "opportunity", dt(2024, 1, 4), dt(2024, 1, 5), "advanced", "sql", None, 1),
        ("B", 5, "proposal", dt(2024, 1, 5), dt(2024, 1, 10), "regressed", "opportunity", None, 1),
        ("B", 6, "sql", dt(2024, 1, 10), None, "open", "proposal", None, 1),
        # C is nurtured and comes back: the nurture spell "returned", its reason normalised
        ("C", 1, "lead", dt(2024, 1, 1), dt(2024, 1, 2), "advanced", None, None, 1),
        ("C", 2, "mql", dt(2024, 1, 2), dt(2024, 1, 3), "exited", "lead", None, 1),
        ("C", 3, "nurture", dt(2024, 1, 3), dt(2024, 2, 1), "returned", "mql", "Not ready yet", 1),
        ("C", 4, "mql", dt(2024, 2, 1), dt(2024, 2, 3), "advanced", "mql", None, 1),
        ("C", 5, "sql", dt(2024, 2, 3), None, "open", "mql", None, 1),
        # D: two events at one instant; the funnel stage sorts before the outcome whatever the file order
        ("D", 1, "mql", dt(2024, 1, 2, 10), dt(2024, 1, 2, 10), "exited", None, None, 1),
        ("D", 2, "disqualified", dt(2024, 1, 2, 10), None, "terminal", "mql", "Budget", 1),
        # E: the same stage twice at one instant (two labels) is one spell; won is terminal, not open
        ("E", 1, "lead", dt(2024, 1, 1), dt(2024, 3, 1), "advanced", None, None, 2),
        ("E", 2, "won", dt(2024, 3, 1), None, "terminal", "lead", None, 1),
    ]


def test_leads(db):
    got = rows(db, "select lead_id, reached_mql, entered_mql, reached_sql, reached_won, current_stage, channel, owner from fct_leads order by lead_id")
    assert got == [
        ("A", dt(2024, 1, 5), None, dt(2024, 1, 5), None, "sql", "referral", "Bob"),
        ("B", dt(2024, 1, 2), dt(2024, 1, 2), dt(2024, 1, 3), None, "sql", "inbound", "Cy"),
        ("C", dt(2024, 1, 2), dt(2024, 1, 2), dt(2024, 2, 3), None, "sql", "events", "Dee"),
        ("D", dt(2024, 1, 2, 10), dt(2024, 1, 2, 10), None, None, "disqualified", "outbound", "Ann"),
        ("E", dt(2024, 3, 1), None, dt(2024, 3, 1), dt(2024, 3, 1), "won", "partners", "Eve"),
    ]


def test_stage_accounting_at_an_earlier_as_of(db):
    """As of 2024-01-04 12:00, B's opportunity spell is open and later events do not exist yet."""
    got = run_metric(Gateway(db), "stage_accounting", MetricRequest(as_of=dt(2024, 1, 4, 12)))
    by_stage = {r["stage"]: r for r in got}
    assert {k: by_stage["opportunity"][k] for k in ("entered", "advanced", "open")} == {"entered": 1, "advanced": 0, "open": 1}
    assert "proposal" in by_stage and by_stage["proposal"]["entered"] == 0
    for r in got:
        assert r["entered"] == r["advanced"] + r["exited"] + r["regressed"] + r["open"]
    assert by_stage["mql"] == {
        "stage": "mql", "entered": 3, "advanced": 1, "exited": 2, "regressed": 0, "open": 0,
        "exited_nurture": 1, "exited_disqualified": 1, "exited_rerouted": 0, "exited_lost": 0,
    }


def test_conversion_counts_a_skipped_mql_and_respects_as_of(db):
    g = Gateway(db)
    full = run_metric(g, "conversion", MetricRequest(window_days=0))[0]
    # MQL cohort: A (via the skip), B, C, D, E (won counts as reaching mql); converted to sql: A, B, C, E
    assert (full["cohort"], full["converted"]) == (5, 4)
    early = run_metric(g, "conversion", MetricRequest(window_days=0, as_of=dt(2024, 1, 4)))[0]
    # by 2024-01-04: cohort B, C, D (A reaches mql on 01-05); converted: B only
    assert (early["cohort"], early["converted"]) == (3, 1)
