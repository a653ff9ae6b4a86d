"""Disqualifier figures: the Pareto of exit reasons and the top reasons by week."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import plotly.graph_objects as go

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import (
    HOVER,
    WEEK_TICK0,
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
from funnelboard.warehouse.metrics.disqualifiers import top_reasons

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
    for the first len(REASON_PALETTE) reasons. A missing reason is the palette's neutral grey and
    takes no slot; "Other reasons" is theme.GREY, dotted."""
    named = [key for key in dict.fromkeys(ranked) if key[1] != NO_REASON]
    colors = {key: REASON_PALETTE[i % len(REASON_PALETTE)] for i, key in enumerate(named)}
    return {**colors, **{key: NO_REASON_COLOR for key in ranked if key[1] == NO_REASON}}


def distinct_colors(shown: Sequence[tuple[str, str]], colors: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """The colours of the reasons one chart shows, from `colors` (reason_colors, in rank order): a
    reason that shares its palette slot with a higher-ranked one shown beside it (past the palette's
    length) takes the first colour no shown reason has, so a chart never draws two reasons alike
    while the palette has room. The grey of a missing reason is left as it is."""
    ranked = [key for key in colors if key in shown] + [key for key in shown if key not in colors]
    taken: set[str] = set()
    final = {}
    for key in ranked:
        color = colors.get(key, REASON_PALETTE[0])
        if color != NO_REASON_COLOR and color in taken:
            color = next((c for c in REASON_PALETTE if c not in taken), color)
        taken.add(color)
        final[key] = color
    return final


NO_REASON = "(no reason recorded)"  # the disqualifiers metric's reason for an exit without one
NO_REASON_COLOR = "#999999"  # the categorical palette's neutral grey
REASON_PALETTE = tuple(c for c in theme.CATEGORICAL if c != NO_REASON_COLOR)


def disqualifier_pareto_figure(
    rows: Rows, *, outcomes: Sequence[str] | None = None, title: str | None = None, empty: str | None = None
) -> go.Figure:
    """Exits by reason, biggest on top, as horizontal bars coloured by outcome (so a reason's label
    is read level at any width), with the cumulative share on a second, 0-100 % axis along the top
    (ungrouped `disqualifiers` rows). One bar trace per outcome, then the "Cumulative share" line.

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
    fig = go.Figure()
    for outcome in order:
        group = [r for r in ordered if r["outcome"] == outcome]
        fig.add_trace(
            go.Bar(
                y=[labels[(r["outcome"], r["reason"])] for r in group],
                x=[r["exits"] for r in group],
                orientation="h",
                name=outcome.capitalize(),
                marker=dict(color=theme.outcome_color(outcome, config_outcomes)),
                hovertext=[
                    f"<b>{_esc(r['reason'])}</b> · {r['outcome']}<br>{fmt_count(r['exits'])} exits,"
                    f" {fmt_pct(r['share'])} of all exits<br>Cumulative: {fmt_pct(r['cumulative_share'])}"
                    for r in group
                ],
                hovertemplate=HOVER,
                customdata=[{"outcome": r["outcome"], "reason": r["reason"]} for r in group],
            )
        )
    fig.add_trace(
        go.Scatter(
            y=[labels[(r["outcome"], r["reason"])] for r in ordered],
            x=[r["cumulative_share"] for r in ordered],
            xaxis="x2",
            orientation="h",  # no stacking here: it tells the chart's data table that y holds the reasons
            mode="lines+markers",
            name="Cumulative share",
            line=dict(color=theme.REFERENCE_COLOR, width=1.5),
            marker=dict(size=5, color=theme.REFERENCE_COLOR),
            hovertext=[
                f"Top {i} reasons: {fmt_pct(r['cumulative_share'])} of all exits" for i, r in enumerate(ordered, 1)
            ],
            hovertemplate=HOVER,
            customdata=[{"outcome": r["outcome"], "reason": r["reason"]} for r in ordered],
        )
    )
    height = max(360, 200 + 26 * len(ordered))
    return _layout(
        fig,
        title,
        barmode="stack",
        height=height,
        xaxis=dict(title=dict(text="Exits (count)"), tickformat=",", rangemode="tozero"),
        xaxis2=dict(
            title=dict(text=SHARE_AXIS_TITLE),
            overlaying="x",
            side="top",
            tickformat=theme.PERCENT_AXIS_FORMAT,
            tickvals=[0, 0.25, 0.5, 0.75, 1],
            range=[0, 1.05],
            showgrid=False,
        ),
        yaxis=dict(
            title=dict(text=None),
            type="category",
            categoryorder="array",
            categoryarray=[labels[(r["outcome"], r["reason"])] for r in ordered],
            autorange="reversed",
            showgrid=False,
        ),
        # under the count axis's title (the share axis takes the top); it pushes the margin as it wraps
        legend=dict(y=-LEGEND_GAP / (height - 112 - 64), yanchor="top"),
        margin=dict(t=112),
    )


SHARE_AXIS_TITLE = "Cumulative share (%)"
LEGEND_GAP = 56  # px from the plot's bottom edge to a legend below it: past the axis's ticks and title


def _weeks_between(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=7 * k)).isoformat() for k in range((end - start).days // 7 + 1)]


def disqualifier_trend_figure(
    rows: Rows, *, top_n: int = 5, title: str | None = None, empty: str | None = None, colors: dict | None = None
) -> go.Figure:
    """Weekly exits for the top-N reasons (by exits over all weeks), plus "Other reasons"
    (`disqualifiers` rows with by="week"). Weeks with no exits show as 0. `colors`: reason_colors of
    the unfiltered data (else the top-N's own ranks), made distinct among the lines drawn.

    customdata per point: {"week": "YYYY-MM-DD", "outcome", "reason"}; on "Other reasons" {"week",
    "other_than_top": top_n} (the spell list's filter for the exits outside the same top N).
    """
    title = title or f"Top {top_n} exit reasons by week"
    if not rows or not any(_num(r["exits"]) for r in rows):
        return empty_figure(empty or "No exits match these filters", title=title)
    weeks = sorted({_iso(r["week"]) for r in rows})
    weeks = _weeks_between(weeks[0], weeks[-1])
    per_week: dict[tuple[str, str, str], int] = {}
    week_total = dict.fromkeys(weeks, 0)
    for r in rows:
        key, week = (r["outcome"], r["reason"]), _iso(r["week"])
        per_week[(week, *key)] = per_week.get((week, *key), 0) + r["exits"]
        week_total[week] += r["exits"]
    top = top_reasons(rows, top_n)
    colors = distinct_colors(top, colors or reason_colors(top))
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
    if len({(r["outcome"], r["reason"]) for r in rows}) > len(top):
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
                customdata=[{"week": w, "other_than_top": top_n} for w in weeks],
            )
        )
    return _layout(
        fig,
        title,
        xaxis=dict(title=dict(text="Week (starting Monday)"), type="date", tickformat="%d %b", tick0=WEEK_TICK0),
        yaxis=dict(title=dict(text="Exits (count)"), rangemode="tozero", tickformat=","),
        # below the plot: six long names wrap to six rows at phone width, over the title if on top
        height=TREND_HEIGHT,
        legend=dict(y=-LEGEND_GAP / (TREND_HEIGHT - 64 - 48), yanchor="top"),
    )


TREND_HEIGHT = 480
