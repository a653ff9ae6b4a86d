"""Speed to lead: how long leads waited for their first response, and how the key rate falls as the
wait grows (`speed_to_lead`, `response_bands`)."""

from __future__ import annotations

import plotly.graph_objects as go

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import HOVER, Rows, _esc, _layout, empty_figure
from funnelboard.dashboard.theme import fmt_count, fmt_pct

NO_ANSWER = "No lead in these filters was answered"


def _hours(x: float | None) -> str:
    return theme.NOT_AVAILABLE if x is None else f"{x:,.1f} h"


def response_time_figure(rows: Rows, segment: str | None, *, business: bool, sla_hours: float | None = None,
                         title: str | None = None, empty: str | None = None) -> go.Figure:
    """p50 (circle) to p90 (triangle) of the hours to the first response on the SLA's clock, one row per
    segment value (or one for all), the default SLA as a dashed line.

    customdata per point: {<segment>: value (when segmented), "quantile": "p50" | "p90"}."""
    clock = "business hours" if business else "hours"
    title = title or f"Time to first response ({clock})"
    if not rows or not any(r["answered"] for r in rows):
        return empty_figure(empty or NO_ANSWER, title=title)
    prefix = "business_hours" if business else "hours"
    labels = [_esc(r[segment]) if segment else "All leads" for r in rows]
    xs, ys, hover, drill, symbols = [], [], [], [], []
    for r, label in zip(rows, labels):
        counts = (f"{fmt_count(r['answered'])} of {fmt_count(r['leads'])} answered · "
                  f"{fmt_count(r['within_sla'])} of {fmt_count(r['judged'])} within the SLA ({fmt_pct(r['within_sla_share'])})")
        for q, symbol in (("p50", "circle"), ("p90", "triangle-right")):
            value = r[f"{q}_{prefix}"]
            if value is None:
                continue
            xs.append(value)
            ys.append(label)
            hover.append(f"<b>{label}</b><br>{q}: {_hours(value)} ({clock})<br>{counts}")
            drill.append({**({segment: r[segment]} if segment else {}), "quantile": q})
            symbols.append(symbol)
        xs.append(None)
        ys.append(None)
        hover.append(None)
        drill.append(None)
        symbols.append("circle")
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines+markers", name="p50 to p90", line=dict(color="#1D91C0", width=2),
                               marker=dict(color="#1D91C0", size=10, symbol=symbols), hovertext=hover, hovertemplate=HOVER,
                               customdata=drill))
    if sla_hours is not None:
        fig.add_vline(x=sla_hours, line=dict(color=theme.REFERENCE_COLOR, dash="dash", width=1),
                      annotation=dict(text=f"SLA {sla_hours:g} h", font=dict(size=11, color=theme.MUTED_TEXT)))
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text="Hours (● p50 ▶ p90)"), rangemode="tozero"),
        yaxis=dict(type="category", categoryorder="array", categoryarray=list(reversed(labels)), showgrid=False),
        showlegend=False,
        height=max(260, 120 + 36 * len(rows)),
    )


def response_bands_figure(rows: Rows, *, rate_name: str, title: str | None = None, empty: str | None = None) -> go.Figure:
    """The key rate by response band with its Wilson interval; a band of too few leads in grey.

    customdata per bar: {"band": name}."""
    title = title or f"{rate_name} by time to first response"
    if not rows or not any(r["leads"] for r in rows):
        return empty_figure(empty or "No leads match these filters", title=title)
    bands = [f"{r['band']}<br>n={fmt_count(r['leads'])}" for r in rows]
    colors = [theme.GREY if r["too_few"] else "#2B7BBA" for r in rows]
    rates = [r["rate"] for r in rows]
    upper = [None if r["rate"] is None else r["wilson_high"] - r["rate"] for r in rows]
    lower = [None if r["rate"] is None else r["rate"] - r["wilson_low"] for r in rows]
    hover = [
        f"<b>{r['band']}</b><br>{fmt_count(r['converted'])} of {fmt_count(r['leads'])} leads converted: {fmt_pct(r['rate'])}"
        + (f"<br>95% interval {fmt_pct(r['wilson_low'])} to {fmt_pct(r['wilson_high'])}" if r["leads"] else "")
        + ("<br>too few leads to judge" if r["too_few"] else "")
        for r in rows
    ]
    fig = go.Figure(go.Bar(
        x=bands, y=rates, name=rate_name, marker=dict(color=colors),
        error_y=dict(type="data", array=upper, arrayminus=lower, color=theme.REFERENCE_COLOR, thickness=1.2, width=6),
        hovertext=hover, hovertemplate=HOVER, customdata=[{"band": r["band"]} for r in rows],
    ))
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text="Time to the first response (calendar hours)"), type="category", showgrid=False),
        yaxis=dict(title=dict(text=f"{rate_name} (%)"), tickformat=theme.PERCENT_AXIS_FORMAT, rangemode="tozero"),
        showlegend=False,
    )
