"""`cohort_conversion`: weekly cohorts per stage pair, checked three independent ways.

1. Against the plain-Python oracle (tests/oracle/oracle_cohort.py) on generated logs (hypothesis).
2. Cell by cell against the `conversion` metric over that one week, through the command line:
   `funnelboard query conversion --from-stage S --to-stage T --from <monday> --to <sunday>`.
3. A hand-computed example with a skipped stage, an immature cohort and weeks nobody entered.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.metrics.cohort import cohort_pairs
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, write
from tests.oracle.oracle import Oracle, events_from_warehouse
from tests.oracle.oracle_cohort import cohort_conversion as oracle_cohort_conversion
from tests.oracle.strategies import BASE, config_from_toml, config_text, config_variants, event_logs
from tests.queries.test_oracle_agreement import assert_rows_equal, load_log

CONVERSION_COLUMNS = ("cohort", "converted", "rate", "immature", "mature_cohort", "mature_converted", "rate_mature", "window_days")


# --------------------------------------------------------------------------- 1. the oracle


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    log=event_logs(),
    config=config_variants(),
    start_day=st.one_of(st.none(), st.integers(0, 100)),
    length_days=st.integers(1, 90),
    as_of_day=st.one_of(st.none(), st.integers(10, 120)),
    channel=st.one_of(st.none(), st.sampled_from(["referral", "inbound"])),
    pair=st.sampled_from([(None, None), ("mql", "sql"), ("lead", "won"), ("sql", None), (None, "proposal"), ("won", "mql")]),
    window=st.sampled_from([None, 0, 7]),
)
def test_cohort_conversion_agrees_with_the_oracle(log, config, start_day, length_days, as_of_day, channel, pair, window):
    events, leads = log
    start = None if start_day is None else BASE + timedelta(days=start_day, hours=5)  # mid-day: whole weeks anyway
    end = None if start is None else start + timedelta(days=length_days)
    as_of = None if as_of_day is None else BASE + timedelta(days=as_of_day, minutes=7)
    filters = {"channel": channel} if channel else {}
    with tempfile.TemporaryDirectory() as tmp:
        db = load_log(Path(tmp), events, leads, config)
        loaded_events, loaded_leads = events_from_warehouse(db)
        oracle = Oracle(loaded_events, config, loaded_leads, as_of=as_of)
        gateway = Gateway(db)
        try:
            req = MetricRequest(
                start=start, end=end, as_of=oracle.as_of, filters=tuple(filters.items()),
                from_stage=pair[0], to_stage=pair[1], window_days=window,
            )
            expected = oracle_cohort_conversion(
                oracle, start, end, from_stage=pair[0], to_stage=pair[1], window_days=window, filters=filters
            )
            assert_rows_equal(run_metric(gateway, "cohort_conversion", req), expected, "cohort_conversion")
        finally:
            gateway.close()


# --------------------------------------------------------------------------- 2. each cell is `conversion`


@pytest.fixture(scope="module")
def new_york_db(tmp_path_factory) -> Path:
    """Demo data in a zone with an offset and a DST change, so local weeks differ from UTC weeks."""
    folder = tmp_path_factory.mktemp("cohort")
    path = generate(out=folder / "events.csv", n_leads=3000, seed=5).path
    config = config_from_toml(config_text("America/New_York", "count", 90, 30, None))
    db = folder / "wh.duckdb"
    load_files(db, [path], config, now=NOW)
    return db


def query(db: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["query", *args, "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.slow
@pytest.mark.parametrize("options", [(), ("--window", "14", "--as-of", "2026-10-14", "--filter", "channel=referral")])
def test_every_cell_is_the_conversion_metric_over_its_week(new_york_db, options):
    cells = query(new_york_db, "cohort_conversion", *options)
    pairs = list(dict.fromkeys((c["from_stage"], c["to_stage"]) for c in cells))
    assert pairs == cohort_pairs(load_config(None).stages, None, None)
    weeks = sorted({c["week"] for c in cells})
    assert len(weeks) == 13 and len(cells) == 13 * len(pairs)
    assert all(date.fromisoformat(w).weekday() == 0 for w in weeks)
    assert sum(c["cohort"] for c in cells) > 0 and sum(c["immature"] for c in cells) > 0
    checked = 0
    for cell in cells:
        if cell["week"] not in (weeks[0], weeks[5], weeks[-1]) and cell["from_stage"] != "mql":
            continue
        monday = date.fromisoformat(cell["week"])
        (row,) = query(
            new_york_db, "conversion", *options, "--from-stage", cell["from_stage"], "--to-stage", cell["to_stage"],
            "--from", monday.isoformat(), "--to", (monday + timedelta(days=6)).isoformat(),
        )
        assert {k: cell[k] for k in CONVERSION_COLUMNS} == {k: row[k] for k in CONVERSION_COLUMNS}, cell
        checked += 1
    assert checked >= 13 + 2 * len(pairs)


def test_the_from_and_to_stage_choose_one_pair_and_the_period_whole_weeks(new_york_db):
    g = Gateway(new_york_db)
    one = run_metric(g, "cohort_conversion", MetricRequest(from_stage="lead", to_stage="sql"))
    assert {(r["from_stage"], r["to_stage"]) for r in one} == {("lead", "sql")}
    assert {(r["from_stage"], r["to_stage"]) for r in run_metric(g, "cohort_conversion", MetricRequest(to_stage="won"))} == {("proposal", "won")}
    assert {(r["from_stage"], r["to_stage"]) for r in run_metric(g, "cohort_conversion", MetricRequest(from_stage="sql"))} == {("sql", "opportunity")}
    for lonely in (MetricRequest(from_stage="won"), MetricRequest(to_stage="lead")):
        with pytest.raises(UserError, match="funnel stage: give"):
            run_metric(g, "cohort_conversion", lonely)
    # --from on a Wednesday, --to on a Tuesday: the whole weeks holding them (local dates)
    rows = query(new_york_db, "cohort_conversion", "--from", "2026-07-01", "--to", "2026-07-14", "--from-stage", "mql")
    assert [r["week"] for r in rows] == ["2026-06-29", "2026-07-06", "2026-07-13"]
    with pytest.raises(UserError, match="unknown stage"):
        run_metric(g, "cohort_conversion", MetricRequest(from_stage="nope"))


# --------------------------------------------------------------------------- 3. by hand

# 2024-01-01 is a Monday. As of Thursday 2024-01-25 12:00, window 7 days.
HAND = """lead_id,stage,entered_at,reason,channel,owner
A,lead,2024-01-01 09:00,,referral,Ann
A,mql,2024-01-03 09:00,,referral,Ann
A,sql,2024-01-20 09:00,,referral,Ann
B,lead,2024-01-02,,inbound,Ann
B,mql,2024-01-12,,inbound,Ann
C,lead,2024-01-07 23:00,,inbound,Bob
G,lead,2024-01-02 06:00,,inbound,Bob
G,mql,2024-01-09 06:00,,inbound,Bob
E,lead,2024-01-09,,inbound,Bob
E,sql,2024-01-10,,inbound,Bob
D,lead,2024-01-22,,referral,Bob
D,mql,2024-01-23,,referral,Bob
"""
AS_OF = datetime(2024, 1, 25, 12)
W1, W2, W3, W4 = (date(2024, 1, 1) + timedelta(weeks=k) for k in range(4))


@pytest.fixture(scope="module")
def hand_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cohort_hand")
    db = folder / "wh.duckdb"
    load_files(db, [write(folder / "e.csv", HAND)], load_config(None), now=NOW)
    return db


def cells(db: Path, **request) -> dict[tuple[str, date], tuple]:
    request = {"as_of": AS_OF, "window_days": 7, "start": datetime(2024, 1, 1), **request}
    rows = run_metric(Gateway(db), "cohort_conversion", MetricRequest(**request))
    return {(f"{r['from_stage']}>{r['to_stage']}", r["week"]): (r["cohort"], r["converted"], r["rate"], r["immature"], r["rate_mature"]) for r in rows}


def test_a_hand_computed_example(hand_db):
    got = cells(hand_db)
    assert set(got) == {(p, w) for p in ("lead>mql", "mql>sql", "sql>opportunity", "opportunity>proposal", "proposal>won", "lead>won") for w in (W1, W2, W3, W4)}
    # lead -> mql: week 1 holds A (mql after 2 days), G (after exactly 7 days: inside the window),
    # B (after 10 days: outside it) and C (Sunday 23:00, never); week 2 E, who jumped to sql and
    # so reached mql at once; week 3 nobody; week 4 D, less than 7 days before as_of: immature,
    # converted, no mature rate yet.
    assert got[("lead>mql", W1)] == (4, 2, 0.5, 0, 0.5)
    assert got[("lead>mql", W2)] == (1, 1, 1.0, 0, 1.0)
    assert got[("lead>mql", W3)] == (0, 0, None, 0, None)
    assert got[("lead>mql", W4)] == (1, 1, 1.0, 1, None)
    # mql -> sql: A reached sql 17 days after mql (outside the window); B and G never; E at once.
    assert got[("mql>sql", W1)] == (1, 0, 0.0, 0, 0.0)
    assert got[("mql>sql", W2)] == (3, 1, 1 / 3, 0, 1 / 3)
    assert got[("mql>sql", W3)] == (0, 0, None, 0, None)
    assert got[("mql>sql", W4)] == (1, 0, 0.0, 1, None)
    # sql -> opportunity: E (week 2, mature) and A (Saturday 01-20, week 3, immature).
    assert got[("sql>opportunity", W2)] == (1, 0, 0.0, 0, 0.0)
    assert got[("sql>opportunity", W3)] == (1, 0, 0.0, 1, None)
    assert got[("lead>won", W1)] == (4, 0, 0.0, 0, 0.0)
    assert all(v[0] == 0 for k, v in got.items() if k[0] in ("opportunity>proposal", "proposal>won"))


def test_the_hand_example_with_no_window_a_filter_and_the_default_period(hand_db):
    got = cells(hand_db, window_days=0)  # no window: B converts, nobody is immature
    assert got[("lead>mql", W1)] == (4, 3, 0.75, 0, 0.75)
    assert got[("mql>sql", W1)] == (1, 1, 1.0, 0, 1.0)
    referral = cells(hand_db, filters=(("channel", "referral"),))
    assert referral[("lead>mql", W1)] == (1, 1, 1.0, 0, 1.0) and referral[("lead>mql", W2)][0] == 0
    # exactly 7 days after D reached lead (Monday 01-22 00:00) D is mature; a fifth, empty week
    later = cells(hand_db, as_of=datetime(2024, 1, 29))
    assert later[("lead>mql", W4)] == (1, 1, 1.0, 0, 1.0)
    assert later[("mql>sql", W4)] == (1, 0, 0.0, 1, None)
    assert later[("lead>mql", W4 + timedelta(weeks=1))] == (0, 0, None, 0, None)
    rows = run_metric(Gateway(hand_db), "cohort_conversion", MetricRequest(as_of=AS_OF))
    weeks = sorted({r["week"] for r in rows})
    assert len(weeks) == 13 and weeks[-1] == W4 and weeks[0] == W4 - timedelta(weeks=12)
    assert all(r["cohort"] == 0 for r in rows if r["week"] < W1)


def test_weeks_are_local_weeks(tmp_path):
    """Sunday 20:00 UTC is already Monday 01:30 in Kolkata: the lead belongs to the next week there."""
    config = config_from_toml(config_text("Asia/Kolkata", "count", 7, 30, None))
    db = tmp_path / "wh.duckdb"
    load_files(db, [write(tmp_path / "e.csv", "lead_id,stage,entered_at\nK,lead,2024-01-07T20:00:00Z\nK,mql,2024-01-08T20:00:00Z\n")], config, now=NOW)
    request = MetricRequest(start=datetime(2024, 1, 1), end=datetime(2024, 1, 14, 18, 30), from_stage="lead", to_stage="mql")
    rows = run_metric(Gateway(db), "cohort_conversion", request)
    assert [(r["week"], r["cohort"], r["converted"]) for r in rows] == [(W1, 0, 0), (W2, 1, 1)]
