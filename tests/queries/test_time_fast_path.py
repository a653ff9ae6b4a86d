"""The two paths of the time metrics compute the same rows.

`time_in_stage`, `survival` and `duration_distribution` run on DuckDB from one sorted key array
(queries/metrics/stage_durations.sql + warehouse/durations.py); their SQL files compute them
wherever that does not apply (Spark, too many groups for the key). Both must agree to 1e-9 on
generated logs and demo data, segmented or not, in calendar and business days, filtered, with
as_of in the past; the oracle tests (test_time_metrics.py, test_oracle_agreement.py) check the
fast path against docs/metrics.md independently.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse import durations
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.metrics import time as metrics_time
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.oracle.strategies import config_variants, event_logs, request_windows
from tests.queries.test_oracle_agreement import assert_rows_equal, load_log

TIME_METRICS = ("time_in_stage", "survival", "duration_distribution")


class Spy(Gateway):
    """A gateway that counts the arrays it reads."""

    arrays = 0

    def array(self, sql, params=None):
        self.arrays += 1
        return super().array(sql, params)


def both_paths(gateway: Gateway, name: str, req: MetricRequest) -> tuple[list[dict], list[dict]]:
    fast = run_metric(gateway, name, req)
    metrics_time.FAST_PATH = False
    try:
        slow = run_metric(gateway, name, req)
    finally:
        metrics_time.FAST_PATH = True
    return fast, slow


def compare(db: Path, requests: list[MetricRequest]) -> None:
    gateway = Spy(db, cache_rows=0)
    try:
        for req in requests:
            for name in TIME_METRICS:
                before = gateway.arrays
                fast, slow = both_paths(gateway, name, req)
                assert gateway.arrays == before + 1, "the fast path did not run"
                assert_rows_equal(fast, slow, f"{name} {req}")
    finally:
        gateway.close()


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(log=event_logs(), config=config_variants(), window=request_windows())
def test_the_fast_path_equals_the_sql_on_generated_logs(log, config, window):
    events, leads = log
    filters = tuple(window.filters.items())
    with tempfile.TemporaryDirectory() as tmp:
        db = load_log(Path(tmp), events, leads, config)
        compare(db, [
            MetricRequest(start=window.start, end=window.end, as_of=window.as_of, filters=filters, segment=segment, business_days=business)
            for segment in (None, "channel", "owner")
            for business in (False, True)
        ])


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    path = generate(out=folder / "events.csv", n_leads=3000, seed=5, dirty=True).path
    db = folder / "wh.duckdb"
    load_files(db, [path], load_config(None), now=NOW)
    return db


@pytest.mark.slow
def test_the_fast_path_equals_the_sql_on_demo_data(demo_db):
    compare(demo_db, [
        MetricRequest(),
        MetricRequest(segment="owner", business_days=True),
        MetricRequest(filters=(("channel", "referral"),), segment="region"),
        MetricRequest(start=datetime(2026, 1, 5), end=datetime(2026, 3, 2), as_of=datetime(2026, 4, 1, 9, 30)),
        MetricRequest(segment="company_size", filters=(("industry", "Healthcare"),), business_days=True),
    ])


@pytest.mark.slow
def test_too_many_groups_for_the_key_take_the_sql_path(demo_db, monkeypatch):
    gateway = Spy(demo_db, cache_rows=0)
    req = MetricRequest(segment="owner")
    expected = run_metric(gateway, "time_in_stage", req)
    assert gateway.arrays == 1
    monkeypatch.setattr(durations, "GROUP_LIMIT", 8)  # 6 stages x (owners + '(none)') no longer fit
    assert_rows_equal(run_metric(gateway, "time_in_stage", req), expected, "owner via SQL")
    assert gateway.arrays == 1  # no array read after the limit shrank


def test_a_segment_with_more_values_than_the_key_holds_takes_the_sql_path(demo_db, monkeypatch):
    gateway = Spy(demo_db, cache_rows=0)
    expected = run_metric(gateway, "survival", MetricRequest(segment="owner"))
    monkeypatch.setattr(durations, "GROUP_LIMIT", 3)  # fewer than the owners: their list comes back cut
    fresh = Spy(demo_db, cache_rows=0)
    assert_rows_equal(run_metric(fresh, "survival", MetricRequest(segment="owner")), expected, "owner via SQL")
    assert fresh.arrays == 0


def test_a_gateway_without_arrays_takes_the_sql_path(demo_db):
    class SqlOnly:
        """Only what a metric needs of a gateway, as the Spark gateway offers it: no `array`."""

        def __init__(self, inner):
            self.inner = inner
            self.db = inner.db

        def query(self, *a, **k):
            return self.inner.query(*a, **k)

        def facts(self):
            return self.inner.facts()

    duck = Spy(demo_db, cache_rows=0)
    req = MetricRequest(segment="channel", filters=(("region", "EMEA"),))
    for name in TIME_METRICS:
        assert_rows_equal(run_metric(SqlOnly(duck), name, req), run_metric(duck, name, req), name)
    assert duck.arrays == len(TIME_METRICS)  # only the direct runs read arrays


def test_results_are_remembered_per_published_file(demo_db):
    gateway = Spy(demo_db)
    first = run_metric(gateway, "survival", MetricRequest(segment="channel"))
    assert run_metric(gateway, "survival", MetricRequest(segment="channel")) == first
    assert gateway.arrays == 1
    run_metric(gateway, "survival", MetricRequest(segment="region"))
    assert gateway.arrays == 2


def test_the_three_charts_of_a_view_share_one_read(demo_db):
    import threading

    gateway = Spy(demo_db)
    req = MetricRequest(filters=(("channel", "referral"),))
    results = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, run_metric(gateway, n, req))) for n in TIME_METRICS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gateway.arrays == 1 and all(results[n] for n in TIME_METRICS)  # three charts at once, one array read
    cold = Spy(demo_db, cache_rows=0)  # the result cache off: each computes its own
    for name in TIME_METRICS:
        assert run_metric(cold, name, req) == results[name]
    assert cold.arrays == 3


# --------------------------------------------------------------------------- the pure functions


def test_quantiles_are_duckdbs():
    con = duckdb.connect()
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 7, 99, 100, 101, 1000, 4321):
        values = np.round(rng.exponential(5, n), 6)
        ordered = np.sort(values)
        disc = con.execute("select quantile_disc(x, 0.99) from unnest($v) t(x)", {"v": values.tolist()}).fetchall()[0][0]
        assert durations.quantile_disc(values, 0.99) == disc, n
        for q in (0.5, 0.75, 0.9):
            cont = con.execute(f"select quantile_cont(x, {q}) from unnest($v) t(x)", {"v": values.tolist()}).fetchall()[0][0]
            assert durations.quantile_cont(ordered, q) == pytest.approx(cont, rel=1e-15, abs=1e-15), (n, q)
    assert durations.quantile_cont(np.array([]), 0.5) is None


def key(group: int, us: int, completed: bool) -> int:
    return ((group << durations.US_BITS) + us) * 2 + int(completed)


def test_keys_split_into_groups_with_their_durations():
    keys = np.array(sorted([key(1 * 2 + 0, 5, True), key(1 * 2 + 0, 5, False), key(1 * 2 + 1, 7, True), key(3 * 2 + 1, 2**49, False)]))
    gs = durations.groups(keys, ["a", "b"], [1, 2, 3])
    assert [(g.stage_order, g.segment, g.us.tolist(), g.completed.tolist()) for g in gs] == [
        (1, "a", [5, 5], [False, True]),
        (1, "b", [7], [True]),
        (3, "b", [2**49], [False]),
    ]
    assert durations.groups(np.array([], dtype=np.int64), ["(all)"], [1, 2]) == []
    with pytest.raises(ValueError, match="negative"):
        durations.groups(np.array([-2]), ["(all)"], [1])
    with pytest.raises(ValueError, match="outside"):  # a stage the request does not read
        durations.groups(keys, ["a", "b"], [1, 2])


def test_kaplan_meier_by_hand():
    # 1 day completed, 2 days open, 3 and 4 days completed (test_time_metrics.py's mql example)
    day = durations.US_PER_DAY
    g = durations.Group(2, "(all)", np.array([1, 2, 3, 4]) * day, np.array([True, False, True, True]))
    steps = durations.km_steps(g)
    assert steps.survival.tolist() == [0.75, 0.75, 0.375, 0.0]
    assert steps.left_by.tolist() == [1, 2, 3, 4] and steps.completed_by.tolist() == [1, 1, 2, 3]
    assert [steps.days[steps.quantile_index(p)] for p in (0.5, 0.75, 0.9)] == [3.0, 4.0, 4.0]
    # ties: two spells completing at one duration leave together, one factor (1 - 2 / 3)
    tied = durations.Group(2, "(all)", np.array([1, 1, 2]) * day, np.array([True, True, False]))
    assert durations.km_steps(tied).survival.tolist() == pytest.approx([1 / 3, 1 / 3])
    assert durations.km_steps(tied).quantile_index(0.9) is None  # S never falls to 0.1
