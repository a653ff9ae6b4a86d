"""Time-in-stage figures: quantiles per stage, survival curves and the duration distribution."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import (
    COMPLETED_LABEL,
    EMPTY_MESSAGE,
    HOVER,
    KM_LABEL,
    Rows,
    _esc,
    _layout,
    _num,
    _plural,
    _segment_columns,
    _share,
    empty_figure,
)
from funnelboard.dashboard.theme import fmt_count, fmt_days, fmt_pct

_TIME_IN_STAGE_COLUMNS = {"stage", "n_completed", "n_open", "p50", "p75", "p90", "km_p50", "km_p75", "km_p90"}


def time_in_stage_figure(rows: Rows, business_days: bool = False, *, title: str | None = None, empty: str | None = None) -> go.Figure:
    """p50 / p75 / p90 of time in each stage, completed spells only beside Kaplan-Meier (`time_in_stage`).

    One row per stage (or stage · segment value); each method is one trace drawing a range from
    p50 (circle) through p75 (diamond) to p90 (triangle). A missing Kaplan-Meier quantile means too
    many spells are still open to say, and the hover says so.
    customdata per point: {"stage", <segment column>: value (when segmented), "method":
    "completed" | "km", "quantile": "p50" | "p75" | "p90"}; None on the line breaks.
    """
    unit = theme.day_unit(business_days)
    title = title or f"Time in stage ({unit})"
    if not rows or not any(_num(r["n_completed"]) + _num(r["n_open"]) for r in rows):
        return empty_figure(empty or EMPTY_MESSAGE, title=title)
    segments = _segment_columns(rows, _TIME_IN_STAGE_COLUMNS)
    labels = [
        " · ".join([theme.stage_label(r["stage"])] + [_esc(r[c]) for c in segments]) for r in rows
    ]
    methods = [
        ("completed", COMPLETED_LABEL, "", "#1D91C0", -0.16),
        ("km", KM_LABEL, "km_", "#E69F00", 0.16),
    ]
    symbols = {"p50": "circle", "p75": "diamond", "p90": "triangle-right"}
    fig = go.Figure()
    for method, name, prefix, color, offset in methods:
        xs, ys, hover, drill, marker_symbols = [], [], [], [], []
        for i, (r, label) in enumerate(zip(rows, labels)):
            counts = f"{fmt_count(r['n_completed'])} completed, {fmt_count(r['n_open'])} still open"
            missing = [q for q in symbols if r[prefix + q] is None]
            for q in symbols:
                value = r[prefix + q]
                if value is None:
                    continue
                lines = [f"<b>{label}</b> · {name}", f"{q}: {fmt_days(value, business_days)}", counts]
                if missing and method == "km":
                    lines.append(f"{', '.join(missing)}: not reached (too many spells still open)")
                xs.append(value)
                ys.append(i + offset)
                hover.append("<br>".join(lines))
                drill.append(
                    {"stage": r["stage"], **{c: r[c] for c in segments}, "method": method, "quantile": q}
                )
                marker_symbols.append(symbols[q])
            xs.append(None)
            ys.append(None)
            hover.append(None)
            drill.append(None)
            marker_symbols.append("circle")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=name,
                line=dict(color=color, width=2),
                marker=dict(color=color, size=9, symbol=marker_symbols),
                hovertext=hover,
                hovertemplate=HOVER,
                customdata=drill,
            )
        )
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text=f"{unit.capitalize()} in stage (● p50  ◆ p75  ▶ p90)"), rangemode="tozero"),
        yaxis=dict(
            title=dict(text=None),
            tickmode="array",
            tickvals=list(range(len(rows))),
            ticktext=labels,
            autorange="reversed",
            showgrid=False,
            zeroline=False,
        ),
        height=max(260, 120 + 34 * len(rows)),
    )


def _stage_panels(stages_shown: Sequence[str], *, shared_yaxes: bool) -> tuple[go.Figure, dict[str, tuple[int, int]]]:
    """One subplot per stage, three to a row, titled by the stage; returns the figure and stage -> (row, col)."""
    cols = min(len(stages_shown), 3)
    n_rows = math.ceil(len(stages_shown) / cols)
    fig = make_subplots(
        rows=n_rows,
        cols=cols,
        subplot_titles=[theme.stage_label(s) for s in stages_shown],
        shared_yaxes=shared_yaxes,
        horizontal_spacing=0.06,
        vertical_spacing=0.16 if n_rows > 1 else 0.1,
    )
    return fig, {s: (i // cols + 1, i % cols + 1) for i, s in enumerate(stages_shown)}


def _panels_layout(fig: go.Figure, title: str, n_rows: int, row_height: int) -> go.Figure:
    """Height for the panels, and the legend under the title, clear of the first panel's title."""
    height = 110 + row_height * n_rows
    return _layout(
        fig,
        title,
        height=height,
        margin=dict(t=110),
        legend=dict(yref="container", y=1 - 40 / height, yanchor="top"),
    )


def _in_order(values: Sequence[str], stages: tuple[str, ...]) -> list[str]:
    """Distinct stages in funnel order (unknown ones after, as they come)."""
    seen = list(dict.fromkeys(values))
    return sorted(seen, key=lambda s: (stages.index(s) if s in stages else len(stages), seen.index(s)))


_SURVIVAL_COLUMNS = {"stage", "days", "at_risk", "completed", "censored", "survival", "km_quantile"}


_QUANTILE_NAMES = {"p50": "Kaplan-Meier median", "p75": "Kaplan-Meier p75", "p90": "Kaplan-Meier p90"}


def survival_figure(
    rows: Rows,
    *,
    business_days: bool = False,
    stages: tuple[str, ...] = theme.DEFAULT_STAGES,
    title: str | None = None, empty: str | None = None,
) -> go.Figure:
    """Kaplan-Meier step curves (`survival` rows): the share of spells still in a stage after so many days.

    Without a segment column: one curve per stage on one axis, in stage colours. With one (the
    column besides the metric's own): one panel per stage, one curve per segment value, a value
    keeping its colour (and its legend entry) across panels. Curves are steps (line_shape "hv")
    through the metric's points; the points where the curve reaches a Kaplan-Meier quantile
    (km_quantile) carry a marker, and a dotted line marks 50 %.
    customdata per point: {"stage", <segment column>: value (when segmented), "days"}, and "step": the stage's
    grid step at a grid point (a KM quantile point has none: its count is exact).
    """
    unit = theme.day_unit(business_days)
    segments = _segment_columns(rows, _SURVIVAL_COLUMNS)
    segment = segments[0] if segments else None
    title = title or (f"Share still in the stage, by {segment}" if segment else "Share still in each stage (Kaplan-Meier)")
    if not rows:
        return empty_figure(empty or "No spells match these filters", title=title)
    curves: dict[tuple[str, Any], list[Mapping[str, Any]]] = {}
    for r in rows:
        curves.setdefault((r["stage"], r[segment] if segment else None), []).append(r)
    shown = _in_order([stage for stage, _ in curves], stages)
    steps = _grid_steps(rows)
    if segment:
        fig, cells = _stage_panels(shown, shared_yaxes=True)
        values = list(dict.fromkeys(value for _, value in curves))
    else:
        fig, cells = go.Figure(), {}
    legend_done: set[Any] = set()
    for (stage, value), points in sorted(curves.items(), key=lambda kv: shown.index(kv[0][0])):
        points = sorted(points, key=lambda p: p["days"])
        where = theme.stage_label(stage)
        name = _esc(value) if segment else where
        color = theme.category_color(values.index(value)) if segment else theme.stage_color(stage, stages)
        hover = []
        for p in points:
            lines = [
                f"<b>{where}{' · ' + _esc(value) if segment else ''}</b>",
                f"after {fmt_days(p['days'], business_days)}: {fmt_pct(p['survival'])} still in {where}",
                f"{fmt_count(p['at_risk'])} still in · {fmt_count(p['completed'])} completed · {fmt_count(p['censored'])} open, seen for less",
            ]
            if p["km_quantile"]:
                lines.append(" · ".join(_QUANTILE_NAMES.get(q, q) for q in p["km_quantile"].split()))
            hover.append("<br>".join(lines))
        trace = go.Scatter(
            x=[p["days"] for p in points],
            y=[p["survival"] for p in points],
            mode="lines+markers",
            line_shape="hv",
            name=name,
            legendgroup=str(value) if segment else stage,
            showlegend=(value not in legend_done) if segment else True,
            line=dict(color=color, width=2),
            marker=dict(color=color, size=[8 if p["km_quantile"] else 0 for p in points]),
            hovertext=hover,
            hovertemplate=HOVER,
            customdata=[{"stage": stage, **({segment: value} if segment else {}), "days": p["days"],
                         **({} if p["km_quantile"] else {"step": steps[stage]})} for p in points],
        )
        legend_done.add(value)
        if segment:
            fig.add_trace(trace, row=cells[stage][0], col=cells[stage][1])
        else:
            fig.add_trace(trace)
    fig.add_hline(y=0.5, line=dict(color=theme.REFERENCE_COLOR, dash="dot", width=1))
    fig.update_yaxes(tickformat=theme.PERCENT_AXIS_FORMAT, range=[0, 1.04])
    fig.update_xaxes(rangemode="tozero")
    if segment:
        n_rows = max(r for r, _ in cells.values())
        fig.update_xaxes(title_text=f"{unit.capitalize()} in stage", row=n_rows)
        fig.update_yaxes(title_text="Still in stage", col=1)
        return _panels_layout(fig, title, n_rows, 300)
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text=f"{unit.capitalize()} in stage")),
        yaxis=dict(title=dict(text="Still in stage")),
    )


def _grid_steps(rows: Rows) -> dict[str, float]:
    """Each stage's grid step (shared by its curves): the smallest gap between its grid points, the
    finest step (one hour) when it has one point. A point's drill-down counts by it (dashboard/spell_drill.py)."""
    points: dict[str, set[float]] = {}
    for r in rows:
        if not r["km_quantile"]:
            points.setdefault(r["stage"], set()).add(r["days"])
    steps = {}
    for stage, days in points.items():
        ordered = sorted(days)
        steps[stage] = min((b - a for a, b in zip(ordered, ordered[1:])), default=1 / 24)
    return steps


_DISTRIBUTION_COLUMNS = {"stage", "bin_start", "bin_end", "completed", "open"}


def _bin_text(start: float, end: float | None, business_days: bool) -> str:
    """A bin as words: '2–4 days', '3–6 hours' for bins under a day, '≥ 36 days' for the open-ended one."""
    unit = theme.day_unit(business_days)
    if end is None:
        return f"≥ {start:g} {unit}"
    if end - start < 1:
        hours = "business hours" if business_days else "hours"
        return f"{start * 24:.3g}–{end * 24:.3g} {hours}"
    return f"{start:g}–{end:g} {unit}"


def duration_histogram_figure(
    rows: Rows,
    *,
    business_days: bool = False,
    stages: tuple[str, ...] = theme.DEFAULT_STAGES,
    title: str | None = None, empty: str | None = None,
) -> go.Figure:
    """How long spells last (`duration_distribution` rows): one panel per stage, a bar per bin of
    completed spells by duration (stage colour) with the spells still open stacked on it by their
    age so far (grey). Rows with a segment column are summed over its values. The last bin of a
    stage may have no end (every longer spell); it is drawn as wide as the others, labelled "≥".
    customdata per bar: {"stage", "min_days", "max_days" (None for the open-ended bin), "open": bool, "step": the bin width}.
    """
    unit = theme.day_unit(business_days)
    title = title or "How long spells last: completed by duration, open ones by age so far"
    bins: dict[tuple[str, float, float | None], list[int]] = {}
    for r in rows:
        counts = bins.setdefault((r["stage"], r["bin_start"], r["bin_end"]), [0, 0])
        counts[0] += r["completed"]
        counts[1] += r["open"]
    if not any(c + o for c, o in bins.values()):
        return empty_figure(empty or "No spells match these filters", title=title)
    shown = _in_order([stage for stage, _, _ in bins], stages)
    fig, cells = _stage_panels(shown, shared_yaxes=False)
    for i, stage in enumerate(shown):
        edges = sorted((a, b) for s, a, b in bins if s == stage)
        width = next((b - a for a, b in edges if b is not None), 1.0)
        totals = [sum(bins[(stage, a, b)][k] for a, b in edges) for k in (0, 1)]
        for k, (kind, color, noun) in enumerate(
            (("completed", theme.stage_color(stage, stages), "completed"), ("open", theme.OPEN_COLOR, "open"))
        ):
            counts = [bins[(stage, a, b)][k] for a, b in edges]
            fig.add_trace(
                go.Bar(
                    x=[a + width / 2 for a, _ in edges],
                    y=counts,
                    width=[width] * len(edges),
                    name="Completed, by duration" if kind == "completed" else "Still open, by age so far",
                    legendgroup=kind,
                    showlegend=i == 0,
                    marker=dict(color=color, line=dict(color="white", width=0.5)),
                    # the open-ended last bin says so on top of its stack
                    text=[f"≥{a:g}" if kind == "open" and b is None else "" for a, b in edges],
                    textposition="outside",
                    textfont=dict(size=11, color=theme.MUTED_TEXT),
                    constraintext="none",
                    cliponaxis=False,
                    hovertext=[
                        f"<b>{theme.stage_label(stage)}</b> · {_bin_text(a, b, business_days)}"
                        f"{' so far' if kind == 'open' else ''}: {_plural(c, noun + ' spell')}"
                        f" ({fmt_pct(_share(c, totals[k]))} of {fmt_count(totals[k])} {noun})"
                        for (a, b), c in zip(edges, counts)
                    ],
                    hovertemplate=HOVER,
                    customdata=[
                        {"stage": stage, "min_days": a, "max_days": b, "open": kind == "open", "step": width} for a, b in edges
                    ],
                ),
                row=cells[stage][0],
                col=cells[stage][1],
            )
    n_rows = max(r for r, _ in cells.values())
    fig.update_xaxes(rangemode="tozero")
    fig.update_xaxes(title_text=f"{unit.capitalize()} in stage", row=n_rows)
    fig.update_yaxes(title_text="Spells", col=1)
    fig.update_layout(barmode="stack", bargap=0)
    return _panels_layout(fig, title, n_rows, 280)
