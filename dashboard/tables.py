"""Tables: an AG Grid with a row count and a CSV export that writes what `funnelboard query` prints.

A page declares a table with `table_block(table_id, ...)` and registers how its rows are made
with `@exports(table_id)`: a function of (pathname, search) returning (file name, rows). The
page's callback fills the grid with `grid_rows(rows)`; the one export callback here calls the
same function again on click and sends `rows_to_csv(rows)`, so the file is the full result
(not the page of rows on screen) and byte for byte the `--format csv` output of the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime

import dash_ag_grid as dag
from dash import ALL, MATCH, Input, Output, State, callback, ctx, dcc, html, no_update

from funnelboard.core.export import rows_to_csv
from funnelboard.dashboard.runtime import URL
from funnelboard.warehouse.lists import Slice

DISPLAY_CAP = 5_000  # rows sent to the browser; the export has them all
BLOCK = 100  # rows per request of a paged grid
CHUNK_ROWS = 5_000  # rows per chunk of a streamed download
GRID, EXPORT, DOWNLOAD, COUNT, BODY, EXPORT_LINK = "fb-grid", "fb-export", "fb-download", "fb-count", "fb-body", "fb-export-link"
_EXPORTS: dict[str, Callable[[str | None, str | None], tuple[str, list[dict]]]] = {}
_WINDOWS: dict[str, Callable[[str | None, Slice], tuple[list[dict], int]]] = {}
_STREAMS: dict[str, Callable[[str | None], tuple[str, Iterable[dict]]]] = {}

NUMBER = {"function": "params.value == null ? '' : d3.format(',.1f')(params.value)"}
INTEGER = {"function": "params.value == null ? '' : d3.format(',')(params.value)"}
PERCENT = {"function": "params.value == null ? '' : d3.format('.1%')(params.value)"}
# Readable cells: named functions of assets/dashAgGridFunctions.js, run by dash-ag-grid's own
# expression interpreter (no eval: the app's CSP has no 'unsafe-eval'). Display only: the CSV keeps
# the values as the CLI prints them.
TEXT = {"function": "fbText(params.value)"}  # booleans as Yes/No, the rest as it is
YES_NO = {"function": "fbYesNo(params.value)"}
DAYS = {"function": "fbDays(params.value)"}  # whole days, rounded down
ID_WIDTH = 150  # an id column grows no wider: a longer id is ellipsised, its full value the cell's title


def exports(table_id: str):
    """Register the rows behind a table for its CSV export."""

    def register(fn):
        _EXPORTS[table_id] = fn
        return fn

    return register


def export_rows(table_id: str, pathname: str | None, search: str | None) -> tuple[str, list[dict]]:
    return _EXPORTS[table_id](pathname, search)


def streams(table_id: str):
    """Register a paged table's download: fn(search) -> (file name, rows read as they are written)."""

    def register(fn):
        _STREAMS[table_id] = fn
        return fn

    return register


def export_href(table_id: str, search: str | None) -> str:
    return f"/export/{table_id}.csv{search or ''}"


def register_downloads(server) -> None:
    """GET /export/<table>.csv?<the view's query string>: the table's CSV, streamed as DuckDB reads it,
    so a list of millions of rows never sits in the server's memory (nor in a callback's JSON)."""
    from flask import Response, abort, request, stream_with_context

    from funnelboard.core.errors import UserError
    from funnelboard.core.export import csv_chunks

    def download(table_id: str):
        if table_id not in _STREAMS:
            abort(404)
        search = "?" + request.query_string.decode("utf-8", "replace") if request.query_string else ""
        try:
            name, rows = _STREAMS[table_id](search)
        except UserError as exc:
            return Response(f"{exc}\n", status=400, mimetype="text/plain")
        return Response(
            stream_with_context(csv_chunks(rows, chunk_rows=CHUNK_ROWS)),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    server.add_url_rule("/export/<table_id>.csv", "funnelboard_export", download)


def windows(table_id: str):
    """Register how a paged table fetches a window of its rows: fn(search, Slice) -> (rows, total)."""

    def register(fn):
        _WINDOWS[table_id] = fn
        return fn

    return register


def money(currency: str | None, per_row: str | None = None) -> dict:
    """A money cell: thousands separators, and the configured currency code (checked to be an ISO 4217
    code by the config, so it is safe inside the expression); `per_row`: the row's field holding its own
    currency (a deal's), the configured code standing in where the row has none."""
    code = f"'{currency}'" if currency else "''"
    if per_row:
        return {"function": f"fbMoney(params.value, params.data.{per_row} || {code})"}
    return {"function": f"fbMoney(params.value, {code})" if currency else "fbMoney(params.value)"}


def column(field: str, header: str | None = None, *, kind: str = "text", width: int | None = None, link: str | None = None,
           currency: str | None = None, per_row: str | None = None) -> dict:
    """One column definition; link is a URL prefix for the cell value. kind: text (a boolean shows Yes/No),
    bool, id (ellipsised past ID_WIDTH, the full value on hover; `lead_id` always is one), or a number:
    int, number (one decimal), percent, days (whole days), money (thousands separators, then `currency`)."""
    col: dict = {"field": field, "headerName": header or field.replace("_", " ").capitalize(), "cellDataType": False}
    if kind in ("int", "number", "percent", "days", "money"):
        col["type"] = "rightAligned"
        col["filter"] = "agNumberColumnFilter"
        col["valueFormatter"] = {"int": INTEGER, "number": NUMBER, "percent": PERCENT, "days": DAYS, "money": money(currency, per_row)}[kind]
    elif kind == "bool":
        col["valueFormatter"] = YES_NO
    elif not link:
        col["valueFormatter"] = TEXT
    if kind == "id" or field == "lead_id":
        col["maxWidth"] = max(ID_WIDTH, width or 0)
        col["tooltipField"] = field
    if width:
        col["minWidth"] = width  # columns share the spare width (flex) but never shrink below this
    if link:
        col["cellRenderer"] = "markdown"
        col["valueGetter"] = {"function": f"params.data.{field} == null ? '' : '[' + params.data.{field} + '](" + link + "' + encodeURIComponent(params.data.{field}) + ')'"}
    return col


def lead_columns(config) -> list[dict]:
    """The lead columns every lead list ends with, as the metrics order them: owner, the other segments,
    amount (in the deal's own currency with [pipeline] deal_currency, else the config's); a config of
    None (no warehouse yet) gives no segment columns."""
    segments = config.segments if config else ()
    per_row = "amount_currency" if config and config.deal_currency_column else None
    return [
        column("owner", "Owner", width=140),
        *[column(s, width=130) for s in segments if s != "owner"],
        column("amount", "Amount", kind="money", width=110, currency=config.currency if config else None, per_row=per_row),
    ]


def slip_columns(config) -> list[dict]:
    """How often a deal's close date slipped, with [pipeline] close_date (the leads and stalled lists)."""
    if not (config and config.close_date_column):
        return []
    return [column("close_pushes", "Close date pushes", kind="int", width=110),
            column("days_slipped", "Days slipped", kind="int", width=100)]


def table_block(table_id: str, title: str, columns: Sequence[dict], *, height: int = 480, note: str = "") -> html.Div:
    """A panel: title, row count, Export CSV button, the grid and its download."""
    return html.Div(
        [
            html.Div(
                [
                    html.H2(title, className="panel-title"),
                    html.Span(id={"type": COUNT, "table": table_id, "v": "all"}, className="table-count"),
                    html.Button("Export CSV", id={"type": EXPORT, "table": table_id}, className="button", n_clicks=0),
                ],
                className="table-head",
            ),
            html.P(note, className="table-note") if note else None,
            dcc.Loading(dag.AgGrid(
                id={"type": GRID, "table": table_id, "v": "all"},
                columnDefs=list(columns),
                rowData=[],
                defaultColDef={"sortable": True, "filter": True, "resizable": True, "minWidth": 90, "flex": 1},
                dashGridOptions={"pagination": True, "paginationPageSize": 50, "animateRows": False,
                                 "localeText": {"noRowsToShow": "No rows match these filters."}},
                style={"height": f"{height}px"},
                className="ag-theme-quartz",
            ), delay_show=300),
            dcc.Download(id={"type": DOWNLOAD, "table": table_id}),
        ],
        className="panel table-panel",
    )


def grid_ids(table_id: str) -> tuple[dict, dict]:
    """(grid id, count id) of a table, for the page's Output()s."""
    return {"type": GRID, "table": table_id, "v": "all"}, {"type": COUNT, "table": table_id, "v": "all"}


def paged_table_block(table_id: str, title: str, *, note: str = "") -> html.Div:
    """A panel for a list too long to send whole: title, Export CSV button, and a body that
    `paged_body` fills with a row count and a grid fetching BLOCK rows at a time (sorted in SQL)."""
    return html.Div(
        [
            html.Div(
                [
                    html.H2(title, className="panel-title"),
                    html.A("Export CSV", id={"type": EXPORT_LINK, "table": table_id}, href=export_href(table_id, None),
                           className="button", download=f"{table_id}.csv"),
                ],
                className="table-head",
            ),
            html.P(note, className="table-note") if note else None,
            html.Div(id={"type": BODY, "table": table_id}),
        ],
        className="panel table-panel",
    )


def body_id(table_id: str) -> dict:
    return {"type": BODY, "table": table_id}


def paged_body(table_id: str, columns: Sequence[dict], search: str | None, *, height: int = 560) -> list:
    """A fresh grid for this URL (its id carries the query string, so a new filter starts a new
    datasource) and its row count, both filled by `fetch_window` as the grid asks for rows."""
    version = search or "?"
    return [
        html.Span(id={"type": COUNT, "table": table_id, "v": version}, className="table-count"),
        dag.AgGrid(
            id={"type": GRID, "table": table_id, "v": version},
            columnDefs=[{k: v for k, v in c.items() if k != "filter"} for c in columns],
            rowModelType="infinite",
            # sorting happens in SQL over the whole list; the filter bar filters (column filters would
            # only see the rows fetched so far)
            defaultColDef={"sortable": True, "filter": False, "resizable": True, "minWidth": 90, "flex": 1},
            dashGridOptions={
                "cacheBlockSize": BLOCK, "maxBlocksInCache": 20, "infiniteInitialRowCount": 1,
                "pagination": True, "paginationPageSize": 50, "paginationPageSizeSelector": False,
                "animateRows": False, "localeText": {"noRowsToShow": "No rows match these filters."},
                "enableBrowserTooltips": True,  # a tooltip is the cell's title: no script, read by screen readers
            },
            style={"height": f"{height}px"},
            className="ag-theme-quartz",
        ),
    ]


def window_rows(table_id: str, search: str | None, request: dict | None) -> tuple[dict, str]:
    """The grid's answer to one getRowsRequest (rows startRow..endRow in the asked sort) and the count text."""
    request = request or {}
    start = max(int(request.get("startRow") or 0), 0)
    end = max(int(request.get("endRow") or start + BLOCK), start)
    sort = tuple((m["colId"], m.get("sort") == "desc") for m in request.get("sortModel") or [])
    rows, total = _WINDOWS[table_id](search, Slice(offset=start, limit=min(end - start, 1000), sort=sort))
    shown = [{k: _cell(v) for k, v in r.items()} for r in rows]
    return {"rowData": shown, "rowCount": total}, f"{total:,} row" + ("" if total == 1 else "s")


def grid_rows(rows: list[dict], total: int | None = None) -> tuple[list[dict], str]:
    """Rows for the grid (JSON-safe, at most DISPLAY_CAP) and the count text; total when rows were cut before."""
    total = len(rows) if total is None else total
    shown = [{k: _cell(v) for k, v in r.items()} for r in rows[:DISPLAY_CAP]]
    if total > len(shown):
        return shown, f"first {len(shown):,} of {total:,} rows shown · the export has all"
    return shown, f"{total:,} row" + ("" if total == 1 else "s")


def _cell(value):
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    return value


@callback(
    Output({"type": DOWNLOAD, "table": MATCH}, "data"),
    Input({"type": EXPORT, "table": MATCH}, "n_clicks"),
    State(URL, "pathname"),
    State(URL, "search"),
    prevent_initial_call=True,
)
def export_csv(n_clicks: int, pathname: str | None, search: str | None):
    from funnelboard.core.errors import UserError

    if not n_clicks:
        return None
    try:
        name, rows = export_rows(ctx.triggered_id["table"], pathname, search)
    except UserError:
        return None  # the page shows the same error where the table would be
    return dcc.send_string(rows_to_csv(rows), f"{name}.csv")


@callback(
    Output({"type": GRID, "table": MATCH, "v": MATCH}, "getRowsResponse"),
    Output({"type": COUNT, "table": MATCH, "v": MATCH}, "children"),
    Input({"type": GRID, "table": MATCH, "v": MATCH}, "getRowsRequest"),
    State(URL, "search"),
    prevent_initial_call=True,
)
def fetch_window(request: dict | None, search: str | None):
    from funnelboard.core.errors import UserError

    try:
        return window_rows(ctx.triggered_id["table"], search, request)
    except UserError as exc:
        return {"rowData": [], "rowCount": 0}, str(exc)


@callback(
    Output({"type": EXPORT_LINK, "table": ALL}, "href"),
    Input(URL, "search"),
    State({"type": EXPORT_LINK, "table": ALL}, "id"),
)
def export_links(search: str | None, ids: list[dict]):
    """Each download link carries the view's filters."""
    return [export_href(i["table"], search) for i in ids]


@callback(
    Output(URL, "href", allow_duplicate=True),
    Input({"type": GRID, "table": ALL, "v": ALL}, "cellClicked"),
    State(URL, "search"),
    prevent_initial_call=True,
)
def open_lead(clicks, search):
    """A click on a lead_id cell of any table opens that lead, keeping the period and filters."""
    from urllib.parse import quote

    from funnelboard.dashboard.state import keep_global

    cell = ctx.triggered[0]["value"] if ctx.triggered else None
    if not cell or cell.get("colId") != "lead_id" or not cell.get("value"):
        return no_update
    return f"/lead/{quote(str(cell['value']), safe='')}{keep_global(search)}"
