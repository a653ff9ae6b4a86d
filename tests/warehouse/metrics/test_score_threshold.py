"""score_threshold: a hand-made month, the plain-Python oracle (tests/oracle/oracle_score_threshold.py) on
generated logs and the demo, the CLI's --filter threshold=X, and a funnel without a score (Olist) told
in one sentence."""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.olist import load_olist
from tests.oracle import oracle_score_threshold
from tests.oracle.oracle import Oracle, events_from_warehouse
from tests.oracle.strategies import config_from_toml, config_text, event_logs, request_windows
from tests.queries.test_oracle_agreement import assert_rows_equal, load_log
from tests.warehouse.metrics.logs import JAN, D, run, warehouse

CONFIG = '[attributes]\nnumeric = ["lead_score"]\nscore = "lead_score"\nscore_threshold = 50\n'
MONTH = {**JAN, "as_of": D(2024, 3, 1)}
# lead_id,stage,entered_at,reason,channel,region,owner,lead_score
EVENTS = [
    # January (the period): A, B and D reach SQL, A wins; C stops at MQL, E at lead
    "A,lead,2024-01-02,,inbound,,,80", "A,mql,2024-01-03", "A,sql,2024-01-05", "A,won,2024-01-20",
    "B,lead,2024-01-04,,inbound,,,60", "B,mql,2024-01-05", "B,sql,2024-01-10",
    "C,lead,2024-01-06,,referral,,,55", "C,mql,2024-01-07",
    "D,lead,2024-01-08,,referral,,,40", "D,mql,2024-01-09", "D,sql,2024-01-15",
    "E,lead,2024-01-10,,inbound,,,20",
    # no number, or outside [0, 100]: not scored, left out
    "F,lead,2024-01-11,,inbound,,,n/a", "F,sql,2024-01-12",
    "G,lead,2024-01-12,,inbound,,,120", "G,sql,2024-01-13",
    # December (the month before): H reaches SQL, I does not
    "H,lead,2023-12-05,,inbound,,,70", "H,sql,2023-12-10",
    "I,lead,2023-12-06,,inbound,,,30",
    # February: after the period
    "J,lead,2024-02-05,,inbound,,,90", "J,sql,2024-02-06",
]


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> Gateway:
    return warehouse(tmp_path_factory.mktemp("score_threshold"), EVENTS, CONFIG)


def by_threshold(rows: list[dict], period: str = "current") -> dict[float, dict]:
    return {r["threshold"]: r for r in rows if r["period"] == period}


def test_a_hand_made_month_counts_precision_recall_and_what_a_move_adds_or_removes(month):
    rows = run(month, "score_threshold", **MONTH)
    assert [r["threshold"] for r in rows if r["period"] == "current"] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    now = by_threshold(rows)
    at = now[50.0]  # the configured threshold: A, B and C pass; A and B reached SQL of A, B and D
    assert at["configured"] and not at["asked"] and (at["to_stage"], at["won_stage"]) == ("sql", "won")
    assert (at["leads"], at["reached"], at["won"], at["passed"], at["passed_reached"], at["passed_won"]) == (5, 3, 1, 3, 2, 1)
    assert at["precision"] == pytest.approx(2 / 3) and at["recall"] == pytest.approx(2 / 3)
    assert at["won_precision"] == pytest.approx(1 / 3) and at["won_recall"] == 1.0
    assert at["precision_low"] < 2 / 3 < at["precision_high"] and at["won_recall_high"] == 1.0
    assert (at["leads_added"], at["leads_removed"], at["reached_added"], at["reached_removed"]) == (0, 0, 0, 0)
    lower = now[40.0]  # D comes in, and D reached SQL
    assert (lower["passed"], lower["precision"], lower["recall"]) == (4, 0.75, 1.0)
    assert (lower["leads_added"], lower["leads_removed"], lower["reached_added"], lower["reached_removed"]) == (1, 0, 1, 0)
    higher = now[70.0]  # B and C drop out, and B had reached SQL
    assert (higher["passed"], higher["precision"], higher["recall"]) == (1, 1.0, pytest.approx(1 / 3))
    assert (higher["leads_added"], higher["leads_removed"], higher["reached_added"], higher["reached_removed"]) == (0, 2, 0, 1)
    assert (higher["won_added"], higher["won_removed"]) == (0, 0)
    assert now[90.0]["passed"] == 0 and now[90.0]["precision"] is None and now[90.0]["precision_low"] is None
    before = by_threshold(rows, "previous")  # December, the month of the same length before
    assert before[50.0]["period_start"] == date(2023, 12, 1) and before[50.0]["period_end"] == date(2023, 12, 31)
    assert (before[50.0]["leads"], before[50.0]["reached"], before[50.0]["passed"], before[50.0]["passed_reached"]) == (2, 1, 1, 1)
    assert now[50.0]["period_start"] == date(2024, 1, 1) and now[50.0]["period_end"] == date(2024, 1, 31)


def test_an_asked_threshold_joins_the_grid_and_a_score_on_it_passes(month):
    rows = by_threshold(run(month, "score_threshold", filters=(("threshold", "55"),), **MONTH))
    assert rows[55.0]["asked"] and not rows[55.0]["configured"] and rows[55.0]["passed"] == 3  # C's 55 passes
    assert rows[55.0]["leads_added"] == 0 and rows[55.0]["leads_removed"] == 0
    with_segment = run(month, "score_threshold", filters=(("threshold", "55"), ("channel", "referral")), **MONTH)
    assert by_threshold(with_segment)[55.0]["leads"] == 2  # C and D: the threshold filter goes, the channel filter stays
    split = run(month, "score_threshold", segment="channel", **MONTH)
    assert {r["channel"] for r in split if r["period"] == "current"} == {"inbound", "referral"}
    assert sum(r["leads"] for r in split if r["period"] == "current" and r["threshold"] == 0) == 5


def test_a_bad_threshold_is_one_sentence(month):
    for value in ("sixty", "nan", "inf"):
        with pytest.raises(UserError, match="is not a number"):
            run(month, "score_threshold", filters=(("threshold", value),), **MONTH)
    with pytest.raises(UserError, match="one threshold"):
        run(month, "score_threshold", filters=(("threshold", "50"), ("threshold", "60")), **MONTH)


def test_without_a_period_the_last_two_full_quarters(month):
    rows = run(month, "score_threshold", as_of=D(2024, 3, 1))
    # as_of in Q1 2024: the last full quarter is Q4 2023 (H and I), the one before Q3 2023 (no leads, no rows)
    assert {(r["period"], r["period_start"], r["period_end"]) for r in rows} == {("current", date(2023, 10, 1), date(2023, 12, 31))}
    assert by_threshold(rows)[0.0]["leads"] == 2
    later = run(month, "score_threshold", as_of=D(2024, 4, 2))
    assert {(r["period"], r["period_start"]) for r in later} == {("current", date(2024, 1, 1)), ("previous", date(2023, 10, 1))}


def test_the_cli_takes_the_threshold_as_a_filter_and_prints_the_metric(month):
    args = ["query", "score_threshold", "--from", "2024-01-01", "--to", "2024-01-31", "--as-of", "2024-03-01",
            "--filter", "threshold=65", "--db", str(month.db), "--format", "json"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    printed = {r["threshold"]: r for r in json.loads(out.output) if r["period"] == "current"}
    assert printed[65.0]["asked"] and printed[65.0]["passed"] == 1 and printed[65.0]["reached_removed"] == 1
    bad = CliRunner().invoke(main, ["query", "score_threshold", "--filter", "threshold=high", "--db", str(month.db)])
    assert bad.exit_code != 0 and "threshold 'high' is not a number" in bad.output


@pytest.mark.slow
def test_a_funnel_without_a_score_says_so_in_one_sentence(tmp_path):
    gw = warehouse(tmp_path, EVENTS[:4], '[funnel]\nstages = ["lead", "mql", "sql", "won"]\noutcomes = ["lost"]\n')
    with pytest.raises(UserError) as err:
        run(gw, "score_threshold")
    assert "no [attributes] score" in str(err.value) and str(err.value).count(". ") == 0


@pytest.mark.slow
def test_olist_has_no_score_and_the_cli_says_so(tmp_path):
    db = load_olist(tmp_path / "olist.duckdb")
    out = CliRunner().invoke(main, ["query", "score_threshold", "--db", str(db)])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert "this funnel has no [attributes] score configured." in out.output and len(out.output.strip().splitlines()) == 1


def compare(db: Path, config, start, end, as_of, filters: dict, asked, segment) -> None:
    events, leads = events_from_warehouse(db)
    oracle = Oracle(events, config, leads, as_of=as_of)
    gateway = Gateway(db)
    try:
        asked_filter = () if asked is None else (("threshold", repr(asked)),)
        req = MetricRequest(start=start, end=end, as_of=oracle.as_of, filters=tuple(filters.items()) + asked_filter, segment=segment)
        expected = oracle_score_threshold.score_threshold(oracle, start, end, asked=asked, segment=segment, filters=filters)
        assert_rows_equal(run_metric(gateway, "score_threshold", req), expected, "score_threshold")
    finally:
        gateway.close()


def threshold_config(base: str, threshold) -> object:
    attributes = '\n[attributes]\nnumeric = ["lead_score"]\nscore = "lead_score"\n'
    return config_from_toml(base + attributes + ("" if threshold is None else f"score_threshold = {threshold}\n"))


CONFIGS = st.builds(
    threshold_config,
    base=st.builds(config_text, timezone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]), rule=st.sampled_from(["count", "strict"]),
                   window=st.just(0), min_sample=st.just(30), sql_sla=st.none(), key=st.sampled_from([None, ("lead", "sql"), ("sql", "won")])),
    threshold=st.sampled_from([None, 45, 42, 9.5, 100]),
)


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(tz)).astimezone(timezone.utc).replace(tzinfo=None)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(log=event_logs(), config=CONFIGS, window=request_windows(), mode=st.sampled_from(["quarters", "days", "months"]),
       month=st.integers(1, 4), months=st.integers(1, 3), asked=st.sampled_from([None, 55, 42.0, 0.5]),
       segment=st.sampled_from([None, "channel"]))
def test_sql_agrees_with_the_oracle_on_generated_logs(log, config, window, mode, month, months, asked, segment):
    events, leads = log
    with tempfile.TemporaryDirectory() as tmp:
        db = load_log(Path(tmp), events, leads, config)
        start, end, as_of = window.start, window.end, window.as_of
        if mode == "quarters":  # no period: the last full quarter and the one before
            start, end = None, None
            as_of = None if as_of is None else as_of + timedelta(days=30)
        elif mode == "months":  # whole local months: the previous period is as many months before
            start = local_midnight(date(2024, month, 1), config.timezone)
            end = local_midnight(date(2024, month + months, 1), config.timezone)
        compare(db, config, start, end, as_of, window.filters, asked, segment)


def test_whole_months_compare_with_as_many_months_before_and_other_spans_with_the_same_length(month):
    def previous(**period) -> tuple[date, date]:
        rows = run(month, "score_threshold", as_of=D(2024, 3, 1), **period)
        return next((r["period_start"], r["period_end"]) for r in rows if r["period"] == "previous")

    assert previous(start=D(2024, 1, 1), end=D(2024, 3, 1)) == (date(2023, 11, 1), date(2023, 12, 31))  # 2 months: Nov and Dec
    assert previous(start=D(2024, 1, 5), end=D(2024, 1, 12)) == (date(2023, 12, 29), date(2024, 1, 4))  # 7 days: the 7 before
    quarters = run(month, "score_threshold", as_of=D(2024, 4, 2))
    asked = run(month, "score_threshold", as_of=D(2024, 4, 2), start=D(2024, 1, 1), end=D(2024, 4, 1))
    assert quarters == asked  # the default is the last full quarter, as --period last_quarter asks


@pytest.mark.slow
def test_the_demo_agrees_with_the_oracle_and_recall_falls_as_the_threshold_rises(demo):
    config = load_config(None)
    compare(demo.db, config, None, None, None, {}, 62.5, None)
    compare(demo.db, config, datetime(2026, 8, 1), datetime(2026, 9, 1), None, {"channel": "referral"}, None, "region")
    rows = run_metric(demo, "score_threshold", MetricRequest())
    for period in ("current", "previous"):
        ranked = sorted((r for r in rows if r["period"] == period), key=lambda r: r["threshold"])
        assert len(ranked) == 11 and ranked[0]["recall"] == 1.0 and sum(r["configured"] for r in ranked) == 1
        assert all(a["passed"] >= b["passed"] and a["recall"] >= b["recall"] for a, b in zip(ranked, ranked[1:]))
        base = next(r for r in ranked if r["configured"])
        for r in ranked:
            assert r["leads_added"] - r["leads_removed"] == r["passed"] - base["passed"]
            assert r["reached_added"] - r["reached_removed"] == r["passed_reached"] - base["passed_reached"]
