"""The Dash app: a shell (header, navigation, data-quality badge) around the pages in dashboard/pages."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
import time
from pathlib import Path

import dash
from dash import Dash, Input, Output, dcc, html

from funnelboard.dashboard import a11y, saved_views
from funnelboard.dashboard.runtime import URL, gateway
from funnelboard.warehouse.gateway import CACHE_ROWS, Gateway

log = logging.getLogger("funnelboard.dashboard")
PAGES = Path(__file__).parent / "pages"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
BADGE = "dq-badge"
HEADER_TOOLS = "header-tools"
MENU, MENU_BUTTON = "site-menu", "site-menu-button"
FILTERS, FILTER_BUTTON = "filter-panel", "filter-panel-button"


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
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)  # screen readers pick the voice
    for file in sorted(PAGES.glob("[!_]*.py")):
        module = importlib.import_module(f"funnelboard.dashboard.pages.{file.stem}")
        # Dash reads `layout` itself only from the modules of a pages_folder it imported.
        dash.page_registry[module.__name__].setdefault("layout", module.layout)
    importlib.import_module("funnelboard.dashboard.filters")
    importlib.import_module("funnelboard.dashboard.tables").register_downloads(app.server)
    _own_callbacks(app)
    a11y.register_chart_alternatives(app)
    a11y.register_toggles(app, [(MENU_BUTTON, MENU), (FILTER_BUTTON, FILTERS)], URL)
    # FUNNELBOARD_CACHE_ROWS=0 turns the result cache off (the latency benchmark's uncached pass)
    cache_rows = int(os.environ.get("FUNNELBOARD_CACHE_ROWS", CACHE_ROWS))
    app.server.config["FUNNELBOARD_GATEWAY"] = Gateway(Path(db), cache_rows=cache_rows)
    app.server.config["FUNNELBOARD_WARM"] = {}  # the published file's stamp -> views warmed, seconds
    app.server.add_url_rule("/healthz", "funnelboard_health", functools.partial(health, app))
    app.layout = shell
    secure_headers(app)
    not_found_status(app)
    return app


def secure_headers(app: Dash) -> None:
    """Every response says what the browser may do with it: scripts only from this server (and Dash's
    inline scripts, by their hashes), no framing, no MIME sniffing, no referrer beyond this origin."""
    headers: dict[str, str] = {}

    def policy() -> str:
        # Dash adds its inline scripts (the clientside callbacks) while setting up for the first
        # request: hashed then, not at create_app
        return "; ".join([
            "default-src 'self'",
            "script-src 'self' " + " ".join(app.csp_hashes()),  # each already quoted: 'sha256-...'
            "style-src 'self' 'unsafe-inline'",  # React and Plotly set inline styles
            "img-src 'self' data: blob:",  # Plotly's PNG download and its modebar icons
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ])

    @app.server.after_request
    def add_headers(response):
        if not headers:
            headers.update({
                "Content-Security-Policy": policy(),
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin",
            })
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response


def not_found_status(app: Dash) -> None:
    """An address no page answers gets HTTP 404 (Dash serves the same shell for every path, with 200);
    the shell still renders, and its router shows the not-found page with a link back to the review."""
    from dash._pages import _path_to_page  # the router's own matcher, so the status and the page agree
    from flask import request

    catchall = app.config.routes_pathname_prefix + "<path:path>"

    @app.server.after_request
    def status(response):
        rule = request.url_rule
        if response.status_code == 200 and rule is not None and rule.endpoint == catchall:
            page, _ = _path_to_page(app.strip_relative_path(request.path))
            if not page or page["module"].endswith(".not_found_404"):
                response.status_code = 404
        return response


def health(app: Dash):
    """GET /healthz: whether a warehouse is published and whether its default views are computed
    (for a load balancer, a deploy script, or the latency benchmark waiting for the warm-up)."""
    g = app.server.config["FUNNELBOARD_GATEWAY"]
    stamp = g._stamp()
    warmed = app.server.config["FUNNELBOARD_WARM"].get(stamp)
    body = {  # no path or other detail of the machine: whoever reaches the server may read this
        "published": bool(stamp[0]),
        "cache_rows": g.cache_rows,
        "warm": warmed is not None,
        "warmed_views": warmed[0] if warmed else 0,
        "warm_seconds": round(warmed[1], 3) if warmed else None,
    }
    return body, 200 if body["published"] else 503


_CALLBACKS: tuple[dict, list] | None = None


def _own_callbacks(app: Dash) -> None:
    """Give this app its own copy of every `dash.callback` of the pages.

    Dash moves the global callbacks into the first app that serves a request and leaves none
    for the next, so a second app in one process (tests, `serve` after a failed start) would
    answer every callback with "Callback function not found". The modules register once, at
    import; the registry is taken here once and copied into each app.
    """
    global _CALLBACKS
    from dash import _callback

    if _CALLBACKS is None:
        _CALLBACKS = (dict(_callback.GLOBAL_CALLBACK_MAP), list(_callback.GLOBAL_CALLBACK_LIST))
        _callback.GLOBAL_CALLBACK_MAP.clear()
        _callback.GLOBAL_CALLBACK_LIST.clear()
    app.callback_map.update({k: dict(v) for k, v in _CALLBACKS[0].items()})
    app._callback_list.extend(dict(c) for c in _CALLBACKS[1])


def shell() -> html.Div:
    """Header (brand, page menu, header tools), the filter bar and the page, in landmarks a screen
    reader lists. On a phone the menu and the filter bar fold behind a button each (assets/style.css)."""
    from funnelboard.dashboard.filters import bar_placeholder, nav_link

    nav = [nav_link(page) for page in dash.page_registry.values() if not page.get("hidden")]
    return html.Div(
        [
            # callback-nav: a callback that writes the URL (filters, drill-downs) moves between
            # pages without a reload, and each write is a history entry for back / forward.
            dcc.Location(id=URL, refresh="callback-nav"),
            html.Header(
                [
                    dcc.Link("funnelboard", href="/", className="brand"),
                    html.Button("Menu", id=MENU_BUTTON, className="menu-button", **{"aria-expanded": "false", "aria-controls": MENU}),
                    html.Nav(nav, id=MENU, className="nav", **{"aria-label": "Pages"}),
                    # header controls: the data-quality badge (saved views and others go beside it)
                    html.Div([saved_views.control(), html.Span(id=BADGE, className="badge")], id=HEADER_TOOLS, className="header-tools"),
                ],
                className="header",
            ),
            html.Section(
                [
                    html.Button("Filters", id=FILTER_BUTTON, className="filters-button", **{"aria-expanded": "false", "aria-controls": FILTERS}),
                    html.Div(bar_placeholder(), id=FILTERS, className="filter-panel"),
                ],
                className="filters",
                **{"aria-label": "Filters"},
            ),
            html.Main(dash.page_container, id="main", className="main"),
        ],
        className="shell",
    )


def default_views() -> list:
    """Every page callback that depends on the query string alone, and each paged grid's first
    block: what opening a page with no filters computes."""
    import inspect

    from funnelboard.dashboard import tables

    views = []
    for file in sorted(PAGES.glob("[!_]*.py")):
        module = importlib.import_module(f"funnelboard.dashboard.pages.{file.stem}")
        for name, fn in sorted(vars(module).items()):
            if name.startswith("update") and callable(fn) and list(inspect.signature(fn).parameters) == ["search"]:
                views.append(functools.partial(fn, ""))
    for table in sorted(tables._WINDOWS):
        views.append(functools.partial(tables.window_rows, table, "", {"startRow": 0, "endRow": tables.BLOCK}))
    return views


def warm(app: Dash) -> int:
    """Compute the default views into the gateway's result cache; returns how many ran."""
    with app.server.app_context():
        views = default_views()
        for view in views:
            try:
                view()
            except Exception:  # noqa: BLE001 - warming is best effort; the page shows its own error
                log.exception("warming %s failed", view)
    return len(views)


def warm_published(app: Dash, stamp: tuple) -> None:
    """Warm the default views of the file published as `stamp` and record it for /healthz."""
    started = time.perf_counter()
    n = warm(app)
    seconds = time.perf_counter() - started
    app.server.config["FUNNELBOARD_WARM"] = {stamp: (n, seconds)}
    log.info("warmed %d default views in %.1f s", n, seconds)


class Warmer:
    """The thread `keep_warm` starts; `stop()` ends it and waits for it (a server stopping calls it:
    a thread ending while the interpreter finalizes would drop its DuckDB cursor there)."""

    def __init__(self, app: Dash, every: float):
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, args=(app, every), name="funnelboard-warm", daemon=True)

    def _loop(self, app: Dash, every: float) -> None:
        g = app.server.config["FUNNELBOARD_GATEWAY"]
        seen = None
        while not self._stopped.is_set():
            stamp = g._stamp()
            if stamp != seen and stamp[0]:
                warm_published(app, stamp)
                seen = stamp
            self._stopped.wait(every)

    def stop(self, timeout: float = 30.0) -> None:
        self._stopped.set()
        self.thread.join(timeout)


def keep_warm(app: Dash, every: float = 5.0) -> Warmer:
    """Warm the default views when the server starts and again each time a newer warehouse is
    published (checked every few seconds) in a daemon thread, so the first visitor after a load is
    answered from memory instead of waiting seconds at 10M events."""
    warmer = Warmer(app, every)
    warmer.thread.start()
    return warmer


@dash.callback(Output(BADGE, "children"), Output(BADGE, "className"), Input(URL, "pathname"))
def quality_badge(_pathname: str | None):
    """A badge every page shows: how many rows sit in the quarantine and unmapped labels."""
    from funnelboard.warehouse.publish import NoWarehouse

    try:
        quarantined = gateway().query("select count(*) from quarantine").rows[0][0]
    except NoWarehouse:
        return "no warehouse yet", "badge badge-bad"
    if quarantined:
        return dcc.Link(f"{quarantined:,} rows quarantined", href="/data-quality"), "badge badge-warn"
    return "data clean", "badge badge-ok"
