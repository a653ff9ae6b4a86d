"""What a page's callbacks need from the running app: the id of the URL component every callback
reads, and the warehouse gateway of the app serving the current request."""

from __future__ import annotations

from flask import current_app

from funnelboard.warehouse.gateway import Gateway

URL = "url"


def gateway() -> Gateway:
    """The warehouse gateway of the app serving the current request (callbacks use this, never duckdb)."""
    return current_app.config["FUNNELBOARD_GATEWAY"]
