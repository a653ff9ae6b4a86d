"""Segments: conversion per segment value with Wilson intervals and tests, and the mix-vs-rate split."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, html

from funnelboard.dashboard import figures
from funnelboard.dashboard.drill import register as register_drill
from funnelboard.dashboard.drill import segment_point
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.views import graph_page, guarded, view_request
from funnelboard.warehouse.metrics import run_metric

dash.register_page(__name__, path="/segments", name="Segments", order=2, title="funnelboard · segments")

CONVERSION = "segments-conversion"
MIX = "segments-mix"
DEFAULT_SEGMENT = "channel"


def layout(**query) -> html.Div:
    page = graph_page(
        "Segments",
        (
            "Conversion per segment value with 95 % Wilson intervals; grey = too few to judge, ★ = differs from the rest "
            "after Benjamini–Hochberg. Click a segment for its leads."
        ),
        [CONVERSION, MIX],
    )
    page.children.insert(2, controls(query))
    return page


def controls(query: dict) -> html.Div:
    """Segment column (one, or two crossed) and the stage pair, kept in the URL."""
    from funnelboard.core.errors import UserError
    from funnelboard.dashboard.filters import page_control
    from funnelboard.dashboard.theme import stage_label

    try:
        config = gateway().config()
    except UserError:
        return html.Div()
    segments = [(c, c.replace("_", " ")) for c in config.segments]
    stages = [(s, stage_label(s)) for s in config.stages]

    def chosen(key: str, allowed) -> str | None:
        return query.get(key) if query.get(key) in allowed else None

    # A control shows the default as its placeholder and holds no value until the user picks one,
    # so opening the page never rewrites its URL.
    return html.Div(
        [
            page_control("segment", "Segment", segments, chosen("segment", config.segments),
                         placeholder=_default_segment(config).replace("_", " ")),
            page_control("segment2", "Crossed with", segments, chosen("segment2", config.segments), clearable=True, placeholder="none"),
            page_control("from_stage", "From stage", stages, chosen("from_stage", config.stages), placeholder=stage_label(config.stages[1])),
            page_control("to_stage", "To stage", stages, chosen("to_stage", config.stages), placeholder=stage_label(config.stages[2])),
        ],
        className="page-controls",
    )


def _default_segment(config) -> str:
    return DEFAULT_SEGMENT if DEFAULT_SEGMENT in config.segments else next(iter(config.segments))


def _request(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    segment = view.segment or _default_segment(g.config())
    return g, req.__class__(**{**req.__dict__, "segment": segment}), view


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
    return figures.segment_conversion_figure(rows, columns if len(columns) > 1 else req.segment, overall_rate=overall)


@callback(Output(MIX, "figure"), Input(URL, "search"))
@guarded(outputs=1, first="figure")
def update_mix(search: str | None):
    g, req, _view = _request(search)
    # The mix / rate split is of the SQL rate (mql -> sql) whatever stage pair the page shows.
    mix_req = req.__class__(**{**req.__dict__, "segment2": None, "start": None, "end": None, "from_stage": None, "to_stage": None})
    return figures.mix_vs_rate_figure(run_metric(g, "mix_vs_rate", mix_req))


register_drill(CONVERSION, segment_point)
