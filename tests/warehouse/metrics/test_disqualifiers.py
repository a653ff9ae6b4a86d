"""disqualifiers on hand-made logs: groupings, as-of and reasons."""

from __future__ import annotations

from datetime import date

import pytest

from funnelboard.core.errors import UserError
from tests.warehouse.metrics.logs import JAN, D, approx_rows, run, warehouse

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


@pytest.mark.slow
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


def test_a_reason_recorded_after_as_of_is_not_known_at_as_of(tmp_path):
    gw = warehouse(tmp_path, ["A,lead,2024-01-01", "A,disqualified,2024-01-02", "A,disqualified,2024-01-10,no budget"])
    rows = run(gw, "disqualifiers", as_of=D(2024, 1, 5))
    assert [(r["outcome"], r["reason"]) for r in rows] == [("disqualified", "(no reason recorded)")]


def test_a_reason_with_a_leading_tab_is_still_mapped(tmp_path):
    gw = warehouse(tmp_path, ["A,lead,2024-01-01", 'A,disqualified,2024-01-02,"\tno budget"'])
    rows = run(gw, "disqualifiers", as_of=D(2024, 1, 5))
    assert [(r["outcome"], r["reason"]) for r in rows] == [("disqualified", "Budget")]
