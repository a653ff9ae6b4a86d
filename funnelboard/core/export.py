"""Rows as CSV, the one format `funnelboard query --format csv` prints and every dashboard table exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime


def plain(value):
    """A value as JSON and CSV carry it: dates and times in ISO 8601, everything else as is."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def rows_to_csv(rows: list[dict]) -> str:
    """Header from the first row's keys, empty cells for NULL, ISO dates, '\\n' line ends."""
    return "".join(csv_chunks(rows))


def csv_chunks(rows: Iterable[dict], *, chunk_rows: int = 5_000) -> Iterator[str]:
    """The same CSV as rows_to_csv, a chunk of rows at a time, for a download streamed as it is read."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns: list[str] | None = None
    pending = 0
    for row in rows:
        if columns is None:
            columns = list(row)
            writer.writerow(columns)
        writer.writerow(["" if row[c] is None else plain(row[c]) for c in columns])
        pending += 1
        if pending >= chunk_rows:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            pending = 0
    if columns is None:
        writer.writerow([])
    yield buf.getvalue()
