"""Segments: conversion per segment value with Wilson intervals and tests, and the mix-vs-rate split."""

from __future__ import annotations

from dataclasses import replace

import dash
from dash import Input, Output, callback, html
from sqlglot import exp

from funnelboard.core import periods
from funnelboard.core.config import default_name
from funnelboard.dashboard import figures
from funnelboard.dashboard.comparison import compare_rows
from funnelboard.dashboard.drill import default_segment, segment_point
from funnelboard.dashboard.drill import register as register_drill
from funnelboard.dashboard.figures.segments import score_threshold_figure, segment_matrix_figure
from funnelboard.dashboard.notes import empty_for
from funnelboard.dashboard.runtime import URL, current_scope, gateway
from funnelboard.dashboard.theme import fmt_money, fmt_window, stage_label
from funnelboard.dashboard.views import graph_page, guarded, period_text, view_request
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.metrics.base import scoped

dash.register_page(__name__, path="/segments", name="Segments", order=2, title="funnelboard · segments")

CONVERSION = "segments-conversion"
NOTE = "segments-note"  # what the page's numbers cannot say: an attribute known only at a later stage
MIX = "segments-mix"
WINS = "segments-wins"
DEALS = "segments-deal-value"  # money per segment value: win rate by value, average won deal, sales cycle
SCORE = "segments-score-threshold"  # precision and recall of lead-score thresholds, the configured one drawn
DEFAULT_SEGMENT = "channel"


def layout(**query) -> html.Div:
    page = graph_page(
        "Segments",
        (
            "Conversion per segment value with 95 % Wilson intervals; grey = too few to judge, ★ = differs from the rest "
            "after Benjamini–Hochberg. Crossed with a second column: a matrix, n in each cell. Click a segment or a cell for its leads."
        ),
        [CONVERSION, MIX, WINS, SCORE],
    )
    page.children[-1].children.insert(3, html.Div(id=DEALS, className="panel"))
    page.children.insert(2, controls(query))
    page.children.insert(3, html.Div(id=NOTE, className="segments-note", role="note"))
    return page


def controls(query: dict) -> html.Div:
    """Segment column (one, or two crossed) and the stage pair, kept in the URL."""
    from funnelboard.core.errors import UserError
    from funnelboard.dashboard.filters import page_control

    try:
        config = gateway().config()
    except UserError:
        return html.Div()
    segments = [(c, c.replace("_", " ")) for c in config.segments]
    stages = [(s, stage_label(s)) for s in config.stages]

    def chosen(key: str, allowed) -> str | None:
        value = query.get(key)  # a key given twice arrives as a list: not a choice
        return value if isinstance(value, str) and value in allowed else None

    # A control shows the default as its placeholder and holds no value until the user picks one,
    # so opening the page never rewrites its URL.
    return html.Div(
        [
            page_control("segment", "Segment", segments, chosen("segment", config.segments),
                         placeholder=_default_segment(config).replace("_", " ")),
            page_control("segment2", "Crossed with", segments, chosen("segment2", config.segments), clearable=True, placeholder="none"),
            page_control("from_stage", "From stage", stages, chosen("from_stage", config.stages),
                         placeholder=stage_label(config.review_rate.from_stage)),
            page_control("to_stage", "To stage", stages, chosen("to_stage", config.stages),
                         placeholder=stage_label(config.review_rate.to_stage)),
            page_control("compare", "Compare with", [("previous", "previous period")], chosen("compare", periods.COMPARE),
                         clearable=True, placeholder="nothing"),
        ],
        className="page-controls",
    )


def _default_segment(config) -> str:
    return default_segment(config)


def _request(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    segment = view.segment or _default_segment(g.config())
    return g, req.__class__(**{**req.__dict__, "segment": segment}), view


def rate_name(config, from_stage: str | None, to_stage: str | None) -> str:
    """The name of the rate a stage pair makes: the key rate's own name, else "<S> → <T> rate"."""
    key = config.review_rate
    pair = (from_stage or key.from_stage, to_stage or key.to_stage)
    return key.name if pair == (key.from_stage, key.to_stage) else default_name(*pair)


@callback(Output(CONVERSION, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update(search: str | None):
    g, req, view = _request(search)
    rows = run_metric(g, "segment_conversion", req)
    # The segment values split the cohort exactly (a missing value is '(none)'), so their sums are
    # the `conversion` metric's cohort and converted: no second pass over the leads for the line.
    cohort = sum(r["n"] for r in rows)
    overall = sum(r["converted"] for r in rows) / cohort if cohort else None
    columns = [req.segment] + ([view.segment2] if view.segment2 else [])
    name = rate_name(g.config(), req.from_stage, req.to_stage)
    title = f"{name} by {' × '.join(c.replace('_', ' ') for c in columns)}"
    window = fmt_window(rows[0]["window_days"] if rows else 0)
    if view.segment2:
        title += " (colour = rate; n in each cell)"
        return segment_matrix_figure(
            rows, req.segment, view.segment2, title=subtitled(title, [window]), empty=empty_for(g, view),
        )
    comparison, label, against = None, "previous period", None
    before = previous_view(g, view)
    if before is not None:
        previous_rows = run_metric(g, "segment_conversion", replace(req, **_period_of(g, before)))
        comparison = compare_rows(rows, previous_rows, columns)
        label = f"previous period ({periods.span_text(before.start, before.end)})"
        against = f"against {label}; ≈ = change within the intervals' noise"
    title = subtitled(title, [against, window])
    return figures.segment_conversion_figure(
        rows, req.segment, overall_rate=overall, title=title, empty=empty_for(g, view),
        comparison=comparison, previous_label=label,
    )


def subtitled(title: str, lines: list[str | None]) -> str:
    """The title with the lines given (None: left out) as its subtitle."""
    shown = [line for line in lines if line]
    return title + (f"<br><sup>{'; '.join(shown)}</sup>" if shown else "")


def previous_view(g, view):
    """With ?compare=previous, the view over the period of the same length just before the page's
    (a missing start or end is the first event's day or the as-of day); else None."""
    if view.compare != "previous":
        return None
    facts, tz = g.facts(), g.config().timezone
    whole = replace(
        view,
        start=view.start or periods.as_of_day(facts["first_event"], tz),
        end=view.end or view.as_of or periods.as_of_day(facts["last_event"], tz),
    )
    return whole.previous()


def _period_of(g, view) -> dict:
    req = view.request(g.config())
    return {"start": req.start, "end": req.end}


@callback(Output(NOTE, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_note(search: str | None):
    """Name a chosen column whose values are known only for leads that reached a later stage."""
    g, req, view = _request(search)
    notes = []
    for column in dict.fromkeys(c for c in (req.segment, view.segment2) if c):
        found = known_only_after(g, column)
        if found:
            stage, with_value, reached = found
            notes.append(
                f"{column.replace('_', ' ').capitalize()} is known only for leads that reached {stage_label(stage)} "
                f"({with_value:,} of the {reached:,} that did have a value; no lead that did not has one): "
                f"its rates to {stage_label(stage)} or any earlier stage are 100 % for every value and about 0 % for (none) by construction."
            )
    return [html.P(n, className="note-warning") for n in notes] or None


KNOWN_AFTER_SHARE = 0.95  # of the leads that reached the stage, at least this share has a value


def known_only_after(g, column: str) -> tuple[str, int, int] | None:
    """The earliest later stage X such that `column` is null for every lead that did not reach X and set
    for most (KNOWN_AFTER_SHARE) of those that did, with those two counts; None when there is none.
    Read once per published file and scope (all the leads the user may see, whatever the filters)."""
    config = g.config()
    if column not in config.segments:
        return None
    name = exp.column(column, quoted=True).sql("duckdb")  # from the allow-list, quoted by sqlglot

    def compute():
        parts = []
        for i, stage in enumerate(config.stages[1:]):
            reached = exp.column(f"reached_{stage}", quoted=True).sql("duckdb")
            parts.append(
                f"count(*) filter (where {reached} is null and {name} is not null) as outside_{i}, "
                f"count(*) filter (where {reached} is not null and {name} is not null) as known_{i}, "
                f"count(*) filter (where {reached} is not null) as reached_{i}, "
                f"count(*) filter (where {reached} is null) as missed_{i}"
            )
        if not parts:
            return None
        sql, params = scoped(f"select {', '.join(parts)} from fct_leads", MetricRequest(scope=scope))
        row = g.query(sql, params).rows[0]
        for i, stage in enumerate(config.stages[1:]):
            outside, known, reached, missed = row[4 * i: 4 * i + 4]
            if missed and reached and not outside and known >= KNOWN_AFTER_SHARE * reached:
                return stage, known, reached
        return None

    scope = current_scope()
    return g.per_file(("known_only_after", column, scope), compute)


@callback(Output(MIX, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_mix(search: str | None):
    """The rate's change from the period before the page's period to the page's period (without one:
    the latest 28 days whose cohorts have matured and the 28 before), split into mix and rate."""
    g, req, view = _request(search)
    rows = run_metric(g, "mix_vs_rate", req.__class__(**{**req.__dict__, "segment2": None}))
    config = g.config()
    from_stage = req.from_stage or config.review_rate.from_stage
    total = rows[-1]
    tz = config.timezone
    periods = (period_text(total["before_from"], total["before_to"], tz), period_text(total["after_from"], total["after_to"], tz))
    name = rate_name(config, req.from_stage, req.to_stage)
    title = f"{name}: {periods[0]} against {periods[1]}, mix vs rate"
    young = None
    if total["mature_only"] and total["maturity_days"]:
        young = f"cohorts younger than {total['maturity_days']:.0f} days left out (still converting)"
    title = subtitled(title, [young, fmt_window(total["window_days"])])
    return figures.mix_vs_rate_figure(
        rows, rate_name=name, cohort=f"leads reaching {stage_label(from_stage)}", periods=periods, title=title,
        empty=empty_for(g, view),
    )


@callback(Output(WINS, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_wins(search: str | None):
    """The win rate per segment value: won / (won + lost) of the deals closed in the period."""
    g, req, view = _request(search)
    rows = run_metric(g, "win_rate", req.__class__(**{**req.__dict__, "segment2": None}))
    title = f"Win rate by {req.segment.replace('_', ' ')}: deals closed in the period"
    if rows and rows[0]["note"]:
        if unnamed := g.config().unnamed_losses():  # losses may be in the data, under an outcome not named one
            return figures.empty_figure("No win rate: no outcome is named a loss", hint=unnamed[0].upper() + unnamed[1:] + ".", title=title)
        return figures.empty_figure("No win rate: this data records no lost deal", title=title)
    shaped = [
        {req.segment: r[req.segment], "n": r["closed"], "converted": r["won"], "rate": r["win_rate"],
         "wilson_low": r["wilson_low"], "wilson_high": r["wilson_high"], "too_few": r["too_few"],
         "p_value": None, "q_value": None, "significant": False}
        for r in rows if r["closed"]
    ]
    closed = sum(r["n"] for r in shaped)
    overall = sum(r["converted"] for r in shaped) / closed if closed else None
    return figures.segment_conversion_figure(shaped, req.segment, overall_rate=overall, title=title, empty=empty_for(g, view))


@callback(Output(DEALS, "children"), Input(URL, "search"))
@guarded(outputs=1)
def update_deal_value(search: str | None):
    """Per segment value, the deals closed in the page's period in money (deal_value): the win rate by
    count beside the win rate by value, the average won deal and the median sales cycle."""
    from funnelboard.warehouse.metrics.base import Context

    g, req, view = _request(search)
    config = g.config()
    if config.amount_column is None:
        return None
    resolved = Context(g).resolve(replace(req, segment2=None))
    rows = [r for r in run_metric(g, "deal_value", resolved) if r["won_deals"] + r["lost_deals"]]
    name = req.segment.replace("_", " ")
    head = [name.capitalize(), "Won", "Lost", "Win rate (deals)", "Win rate (value)", "Average won deal", "Median cycle (days)"]

    def pct(x):
        return "–" if x is None else f"{x:.0%}"

    body = [html.Tr([html.Th(str(r[req.segment]), scope="row"), html.Td(f"{r['won_deals']:,}"), html.Td(f"{r['lost_deals']:,}"),
                     html.Td(pct(r["win_rate"])), html.Td(pct(r["value_win_rate"])), html.Td(fmt_money(r["avg_won_deal"], config.currency)),
                     html.Td("–" if r["median_cycle_days"] is None else f"{r['median_cycle_days']:.0f}")]) for r in rows]
    note = ("The deals that left the pipeline won or lost in the period, valued as they closed in "
            f"{config.currency or 'the reporting currency'}: a value rate under the deal rate means the big deals are the ones lost. "
            "The cycle runs from the deal first entering the pipeline to the win.")
    if not rows:
        return [html.H2(f"Deal value by {name}", className="panel-title"), html.P("No deal with an amount closed in the period.", className="muted")]
    return [html.H2(f"Deal value by {name}", className="panel-title"), html.P(note, className="muted"),
            html.Div(html.Table([html.Thead(html.Tr([html.Th(h, scope="col") for h in head])), html.Tbody(body)], className="changes-table"),
                     className="board-scroll")]


@callback(Output(SCORE, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_score_threshold(search: str | None):
    """Precision and recall of lead-score thresholds against reaching the key rate's second stage, the
    page's period (without one: the last full quarter) against the one before, the configured threshold drawn."""
    g, req, view = _request(search)
    config = g.config()
    title = "Lead-score thresholds"
    if config.score_column is None:
        return figures.empty_figure("No lead score in this data", hint="Name the lead-score column under [attributes] score in funnel.toml.", title=title)
    rows = run_metric(g, "score_threshold", replace(req, segment=None, segment2=None))
    target = stage_label(config.review_rate.to_stage)
    title = (f"Lead-score thresholds: who reaches {target}<br><sup>precision = share of the leads at or above the threshold "
             f"that reached {target}; recall = share of those reaching {target} that score at or above it</sup>")
    return score_threshold_figure(rows, title=title, empty=empty_for(g, view))




register_drill(CONVERSION, segment_point)
