"""One lead's timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go

from funnelboard.dashboard import theme
from funnelboard.dashboard.figures.common import (
    HOVER,
    Rows,
    _esc,
    _layout,
    empty_figure,
)
from funnelboard.dashboard.theme import fmt_days


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
