"""changes, change_exits and change_leads: a hand-made week, the plain-Python oracle (tests/oracle/
oracle_changes.py) on the demo, a renamed funnel and generated logs, and every count equal to its list."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.metrics.changes import KINDS
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.dashboard.test_any_funnel import RENAMED
from tests.oracle import oracle_changes
from tests.oracle.oracle import Oracle, events_from_warehouse
from tests.oracle.strategies import config_variants, event_logs, request_windows
from tests.queries.test_oracle_agreement import assert_rows_equal, load_log
from tests.warehouse.metrics.logs import D, run, warehouse

WEEK = {"start": D(2024, 3, 4), "end": D(2024, 3, 11), "as_of": D(2024, 3, 20)}
CONFIG = "[funnel]\nmin_sample = 2\n\n[sla_days]\nlead = 10\nmql = 5\nsql = 20\nopportunity = 10\nproposal = 10\n"
EVENTS = [
    # A skips from lead to sql in the week: one advance from lead, one entry into sql
    "A,lead,2024-03-01", "A,sql,2024-03-05",
    # B goes back from sql to mql in the week, then forward again: two moves, two entries
    "B,sql,2024-02-20", "B,mql,2024-03-05", "B,sql,2024-03-07",
    # C exits from mql with a reason; C's mql spell passed its SLA (5 days) on 03-02, before the week: recovered, not newly stalled
    "C,mql,2024-02-26", "C,disqualified,2024-03-06,Budget",
    # D starts in an outcome: an exit with no funnel stage before it
    "D,nurture,2024-03-08,Not ready yet",
    # E enters mql on 02-29: 5 days later (03-05) it stalls, inside the week, still there
    "E,mql,2024-02-29",
    # F enters mql on 03-06: it stalls on 03-11, after the week
    "F,mql,2024-03-06",
    # G: won in the week; H lost in the week; changes after the week do not count
    "G,proposal,2024-03-01", "G,won,2024-03-08",
    "H,proposal,2024-03-01", "H,lost,2024-03-09,Price",
    "J,lead,2024-03-12", "J,mql,2024-03-13",
]


@pytest.fixture(scope="module")
def week(tmp_path_factory) -> Gateway:
    return warehouse(tmp_path_factory.mktemp("changes"), EVENTS, CONFIG)


@pytest.mark.slow
def test_a_hand_made_week_counts_each_move_where_it_happened(week):
    rows = {r["stage"]: r for r in run(week, "changes", **WEEK)}
    assert list(rows) == ["lead", "mql", "sql", "opportunity", "proposal", "won", "(none)"]
    as_tuples = {s: tuple(r[k] for k in KINDS) for s, r in rows.items()}
    #                       entered advanced back exited stalled recovered
    assert as_tuples["lead"] == (0, 1, 0, 0, 0, 0)
    assert as_tuples["mql"] == (2, 1, 0, 1, 1, 1)  # B and F enter; B advances; C exits; E stalls; C recovers
    assert as_tuples["sql"] == (2, 0, 1, 0, 0, 0)  # A and B enter; B goes back
    assert as_tuples["proposal"] == (0, 1, 0, 1, 0, 0)  # G advances to won, H exits to lost
    assert as_tuples["won"] == (1, 0, 0, 0, 0, 0)
    assert as_tuples["(none)"] == (0, 0, 0, 1, 0, 0)
    exits = run(week, "change_exits", **WEEK)
    assert exits == [
        {"outcome": "disqualified", "reason": "Budget", "exited": 1},
        {"outcome": "lost", "reason": "Price", "exited": 1},
        {"outcome": "nurture", "reason": "Not ready yet", "exited": 1},
    ]
    closed = run(week, "change_leads", change="closed", **WEEK)
    assert [(r["lead_id"], r["change"]) for r in closed] == [("H", "lost"), ("G", "won")]
    stalled = run(week, "change_leads", change="newly_stalled", **WEEK)
    assert [(r["lead_id"], r["changed_at"]) for r in stalled] == [("E", D(2024, 3, 5))]
    nowhere = run(week, "change_leads", change="exited", stage="(none)", **WEEK)
    assert [r["lead_id"] for r in nowhere] == ["D"]


def test_a_week_seen_before_its_end_knows_only_what_happened_by_then(week):
    early = {**WEEK, "as_of": D(2024, 3, 6, 12)}
    rows = {r["stage"]: r for r in run(week, "changes", **early)}
    assert rows["won"]["entered"] == 0 and rows["proposal"]["exited"] == 0  # G wins and H loses later
    assert rows["mql"]["exited"] == 1 and rows["mql"]["newly_stalled"] == 1


def test_a_bad_kind_stage_or_outcome_is_refused_in_a_sentence(week):
    from funnelboard.core.errors import UserError

    for fields, words in (({"change": "teleported"}, "unknown change"), ({"change": "entered", "stage": "moon"}, "unknown stage"),
                          ({"change": "entered", "outcome": "lost"}, "--change exited"), ({"change": "exited", "outcome": "moon"}, "unknown outcome")):
        with pytest.raises(UserError, match=words):
            run(week, "change_leads", **WEEK, **fields)


def compare(db: Path, config, start: datetime, end: datetime, as_of: datetime | None, filters: dict) -> None:
    events, leads = events_from_warehouse(db)
    oracle = Oracle(events, config, leads, as_of=as_of)
    gateway = Gateway(db)
    try:
        req = MetricRequest(start=start, end=end, as_of=oracle.as_of, filters=tuple(filters.items()))
        assert_rows_equal(run_metric(gateway, "changes", req), oracle_changes.changes(oracle, start, end, filters=filters), "changes")
        assert_rows_equal(run_metric(gateway, "change_exits", req), oracle_changes.change_exits(oracle, start, end, filters=filters), "change_exits")
        columns = ("lead_id", "change", "stage", "to_stage", "changed_at", "reason")

        def key(r):
            return tuple("" if r[c] is None else str(r[c]) for c in columns)

        listed = sorted((key(r) for r in run_metric(gateway, "change_leads", req)))
        assert listed == sorted(key(r) for r in oracle_changes.change_rows(oracle, start, end, filters=filters))
    finally:
        gateway.close()


@pytest.mark.slow
def test_the_demo_agrees_with_the_oracle_in_its_review_week_and_a_filtered_earlier_week(demo):
    config = load_config(None)
    week = run_metric(demo, "review_week", MetricRequest())[0]
    monday = datetime.combine(week["week"], datetime.min.time())  # the demo's zone is UTC
    compare(demo.db, config, monday, monday + timedelta(weeks=1), week["as_of"], {})
    compare(demo.db, config, monday - timedelta(weeks=5), monday - timedelta(weeks=4), None, {"channel": "referral"})
    # without a period the metric shows the review week
    assert run_metric(demo, "changes", MetricRequest()) == run_metric(
        demo, "changes", MetricRequest(start=monday, end=monday + timedelta(weeks=1), as_of=week["as_of"]))


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("renamed")
    events = generate(out=folder / "events.csv", n_leads=1200, seed=12).path
    (folder / "funnel.toml").write_text(RENAMED, "utf-8")
    config = load_config(folder / "funnel.toml")
    load_files(folder / "wh.duckdb", [events], config, now=NOW)
    return folder / "wh.duckdb", config


@pytest.mark.slow
def test_a_renamed_funnel_agrees_with_the_oracle(renamed):
    db, config = renamed
    gateway = Gateway(db)
    week = run_metric(gateway, "review_week", MetricRequest())[0]
    gateway.close()
    monday = datetime.combine(week["week"], datetime.min.time())
    compare(db, config, monday, monday + timedelta(weeks=1), week["as_of"], {})
    compare(db, config, monday - timedelta(weeks=2), monday + timedelta(weeks=1), week["as_of"], {"owner": "Maya Patel"})


@pytest.mark.slow
def test_every_count_is_the_length_of_its_list_and_the_cli_prints_the_same(renamed):
    db, config = renamed
    gateway = Gateway(db)
    counts = run_metric(gateway, "changes", MetricRequest())
    assert any(r[k] for r in counts for k in KINDS)
    for row in counts:
        for kind in KINDS:
            listed = run_metric(gateway, "change_leads", MetricRequest(change=kind, stage=row["stage"]))
            assert len(listed) == row[kind], (row["stage"], kind)
    for row in run_metric(gateway, "change_exits", MetricRequest()):
        listed = run_metric(gateway, "change_leads", MetricRequest(change="exited", outcome=row["outcome"], reason=row["reason"]))
        assert len(listed) == row["exited"]
    gateway.close()
    stage = next(r["stage"] for r in counts if r["advanced"])
    out = CliRunner().invoke(main, ["query", "change_leads", "--change", "advanced", "--stage", stage, "--db", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)) == next(r["advanced"] for r in counts if r["stage"] == stage)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(log=event_logs(), config=config_variants(), window=request_windows())
def test_sql_agrees_with_the_oracle_on_generated_logs(log, config, window):
    events, leads = log
    with tempfile.TemporaryDirectory() as tmp:
        db = load_log(Path(tmp), events, leads, config)
        compare(db, config, window.start, window.end, window.as_of, window.filters)
