"""The raw tables etl/ writes: events, leads, the quarantine and the load ledger."""

from __future__ import annotations

import duckdb

from funnelboard.etl.identifiers import ident

SCHEMA_VERSION = "1"

DDL = (
    """create table if not exists meta (key varchar primary key, value varchar)""",
    """create table if not exists load_ledger (
        file_id integer primary key,
        load_id integer not null,
        role varchar not null,           -- events | leads
        source_file varchar not null,    -- absolute path at load time
        format varchar not null,
        sha256 varchar not null,
        size_bytes bigint not null,
        loaded_at timestamp not null,    -- UTC
        rows_read bigint not null,
        rows_loaded bigint not null,
        rows_quarantined bigint not null,
        rows_duplicate bigint not null,
        first_entered_at timestamp,
        last_entered_at timestamp,
        unknown_labels varchar,          -- JSON object label -> rows
        superseded_by integer,           -- load_id of the --replace that removed this file's rows
        config_fingerprint varchar,
        source varchar,                  -- the --source adapter (canonical, wide, salesforce, ...)
        source_rows bigint,              -- adapters: data rows in the export (events row only)
        rows_ignored bigint,             -- adapters: export rows that are deliberately not events
        ignored varchar,                 -- JSON object reason -> export rows ignored
        notes varchar                    -- JSON list: what the export cannot tell
    )""",
    """create table if not exists raw_events (
        file_id integer not null,
        source_line bigint not null,
        lead_id varchar not null,
        stage varchar not null,          -- canonical stage (label map applied at load)
        stage_label varchar not null,    -- the label as the CRM wrote it, trimmed
        entered_at timestamp not null,   -- UTC
        reason varchar
    )""",
    """create table if not exists raw_leads (
        file_id integer not null,
        source_line bigint not null,
        lead_id varchar not null,
        created_at timestamp             -- UTC
    )""",
    """create table if not exists pull_marks (
        source varchar not null,         -- the CRM pulled (salesforce, hubspot, pipedrive)
        object varchar not null,         -- the API object the mark is for (deals, OpportunityHistory, ...)
        mark varchar not null,           -- ISO-8601 UTC: the next pull fetches records changed at or after it
        load_id integer not null,        -- the load that published the records up to the mark
        pulled_at timestamp not null,    -- UTC
        complete boolean not null        -- false when a quota stopped the pull early
    )""",
    """create table if not exists pull_journeys (
        source varchar not null,         -- the CRM pulled
        record varchar not null,         -- a record whose rows or values the last pull wrote into a journey not its own
        journey varchar not null         -- that journey (Translation.ties): a pull that fetches one fetches the other
    )""",
    """create table if not exists quarantine (
        file_id integer not null,
        line bigint,
        reason varchar not null,
        detail varchar not null,
        raw varchar,
        lead_id varchar                  -- the row's lead when it has one: a pull's re-fetched record replaces it
    )""",
)

CORE_EVENT_COLUMNS = ("file_id", "source_line", "lead_id", "stage", "stage_label", "entered_at", "reason")
CORE_LEAD_COLUMNS = ("file_id", "source_line", "lead_id", "created_at")


# Columns added to load_ledger after schema 1; a warehouse written before gets them on its next load.
LEDGER_ADDITIONS = (
    ("source", "varchar"),
    ("source_rows", "bigint"),
    ("rows_ignored", "bigint"),
    ("ignored", "varchar"),
    ("notes", "varchar"),
)

# The detail of an unknown_stage row, before and after its label: written by the DuckDB and Spark loads, read back
# by warehouse/status.py (the unmapped labels the quarantine holds).
UNKNOWN_STAGE_DETAIL = ('stage label "', '" is not in the label map')

# Columns added to the quarantine after schema 1.
QUARANTINE_ADDITIONS = (("lead_id", "varchar"),)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables a warehouse lacks and add the ledger and quarantine columns added since schema 1."""
    for statement in DDL:
        con.execute(statement)
    for table, additions in (("load_ledger", LEDGER_ADDITIONS), ("quarantine", QUARANTINE_ADDITIONS)):
        for name, kind in additions:
            con.execute(f"alter table {ident(table)} add column if not exists {ident(name)} {kind}")
    con.execute(
        "insert into meta values ('schema_version', $v) on conflict (key) do update set value = excluded.value",
        {"v": SCHEMA_VERSION},
    )


def table_columns(con: duckdb.DuckDBPyConnection, table: str, catalog: str | None = None) -> list[str]:
    """The columns of a table of the main schema, in order: of the connection's database, or of the
    attached database `catalog` ([] when it has no such table)."""
    rows = con.execute(
        "select column_name from information_schema.columns where table_name = $t and table_schema = 'main' "
        "and table_catalog = coalesce($c, current_database()) order by ordinal_position",
        {"t": table, "c": catalog},
    ).fetchall()
    return [r[0] for r in rows]


def value_columns(con: duckdb.DuckDBPyConnection, table: str, catalog: str | None = None) -> list[str]:
    """A raw table's columns but those saying where a row came from (file_id, source_line), in order."""
    return [c for c in table_columns(con, table, catalog) if c not in ("file_id", "source_line")]


def add_attribute_columns(con: duckdb.DuckDBPyConnection, table: str, names: tuple[str, ...]) -> None:
    """Give the raw table a VARCHAR column for each attribute it has not seen yet."""
    have = set(table_columns(con, table))
    for name in names:
        if name not in have:
            con.execute(f"alter table {ident(table)} add column {ident(name)} varchar")


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Set one key of the meta table."""
    con.execute(
        "insert into meta values ($k, $v) on conflict (key) do update set value = excluded.value",
        {"k": key, "v": value},
    )


def record_marks(con: duckdb.DuckDBPyConnection, source: str, marks: dict[str, str], load_id: int, now, complete: bool) -> None:
    """Store a pull's high-water marks with the load that published its records (same transaction)."""
    con.executemany(
        "insert into pull_marks values (?, ?, ?, ?, ?, ?)",
        [(source, obj, mark, load_id, now, complete) for obj, mark in sorted(marks.items())],
    )


def tied_journeys(con: duckdb.DuckDBPyConnection, source: str, ids: list[str]) -> list[tuple[str, str]]:
    """The (record, journey) pairs of `source` stored by earlier pulls (Translation.ties) in which the record or
    the journey is one of `ids` ([] for a warehouse that has none)."""
    if not ids or not table_columns(con, "pull_journeys"):
        return []
    return con.execute(
        # semi-joins: a pair per lead and a page of ids (list_contains would compare every pair with every id)
        "select record, journey from pull_journeys where source = $s "
        "and (record in (select unnest($ids)) or journey in (select unnest($ids))) order by all", {"s": source, "ids": sorted(set(ids))},
    ).fetchall()


def current_marks(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """The latest mark per object of `source` ({} for a warehouse never pulled into)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'main' and table_name = 'pull_marks'"
    ).fetchall()[0][0]
    if not exists:
        return {}
    rows = con.execute(
        "select object, arg_max(mark, load_id) from pull_marks where source = $s group by object order by object", {"s": source}
    ).fetchall()
    return dict(rows)
