"""Figures for the dashboard: pure functions from metric rows (list[dict], as
`warehouse.metrics.run_metric` returns them) to plotly figures. No database access.

Every point, bar or cell carries a `customdata` dict naming what a click should drill into
(`{"stage": "mql"}`, `{"channel": "referral"}`, `{"week": "2026-08-24", ...}`), so a page can
turn a click into the URL of the lead list behind it. Hover text spells out the exact counts and
rates. Rows that hold no leads give a figure with a "No leads match these filters" note instead
of an empty axis.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard import theme
from dashboard.theme import fmt_count, fmt_days, fmt_pct, fmt_pp

Rows = Sequence[Mapping[str, Any]]

EMPTY_MESSAGE = "No leads match these filters"
DEFAULT_HINT = "Try a longer period or remove a filter."
COMPLETED_LABEL = "Completed spells only"
KM_LABEL = "Kaplan-Meier, open spells censored"
IMMATURE_NOTE = "immature: part of the cohort is still inside the conversion window"
HEATMAP_TEXT_WEEKS = 26  # wider cohort heatmaps print no rate in the cells (too narrow to read)
HOVER = "%{hovertext}<extra></extra>"

_TIME_IN_STAGE_COLUMNS = {"stage", "n_completed", "n_open", "p50", "p75", "p90", "km_p50", "km_p75", "km_p90"}
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


# --------------------------------------------------------------------------- shared pieces


def _layout(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    fig.update_layout(template=theme.TEMPLATE, title=dict(text=title), **layout)
    return fig


def empty_figure(
    message: str = EMPTY_MESSAGE, *, hint: str | None = DEFAULT_HINT, title: str | None = None
) -> go.Figure:
    """A figure that says why there is nothing to draw, and what to try, instead of blank axes."""
    text = f"<b>{message}</b>"
    if hint:
        text += f"<br><span style='font-size:12px;color:{theme.MUTED_TEXT}'>{hint}</span>"
    fig = go.Figure()
    fig.add_annotation(
        text=text,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font=dict(size=14, color=theme.TEXT_COLOR),
    )
    return _layout(fig, title or "", xaxis=dict(visible=False), yaxis=dict(visible=False))


def _iso(week: date | datetime | str) -> str:
    if isinstance(week, datetime):
        return week.date().isoformat()
    if isinstance(week, date):
        return week.isoformat()
    return str(week)[:10]


def _week_text(week: str) -> str:
    d = date.fromisoformat(week)
    return f"Week of {d.day} {d:%b %Y}"


def _share(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole


def _num(x: Any) -> float:
    return 0 if x is None else x


def _esc(value: Any) -> str:
    """User data (segment values, reasons) as plotly's pseudo-HTML text, so '<' shows as '<'."""
    return html.escape(str(value), quote=False)


def _plural(n: int, noun: str) -> str:
    return f"{fmt_count(n)} {noun}{'' if n == 1 else 's'}"


def _segment_columns(rows: Rows, known: set[str]) -> list[str]:
    """Columns that are neither the metric's own nor known: the segment columns, in row order."""
    return [k for k in rows[0] if k not in known] if rows else []


def kpi_label(kpi: str) -> str:
    """How a weekly KPI is named on the page: 'reached_sql' -> 'Reached SQL'."""
    fixed = {
        "new_leads": "New leads",
        "exits": "Exits",
        "sql_rate": "SQL rate (MQL → SQL)",
        "median_days_lead_to_sql": "Median days lead → SQL",
        "immature": "Immature SQL-rate week",
    }
    if kpi in fixed:
        return fixed[kpi]
    if kpi.startswith("reached_"):
        return f"Reached {theme.stage_label(kpi[len('reached_'):])}"
    return theme.stage_label(kpi)


# --------------------------------------------------------------------------- funnel


COHORT_VIEW_LABEL = "Cohort view"
COHORT_VIEW_NOTE = "leads entering the funnel in the period: the stage each reached by the as-of date"
PERIOD_VIEW_LABEL = "Period view"
PERIOD_VIEW_NOTE = "leads reaching each stage during the period, whichever week they entered"


def funnel_figure(
    rows: Rows, *, stages: tuple[str, ...] | None = None, title: str | None = None, period: bool = True
) -> go.Figure:
    """The cohort view (a funnel with step and cumulative rates) beside the period view (`funnel` rows).

    The cohort view follows the leads that entered the first stage in the period; the period view
    counts the leads whose reached_at(stage) falls in the period, whatever their cohort: the
    period's activity, not a conversion, so it is drawn as plain bars without rates. Both share
    the stage axis. `period=False` (or rows without `period_reached`) draws the cohort view alone.
    customdata per bar: {"stage": stage, "view": "cohort" | "period"}.
    """
    title = title or "Funnel: leads reaching each stage"
    period = period and bool(rows) and all(r.get("period_reached") is not None for r in rows)
    has_cohort = bool(rows) and any(_num(r["reached"]) for r in rows)
    has_period = period and any(_num(r["period_reached"]) for r in rows)
    if not has_cohort and not has_period:
        return empty_figure(title=title)
    stages = stages or tuple(r["stage"] for r in rows)
    labels = [theme.stage_label(r["stage"]) for r in rows]
    colors = [theme.stage_color(r["stage"], stages) for r in rows]
    if period:
        fig = make_subplots(
            rows=1,
            cols=2,
            shared_yaxes=True,
            horizontal_spacing=0.05,
            column_widths=[0.56, 0.44],
            subplot_titles=(
                f"<b>{COHORT_VIEW_LABEL}</b><br>{COHORT_VIEW_NOTE}",
                f"<b>{PERIOD_VIEW_LABEL}</b><br>{PERIOD_VIEW_NOTE}",
            ),
        )
        # The view labels sit left-aligned over their panels.
        for annotation, axis in zip(fig.layout.annotations, (fig.layout.xaxis, fig.layout.xaxis2)):
            annotation.update(x=axis.domain[0], xanchor="left", align="left", font=dict(size=12, color=theme.TEXT_COLOR))
    else:
        fig = go.Figure()
    if has_cohort:
        cohort = rows[0]["reached"]
        text, hover = [], []
        for i, (r, label) in enumerate(zip(rows, labels)):
            cum = r["cumulative_rate"]
            text.append(fmt_count(r["reached"]) if i == 0 else f"{fmt_count(r['reached'])} · {fmt_pct(cum)}")
            lines = [f"<b>{label}</b> · {COHORT_VIEW_LABEL.lower()}", f"Reached: {fmt_count(r['reached'])} leads of the cohort"]
            if i > 0:
                prev = rows[i - 1]
                lines.append(
                    f"Step from {theme.stage_label(prev['stage'])}: {fmt_pct(r['step_rate'])}"
                    f" ({fmt_count(r['reached'])} of {fmt_count(prev['reached'])})"
                )
                lines.append(f"Cumulative: {fmt_pct(cum)} of the {fmt_count(cohort)}-lead cohort")
            if r.get("period_reached") is not None:
                lines.append(f"Reached it in the period (any cohort): {fmt_count(r['period_reached'])}")
            hover.append("<br>".join(lines))
        funnel = go.Funnel(
            y=labels,
            x=[r["reached"] for r in rows],
            text=text,
            textinfo="text",
            textposition="auto",
            marker=dict(color=colors),
            connector=dict(fillcolor=theme.GRID_COLOR, line=dict(width=0)),
            hovertext=hover,
            hovertemplate=HOVER,
            customdata=[{"stage": r["stage"], "view": "cohort"} for r in rows],
            name=COHORT_VIEW_LABEL,
        )
        if period:
            fig.add_trace(funnel, row=1, col=1)
        else:
            fig.add_trace(funnel)
    elif period:
        fig.add_annotation(
            text="<b>No lead entered the funnel in the period</b>",
            x=sum(fig.layout.xaxis.domain) / 2, y=0.5, xref="paper", yref="paper", showarrow=False,
            font=dict(size=13, color=theme.MUTED_TEXT),
        )
    if period:
        hover = [
            f"<b>{label}</b> · {PERIOD_VIEW_LABEL.lower()}<br>"
            f"{_plural(_num(r['period_reached']), 'lead')} reached {label} during the period,<br>"
            "whichever week they entered the funnel (a count, not a conversion rate)"
            for r, label in zip(rows, labels)
        ]
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[_num(r["period_reached"]) for r in rows],
                orientation="h",
                text=[fmt_count(r["period_reached"]) for r in rows],
                textposition="auto",
                marker=dict(color=colors, opacity=0.8),
                hovertext=hover,
                hovertemplate=HOVER,
                customdata=[{"stage": r["stage"], "view": "period"} for r in rows],
                name=PERIOD_VIEW_LABEL,
            ),
            row=1,
            col=2,
        )
        fig.update_xaxes(showgrid=False, showticklabels=False, showline=False, ticks="", row=1, col=1)
        fig.update_xaxes(tickformat=",", rangemode="tozero", row=1, col=2)
        fig.update_yaxes(categoryorder="array", categoryarray=labels, autorange="reversed", showgrid=False, showline=False, ticks="")
        return _layout(
            fig,
            title,
            xaxis=dict(title=dict(text="Leads of the cohort (count)")),
            xaxis2=dict(title=dict(text="Leads reaching the stage in the period (count)")),
            showlegend=False,
            margin=dict(t=96),
        )
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text="Leads reaching the stage (count)"), showgrid=False),
        yaxis=dict(title=dict(text=None), showgrid=False, showline=False, ticks=""),
        showlegend=False,
    )


# --------------------------------------------------------------------------- stage accounting


def stage_accounting_figure(
    rows: Rows,
    outcomes: Sequence[str] | None = None,
    *,
    percent: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Where each stage's spells went: advanced, exited to each outcome, regressed, still open.

    `outcomes` are the configured outcomes (default: the `exited_<outcome>` columns found).
    Counts by default; `percent=True` shows shares of the spells entered.
    customdata per bar: {"stage": stage, "next": "advanced" | "exited" | "regressed" | "open"},
    plus "outcome" for exits.
    """
    title = title or "What happened to each stage's spells"
    if not rows or not any(_num(r["entered"]) for r in rows):
        return empty_figure(title=title)
    if outcomes is None:
        outcomes = [k[len("exited_"):] for k in rows[0] if k.startswith("exited_")]
    outcomes = tuple(outcomes)
    parts: list[tuple[str, str, str, dict]] = [("advanced", "Advanced", theme.ADVANCED_COLOR, {"next": "advanced"})]
    for o in outcomes:
        parts.append(
            (f"exited_{o}", f"Exited: {o}", theme.outcome_color(o, outcomes), {"next": "exited", "outcome": o})
        )
    parts += [
        ("regressed", "Went back", theme.REGRESSED_COLOR, {"next": "regressed"}),
        ("open", "Still open", theme.OPEN_COLOR, {"next": "open"}),
    ]
    labels = [theme.stage_label(r["stage"]) for r in rows]
    fig = go.Figure()
    for column, name, color, drill in parts:
        counts = [_num(r.get(column)) for r in rows]
        shares = [_share(c, r["entered"]) for c, r in zip(counts, rows)]
        hover = [
            f"<b>{label}</b>: {fmt_count(r['entered'])} spells entered<br>"
            f"{name}: {fmt_count(c)} ({fmt_pct(s)})"
            for label, r, c, s in zip(labels, rows, counts, shares)
        ]
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[_num(s) for s in shares] if percent else counts,
                orientation="h",
                name=name,
                marker=dict(color=color),
                hovertext=hover,
                hovertemplate=HOVER,
                customdata=[{"stage": r["stage"], **drill} for r in rows],
            )
        )
    xaxis = (
        dict(title=dict(text="Share of spells entered (%)"), tickformat=theme.PERCENT_AXIS_FORMAT)
        if percent
        else dict(title=dict(text="Spells entered in the period (count)"), tickformat=",")
    )
    return _layout(
        fig,
        title,
        barmode="stack",
        xaxis=xaxis,
        yaxis=dict(autorange="reversed", showgrid=False, title=dict(text=None)),
        # Seven or more categories wrap to several rows: below the plot they cannot cover the title.
        legend=dict(traceorder="normal", y=-0.2, yanchor="top"),
        margin=dict(b=120),
    )


# --------------------------------------------------------------------------- cohort heatmap


def cohort_heatmap_figure(rows: Rows, *, title: str | None = None) -> go.Figure:
    """Conversion of weekly cohorts (columns) for each stage pair (rows); immature cells faded and starred.

    Rows: {"week", "stage_pair", "rate", "cohort", "immature"} (and "converted" when known).
    Two heatmap traces share one colour axis: mature cells, then immature ones. Cells print their
    rate up to HEATMAP_TEXT_WEEKS weeks; wider grids leave it to colour and hover.
    customdata per cell: {"week": "YYYY-MM-DD", "stage_pair": pair} plus "from_stage"/"to_stage"
    when the rows carry them.
    """
    title = title or "Weekly cohort conversion"
    if not rows or not any(_num(r.get("cohort")) for r in rows):
        return empty_figure(title=title)
    weeks = sorted({_iso(r["week"]) for r in rows})
    pairs = list(dict.fromkeys(r["stage_pair"] for r in rows))
    shape = [[None] * len(weeks) for _ in pairs]
    z = {False: [row[:] for row in shape], True: [row[:] for row in shape]}
    # Each trace draws only its own cells: an explicit "" elsewhere, or plotly prints the other trace's gaps.
    text = {False: [[""] * len(weeks) for _ in pairs], True: [[""] * len(weeks) for _ in pairs]}
    hover = {False: [row[:] for row in shape], True: [row[:] for row in shape]}
    drill = [row[:] for row in shape]
    for r in rows:
        i, j = pairs.index(r["stage_pair"]), weeks.index(_iso(r["week"]))
        immature = bool(r.get("immature"))
        rate, cohort = r.get("rate"), _num(r.get("cohort"))
        converted = r.get("converted")
        if converted is None and rate is not None:
            converted = round(rate * cohort)
        lines = [f"<b>{_week_text(weeks[j])}</b> · {_esc(r['stage_pair'])}"]
        if rate is None:
            lines.append("No leads in this cohort")
        else:
            lines.append(f"{fmt_count(converted)} of {fmt_count(cohort)} converted ({fmt_pct(rate)})")
        if immature:
            lines.append(IMMATURE_NOTE)
        z[immature][i][j] = rate
        text[immature][i][j] = "" if rate is None else fmt_pct(rate) + ("*" if immature else "")
        hover[immature][i][j] = "<br>".join(lines)
        cell = {"week": weeks[j], "stage_pair": r["stage_pair"]}
        cell.update({k: r[k] for k in ("from_stage", "to_stage") if k in r})
        drill[i][j] = cell
    rates = [r["rate"] for r in rows if r.get("rate") is not None]
    fig = go.Figure()
    for immature in (False, True):
        fig.add_trace(
            go.Heatmap(
                x=weeks,
                y=pairs,
                z=z[immature],
                text=text[immature],
                texttemplate="%{text}" if len(weeks) <= HEATMAP_TEXT_WEEKS else "",
                textfont=dict(size=11),
                hovertext=hover[immature],
                hovertemplate=HOVER,
                hoverongaps=False,
                customdata=drill,
                coloraxis="coloraxis",
                opacity=0.45 if immature else 1.0,
                xgap=2,
                ygap=2,
                name="immature" if immature else "mature",
            )
        )
    fig.add_annotation(
        text="* faded cells are immature: part of the cohort is still inside the conversion window;"
        " blank cells: no lead reached the stage that week",
        x=0,
        y=1.0,
        xref="paper",
        yref="paper",
        xanchor="left",
        yanchor="bottom",
        yshift=4,
        showarrow=False,
        font=dict(size=11, color=theme.MUTED_TEXT),
    )
    return _layout(
        fig,
        title,
        coloraxis=dict(
            colorscale=theme.SEQUENTIAL_SCALE,
            cmin=0,
            cmax=max(rates) if rates and max(rates) > 0 else 1,
            colorbar=dict(title=dict(text="Rate"), tickformat=theme.PERCENT_AXIS_FORMAT, thickness=12),
        ),
        xaxis=dict(title=dict(text="Cohort week (starting Monday)"), type="category", showgrid=False),
        yaxis=dict(title=dict(text=None), autorange="reversed", showgrid=False),
        margin=dict(t=84),
    )


# --------------------------------------------------------------------------- segments


def segment_conversion_figure(
    rows: Rows,
    segment: str | Sequence[str] | None = None,
    *,
    overall_rate: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Conversion per segment value with its Wilson 95 % interval (`segment_conversion` rows).

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
        return empty_figure(title=title)

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

    fig = go.Figure()
    for name, (symbol, size, color) in groups.items():
        group = members[name]
        if not group:
            continue
        hover = []
        for r in group:
            lines = [
                f"<b>{label(r)}</b>",
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
            hover.append("<br>".join(lines))
        rates = [_num(r["rate"]) for r in group]
        fig.add_trace(
            go.Scatter(
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
                hovertext=hover,
                hovertemplate=HOVER,
                customdata=[{c: r[c] for c in columns} for r in group],
            )
        )
    if overall_rate is not None:
        fig.add_vline(
            x=overall_rate,
            line=dict(color=theme.REFERENCE_COLOR, dash="dash", width=1),
            annotation=dict(text=f"overall {fmt_pct(overall_rate)}", font=dict(size=11, color=theme.MUTED_TEXT)),
            annotation_position="top",
        )
    ticktext = []
    for r in ordered:
        if r["too_few"]:
            ticktext.append(f"<span style='color:{theme.GREY}'>{label(r)} · too few to judge</span>")
        elif r["significant"]:
            ticktext.append(f"<b>{label(r)}</b> ★")
        else:
            ticktext.append(label(r))
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


def mix_vs_rate_figure(rows: Rows, *, title: str | None = None) -> go.Figure:
    """Waterfall of the SQL-rate change: before -> mix effect -> rate effect -> after (`mix_vs_rate`).

    Uses the `(total)` row; hover lists each segment value's part.
    customdata per bar: {"step": "before" | "mix_effect" | "rate_effect" | "after"}.
    """
    title = title or "SQL rate change: mix vs rate"
    total = next((r for r in rows if r["segment"] == "(total)"), None)
    if total is None or not (_num(total["n_before"]) or _num(total["n_after"])):
        return empty_figure("No MQLs in either period match these filters", title=title)
    values = [r for r in rows if r["segment"] != "(total)"]

    def listing(key: Callable[[Mapping[str, Any]], float], line: Callable[[Mapping[str, Any]], str]) -> str:
        top = sorted(values, key=key)[:10]
        more = len(values) - len(top)
        return "<br>".join([line(r) for r in top] + ([f"… and {more} more"] if more > 0 else []))

    before = listing(
        lambda r: -_num(r["share_before"]),
        lambda r: f"{_esc(r['segment'])}: {fmt_pct(r['share_before'])} of MQLs, rate {fmt_pct(r['rate_before'])}",
    )
    after = listing(
        lambda r: -_num(r["share_after"]),
        lambda r: f"{_esc(r['segment'])}: {fmt_pct(r['share_after'])} of MQLs, rate {fmt_pct(r['rate_after'])}",
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
        f"<b>Before</b>: SQL rate {fmt_pct(total['rate_before'])} of {fmt_count(total['n_before'])} MQLs<br>{before}",
        f"<b>Mix effect</b>: {fmt_pp(total['mix_effect'])}<br>"
        f"who the MQLs were, at the before rates<br>{mix}",
        f"<b>Rate effect</b>: {fmt_pp(total['rate_effect'])}<br>"
        f"how each segment converted, at the after mix<br>{rate}",
        f"<b>After</b>: SQL rate {fmt_pct(total['rate_after'])} of {fmt_count(total['n_after'])} MQLs<br>{after}",
    ]
    steps = ["before", "mix_effect", "rate_effect", "after"]
    fig = go.Figure(
        go.Waterfall(
            x=["Before", "Mix effect", "Rate effect", "After"],
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
            name="SQL rate",
        )
    )
    return _layout(
        fig,
        title,
        showlegend=False,
        yaxis=dict(
            title=dict(text="SQL rate, MQL → SQL (%)"), tickformat=".1%", rangemode="tozero"
        ),
        xaxis=dict(title=dict(text=None), showgrid=False),
    )


# --------------------------------------------------------------------------- time in stage


def time_in_stage_figure(rows: Rows, business_days: bool = False, *, title: str | None = None) -> go.Figure:
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
        return empty_figure(title=title)
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
    title: str | None = None,
) -> go.Figure:
    """Kaplan-Meier step curves (`survival` rows): the share of spells still in a stage after so many days.

    Without a segment column: one curve per stage on one axis, in stage colours. With one (the
    column besides the metric's own): one panel per stage, one curve per segment value, a value
    keeping its colour (and its legend entry) across panels. Curves are steps (line_shape "hv")
    through the metric's points; the points where the curve reaches a Kaplan-Meier quantile
    (km_quantile) carry a marker, and a dotted line marks 50 %.
    customdata per point: {"stage", <segment column>: value (when segmented), "days"}.
    """
    unit = theme.day_unit(business_days)
    segments = _segment_columns(rows, _SURVIVAL_COLUMNS)
    segment = segments[0] if segments else None
    title = title or (f"Share still in the stage, by {segment}" if segment else "Share still in each stage (Kaplan-Meier)")
    if not rows:
        return empty_figure("No spells match these filters", title=title)
    curves: dict[tuple[str, Any], list[Mapping[str, Any]]] = {}
    for r in rows:
        curves.setdefault((r["stage"], r[segment] if segment else None), []).append(r)
    shown = _in_order([stage for stage, _ in curves], stages)
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
            customdata=[{"stage": stage, **({segment: value} if segment else {}), "days": p["days"]} for p in points],
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
    title: str | None = None,
) -> go.Figure:
    """How long spells last (`duration_distribution` rows): one panel per stage, a bar per bin of
    completed spells by duration (stage colour) with the spells still open stacked on it by their
    age so far (grey). Rows with a segment column are summed over its values. The last bin of a
    stage may have no end (every longer spell); it is drawn as wide as the others, labelled "≥".
    customdata per bar: {"stage", "min_days", "max_days" (None for the open-ended bin), "open": bool}.
    """
    unit = theme.day_unit(business_days)
    title = title or "How long spells last: completed by duration, open ones by age so far"
    bins: dict[tuple[str, float, float | None], list[int]] = {}
    for r in rows:
        counts = bins.setdefault((r["stage"], r["bin_start"], r["bin_end"]), [0, 0])
        counts[0] += r["completed"]
        counts[1] += r["open"]
    if not any(c + o for c, o in bins.values()):
        return empty_figure("No spells match these filters", title=title)
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
                        {"stage": stage, "min_days": a, "max_days": b, "open": kind == "open"} for a, b in edges
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


# --------------------------------------------------------------------------- disqualifiers


def _reason_labels(pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The reason as the label, with its outcome added where a reason appears under two outcomes."""
    reasons = [reason for _, reason in pairs]
    return {
        (outcome, reason): _esc(reason) if reasons.count(reason) == 1 else f"{_esc(reason)} ({outcome})"
        for outcome, reason in pairs
    }


def disqualifier_pareto_figure(
    rows: Rows, *, outcomes: Sequence[str] | None = None, title: str | None = None
) -> go.Figure:
    """Exits by reason, biggest first, coloured by outcome, with the cumulative share on a second
    axis (ungrouped `disqualifiers` rows). One bar trace per outcome, then the "Cumulative share" line.

    customdata per bar and per line point: {"outcome", "reason"}.
    """
    title = title or "Why leads leave the funnel"
    if not rows or not any(_num(r["exits"]) for r in rows):
        return empty_figure("No exits match these filters", title=title)
    ordered = sorted(rows, key=lambda r: (-r["exits"], r["outcome"], r["reason"]))
    labels = _reason_labels([(r["outcome"], r["reason"]) for r in ordered])
    present = list(dict.fromkeys(r["outcome"] for r in ordered))
    config_outcomes = tuple(outcomes) if outcomes else tuple(present)
    order = [o for o in config_outcomes if o in present] + [o for o in present if o not in config_outcomes]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for outcome in order:
        group = [r for r in ordered if r["outcome"] == outcome]
        fig.add_trace(
            go.Bar(
                x=[labels[(r["outcome"], r["reason"])] for r in group],
                y=[r["exits"] for r in group],
                name=outcome.capitalize(),
                marker=dict(color=theme.outcome_color(outcome, config_outcomes)),
                hovertext=[
                    f"<b>{_esc(r['reason'])}</b> · {r['outcome']}<br>{fmt_count(r['exits'])} exits,"
                    f" {fmt_pct(r['share'])} of all exits<br>Cumulative: {fmt_pct(r['cumulative_share'])}"
                    for r in group
                ],
                hovertemplate=HOVER,
                customdata=[{"outcome": r["outcome"], "reason": r["reason"]} for r in group],
            ),
            secondary_y=False,
        )
    fig.add_trace(
        go.Scatter(
            x=[labels[(r["outcome"], r["reason"])] for r in ordered],
            y=[r["cumulative_share"] for r in ordered],
            mode="lines+markers",
            name="Cumulative share",
            line=dict(color=theme.REFERENCE_COLOR, width=1.5),
            marker=dict(size=5, color=theme.REFERENCE_COLOR),
            hovertext=[
                f"Top {i} reasons: {fmt_pct(r['cumulative_share'])} of all exits" for i, r in enumerate(ordered, 1)
            ],
            hovertemplate=HOVER,
            customdata=[{"outcome": r["outcome"], "reason": r["reason"]} for r in ordered],
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title=dict(text="Exits (count)"), tickformat=",", secondary_y=False)
    fig.update_yaxes(
        title=dict(text="Cumulative share of exits (%)"),
        tickformat=theme.PERCENT_AXIS_FORMAT,
        range=[0, 1.05],
        showgrid=False,
        secondary_y=True,
    )
    return _layout(
        fig,
        title,
        barmode="stack",
        xaxis=dict(
            title=dict(text=None),
            type="category",
            categoryorder="array",
            categoryarray=[labels[(r["outcome"], r["reason"])] for r in ordered],
            tickangle=-30,
            showgrid=False,
        ),
    )


def _weeks_between(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=7 * k)).isoformat() for k in range((end - start).days // 7 + 1)]


def disqualifier_trend_figure(rows: Rows, *, top_n: int = 5, title: str | None = None) -> go.Figure:
    """Weekly exits for the top-N reasons (by exits over all weeks), plus "Other reasons"
    (`disqualifiers` rows with by="week"). Weeks with no exits show as 0.

    customdata per point: {"week": "YYYY-MM-DD", "outcome", "reason"}; {"week"} on "Other reasons".
    """
    title = title or f"Top {top_n} exit reasons by week"
    if not rows or not any(_num(r["exits"]) for r in rows):
        return empty_figure("No exits match these filters", title=title)
    weeks = sorted({_iso(r["week"]) for r in rows})
    weeks = _weeks_between(weeks[0], weeks[-1])
    totals: dict[tuple[str, str], int] = {}
    per_week: dict[tuple[str, str, str], int] = {}
    week_total = dict.fromkeys(weeks, 0)
    for r in rows:
        key, week = (r["outcome"], r["reason"]), _iso(r["week"])
        totals[key] = totals.get(key, 0) + r["exits"]
        per_week[(week, *key)] = per_week.get((week, *key), 0) + r["exits"]
        week_total[week] += r["exits"]
    top = sorted(totals, key=lambda k: (-totals[k], k))[:top_n]
    fig = go.Figure()

    def hover(week: str, name: str, n: int) -> str:
        return (
            f"<b>{_week_text(week)}</b><br>{name}: {fmt_count(n)} exits<br>"
            f"{fmt_pct(_share(n, week_total[week]))} of the week's {fmt_count(week_total[week])} exits"
        )

    for i, (outcome, reason) in enumerate(top):
        ys = [per_week.get((w, outcome, reason), 0) for w in weeks]
        name = f"{_esc(reason)} ({outcome})"
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=ys,
                mode="lines+markers",
                name=name,
                line=dict(color=theme.category_color(i), width=2),
                marker=dict(size=5),
                hovertext=[hover(w, name, n) for w, n in zip(weeks, ys)],
                hovertemplate=HOVER,
                customdata=[{"week": w, "outcome": outcome, "reason": reason} for w in weeks],
            )
        )
    if len(totals) > len(top):
        ys = [week_total[w] - sum(per_week.get((w, *k), 0) for k in top) for w in weeks]
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=ys,
                mode="lines",
                name="Other reasons",
                line=dict(color=theme.GREY, width=1.5, dash="dot"),
                hovertext=[hover(w, "Other reasons", n) for w, n in zip(weeks, ys)],
                hovertemplate=HOVER,
                customdata=[{"week": w} for w in weeks],
            )
        )
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text="Week (starting Monday)"), type="date", tickformat="%d %b"),
        yaxis=dict(title=dict(text="Exits (count)"), rangemode="tozero", tickformat=","),
    )


# --------------------------------------------------------------------------- weekly KPIs


def _kpi_kind(kpi: str) -> str:
    if kpi == "sql_rate":
        return "rate"
    if kpi.startswith("median_days"):
        return "days"
    return "count"


def weekly_trend_figure(
    rows: Rows,
    kpis: Sequence[str] | None = None,
    *,
    business_days: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Small multiples, one panel per chosen KPI over the weeks (`weekly_kpis` long rows).

    kpis default: every KPI in the rows except the `immature` flag. sql_rate weeks whose MQL
    cohort is immature get open markers and say so in the hover. One trace per KPI, named by its kpi.
    customdata per point: {"week": "YYYY-MM-DD", "kpi": kpi}.
    """
    title = title or "Weekly KPIs"
    available = list(dict.fromkeys(r["kpi"] for r in rows))
    kpis = [k for k in (kpis if kpis is not None else available) if k != "immature" and k in available]
    chosen = [r for r in rows if r["kpi"] in kpis]
    if not chosen or not any(r["value"] for r in chosen):
        return empty_figure(title=title)
    immature = {_iso(r["week"]) for r in rows if r["kpi"] == "immature" and r["value"]}
    fig = make_subplots(
        rows=len(kpis),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / len(kpis)),
        subplot_titles=[kpi_label(k) for k in kpis],
    )
    for n, kpi in enumerate(kpis, 1):
        series = sorted((r for r in chosen if r["kpi"] == kpi), key=lambda r: _iso(r["week"]))
        weeks = [_iso(r["week"]) for r in series]
        kind = _kpi_kind(kpi)
        flagged = [kind == "rate" and w in immature for w in weeks]
        hover = []
        for r, week, flag in zip(series, weeks, flagged):
            value, delta_week, delta_4w = _kpi_texts(kpi, r, business_days)
            lines = [
                f"<b>{_week_text(week)}</b>",
                f"{kpi_label(kpi)}: {value}",
                f"vs last week: {delta_week} · vs 4-week mean: {delta_4w}",
            ]
            if flag:
                lines.append(IMMATURE_NOTE)
            hover.append("<br>".join(lines))
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=[r["value"] for r in series],
                mode="lines+markers",
                name=kpi,
                line=dict(color="#225EA8", width=2),
                marker=dict(
                    size=7,
                    color="#225EA8",
                    symbol=["circle-open" if f else "circle" for f in flagged],
                ),
                hovertext=hover,
                hovertemplate=HOVER,
                customdata=[{"week": w, "kpi": kpi} for w in weeks],
                showlegend=False,
            ),
            row=n,
            col=1,
        )
        axis = dict(rangemode="tozero")
        if kind == "rate":
            axis.update(tickformat=theme.PERCENT_AXIS_FORMAT, title=dict(text="%"))
        elif kind == "days":
            axis.update(tickformat=theme.DAYS_FORMAT, title=dict(text=theme.day_unit(business_days)))
        else:
            axis.update(tickformat=",", title=dict(text="count"))
        fig.update_yaxes(row=n, col=1, **axis)
    fig.update_xaxes(type="date", tickformat="%d %b")
    fig.update_xaxes(title=dict(text="Week (starting Monday)"), row=len(kpis), col=1)
    if immature and "sql_rate" in kpis:
        fig.add_annotation(
            text="open markers: immature weeks, part of the MQL cohort is still inside the conversion window",
            x=0,
            y=0,
            xref="paper",
            yref="paper",
            yshift=-56,
            xanchor="left",
            yanchor="top",
            showarrow=False,
            font=dict(size=11, color=theme.MUTED_TEXT),
        )
    for annotation in fig.layout.annotations[: len(kpis)]:
        annotation.update(x=0, xanchor="left", font=dict(size=12, color=theme.TEXT_COLOR))
    return _layout(fig, title, height=110 + 160 * len(kpis), margin=dict(b=80))


def _kpi_texts(kpi: str, r: Mapping[str, Any], business_days: bool) -> tuple[str, str, str]:
    """value, change vs last week, change vs the 4-week mean: rates in %, their changes in pp."""
    kind = _kpi_kind(kpi)
    if kind == "rate":
        return fmt_pct(r["value"]), fmt_pp(r["delta_week"]), fmt_pp(r["delta_4w"])
    if kind == "days":
        return (
            fmt_days(r["value"], business_days),
            theme.fmt_signed_days(r["delta_week"], business_days),
            theme.fmt_signed_days(r["delta_4w"], business_days),
        )
    return fmt_count(r["value"]), theme.fmt_signed_count(r["delta_week"]), theme.fmt_signed_count(r["delta_4w"], 1)


LOWER_IS_BETTER = ("exits", "median_days_lead_to_sql")


def _tone(kpi: str, direction: str | None) -> str:
    if direction not in ("up", "down"):
        return "neutral"
    good = direction == ("down" if kpi in LOWER_IS_BETTER else "up")
    return "good" if good else "bad"


def kpi_card_values(
    rows: Rows, week: date | str | None = None, *, business_days: bool = False
) -> list[dict[str, Any]]:
    """The KPI cards of one week (default: the latest) from `weekly_kpis` rows, as plain data.

    One dict per KPI in row order (the `immature` flag folds into sql_rate's card):
    {kpi, label, value_text, delta_week_text, delta_4w_text, direction, tone, immature}, with direction
    "up" / "down" / "flat" against last week, or None without a previous week, and tone "good" /
    "bad" / "neutral" (more exits or more days to SQL is bad news). Rates are shown
    as percentages and their changes in percentage points; days with one decimal.
    """
    if not rows:
        return []
    target = _iso(week) if week is not None else max(_iso(r["week"]) for r in rows)
    of_week = [r for r in rows if _iso(r["week"]) == target]
    immature = any(r["kpi"] == "immature" and r["value"] for r in of_week)
    cards = []
    for r in of_week:
        kpi = r["kpi"]
        if kpi == "immature":
            continue
        value, delta_week, delta_4w = _kpi_texts(kpi, r, business_days)
        d = r["delta_week"]
        direction = None if d is None else "up" if d > 1e-12 else "down" if d < -1e-12 else "flat"
        cards.append(
            {
                "kpi": kpi,
                "label": kpi_label(kpi),
                "value_text": value,
                "delta_week_text": delta_week,
                "delta_4w_text": delta_4w,
                "direction": direction,
                "tone": _tone(kpi, direction),
                "immature": _kpi_kind(kpi) == "rate" and immature,
            }
        )
    return cards


# --------------------------------------------------------------------------- score bands


def _band_bounds(band: str) -> tuple[int | None, int | None]:
    try:
        low, high = (int(p) for p in band.split("-"))
    except ValueError:
        return None, None
    return low, high


def score_band_figure(rows: Rows, *, title: str | None = None) -> go.Figure:
    """Leads per score band (bars) and their MQL and SQL rates (lines, second axis) (`score_bands`).

    Traces: "Leads" bar, "MQL rate" (mqls / leads) and "SQL rate" (sqls / mqls) lines.
    customdata per bar and point: {"band", "score_min", "score_max"} (bounds inclusive).
    """
    title = title or "Conversion by lead score"
    if not rows or not any(_num(r["leads"]) for r in rows):
        return empty_figure("No scored leads match these filters", title=title)
    ordered = sorted(rows, key=lambda r: (_band_bounds(r["band"])[0] is None, _band_bounds(r["band"])[0] or 0))
    bands = [r["band"] for r in ordered]
    drill = [{"band": b, "score_min": _band_bounds(b)[0], "score_max": _band_bounds(b)[1]} for b in bands]
    hover = [
        f"<b>Score {r['band']}</b><br>{fmt_count(r['leads'])} leads<br>"
        f"{fmt_count(r['mqls'])} reached MQL ({fmt_pct(r['mql_rate'])} of leads)<br>"
        f"{fmt_count(r['sqls'])} reached SQL ({fmt_pct(r['sql_rate'])} of MQLs)"
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
        ("MQL rate", "mql_rate", "mql", "dash", "diamond"),
        ("SQL rate", "sql_rate", "sql", "solid", "circle"),
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


# --------------------------------------------------------------------------- one lead


def lead_timeline_figure(
    rows: Rows,
    as_of: datetime,
    stages: Sequence[str],
    outcomes: Sequence[str],
    *,
    business_days: bool = False,
    title: str | None = None,
) -> go.Figure:
    """One lead's spells (`lead_history` rows) as bars from entry to exit (to as_of while current).

    Rows are the stages, funnel order then outcomes; a stage entered twice shows two bars on its row.
    customdata per bar: {"spell_no": n}.
    """
    title = title or "Timeline"
    if not rows:
        return empty_figure("No spells by the as-of date", title=title)
    used = {r["stage"] for r in rows}
    order = [s for s in (*stages, *outcomes) if s in used] + sorted(used - set(stages) - set(outcomes))
    fig = go.Figure()
    for r in rows:
        stage = r["stage"]
        start = r["entered_at"]
        end = r["exited_at"] or as_of
        colour = theme.stage_color(stage, tuple(stages)) if stage in stages else theme.outcome_color(stage, tuple(outcomes))
        lines = [
            f"<b>{theme.stage_label(stage)}</b> · spell {r['spell_no']}",
            f"entered {start:%Y-%m-%d %H:%M}",
            (f"left {r['exited_at']:%Y-%m-%d %H:%M} for {theme.stage_label(r['next_stage'])}" if r["exited_at"] else "current at the as-of date"),
            f"{fmt_days(r['days'], business_days)} in the stage" + (" so far" if r["current"] else ""),
        ]
        if r.get("reason"):
            lines.append(f"reason: {_esc(r['reason'])}")
        # A zero-length spell (two labels at one instant) still gets a visible sliver.
        width_ms = max((end - start).total_seconds() * 1000, 3_600_000)
        fig.add_trace(
            go.Bar(
                x=[width_ms],
                base=[start],
                y=[theme.stage_label(stage)],
                orientation="h",
                marker=dict(color=colour, line=dict(width=0), opacity=0.55 if r["current"] else 1.0),
                text=[fmt_days(r["days"], business_days)],
                textposition="inside",
                insidetextanchor="start",
                hovertext=["<br>".join(lines)],
                hovertemplate=HOVER,
                customdata=[{"spell_no": r["spell_no"]}],
                showlegend=False,
                name=theme.stage_label(stage),
            )
        )
    fig.add_vline(x=as_of, line=dict(color=theme.REFERENCE_COLOR, dash="dot", width=1))
    fig.add_annotation(x=as_of, y=1.02, yref="paper", text="as of", showarrow=False, font=dict(size=11, color=theme.MUTED_TEXT))
    return _layout(
        fig,
        title,
        barmode="overlay",
        xaxis=dict(type="date", title=dict(text=None)),
        yaxis=dict(
            title=dict(text=None),
            categoryorder="array",
            categoryarray=[theme.stage_label(s) for s in order],
            autorange="reversed",
            showgrid=False,
        ),
        height=max(220, 90 + 44 * len(order)),
    )
