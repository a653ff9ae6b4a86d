"""Data quality: the load ledger, where every row read went, why rows were quarantined, unmapped stage labels."""

from __future__ import annotations

from datetime import datetime, timezone

import dash
from dash import Input, Output, callback, dcc, html

from funnelboard.core.errors import UserError
from funnelboard.dashboard.runtime import URL, current_scope, gateway
from funnelboard.dashboard.tables import DISPLAY_CAP, column, exports, grid_ids, grid_rows, table_block
from funnelboard.dashboard.views import empty_state, guarded
from funnelboard.warehouse import status

dash.register_page(__name__, path="/data-quality", name="Data quality", order=7, title="funnelboard · data quality")

MESSAGE = "quality-message"
BODY = "quality-body"
SUMMARY = "quality-summary"
REASONS_PANEL = "quality-reasons-panel"
ROWS_PANEL = "quality-rows-panel"
CLEAN = "quality-clean"
LABELS_PANEL = "quality-labels-panel"
LABELS_EMPTY = "quality-labels-empty"

LEDGER = "quality-ledger"
REASONS = "quality-reasons"
EXAMPLES = "quality-examples"
QUARANTINE = "quality-quarantine"
LABELS = "quality-labels"

NOT_BALANCED = "does not add up: please report this as a bug"
NO_QUARANTINE = "No rows were quarantined: every row read was loaded or collapsed as an exact duplicate."
ALL_MAPPED = "Every stage label was mapped to a funnel stage."
SCOPED = "Your account sees how many rows were quarantined, not the rows: a quarantined row is not limited to your leads."

# The file column shows the file name; the full path is in the tooltip and the export.
FILE_NAME = {"function": "params.value == null ? '' : params.value.split('/').pop()"}


def _file_column(header: str = "File", width: int | None = None) -> dict:
    return {**column("source_file", header, width=width), "valueFormatter": FILE_NAME, "tooltipField": "source_file"}


def _text_column(field: str, header: str, *, width: int | None = None, flex: int | None = None) -> dict:
    col = {**column(field, header, width=width), "tooltipField": field}
    if flex:
        col["flex"] = flex
    return col


LEDGER_COLUMNS = [
    column("load_id", "Load", kind="int", width=80),
    column("loaded_at", "Loaded at (UTC)", width=150),
    column("role", "Role", width=90),
    _file_column(width=200),
    column("source", "Source", width=100),
    column("source_rows", "Export rows", kind="int", width=110),
    column("rows_ignored", "Ignored", kind="int", width=90),
    column("format", "Format", width=90),
    column("rows_read", "Read", kind="int", width=100),
    column("rows_loaded", "Loaded", kind="int", width=100),
    column("rows_quarantined", "Quarantined", kind="int", width=120),
    column("rows_duplicate", "Duplicates", kind="int", width=110),
    {**column("superseded_by", "Superseded", width=130),
     "valueFormatter": {"function": "params.value == null ? '' : 'by load ' + params.value"}},
]
REASON_COLUMNS = [
    column("reason", "Reason", width=200),
    column("rows", "Rows", kind="int", width=90),
    column("share", "Share of quarantined", kind="percent", width=150),
]
QUARANTINE_COLUMNS = [
    column("reason", "Reason", width=170),
    _file_column(width=140),
    column("line", "Line", kind="int", width=80),
    _text_column("detail", "Detail", width=260),
    {**_text_column("raw", "Raw text", flex=2), "cellClass": "quality-raw"},
]
LABEL_COLUMNS = [
    column("label", "Stage label", width=200),
    column("rows", "Rows", kind="int", width=90),
]


def layout(**_query) -> html.Div:
    return html.Div(
        [
            html.H1("Data quality", className="page-title"),
            html.P(
                "What every load read, kept, quarantined and collapsed, and what to fix in the export or in funnel.toml.",
                className="page-subtitle",
            ),
            html.Div(id=MESSAGE),
            html.Div(
                [
                    dcc.Loading(html.Div(id=SUMMARY)),
                    table_block(LEDGER, "Load ledger", LEDGER_COLUMNS, height=220,
                                note="One row per file loaded. A file loaded again with --replace keeps its row, marked superseded; its rows no longer count."),
                    html.Div(
                        [
                            html.Div(
                                [
                                    html.Div(table_block(REASONS, "Quarantine reasons", REASON_COLUMNS, height=420,
                                                         note="The first reason that applies wins; docs/loading.md explains each one."),
                                             id=REASONS_PANEL),
                                    html.Div(id=CLEAN),
                                ]
                            ),
                            html.Div(
                                [
                                    html.Div(table_block(LABELS, "Unmapped stage labels", LABEL_COLUMNS, height=420,
                                                         note="Rows with these labels were quarantined as unknown_stage. Map each label to a stage under "
                                                              "[labels] in funnel.toml (`funnelboard init` writes one to edit), then load the file again with --replace."),
                                             id=LABELS_PANEL),
                                    html.Div(id=LABELS_EMPTY),
                                ]
                            ),
                        ],
                        className="grid-2",
                    ),
                    html.Div(
                        [
                            table_block(EXAMPLES, "Examples per reason", QUARANTINE_COLUMNS, height=480,
                                        note=f"The first {status.EXAMPLES_PER_REASON} quarantined rows of each reason, by file and line, as the file had them."),
                            table_block(QUARANTINE, "All quarantined rows", QUARANTINE_COLUMNS, height=480,
                                        note="Every quarantined row, to fix at the source; the export has them all."),
                        ],
                        id=ROWS_PANEL,
                    ),
                ],
                id=BODY,
                hidden=True,
                className="quality",
            ),
        ]
    )


def _grid_outputs(table_id: str) -> list[Output]:
    grid, count = grid_ids(table_id)
    return [Output(grid, "rowData"), Output(count, "children")]


@callback(
    Output(MESSAGE, "children"),
    Output(BODY, "hidden"),
    Output(SUMMARY, "children"),
    *_grid_outputs(LEDGER),
    *_grid_outputs(REASONS),
    *_grid_outputs(LABELS),
    *_grid_outputs(EXAMPLES),
    *_grid_outputs(QUARANTINE),
    Output(REASONS_PANEL, "hidden"),
    Output(ROWS_PANEL, "hidden"),
    Output(CLEAN, "children"),
    Output(LABELS_PANEL, "hidden"),
    Output(LABELS_EMPTY, "children"),
    Input(URL, "pathname"),
)
@guarded(outputs=18)
def update(_pathname: str | None):
    """The page has no filters: the URL only triggers it. The warehouse is read through the gateway."""
    g = gateway()
    files = ledger_rows()[1]
    totals = status.ledger_totals(files)
    reasons = reason_rows()[1]
    labels = label_rows()[1]
    quarantined = sum(r["rows"] for r in reasons)
    held = {"rows": status.stored_rows(g), "quarantined": quarantined}  # the reasons count the quarantine as it is
    summary = _summary(totals, held, g.facts(), status.meta(g).get("published_at"))
    scoped = bool(current_scope())  # the raw rows are not a lead's: a scoped user gets their counts only
    return (
        None,
        False,
        summary,
        *grid_rows(files),
        *grid_rows(reasons),
        *grid_rows(labels),
        *grid_rows([] if scoped else example_rows()[1]),
        *grid_rows([] if scoped else status.quarantined_rows(g, limit=DISPLAY_CAP), 0 if scoped else quarantined),
        not reasons,
        not reasons or scoped,
        empty_state(SCOPED) if scoped and reasons else None if reasons else empty_state(NO_QUARANTINE),
        not labels,
        None if labels else empty_state(ALL_MAPPED),
    )


# The rows behind each table, for the page and its CSV export alike (arguments: pathname, search; unused).


@exports(LEDGER)
def ledger_rows(*_url) -> tuple[str, list[dict]]:
    """The files of `funnelboard status --format json`, same columns."""
    return "load-ledger", status.ledger_files(gateway())


@exports(REASONS)
def reason_rows(*_url) -> tuple[str, list[dict]]:
    reasons = status.quarantine_reasons(gateway())
    total = sum(reasons.values())
    return "quarantine-reasons", [{"reason": k, "rows": n, "share": n / total} for k, n in reasons.items()]


@exports(LABELS)
def label_rows(*_url) -> tuple[str, list[dict]]:
    return "unmapped-stage-labels", [{"label": k, "rows": n} for k, n in status.unknown_labels(gateway()).items()]


@exports(EXAMPLES)
def example_rows(*_url) -> tuple[str, list[dict]]:
    _unscoped()
    return "quarantine-examples", status.quarantine_examples(gateway())


@exports(QUARANTINE)
def quarantine_rows(*_url) -> tuple[str, list[dict]]:
    _unscoped()
    return "quarantine", status.quarantined_rows(gateway())


def _unscoped() -> None:
    if current_scope():
        raise UserError(SCOPED)


def _summary(totals: dict, held: dict, span: dict, published_at: str | None) -> list:
    """Cards over the active files of the ledger, and the row identity spelled out. Where later pulls
    replaced rows of records they fetched again, the warehouse holds fewer rows than the loads stored:
    the Loaded and Quarantined cards say how many it holds now."""
    read = totals["rows_read"]
    balanced = read == totals["rows_loaded"] + totals["rows_quarantined"] + totals["rows_duplicate"]

    def share(n: int) -> str:
        return f"{n / read:.1%} of rows read" if read else ""

    def now(n: int, ledger: int) -> str:
        return share(ledger) if n == ledger else f"{n:,} held now"

    replaced = totals["superseded"]
    cards = [
        _card("Files loaded", f"{totals['files']:,}", f"+ {replaced:,} replaced by a later load" if replaced else "none replaced"),
        _card("Rows read", f"{read:,}", "every row accounted for" if balanced else NOT_BALANCED, tone="good" if balanced else "bad"),
        _card("Loaded", f"{totals['rows_loaded']:,}", now(held["rows"], totals["rows_loaded"])),
        _card("Quarantined", f"{totals['rows_quarantined']:,}", now(held["quarantined"], totals["rows_quarantined"]),
              tone="warn" if totals["rows_quarantined"] else "neutral"),
        _card("Duplicates", f"{totals['rows_duplicate']:,}", "exact duplicates collapsed"),
        _card("First event", *_when(span["first_event"])),
        _card("Last event", *_when(span["last_event"], "the default as-of")),
        _card("Published", *_when(published_at, "last written")),
    ]
    identity = html.P(
        [
            html.Span("✓ " if balanced else "✗ ", className="tone-good" if balanced else "tone-bad"),
            f"{read:,} rows read = {totals['rows_loaded']:,} loaded + {totals['rows_quarantined']:,} quarantined + "
            f"{totals['rows_duplicate']:,} duplicates",
            "" if balanced else f" — {NOT_BALANCED}",
        ],
        className="quality-identity",
    )
    if (held["rows"], held["quarantined"]) == (totals["rows_loaded"], totals["rows_quarantined"]):
        return [html.Div(cards, className="cards"), identity]
    pulled = html.P(
        f"The warehouse holds {held['rows']:,} of the {totals['rows_loaded']:,} rows loaded and {held['quarantined']:,} of the "
        f"{totals['rows_quarantined']:,} quarantined: later pulls fetched records again and replaced their rows, or removed "
        "records deleted in the CRM.",
        className="quality-identity",
    )
    return [html.Div(cards, className="cards"), identity, pulled]


def _card(label: str, value: str, note: str, *, tone: str = "neutral") -> html.Div:
    return html.Div(
        [
            html.Div(label, className="card-label"),
            html.Div(value, className="card-value"),
            html.Div(note, className=f"card-delta tone-{tone}"),
        ],
        className="card",
    )


def _when(value: datetime | str | None, note: str = "") -> tuple[str, str]:
    """A UTC instant as (date, 'HH:MM UTC · note'); the warehouse stores naive UTC, meta stores ISO text."""
    if value is None:
        return "—", note
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d"), " · ".join(filter(None, [value.strftime("%H:%M UTC"), note]))
