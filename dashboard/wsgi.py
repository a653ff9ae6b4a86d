"""The dashboard as a WSGI application, for `funnelboard serve` and for a WSGI server of your own
(docs/deploy.md):

    FUNNELBOARD_DB=/srv/funnelboard.duckdb gunicorn --workers 1 --threads 8 --bind 127.0.0.1:8050 \\
        'funnelboard.dashboard.wsgi:from_env()'

Nothing is built or read at import: the WSGI server calls `from_env()` once per worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from funnelboard.dashboard.app import create_app, keep_warm

if TYPE_CHECKING:
    from dash import Dash
    from flask import Flask

DEFAULT_DB = "funnelboard.duckdb"  # the CLI's default too (funnelboard/cli/common.py)


def build_app(db: Path) -> Dash:
    """The Dash app for one warehouse, its default views kept warm unless the result cache is off."""
    app = create_app(db)
    if app.server.config["FUNNELBOARD_GATEWAY"].cache_rows:
        # the default views computed before the first visitor asks; a stopping server calls .stop()
        app.server.config["FUNNELBOARD_WARMER"] = keep_warm(app)
    return app


def build_server(db: Path) -> Flask:
    """The WSGI application of `build_app(db)`."""
    return build_app(db).server


def from_env() -> Flask:
    """`build_server` for the warehouse FUNNELBOARD_DB names (default ./funnelboard.duckdb): a WSGI
    server's factory call. It serves without accounts: see docs/deploy.md."""
    return build_server(Path(os.environ.get("FUNNELBOARD_DB") or DEFAULT_DB))
