"""What every figure shares: empty states, titles, hover text, number and week formatting."""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import plotly.graph_objects as go

from funnelboard.core.config import FunnelConfig
from funnelboard.dashboard import theme
from funnelboard.dashboard.theme import fmt_count

Rows = Sequence[Mapping[str, Any]]


EMPTY_MESSAGE = "Nothing to show for this view"


DEFAULT_HINT = None  # a page passes its own sentence (dashboard/notes.py: empty_for)


COMPLETED_LABEL = "Completed spells only"


KM_LABEL = "Kaplan-Meier, open spells censored"


IMMATURE_NOTE = "immature: part of the cohort is younger than the maturity horizon; the rate will still rise"


HOVER = "%{hovertext}<extra></extra>"


def _layout(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    fig.update_layout(template=theme.TEMPLATE, title=dict(text=title), **layout)
    return fig


EMPTY_LINE = 48
WRAP = "<br data-wrap>"  # a line break only for room: plotly breaks the line, a chart's Data table (assets/a11y.js) reads a space


def empty_figure(
    message: str = EMPTY_MESSAGE, *, hint: str | None = None, title: str | None = None
) -> go.Figure:
    """A figure that says why there is nothing to draw, and what to try, instead of blank axes. A long
    message wraps at spaces (EMPTY_LINE characters a line), so a half-width chart holds it too."""
    text = "<b>" + WRAP.join(textwrap.wrap(message, EMPTY_LINE, break_on_hyphens=False, break_long_words=False)) + "</b>"
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


def kpi_names(config: FunnelConfig) -> dict[str, str]:
    """How the weekly KPIs are named for this funnel: its stages and its key rate's name."""
    key = config.review_rate
    names = {
        "new_leads": "New leads",
        "exits": "Exits",
        "key_rate": key.name,
        "median_days_to_target": f"Median days {theme.stage_label(config.stages[0])} → {theme.stage_label(key.to_stage)}",
        "immature": f"Immature {key.name} week",
        "lost": "Lost deals",
        "win_rate": "Win rate",
    }
    names.update({f"reached_{s}": f"Reached {theme.stage_label(s)}" for s in config.stages})
    return names


def kpi_label(kpi: str, names: Mapping[str, str] | None = None) -> str:
    """How a weekly KPI is named on the page: from `names` (kpi_names of the funnel), else made from
    its id ('reached_proposal' -> 'Reached Proposal')."""
    if names and kpi in names:
        return names[kpi]
    if kpi.startswith("reached_"):
        return f"Reached {theme.stage_label(kpi[len('reached_'):])}"
    return kpi.replace("_", " ").capitalize()


# weekly date axes tick on the weeks' Mondays (plotly anchors its ticks on 2000-01-02, a Sunday, by default)
WEEK_TICK0 = "2000-01-03"
