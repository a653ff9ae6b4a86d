"""Funnel page figures: the cohort and period funnels, stage accounting and the weekly cohort heatmap."""

from __future__ import annotations

import html as markup
from collections.abc import Sequence
from datetime import timedelta

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import (
    EMPTY_MESSAGE,
    HOVER,
    IMMATURE_NOTE,
    Rows,
    _esc,
    _iso,
    _layout,
    _num,
    _plural,
    _share,
    _week_text,
    empty_figure,
)
from funnelboard.dashboard.theme import fmt_count, fmt_pct

HEATMAP_TEXT_WEEKS = 26  # wider cohort heatmaps print no rate in the cells (too narrow to read)


COHORT_VIEW_LABEL = "Cohort view"


COHORT_VIEW_NOTE = "leads entering the funnel in the period: the stage each reached by the as-of date"


PERIOD_VIEW_LABEL = "Period view"


PERIOD_VIEW_NOTE = "leads reaching each stage during the period, whichever week they entered"


HIT_AREA = "Click area"  # the name of the invisible traces that keep every stage's row clickable


def funnel_figure(
    rows: Rows, *, stages: tuple[str, ...] | None = None, title: str | None = None, empty: str | None = None, period: bool = True
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
        return empty_figure(empty or EMPTY_MESSAGE, title=title)
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
        funnel = _cohort_funnel(rows, labels, colors)
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
        fig.add_trace(_period_bars(rows, labels, colors), row=1, col=2)
    _add_hit_areas(fig, rows, labels, cohort=has_cohort, period=period)
    if period:
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


def _add_hit_areas(fig: go.Figure, rows: Rows, labels: list[str], *, cohort: bool, period: bool) -> None:
    """An invisible full-width bar behind each stage's row in each view, carrying that bar's
    customdata: a stage of 0 (or a few) leads has no area to click, its row still opens its list.
    The bars sit on a hidden x axis of their own (0-1) over the view's, so they change neither its
    range nor the real bars' hover: hoverinfo "none" shows no label but still sends the click."""
    views = ([("cohort", "x", "y")] if cohort else []) + ([("period", "x2", "y2")] if period else [])
    for view, under, y in views:
        axis = _next_axis(fig)
        fig.layout[f"xaxis{axis}"] = dict(overlaying=under, anchor=y, range=[0, 1], visible=False, fixedrange=True)
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[1] * len(rows),
                orientation="h",
                xaxis=f"x{axis}",
                yaxis=y,
                width=1,
                marker=dict(color="rgba(0,0,0,0)", line=dict(width=0)),
                hoverinfo="none",
                showlegend=False,
                customdata=[{"stage": r["stage"], "view": view} for r in rows],
                name=HIT_AREA,
            )
        )


def _next_axis(fig: go.Figure) -> int:
    """The number of the next free x axis (xaxis, xaxis2, ... taken)."""
    taken = [1] + [int(k[5:] or 1) for k in fig.layout.to_plotly_json() if k.startswith("xaxis")]
    return max(taken) + 1


def _cohort_funnel(rows: Rows, labels: list[str], colors: list[str]) -> go.Funnel:
    """The cohort view's funnel: each stage's count with its cumulative rate, the step rate on hover."""
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
    return go.Funnel(
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


def _period_bars(rows: Rows, labels: list[str], colors: list[str]) -> go.Bar:
    """The period view's bars: leads reaching each stage in the period, a count without rates."""
    hover = [
        f"<b>{label}</b> · {PERIOD_VIEW_LABEL.lower()}<br>"
        f"{_plural(_num(r['period_reached']), 'lead')} reached {label} during the period,<br>"
        "whichever week they entered the funnel (a count, not a conversion rate)"
        for r, label in zip(rows, labels)
    ]
    return go.Bar(
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
    )


def stage_accounting_figure(
    rows: Rows,
    outcomes: Sequence[str] | None = None,
    *,
    percent: bool = False,
    title: str | None = None, empty: str | None = None,
) -> go.Figure:
    """Where each stage's spells went: advanced, exited to each outcome, regressed, still open.

    `outcomes` are the configured outcomes (default: the `exited_<outcome>` columns found).
    Counts by default; `percent=True` shows shares of the spells entered.
    customdata per bar: {"stage": stage, "next": "advanced" | "exited" | "regressed" | "open"},
    plus "outcome" for exits.
    """
    title = title or "What happened to each stage's spells"
    if not rows or not any(_num(r["entered"]) for r in rows):
        return empty_figure(empty or EMPTY_MESSAGE, title=title)
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


def _immature_footnote(window_days: int | None) -> str:
    """What fades a cell, as cohort_conversion judges it: younger than the window when one is set,
    else than its pair's maturity horizon (docs/metrics.md, Maturity)."""
    if window_days:
        return f"* faded cells are immature: part of the cohort is younger than the {window_days}-day conversion window"
    return ("* faded cells are immature: part of the cohort is younger than its pair's maturity horizon"
            " (the time 90 % of that pair's conversions took; no conversion window)")


def cohort_heatmap_figure(rows: Rows, *, title: str | None = None, empty: str | None = None, notes: Sequence = ()) -> go.Figure:
    """Conversion of weekly cohorts (columns) for each stage pair (rows); immature cells faded and starred;
    a ✎ over each week with `notes` (funnelboard/core/annotations.py), the notes in its hover.

    Rows: {"week", "stage_pair", "rate", "cohort", "immature"} (and "converted" when known, and
    "window_days", which the footnote on faded cells names; without it, no window).
    Two heatmap traces share one colour axis: mature cells, then immature ones. Cells print their
    rate up to HEATMAP_TEXT_WEEKS weeks; wider grids leave it to colour and hover.
    customdata per cell: {"week": "YYYY-MM-DD", "stage_pair": pair} plus "from_stage"/"to_stage"
    when the rows carry them.
    """
    title = title or "Weekly cohort conversion"
    if not rows or not any(_num(r.get("cohort")) for r in rows):
        return empty_figure(empty or EMPTY_MESSAGE, title=title)
    weeks = sorted({_iso(r["week"]) for r in rows})
    pairs = list(dict.fromkeys(r["stage_pair"] for r in rows))
    z, text, hover, drill = _heatmap_cells(rows, weeks, pairs)
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
        text=_immature_footnote(rows[0].get("window_days")) + "; blank cells: no lead reached the stage that week",
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
    _note_marks(fig, notes, weeks)
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


def _note_marks(fig: go.Figure, notes: Sequence, weeks: list[str]) -> None:
    """A ✎ (with the count when several) over each cohort week holding a note; the hover lists them."""
    by_week: dict[str, list] = {}
    for note in notes:
        monday = (note.day - timedelta(days=note.day.weekday())).isoformat()
        if monday in weeks:
            by_week.setdefault(monday, []).append(note)
    for week, those in by_week.items():
        # plotly draws annotation text as HTML: a note reads as typed
        fig.add_annotation(x=week, y=1, xref="x", yref="paper", yanchor="bottom", showarrow=False,
                           text="✎" if len(those) == 1 else f"✎{len(those)}",
                           hovertext="<br>".join(markup.escape(n.label()) for n in those),
                           font=dict(size=12, color=theme.TEXT_COLOR))


def _heatmap_cells(rows: Rows, weeks: list[str], pairs: list[str]) -> tuple[dict, dict, dict, list]:
    """The heatmap's cell values, texts and hovers, split into mature (False) and immature (True)
    cells, and each cell's drill-down target."""
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
    return z, text, hover, drill
