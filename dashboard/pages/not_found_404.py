"""What an address no page answers shows: a way back to the review. Dash's router picks this page by
its module name; the server answers it with HTTP 404 (dashboard/app.py::not_found_status)."""

from __future__ import annotations

import dash
from dash import dcc, html

dash.register_page(__name__, path="/404", name="Page not found", title="funnelboard · page not found", hidden=True)


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Page not found", className="page-title"),
            html.P("No page of funnelboard answers this address. It may be mistyped, or from an older link.", className="page-subtitle"),
            html.P(dcc.Link("Back to the weekly review", href="/", className="not-found-home")),
        ],
        className="not-found",
    )
