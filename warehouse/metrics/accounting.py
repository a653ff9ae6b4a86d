"""Stage accounting (docs/metrics.md): what happened to the spells entered in each stage."""

from __future__ import annotations

from funnelboard.warehouse.metrics.base import Context, MetricRequest, period_params


def stage_accounting(ctx: Context, req: MetricRequest) -> list[dict]:
    """Spells entered per stage split into advanced / exited (by outcome) / regressed / open."""
    req = ctx.resolve(req)
    return ctx.run_sql("stage_accounting", req, period_params(req), {})
