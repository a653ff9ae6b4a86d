"""Weekly review figures: the KPI trend and the values of the KPI cards."""

from __future__ import annotations

import html as markup
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import plotly.graph_objects as go
from dash import dcc, html
from plotly.subplots import make_subplots

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import (
    EMPTY_MESSAGE,
    HOVER,
    IMMATURE_NOTE,
    WEEK_TICK0,
    Rows,
    _iso,
    _layout,
    _week_text,
    empty_figure,
    kpi_label,
)
from funnelboard.dashboard.theme import fmt_count, fmt_days, fmt_pct, fmt_pp

RATES = ("key_rate", "win_rate")


def _kpi_kind(kpi: str) -> str:
    if kpi in RATES:
        return "rate"
    if kpi.startswith("median_days"):
        return "days"
    return "count"


def weekly_trend_figure(
    rows: Rows,
    kpis: Sequence[str] | None = None,
    *,
    names: Mapping[str, str] | None = None,
    business_days: bool = False,
    mature_only: bool = False,
    title: str | None = None,
    empty: str | None = None,
) -> go.Figure:
    """Small multiples, one panel per chosen KPI over the weeks (`weekly_kpis` long rows).

    kpis default: every KPI in the rows except the `immature` flag; `names` names them (kpi_names).
    key_rate weeks whose cohort is immature get open markers and say so in the hover; with
    `mature_only` they are left out of the rate's line, and a note says how many. One trace per
    KPI, named by its kpi. customdata per point: {"week": "YYYY-MM-DD", "kpi": kpi}.
    """
    title = title or "Weekly KPIs"
    available = list(dict.fromkeys(r["kpi"] for r in rows))
    kpis = [k for k in (kpis if kpis is not None else available) if k != "immature" and k in available]
    chosen = [r for r in rows if r["kpi"] in kpis]
    if not chosen or not any(r["value"] for r in chosen):
        return empty_figure(empty or EMPTY_MESSAGE, title=title)
    immature = {_iso(r["week"]) for r in rows if r["kpi"] == "immature" and r["value"]}
    if mature_only:
        chosen = [{**r, "value": None} if _kpi_kind(r["kpi"]) == "rate" and _iso(r["week"]) in immature else r for r in chosen]
    fig = make_subplots(
        rows=len(kpis),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / len(kpis)),
        subplot_titles=[kpi_label(k, names) for k in kpis],
    )
    for n, kpi in enumerate(kpis, 1):
        series = sorted((r for r in chosen if r["kpi"] == kpi), key=lambda r: _iso(r["week"]))
        fig.add_trace(_kpi_trace(kpi, series, immature, business_days, names), row=n, col=1)
        fig.update_yaxes(row=n, col=1, **_kpi_axis(kpi, business_days))
    fig.update_xaxes(type="date", tickformat="%d %b", tick0=WEEK_TICK0)
    fig.update_xaxes(title=dict(text="Week (starting Monday)"), row=len(kpis), col=1)
    rate_kpis = [k for k in kpis if _kpi_kind(k) == "rate"]
    if immature and rate_kpis:
        weeks_shown = {_iso(r["week"]) for r in rows}
        n = len(immature & weeks_shown)
        what = f"{n} immature week{'' if n == 1 else 's'} of {kpi_label(rate_kpis[0], names)}"
        note = (f"{what} left out: their cohorts are still converting" if mature_only
                else f"open markers: {what}, their cohorts still converting")
        fig.add_annotation(
            text=note,
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


def _kpi_trace(kpi: str, series: Rows, immature: set[str], business_days: bool, names: Mapping[str, str] | None = None) -> go.Scatter:
    """One KPI's line over the weeks; rate weeks with an immature cohort get open markers."""
    weeks = [_iso(r["week"]) for r in series]
    flagged = [_kpi_kind(kpi) == "rate" and w in immature for w in weeks]
    hover = []
    for r, week, flag in zip(series, weeks, flagged):
        value, delta_week, delta_4w = _kpi_texts(kpi, r, business_days)
        lines = [
            f"<b>{_week_text(week)}</b>",
            f"{kpi_label(kpi, names)}: {value}",
            f"vs last week: {delta_week} · vs 4-week mean: {delta_4w}",
        ]
        if flag:
            lines.append(IMMATURE_NOTE)
        hover.append("<br>".join(lines))
    return go.Scatter(
        x=weeks,
        y=[r["value"] for r in series],
        mode="lines+markers",
        name=kpi,
        line=dict(color="#225EA8", width=2),
        marker=dict(size=7, color="#225EA8", symbol=["circle-open" if f else "circle" for f in flagged]),
        hovertext=hover,
        hovertemplate=HOVER,
        customdata=[{"week": w, "kpi": kpi} for w in weeks],
        showlegend=False,
    )


def _kpi_axis(kpi: str, business_days: bool) -> dict:
    """A KPI panel's y axis: % for rates, days for durations, a count otherwise."""
    kind = _kpi_kind(kpi)
    if kind == "rate":
        return dict(rangemode="tozero", tickformat=theme.PERCENT_AXIS_FORMAT, title=dict(text="%"))
    if kind == "days":
        return dict(rangemode="tozero", tickformat=theme.DAYS_FORMAT, title=dict(text=theme.day_unit(business_days)))
    return dict(rangemode="tozero", tickformat=",", title=dict(text="count"))


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


LOWER_IS_BETTER = ("exits", "median_days_to_target", "lost")


def _tone(kpi: str, direction: str | None) -> str:
    if direction not in ("up", "down"):
        return "neutral"
    good = direction == ("down" if kpi in LOWER_IS_BETTER else "up")
    return "good" if good else "bad"


def kpi_card_values(
    rows: Rows, week: date | str | None = None, *, names: Mapping[str, str] | None = None, business_days: bool = False
) -> list[dict[str, Any]]:
    """The KPI cards of one week (default: the latest) from `weekly_kpis` rows, as plain data.

    One dict per KPI in row order (the `immature` flag folds into key_rate's card; win_rate and
    lost are left out while the data records no loss, their values None):
    {kpi, label, value_text, delta_week_text, delta_4w_text, direction, tone, immature, immature_note, footnote}, with direction
    "up" / "down" / "flat" against last week, or None without a previous week, and tone "good" /
    "bad" / "neutral" (more exits, losses or days to the key stage is bad news). Rates are shown
    as percentages and their changes in percentage points; days with one decimal. The footnote says
    what a conversion window does to the key rate's card (rows' `window_days`), else None; the
    immature_note why an immature key rate will rise (the window, or the maturity horizon), else None.
    """
    if not rows:
        return []
    target = _iso(week) if week is not None else max(_iso(r["week"]) for r in rows)
    of_week = [r for r in rows if _iso(r["week"]) == target]
    immature = any(r["kpi"] == "immature" and r["value"] for r in of_week)
    cards = []
    for r in of_week:
        kpi = r["kpi"]
        if kpi == "immature" or (kpi in ("win_rate", "lost") and r["value"] is None and r["previous"] is None):
            continue
        value, delta_week, delta_4w = _kpi_texts(kpi, r, business_days)
        d = r["delta_week"]
        direction = None if d is None else "up" if d > 1e-12 else "down" if d < -1e-12 else "flat"
        cards.append(
            {
                "kpi": kpi,
                "label": kpi_label(kpi, names),
                "value_text": value,
                "delta_week_text": delta_week,
                "delta_4w_text": delta_4w,
                "direction": direction,
                "tone": _tone(kpi, direction),
                "immature": kpi == "key_rate" and immature,
                "immature_note": _immature_note(r.get("window_days")) if kpi == "key_rate" and immature else None,
                "footnote": theme.fmt_window(r.get("window_days")) if kpi == "key_rate" else None,
            }
        )
    return cards


def _immature_note(window_days: int | None) -> str:
    """Why the key rate is still converting: its horizon is the conversion window when one is set."""
    if window_days:
        return (f"Some of this week's leads entered the cohort less than {window_days} days ago, the conversion window: "
                "the rate will still rise.")
    return ("Some of this week's leads are younger than the maturity horizon, the time 90 % of these conversions "
            "took: the rate will still rise.")


CHANGE_COLUMNS = (
    ("entered", "Entered", "a spell of the stage began"),
    ("advanced", "Advanced", "left the stage for a later one (a skip is one advance)"),
    ("went_back", "Went back", "left the stage for an earlier one"),
    ("exited", "Exited", "left the funnel for an outcome from this stage"),
    ("newly_stalled", "Newly stalled", "crossed the stage's stall threshold this week"),
    ("recovered", "Recovered", "left the stage after stalling in it"),
)


def changes_table(
    rows: Rows, exits: Rows, href: Callable[[dict[str, str | None]], str], *, partial: bool = False
) -> list:
    """'Changes this week' (rows of `changes`, `change_exits`) as a compact table, rows = stages in
    funnel order, each non-zero count a link made by href({"change": kind, "stage": stage}); the
    exits by outcome and reason under it, each linked the same way."""
    title = html.H2("Changes this week" + (" (to date)" if partial else ""), className="panel-title")
    if not any(r[k] for r in rows for k, _label, _help in CHANGE_COLUMNS):
        return [title, html.P("No lead entered, left or stalled in a stage this week.", className="muted")]
    head = html.Tr([html.Th("Stage", scope="col"),
                    *(html.Th(label, scope="col", title=help_text) for _k, label, help_text in CHANGE_COLUMNS)])
    body = []
    for r in rows:
        stage = r["stage"]
        named = stage != "(none)"
        cells = []
        for kind, label, _help in CHANGE_COLUMNS:
            n = r[kind]
            text = fmt_count(n)
            if n and named:
                cells.append(html.Td(dcc.Link(text, href=href({"change": kind, "stage": stage, "outcome": None, "reason": None}),
                                              title=f"{label} · {theme.stage_label(stage)}: the {text} changes"), className="num"))
            else:
                cells.append(html.Td(text, className="num zero" if not n else "num"))
        name = theme.stage_label(stage) if named else "(no stage before)"
        body.append(html.Tr([html.Th(name, scope="row"), *cells]))
    table = html.Table([html.Thead(head), html.Tbody(body)], className="changes-table")
    parts = [title, html.Div(table, className="changes-scroll")]
    if exits:
        items = [
            html.Li([
                dcc.Link(fmt_count(e["exited"]), href=href({"change": "exited", "stage": None, "outcome": e["outcome"], "reason": e["reason"]})),
                f" {theme.stage_label(e['outcome'])} · {e['reason']}",
            ])
            for e in exits
        ]
        parts += [html.H3("Exits by reason", className="changes-subtitle"), html.Ul(items, className="changes-exits")]
    parts.append(html.P("One count per move: a lead that made the same move twice this week counts twice.", className="muted"))
    return parts


def add_notes(fig: go.Figure, notes, rows: int = 1) -> go.Figure:
    """Annotations (funnelboard/core/annotations.py) on a weekly chart: a dotted line on each note's day
    across its `rows` stacked plots, and a short mark above the chart for each week with notes, whose
    hover is the whole of them. The marks read towards the middle of the chart and the weeks keep their
    range, so a mark's text never widens the axis (on a phone it would squeeze the weeks)."""
    line = dict(color=theme.REFERENCE_COLOR, dash="dot", width=1)
    for note in notes:
        x = note.day.isoformat()
        if getattr(fig, "_grid_ref", None) is None:  # one plot (no stacked rows)
            if fig.data:  # an empty chart's message has no axis to draw on
                fig.add_vline(x=x, line=line)
        else:
            for row in range(1, rows + 1):
                fig.add_vline(x=x, line=line, row=row, col=1)
    days = [date.fromisoformat(str(x)[:10]) for trace in fig.data for x in (trace.x if trace.x is not None else ()) if x is not None]
    if not notes or not days:
        return fig
    weeks: dict[date, list] = {}
    for note in notes:
        weeks.setdefault(note.day - timedelta(days=note.day.weekday()), []).append(note)
    first, last = min(days + [n.day for n in notes]), max(days + [n.day for n in notes])
    middle = first + (last - first) / 2
    for those in weeks.values():
        day = those[0].day
        text = those[0].text if len(those) == 1 else f"{len(those)} notes"
        short = text if len(text) <= 24 else text[:23] + "…"
        # plotly draws annotation text as HTML: a note reads as typed
        fig.add_annotation(x=day.isoformat(), y=1, xref="x", yref="paper", yanchor="bottom", xanchor="left" if day <= middle else "right",
                           showarrow=False, text=f"✎ {markup.escape(short)}",
                           hovertext="<br>".join(markup.escape(n.label()) for n in those),
                           font=dict(size=10, color=theme.MUTED_TEXT))
    fig.update_xaxes(range=[(first - timedelta(days=4)).isoformat(), (last + timedelta(days=4)).isoformat()])
    return fig
