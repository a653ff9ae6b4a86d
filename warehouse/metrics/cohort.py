"""Weekly cohort conversion (docs/metrics.md): the numbers of the Funnel page's cohort-by-week heatmap.

For each stage pair S -> T and each local ISO week, the cell is exactly the `conversion` metric
S -> T over that week (Monday 00:00 to the next Monday, in the configured time zone): cohort,
converted within the window by as_of, rate, immature members and the mature-only rate.
`queries/metrics/cohort_conversion.sql` computes one pair's weeks; this module picks the pairs
and runs it once per pair.
"""

from __future__ import annotations

from funnelboard.core.errors import UserError
from funnelboard.warehouse.metrics.base import (
    Context,
    MetricRequest,
    maturity_days,
    ratio,
    reached,
    week_of,
)
from funnelboard.warehouse.metrics.weekly import DEFAULT_WEEKS, shown_weeks

COLUMNS = (
    "week", "from_stage", "to_stage", "cohort", "converted", "rate", "immature",
    "mature_cohort", "mature_converted", "rate_mature", "window_days", "maturity_days",
)


def cohort_pairs(stages: tuple[str, ...], from_stage: str | None, to_stage: str | None) -> list[tuple[str, str]]:
    """The stage pairs shown: every consecutive pair, then first -> last; with --from-stage and/or
    --to-stage only that pair, a missing end being the neighbouring stage (sql -> opportunity)."""
    if from_stage is None and to_stage is None:
        pairs = list(zip(stages, stages[1:]))
        if len(stages) > 2:
            pairs.append((stages[0], stages[-1]))
        return pairs
    if to_stage is None:
        if from_stage == stages[-1]:
            raise UserError(f"'{from_stage}' is the last funnel stage: give --to-stage as well.")
        to_stage = stages[stages.index(from_stage) + 1]
    if from_stage is None:
        if to_stage == stages[0]:
            raise UserError(f"'{to_stage}' is the first funnel stage: give --from-stage as well.")
        from_stage = stages[stages.index(to_stage) - 1]
    return [(from_stage, to_stage)]


def cohort_conversion(ctx: Context, req: MetricRequest) -> list[dict]:
    """Conversion of weekly cohorts (local ISO weeks) for each consecutive stage pair and first ->
    last, or one pair (--from-stage/--to-stage), immature cohorts flagged; default the 13 weeks
    ending with the review week."""
    weeks = DEFAULT_WEEKS if req.start is None else None  # the default start (earliest event) would be too long
    first_week, last_week = shown_weeks(ctx, req, weeks)
    req = ctx.resolve(req)
    params = {"as_of": req.as_of, "first_week": first_week, "last_week": last_week, "window_days": req.window_days}
    out = []
    for from_stage, to_stage in cohort_pairs(tuple(ctx.config.stages), req.from_stage, req.to_stage):
        maturity = maturity_days(ctx, from_stage, to_stage, req.as_of, req.window_days)
        rows = ctx.run_sql(
            "cohort_conversion",
            req,
            {**params, "from_stage": from_stage, "to_stage": to_stage, "maturity_days": maturity},
            {"__from__": reached(from_stage), "__from_week__": week_of(from_stage), "__to__": reached(to_stage)},
        )
        for row in rows:
            row["rate"] = ratio(row["converted"], row["cohort"])
            row["rate_mature"] = ratio(row["mature_converted"], row["mature_cohort"])
            out.append({k: row[k] for k in COLUMNS})
    return out
