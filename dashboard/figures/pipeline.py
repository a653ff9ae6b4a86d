"""Pipeline value: the change waterfall of a period and the open pipeline at the end of each week."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import HOVER, _layout, empty_figure
from funnelboard.dashboard.theme import fmt_count, fmt_money

Rows = Sequence[Mapping[str, Any]]
NO_VALUE_HINT = ("A deal counts once its rows carry an amount, in a stage from [pipeline] from_stage on, before the win; "
                 "an export that records amounts only with the win has no open pipeline.")
# the waterfall's steps after the start: (column, label, sign)
STEPS = (("created", "Created", 1), ("increased", "Amount up", 1), ("decreased", "Amount down", -1),
         ("won", "Won", -1), ("lost", "Lost", -1), ("exited", "Exited", -1))


def short_money(value: float, currency: str | None = None) -> str:
    """314704000 -> '314.7M', 21422 -> '21.4k', 950 -> '950'; with the currency code before it."""
    size = abs(value)
    text = (f"{value / 1e9:,.1f}B" if size >= 1e9 else f"{value / 1e6:,.1f}M" if size >= 1e6
            else f"{value / 1e3:,.1f}k" if size >= 1e3 else f"{value:,.0f}")
    return f"{currency} {text}" if currency else text


def pipeline_waterfall_figure(row: Mapping[str, Any] | None, *, currency: str | None, title: str, empty: str | None = None) -> go.Figure:
    """start -> created, amount up, amount down, won, lost, exited -> end (`pipeline_changes`' one row).
    customdata per bar: {"step": "start" | a move | "end"}."""
    if row is None or not (row["start_value"] or row["end_value"] or any(row[c] for c, _, _ in STEPS)):
        return empty_figure(empty or "No deal with an amount was in the pipeline", hint=NO_VALUE_HINT, title=title)
    x = ["Start", *(label for _, label, _ in STEPS), "End"]
    y = [row["start_value"], *(sign * row[c] for c, _, sign in STEPS), row["end_value"]]
    counts = [row["start_deals"], *(row[f"n_{c}"] for c, _, _ in STEPS), row["end_deals"]]
    what = ["deals in the pipeline at the start", "entered the pipeline", "amount raises", "amount cuts", "won", "lost",
            "left otherwise (another outcome, or back to an earlier stage)", "deals in the pipeline at the end"]
    hover = [f"<b>{label}</b>: {fmt_money(abs(v), currency)}<br>{fmt_count(n)} {w}" for label, v, n, w in zip(x, y, counts, what)]
    fig = go.Figure(go.Waterfall(
        x=x, y=y, measure=["absolute", *("relative" for _ in STEPS), "total"],
        text=[short_money(v) if i in (0, len(y) - 1) else ("+" if v > 0 else "−" if v < 0 else "") + short_money(abs(v))
              for i, v in enumerate(y)],
        textposition="outside",
        increasing=dict(marker=dict(color=theme.INCREASE_COLOR)),
        decreasing=dict(marker=dict(color=theme.DECREASE_COLOR)),
        totals=dict(marker=dict(color=theme.TOTAL_COLOR)),
        connector=dict(line=dict(color=theme.AXIS_COLOR, width=1, dash="dot")),
        hovertext=hover, hovertemplate=HOVER,
        customdata=[{"step": s} for s in ("start", *(c for c, _, _ in STEPS), "end")],
        name="Pipeline value",
    ))
    return _layout(fig, title, showlegend=False,
                   yaxis=dict(title=dict(text=f"Pipeline value ({currency})" if currency else "Pipeline value"), rangemode="tozero"),
                   xaxis=dict(title=dict(text=None), showgrid=False))


def pipeline_snapshot_figure(rows: Rows, stages: Sequence[str], *, currency: str | None, title: str, empty: str | None = None) -> go.Figure:
    """The open pipeline at each week's end, stacked by stage (`pipeline_snapshot`), with the weighted
    value as a line. customdata per bar: {"week": Monday, "stage": stage}."""
    if not any(r["value"] for r in rows):
        return empty_figure(empty or "No deal with an amount was open at the end of these weeks", hint=NO_VALUE_HINT, title=title)
    weeks = sorted({r["week"] for r in rows})
    fig = go.Figure()
    for stage in stages:
        cells = {r["week"]: r for r in rows if r["stage"] == stage}
        if not cells:
            continue
        values = [cells[w]["value"] if w in cells else 0.0 for w in weeks]
        fig.add_bar(
            x=weeks, y=values, name=theme.stage_label(stage), marker_color=theme.stage_color(stage, tuple(stages)),
            hovertext=[f"<b>{theme.stage_label(stage)}</b>, week of {w:%d %b %Y}<br>{fmt_money(v, currency)} in "
                       f"{fmt_count(cells[w]['deals'] if w in cells else 0)} deals" for w, v in zip(weeks, values)],
            hovertemplate=HOVER, customdata=[{"week": w.isoformat(), "stage": stage} for w in weeks],
        )
    weighted = [sum(r["weighted_value"] for r in rows if r["week"] == w) for w in weeks]
    if any(weighted):
        fig.add_scatter(x=weeks, y=weighted, mode="lines+markers", name="Weighted (stage probability)",
                        line=dict(color=theme.AXIS_COLOR, dash="dot"),
                        hovertext=[f"<b>Weighted</b>, week of {w:%d %b %Y}: {fmt_money(v, currency)}" for w, v in zip(weeks, weighted)],
                        hovertemplate=HOVER)
    return _layout(fig, title, barmode="stack",
                   yaxis=dict(title=dict(text=f"Open pipeline ({currency})" if currency else "Open pipeline"), rangemode="tozero"),
                   xaxis=dict(title=dict(text="Week (starting Monday), value at its end"), type="date", tickformat="%d %b"))
