"""Tables: an AG Grid with a row count and a CSV export that writes what `funnelboard query` prints.

A page declares a table with `table_block(table_id, ...)` and registers how its rows are made
with `@exports(table_id)`: a function of (pathname, search) returning (file name, rows). The
page's callback fills the grid with `grid_rows(rows)`; the one export callback here calls the
same function again on click and sends `rows_to_csv(rows)`, so the file is the full result
(not the page of rows on screen) and byte for byte the `--format csv` output of the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

import dash_ag_grid as dag
from dash import ALL, MATCH, Input, Output, State, callback, ctx, dcc, html, no_update

from dashboard.app import URL
from funnelboard.export import rows_to_csv

DISPLAY_CAP = 5_000  # rows sent to the browser; the export has them all
GRID, EXPORT, DOWNLOAD, COUNT = "fb-grid", "fb-export", "fb-download", "fb-count"
_EXPORTS: dict[str, Callable[[str | None, str | None], tuple[str, list[dict]]]] = {}

NUMBER = {"function": "params.value == null ? '' : d3.format(',.1f')(params.value)"}
INTEGER = {"function": "params.value == null ? '' : d3.format(',')(params.value)"}
PERCENT = {"function": "params.value == null ? '' : d3.format('.1%')(params.value)"}


def exports(table_id: str):
    """Register the rows behind a table for its CSV export."""

    def register(fn):
        _EXPORTS[table_id] = fn
        return fn

    return register


def export_rows(table_id: str, pathname: str | None, search: str | None) -> tuple[str, list[dict]]:
    return _EXPORTS[table_id](pathname, search)


def column(field: str, header: str | None = None, *, kind: str = "text", width: int | None = None, link: str | None = None) -> dict:
    """One column definition; kind is text, int, number or percent; link is a URL prefix for the cell value."""
    col: dict = {"field": field, "headerName": header or field.replace("_", " ").capitalize()}
    if kind in ("int", "number", "percent"):
        col["type"] = "rightAligned"
        col["filter"] = "agNumberColumnFilter"
        col["valueFormatter"] = {"int": INTEGER, "number": NUMBER, "percent": PERCENT}[kind]
    if width:
        col["minWidth"] = width  # columns share the spare width (flex) but never shrink below this
    if link:
        col["cellRenderer"] = "markdown"
        col["valueGetter"] = {"function": f"params.data.{field} == null ? '' : '[' + params.data.{field} + '](" + link + "' + encodeURIComponent(params.data.{field}) + ')'"}
    return col


def lead_columns(segments) -> list[dict]:
    """The lead columns every lead list ends with, as the metrics order them: owner, the other segments, amount."""
    return [
        column("owner", "Owner", width=140),
        *[column(s, width=130) for s in segments if s != "owner"],
        column("amount", "Amount", kind="int", width=110),
    ]


def table_block(table_id: str, title: str, columns: Sequence[dict], *, height: int = 480, note: str = "") -> html.Div:
    """A panel: title, row count, Export CSV button, the grid and its download."""
    return html.Div(
        [
            html.Div(
                [
                    html.H2(title, className="panel-title"),
                    html.Span(id={"type": COUNT, "table": table_id}, className="table-count"),
                    html.Button("Export CSV", id={"type": EXPORT, "table": table_id}, className="button", n_clicks=0),
                ],
                className="table-head",
            ),
            html.P(note, className="table-note") if note else None,
            dcc.Loading(dag.AgGrid(
                id={"type": GRID, "table": table_id},
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
    return {"type": GRID, "table": table_id}, {"type": COUNT, "table": table_id}


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
    from funnelboard.errors import UserError

    if not n_clicks:
        return None
    try:
        name, rows = export_rows(ctx.triggered_id["table"], pathname, search)
    except UserError:
        return None  # the page shows the same error where the table would be
    return dcc.send_string(rows_to_csv(rows), f"{name}.csv")


@callback(
    Output(URL, "href", allow_duplicate=True),
    Input({"type": GRID, "table": ALL}, "cellClicked"),
    State(URL, "search"),
    prevent_initial_call=True,
)
def open_lead(clicks, search):
    """A click on a lead_id cell of any table opens that lead, keeping the period and filters."""
    from urllib.parse import quote

    from dashboard.state import keep_global

    cell = ctx.triggered[0]["value"] if ctx.triggered else None
    if not cell or cell.get("colId") != "lead_id" or not cell.get("value"):
        return no_update
    return f"/lead/{quote(str(cell['value']), safe='')}{keep_global(search)}"
