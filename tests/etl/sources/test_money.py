"""Deal money history helpers shared by the adapters (etl/sources/base.py): amounts as plain numbers, value rows."""

from __future__ import annotations

from datetime import datetime

import pytest

from funnelboard.etl.sources.base import ValueChange, plain_amount, value_history


@pytest.mark.parametrize(
    "text, expected",
    [
        ("48000", ("48000", None)),
        ("1200.50", ("1200.50", None)),
        ("52,000.00", ("52000.00", None)),
        ("EUR 52,000.00", ("52000.00", "EUR")),
        ("52,000.00 GBP", ("52000.00", "GBP")),
        ("usd 1,200", ("1200", "USD")),
        ("€1,200.50", ("1200.50", "EUR")),
        ("$12,000.00", ("12000.00", None)),  # "$" names several currencies
        ("-$500", ("-500", None)),
        ("EUR 52.000,00", ("52000.00", "EUR")),  # a European report locale
        ("1200,5 €", ("1200.5", "EUR")),
        ("", (None, None)),
        ("n/a", (None, None)),
        ("EUR", (None, None)),
    ],
)
def test_plain_amount(text, expected):
    assert plain_amount(text) == expected


def at(day: int) -> datetime:
    return datetime(2026, 3, day)


def change(day: int, line: int, **values: str) -> ValueChange:
    return ValueChange(at(day), f"2026-03-{day:02d}", values, "f.csv", line)


def stage(day: int, name: str, line: int) -> tuple[datetime, dict]:
    return at(day), {"lead_id": "D7", "stage": name, "entered_at": f"2026-03-{day:02d}", "reason": None, "_file": "f.csv",
                     "_line": line, "_raw": None}


def test_value_history_folds_same_instant_changes_and_repeats_the_stage_for_the_others():
    stages = [stage(2, "qualified", 1), stage(10, "proposal", 5)]
    changes = [
        change(1, 0, amount="40000", currency="EUR"),  # before the first move: folds into it
        change(4, 2, amount="48000"),
        change(4, 3, close_date="2026-12-15"),  # same instant as line 2: one row
        change(6, 4, amount="48000"),  # changes nothing
        change(10, 6, amount="52000"),  # the instant of the move: folds into it
        change(12, 7, close_date="2027-01-31"),
    ]
    made, unused = value_history(stages, changes)
    money = ("stage", "entered_at", "amount", "close_date", "currency", "_line")
    assert [tuple(e.get(k) for k in money) for _, e in stages] == [
        ("qualified", "2026-03-02", "40000", None, "EUR", 1),
        ("proposal", "2026-03-10", "52000", "2026-12-15", "EUR", 5),
    ]
    assert [tuple(e.get(k) for k in money) for e in made] == [
        ("qualified", "2026-03-04", "48000", "2026-12-15", "EUR", 2),
        ("proposal", "2026-03-12", "52000", "2027-01-31", "EUR", 7),
    ]
    assert sorted(c.line for c in unused) == [0, 3, 4, 6]


def test_value_history_of_a_deal_without_moves_makes_no_rows():
    made, unused = value_history([], [change(4, 2, amount="48000")])
    assert made == [] and [c.line for c in unused] == [2]
