"""The figure functions on tiny hand-made rows (traces, x/y, colours, hover text, customdata,
empty states), plus each one on real metric rows from a generated demo warehouse."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from funnelboard.core.config import load_config
from funnelboard.dashboard import figures as F
from funnelboard.dashboard import theme
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW

OUTCOMES = ("nurture", "disqualified", "rerouted", "lost")


def annotation_texts(fig: go.Figure) -> str:
    """The figure's notes as one text, a line break read as a space (a long empty-state message wraps)."""
    return " ".join(a.text for a in fig.layout.annotations).replace(F.WRAP, " ")


def assert_empty(fig: go.Figure, message: str = F.EMPTY_MESSAGE) -> None:
    assert len(fig.data) == 0
    assert message in annotation_texts(fig)
    assert fig.layout.xaxis.visible is False


# --------------------------------------------------------------------------- theme


def test_stage_colours_follow_the_ramp_and_cycle_for_configured_funnels():
    assert [theme.stage_color(s, theme.DEFAULT_STAGES) for s in theme.DEFAULT_STAGES] == list(theme.STAGE_RAMP)
    assert theme.STAGE_COLORS["sql"] == theme.stage_color("sql", theme.DEFAULT_STAGES)
    custom = ("inquiry", "qualified", "demo", "trial", "negotiation", "contract", "signed", "live")
    colours = [theme.stage_color(s, custom) for s in custom]
    assert colours[:6] == list(theme.STAGE_RAMP)
    assert colours[6:] == list(theme.STAGE_RAMP[:2])  # cycles past the end
    unseen = theme.stage_color("somewhere-else", custom)
    assert unseen in theme.STAGE_RAMP and unseen == theme.stage_color("somewhere-else", custom)


def test_outcome_colours_are_fixed_distinct_and_cycle_for_new_outcomes():
    colours = [theme.outcome_color(o, OUTCOMES) for o in OUTCOMES]
    assert len(set(colours)) == 4
    assert colours == [theme.OUTCOME_COLORS[o] for o in OUTCOMES]
    extra = ("nurture", "parked", "merged")
    assert theme.outcome_color("parked", extra) == theme.OUTCOME_PALETTE[0]
    assert theme.outcome_color("merged", extra) == theme.OUTCOME_PALETTE[1]
    assert not set(theme.OUTCOME_PALETTE) & set(theme.OUTCOME_COLORS.values())


def test_template_is_registered_and_clean():
    t = pio.templates["funnelboard"]
    assert t.layout.plot_bgcolor == "white" and t.layout.paper_bgcolor == "white"
    assert 12 <= t.layout.font.size <= 13
    assert "sans-serif" in t.layout.font.family
    assert t.layout.xaxis.gridcolor == theme.GRID_COLOR


def test_number_formats():
    assert theme.fmt_pct(0.30454401519949337) == "30.5%"
    assert theme.fmt_days(2.2266319444444447) == "2.2 days"
    assert theme.fmt_days(2.25, business_days=True) == "2.2 business days"
    assert theme.fmt_count(12632) == "12,632"
    assert theme.fmt_pp(-0.0825231148551469) == "−8.3 pp"
    assert theme.fmt_pp(0.00001) == "0.0 pp"
    assert theme.fmt_signed_count(12) == "+12"
    assert theme.fmt_signed_count(-8.75, 1) == "−8.8"
    assert theme.fmt_pct(None) == theme.NOT_AVAILABLE
    assert theme.PERCENT_FORMAT == ".1%" and theme.DAYS_FORMAT == ".1f"
    assert theme.stage_label("mql") == "MQL" and theme.stage_label("opportunity") == "Opportunity"


# --------------------------------------------------------------------------- funnel

# The worked example of docs/metrics.md: lead 5, mql 5, sql 4, opportunity 2, proposal 2, won 1.
FUNNEL_ROWS = [
    {"stage": s, "reached": n, "step_rate": step, "cumulative_rate": n / 5, "period_reached": n}
    for s, n, step in [
        ("lead", 5, None),
        ("mql", 5, 1.0),
        ("sql", 4, 0.8),
        ("opportunity", 2, 0.5),
        ("proposal", 2, 1.0),
        ("won", 1, 0.5),
    ]
]


def drawn(fig) -> list:
    """The funnel's visible traces, without the invisible click areas behind its rows."""
    from funnelboard.dashboard.figures.funnel import HIT_AREA

    return [t for t in fig.data if t.name != HIT_AREA]


def test_funnel_figure():
    fig = F.funnel_figure(FUNNEL_ROWS)
    assert [t.type for t in drawn(fig)] == ["funnel", "bar"]
    trace = fig.data[0]
    assert list(trace.x) == [5, 5, 4, 2, 2, 1]
    assert list(trace.y) == ["Lead", "MQL", "SQL", "Opportunity", "Proposal", "Won"]
    assert list(trace.marker.color) == list(theme.STAGE_RAMP)
    assert trace.customdata[2] == {"stage": "sql", "view": "cohort"}
    assert "Step from MQL: 80.0% (4 of 5)" in trace.hovertext[2]
    assert "Cumulative: 20.0% of the 5-lead cohort" in trace.hovertext[5]
    assert trace.text[3] == "2 · 40.0%"
    assert fig.layout.title.text == "Funnel: leads reaching each stage"
    assert "count" in fig.layout.xaxis.title.text


def test_funnel_figure_draws_the_period_view_beside_the_cohort_view_labelled():
    # Period counts need not shrink down the funnel: leads of older cohorts reach later stages.
    rows = [{**r, "period_reached": n} for r, n in zip(FUNNEL_ROWS, [5, 7, 6, 1, 3, 2])]
    fig = F.funnel_figure(rows)
    cohort, period = drawn(fig)
    assert (cohort.xaxis, period.xaxis) == ("x", "x2")
    assert fig.layout.yaxis2.matches == "y"  # one stage axis: each view's row reads against the other's
    assert period.orientation == "h" and list(period.y) == list(cohort.y)
    assert list(period.x) == [5, 7, 6, 1, 3, 2]
    assert list(period.text) == ["5", "7", "6", "1", "3", "2"]  # counts only: no rate between period counts
    assert list(period.marker.color) == list(theme.STAGE_RAMP)
    assert period.customdata[1] == {"stage": "mql", "view": "period"}
    assert "7 leads reached MQL during the period" in period.hovertext[1]
    assert "whichever week they entered" in period.hovertext[1] and "not a conversion rate" in period.hovertext[1]
    assert "Reached it in the period (any cohort): 7" in cohort.hovertext[1]
    titles = annotation_texts(fig)
    assert F.COHORT_VIEW_LABEL in titles and F.PERIOD_VIEW_LABEL in titles
    assert F.PERIOD_VIEW_NOTE in titles and F.COHORT_VIEW_NOTE in titles
    assert "period" in fig.layout.xaxis2.title.text and "count" in fig.layout.xaxis2.title.text


def test_funnel_figure_cohort_view_alone_and_an_empty_cohort_beside_a_busy_period():
    alone = F.funnel_figure(FUNNEL_ROWS, period=False)
    assert [t.type for t in drawn(alone)] == ["funnel"] and not alone.layout.annotations
    without = F.funnel_figure([{k: v for k, v in r.items() if k != "period_reached"} for r in FUNNEL_ROWS])
    assert [t.type for t in drawn(without)] == ["funnel"]
    nobody_new = [{**r, "reached": 0, "step_rate": None, "cumulative_rate": None, "period_reached": 3} for r in FUNNEL_ROWS]
    fig = F.funnel_figure(nobody_new)
    assert [t.type for t in drawn(fig)] == ["bar"] and list(fig.data[0].x) == [3] * 6
    assert "No lead entered the funnel in the period" in annotation_texts(fig)


def test_funnel_figure_custom_title_and_empty_states():
    assert F.funnel_figure(FUNNEL_ROWS, title="Q3").layout.title.text == "Q3"
    assert_empty(F.funnel_figure([]))
    zero = [{**r, "reached": 0, "step_rate": None, "cumulative_rate": None, "period_reached": 0} for r in FUNNEL_ROWS]
    assert_empty(F.funnel_figure(zero))


# --------------------------------------------------------------------------- stage accounting

ACCOUNTING_ROWS = [
    {"stage": "mql", "entered": 4, "advanced": 2, "exited": 2, "regressed": 0, "open": 0,
     "exited_nurture": 1, "exited_disqualified": 1, "exited_rerouted": 0, "exited_lost": 0},
    {"stage": "proposal", "entered": 2, "advanced": 0, "exited": 0, "regressed": 1, "open": 1,
     "exited_nurture": 0, "exited_disqualified": 0, "exited_rerouted": 0, "exited_lost": 0},
]  # fmt: skip


def test_stage_accounting_figure():
    fig = F.stage_accounting_figure(ACCOUNTING_ROWS, OUTCOMES)
    assert [t.type for t in fig.data] == ["bar"] * 7
    assert [t.name for t in fig.data] == [
        "Advanced",
        "Exited: nurture",
        "Exited: disqualified",
        "Exited: rerouted",
        "Exited: lost",
        "Went back",
        "Still open",
    ]
    assert fig.layout.barmode == "stack"
    assert all(t.orientation == "h" for t in fig.data)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["Advanced"].x) == [2, 0]
    assert list(by_name["Exited: nurture"].x) == [1, 0]
    assert list(by_name["Went back"].x) == [0, 1]
    assert list(by_name["Still open"].y) == ["MQL", "Proposal"]
    for o in OUTCOMES:
        assert by_name[f"Exited: {o}"].marker.color == theme.OUTCOME_COLORS[o]
    assert by_name["Exited: nurture"].customdata[0] == {"stage": "mql", "next": "exited", "outcome": "nurture"}
    assert by_name["Went back"].customdata[1] == {"stage": "proposal", "next": "regressed"}
    assert "MQL</b>: 4 spells entered" in by_name["Exited: disqualified"].hovertext[0]
    assert "Exited: disqualified: 1 (25.0%)" in by_name["Exited: disqualified"].hovertext[0]
    # every stage's bars add up to the spells entered
    for i, row in enumerate(ACCOUNTING_ROWS):
        assert sum(t.x[i] for t in fig.data) == row["entered"]


def test_stage_accounting_figure_percent_outcomes_inferred_and_empty():
    fig = F.stage_accounting_figure(ACCOUNTING_ROWS, percent=True)
    assert len(fig.data) == 3 + len(OUTCOMES)
    assert list(fig.data[0].x) == [0.5, 0.0]
    assert fig.layout.xaxis.tickformat == theme.PERCENT_AXIS_FORMAT
    zero = [{k: (v if k == "stage" else 0) for k, v in r.items()} for r in ACCOUNTING_ROWS]
    assert_empty(F.stage_accounting_figure(zero, OUTCOMES))


# --------------------------------------------------------------------------- cohort heatmap

COHORT_ROWS = [
    {"week": date(2026, 10, 5), "stage_pair": "lead → mql", "rate": 0.5, "cohort": 10, "immature": False},
    {"week": date(2026, 10, 12), "stage_pair": "lead → mql", "rate": 0.25, "cohort": 8, "immature": True},
    {"week": date(2026, 10, 5), "stage_pair": "mql → sql", "rate": 0.3, "cohort": 10, "immature": False},
    {"week": date(2026, 10, 12), "stage_pair": "mql → sql", "rate": None, "cohort": 0, "immature": True},
]


def test_cohort_heatmap_figure():
    fig = F.cohort_heatmap_figure(COHORT_ROWS)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    mature, immature = fig.data
    assert list(mature.x) == ["2026-10-05", "2026-10-12"]
    assert list(mature.y) == ["lead → mql", "mql → sql"]
    assert [list(r) for r in mature.z] == [[0.5, None], [0.3, None]]
    assert [list(r) for r in immature.z] == [[None, 0.25], [None, None]]
    assert immature.opacity < mature.opacity
    assert immature.text[0][1] == "25.0%*"
    assert "2 of 8 converted (25.0%)" in immature.hovertext[0][1]
    assert "immature" in immature.hovertext[0][1]
    assert "immature" not in mature.hovertext[0][0]
    assert "5 of 10 converted (50.0%)" in mature.hovertext[0][0]
    assert "No leads in this cohort" in immature.hovertext[1][1]
    assert mature.customdata[1][0] == {"week": "2026-10-05", "stage_pair": "mql → sql"}
    assert mature.coloraxis == immature.coloraxis == "coloraxis"
    assert "immature" in annotation_texts(fig)


def test_cohort_heatmap_cells_carry_the_pair_stages_and_blank_cells_are_explained():
    rows = [{**r, "from_stage": r["stage_pair"].split(" → ")[0], "to_stage": r["stage_pair"].split(" → ")[1]} for r in COHORT_ROWS]
    fig = F.cohort_heatmap_figure(rows)
    mature, immature = fig.data
    assert immature.customdata[0][1] == {"week": "2026-10-12", "stage_pair": "lead → mql", "from_stage": "lead", "to_stage": "mql"}
    assert mature.customdata[1][1] == {"week": "2026-10-12", "stage_pair": "mql → sql", "from_stage": "mql", "to_stage": "sql"}
    assert "blank cells: no lead" in annotation_texts(fig)
    assert mature.texttemplate == immature.texttemplate == "%{text}"
    assert mature.text[0][1] == "" and immature.text[0][0] == ""  # a cell's text only in its own trace


def test_cohort_heatmap_footnote_says_what_makes_a_cell_immature():
    def footnote(window_days):
        fig = F.cohort_heatmap_figure([{**r, "window_days": window_days} for r in COHORT_ROWS])
        return next(a.text for a in fig.layout.annotations if a.text.startswith("* faded"))

    assert "younger than the 3-day conversion window" in footnote(3)
    unwindowed = footnote(0)
    assert "maturity horizon" in unwindowed and "no conversion window" in unwindowed
    assert "inside the conversion window" not in unwindowed


def test_cohort_heatmap_figure_leaves_the_text_out_of_wide_grids():
    weeks = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(F.HEATMAP_TEXT_WEEKS + 1)]
    rows = [{"week": w, "stage_pair": "mql → sql", "rate": 0.5, "cohort": 2, "immature": False} for w in weeks]
    fig = F.cohort_heatmap_figure(rows)
    assert all(t.texttemplate == "" for t in fig.data)
    assert "1 of 2 converted (50.0%)" in fig.data[0].hovertext[0][0]


def test_cohort_heatmap_figure_empty():
    assert_empty(F.cohort_heatmap_figure([]))


# --------------------------------------------------------------------------- segment conversion

SEGMENT_ROWS = [
    {"channel": "events", "n": 100, "converted": 20, "rate": 0.2, "wilson_low": 0.1333, "wilson_high": 0.2888,
     "too_few": False, "p_value": 0.01, "q_value": 0.02, "significant": True},
    {"channel": "inbound", "n": 200, "converted": 60, "rate": 0.3, "wilson_low": 0.2421, "wilson_high": 0.3650,
     "too_few": False, "p_value": 0.4, "q_value": 0.4, "significant": False},
    {"channel": "partners", "n": 12, "converted": 6, "rate": 0.5, "wilson_low": 0.2538, "wilson_high": 0.7462,
     "too_few": True, "p_value": 0.2, "q_value": 0.3, "significant": False},
]  # fmt: skip


def test_segment_conversion_figure():
    fig = F.segment_conversion_figure(SEGMENT_ROWS, "channel", overall_rate=0.27)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"Significant difference", "No clear difference", "Too few to judge"}
    assert all(t.type == "scatter" for t in fig.data)
    for trace in fig.data:
        rows = [r for r in SEGMENT_ROWS if r["channel"] in trace.y]
        assert list(trace.x) == [r["rate"] for r in rows]
        highs = [x + a for x, a in zip(trace.x, trace.error_x.array)]
        lows = [x - a for x, a in zip(trace.x, trace.error_x.arrayminus)]
        assert highs == pytest.approx([r["wilson_high"] for r in rows])
        assert lows == pytest.approx([r["wilson_low"] for r in rows])
        assert trace.error_x.symmetric is False
    assert by_name["Significant difference"].marker.symbol == "star"
    assert by_name["Too few to judge"].marker.color == theme.GREY
    assert by_name["Significant difference"].customdata[0] == {"channel": "events"}
    assert "20 of 100 converted (20.0%)" in by_name["Significant difference"].hovertext[0]
    assert "95% interval: 13.3% to 28.9%" in by_name["Significant difference"].hovertext[0]
    assert "Too few to judge" in by_name["Too few to judge"].hovertext[0]
    # sorted by rate, highest first (the axis is reversed)
    assert list(fig.layout.yaxis.categoryarray) == ["partners", "inbound", "events"]
    assert fig.layout.yaxis.ticktext[2] == "<b>events</b> ★"
    assert "too few to judge" in fig.layout.yaxis.ticktext[0]
    (line,) = fig.layout.shapes
    assert line.x0 == line.x1 == 0.27
    assert "overall 27.0%" in annotation_texts(fig)


def test_segment_conversion_figure_crossed_and_empty():
    rows = [{"channel": "events", "region": "EU", **{k: v for k, v in SEGMENT_ROWS[0].items() if k != "channel"}}]
    fig = F.segment_conversion_figure(rows, ("channel", "region"))
    assert fig.data[0].customdata[0] == {"channel": "events", "region": "EU"}
    assert list(fig.data[0].y) == ["events · EU"]
    assert F.segment_conversion_figure(rows).data[0].customdata[0] == {"channel": "events", "region": "EU"}
    assert fig.layout.shapes == ()
    assert_empty(F.segment_conversion_figure([], "channel"))


# --------------------------------------------------------------------------- mix vs rate

MIX_ROWS = [
    {"segment": "inbound", "n_before": 60, "share_before": 0.6, "rate_before": 0.2, "n_after": 40,
     "share_after": 0.4, "rate_after": 0.25, "mix_effect": -0.04, "rate_effect": 0.02},
    {"segment": "referral", "n_before": 40, "share_before": 0.4, "rate_before": 0.5, "n_after": 60,
     "share_after": 0.6, "rate_after": 0.4, "mix_effect": 0.1, "rate_effect": -0.06},
    {"segment": "(total)", "n_before": 100, "share_before": 1.0, "rate_before": 0.32, "n_after": 100,
     "share_after": 1.0, "rate_after": 0.34, "mix_effect": 0.06, "rate_effect": -0.04},
]  # fmt: skip


def test_mix_vs_rate_figure():
    fig = F.mix_vs_rate_figure(MIX_ROWS, rate_name="SQL rate", cohort="MQLs")
    (trace,) = fig.data
    assert trace.type == "waterfall"
    assert list(trace.measure) == ["absolute", "relative", "relative", "total"]
    assert list(trace.x) == ["Before", "Mix effect", "Rate effect", "After"]
    assert list(trace.y) == [0.32, 0.06, -0.04, 0.34]
    assert trace.y[0] + trace.y[1] + trace.y[2] == pytest.approx(trace.y[3])
    assert list(trace.text) == ["32.0%", "+6.0 pp", "−4.0 pp", "34.0%"]
    assert [c["step"] for c in trace.customdata] == ["before", "mix_effect", "rate_effect", "after"]
    assert "SQL rate 32.0% of 100 MQLs" in trace.hovertext[0]
    assert "referral: share 40.0% → 60.0%, +10.0 pp" in trace.hovertext[1]
    assert "inbound: rate 20.0% → 25.0%, +2.0 pp" in trace.hovertext[2]
    # the biggest contribution is listed first
    assert trace.hovertext[2].index("referral") < trace.hovertext[2].index("inbound")
    assert trace.decreasing.marker.color == theme.DECREASE_COLOR


def test_mix_vs_rate_figure_names_the_rate_and_the_periods():
    """Nothing in the figure assumes MQL and SQL: the rate and its cohort are named by the caller."""
    fig = F.mix_vs_rate_figure(MIX_ROWS, rate_name="Close rate", cohort="leads reaching Demo",
                               periods=("01 Sep – 28 Sep 2026", "29 Sep – 26 Oct 2026"))
    (trace,) = fig.data
    assert list(trace.x) == ["Before<br>01 Sep – 28 Sep 2026", "Mix effect", "Rate effect", "After<br>29 Sep – 26 Oct 2026"]
    assert "Close rate 32.0% of 100 leads reaching Demo" in trace.hovertext[0]
    assert fig.layout.title.text == "Close rate change: mix vs rate" and fig.layout.yaxis.title.text == "Close rate (%)"
    assert "SQL" not in str(fig.to_plotly_json()) and "MQL" not in str(fig.to_plotly_json())


def test_mix_vs_rate_figure_empty():
    total = {**MIX_ROWS[2], "n_before": 0, "n_after": 0}
    assert_empty(F.mix_vs_rate_figure([total], cohort="MQLs"), "No MQLs in either period")
    assert_empty(F.mix_vs_rate_figure([], empty="No data in this period: the data runs from A to B."), "No data in this period")


# --------------------------------------------------------------------------- time in stage

# lead: the worked example (completed 4, 1, 1, 60 days; p50 2.5, KM p50 1.0), KM p90 unknown.
TIME_ROWS = [
    {"stage": "lead", "n_completed": 4, "n_open": 1, "p50": 2.5, "p75": 17.5, "p90": 43.2,
     "km_p50": 1.0, "km_p75": 4.0, "km_p90": None},
    {"stage": "mql", "n_completed": 2, "n_open": 0, "p50": 3.0, "p75": 4.0, "p90": 4.6,
     "km_p50": 2.0, "km_p75": 4.0, "km_p90": 4.0},
]  # fmt: skip


def test_time_in_stage_figure():
    fig = F.time_in_stage_figure(TIME_ROWS)
    assert [t.type for t in fig.data] == ["scatter", "scatter"]
    completed, km = fig.data
    assert completed.name == F.COMPLETED_LABEL == "Completed spells only"
    assert km.name == F.KM_LABEL == "Kaplan-Meier, open spells censored"
    assert list(completed.x) == [2.5, 17.5, 43.2, None, 3.0, 4.0, 4.6, None]
    assert list(km.x) == [1.0, 4.0, None, 2.0, 4.0, 4.0, None]
    # completed sits just above, Kaplan-Meier just below each stage's row
    assert completed.y[0] < 0 < km.y[0] and completed.y[4] < 1 < km.y[3]
    assert list(fig.layout.yaxis.ticktext) == ["Lead", "MQL"]
    assert km.customdata[1] == {"stage": "lead", "method": "km", "quantile": "p75"}
    assert km.customdata[2] is None
    assert "p75: 4.0 days" in km.hovertext[1]
    assert "4 completed, 1 still open" in km.hovertext[1]
    assert "p90: not reached (too many spells still open)" in km.hovertext[0]
    assert fig.layout.xaxis.title.text.startswith("Days in stage")


def test_time_in_stage_figure_segmented_business_days_and_empty():
    rows = [{**TIME_ROWS[0], "channel": "events"}, {**TIME_ROWS[1], "channel": "referral"}]
    fig = F.time_in_stage_figure(rows, business_days=True)
    assert list(fig.layout.yaxis.ticktext) == ["Lead · events", "MQL · referral"]
    assert fig.data[0].customdata[0] == {"stage": "lead", "channel": "events", "method": "completed", "quantile": "p50"}
    assert "Business days" in fig.layout.xaxis.title.text
    assert "p50: 2.5 business days" in fig.data[0].hovertext[0]
    empty = [{**r, "n_completed": 0, "n_open": 0} | {k: None for k in r if "p" in k} for r in TIME_ROWS]
    assert_empty(F.time_in_stage_figure(empty))


def _curve(stage, points, **segment):
    """survival rows of one curve from (days, at_risk, completed, censored, S, km_quantile) tuples."""
    return [
        {"stage": stage, **segment, "days": t, "at_risk": n, "completed": c, "censored": x, "survival": s, "km_quantile": q}
        for t, n, c, x, s, q in points
    ]


# 4 spells: completed after 1, 3 and 4 days, one open seen for 2 days.
MQL_CURVE = [(0.0, 4, 0, 0, 1.0, None), (1.0, 3, 1, 0, 0.75, None), (2.0, 2, 1, 1, 0.75, None),
             (3.0, 1, 2, 1, 0.375, "p50"), (4.0, 0, 3, 1, 0.0, "p75 p90")]  # fmt: skip


def test_survival_figure_one_curve_per_stage():
    rows = _curve("lead", [(0.0, 2, 0, 0, 1.0, None), (0.5, 0, 2, 0, 0.0, "p50 p75 p90")]) + _curve("mql", MQL_CURVE)
    fig = F.survival_figure(rows)
    assert [t.name for t in fig.data] == ["Lead", "MQL"]
    lead, mql = fig.data
    assert mql.line.shape == "hv" and mql.mode == "lines+markers"
    assert list(mql.x) == [0.0, 1.0, 2.0, 3.0, 4.0] and list(mql.y) == [1.0, 0.75, 0.75, 0.375, 0.0]
    assert list(mql.marker.size) == [0, 0, 0, 8, 8]  # the Kaplan-Meier quantile points
    assert mql.line.color == theme.stage_color("mql", theme.DEFAULT_STAGES)
    assert mql.customdata[3] == {"stage": "mql", "days": 3.0}
    assert "after 3.0 days: 37.5% still in MQL" in mql.hovertext[3]
    assert "1 still in · 2 completed · 1 open" in mql.hovertext[3] and "Kaplan-Meier median" in mql.hovertext[3]
    assert fig.layout.yaxis.tickformat == theme.PERCENT_AXIS_FORMAT
    assert [s.y0 for s in fig.layout.shapes] == [0.5]
    assert "Business days" in F.survival_figure(rows, business_days=True).layout.xaxis.title.text
    assert_empty(F.survival_figure([]), "No spells match")


def test_survival_figure_per_segment_has_a_panel_per_stage():
    rows = (
        _curve("mql", MQL_CURVE, channel="events")
        + _curve("mql", MQL_CURVE[:2], channel="referral")
        + _curve("sql", MQL_CURVE[:3], channel="referral")
    )
    fig = F.survival_figure(rows)
    assert [a.text for a in fig.layout.annotations][:2] == ["MQL", "SQL"]  # panel titles
    assert [(t.name, t.xaxis) for t in fig.data] == [("events", "x"), ("referral", "x"), ("referral", "x2")]
    assert [t.showlegend for t in fig.data] == [True, True, False]  # one legend entry per value
    assert fig.data[1].line.color == fig.data[2].line.color != fig.data[0].line.color
    assert fig.data[2].customdata[0] == {"stage": "sql", "channel": "referral", "days": 0.0, "step": 1.0}
    assert fig.layout.title.text == "Share still in the stage, by channel"


DISTRIBUTION_ROWS = [
    {"stage": "sql", "bin_start": 0.0, "bin_end": 0.5, "completed": 3, "open": 1},
    {"stage": "sql", "bin_start": 0.5, "bin_end": 1.0, "completed": 0, "open": 0},
    {"stage": "sql", "bin_start": 1.0, "bin_end": 1.5, "completed": 1, "open": 0},
    {"stage": "sql", "bin_start": 1.5, "bin_end": None, "completed": 1, "open": 2},
    {"stage": "mql", "bin_start": 0.0, "bin_end": 2.0, "completed": 2, "open": 0},
]


def test_duration_histogram_figure():
    fig = F.duration_histogram_figure(DISTRIBUTION_ROWS)
    assert [a.text for a in fig.layout.annotations] == ["MQL", "SQL"]  # panels in funnel order
    names = [(t.name, t.xaxis) for t in fig.data]
    assert names == [("Completed, by duration", "x"), ("Still open, by age so far", "x"),
                     ("Completed, by duration", "x2"), ("Still open, by age so far", "x2")]  # fmt: skip
    completed, still_open = fig.data[2], fig.data[3]
    assert list(completed.y) == [3, 0, 1, 1] and list(still_open.y) == [1, 0, 0, 2]
    assert list(completed.x) == [0.25, 0.75, 1.25, 1.75] and list(completed.width) == [0.5] * 4
    assert fig.layout.barmode == "stack"
    assert completed.marker.color == theme.stage_color("sql", theme.DEFAULT_STAGES)
    assert still_open.marker.color == theme.OPEN_COLOR
    assert completed.customdata[2] == {"stage": "sql", "min_days": 1.0, "max_days": 1.5, "open": False, "step": 0.5}
    assert completed.hovertext[0] == "<b>SQL</b> · 0–12 hours: 3 completed spells (60.0% of 5 completed)"
    assert still_open.hovertext[3] == "<b>SQL</b> · ≥ 1.5 days so far: 2 open spells (66.7% of 3 open)"
    assert list(still_open.text) == ["", "", "", "≥1.5"]
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    # rows per segment value are summed
    split = [{**r, "channel": c} for r in DISTRIBUTION_ROWS for c in ("a", "b")]
    assert list(F.duration_histogram_figure(split).data[2].y) == [6, 0, 2, 2]
    assert_empty(F.duration_histogram_figure([]), "No spells match")
    assert_empty(F.duration_histogram_figure([{**DISTRIBUTION_ROWS[1]}]), "No spells match")


# --------------------------------------------------------------------------- disqualifiers

PARETO_ROWS = [
    {"outcome": "nurture", "reason": "Not ready yet", "exits": 5, "share": 0.5, "cumulative_share": 0.5},
    {"outcome": "disqualified", "reason": "Budget", "exits": 3, "share": 0.3, "cumulative_share": 0.8},
    {"outcome": "nurture", "reason": "Budget", "exits": 2, "share": 0.2, "cumulative_share": 1.0},
]


def test_disqualifier_pareto_figure():
    fig = F.disqualifier_pareto_figure(PARETO_ROWS, outcomes=OUTCOMES)
    assert [t.type for t in fig.data] == ["bar", "bar", "scatter"]
    nurture, disqualified, cumulative = fig.data
    assert nurture.name == "Nurture" and nurture.marker.color == theme.OUTCOME_COLORS["nurture"]
    assert disqualified.marker.color == theme.OUTCOME_COLORS["disqualified"]
    # "Budget" appears under two outcomes, so its labels name the outcome
    assert list(nurture.y) == ["Not ready yet", "Budget (nurture)"] and nurture.orientation == "h"
    assert list(nurture.x) == [5, 2]
    assert list(fig.layout.yaxis.categoryarray) == ["Not ready yet", "Budget (disqualified)", "Budget (nurture)"]
    assert fig.layout.yaxis.autorange == "reversed"  # the biggest on top
    assert list(cumulative.x) == [0.5, 0.8, 1.0]
    assert cumulative.xaxis == "x2" and fig.layout.xaxis2.overlaying == "x"
    assert fig.layout.xaxis2.tickformat == theme.PERCENT_AXIS_FORMAT
    assert disqualified.customdata[0] == {"outcome": "disqualified", "reason": "Budget"}
    assert "3 exits, 30.0% of all exits" in disqualified.hovertext[0]
    assert "Cumulative: 80.0%" in disqualified.hovertext[0]
    assert_empty(F.disqualifier_pareto_figure([]), "No exits match")


def test_user_text_is_escaped_in_labels_but_not_in_customdata():
    rows = [{"outcome": "lost", "reason": "Budget <5k", "exits": 1, "share": 1.0, "cumulative_share": 1.0}]
    bar = F.disqualifier_pareto_figure(rows).data[0]
    assert list(bar.y) == ["Budget &lt;5k"] and "<b>Budget &lt;5k</b>" in bar.hovertext[0]
    assert bar.customdata[0] == {"outcome": "lost", "reason": "Budget <5k"}


def test_disqualifier_trend_figure():
    rows = [
        {"week": date(2026, 9, 7), "outcome": "disqualified", "reason": "Budget", "exits": 3},
        {"week": date(2026, 9, 7), "outcome": "nurture", "reason": "No timeline", "exits": 1},
        {"week": date(2026, 9, 21), "outcome": "disqualified", "reason": "Budget", "exits": 2},
        {"week": date(2026, 9, 21), "outcome": "lost", "reason": "Price", "exits": 2},
    ]
    fig = F.disqualifier_trend_figure(rows, top_n=1)
    budget, other = fig.data
    assert budget.name == "Budget (disqualified)" and other.name == "Other reasons"
    # the week without exits is there, at 0
    assert list(budget.x) == ["2026-09-07", "2026-09-14", "2026-09-21"]
    assert list(budget.y) == [3, 0, 2]
    assert list(other.y) == [1, 0, 2]
    assert budget.customdata[2] == {"week": "2026-09-21", "outcome": "disqualified", "reason": "Budget"}
    assert other.customdata[0] == {"week": "2026-09-07", "other_than_top": 1}  # the spell list ranks as this chart did
    assert "Budget (disqualified): 3 exits" in budget.hovertext[0]
    assert "75.0% of the week's 4 exits" in budget.hovertext[0]
    assert len(F.disqualifier_trend_figure(rows, top_n=5).data) == 3
    assert_empty(F.disqualifier_trend_figure([]), "No exits match")


# --------------------------------------------------------------------------- weekly KPIs


def kpi(week, name, value, previous=None, mean=None):
    delta = None if previous is None or value is None else value - previous
    delta_4w = None if mean is None or value is None else value - mean
    return {"week": week, "kpi": name, "value": value, "previous": previous, "delta_week": delta,
            "mean_4w": mean, "delta_4w": delta_4w}  # fmt: skip


W1, W2 = date(2026, 11, 9), date(2026, 11, 16)
WEEKLY_ROWS = [
    kpi(W1, "new_leads", 40),
    kpi(W1, "key_rate", 0.25),
    kpi(W1, "immature", 0),
    kpi(W1, "median_days_to_target", 8.0),
    kpi(W2, "new_leads", 52, 40, 43.5),
    kpi(W2, "key_rate", 0.2, 0.25, 0.2),
    kpi(W2, "immature", 1, 0),
    kpi(W2, "median_days_to_target", 9.25, 8.0),
]


NAMES = F.kpi_names(load_config(None))


def test_weekly_trend_figure():
    fig = F.weekly_trend_figure(WEEKLY_ROWS, ["new_leads", "key_rate"], names=NAMES)
    assert [t.name for t in fig.data] == ["new_leads", "key_rate"]
    leads, rate = fig.data
    assert list(leads.x) == ["2026-11-09", "2026-11-16"] and list(leads.y) == [40, 52]
    assert list(rate.y) == [0.25, 0.2]
    assert list(rate.marker.symbol) == ["circle", "circle-open"]
    assert list(leads.marker.symbol) == ["circle", "circle"]
    assert F.IMMATURE_NOTE in rate.hovertext[1] and F.IMMATURE_NOTE not in rate.hovertext[0]
    assert "SQL rate: 20.0%" in rate.hovertext[1]
    assert "vs last week: −5.0 pp" in rate.hovertext[1]
    assert "New leads: 52" in leads.hovertext[1] and "vs 4-week mean: +8.5" in leads.hovertext[1]
    assert rate.customdata[1] == {"week": "2026-11-16", "kpi": "key_rate"}
    assert rate.yaxis == "y2" and fig.layout.yaxis2.tickformat == theme.PERCENT_AXIS_FORMAT
    assert "1 immature week of SQL rate" in annotation_texts(fig)
    # mature cohorts only: the immature week leaves the rate's line, and the note says so
    mature = F.weekly_trend_figure(WEEKLY_ROWS, ["new_leads", "key_rate"], names=NAMES, mature_only=True)
    assert list(mature.data[1].y) == [0.25, None] and list(mature.data[0].y) == [40, 52]
    assert "1 immature week of SQL rate left out" in annotation_texts(mature)
    # default: every KPI but the immature flag
    assert [t.name for t in F.weekly_trend_figure(WEEKLY_ROWS).data] == [
        "new_leads",
        "key_rate",
        "median_days_to_target",
    ]
    assert_empty(F.weekly_trend_figure([], ["new_leads"]))
    assert_empty(F.weekly_trend_figure([kpi(W1, "new_leads", 0)], ["new_leads"]))


def test_kpi_card_values():
    cards = F.kpi_card_values(WEEKLY_ROWS, W2, names=NAMES)
    assert [c["kpi"] for c in cards] == ["new_leads", "key_rate", "median_days_to_target"]
    leads, rate, days = cards
    assert leads == {
        "kpi": "new_leads",
        "label": "New leads",
        "value_text": "52",
        "delta_week_text": "+12",
        "delta_4w_text": "+8.5",
        "direction": "up",
        "tone": "good",
        "immature": False,
        "immature_note": None,
        "footnote": None,
    }
    assert rate["value_text"] == "20.0%" and rate["delta_week_text"] == "−5.0 pp"
    assert rate["delta_4w_text"] == "0.0 pp" and rate["direction"] == "down" and rate["immature"] is True
    assert days["value_text"] == "9.2 days" and days["delta_week_text"] == "+1.2 days"
    assert days["delta_4w_text"] == theme.NOT_AVAILABLE
    first = F.kpi_card_values(WEEKLY_ROWS, "2026-11-09", names=NAMES)
    assert first[0]["direction"] is None and first[0]["delta_week_text"] == theme.NOT_AVAILABLE
    assert F.kpi_card_values(WEEKLY_ROWS, names=NAMES) == cards  # default: the latest week
    assert rate["label"] == "SQL rate" and days["label"] == "Median days Lead → SQL"
    assert F.kpi_card_values([], W2) == []


# --------------------------------------------------------------------------- score bands

def band(name, leads, reached_from, reached_to, from_rate, key_rate):
    return {"band": name, "from_stage": "mql", "to_stage": "sql", "leads": leads, "reached_from": reached_from,
            "reached_to": reached_to, "from_rate": from_rate, "key_rate": key_rate}


BAND_ROWS = [band("90-100", 10, 8, 4, 0.8, 0.5), band("0-9", 20, 5, 1, 0.25, 0.2), band("10-19", 30, 12, 3, 0.4, 0.25)]


def test_score_band_figure():
    fig = F.score_band_figure(BAND_ROWS, rate_name="SQL rate")
    assert [(t.type, t.name) for t in fig.data] == [("bar", "Leads"), ("scatter", "Reached MQL"), ("scatter", "SQL rate")]
    bars, mql, sql = fig.data
    assert list(bars.x) == ["0-9", "10-19", "90-100"]
    assert list(bars.y) == [20, 30, 10]
    assert list(mql.y) == [0.25, 0.4, 0.8] and list(sql.y) == [0.2, 0.25, 0.5]
    assert mql.yaxis == sql.yaxis == "y2"
    assert bars.customdata[2] == {"band": "90-100", "score_min": 90, "score_max": 100}
    assert "12 reached MQL (40.0% of leads)" in bars.hovertext[1]
    assert "3 reached SQL (25.0% of those)" in sql.hovertext[1]
    assert mql.line.color == theme.stage_color("mql") and sql.line.color == theme.stage_color("sql")
    assert_empty(F.score_band_figure([]), "No scored leads")


def test_empty_figure_carries_any_message():
    fig = F.empty_figure("no warehouse at x.duckdb", hint=None)
    assert fig.layout.annotations[0].text == "<b>no warehouse at x.duckdb</b>"


# --------------------------------------------------------------------------- real demo rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Gateway:
    folder = tmp_path_factory.mktemp("demo")
    generate(out=folder / "e.csv", n_leads=2000, seed=4)
    load_files(folder / "wh.duckdb", [folder / "e.csv"], load_config(None), now=NOW)
    return Gateway(folder / "wh.duckdb")


def metric(gateway: Gateway, name: str, **request) -> list[dict]:
    return run_metric(gateway, name, MetricRequest(**request))


def cohort_rows(gateway: Gateway) -> list[dict]:
    """What the cohort page builds: weekly conversion for each stage pair over the last weeks."""
    latest = metric(gateway, "weekly_kpis")[-1]["week"]
    rows = []
    for k in range(6):
        monday = datetime.combine(latest - timedelta(days=7 * k), datetime.min.time())
        for a, b in (("lead", "mql"), ("mql", "sql")):
            (r,) = metric(gateway, "conversion", start=monday, end=monday + timedelta(days=7), from_stage=a, to_stage=b)
            rows.append(
                {"week": monday.date(), "stage_pair": f"{a} → {b}", "rate": r["rate"], "cohort": r["cohort"],
                 "converted": r["converted"], "immature": r["immature"] > 0}  # fmt: skip
            )
    return rows


DEMO_FIGURES = {
    "funnel": lambda g: F.funnel_figure(metric(g, "funnel")),
    "stage_accounting": lambda g: F.stage_accounting_figure(metric(g, "stage_accounting"), OUTCOMES),
    "cohort_heatmap": lambda g: F.cohort_heatmap_figure(cohort_rows(g)),
    "segment_conversion": lambda g: F.segment_conversion_figure(
        metric(g, "segment_conversion", segment="channel"), "channel", overall_rate=metric(g, "conversion")[0]["rate"]
    ),
    "mix_vs_rate": lambda g: F.mix_vs_rate_figure(metric(g, "mix_vs_rate", segment="channel"), rate_name="SQL rate"),
    "time_in_stage": lambda g: F.time_in_stage_figure(metric(g, "time_in_stage", segment="channel")),
    "survival": lambda g: F.survival_figure(metric(g, "survival", segment="channel")),
    "duration_histogram": lambda g: F.duration_histogram_figure(metric(g, "duration_distribution")),
    "disqualifier_pareto": lambda g: F.disqualifier_pareto_figure(metric(g, "disqualifiers"), outcomes=OUTCOMES),
    "disqualifier_trend": lambda g: F.disqualifier_trend_figure(metric(g, "disqualifiers", by="week")),
    "weekly_trend": lambda g: F.weekly_trend_figure(
        metric(g, "weekly_kpis"), ["new_leads", "key_rate", "median_days_to_target"]
    ),
    "score_bands": lambda g: F.score_band_figure(metric(g, "score_bands")),
    "pipeline_waterfall": lambda g: F.pipeline_waterfall_figure(metric(g, "pipeline_changes")[0], currency="USD", title="Pipeline change"),
    "pipeline_snapshot": lambda g: F.pipeline_snapshot_figure(metric(g, "pipeline_snapshot"), ("opportunity", "proposal"), currency="USD",
                                                              title="Open pipeline"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEMO_FIGURES))
def test_figures_on_demo_rows(demo, name):
    fig = DEMO_FIGURES[name](demo)
    assert fig.data, f"{name} drew nothing"
    assert F.EMPTY_MESSAGE not in annotation_texts(fig)
    assert any(len(t.customdata or ()) for t in fig.data)
    data = json.loads(fig.to_json())
    assert data["data"] and data["layout"]["title"]["text"]


def test_the_key_rate_card_names_the_conversion_window_and_only_it():
    windowed = [{**r, "window_days": 3} for r in WEEKLY_ROWS]
    notes = {c["kpi"]: c["footnote"] for c in F.kpi_card_values(windowed, W2, names=NAMES)}
    assert notes == {"new_leads": None, "key_rate": "conversions within 3 days only (the conversion window)",
                     "median_days_to_target": None}
    unwindowed = [{**r, "window_days": 0} for r in WEEKLY_ROWS]
    assert all(c["footnote"] is None for c in F.kpi_card_values(unwindowed, W2, names=NAMES))


def test_a_still_converting_key_rate_says_which_horizon_it_waits_for():
    """W2's cohort is immature: with a window the rate waits for the window, without one for the horizon."""
    def note(window):
        cards = F.kpi_card_values([{**r, "window_days": window} for r in WEEKLY_ROWS], W2, names=NAMES)
        return {c["kpi"]: c["immature_note"] for c in cards}

    assert note(3) == {"new_leads": None, "median_days_to_target": None, "key_rate":
                       "Some of this week's leads entered the cohort less than 3 days ago, the conversion window: the rate will still rise."}
    assert "maturity horizon" in note(0)["key_rate"] and "window" not in note(0)["key_rate"]
    mature = F.kpi_card_values(WEEKLY_ROWS, "2026-11-09", names=NAMES)
    assert all(c["immature_note"] is None for c in mature)


def test_kpi_cards_on_demo_rows(demo):
    rows = metric(demo, "weekly_kpis")
    cards = F.kpi_card_values(rows, rows[-1]["week"], names=F.kpi_names(load_config(None)))
    assert {c["kpi"] for c in cards} >= {"new_leads", "key_rate", "median_days_to_target"}
    rate = next(c for c in cards if c["kpi"] == "key_rate")
    assert rate["value_text"].endswith("%") and rate["label"] == "SQL rate"
    win = next(c for c in cards if c["kpi"] == "win_rate")
    assert win["label"] == "Win rate" and win["value_text"].endswith("%")
    json.dumps(cards)


def test_empty_filters_on_demo_give_empty_states(demo):
    nobody = (("channel", "no-such-channel"),)
    says = "No leads match the filters (channel = no-such-channel) in this period."
    assert_empty(F.funnel_figure(metric(demo, "funnel", filters=nobody), empty=says), says)
    assert_empty(F.stage_accounting_figure(metric(demo, "stage_accounting", filters=nobody), OUTCOMES))
    assert_empty(F.time_in_stage_figure(metric(demo, "time_in_stage", filters=nobody)))
    assert_empty(F.mix_vs_rate_figure(metric(demo, "mix_vs_rate", segment="channel", filters=nobody), cohort="MQLs"), "No MQLs")
    assert_empty(F.weekly_trend_figure(metric(demo, "weekly_kpis", filters=nobody), ["new_leads", "key_rate"]))


def test_kpi_tone_says_whether_a_change_is_good_news():
    from datetime import date

    from funnelboard.dashboard.figures import kpi_card_values

    week, prev = date(2026, 11, 16), date(2026, 11, 9)
    rows = []
    for kpi, before, now in (("reached_sql", 10, 12), ("exits", 10, 12), ("median_days_to_target", 5.0, 4.0), ("new_leads", 3, 3)):
        rows.append({"week": prev, "kpi": kpi, "value": before, "previous": None, "delta_week": None, "mean_4w": None, "delta_4w": None})
        rows.append({"week": week, "kpi": kpi, "value": now, "previous": before, "delta_week": now - before, "mean_4w": None, "delta_4w": None})
    tones = {c["kpi"]: c["tone"] for c in kpi_card_values(rows, week)}
    assert tones == {"reached_sql": "good", "exits": "bad", "median_days_to_target": "good", "new_leads": "neutral"}
