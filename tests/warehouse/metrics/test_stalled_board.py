"""stalled_board and the stage filter of the stall metrics: a hand-made log, and an oracle that counts
the stalled list's rows in plain Python on the demo and on a funnel with other stage names."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta

import pytest

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import Context, MetricRequest, run_metric
from funnelboard.warehouse.metrics.stalled import stalled_board
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.dashboard.test_any_funnel import RENAMED
from tests.warehouse.metrics.logs import D, run, warehouse
from tests.warehouse.metrics.test_stalled import STALLED_CONFIG, STALLED_EVENTS

AS_OF = D(2024, 3, 1)


def cells(rows: list[dict]) -> list[tuple]:
    return [(r["stage"], r["owner"], r["stalled"], r["newly_stalled"], pytest.approx(r["median_over_days"], abs=1e-4), r["owners"]) for r in rows]


def test_board_on_a_hand_made_log(tmp_path):
    # Stalled at 03-01 (test_stalled.py): Q lead Bob new 20 - 16.5 = 3.5 over; P lead Ann new 1.0 over;
    # S sql Cy new 10 - 5 = 5.0 over; R lead Ann 29 - 16.5 = 12.5 over.
    gw = warehouse(tmp_path, STALLED_EVENTS, STALLED_CONFIG)
    board = run(gw, "stalled_board", as_of=AS_OF)
    # stages in funnel order; owners by stalled count, then name; totals last
    assert cells(board) == [
        ("lead", "Ann", 2, 1, 6.75, 1), ("lead", "Bob", 1, 1, 3.5, 1), ("lead", "(all)", 3, 2, 3.5, 2),
        ("sql", "Cy", 1, 1, 5.0, 1), ("sql", "(all)", 1, 1, 5.0, 1),
        ("(all)", "Ann", 2, 1, 6.75, 1), ("(all)", "Bob", 1, 1, 3.5, 1), ("(all)", "Cy", 1, 1, 5.0, 1), ("(all)", "(all)", 4, 3, 4.25, 3),
    ]
    # one owner column: Bob and Cy pooled, their median of their own rows
    capped = stalled_board(Context(gw), MetricRequest(as_of=AS_OF), owner_columns=1)
    assert ("(all)", "(other)", 2, 2, pytest.approx(4.25), 2) in [tuple(r.values()) for r in capped]
    assert [(r["stage"], r["owner"]) for r in capped if r["stage"] == "lead"] == [("lead", "Ann"), ("lead", "(other)"), ("lead", "(all)")]


@pytest.mark.slow
def test_stage_filter_keeps_the_spells_of_those_stages(tmp_path):
    gw = warehouse(tmp_path, STALLED_EVENTS, STALLED_CONFIG)
    assert [r["lead_id"] for r in run(gw, "stalled", as_of=AS_OF, filters=(("stage", "sql"),))] == ["S"]
    both = run(gw, "stalled", as_of=AS_OF, filters=(("stage", "sql"), ("stage", "lead")))  # repeated: any of them
    assert both == run(gw, "stalled", as_of=AS_OF)
    assert run(gw, "stalled_summary", as_of=AS_OF, filters=(("stage", "lead"), ("owner", "Ann"))) == [
        {"stalled": 2, "newly_stalled": 1, "recovered": 0}
    ]
    assert run(gw, "stalled", as_of=AS_OF, filters=(("stage", "won"),)) == []
    with pytest.raises(UserError, match="unknown stage 'negotiation'; expected one of lead, mql"):
        run(gw, "stalled", as_of=AS_OF, filters=(("stage", "negotiation"),))


def over_days(r: dict, as_of) -> float:
    """Days past the threshold: age - threshold, or since the deadline of an SLA in business hours."""
    return r["age_days"] - r["threshold_days"] if r["clock"] == "calendar" else (as_of - r["breached_at"]) / timedelta(days=1)


def oracle_board(rows: list[dict], owner_columns: int | None = None, as_of=None) -> dict[tuple[str, str], tuple[int, int, float, int]]:
    """The board counted from the stalled list's rows: cells, per-stage and per-owner totals, the grand total."""
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        totals[r["owner"] or "(none)"] += 1
    ranked = sorted(totals, key=lambda o: (-totals[o], o))
    shown = set(ranked if owner_columns is None else ranked[:owner_columns])
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        owner = r["owner"] or "(none)"
        owner = owner if owner in shown else "(other)"
        for key in ((r["stage"], owner), (r["stage"], "(all)"), ("(all)", owner), ("(all)", "(all)")):
            groups[key].append(r)
    return {
        key: (len(g), sum(r["newly_stalled"] for r in g), statistics.median(over_days(r, as_of) for r in g),
              len({r["owner"] for r in g}))
        for key, g in groups.items()
    }


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> Gateway:
    folder = tmp_path_factory.mktemp("renamed")
    (folder / "funnel.toml").write_text(RENAMED, "utf-8")
    generate(out=folder / "events.csv", n_leads=2000, seed=5)
    load_files(folder / "wh.duckdb", [folder / "events.csv"], load_config(folder / "funnel.toml"), now=NOW)
    return Gateway(folder / "wh.duckdb")


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "renamed"])
@pytest.mark.parametrize("req", [MetricRequest(), MetricRequest(filters=(("channel", "referral"),)), MetricRequest(segment="channel")])
@pytest.mark.parametrize("owner_columns", [None, 3])
def test_board_counts_the_stalled_list(request, which, req, owner_columns):
    gw = request.getfixturevalue(which)
    rows = run_metric(gw, "stalled", req)
    board = stalled_board(Context(gw), req, owner_columns=owner_columns)
    as_of = Context(gw).resolve(req).as_of
    expected = oracle_board(rows, owner_columns, as_of)
    got = {(r["stage"], r["owner"]): (r["stalled"], r["newly_stalled"], r["median_over_days"], r["owners"]) for r in board}
    assert rows and set(got) == set(expected)
    for key, (n, new, median, owners) in expected.items():
        assert (got[key][0], got[key][1], got[key][3]) == (n, new, owners), key
        assert got[key][2] == pytest.approx(median, abs=1e-6), key
    stages = Context(gw).config.stages
    shown = [r["stage"] for r in board if r["stage"] != "(all)"]
    assert shown == sorted(shown, key=stages.index), "funnel order, not alphabetical"
    # the stage filter is the board's row: the list of one cell is the cell's count
    stage, owner = next(k for k in got if "(all)" not in k and k[1] not in ("(other)", "(none)"))
    one = run_metric(gw, "stalled", MetricRequest(filters=(*req.filters, ("stage", stage), ("owner", owner)), segment=req.segment))
    assert len(one) == got[(stage, owner)][0] and {(r["stage"], r["owner"]) for r in one} == {(stage, owner)}


def test_last_activity_tells_stalled_from_quiet(tmp_path):
    # [attributes] last_activity (the default names last_activity_at): a timestamp attribute, the latest
    # value a lead's events carry; the stalled list shows it and the days since it at as_of.
    events = tmp_path / "events.csv"
    events.write_text(
        "lead_id,stage,entered_at,owner,last_activity_at\n"
        "A,lead,2024-01-01,Ann,2024-02-20\n"   # stalled, worked 10 days ago
        "B,lead,2024-01-01,Bob,\n"             # stalled, no activity recorded: quiet
        "D,lead,2024-01-02,Cy,2024-01-05T12:00\n"
        "E,lead,2024-01-01,Ann,\n" "E,mql,2024-01-20,Ann,\n"
        "C,lead,2024-02-28,Bob,\n", "utf-8")
    without_slas = replace(load_config(None), stage_slas=(), sla_by=None)  # thresholds: the p90s
    load_files(tmp_path / "wh.duckdb", [events], without_slas, now=NOW)
    rows = {r["lead_id"]: r for r in run(Gateway(tmp_path / "wh.duckdb"), "stalled", as_of=AS_OF)}
    assert sorted(rows) == ["A", "B", "D"]
    assert (rows["A"]["last_activity_at"], rows["A"]["days_since_activity"]) == (D(2024, 2, 20), pytest.approx(10.0, abs=1e-6))
    assert (rows["B"]["last_activity_at"], rows["B"]["days_since_activity"]) == (None, None)
    assert rows["D"]["days_since_activity"] == pytest.approx(55.5, abs=1e-6)


def test_the_demo_records_last_activity_for_some_stalled_leads(demo):
    rows = run(demo, "stalled")
    worked = [r for r in rows if r["last_activity_at"] is not None]
    assert 0 < len(worked) < len(rows)  # some leads have an activity, some are quiet
    # an activity is on or after the lead's last event, so never older than the stalled spell
    assert all(0 <= r["days_since_activity"] <= r["age_days"] + 1e-6 for r in worked)
