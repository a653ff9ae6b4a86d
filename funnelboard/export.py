"""Rows as CSV, the one format `funnelboard query --format csv` prints and every dashboard table exports."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime


def plain(value):
    """A value as JSON and CSV carry it: dates and times in ISO 8601, everything else as is."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def rows_to_csv(rows: list[dict]) -> str:
    """Header from the first row's keys, empty cells for NULL, ISO dates, '\\n' line ends."""
    columns = list(rows[0]) if rows else []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[c] is None else plain(row[c]) for c in columns])
    return buf.getvalue()
