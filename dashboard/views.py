"""What every page shares: turning the URL into a metric request, empty states, user errors as messages."""

from __future__ import annotations

import functools
from dataclasses import replace

import dash
from dash import html

from funnelboard.core.errors import UserError
from funnelboard.dashboard import state
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest
from funnelboard.warehouse.publish import NoWarehouse


def view_request(g: Gateway, search: str | None, *, strict: bool = False) -> tuple[MetricRequest, state.ViewState]:
    """The metric request an address asks for. A page ignores bad values (and says so under the filter
    bar); `strict` (an export) refuses them with a UserError, so a file is never wider than its address."""
    from funnelboard.dashboard.runtime import current_scope

    config = g.config()
    view = state.parse(search, config)
    if strict and view.problems:
        raise UserError(state.problem_line(view.problems, refused=True))
    return replace(view.request(config), scope=current_scope()), view


def graph_page(title: str, subtitle: str, graph_ids: list[str], *, side_by_side: bool = False) -> html.Div:
    """The layout most views share: a title, a one-line explanation and graphs in panels."""
    from funnelboard.dashboard.a11y import chart

    panels = [html.Div(chart(g), className="panel") for g in graph_ids]
    return html.Div(
        [
            html.H1(title, className="page-title"),
            html.P(subtitle, className="page-subtitle"),
            html.Div(panels, className="grid-2") if side_by_side else html.Div(panels),
        ]
    )


def configured():
    """The warehouse's config for a layout; None without a warehouse (its callback says how to load one)."""
    from funnelboard.dashboard.runtime import gateway

    try:
        return gateway().config()
    except UserError:
        return None


def empty_state(message: str) -> html.Div:
    return html.Div(message, className="empty")


def no_warehouse() -> html.Div:
    """What a page shows before anything is published: no path (the operator has it in serve's log)."""
    return html.Div(
        [
            html.P("No warehouse is published here yet."),
            html.P(["Load one with ", html.Code("funnelboard load EVENTS.csv --db PATH"), " or try ", html.Code("funnelboard demo"), "."]),
        ],
        className="empty",
    )


def public(exc: UserError) -> str:
    """A user error as a page may show it: the warehouse's path (the server's file system) left out."""
    from funnelboard.dashboard.runtime import gateway

    text = str(exc)
    try:
        db = gateway().db
    except RuntimeError:  # no app context: nothing to hide
        return text
    text = text.replace(str(db), db.name)
    return text.replace(str(db.parent.resolve()) + "/", "") if len(db.parent.resolve().parts) > 1 else text


def guarded(*, outputs: int, first: str = "children"):
    """A callback whose user errors (no warehouse, bad filter) become a message in its first output, never a traceback.

    `first` says what the first output is: "children" (a message block) or "figure" (an empty
    figure whose annotation carries the message). The other outputs are left as they are.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as exc:
                message = "No warehouse is published here yet." if isinstance(exc, NoWarehouse) else public(exc)
                if first == "figure":
                    from funnelboard.dashboard.figures import empty_figure

                    shown = empty_figure(message)
                elif isinstance(exc, NoWarehouse):
                    shown = no_warehouse()
                else:
                    shown = html.Div(message, className="empty")
                if outputs == 1:
                    return shown
                return (shown, *([dash.no_update] * (outputs - 1)))

        return inner

    return wrap


def period_text(start, end, tz: str) -> str:
    """A half-open UTC period as local dates, '1 Oct – 28 Oct 2026' (the last day inclusive)."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    def local(moment):
        return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).date()

    first, last = local(start), local(end - timedelta(microseconds=1))
    return f"{first:%d %b} – {last:%d %b %Y}" if first.year == last.year else f"{first:%d %b %Y} – {last:%d %b %Y}"
