"""What a warehouse holds: the load ledger, row counts, quarantine reasons, date range.

Each function reads through a query gateway (anything with `query(sql, params)`), so the
dashboard's data-quality page and `funnelboard status` run the same SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from funnelboard.etl.raw_schema import UNKNOWN_STAGE_DETAIL
from funnelboard.warehouse.gateway import Gateway, Result

LEDGER_COLUMNS = (
    "load_id", "loaded_at", "role", "source_file", "format",
    "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "superseded_by",
)
# Written by `load --source` (adapters); a warehouse loaded before they existed lacks them.
ADAPTER_COLUMNS = ("source", "source_rows", "rows_ignored", "ignored", "notes")
QUARANTINE_COLUMNS = ("reason", "source_file", "line", "detail", "raw")
EXAMPLES_PER_REASON = 3
ALL_ROWS = 1_000_000_000  # a row cap no quarantine reaches: exports are never cut short


class Reader(Protocol):
    def query(self, sql: str, params: dict | None = None, *, row_cap: int | None = None) -> Result: ...


def ledger_files(g: Reader) -> list[dict]:
    """One row per file ever loaded, superseded ones included, in load order."""
    present = {name for (name,) in g.query(
        "select column_name from information_schema.columns where table_name = 'load_ledger'"
    ).rows}
    columns = list(LEDGER_COLUMNS) + [c for c in ADAPTER_COLUMNS if c in present]
    return g.query(f"select {', '.join(columns)} from load_ledger order by file_id").dicts()


def ledger_totals(files: list[dict]) -> dict:
    """Row counts over the files whose rows are in the warehouse (not superseded by a --replace)."""
    active = [f for f in files if f["superseded_by"] is None]
    total = {key: sum(f[key] for f in active) for key in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")}
    return {"files": len(active), "superseded": len(files) - len(active), **total}


def unknown_labels(g: Reader) -> dict[str, int]:
    """Stage labels no label map matched, with the rows the quarantine holds of each, biggest first.

    Read from the quarantine, not the ledger: a pull replaces the quarantined rows of the records it
    fetches again, while the ledger keeps what every load quarantined. The label is in the detail the
    load writes around it (raw_schema.UNKNOWN_STAGE_DETAIL)."""
    before, after = UNKNOWN_STAGE_DETAIL
    return dict(g.query(
        """select substr(detail, length($before) + 1, length(detail) - length($before) - length($after)) as label, count(*)
           from quarantine where reason = 'unknown_stage' group by label order by 2 desc, 1""",
        {"before": before, "after": after},
    ).rows)


def quarantine_reasons(g: Reader) -> dict[str, int]:
    """Quarantined rows per reason, biggest first."""
    return dict(g.query("select reason, count(*) from quarantine group by reason order by 2 desc, 1").rows)


def quarantine_examples(g: Reader, per_reason: int = EXAMPLES_PER_REASON) -> list[dict]:
    """The first `per_reason` quarantined rows of each reason (by file and line), reasons biggest first."""
    return g.query(
        """
        with counted as (
            select reason, count(*) as n from quarantine group by reason
        ),
        ranked as (
            select q.reason, l.source_file, q.line, q.detail, q.raw,
                   row_number() over (partition by q.reason order by q.file_id, q.line nulls last, q.detail) as k
            from quarantine as q
            left join load_ledger as l on l.file_id = q.file_id
        )
        select ranked.reason, ranked.source_file, ranked.line, ranked.detail, ranked.raw
        from ranked
        join counted on counted.reason = ranked.reason
        where ranked.k <= $per_reason
        order by counted.n desc, ranked.reason, ranked.k
        """,
        {"per_reason": per_reason},
    ).dicts()


def quarantined_rows(g: Reader, limit: int | None = None) -> list[dict]:
    """Every quarantined row (or the first `limit`), reasons biggest first, then by file and line."""
    return g.query(
        """
        with counted as (
            select reason, count(*) as n from quarantine group by reason
        )
        select q.reason, l.source_file, q.line, q.detail, q.raw
        from quarantine as q
        join counted on counted.reason = q.reason
        left join load_ledger as l on l.file_id = q.file_id
        order by counted.n desc, q.reason, q.file_id, q.line nulls last, q.detail
        limit $limit
        """,
        {"limit": limit},
        row_cap=ALL_ROWS if limit is None else limit,
    ).dicts()


def stored_rows(g: Reader) -> int:
    """The events and lead rows the warehouse holds now: the ledger's loaded rows of its active files, less what
    later pulls replaced or removed."""
    return g.query("select (select count(*) from raw_events) + (select count(*) from raw_leads)").rows[0][0]


def event_range(g: Reader) -> dict:
    """Events, distinct leads, first and last event time."""
    events, leads, first, last = g.query(
        "select count(*), count(distinct lead_id), min(entered_at), max(entered_at) from raw_events"
    ).rows[0]
    return {"events": events, "leads": leads, "first_event": first, "last_event": last}


def meta(g: Reader) -> dict[str, str]:
    return dict(g.query("select key, value from meta where key in ('config_source', 'published_at')").rows)


def warehouse_status(db: Path) -> dict:
    """A summary of the published warehouse, for `funnelboard status`."""
    g = Gateway(db)
    try:
        facts = meta(g)
        span = event_range(g)
        files = ledger_files(g)
        reasons = quarantine_reasons(g)
        labels = unknown_labels(g)
    finally:
        g.close()
    return {
        "db": str(db),
        "events": span["events"],
        "leads": span["leads"],
        "quarantined": sum(reasons.values()),
        "duplicates": ledger_totals(files)["rows_duplicate"],
        "first_event": span["first_event"],
        "last_event": span["last_event"],
        "as_of": span["last_event"],
        "config_source": facts.get("config_source"),
        "published_at": facts.get("published_at"),
        "files": files,
        "quarantine_reasons": reasons,
        "unknown_labels": labels,
    }
