"""Every metric by name (what `funnelboard query --list` prints, in this order), and the entry points
the CLI and the dashboard call: run a metric, a window of a list, or a whole list."""

from __future__ import annotations

from collections.abc import Iterator

from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import (
    accounting,
    changes,
    cohort,
    conversion,
    criteria_health,
    disqualifiers,
    handoff,
    leads,
    pipeline,
    response,
    score_threshold,
    segments,
    spells,
    stalled,
    time,
    weekly,
    wins,
)
from funnelboard.warehouse.metrics.base import Context, Metric, MetricRequest, rendered

METRICS = (
    Metric.of("key_rate", conversion.key_rate, splits=True),
    Metric.of("sql_rate", conversion.sql_rate, splits=True),
    Metric.of("conversion", conversion.conversion),
    Metric.of("funnel", conversion.funnel),
    Metric.of("win_rate", wins.win_rate, splits=True),
    Metric.of("pipeline_snapshot", pipeline.pipeline_snapshot, splits=True),
    Metric.of("pipeline_changes", pipeline.pipeline_changes, splits=True),
    Metric.of("pipeline_deals", pipeline.pipeline_deals),
    Metric.of("forecast", pipeline.forecast, splits=True),
    Metric.of("forecast_moves", pipeline.forecast_moves, splits=True),
    Metric.of("deal_value", pipeline.deal_value, splits=True),
    Metric.of("stage_accounting", accounting.stage_accounting),
    Metric.of("time_to_convert", time.time_to_convert),
    Metric.of("time_to_sql", time.time_to_sql),
    Metric.of("time_in_stage_by_lead", time.time_in_stage_by_lead),
    Metric.of("segment_conversion", segments.segment_conversion, splits=True),
    Metric.of("mix_vs_rate", segments.mix_vs_rate, splits=True),
    Metric.of("disqualifiers", disqualifiers.disqualifiers),
    Metric.of("disqualifier_change", disqualifiers.disqualifier_change),
    Metric.of("criteria_health", criteria_health.criteria_health, splits=True),
    Metric.of("stalled", stalled.stalled, splits=True),
    Metric.of("stalled_summary", stalled.stalled_summary, splits=True),
    Metric.of("stalled_board", stalled.stalled_board, splits=True),
    Metric.of("review_week", weekly.review_week),
    Metric.of("weekly_kpis", weekly.weekly_kpis),
    Metric.of("week_mix", weekly.week_mix, splits=True),
    Metric.of("movers", weekly.movers, splits=True),
    Metric.of("changes", changes.changes),
    Metric.of("change_exits", changes.change_exits),
    Metric.of("change_leads", changes.change_leads),
    Metric.of("score_bands", segments.score_bands),
    Metric.of("score_threshold", score_threshold.score_threshold, splits=True),
    Metric.of("speed_to_lead", response.speed_to_lead, splits=True),
    Metric.of("response_bands", response.response_bands, splits=True),
    Metric.of("response_leads", response.response_leads),
    Metric.of("handoff", handoff.handoff, splits=True),
    Metric.of("handoff_leads", handoff.handoff_leads),
    Metric.of("leads", leads.leads),
    Metric.of("lead_history", leads.lead_history),
    Metric.of("spells", spells.spells),
    Metric.of("cohort_conversion", cohort.cohort_conversion),
    Metric.of("time_in_stage", time.time_in_stage, splits=True),
    Metric.of("time_in_stage_change", time.time_in_stage_change),
    Metric.of("survival", time.survival, splits=True),
    Metric.of("duration_distribution", time.duration_distribution, splits=True),
)
REGISTRY: dict[str, Metric] = {m.name: m for m in METRICS}


def run_metric(gateway: Gateway, name: str, req: MetricRequest) -> list[dict]:
    """Compute one metric by name; UserError for an unknown name."""
    if name not in REGISTRY:
        raise UserError(f"unknown metric '{name}'; `funnelboard query --list` names them.")
    if (req.segment is not None or req.segment2 is not None) and not REGISTRY[name].splits:
        splitting = ", ".join(m.name for m in METRICS if m.splits)
        hint = " (disqualifiers groups by a segment with --by COLUMN)" if name == "disqualifiers" else ""
        raise UserError(f"{name} does not split by segment{hint}: --segment works with {splitting}.")
    return REGISTRY[name].run(Context(gateway), req)


LISTS = ("leads", "stalled", "change_leads", "spells")


def _list_functions(name: str):
    functions = {"leads": (leads.leads_page, leads.leads_query), "stalled": (stalled.stalled_page, stalled.stalled_query),
                 "change_leads": (changes.change_leads_page, changes.change_leads_query),
                 "spells": (spells.spells_page, spells.spells_query)}
    if name not in functions:
        raise UserError(f"'{name}' is not a list; lists: {', '.join(LISTS)}.")
    return functions[name]


def run_list(gateway: Gateway, name: str, req: MetricRequest, sl) -> tuple[list[dict], int]:
    """A window of a list metric (leads, stalled), sorted and cut in SQL, and the list's length."""
    page, _query = _list_functions(name)
    return page(Context(gateway), req, sl)


def stream_list(gateway: Gateway, name: str, req: MetricRequest) -> Iterator[dict]:
    """Every row of a list metric, as `run_metric` returns them, read from DuckDB a batch at a time."""
    _page, query = _list_functions(name)
    tree, params, shape = query(Context(gateway), req)
    return (shape(row) for row in gateway.stream(*rendered(tree, params)))


def list_table(gateway: Gateway, name: str, req: MetricRequest):
    """Every row of a list metric (leads, stalled) as a pyarrow Table: the columns and order of
    `run_metric`, without a Python object per value (a million-row list in a second, where dicts
    take three), for scripts and notebooks that work on columns."""
    _page, query = _list_functions(name)
    tree, params, _shape = query(Context(gateway), req)
    return gateway.arrow(*rendered(tree, params))
