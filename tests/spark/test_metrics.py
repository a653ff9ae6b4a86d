"""Every metric equals on the Spark-built marts and on the DuckDB warehouse.

(b) run_metric through the ordinary Gateway over the marts directory's DuckDB catalog;
(c) the metric SQL itself compiled for Spark and run on Spark over the same Parquet marts
(warehouse.spark.SparkGateway): quantiles and Kaplan-Meier steps to 1e-9.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import REGISTRY, MetricRequest, run_metric

LEAD = "L0000007"
REQUESTS = {
    "default": MetricRequest(lead_id=LEAD),
    "filter+segment": MetricRequest(filters=(("channel", "inbound"),), segment="region", by="industry", lead_id=LEAD),
}
# On Spark itself: the quantiles and Kaplan-Meier curves, plain, per segment and in business days.
ON_SPARK = {
    "default": MetricRequest(),
    "segment, business days, filtered": MetricRequest(segment="channel", business_days=True, filters=(("region", "EMEA"),)),
}


def close(a, b, path: str = "") -> None:
    """Equal, floats within 1e-9 (absolute, or relative for large values)."""
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{path}: {len(a)} rows vs {len(b) if isinstance(b, list) else b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: columns {list(a)} vs {list(b) if isinstance(b, dict) else b!r}"
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{path}: {a!r} vs {b!r}"
        if math.isnan(a):
            assert math.isnan(b), f"{path}: {a!r} vs {b!r}"
        else:
            assert abs(a - b) <= 1e-9 * max(1.0, abs(a)), f"{path}: {a!r} vs {b!r}"
    elif isinstance(a, (datetime, date)):
        assert type(a) is type(b) and a == b, f"{path}: {a!r} vs {b!r}"
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def outcome(gateway, name: str, req: MetricRequest):
    try:
        return run_metric(gateway, name, req)
    except UserError as exc:
        return ("UserError", str(exc).replace(str(gateway.db), "<db>"))


@pytest.fixture(scope="module")
def gateways(built):
    return Gateway(built.db), Gateway(built.catalog)


@pytest.mark.parametrize("request_name", list(REQUESTS))
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_metric_equals_on_the_spark_marts(gateways, name, request_name):
    duck, marts = gateways
    expected = outcome(duck, name, REQUESTS[request_name])
    if request_name == "default":  # every metric has rows to compare (a filter may leave none)
        assert isinstance(expected, list) and expected, expected
    close(expected, outcome(marts, name, REQUESTS[request_name]), name)


def test_the_lead_asked_for_exists(gateways):
    assert run_metric(gateways[0], "lead_history", MetricRequest(lead_id=LEAD))


@pytest.fixture(scope="module")
def on_spark(spark, built):
    from funnelboard.warehouse.spark import SparkGateway

    return SparkGateway(spark, built.out)


@pytest.mark.parametrize("request_name", list(ON_SPARK))
@pytest.mark.parametrize("name", ["time_in_stage", "survival"])
def test_quantiles_and_kaplan_meier_computed_on_spark(gateways, on_spark, name, request_name):
    req = ON_SPARK[request_name]
    expected = run_metric(gateways[0], name, req)
    assert expected
    if name == "time_in_stage":  # the quantile and KM columns are really there to compare
        assert any(r["p90"] is not None and r["km_p50"] is not None for r in expected)
    else:
        assert any(r["km_quantile"] for r in expected) and any(0 < r["survival"] < 1 for r in expected)
    close(expected, run_metric(on_spark, name, req), name)


@pytest.mark.parametrize("name", sorted(set(REGISTRY) - {"time_in_stage", "survival"}))
def test_every_other_metric_computed_on_spark(gateways, on_spark, name):
    req = REQUESTS["default"]
    close(outcome(gateways[0], name, req), outcome(on_spark, name, req), name)
