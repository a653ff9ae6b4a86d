"""A reason keeps its colour whatever the filters (its rank in all the exits sets it), distinct
reasons get distinct colours, and the Pareto's axes are readable (cut labels, a titled 0-100 % axis)."""

from __future__ import annotations

from funnelboard.dashboard import figures, theme
from funnelboard.dashboard.figures.disqualifiers import LABEL_CHARS, NO_REASON_COLOR, REASON_PALETTE
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric


def _line_colors(fig) -> dict[str, str]:
    return {t.name: t.line.color for t in fig.data if t.name != "Other reasons"}


def test_a_reason_has_one_colour_under_any_filter_and_reasons_differ(app, db):
    import funnelboard.dashboard.pages.disqualifiers as page

    g = Gateway(db)
    channels = [r["channel"] for r in run_metric(g, "segment_conversion", MetricRequest(segment="channel"))]
    with app.server.test_request_context():
        seen: dict[str, str] = {}
        shown = []
        for search in ["", f"?channel={channels[0]}", f"?channel={channels[-1]}"]:
            colors = _line_colors(page.update_trend(search))
            assert len(set(colors.values())) == len(colors), colors  # five reasons, five colours
            for name, color in colors.items():
                assert seen.setdefault(name, color) == color, (name, search)
            shown.append(set(colors))
    assert len(set().union(*shown)) > len(shown[0]), "the filters changed which reasons are on top, or the test shows nothing"


def test_the_colours_follow_the_unfiltered_rank_not_the_charts_own():
    rows = [
        {"week": "2026-09-07", "outcome": "lost", "reason": "Price", "exits": 1},
        {"week": "2026-09-07", "outcome": "lost", "reason": "Timing", "exits": 5},
    ]
    ranked = [("lost", "Price"), ("lost", "Timing")]  # Price leads in all the data, Timing in this slice
    fig = figures.disqualifier_trend_figure(rows, colors=figures.reason_colors(ranked))
    assert _line_colors(fig) == {"Timing (lost)": theme.CATEGORICAL[1], "Price (lost)": theme.CATEGORICAL[0]}
    assert "#999999" not in figures.reason_colors([("lost", str(i)) for i in range(20)]).values()


def test_the_pareto_cuts_long_reasons_keeps_them_whole_on_hover_and_titles_its_share_axis():
    long = "Procurement requires three quotes from local vendors"
    rows = [
        {"outcome": "lost", "reason": long, "exits": 3, "share": 0.75, "cumulative_share": 0.75},
        {"outcome": "lost", "reason": "Budget", "exits": 1, "share": 0.25, "cumulative_share": 1.0},
    ]
    fig = figures.disqualifier_pareto_figure(rows)
    bar = fig.data[0]
    assert bar.orientation == "h"  # reasons read level on their own rows: no label over another
    assert bar.y[0] == long[: LABEL_CHARS - 1].rstrip() + "…" and len(bar.y[0]) <= LABEL_CHARS
    assert long in bar.hovertext[0] and bar.y[1] == "Budget"
    share = fig.layout.xaxis2
    assert share.title.text == "Cumulative share (%)" and list(share.range) == [0, 1.05]
    assert list(share.tickvals) == [0, 0.25, 0.5, 0.75, 1] and share.tickformat == theme.PERCENT_AXIS_FORMAT  # 0-100 %
    assert share.overlaying == "x" and share.side == "top" and fig.data[-1].xaxis == "x2"
    # two reasons that would be cut to the same label keep their whole text
    twins = [dict(rows[0]), {**rows[0], "reason": long + " (EU)", "exits": 2}]
    assert set(figures.disqualifier_pareto_figure(twins).data[0].y) == {long, long + " (EU)"}


def test_a_missing_reason_is_grey_and_takes_no_colour_from_the_others():
    ranked = [("lost", "(no reason recorded)"), ("lost", "Price"), ("nurture", "(no reason recorded)"), ("lost", "Timing")]
    colors = figures.reason_colors(ranked)
    assert colors[("lost", "(no reason recorded)")] == colors[("nurture", "(no reason recorded)")] == NO_REASON_COLOR
    assert (colors[("lost", "Price")], colors[("lost", "Timing")]) == REASON_PALETTE[:2]


def test_reasons_shown_together_never_share_a_colour_while_the_palette_has_room():
    ranked = [("lost", f"Reason {i}") for i in range(len(REASON_PALETTE) + 3)]
    colors = figures.reason_colors(ranked)
    first, past = ranked[0], ranked[len(REASON_PALETTE)]  # one slot: the palette has cycled
    assert colors[first] == colors[past]
    rows = [{"week": "2026-09-07", "outcome": o, "reason": r, "exits": n} for (o, r), n in ((first, 5), (past, 4), (ranked[1], 3))]
    lines = _line_colors(figures.disqualifier_trend_figure(rows, colors=colors))
    assert lines["Reason 0 (lost)"] == colors[first] and lines["Reason 1 (lost)"] == colors[ranked[1]]  # the ranked keep theirs
    assert len(set(lines.values())) == 3 and lines[f"Reason {len(REASON_PALETTE)} (lost)"] in REASON_PALETTE


def test_an_outcome_keeps_its_colour_in_every_chart_under_any_filter(app, db):
    import funnelboard.dashboard.pages.disqualifiers as page
    import funnelboard.dashboard.pages.funnel as funnel_page

    g = Gateway(db)
    channels = [r["channel"] for r in run_metric(g, "segment_conversion", MetricRequest(segment="channel"))]
    seen: dict[str, str] = {}
    with app.server.test_request_context():
        for search in [f"?channel={channels[0]}", f"?channel={channels[-1]}"]:
            pareto = {t.name: t.marker.color for t in page.update(search).data if t.type == "bar"}
            accounting = {t.name.removeprefix("Exited: ").capitalize(): t.marker.color
                          for t in funnel_page.update_accounting(search).data if t.name.startswith("Exited: ")}
            assert len(set(pareto.values())) == len(pareto) >= 3
            for name, color in [*pareto.items(), *accounting.items()]:
                assert seen.setdefault(name, color) == color, (name, search)
