"""Figures for the dashboard: pure functions from metric rows (list[dict], as
`warehouse.metrics.run_metric` returns them) to plotly figures. No database access.

Every point, bar or cell carries a `customdata` dict naming what a click should drill into
(`{"stage": "mql"}`, `{"channel": "referral"}`, `{"week": "2026-08-24", ...}`), so a page can
turn a click into the URL of the lead list behind it. Hover text spells out the exact counts and
rates. Rows that hold no leads give a figure with a "No leads match these filters" note instead
of an empty axis.
"""

from funnelboard.dashboard.figures.common import (
    COMPLETED_LABEL,
    DEFAULT_HINT,
    EMPTY_MESSAGE,
    HOVER,
    IMMATURE_NOTE,
    KM_LABEL,
    WRAP,
    empty_figure,
    kpi_label,
    kpi_names,
)
from funnelboard.dashboard.figures.disqualifiers import disqualifier_pareto_figure, disqualifier_trend_figure, reason_colors
from funnelboard.dashboard.figures.funnel import (
    COHORT_VIEW_LABEL,
    COHORT_VIEW_NOTE,
    HEATMAP_TEXT_WEEKS,
    PERIOD_VIEW_LABEL,
    PERIOD_VIEW_NOTE,
    cohort_heatmap_figure,
    funnel_figure,
    stage_accounting_figure,
)
from funnelboard.dashboard.figures.lead import lead_timeline_figure
from funnelboard.dashboard.figures.pipeline import forecast_figure, pipeline_snapshot_figure, pipeline_waterfall_figure
from funnelboard.dashboard.figures.segments import mix_vs_rate_figure, score_band_figure, segment_conversion_figure
from funnelboard.dashboard.figures.time import duration_histogram_figure, survival_figure, time_in_stage_figure
from funnelboard.dashboard.figures.weekly import LOWER_IS_BETTER, add_notes, kpi_card_values, weekly_trend_figure

__all__ = [
    "EMPTY_MESSAGE",
    "WRAP",
    "DEFAULT_HINT",
    "COMPLETED_LABEL",
    "KM_LABEL",
    "IMMATURE_NOTE",
    "HOVER",
    "empty_figure",
    "kpi_label",
    "kpi_names",
    "HEATMAP_TEXT_WEEKS",
    "COHORT_VIEW_LABEL",
    "COHORT_VIEW_NOTE",
    "PERIOD_VIEW_LABEL",
    "PERIOD_VIEW_NOTE",
    "funnel_figure",
    "stage_accounting_figure",
    "cohort_heatmap_figure",
    "segment_conversion_figure",
    "mix_vs_rate_figure",
    "forecast_figure",
    "pipeline_snapshot_figure",
    "pipeline_waterfall_figure",
    "score_band_figure",
    "time_in_stage_figure",
    "survival_figure",
    "duration_histogram_figure",
    "disqualifier_pareto_figure",
    "disqualifier_trend_figure",
    "reason_colors",
    "weekly_trend_figure",
    "add_notes",
    "LOWER_IS_BETTER",
    "kpi_card_values",
    "lead_timeline_figure",
]
