"""The canonical long format as an adapter: the smallest example of the contract in base.py.

`funnelboard load --source canonical` (the default) does NOT call this: it keeps the
loader's native SQL path, which reads CSV, Parquet and JSON Lines at full speed. This module
exists as the reference adapter (and is tested to give the same raw tables as the native
path on a clean file): one source row -> one event, every other column an attribute.
"""

from __future__ import annotations

from pathlib import Path

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.etl.readers import RESERVED, column_name
from funnelboard.etl.sources.base import EVENT_COLUMNS, Translation, empty_events, file_key, read_table, string_table


def translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation:
    """Each row of each long-format file (lead_id, stage, entered_at[, reason], attributes) is one event."""
    out = Translation(events=empty_events())
    events: list[dict] = []
    attributes: list[str] = []
    for path in paths:
        table = read_table(path, config, out, what="events file")
        wanted = {c: config.columns.get(c, c) for c in (*EVENT_COLUMNS, "reason")}
        found = table.require([wanted[c] for c in EVENT_COLUMNS], "events file")
        reason_col = table.column(wanted["reason"])
        core = set(found.values()) | ({reason_col} if reason_col else set())
        attrs = {}
        for header in table.header:
            if header in core:
                continue
            name = column_name(header)
            if not name or name in RESERVED or name in EVENT_COLUMNS or name == "reason":
                raise UserError(f"events file '{path}' has a column named '{header}', which cannot be an attribute: rename it.")
            attrs[header] = name
            if name not in attributes:
                attributes.append(name)
        for line, values, raw in table.rows:
            event = {c: values[found[wanted[c]]] for c in EVENT_COLUMNS}
            event["reason"] = values[reason_col] if reason_col else None
            event.update({name: values[h] for h, name in attrs.items()})
            event.update({"_file": file_key(path), "_line": line, "_raw": raw})
            events.append(event)
    out.events = string_table(events, (*EVENT_COLUMNS, "reason", *attributes, "_file", "_line", "_raw"))
    return out
