"""The header's saved views: name the current address, and open any saved one (a list of links).

Storage and its rules are in funnelboard/core/saved_views.py; here are the control and its one
callback. A saved address must be a page of this dashboard; opening it parses it like any pasted
link, so a value that no longer holds (a stage renamed since) is named under the filter bar.
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html
from flask import g as request_globals

from funnelboard.core import saved_views
from funnelboard.core.errors import UserError
from funnelboard.dashboard.runtime import URL, gateway

PANEL, LIST, NAME, SAVE, MESSAGE = "sv-panel", "sv-list", "sv-name", "sv-save", "sv-message"


def control() -> html.Details:
    return html.Details(
        [
            html.Summary("Saved views", className="sv-summary"),
            html.Div(
                [
                    html.Div(id=LIST, className="sv-list"),
                    html.Div(
                        [
                            html.Label("Name of the view to save", htmlFor=NAME, className="sv-label"),
                            dcc.Input(id=NAME, type="text", maxLength=saved_views.MAX_NAME, placeholder="Name this view"),
                            html.Button("Save view", id=SAVE, n_clicks=0, className="sv-save"),
                        ],
                        className="sv-form",
                    ),
                    html.Div(id=MESSAGE, className="sv-message", role="status"),
                ],
                className="sv-body",
            ),
        ],
        id=PANEL,
        className="saved-views",
    )


def _user() -> str:
    """The signed-in user's name ("" for everyone on a server without accounts)."""
    user = request_globals.get("funnelboard_user")
    return user.name if user is not None else ""


def is_page(pathname: str) -> bool:
    """Whether a registered page (not the not-found page) answers `pathname`."""
    from dash._pages import _path_to_page  # the router's own matcher, as the 404 status uses

    page, _ = _path_to_page(dash.strip_relative_path(pathname))
    return bool(page) and not page["module"].endswith(".not_found_404")


@callback(
    Output(LIST, "children"),
    Output(MESSAGE, "children"),
    Input(URL, "pathname"),
    Input(SAVE, "n_clicks"),
    State(NAME, "value"),
    State(URL, "search"),
)
def update(pathname: str | None, _clicks: int, name: str | None, search: str | None):
    path = saved_views.views_path(gateway().db)
    message = ""
    try:
        if ctx.triggered_id == SAVE:
            address = (pathname or "/") + (search or "")
            if not is_page(pathname or "/"):
                raise UserError("this address is no page of the dashboard, so it cannot be saved.")
            stored = saved_views.save(path, _user(), name, address)
            message = f"Saved “{stored}”."
        views = saved_views.views_of(path, _user())
    except UserError as exc:
        message = str(exc)[:1].upper() + str(exc)[1:]
        try:
            views = saved_views.views_of(path, _user())
        except UserError:
            views = []
    if not views:
        return html.P("No saved views yet.", className="sv-empty"), message
    return html.Ul([html.Li(dcc.Link(name, href=address, title=address)) for name, address in views]), message



# a move to another address (opening a view included) folds the panel away (assets/saved-views.js)
clientside_callback(ClientsideFunction("savedViews", "close"), Input(URL, "pathname"), Input(URL, "search"), prevent_initial_call=True)
