"""The SQL metrics agree with the independent Python oracle (tests/oracle), on generated logs and demo data.

Both read the same loaded rows: the generated log is written as CSV and loaded with the real
loader; the oracle reads raw_events back and computes from docs/metrics.md, the SQL reads the
marts. Counts must be equal, rates and durations within 1e-9.
"""

from __future__ import annotations

import csv
import math
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.oracle import oracle_leads, oracle_money, oracle_review
from tests.oracle.oracle import Oracle, events_from_warehouse
from tests.oracle.strategies import config_variants, event_logs, request_windows

ATTRS = ("channel", "owner", "lead_score", "amount", "close_date", "currency", "forecast_category")


def assert_rows_equal(sql_rows: list[dict], oracle_rows: list[dict], what: str) -> None:
    assert len(sql_rows) == len(oracle_rows), f"{what}: {len(sql_rows)} SQL rows vs {len(oracle_rows)} oracle rows\n{sql_rows}\n{oracle_rows}"
    for i, (a, b) in enumerate(zip(sql_rows, oracle_rows)):
        assert list(a) == list(b), f"{what} row {i}: columns {list(a)} vs {list(b)}"
        for key in a:
            x, y = a[key], b[key]
            if isinstance(x, float) or isinstance(y, float):
                assert x is not None and y is not None and math.isclose(x, y, rel_tol=0, abs_tol=1e-9), f"{what} row {i} {key}: {x} vs {y}\n{a}\n{b}"
            else:
                assert x == y, f"{what} row {i} {key}: {x!r} vs {y!r}\n{a}\n{b}"


def _iso(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_log(folder: Path, events, leads, config) -> Path:
    events_csv = folder / "events.csv"
    with open(events_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("lead_id", "stage", "entered_at", "reason") + ATTRS)
        for e in events:
            w.writerow((e.lead_id, e.stage, _iso(e.entered_at), e.reason or "") + tuple(e.attrs.get(a) or "" for a in ATTRS))
    lead_files = []
    if leads:
        leads_csv = folder / "leads.csv"
        with open(leads_csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(("lead_id", "created_at") + ATTRS)
            for row in leads:
                w.writerow((row.lead_id, _iso(row.created_at)) + tuple(row.attrs.get(a) or "" for a in ATTRS))
        lead_files = [leads_csv]
    db = folder / "wh.duckdb"
    load_files(db, [events_csv], config, leads=lead_files, now=NOW)
    return db


def oracle_at_latest(oracle: Oracle) -> Oracle:
    """The same log as of its latest event (the metrics' default as_of)."""
    return Oracle(oracle.all_events, oracle.config, oracle.lead_rows)


def compare_all(db: Path, config, start: datetime, end: datetime, as_of: datetime | None, filters: dict, closing: str | None = None) -> None:
    events, leads = events_from_warehouse(db)
    oracle = Oracle(events, config, leads, as_of=as_of)
    gateway = Gateway(db)
    base = MetricRequest(start=start, end=end, as_of=oracle.as_of, filters=tuple(filters.items()))
    try:
        for s, t in (("mql", "sql"), ("lead", "won"), ("sql", "proposal")):
            assert_rows_equal(
                run_metric(gateway, "conversion", MetricRequest(**{**base.__dict__, "from_stage": s, "to_stage": t})),
                oracle.conversion(s, t, start, end, filters=filters),
                f"conversion {s}->{t}",
            )
        assert_rows_equal(run_metric(gateway, "key_rate", base), oracle.key_rate(start, end, filters=filters), "key_rate")
        for segment in ("channel", "owner"):
            assert_rows_equal(
                run_metric(gateway, "key_rate", MetricRequest(**{**base.__dict__, "segment": segment})),
                oracle.key_rate(start, end, segment=segment, filters=filters),
                f"key_rate segment={segment}",
            )
        for segment in (None, "channel"):
            assert_rows_equal(
                run_metric(gateway, "win_rate", MetricRequest(**{**base.__dict__, "segment": segment})),
                oracle_review.win_rate(oracle, start, end, segment=segment, filters=filters),
                f"win_rate segment={segment}",
            )
        assert_rows_equal(run_metric(gateway, "funnel", base), oracle.funnel(start, end, filters=filters), "funnel")
        assert_rows_equal(run_metric(gateway, "stage_accounting", base), oracle.stage_accounting(start, end, filters=filters), "stage_accounting")
        for segment in (None, "channel"):
            for business in (False, True):
                req = MetricRequest(**{**base.__dict__, "segment": segment, "business_days": business})
                assert_rows_equal(
                    run_metric(gateway, "time_in_stage", req),
                    oracle.time_in_stage(start, end, segment=segment, business_days=business, filters=filters),
                    f"time_in_stage segment={segment} business={business}",
                )
        compare_more(gateway, oracle, base, start, end, filters)
        compare_money(gateway, oracle, base, start, end, filters, closing)
    finally:
        gateway.close()


def compare_more(gateway, oracle, base: MetricRequest, start, end, filters) -> None:
    def req(**changes) -> MetricRequest:
        return MetricRequest(**{**base.__dict__, **changes})

    for n in (7, 30):
        assert_rows_equal(run_metric(gateway, "time_to_convert", req(within_days=n)), oracle.time_to_convert(start, end, within_days=n, filters=filters), f"time_to_convert {n}")
    for business in (False, True):
        assert_rows_equal(
            run_metric(gateway, "time_in_stage_by_lead", req(business_days=business)),
            oracle.time_in_stage_by_lead(business_days=business, filters=filters),
            f"time_in_stage_by_lead business={business}",
        )
    for segments in (["channel"], ["owner"], ["channel", "owner"]):
        assert_rows_equal(
            run_metric(gateway, "segment_conversion", req(segment=segments[0], segment2=segments[1] if len(segments) > 1 else None)),
            oracle.segment_conversion(segments, start, end, filters=filters),
            f"segment_conversion {segments}",
        )
    for mature_only in (True, False):
        assert_rows_equal(
            run_metric(gateway, "mix_vs_rate", req(segment="channel", mature_only=mature_only)),
            oracle_review.mix_vs_rate(oracle, "channel", start, end, mature_only=mature_only, filters=filters),
            f"mix_vs_rate mature_only={mature_only}",
        )
    assert_rows_equal(
        run_metric(gateway, "mix_vs_rate", MetricRequest(as_of=base.as_of, filters=base.filters)),
        oracle_review.mix_vs_rate(oracle, None, None, None, filters=filters),
        "mix_vs_rate, default periods",
    )
    assert_rows_equal(run_metric(gateway, "disqualifier_change", base), oracle_review.disqualifier_change(oracle, start, end, filters=filters),
                      "disqualifier_change")
    for business in (False, True):
        assert_rows_equal(run_metric(gateway, "time_in_stage_change", req(business_days=business)),
                          oracle_review.time_in_stage_change(oracle, start, end, business_days=business, filters=filters),
                          f"time_in_stage_change business={business}")
    for by in (None, "stage_left", "week", "channel"):
        assert_rows_equal(run_metric(gateway, "disqualifiers", req(by=by)), oracle.disqualifiers(start, end, by=by, filters=filters), f"disqualifiers by={by}")
    for segment in (None, "channel"):
        assert_rows_equal(run_metric(gateway, "stalled", req(segment=segment)), oracle.stalled(segment=segment, filters=filters), f"stalled segment={segment}")
        assert_rows_equal(run_metric(gateway, "stalled_summary", req(segment=segment)), oracle.stalled_summary(segment=segment, filters=filters), f"stalled_summary segment={segment}")
    for s, t, which in (("mql", "sql", "all"), ("lead", "won", "converted"), ("sql", "proposal", "not_converted")):
        assert_rows_equal(
            run_metric(gateway, "leads", req(from_stage=s, to_stage=t, which=which)),
            oracle_leads.leads(oracle, s, t, start, end, which=which, filters=filters),
            f"leads {s}->{t} {which}",
        )
    for lead_id in sorted(oracle._leads(filters))[:8]:
        for business in (False, True):
            assert_rows_equal(
                run_metric(gateway, "lead_history", req(lead_id=lead_id, business_days=business)),
                oracle_leads.lead_history(oracle, lead_id, business_days=business),
                f"lead_history {lead_id} business={business}",
            )
    assert_rows_equal(run_metric(gateway, "movers", base), oracle_review.movers(oracle, end, filters=filters), "movers")
    assert_rows_equal(run_metric(gateway, "weekly_kpis", base), oracle_review.weekly_kpis(oracle, start, end, filters=filters), "weekly_kpis")
    for segment in (None, "channel"):
        assert_rows_equal(run_metric(gateway, "week_mix", req(segment=segment)),
                          oracle_review.week_mix(oracle, end, segment=segment, filters=filters), f"week_mix segment={segment}")
    # the data's own review week: as_of and the period left to the defaults
    loose = MetricRequest(filters=base.filters)
    assert_rows_equal(
        run_metric(gateway, "weekly_kpis", loose),
        oracle_review.weekly_kpis(oracle_at_latest(oracle), None, None, as_of_given=False, loaded_at=NOW.replace(tzinfo=None), filters=filters),
        "weekly_kpis, default review week",
    )
    assert_rows_equal(run_metric(gateway, "score_bands", base), oracle.score_bands(start, end, filters=filters), "score_bands")


def compare_money(gateway, oracle, base: MetricRequest, start, end, filters, closing) -> None:
    """Pipeline value, the forecast and its moves (tests/oracle/oracle_money.py); a currency without a
    rate is refused by both."""
    def req(**changes) -> MetricRequest:
        return MetricRequest(**{**base.__dict__, "closing": closing, **changes})

    weeks = sorted({oracle.week_of(start) + timedelta(weeks=i) for i in range(((oracle_review.review_week(
        oracle, end=end, as_of_given=True, loaded_at=None) - oracle.week_of(start)).days // 7) + 1)})
    for segment in (None, "channel"):
        try:
            expected = oracle_money.pipeline_changes(oracle, start, end, closing=closing, segment=segment, filters=filters)
        except oracle_money.NoRate as exc:
            with pytest.raises(UserError, match=f"amounts in {exc.args[0]} and funnel.toml has no {exc.args[0]} rate"):
                run_metric(gateway, "pipeline_changes", req(segment=segment))
            return
        changes = run_metric(gateway, "pipeline_changes", req(segment=segment))
        assert_rows_equal(changes, expected, f"pipeline_changes segment={segment} closing={closing}")
        assert_rows_equal(run_metric(gateway, "deal_value", req(segment=segment)),
                          oracle_money.deal_value(oracle, start, end, closing=closing, segment=segment, filters=filters),
                          f"deal_value segment={segment} closing={closing}")
        assert_rows_equal(run_metric(gateway, "forecast_moves", req(segment=segment)),
                          oracle_money.forecast_moves(oracle, start, end, closing=closing, segment=segment, filters=filters),
                          f"forecast_moves segment={segment} closing={closing}")
        try:
            snapshot = oracle_money.pipeline_snapshot(oracle, weeks, closing=closing, segment=segment, filters=filters)
            forecast = oracle_money.forecast(oracle, weeks, closing=closing, segment=segment, filters=filters)
        except oracle_money.NoRate as exc:  # a week end's month without a rate: refused
            with pytest.raises(UserError, match=f"amounts in {exc.args[0]} and funnel.toml has no {exc.args[0]} rate"):
                run_metric(gateway, "pipeline_snapshot", req(segment=segment))
            continue
        assert_rows_equal(run_metric(gateway, "pipeline_snapshot", req(segment=segment)), snapshot, f"pipeline_snapshot segment={segment}")
        assert_rows_equal(run_metric(gateway, "forecast", req(segment=segment)), forecast, f"forecast segment={segment}")
    # each bar's deals add up to the bar
    deals = run_metric(gateway, "pipeline_deals", req())
    total = changes_total = run_metric(gateway, "pipeline_changes", req())[0]
    for kind in ("start", *oracle_money.KINDS, "end"):
        mine = [d["value"] for d in deals if d["change"] == kind]
        assert math.isclose(sum(mine), total[kind], abs_tol=1e-6), (kind, sum(mine), changes_total)
        assert len(mine) == total["start_deals" if kind == "start" else "end_deals" if kind == "end" else f"n_{kind}"], kind


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(log=event_logs(), config=config_variants(), window=request_windows())
def test_sql_agrees_with_the_oracle_on_generated_logs(log, config, window):
    events, leads = log
    with tempfile.TemporaryDirectory() as tmp:
        db = load_log(Path(tmp), events, leads, config)
        compare_all(db, config, window.start, window.end, window.as_of, window.filters, window.closing)


@pytest.mark.slow
@pytest.mark.parametrize(
    "start,end,as_of,filters",
    [
        (datetime(2025, 6, 1), datetime(2026, 11, 21), None, {}),
        (datetime(2026, 8, 1), datetime(2026, 9, 1), None, {"channel": "referral"}),
        (datetime(2026, 1, 5), datetime(2026, 4, 6), datetime(2026, 5, 1, 12), {"owner": "Maya Patel"}),
    ],
)
def test_sql_agrees_with_the_oracle_on_demo_data(demo_db, start, end, as_of, filters):
    compare_all(demo_db, load_config(None), start, end, as_of, filters)
