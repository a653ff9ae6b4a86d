"""Disqualifier figures: the Pareto of exit reasons and the top reasons by week."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import (
    HOVER,
    Rows,
    _esc,
    _iso,
    _layout,
    _num,
    _share,
    _week_text,
    empty_figure,
)
from funnelboard.dashboard.theme import fmt_count, fmt_pct

LABEL_CHARS = 28  # a longer reason is cut on the Pareto's axis (its hover keeps the whole text)


def _reason_labels(pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The reason as the label, with its outcome added where a reason appears under two outcomes;
    a long reason cut to LABEL_CHARS with an ellipsis unless two labels would then be the same."""
    reasons = [reason for _, reason in pairs]

    def label(outcome: str, reason: str, cut: bool) -> str:
        text = reason[: LABEL_CHARS - 1].rstrip() + "…" if cut and len(reason) > LABEL_CHARS else reason
        return _esc(text) if reasons.count(reason) == 1 else f"{_esc(text)} ({outcome})"

    short = {pair: label(*pair, cut=True) for pair in pairs}
    if len(set(short.values())) < len(short):
        return {pair: label(*pair, cut=False) for pair in pairs}
    return short


def reason_colors(ranked: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """One colour per (outcome, reason) for every chart that colours by reason: by the reason's rank
    in `ranked` (the unfiltered exits, biggest first), so a filter never recolours a reason; distinct
    for the first len(REASON_PALETTE) reasons. Grey stays for "Other reasons"."""
    return {key: REASON_PALETTE[i % len(REASON_PALETTE)] for i, key in enumerate(dict.fromkeys(ranked))}


REASON_PALETTE = tuple(c for c in theme.CATEGORICAL if c != "#999999")  # the palette's grey is "Other"


def disqualifier_pareto_figure(
    rows: Rows, *, outcomes: Sequence[str] | None = None, title: str | None = None, empty: str | None = None
) -> go.Figure:
    """Exits by reason, biggest first, coloured by outcome, with the cumulative share on a second
    axis (ungrouped `disqualifiers` rows). One bar trace per outcome, then the "Cumulative share" line.

    customdata per bar and per line point: {"outcome", "reason"}.
    """
    title = title or "Why leads leave the funnel"
    if not rows or not any(_num(r["exits"]) for r in rows):
        return empty_figure(empty or "No exits match these filters", title=title)
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
        tickvals=[0, 0.25, 0.5, 0.75, 1],
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


def disqualifier_trend_figure(
    rows: Rows, *, top_n: int = 5, title: str | None = None, empty: str | None = None, colors: dict | None = None
) -> go.Figure:
    """Weekly exits for the top-N reasons (by exits over all weeks), plus "Other reasons"
    (`disqualifiers` rows with by="week"). Weeks with no exits show as 0. `colors`: reason_colors of
    the unfiltered data (else the top-N's own ranks).

    customdata per point: {"week": "YYYY-MM-DD", "outcome", "reason"}; {"week"} on "Other reasons".
    """
    title = title or f"Top {top_n} exit reasons by week"
    if not rows or not any(_num(r["exits"]) for r in rows):
        return empty_figure(empty or "No exits match these filters", title=title)
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
    colors = {**reason_colors(top), **(colors or {})}
    fig = go.Figure()

    def hover(week: str, name: str, n: int) -> str:
        return (
            f"<b>{_week_text(week)}</b><br>{name}: {fmt_count(n)} exits<br>"
            f"{fmt_pct(_share(n, week_total[week]))} of the week's {fmt_count(week_total[week])} exits"
        )

    for outcome, reason in top:
        ys = [per_week.get((w, outcome, reason), 0) for w in weeks]
        name = f"{_esc(reason)} ({outcome})"
        fig.add_trace(
            go.Scatter(
                x=weeks,
                y=ys,
                mode="lines+markers",
                name=name,
                line=dict(color=colors[(outcome, reason)], width=2),
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
