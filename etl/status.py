"""What a warehouse holds: the load ledger, row counts, quarantine reasons, date range."""

from __future__ import annotations

import json
from pathlib import Path

from warehouse.publish import open_read_only


def warehouse_status(db: Path) -> dict:
    """A summary of the published warehouse, for `funnelboard status` and the data-quality view."""
    con = open_read_only(db)
    try:
        meta = dict(con.execute("select key, value from meta").fetchall())
        events, leads, first, last = con.execute(
            "select count(*), count(distinct lead_id), min(entered_at), max(entered_at) from raw_events"
        ).fetchall()[0]
        cur = con.execute(
            "select load_id, loaded_at, role, source_file, format, rows_read, rows_loaded, rows_quarantined, "
            "rows_duplicate, superseded_by, unknown_labels from load_ledger order by file_id"
        )
        names = [d[0] for d in cur.description]
        files = [dict(zip(names, row)) for row in cur.fetchall()]
        reasons = dict(
            con.execute(
                "select reason, count(*) from quarantine group by reason order by 2 desc, 1"
            ).fetchall()
        )
    finally:
        con.close()
    unknown: dict[str, int] = {}
    for row in files:
        if row["superseded_by"] is None:
            for label, count in json.loads(row.pop("unknown_labels") or "{}").items():
                unknown[label] = unknown.get(label, 0) + count
        else:
            row.pop("unknown_labels")
    active = [r for r in files if r["superseded_by"] is None]
    return {
        "db": str(db),
        "events": events,
        "leads": leads,
        "quarantined": sum(reasons.values()),
        "duplicates": sum(r["rows_duplicate"] for r in active),
        "first_event": first,
        "last_event": last,
        "as_of": last,
        "config_source": meta.get("config_source"),
        "published_at": meta.get("published_at"),
        "files": files,
        "quarantine_reasons": reasons,
        "unknown_labels": dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
