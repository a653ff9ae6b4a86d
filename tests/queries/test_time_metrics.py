"""`survival` and `duration_distribution`: hand-worked examples, the independent oracle
(tests/oracle/oracle_time.py) on generated logs and on demo data, their invariants, and the CLI.

Dates are 2024; 2024-01-01 is a Monday. Every expected number is worked out in the comment beside it.
"""

from __future__ import annotations

import json
import math
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, write
from tests.oracle import oracle_time
from tests.oracle.oracle import Oracle, events_from_warehouse
from tests.oracle.strategies import config_variants, event_logs, request_windows
from tests.queries.test_oracle_agreement import assert_rows_equal, load_log

HEADER = "lead_id,stage,entered_at,reason,channel\n"
# mql: A completes after 1 day, B is open (censored at 2 days), C after 3 days, D after 4 days.
# E: opportunity from Friday 12:00 to Monday 00:00 = 2.5 calendar days, 0.5 business days.
EXAMPLE = HEADER + (
    "A,mql,2024-01-01T00:00:00Z,,referral\n"
    "A,sql,2024-01-02T00:00:00Z,,referral\n"
    "B,mql,2024-01-06T00:00:00Z,,inbound\n"
    "C,mql,2024-01-01T00:00:00Z,,referral\n"
    "C,sql,2024-01-04T00:00:00Z,,referral\n"
    "D,mql,2024-01-01T00:00:00Z,,inbound\n"
    "D,sql,2024-01-05T00:00:00Z,,inbound\n"
    "E,opportunity,2024-01-05T12:00:00Z,,events\n"
    "E,proposal,2024-01-08T00:00:00Z,,events\n"
)
AS_OF = datetime(2024, 1, 8)
JAN = dict(start=datetime(2024, 1, 1), end=datetime(2024, 2, 1), as_of=AS_OF)
HOUR = 1 / 24
HALF = 0.5 + 1e-12  # S at or below one half, as the KM quantile reads it


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Gateway:
    folder = tmp_path_factory.mktemp("example")
    db = folder / "wh.duckdb"
    load_files(db, [write(folder / "events.csv", EXAMPLE)], load_config(None), now=NOW)
    return Gateway(db)


def query(gateway: Gateway, name: str, **request) -> list[dict]:
    return run_metric(gateway, name, MetricRequest(**{**JAN, **request}))


def at(rows: list[dict], days: float) -> dict:
    """The point of a curve at exactly `days` (the grid has one there in these examples)."""
    (row,) = [r for r in rows if math.isclose(r["days"], days, abs_tol=1e-12)]
    return row


# --------------------------------------------------------------------------- hand-worked


def test_survival_by_hand(example):
    rows = query(example, "survival")
    assert list(rows[0]) == ["stage", "days", "at_risk", "completed", "censored", "survival", "km_quantile"]
    mql = [r for r in rows if r["stage"] == "mql"]
    # Completed mql durations 1, 3, 4: p99 = the 3rd of 3 = 4 days; 1-hour steps need 96 <= 200.
    assert len(mql) == 97 and mql[0]["days"] == 0 and mql[1]["days"] == HOUR
    expected = {
        # days: (at_risk, completed, censored, S)
        0.0: (4, 0, 0, 1.0),
        1.0: (3, 1, 0, 0.75),  # A completes: 1 - 1/4
        2.0: (2, 1, 1, 0.75),  # B censored: S unchanged
        3.0: (1, 2, 1, 0.375),  # C completes among 2 at risk: 0.75 * (1 - 1/2)
        4.0: (0, 3, 1, 0.0),  # D completes, the last one at risk
    }
    for days, (at_risk, completed, censored, s) in expected.items():
        r = at(mql, days)
        assert (r["at_risk"], r["completed"], r["censored"]) == (at_risk, completed, censored), days
        assert r["survival"] == pytest.approx(s, abs=1e-12), days
    assert at(mql, 2.5)["survival"] == pytest.approx(0.75)  # between the steps
    # The KM quantiles are points of their own: p50 at 3 days (S = 0.375 <= 0.5), p75 and p90 at 4.
    assert [(r["days"], r["km_quantile"]) for r in mql if r["km_quantile"]] == [(3.0, "p50"), (4.0, "p75 p90")]
    # sql: three spells, all open (ages 6, 4 and 3 days): no completion, S = 1 throughout.
    sql = [r for r in rows if r["stage"] == "sql"]
    assert sql and all(r["survival"] == 1.0 and r["km_quantile"] is None for r in sql)
    assert sql[-1]["days"] == pytest.approx(6.0) and sql[-1]["censored"] == 3  # horizon: p99 of all 3 = 6 days
    assert {r["stage"] for r in rows} == {"mql", "sql", "opportunity", "proposal"}  # no lead spells: no lead rows


def test_the_curve_crosses_one_half_at_km_p50(example):
    for business in (False, True):
        curves = query(example, "survival", business_days=business)
        for row in query(example, "time_in_stage", business_days=business):
            curve = [r for r in curves if r["stage"] == row["stage"]]
            below = [r for r in curve if r["survival"] <= HALF]
            if row["km_p50"] is None:
                assert not below, row["stage"]
            else:
                assert below[0]["days"] == pytest.approx(row["km_p50"], abs=1e-9), row["stage"]
                assert below[0]["km_quantile"].startswith("p50")
    assert at([r for r in query(example, "survival") if r["stage"] == "mql"], 3.0)["km_quantile"] == "p50"


def test_business_days_by_hand(example):
    # E's opportunity spell: Friday 12:00 -> Monday 00:00 is 2.5 days, 0.5 business days.
    calendar = [r for r in query(example, "survival") if r["stage"] == "opportunity"]
    business = [r for r in query(example, "survival", business_days=True) if r["stage"] == "opportunity"]
    assert calendar[-1]["days"] == 2.5 and calendar[-1]["km_quantile"] == "p50 p75 p90"
    assert business[-1]["days"] == 0.5 and business[-1]["km_quantile"] == "p50 p75 p90"
    assert len(business) == 13  # 0.5 business days in 1-hour steps: 0, 1/24, ..., 12/24
    assert at(business, 11 * HOUR)["survival"] == 1.0 and business[-1]["survival"] == 0.0
    # B entered on Saturday: its business age at Monday 00:00 is 0, so it is censored at 0.
    mql = [r for r in query(example, "survival", business_days=True) if r["stage"] == "mql"]
    assert (mql[0]["days"], mql[0]["censored"], mql[0]["survival"]) == (0.0, 1, 1.0)


def test_segments_filters_and_the_period(example):
    rows = query(example, "survival", segment="channel")
    assert list(rows[0])[:3] == ["stage", "channel", "days"]
    mql = {value: [r for r in rows if r["stage"] == "mql" and r["channel"] == value] for value in ("inbound", "referral")}
    # Both curves share the stage's grid (97 points) but for their own quantile points.
    assert at(mql["referral"], 1.0)["survival"] == 0.5 and at(mql["referral"], 1.0)["km_quantile"] == "p50"
    assert at(mql["referral"], 3.0)["survival"] == 0.0  # A at 1 day, C at 3 days
    assert at(mql["inbound"], 2.0)["censored"] == 1 and at(mql["inbound"], 4.0)["survival"] == 0.0  # B censored, D at 4
    filtered = query(example, "survival", filters=(("channel", "referral"),))
    assert [r["survival"] for r in filtered if r["stage"] == "mql"][-1] == 0.0
    assert {r["stage"] for r in filtered} == {"mql", "sql"}
    # Only spells entered in the period count: from 01-02, mql keeps B alone (open).
    later = query(example, "survival", start=datetime(2024, 1, 2))
    # (E's proposal spell was entered at as_of: censored at 0, so nobody is at risk after 0 days.)
    assert {r["stage"]: r["at_risk"] for r in later if r["days"] == 0} == {"mql": 1, "sql": 3, "opportunity": 1, "proposal": 0}


def test_distribution_by_hand(example):
    rows = query(example, "duration_distribution")
    assert list(rows[0]) == ["stage", "bin_start", "bin_end", "completed", "open"]
    mql = [r for r in rows if r["stage"] == "mql"]
    # p99 = 4 days; 1-hour bins would be 97 > 40, 3-hour bins 33: [0, 0.125), ..., [4, 4.125).
    assert len(mql) == 33
    assert all(r["bin_end"] - r["bin_start"] == 0.125 for r in mql)
    filled = {r["bin_start"]: (r["completed"], r["open"]) for r in mql if r["completed"] or r["open"]}
    assert filled == {1.0: (1, 0), 2.0: (0, 1), 3.0: (1, 0), 4.0: (1, 0)}  # 1, 2 (open), 3, 4 days
    business = [r for r in query(example, "duration_distribution", business_days=True) if r["stage"] == "opportunity"]
    assert len(business) == 13 and (business[-1]["bin_start"], business[-1]["completed"]) == (0.5, 1)
    # sql: open spells only, aged 3, 4 and 6 days: p99 of all = 6; 3-hour bins would be 49, 6-hour 25.
    sql = [r for r in rows if r["stage"] == "sql"]
    assert sum(r["open"] for r in sql) == 3 and sum(r["completed"] for r in sql) == 0 and len(sql) == 25


def test_the_last_bin_holds_the_long_tail(tmp_path):
    # 150 mql spells of 1 day and 1 of 100 days: p99 = 1 day, so 100 days goes in the open-ended bin.
    lines = [HEADER]
    for i in range(150):
        lines.append(f"L{i},mql,2024-01-01T00:00:00Z,,inbound\nL{i},sql,2024-01-02T00:00:00Z,,inbound\n")
    lines.append("Z,mql,2024-01-01T00:00:00Z,,inbound\nZ,sql,2024-04-10T00:00:00Z,,inbound\n")
    db = tmp_path / "wh.duckdb"
    load_files(db, [write(tmp_path / "e.csv", "".join(lines))], load_config(None), now=NOW)
    gateway = Gateway(db)
    mql = [r for r in run_metric(gateway, "duration_distribution", MetricRequest()) if r["stage"] == "mql"]
    # 1 day in 1-hour bins: 25 bins [0, 1/24) ... [1, 25/24), then [25/24, no end).
    assert len(mql) == 26
    assert (mql[24]["bin_start"], mql[24]["completed"]) == (1.0, 150)
    assert (mql[-1]["bin_end"], mql[-1]["completed"]) == (None, 1) and mql[-1]["bin_start"] == pytest.approx(25 / 24)
    curve = [r for r in run_metric(gateway, "survival", MetricRequest()) if r["stage"] == "mql"]
    assert curve[-1]["days"] == 1.0 and curve[-1]["at_risk"] == 1  # the grid stops at the p99
    assert curve[-1]["survival"] == pytest.approx(1 / 151)


# --------------------------------------------------------------------------- invariants


def check_invariants(gateway: Gateway, req: MetricRequest) -> None:
    """Counts add up, S falls, curves and bins stay small, distributions sum to time_in_stage's counts."""
    key = req.segment
    curves: dict = {}
    for r in run_metric(gateway, "survival", req):
        curves.setdefault((r["stage"], r.get(key)), []).append(r)
    for name, points in curves.items():
        spells = points[0]["at_risk"] + points[0]["completed"] + points[0]["censored"]
        assert all(p["at_risk"] + p["completed"] + p["censored"] == spells for p in points), name
        assert all(0 <= p["survival"] <= 1 for p in points), name
        assert all(a["days"] < b["days"] and a["survival"] >= b["survival"] for a, b in zip(points, points[1:])), name
        assert all(a["completed"] <= b["completed"] and a["at_risk"] >= b["at_risk"] for a, b in zip(points, points[1:])), name
        assert points[0]["days"] == 0 and len(points) <= 201 + 3, name
    bins: dict = {}
    for r in run_metric(gateway, "duration_distribution", req):
        bins.setdefault((r["stage"], r.get(key)), []).append(r)
    for row in run_metric(gateway, "time_in_stage", req):
        name = (row["stage"], row.get(key))
        if row["n_completed"] + row["n_open"] == 0:
            assert name not in bins and name not in curves
            continue
        assert len(bins[name]) <= 41, name
        assert sum(b["completed"] for b in bins[name]) == row["n_completed"], name
        assert sum(b["open"] for b in bins[name]) == row["n_open"], name
        assert curves[name][-1]["completed"] <= row["n_completed"], name
        if not req.business_days:  # the same float durations as time_in_stage: its km_p50 exactly
            below = [p for p in curves[name] if p["survival"] <= HALF]
            assert (below[0]["days"] if below else None) == row["km_p50"], name


def compare_with_oracle(db: Path, config, start: datetime, end: datetime, as_of: datetime | None, filters: dict) -> None:
    events, leads = events_from_warehouse(db)
    oracle = Oracle(events, config, leads, as_of=as_of)
    gateway = Gateway(db)
    try:
        for segment in (None, "channel"):
            for business in (False, True):
                req = MetricRequest(
                    start=start, end=end, as_of=oracle.as_of, filters=tuple(filters.items()), segment=segment, business_days=business
                )
                what = f"segment={segment} business={business}"
                curves = oracle_time.survival(oracle, start, end, segment=segment, business_days=business, filters=filters)
                assert_rows_equal(run_metric(gateway, "survival", req), curves, f"survival {what}")
                bins = oracle_time.duration_distribution(oracle, start, end, segment=segment, business_days=business, filters=filters)
                assert_rows_equal(run_metric(gateway, "duration_distribution", req), bins, f"duration_distribution {what}")
                # The oracle's own Kaplan-Meier p50 is where its curve first falls to 50 %.
                km = {(r["stage"], r.get(segment)): r["km_p50"] for r in oracle.time_in_stage(start, end, segment=segment, business_days=business, filters=filters)}
                for (stage, value), km_p50 in km.items():
                    below = [r for r in curves if r["stage"] == stage and r.get(segment) == value and r["survival"] <= HALF]
                    assert (below[0]["days"] if below else None) == km_p50, (what, stage, value)
                check_invariants(gateway, req)
    finally:
        gateway.close()


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(log=event_logs(), config=config_variants(), window=request_windows())
def test_time_metrics_agree_with_the_oracle_on_generated_logs(log, config, window):
    events, leads = log
    with tempfile.TemporaryDirectory() as tmp:
        db = load_log(Path(tmp), events, leads, config)
        compare_with_oracle(db, config, window.start, window.end, window.as_of, window.filters)


@pytest.mark.slow
@pytest.mark.parametrize(
    "start,end,as_of,filters",
    [
        (datetime(2025, 6, 1), datetime(2026, 11, 21), None, {}),
        (datetime(2026, 1, 5), datetime(2026, 4, 6), datetime(2026, 5, 1, 12), {"owner": "Maya Patel"}),
    ],
)
def test_time_metrics_agree_with_the_oracle_on_demo_data(demo_db, start, end, as_of, filters):
    compare_with_oracle(demo_db, load_config(None), start, end, as_of, filters)


# --------------------------------------------------------------------------- command line


def test_query_survival_takes_every_option(example):
    args = [
        "query", "survival", "--db", str(example.db), "--segment", "channel", "--business-days",
        "--from", "2024-01-01", "--to", "2024-01-31", "--as-of", "2024-01-07T23:59", "--filter", "channel=inbound",
        "--format", "json",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    expected = run_metric(example, "survival", MetricRequest(
        start=datetime(2024, 1, 1), end=datetime(2024, 2, 1), as_of=datetime(2024, 1, 7, 23, 59),
        filters=(("channel", "inbound"),), segment="channel", business_days=True,
    ))  # fmt: skip
    assert len(shown) == len(expected) > 0
    assert {r["channel"] for r in shown} == {"inbound"}
    assert [r["survival"] for r in shown] == pytest.approx([r["survival"] for r in expected])
    distribution = CliRunner().invoke(main, ["query", "duration_distribution", "--db", str(example.db), "--format", "csv"])
    assert distribution.exit_code == 0 and distribution.output.startswith("stage,bin_start,bin_end,completed,open")
