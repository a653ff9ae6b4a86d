"""What a page's callbacks need from the running app: the id of the URL component every callback
reads, and the warehouse gateway of the app serving the current request."""

from __future__ import annotations

from flask import current_app, g, has_app_context

from funnelboard.warehouse.gateway import Gateway

URL = "url"


def gateway() -> Gateway:
    """The warehouse gateway of the app serving the current request (callbacks use this, never duckdb)."""
    return current_app.config["FUNNELBOARD_GATEWAY"]


def current_scope() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The signed-in user's scope (column -> allowed values), applied to every request the pages make;
    () for a user without one or a server without accounts (dashboard/accounts.py sets the user)."""
    if not has_app_context():  # a caller outside a request (a test, the report renderer) has no user
        return ()
    user = g.get("funnelboard_user")
    return user.scope if user is not None else ()
