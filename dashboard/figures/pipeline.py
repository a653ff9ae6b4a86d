"""Pipeline value: the change waterfall of a period and the open pipeline at the end of each week."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from funnelboard.core.money import FORECAST_CATEGORIES
from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import HOVER, WEEK_TICK0, _layout, empty_figure
from funnelboard.dashboard.theme import fmt_count, fmt_money

Rows = Sequence[Mapping[str, Any]]
NO_VALUE_HINT = ("A deal counts once its rows carry an amount, in a stage from [pipeline] from_stage on, before the win; "
                 "an export that records amounts only with the win has no open pipeline.")
# the waterfall's steps after the start: (column, label, sign, what its deals did); pulled in and pushed out
# only with a close window (without one no close date moves a deal in or out)
STEPS = (("created", "Created", 1, "entered the pipeline"), ("pulled_in", "Pulled in", 1, "close date moved into the window"),
         ("increased", "Value up", 1, "value raises"), ("decreased", "Value down", -1, "value cuts"),
         ("pushed_out", "Pushed out", -1, "close date moved out of the window"), ("won", "Won", -1, "won"), ("lost", "Lost", -1, "lost"),
         ("exited", "Exited", -1, "left otherwise (another outcome, or back to an earlier stage)"))
WINDOWED = ("pulled_in", "pushed_out")
FORECAST_COLORS = {"omitted": "#b8c2cc", "pipeline": "#9ecae1", "best case": "#4292c6", "commit": "#08519c", "closed": "#2ca25f"}


def short_money(value: float, currency: str | None = None) -> str:
    """314704000 -> '314.7M', 21422 -> '21.4k', 950 -> '950'; with the currency code before it."""
    size = abs(value)
    text = (f"{value / 1e9:,.1f}B" if size >= 1e9 else f"{value / 1e6:,.1f}M" if size >= 1e6
            else f"{value / 1e3:,.1f}k" if size >= 1e3 else f"{value:,.0f}")
    return f"{currency} {text}" if currency else text


def pipeline_waterfall_figure(row: Mapping[str, Any] | None, *, currency: str | None, title: str, empty: str | None = None) -> go.Figure:
    """start -> created, pulled in, value up, value down, pushed out, won, lost, exited -> end
    (`pipeline_changes`' one row; pulled in and pushed out with a close window only).
    customdata per bar: {"step": "start" | a move | "end"}."""
    steps = [s for s in STEPS if s[0] not in WINDOWED or row and row.get("closing_from")]
    if row is None or not (row["start"] or row["end"] or any(row[c] for c, *_ in steps)):
        return empty_figure(empty or "No deal with an amount was in the pipeline", hint=NO_VALUE_HINT, title=title)
    x = ["Start", *(label for _, label, _, _ in steps), "End"]
    y = [row["start"], *(sign * row[c] for c, _, sign, _ in steps), row["end"]]
    counts = [row["start_deals"], *(row[f"n_{c}"] for c, *_ in steps), row["end_deals"]]
    what = ["deals in the pipeline at the start", *(w for *_, w in steps), "deals in the pipeline at the end"]
    hover = [f"<b>{label}</b>: {fmt_money(abs(v), currency)}<br>{fmt_count(n)} {w}" for label, v, n, w in zip(x, y, counts, what)]
    fig = go.Figure(go.Waterfall(
        x=x, y=y, measure=["absolute", *("relative" for _ in steps), "total"],
        text=[short_money(v) if i in (0, len(y) - 1) else ("+" if v > 0 else "−" if v < 0 else "") + short_money(abs(v))
              for i, v in enumerate(y)],
        textposition="outside",
        increasing=dict(marker=dict(color=theme.INCREASE_COLOR)),
        decreasing=dict(marker=dict(color=theme.DECREASE_COLOR)),
        totals=dict(marker=dict(color=theme.TOTAL_COLOR)),
        connector=dict(line=dict(color=theme.AXIS_COLOR, width=1, dash="dot")),
        hovertext=hover, hovertemplate=HOVER,
        customdata=[{"step": s} for s in ("start", *(c for c, *_ in steps), "end")],
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
                   xaxis=dict(title=dict(text="Week (starting Monday), value at its end"), type="date", tickformat="%d %b", tick0=WEEK_TICK0))


def forecast_figure(rows: Rows, *, currency: str | None, title: str, empty: str | None = None) -> go.Figure:
    """The open pipeline at each week's end by forecast category, stacked from the most certain, and
    closed (won in the week) beside it (`forecast`). customdata per bar: {"week": Monday, "category": category}."""
    if not any(r["value"] for r in rows):
        return empty_figure(empty or "No deal with an amount was open or won in these weeks", hint=NO_VALUE_HINT, title=title)
    weeks = sorted({r["week"] for r in rows})
    fig = go.Figure()
    for category in reversed(FORECAST_CATEGORIES):  # the most certain at the bottom
        cells = {r["week"]: r for r in rows if r["category"] == category}
        values = [cells[w]["value"] if w in cells else 0.0 for w in weeks]
        if not any(values):
            continue
        name = "Closed (won in the week)" if category == "closed" else category.capitalize()
        fig.add_bar(x=weeks, y=values, name=name, marker_color=FORECAST_COLORS[category],
                    hovertext=[f"<b>{name}</b>, week of {w:%d %b %Y}<br>{fmt_money(v, currency)} in {fmt_count(cells[w]['deals'] if w in cells else 0)} deals"
                               for w, v in zip(weeks, values)],
                    hovertemplate=HOVER, customdata=[{"week": w.isoformat(), "category": category} for w in weeks])
    return _layout(fig, title, barmode="stack",
                   yaxis=dict(title=dict(text=f"Value ({currency})" if currency else "Value"), rangemode="tozero"),
                   xaxis=dict(title=dict(text="Week (starting Monday), open value at its end"), type="date", tickformat="%d %b", tick0=WEEK_TICK0))
