"""Leads: the list behind a number (a funnel bar, a segment bar, a heatmap cell), each a link to its timeline."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, dcc, html

from funnelboard.dashboard import theme
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.dashboard.state import replace_keys
from funnelboard.dashboard.tables import body_id, column, lead_columns, paged_body, paged_table_block, slip_columns, streams, windows
from funnelboard.dashboard.views import configured, guarded, view_request
from funnelboard.warehouse.lists import Slice
from funnelboard.warehouse.metrics import run_list, stream_list

dash.register_page(__name__, path="/leads", name="Leads", order=6, title="funnelboard · leads")

TABLE = "leads"
HEADER = "leads-header"
BODY = body_id(TABLE)
WHICH_LABELS = (("all", "All"), ("converted", "Converted"), ("not_converted", "Not converted"))


def columns(config) -> list[dict]:
    return [
        column("lead_id", "Lead", width=110) | {"cellClass": "link-cell", "pinned": "left"},
        column("from_at", "Entered cohort (UTC)", width=160),
        column("to_at", "Reached target (UTC)", width=160),
        column("converted", "Converted", width=105),
        column("immature", "Immature", width=100),
        column("stage_now", "Stage now", width=120) | {"sortable": False},  # looked up per block, not sortable
        column("in_stage_since", "Since (UTC)", width=150) | {"sortable": False},
        *lead_columns(config),
        *slip_columns(config),
    ]


def layout(**query) -> html.Div:
    return html.Div(
        [
            html.H1("Leads", className="page-title"),
            stage_pickers(query),
            html.Div(id=HEADER),
            paged_table_block(TABLE, "Cohort members"),
        ]
    )


def stage_pickers(query: dict) -> html.Div:
    """From and to stage as drop-downs written to the URL (a stage the funnel lacks shows the default
    and is named under the filter bar)."""
    from funnelboard.core.errors import UserError
    from funnelboard.dashboard.filters import page_control

    try:
        config = gateway().config()
    except UserError:
        return html.Div()
    stages = [(s, theme.stage_label(s)) for s in config.stages]

    def chosen(key: str) -> str | None:
        return query.get(key) if query.get(key) in config.stages else None

    return html.Div(
        [
            page_control("from_stage", "Cohort: reached", stages, chosen("from_stage"),
                         placeholder=theme.stage_label(config.review_rate.from_stage)),
            page_control("to_stage", "Converted: reached", stages, chosen("to_stage"),
                         placeholder=theme.stage_label(config.review_rate.to_stage)),
        ],
        className="page-controls stage-pickers",
    )


CHIP_KEYS = ("period", "from", "to", "from_stage", "to_stage", "which", "window")


def chips(search: str | None, config) -> html.Div | None:
    """What narrows this list, one chip per key of the address, each with an × link that removes it."""
    from urllib.parse import parse_qsl

    pairs = [(k, v) for k, v in parse_qsl((search or "").lstrip("?")) if k in CHIP_KEYS or k in config.segments]
    if not pairs:
        return None
    items = []
    for key, value in pairs:
        name = key.replace("_", " ")
        shown = theme.stage_label(value) if key in ("from_stage", "to_stage") and value in config.stages else value
        items.append(html.Span(
            [f"{name}: {shown}", dcc.Link("×", href="/leads" + replace_keys(search, {key: None}), className="chip-remove",
                                          title=f"Remove {name}")],
            className="chip",
        ))
    return html.Div(items, className="chips", role="group", **{"aria-label": "Filters of this list"})


@streams(TABLE)
def lead_rows(search: str | None):
    g = gateway()
    req, _view = view_request(g, search, strict=True)
    return "leads", stream_list(g, "leads", req)


@windows(TABLE)
def lead_window(search: str | None, sl: Slice):
    g = gateway()
    req, _view = view_request(g, search)
    return run_list(g, "leads", req, sl)


@callback(Output(HEADER, "children"), Output(BODY, "children"), Input(URL, "search"))
@guarded(outputs=2)
def update(search: str | None):
    g = gateway()
    req, view = view_request(g, search)
    config = g.config()
    from_stage = view.from_stage or config.review_rate.from_stage
    to_stage = view.to_stage or config.review_rate.to_stage
    which = view.which or "all"
    window = config.conversion_window_days if view.window_days is None else view.window_days
    scope = [f"{k.replace('_', ' ')} = {v}" for k, v in view.filters]
    window_text = "no window" if window == 0 else f"within {window} days"
    header = [
        html.P(
            [
                f"Leads that reached {theme.stage_label(from_stage)} in the period",
                (" · " + ", ".join(scope)) if scope else "",
                f"; converted = reached {theme.stage_label(to_stage)} {window_text} by the as-of date. ",
            ],
            className="page-subtitle",
        ),
        chips(search, config),
        html.Div(
            [
                dcc.Link(label, href=replace_keys(search, {"which": None if key == "all" else key}),
                         className="tab" + (" tab-active" if key == which else ""))
                for key, label in WHICH_LABELS
            ],
            className="tabs",
        ),
    ]
    return header, paged_body(TABLE, columns(configured()), search)
