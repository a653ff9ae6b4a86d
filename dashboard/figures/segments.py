"""Segments page figures: conversion per segment value with intervals, mix vs rate, score bands."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import (
    EMPTY_MESSAGE,
    HOVER,
    Rows,
    _esc,
    _layout,
    _num,
    _segment_columns,
    empty_figure,
)
from funnelboard.dashboard.theme import fmt_count, fmt_pct, fmt_pp

_SEGMENT_CONVERSION_COLUMNS = {
    "n",
    "converted",
    "rate",
    "wilson_low",
    "wilson_high",
    "too_few",
    "p_value",
    "q_value",
    "significant",
}


def segment_conversion_figure(
    rows: Rows,
    segment: str | Sequence[str] | None = None,
    *,
    overall_rate: float | None = None,
    title: str | None = None,
    empty: str | None = None,
    comparison: Mapping[tuple, Mapping[str, Any]] | None = None,
    previous_label: str = "previous period",
) -> go.Figure:
    """Conversion per segment value with its Wilson 95 % interval (`segment_conversion` rows).

    `comparison` (dashboard/comparison.py, keyed by the tuple of the columns' values) adds the rate
    of the period before as open grey diamonds ("Previous period" trace), the change on each axis
    label and in the hover, and "within noise" where the change's interval holds 0.

    Values are sorted by rate; significant ones (q < 0.05) are stars with a bold label, values
    with too few leads to judge are grey and labelled so. Up to three traces: "Significant
    difference", "No clear difference", "Too few to judge". `segment` is the segment column (or
    the two crossed columns); `overall_rate` draws a reference line.
    customdata per point: {<segment column>: value, ...}, e.g. {"channel": "referral"}.
    """
    columns = [segment] if isinstance(segment, str) else list(segment or [])
    if not columns:
        columns = _segment_columns(rows, _SEGMENT_CONVERSION_COLUMNS)
    title = title or (f"Conversion by {' × '.join(columns)}" if columns else "Conversion")
    if not rows or not any(_num(r["n"]) for r in rows):
        return empty_figure(empty or EMPTY_MESSAGE, title=title)

    def label(r: Mapping[str, Any]) -> str:
        return " · ".join(_esc(r[c]) for c in columns) if columns else "All leads"

    ordered = sorted(rows, key=lambda r: (r["rate"] is None, -(r["rate"] or 0), label(r)))
    groups = {
        "Significant difference": ("star", 14, "#225EA8"),
        "No clear difference": ("circle", 9, "#1D91C0"),
        "Too few to judge": ("circle-open", 9, theme.GREY),
    }
    members: dict[str, list] = {name: [] for name in groups}
    for r in ordered:
        if r["too_few"]:
            members["Too few to judge"].append(r)
        elif r["significant"]:
            members["Significant difference"].append(r)
        else:
            members["No clear difference"].append(r)

    def compared(r: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return None if comparison is None else comparison.get(tuple(r[c] for c in columns))

    fig = go.Figure()
    for name, style in groups.items():
        if members[name]:
            fig.add_trace(_segment_trace(name, members[name], style, label, columns, compared, previous_label))
    if comparison is not None:
        shown = [r for r in ordered if (compared(r) or {}).get("previous_rate") is not None]
        fig.add_trace(go.Scatter(
            x=[compared(r)["previous_rate"] for r in shown],
            y=[label(r) for r in shown],
            mode="markers",
            name=previous_label[:1].upper() + previous_label[1:],
            marker=dict(symbol="diamond-open", size=9, color=theme.REFERENCE_COLOR, line=dict(width=1.5)),
            hovertext=[f"<b>{label(r)}</b><br>{previous_label}: {fmt_pct(compared(r)['previous_rate'])} of {fmt_count(compared(r)['previous_n'])}" for r in shown],
            hovertemplate=HOVER,
            customdata=[{c: r[c] for c in columns} for r in shown],
        ))
    if overall_rate is not None:
        fig.add_vline(
            x=overall_rate,
            line=dict(color=theme.REFERENCE_COLOR, dash="dash", width=1),
            annotation=dict(text=f"overall {fmt_pct(overall_rate)}", font=dict(size=11, color=theme.MUTED_TEXT)),
            annotation_position="top",
        )
    ticktext = [_segment_tick(r, label(r)) + _change_tick(compared(r)) for r in ordered]
    categories = [label(r) for r in ordered]
    return _layout(
        fig,
        title,
        xaxis=dict(
            title=dict(text="Conversion rate (%), with 95% interval"),
            tickformat=theme.PERCENT_AXIS_FORMAT,
            rangemode="tozero",
        ),
        yaxis=dict(
            title=dict(text=None),
            type="category",
            categoryorder="array",
            categoryarray=categories,
            tickmode="array",
            tickvals=categories,
            ticktext=ticktext,
            autorange="reversed",
        ),
        height=max(260, 120 + 28 * len(categories)),
    )


def _change_tick(c: Mapping[str, Any] | None) -> str:
    """' · +3.1 pp' after a label (greyed and marked ≈ when within noise); nothing without a comparison."""
    if c is None:
        return ""
    if c["change"] is None:
        return f" <span style='color:{theme.GREY}'>· new</span>"
    if c["within_noise"]:
        return f" <span style='color:{theme.GREY}'>· {fmt_pp(c['change'])} ≈</span>"
    return f" · <b>{fmt_pp(c['change'])}</b>"


def _segment_trace(
    name: str, group: Rows, style: tuple[str, int, str], label: Callable[[Mapping[str, Any]], str], columns: list[str],
    compared: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] = lambda r: None, previous_label: str = "previous period",
) -> go.Scatter:
    """One group of segment values (significant, no clear difference, too few) as points with their intervals."""
    symbol, size, color = style
    rates = [_num(r["rate"]) for r in group]
    return go.Scatter(
        x=rates,
        y=[label(r) for r in group],
        mode="markers",
        name=name,
        marker=dict(symbol=symbol, size=size, color=color, line=dict(width=1.5, color=color)),
        error_x=dict(
            type="data",
            symmetric=False,
            array=[_num(r["wilson_high"]) - x for r, x in zip(group, rates)],
            arrayminus=[x - _num(r["wilson_low"]) for r, x in zip(group, rates)],
            color=color,
            thickness=1.5,
            width=4,
        ),
        hovertext=[_segment_hover(r, label(r)) + _compare_hover(compared(r), previous_label) for r in group],
        hovertemplate=HOVER,
        customdata=[{c: r[c] for c in columns} for r in group],
    )


def _segment_hover(r: Mapping[str, Any], label: str) -> str:
    """A segment value's counts, rate, interval and what its test says, for the hover."""
    lines = [
        f"<b>{label}</b>",
        f"{fmt_count(r['converted'])} of {fmt_count(r['n'])} converted ({fmt_pct(r['rate'])})",
        f"95% interval: {fmt_pct(r['wilson_low'])} to {fmt_pct(r['wilson_high'])}",
    ]
    if r["too_few"]:
        lines.append(f"Too few to judge: only {fmt_count(r['n'])} leads")
    elif r.get("q_value") is None:
        lines.append("Not tested against the other leads")
    elif r["significant"]:
        lines.append(f"Differs from the other leads (q = {r['q_value']:.2g})")
    else:
        lines.append(f"No clear difference from the other leads (q = {r['q_value']:.2g})")
    return "<br>".join(lines)


def _compare_hover(c: Mapping[str, Any] | None, previous_label: str) -> str:
    if c is None:
        return ""
    if c["change"] is None:
        return f"<br>No leads in the {previous_label}"
    verdict = "within the intervals' noise" if c["within_noise"] else "beyond the intervals' noise"
    return (
        f"<br>{previous_label[:1].upper() + previous_label[1:]}: {fmt_pct(c['previous_rate'])} of {fmt_count(c['previous_n'])}"
        f"<br>Change {fmt_pp(c['change'])} (95% interval {fmt_pp(c['change_low'])} to {fmt_pp(c['change_high'])}): {verdict}"
    )


def _segment_tick(r: Mapping[str, Any], label: str) -> str:
    """A segment value's axis label: greyed when too few to judge, bold and starred when significant."""
    if r["too_few"]:
        return f"<span style='color:{theme.GREY}'>{label} · too few to judge</span>"
    if r["significant"]:
        return f"<b>{label}</b> ★"
    return label


def mix_vs_rate_figure(
    rows: Rows, *, rate_name: str = "Rate", cohort: str = "leads", periods: tuple[str, str] | None = None,
    title: str | None = None, empty: str | None = None,
) -> go.Figure:
    """Waterfall of a rate's change: before -> mix effect -> rate effect -> after (`mix_vs_rate`).

    `rate_name` names the rate ("SQL rate"), `cohort` its cohort's members ("MQLs"), `periods` the
    before and after periods as text (shown under the bars). Uses the `(total)` row; hover lists each
    segment value's part. customdata per bar: {"step": "before" | "mix_effect" | "rate_effect" | "after"}.
    """
    title = title or f"{rate_name} change: mix vs rate"
    total = next((r for r in rows if r["segment"] == "(total)"), None)
    if total is None or not (_num(total["n_before"]) or _num(total["n_after"])):
        return empty_figure(empty or f"No {cohort} in either period", title=title)
    values = [r for r in rows if r["segment"] != "(total)"]

    def listing(key: Callable[[Mapping[str, Any]], float], line: Callable[[Mapping[str, Any]], str]) -> str:
        top = sorted(values, key=key)[:10]
        more = len(values) - len(top)
        return "<br>".join([line(r) for r in top] + ([f"… and {more} more"] if more > 0 else []))

    before = listing(
        lambda r: -_num(r["share_before"]),
        lambda r: f"{_esc(r['segment'])}: {fmt_pct(r['share_before'])} of {cohort}, rate {fmt_pct(r['rate_before'])}",
    )
    after = listing(
        lambda r: -_num(r["share_after"]),
        lambda r: f"{_esc(r['segment'])}: {fmt_pct(r['share_after'])} of {cohort}, rate {fmt_pct(r['rate_after'])}",
    )
    mix = listing(
        lambda r: -abs(_num(r["mix_effect"])),
        lambda r: f"{_esc(r['segment'])}: share {fmt_pct(r['share_before'])} → {fmt_pct(r['share_after'])},"
        f" {fmt_pp(r['mix_effect'])}",
    )
    rate = listing(
        lambda r: -abs(_num(r["rate_effect"])),
        lambda r: f"{_esc(r['segment'])}: rate {fmt_pct(r['rate_before'])} → {fmt_pct(r['rate_after'])},"
        f" {fmt_pp(r['rate_effect'])}",
    )
    hover = [
        f"<b>Before</b>: {rate_name} {fmt_pct(total['rate_before'])} of {fmt_count(total['n_before'])} {cohort}<br>{before}",
        f"<b>Mix effect</b>: {fmt_pp(total['mix_effect'])}<br>"
        f"who the {cohort} were, at the before rates<br>{mix}",
        f"<b>Rate effect</b>: {fmt_pp(total['rate_effect'])}<br>"
        f"how each segment converted, at the after mix<br>{rate}",
        f"<b>After</b>: {rate_name} {fmt_pct(total['rate_after'])} of {fmt_count(total['n_after'])} {cohort}<br>{after}",
    ]
    steps = ["before", "mix_effect", "rate_effect", "after"]
    ends = ["Before", "After"] if periods is None else [f"Before<br>{periods[0]}", f"After<br>{periods[1]}"]
    fig = go.Figure(
        go.Waterfall(
            x=[ends[0], "Mix effect", "Rate effect", ends[1]],
            measure=["absolute", "relative", "relative", "total"],
            y=[total["rate_before"], total["mix_effect"], total["rate_effect"], total["rate_after"]],
            text=[
                fmt_pct(total["rate_before"]),
                fmt_pp(total["mix_effect"]),
                fmt_pp(total["rate_effect"]),
                fmt_pct(total["rate_after"]),
            ],
            textposition="outside",
            increasing=dict(marker=dict(color=theme.INCREASE_COLOR)),
            decreasing=dict(marker=dict(color=theme.DECREASE_COLOR)),
            totals=dict(marker=dict(color=theme.TOTAL_COLOR)),
            connector=dict(line=dict(color=theme.AXIS_COLOR, width=1, dash="dot")),
            hovertext=hover,
            hovertemplate=HOVER,
            customdata=[{"step": s} for s in steps],
            name=rate_name,
        )
    )
    return _layout(
        fig,
        title,
        showlegend=False,
        yaxis=dict(title=dict(text=f"{rate_name} (%)"), tickformat=".1%", rangemode="tozero"),
        xaxis=dict(title=dict(text=None), showgrid=False),
    )


def _band_bounds(band: str) -> tuple[int | None, int | None]:
    try:
        low, high = (int(p) for p in band.split("-"))
    except ValueError:
        return None, None
    return low, high


def score_band_figure(rows: Rows, *, rate_name: str = "Key rate", title: str | None = None, empty: str | None = None) -> go.Figure:
    """Leads per score band (bars), the share reaching the key rate's first stage and the key rate
    (lines, second axis) (`score_bands`).

    Traces: "Leads" bar, "Reached <S>" (reached_from / leads) and the key rate (reached_to / reached_from).
    customdata per bar and point: {"band", "score_min", "score_max"} (bounds inclusive).
    """
    title = title or "Conversion by lead score"
    if not rows or not any(_num(r["leads"]) for r in rows):
        return empty_figure(empty or "No scored leads match these filters", title=title)
    ordered = sorted(rows, key=lambda r: (_band_bounds(r["band"])[0] is None, _band_bounds(r["band"])[0] or 0))
    bands = [r["band"] for r in ordered]
    drill = [{"band": b, "score_min": _band_bounds(b)[0], "score_max": _band_bounds(b)[1]} for b in bands]
    source, target = theme.stage_label(ordered[0]["from_stage"]), theme.stage_label(ordered[0]["to_stage"])
    hover = [
        f"<b>Score {r['band']}</b><br>{fmt_count(r['leads'])} leads<br>"
        f"{fmt_count(r['reached_from'])} reached {source} ({fmt_pct(r['from_rate'])} of leads)<br>"
        f"{fmt_count(r['reached_to'])} reached {target} ({fmt_pct(r['key_rate'])} of those)"
        for r in ordered
    ]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=bands,
            y=[r["leads"] for r in ordered],
            name="Leads",
            marker=dict(color="#D5DAE1"),
            hovertext=hover,
            hovertemplate=HOVER,
            customdata=drill,
        ),
        secondary_y=False,
    )
    for name, column, stage, dash, symbol in (
        (f"Reached {source}", "from_rate", ordered[0]["from_stage"], "dash", "diamond"),
        (rate_name, "key_rate", ordered[0]["to_stage"], "solid", "circle"),
    ):
        fig.add_trace(
            go.Scatter(
                x=bands,
                y=[r[column] for r in ordered],
                mode="lines+markers",
                name=name,
                line=dict(color=theme.stage_color(stage), width=2, dash=dash),
                marker=dict(symbol=symbol, size=7, color=theme.stage_color(stage)),
                hovertext=hover,
                hovertemplate=HOVER,
                customdata=drill,
            ),
            secondary_y=True,
        )
    fig.update_yaxes(title=dict(text="Leads created (count)"), tickformat=",", secondary_y=False)
    fig.update_yaxes(
        title=dict(text="Conversion rate (%)"),
        tickformat=theme.PERCENT_AXIS_FORMAT,
        rangemode="tozero",
        showgrid=False,
        secondary_y=True,
    )
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text="Lead score band"), type="category", showgrid=False),
    )


MATRIX_SCALE = [[0.0, "#F1F6FB"], [0.5, "#6BAED6"], [1.0, "#08306B"]]


def segment_matrix_figure(
    rows: Rows, segment: str, segment2: str, *, title: str | None = None, empty: str | None = None,
) -> go.Figure:
    """Two crossed segment columns as a matrix (`segment_conversion` rows with --segment2): a row per
    `segment` value, a column per `segment2` value, both by leads (most first), colour = rate, the rate
    and n written in each cell. Cells with too few leads to judge (`too_few`, under min_sample) are grey
    and not coloured by rate; crossings without a lead are left blank.

    One trace, "Rate"; a too-few cell's z is just under 0 (the grey band of the colour scale), its
    text n only.
    customdata per cell: {<segment>: value, <segment2>: value} (None where no lead).
    """
    title = title or f"Conversion by {segment} × {segment2}"
    if not rows or not any(_num(r["n"]) for r in rows):
        return empty_figure(empty or EMPTY_MESSAGE, title=title)

    def order(column: str) -> list[str]:
        totals: dict[str, int] = {}
        for r in rows:
            totals[r[column]] = totals.get(r[column], 0) + int(_num(r["n"]))
        return sorted(totals, key=lambda v: (-totals[v], str(v)))

    ys, xs = order(segment), order(segment2)
    cells = {(r[segment], r[segment2]): r for r in rows if _num(r["n"])}

    def grid(pick: Callable[[Mapping[str, Any]], Any], keep: Callable[[Mapping[str, Any]], bool]) -> list[list[Any]]:
        return [[pick(cells[(y, x)]) if (y, x) in cells and keep(cells[(y, x)]) else None for x in xs] for y in ys]

    def text(r: Mapping[str, Any]) -> str:
        return f"{fmt_pct(r['rate'])}<br>n={fmt_count(r['n'])}" if not r["too_few"] else f"n={fmt_count(r['n'])}"

    def hover(r: Mapping[str, Any]) -> str:
        return _segment_hover(r, f"{_esc(r[segment])} · {_esc(r[segment2])}") + "<br>Click for these leads"

    drill = grid(lambda r: {segment: r[segment], segment2: r[segment2]}, lambda r: True)
    # One trace, so every cell carries its customdata to a click: a too-few cell gets a value just
    # under 0, which the colour scale's first band paints grey whatever its rate.
    top = max([_num(r["rate"]) for r in cells.values() if not r["too_few"]] or [1]) or 1
    low = -top / 50
    grey = 0.5 * (0 - low) / (top - low)
    scale = [[0.0, "#E5E7EB"], [grey, "#E5E7EB"], [grey, MATRIX_SCALE[0][1]], [1.0, MATRIX_SCALE[-1][1]]]
    fig = go.Figure(go.Heatmap(
        z=grid(lambda r: low if r["too_few"] else r["rate"], lambda r: True), x=[_esc(x) for x in xs], y=[_esc(y) for y in ys],
        text=grid(text, lambda r: True), texttemplate="%{text}", hovertext=grid(hover, lambda r: True), hovertemplate=HOVER,
        customdata=drill, colorscale=scale, zmin=low, zmax=top, xgap=2, ygap=2, name="Rate",
        colorbar=dict(title=dict(text="Rate"), tickformat=theme.PERCENT_AXIS_FORMAT, tickmode="array",
                      tickvals=[top * i / 4 for i in range(5)], ticktext=[fmt_pct(top * i / 4) for i in range(5)]),
    ))
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text=segment2.replace("_", " ")), side="top", type="category", showgrid=False, tickangle=-30),
        yaxis=dict(title=dict(text=segment.replace("_", " ")), type="category", autorange="reversed", showgrid=False),
        height=max(320, 160 + 34 * len(ys)),
    )


def _span_label(first, last) -> str:
    """Two local dates (inclusive) as '1 Jul – 30 Sep 2026'."""
    return f"{first:%-d %b} – {last:%-d %b %Y}" if first.year == last.year else f"{first:%-d %b %Y} – {last:%-d %b %Y}"


def score_threshold_figure(rows: Rows, *, title: str | None = None, empty: str | None = None) -> go.Figure:
    """Precision and recall of each lead-score threshold against reaching T (the key rate's second
    stage), the current period in colour with Wilson 95 % error bars, the one before in grey (drift),
    and the configured threshold as a dotted vertical line (`score_threshold` rows, no segment).

    Traces: "Precision, <period>" and "Recall, <period>" for the current and the previous period.
    customdata per point: {"period", "threshold"}.
    """
    title = title or "Lead-score thresholds"
    current = sorted((r for r in rows if r["period"] == "current"), key=lambda r: r["threshold"])
    if not current or not any(_num(r["leads"]) for r in current):
        return empty_figure(empty or "No scored leads match these filters", title=title)
    target = theme.stage_label(current[0]["to_stage"])
    configured = next((r["threshold"] for r in current if r["configured"]), None)

    def hover(r: Mapping[str, Any], span: str) -> str:
        text = (
            f"<b>Score ≥ {r['threshold']:g}</b> · {span}<br>{fmt_count(r['passed'])} of {fmt_count(r['leads'])} leads pass<br>"
            f"Precision {fmt_pct(r['precision'])} ({fmt_pct(r['precision_low'])}–{fmt_pct(r['precision_high'])}): "
            f"{fmt_count(r['passed_reached'])} of them reached {target}<br>"
            f"Recall {fmt_pct(r['recall'])} ({fmt_pct(r['recall_low'])}–{fmt_pct(r['recall_high'])}) "
            f"of the {fmt_count(r['reached'])} that reached {target}<br>"
            f"Won: precision {fmt_pct(r['won_precision'])}, recall {fmt_pct(r['won_recall'])}"
        )
        if configured is not None and r["leads_added"] is not None and not r["configured"]:
            text += (
                f"<br>Against the current {configured:g}: {fmt_count(r['leads_added'])} more, {fmt_count(r['leads_removed'])} fewer leads pass; "
                f"{fmt_count(r['reached_added'])} more, {fmt_count(r['reached_removed'])} fewer that reached {target}"
            )
        return text

    fig = go.Figure()
    for period, colour, width in (("previous", theme.GREY, 1.5), ("current", theme.stage_color(current[0]["to_stage"]), 2.5)):
        ordered = sorted((r for r in rows if r["period"] == period), key=lambda r: r["threshold"])
        if not ordered:
            continue
        span = _span_label(ordered[0]["period_start"], ordered[0]["period_end"])
        label = "this period" if period == "current" else "period before"
        for measure, dash, symbol in (("precision", "solid", "circle"), ("recall", "dash", "diamond")):
            bars = None
            if period == "current":  # the intervals of the period being judged; the earlier one's would clutter
                bars = dict(type="data", symmetric=False, thickness=1, width=3, color=colour,
                            array=[None if r[measure] is None else r[f"{measure}_high"] - r[measure] for r in ordered],
                            arrayminus=[None if r[measure] is None else r[measure] - r[f"{measure}_low"] for r in ordered])
            fig.add_trace(go.Scatter(
                x=[r["threshold"] for r in ordered],
                y=[r[measure] for r in ordered],
                mode="lines+markers",
                name=f"{measure.capitalize()}, {label} ({span})",
                line=dict(color=colour, width=width, dash=dash),
                marker=dict(symbol=symbol, size=6 if period == "current" else 5, color=colour),
                error_y=bars,
                hovertext=[hover(r, span) for r in ordered],
                hovertemplate=HOVER,
                customdata=[{"period": period, "threshold": r["threshold"]} for r in ordered],
            ))
    if configured is not None:
        fig.add_vline(x=configured, line=dict(color=theme.REFERENCE_COLOR, dash="dot", width=1.5),
                      annotation=dict(text=f"current threshold {configured:g}", font=dict(size=11, color=theme.MUTED_TEXT)),
                      annotation_position="top right")
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text="Threshold: leads scoring at or above it pass"), range=[-2, 100], dtick=10, showgrid=False),
        yaxis=dict(title=dict(text="Precision and recall (%)"), tickformat=theme.PERCENT_AXIS_FORMAT, range=[0, 1.02]),
        legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
    )
