"""The Dash app: a shell (header, navigation, data-quality badge) around the pages in dashboard/pages."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import dash
from dash import Dash, Input, Output, dcc, html
from flask import current_app

from warehouse.gateway import CACHE_ROWS, Gateway

PAGES = Path(__file__).parent / "pages"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
URL = "url"
BADGE = "dq-badge"


def gateway() -> Gateway:
    """The warehouse gateway of the app serving the current request (callbacks use this, never duckdb)."""
    return current_app.config["FUNNELBOARD_GATEWAY"]


def create_app(db: Path) -> Dash:
    """Build the app for one warehouse file; nothing is read until a page asks."""
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",  # the pages are imported below under their package names, once
        assets_folder=str(ASSETS),
        title="funnelboard",
        update_title=None,
    )
    for file in sorted(PAGES.glob("[!_]*.py")):
        module = importlib.import_module(f"dashboard.pages.{file.stem}")
        # Dash reads `layout` itself only from the modules of a pages_folder it imported.
        dash.page_registry[module.__name__].setdefault("layout", module.layout)
    importlib.import_module("dashboard.filters")
    importlib.import_module("dashboard.tables").register_downloads(app.server)
    # FUNNELBOARD_CACHE_ROWS=0 turns the result cache off (the latency benchmark's uncached pass)
    cache_rows = int(os.environ.get("FUNNELBOARD_CACHE_ROWS", CACHE_ROWS))
    app.server.config["FUNNELBOARD_GATEWAY"] = Gateway(Path(db), cache_rows=cache_rows)
    app.layout = shell
    return app


def shell() -> html.Div:
    from dashboard.filters import bar_placeholder, nav_link

    nav = [nav_link(page) for page in dash.page_registry.values() if not page.get("hidden")]
    return html.Div(
        [
            # callback-nav: a callback that writes the URL (filters, drill-downs) moves between
            # pages without a reload, and each write is a history entry for back / forward.
            dcc.Location(id=URL, refresh="callback-nav"),
            html.Header(
                [html.Span("funnelboard", className="brand"), html.Nav(nav, className="nav"), html.Span(id=BADGE, className="badge")],
                className="header",
            ),
            bar_placeholder(),
            html.Main(dash.page_container, className="main"),
        ],
        className="shell",
    )


@dash.callback(Output(BADGE, "children"), Output(BADGE, "className"), Input(URL, "pathname"))
def quality_badge(_pathname: str | None):
    """A badge every page shows: how many rows sit in the quarantine and unmapped labels."""
    from warehouse.publish import NoWarehouse

    try:
        quarantined = gateway().query("select count(*) from quarantine").rows[0][0]
    except NoWarehouse:
        return "no warehouse yet", "badge badge-bad"
    if quarantined:
        return dcc.Link(f"{quarantined:,} rows quarantined", href="/data-quality"), "badge badge-warn"
    return "data clean", "badge badge-ok"
