"""The dashboard's look: stage and outcome colours, the plotly template and number formats.

Colours are fixed per meaning so a stage or an outcome looks the same on every page: stages on
a sequential, colour-blind-safe ramp (ColorBrewer YlGnBu, lighter early in the funnel, darker
later), outcomes in muted warm colours that also differ in lightness, so they survive grey-scale
printing and the common colour-vision deficiencies.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio

from funnelboard.core.config import stage_label  # noqa: F401 - the dashboard names stages as the config does

DEFAULT_STAGES: tuple[str, ...] = ("lead", "mql", "sql", "opportunity", "proposal", "won")
DEFAULT_OUTCOMES: tuple[str, ...] = ("nurture", "disqualified", "rerouted", "lost")

# Sequential ramp, one step per funnel position; configured funnels use it by position and cycle.
STAGE_RAMP: tuple[str, ...] = ("#7FCDBB", "#41B6C4", "#1D91C0", "#225EA8", "#253494", "#081D58")
STAGE_COLORS: dict[str, str] = dict(zip(DEFAULT_STAGES, STAGE_RAMP))

OUTCOME_COLORS: dict[str, str] = {
    "nurture": "#E2BE6A",
    "rerouted": "#E08E5A",
    "disqualified": "#C0574A",
    "lost": "#7E3F4C",
}
# Configured outcomes beyond the default four cycle through these.
OUTCOME_PALETTE: tuple[str, ...] = ("#B07A4F", "#D49A9A", "#A8786A", "#E5A68C")

# What else can follow a spell in stage accounting.
ADVANCED_COLOR = "#2B7BBA"
REGRESSED_COLOR = "#9B8EC4"
OPEN_COLOR = "#C9CED6"

# Colour-blind-safe categorical palette (Okabe–Ito, black left out) for segment values and reasons.
CATEGORICAL: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#999999",
)
SEQUENTIAL_SCALE: list[list] = [
    [0.0, "#F7FBFF"],
    [0.25, "#C6DBEF"],
    [0.5, "#6BAED6"],
    [0.75, "#2171B5"],
    [1.0, "#08306B"],
]

TEXT_COLOR = "#2B2F36"
MUTED_TEXT = "#6B7280"
GRID_COLOR = "#E8EBEF"
AXIS_COLOR = "#C9CED6"
GREY = "#A0A7B0"
REFERENCE_COLOR = "#5F6B7A"
INCREASE_COLOR = "#2B7BBA"
DECREASE_COLOR = "#C0574A"
TOTAL_COLOR = "#5F6B7A"

FONT_FAMILY = "Inter, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

# d3 formats for axes and hover templates, and their Python twins below.
PERCENT_FORMAT = ".1%"
PERCENT_AXIS_FORMAT = ".0%"
DAYS_FORMAT = ".1f"
COUNT_FORMAT = ",d"
NOT_AVAILABLE = "—"
MINUS = "−"



def _cycled(palette: Sequence[str], key: str, names: Sequence[str]) -> str:
    if key in names:
        return palette[list(names).index(key) % len(palette)]
    return palette[zlib.crc32(key.encode("utf-8")) % len(palette)]


def stage_color(stage: str, stages: tuple[str, ...] = DEFAULT_STAGES) -> str:
    """The colour of a funnel stage: its position in `stages` on the ramp, cycling past the end.

    The default funnel gets exactly STAGE_COLORS; a stage missing from `stages` still gets a
    stable colour (picked by a hash of its name).
    """
    return _cycled(STAGE_RAMP, stage, stages)


def outcome_color(outcome: str, outcomes: tuple[str, ...] = DEFAULT_OUTCOMES) -> str:
    """The colour of an outcome: fixed for the default four; other configured outcomes cycle
    through OUTCOME_PALETTE by their position among the non-default ones."""
    if outcome in OUTCOME_COLORS:
        return OUTCOME_COLORS[outcome]
    return _cycled(OUTCOME_PALETTE, outcome, [o for o in outcomes if o not in OUTCOME_COLORS])


def category_color(index: int) -> str:
    """The n-th colour of the categorical palette (segment values, reasons), cycling."""
    return CATEGORICAL[index % len(CATEGORICAL)]


def day_unit(business_days: bool = False) -> str:
    return "business days" if business_days else "days"


def fmt_count(n: float | None) -> str:
    """12632 -> '12,632'."""
    if n is None:
        return NOT_AVAILABLE
    return f"{int(round(n)):,}"


def fmt_money(x: float | str | None, currency: str | None = None) -> str:
    """52000 -> '52,000', 1234.5 -> '1,234.5' (up to two decimals, as the lists' money cells in
    assets/dashAgGridFunctions.js); with a currency 'USD 52,000'. A value that is not a number is shown as it is."""
    if x is None or x == "":
        return NOT_AVAILABLE
    try:
        value = float(x)
    except (TypeError, ValueError):
        return str(x)
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{currency} {text}" if currency else text


def fmt_pct(x: float | None) -> str:
    """0.30454 -> '30.5%' (one decimal)."""
    if x is None:
        return NOT_AVAILABLE
    return f"{x:.1%}"


def fmt_days(x: float | None, business_days: bool = False) -> str:
    """2.2266 -> '2.2 days' (one decimal)."""
    if x is None:
        return NOT_AVAILABLE
    return f"{x:.1f} {day_unit(business_days)}"


def _signed(text: str, value: float) -> str:
    if text.lstrip("0.,") == "" or value == 0:
        return text
    return ("+" if value > 0 else MINUS) + text


def fmt_signed_count(x: float | None, decimals: int = 0) -> str:
    """A change in a count: '+12', '−3', '+8.5' (decimals for means)."""
    if x is None:
        return NOT_AVAILABLE
    return _signed(f"{abs(x):,.{decimals}f}", x)


def fmt_pp(x: float | None) -> str:
    """A change in a rate, in percentage points: 0.012 -> '+1.2 pp'."""
    if x is None:
        return NOT_AVAILABLE
    return _signed(f"{abs(x) * 100:.1f}", x) + " pp"


def fmt_window(window_days: int | None) -> str | None:
    """What a conversion window does to a figure, as its footnote or subtitle; None without a window."""
    return f"conversions within {window_days} days only (the conversion window)" if window_days else None


def fmt_signed_days(x: float | None, business_days: bool = False) -> str:
    """A change in a duration: 1.04 -> '+1.0 days'."""
    if x is None:
        return NOT_AVAILABLE
    return _signed(f"{abs(x):.1f}", x) + f" {day_unit(business_days)}"


def _axis() -> dict:
    return dict(
        showgrid=True,
        gridcolor=GRID_COLOR,
        gridwidth=1,
        zeroline=False,
        linecolor=AXIS_COLOR,
        showline=True,
        ticks="outside",
        tickcolor=AXIS_COLOR,
        ticklen=4,
        automargin=True,
        title=dict(standoff=8, font=dict(size=12, color=MUTED_TEXT)),
        tickfont=dict(size=12),
    )


TEMPLATE = go.layout.Template(
    layout=dict(
        font=dict(family=FONT_FAMILY, size=13, color=TEXT_COLOR),
        title=dict(x=0, xanchor="left", y=0.98, yanchor="top", font=dict(size=15)),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=list(CATEGORICAL),
        margin=dict(l=56, r=24, t=64, b=48),
        xaxis=_axis(),
        yaxis=_axis(),
        legend=dict(
            orientation="h",
            x=0,
            xanchor="left",
            y=1.0,
            yanchor="bottom",
            font=dict(size=12),
            bgcolor="rgba(255,255,255,0)",
        ),
        hoverlabel=dict(bgcolor="white", bordercolor=AXIS_COLOR, font=dict(family=FONT_FAMILY, size=12)),
        hovermode="closest",
        bargap=0.25,
        coloraxis=dict(colorscale=SEQUENTIAL_SCALE),
        separators=".,",
    ),
    data=dict(
        bar=[go.Bar(marker=dict(line=dict(width=0)))],
        scatter=[go.Scatter(marker=dict(size=8), line=dict(width=2))],
    ),
)

pio.templates["funnelboard"] = TEMPLATE
