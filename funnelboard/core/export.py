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


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def cell(value) -> object:
    """A value as a CSV cell: empty for NULL, ISO dates, and text a spreadsheet would run as a formula
    (starting with = + - @, tab or CR) behind a leading ' so it shows as the text it is (OWASP's advice).
    Numbers stay numbers: -5 is a number, the text '-5' a text."""
    if value is None:
        return ""
    value = plain(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def rows_to_csv(rows: list[dict]) -> str:
    """Header from the first row's keys, empty cells for NULL, ISO dates, formulas defused, '\\n' line ends."""
    return "".join(csv_chunks(rows))


def csv_chunks(rows: Iterable[dict], *, chunk_rows: int = 5_000) -> Iterator[str]:
    """The same CSV as rows_to_csv, a chunk of rows at a time, for a download streamed as it is read."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    # csv quotes a field holding the line terminator, not a bare CR: a row with one is written with
    # every text quoted, so a reader never sees a CR as the end of a line
    carriage = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)

    def write(cells: list) -> None:
        (carriage if any(isinstance(v, str) and "\r" in v for v in cells) else writer).writerow(cells)

    columns: list[str] | None = None
    pending = 0
    for row in rows:
        if columns is None:
            columns = list(row)
            write([cell(c) for c in columns])
        write([cell(row[c]) for c in columns])
        pending += 1
        if pending >= chunk_rows:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            pending = 0
    if columns is None:
        writer.writerow([])
    yield buf.getvalue()
