"""Every metric by name (what `funnelboard query --list` prints, in this order), and the entry points
the CLI and the dashboard call: run a metric, a window of a list, or a whole list."""

from __future__ import annotations

from collections.abc import Iterator

from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import (
    accounting,
    cohort,
    conversion,
    disqualifiers,
    leads,
    segments,
    stalled,
    time,
    weekly,
)
from funnelboard.warehouse.metrics.base import Context, Metric, MetricRequest, rendered

METRICS = (
    Metric(
        "conversion",
        "Cohort conversion between two funnel stages (--from-stage, --to-stage), with maturity and the period view.",
        conversion.conversion,
    ),
    Metric("sql_rate", "The SQL rate (MQL -> SQL of the MQL cohort) with lead -> SQL beside it.", conversion.sql_rate),
    Metric("funnel", "Stage-by-stage and cumulative conversion of the period's lead cohort, with period counts.", conversion.funnel),
    Metric(
        "stage_accounting",
        "Spells entered per stage split into advanced / exited (by outcome) / regressed / open.",
        accounting.stage_accounting,
    ),
    Metric(
        "time_to_sql",
        "Of the MQL cohort: share of mature members reaching SQL within N days (--within-days) and median days MQL -> SQL.",
        time.time_to_sql,
    ),
    Metric(
        "time_in_stage_by_lead",
        "Per lead and stage: spells, latest and cumulative days in the stage (open spells so far).",
        time.time_in_stage_by_lead,
    ),
    Metric(
        "segment_conversion",
        "Conversion per segment value (--segment, --segment2) with Wilson interval, test against the rest and BH q-value.",
        segments.segment_conversion,
    ),
    Metric(
        "mix_vs_rate",
        "The SQL-rate change between a before and an after period split into segment mix and segment rates (--segment).",
        segments.mix_vs_rate,
    ),
    Metric(
        "disqualifiers",
        "Exits by outcome and normalised reason in Pareto order, optionally --by stage_left, week or a segment.",
        disqualifiers.disqualifiers,
    ),
    Metric(
        "stalled",
        "Open spells older than their stage's SLA or p90 (per segment value with --segment), newest stalls flagged.",
        stalled.stalled,
    ),
    Metric("stalled_summary", "Stalled spells now, newly stalled and recovered in the last 7 days.", stalled.stalled_summary),
    Metric("weekly_kpis", "Weekly KPIs per local ISO week with the change against last week and the 4 weeks before.", weekly.weekly_kpis),
    Metric(
        "movers",
        "Top movers: leads reaching MQL and SQL this week and last per segment value (every column, or --segment), biggest SQL change first.",
        weekly.movers,
    ),
    Metric("score_bands", "Conversion to MQL and SQL by lead-score band (tens) of the leads created in the period.", segments.score_bands),
    Metric(
        "leads",
        "The leads behind a conversion (--from-stage, --to-stage; --which converted|not_converted): the cohort with where each lead is now.",
        leads.leads,
    ),
    Metric("lead_history", "One lead's timeline (--lead-id): every spell with its duration, next stage and reason.", leads.lead_history),
    Metric(
        "cohort_conversion",
        "Conversion of weekly cohorts (local ISO weeks) for each consecutive stage pair and first -> last, or one pair (--from-stage/--to-stage), immature cohorts flagged; default the 13 weeks ending with as-of's week.",
        cohort.cohort_conversion,
    ),
    Metric(
        "time_in_stage",
        "Completed-only and Kaplan-Meier p50/p75/p90 of time in each stage (--segment, --business-days).",
        time.time_in_stage,
    ),
    Metric(
        "survival",
        "Kaplan-Meier share of spells still in each stage after t days, on a grid of at most 201 points up to the p99 (--segment, --business-days).",
        time.survival,
    ),
    Metric(
        "duration_distribution",
        "Spells per stage in at most 40 duration bins: completed by duration, open by age so far (--segment, --business-days).",
        time.duration_distribution,
    ),
)
REGISTRY: dict[str, Metric] = {m.name: m for m in METRICS}


def run_metric(gateway: Gateway, name: str, req: MetricRequest) -> list[dict]:
    """Compute one metric by name; UserError for an unknown name."""
    if name not in REGISTRY:
        raise UserError(f"unknown metric '{name}'; `funnelboard query --list` names them.")
    return REGISTRY[name].run(Context(gateway), req)


LISTS = ("leads", "stalled")


def _list_functions(name: str):
    functions = {"leads": (leads.leads_page, leads.leads_query), "stalled": (stalled.stalled_page, stalled.stalled_query)}
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
