"""Metrics: one module per family over the marts (`queries/metrics/*.sql`), named in `registry`."""

from funnelboard.warehouse.metrics.base import Context, Metric, MetricRequest
from funnelboard.warehouse.metrics.registry import (
    LISTS,
    REGISTRY,
    list_table,
    run_list,
    run_metric,
    stream_list,
)

__all__ = ["LISTS", "REGISTRY", "Context", "Metric", "MetricRequest", "list_table", "run_list", "run_metric", "stream_list"]
