"""The source-adapter contract: how a CRM export becomes canonical events, losing nothing.

`funnelboard load FILE... --source NAME` calls `ADAPTERS[NAME](paths, config, options)`
(see `etl/sources/__init__.py`) with every file of the command, in command-line order, the
`FunnelConfig`, and `options` = the `[source.NAME]` table of funnel.toml as a plain dict
(`{}` when absent). The adapter returns one `Translation`; the loader then runs the
canonical checks on it (lead id, ISO timestamp, min/max date, stage label map, exact
duplicates), quarantines, records the ledger and publishes atomically, exactly as for a
canonical file. `--source canonical` (the default) keeps the native, SQL-only path.

The contract
============

Files and errors
----------------
* `paths` are the files as given (`Path`); identify a file in the output by `str(path)`
  for the exact `path` object you were given (`file_key(path)`).
* A problem with a whole file (missing, unreadable, empty, a required column absent, an
  option missing or wrong in `options`) raises `funnelboard.core.errors.UserError` with ONE
  sentence naming the file (or the `[source.NAME]` key), what was expected and what was
  found. Nothing is written before every file is translated, so raising changes nothing.
* Never raise for a bad row: reject it (below). An exception other than UserError is a bug.

`Translation.events` -- a pyarrow Table, every column `pa.string()` (nullable)
-------------------------------------------------------------------------------
  lead_id      the lead / deal / opportunity id (required; empty -> quarantined `missing_lead_id`)
  stage        the CRM's stage label as the export writes it ("Closed Won", "appointmentscheduled"
               after id->label lookup, or a canonical name such as "mql"); the loader maps it
               through `[labels]` (case/whitespace-insensitive) and quarantines unknown labels
               as `unknown_stage`, listing each label for the user to map. Prefer emitting the
               CRM's own label and let `[labels]` map it.
  entered_at   when the lead entered the stage, as TEXT in one of the forms the canonical loader
               parses: `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM[:SS[.fffffffff]]`, optionally followed by
               `Z`, `z` or an offset `+HH`, `+HHMM`, `+HH:MM` (a space before it is allowed).
               Without an offset the time is read in `[funnel] timezone`. So Salesforce's
               `2024-01-02T10:00:00.000+0000` and Pipedrive's `2024-01-02 10:00:00` pass through
               unchanged; convert anything else (HubSpot epoch milliseconds -> `...Z` text,
               `31/01/2024` under a configured format -> `2024-01-31`). A value you cannot
               convert: either reject the row with reason `unparseable_timestamp` and a detail
               naming the column, or pass the text through and the loader quarantines it.
  reason       optional: the disqualification / loss / nurture reason as written.
  <attribute>  optional, any number: channel, owner, amount, industry, ... named in lower
               snake_case (use `readers.column_name`); text. The loader adds a raw column for
               each. Names in `readers.RESERVED` are refused. A deal's money history is four
               attributes with fixed names and forms: `amount` (a plain number: 48000, 1200.50),
               `close_date` (YYYY-MM-DD), `currency` (ISO 4217: EUR) and `forecast_category` (as
               the CRM writes it); see "Deal money history" below.
  _file        str(path) of the input file the event comes from (one of `paths`).
  _line        the event's source line (int64, not null): see "Line numbers".
  _raw         optional: the source row as text, stored in the quarantine if the loader
               rejects the event. When absent, the loader stores the event itself as JSON.

  An empty table (the default, or any zero-row table) is fine for files that give no events.

`Translation.leads` -- None, or a pyarrow Table of `pa.string()` columns
-------------------------------------------------------------------------
  lead_id, optional created_at (same timestamp text rules), attribute columns, _file, _line,
  optional _raw. One row per lead and source row; attributes here win over event attributes
  (the latest non-empty value by file then line). Use it for attributes that belong to the
  lead rather than to one stage entry (Salesforce `Opportunity`, HubSpot deal properties).

`Translation.rejected` -- rows (or cells) the adapter could not turn into a record
-----------------------------------------------------------------------------------
  `Rejection(file, line, reason, detail, raw, lead_id)`: reason in lower_snake_case (reuse the
  loader's names where they fit: `missing_lead_id`, `unparseable_timestamp`,
  `wrong_column_count`, `malformed_csv`, `invalid_encoding`, `unknown_stage`; else your own,
  such as `unknown_stage_id`, `unmatched_id`), detail = one line a user understands, naming
  the column and the value, raw = the source row's text. Each goes to the quarantine table.
  lead_id: the journey the row belongs to (as the record's events would be written under), or
  the record's own id when it continues another journey; None when the row names no record.
  A pull fetches a record's whole history, so it replaces the quarantined rows of every
  journey it rejects rows of, as it replaces those it writes events for: an adapter that
  can pull sets lead_id on every rejection that names a record.

`Translation.ignored` -- source rows that are deliberately NOT events
---------------------------------------------------------------------
  `{file_key: {reason: count}}`, e.g. an OpportunityHistory row that changed only Probability
  (`not_a_stage_change`), a deleted row (`deleted`), a wide row with every stage date empty
  (`no_stage_dates`). Counted, printed and stored in the ledger; never quarantined.
  Use `Translation.ignore(path, reason)`.

`Translation.source_rows` -- `{file_key: data rows read}` for every file in `paths`
`Translation.notes` -- sentences saying what the export cannot tell (e.g. "Pipedrive's deals
  export keeps only the current stage: earlier stages are not in it"); printed after the load
  and stored in the ledger.

The accounting rule
===================
A *record* is one candidate event, one candidate lead row, or one `Rejection`. A source row
may give several records (a wide row with five stage dates gives five events, and its leads
row one more) or none.

  1. per file:  source_rows = used rows + ignored rows
     where a *used* row is a distinct `_line` that gave at least one record (event, lead
     row or rejection), and ignored rows = sum of `ignored[file]`. So a row is either used
     or ignored, never both, never neither. The loader checks this and refuses to publish
     when it does not hold (an adapter bug, not a user mistake).
  2. per file and role, as for canonical files:
        events records = loaded + quarantined + exact duplicates
        lead records   = loaded + quarantined + exact duplicates
     where the events side's quarantine includes the adapter's rejections.

Each input file gets one `load_ledger` row with role `events` (rows_read = event records +
rejections, plus `source`, `source_rows`, `rows_ignored`, `ignored` JSON and `notes` JSON)
and, when it gave lead rows, a second row with role `leads` for the same file and hash.

Line numbers
============
`_line` and `Rejection.line` are 1-based physical positions in the file as a user would find
them in an editor: for CSV/TSV the header is line 1, so the first data row is line 2, and a
record whose quoted value spans several lines has the line it starts on; blank lines count as
lines. For Parquet, the row number (first row = 1). For JSON Lines, the line. For one JSON
document (an API payload), the 1-based position of the item in the list the adapter walks,
and say so in `notes`. `read_table` below numbers CSV and Parquet rows this way.

Deal money history
==================
The loader reads `amount`, `close_date`, `currency` and `forecast_category` per lead in event order:
the latest non-empty value so far is the deal's value then, and consecutive rows of one stage are one
spell. So write each stage move with the values in force at its instant, and for a value that changed
between two moves, a row repeating the current stage at the change's instant (a change at the very
instant of a move goes on the move's row, not a row of its own). `value_history` below does this from
a deal's moves and its changes; `plain_amount` turns "EUR 52,000.00" into ("52000.00", "EUR"). A row
that gives no row of its own (folded into a move) is counted as ignored like any other.

Values
======
Empty strings or strings of only whitespace mean "no value": the loader trims and turns them
into NULL. Exact duplicate events (same lead, stage label, instant, reason and attributes) are
collapsed by the loader, counted as duplicates, within and across files.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from funnelboard.core.config import FunnelConfig, normalise_label
from funnelboard.core.errors import UserError
from funnelboard.etl.readers import RESERVED, column_name, parse_header

EVENT_COLUMNS = ("lead_id", "stage", "entered_at")
LEAD_COLUMNS = ("lead_id",)
BOOK_COLUMNS = ("_file", "_line", "_raw")
# Names an adapter's attribute may not take: the columns every event or lead row already has.
NOT_ATTRIBUTES = {"lead_id", "stage", "entered_at", "reason", "created_at"}

# The timestamp grammar of the canonical loader (docs/loading.md), shared by the loader's SQL and
# the adapters, so what passes an adapter passes the loader: ISO-8601 date or date-time, optional
# fraction and offset. Its groups (year, month, day, hour, minute, second, fraction, offset) are
# for adapters that take a match apart; they do not change what matches.
ISO_TIMESTAMP = (
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?: ?([Zz]|[+-]\d{2}(?::?\d{2})?))?)?"
)
ISO = re.compile(ISO_TIMESTAMP)


def file_key(path: Path) -> str:
    """How a file is named in a Translation (`_file`, `ignored`, `source_rows`, `Rejection.file`)."""
    return str(path)


@dataclass(frozen=True)
class Rejection:
    """A source row (or one cell of it) that could not become a record; it goes to the quarantine."""

    file: str
    line: int | None
    reason: str
    detail: str
    raw: str | None = None
    lead_id: str | None = None  # the journey (or record) the row belongs to; see "Translation.rejected"


@dataclass
class Translation:
    """What an adapter made of its files: events, optional leads, rejections, ignored counts, notes."""

    events: pa.Table = field(default_factory=lambda: empty_events())
    leads: pa.Table | None = None
    rejected: list[Rejection] = field(default_factory=list)
    ignored: dict[str, dict[str, int]] = field(default_factory=dict)
    source_rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Journey ids this translation writes no events under although a pull must replace what earlier
    # loads of the source stored under them, as it replaces the journeys it writes: records whose events
    # now continue another journey (a deal under its contact, a converted lead's opportunity).
    superseded: set[str] = field(default_factory=set)
    # (record id, journey id) pairs: a record whose rows or values are written into a journey not its own -- a deal
    # that continues its contact's journey (also in `superseded`), a contact whose first response or buying role a
    # deal's journey takes, the task that is its journey's first response. A pull stores them, and the next pull that
    # fetches either side fetches the other too: a record that leaves a journey (a deal or contact no longer associated,
    # a task moved to another lead) must rewrite both.
    ties: set[tuple[str, str]] = field(default_factory=set)

    def ignore(self, path: Path | str, reason: str, count: int = 1) -> None:
        """Count `count` source rows of `path` that are deliberately not events, under `reason`."""
        key = path if isinstance(path, str) else file_key(path)
        per_file = self.ignored.setdefault(key, {})
        per_file[reason] = per_file.get(reason, 0) + count

    def reject(self, path: Path | str, line: int | None, reason: str, detail: str, raw: str | None = None,
               lead_id: str | None = None) -> None:
        key = path if isinstance(path, str) else file_key(path)
        self.rejected.append(Rejection(key, line, reason, detail, raw, lead_id))


Adapter = Callable[[list[Path], FunnelConfig, dict], Translation]


def string_table(rows: Iterable[dict], columns: Sequence[str]) -> pa.Table:
    """A Table with `columns` (all text except `_line` int64) from dicts; missing keys are NULL.

    Convenience for adapters: `string_table(events, ("lead_id", "stage", "entered_at", "reason",
    "channel", "_file", "_line", "_raw"))`.
    """
    rows = list(rows)
    arrays = []
    fields = []
    for name in columns:
        values = [r.get(name) for r in rows]
        if name == "_line":
            arrays.append(pa.array(values, pa.int64()))
            fields.append(pa.field(name, pa.int64()))
        else:
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
            fields.append(pa.field(name, pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def events_table(rows: Iterable[dict], attributes: Sequence[str] = ()) -> pa.Table:
    """`Translation.events` from event dicts: the event columns, reason, `attributes` in order, then _file, _line, _raw."""
    return string_table(rows, (*EVENT_COLUMNS, "reason", *attributes, "_file", "_line", "_raw"))


def empty_events(attributes: Sequence[str] = ()) -> pa.Table:
    return events_table([], attributes)


class EventCollector:
    """Methods for an adapter's build state (a dataclass) that has `events: list[dict]`,
    `event_attrs: list[str]` and `outcome_labels: set[str]` (normalised labels that map to outcomes)."""

    def is_outcome(self, label: str) -> bool:
        return normalise_label(label) in self.outcome_labels

    def event(self, lead_id: str, label: str, text: str, reason: str | None, attrs: dict[str, str | None],
              file: str, line: int, raw: str) -> None:
        """Collect one event; an attribute becomes a column once some event has a value for it."""
        for name, value in attrs.items():
            if value not in (None, "") and name not in self.event_attrs:
                self.event_attrs.append(name)
        self.events.append({"lead_id": lead_id, "stage": label, "entered_at": text, "reason": reason, **attrs,
                            "_file": file, "_line": line, "_raw": raw})

    def events_table(self) -> pa.Table:
        return events_table(self.events, self.event_attrs)


# -- reading an export -------------------------------------------------------------------------


@dataclass
class SourceTable:
    """One export read as text: header as written, rows with their line and raw text."""

    path: Path
    header: tuple[str, ...]
    rows: list[tuple[int, dict[str, str], str]]  # (line, {header: value}, raw text)
    delimiter: str = ","  # the delimiter a CSV file was read with

    def column(self, name: str) -> str | None:
        """The header as written that matches `name` ignoring case and surrounding spaces."""
        want = name.strip().lower()
        for h in self.header:
            if h.strip().lower() == want:
                return h
        return None

    def require(self, names: Iterable[str], what: str) -> dict[str, str]:
        """Map each wanted column name to the header as written; UserError naming the first missing one."""
        found = {}
        for name in names:
            h = self.column(name)
            if h is None:
                raise UserError(
                    f"{what} '{self.path}' has no '{name}' column: expected {', '.join(names)}; "
                    f"found {', '.join(self.header) if self.header else 'no columns'}."
                )
            found[name] = h
        return found


def read_table(path: Path, config: FunnelConfig, translation: Translation, *, what: str = "export") -> SourceTable:
    """Read a CSV/TSV (optionally .gz) or Parquet export as text rows, numbering lines per the contract.

    CSV uses the pinned dialect of `[input]` (delimiter, quote, encoding; tab for .tsv), never a
    sniffer. Rows with the wrong number of fields, undecodable bytes or a broken quote are
    rejected into `translation` with their line and raw text; `translation.source_rows` is set
    to the number of data rows (rejected ones included). File-level problems raise UserError.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} '{path}' does not exist.")
    if not path.is_file():
        raise UserError(f"{what} '{path}' is not a file.")
    if path.stat().st_size == 0:
        raise UserError(f"{what} '{path}' is empty: expected a header row and at least one data row.")
    name = path.name.lower()
    key = file_key(path)
    if name.endswith((".parquet", ".pq")):
        table = _read_parquet(path, what)
    elif name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")):
        delimiter = "\t" if ".tsv" in name else config.delimiter
        table = _read_csv(path, config, delimiter, translation, what)
    else:
        raise UserError(
            f"cannot tell the format of {what} '{path}': expected a name ending in .csv, .csv.gz, .tsv, "
            f".tsv.gz or .parquet, found '{path.suffix or 'no extension'}'."
        )
    if not table.rows and not any(r.file == key for r in translation.rejected):
        raise UserError(f"{what} '{path}' has no data rows: expected at least one row after the header.")
    translation.source_rows[key] = len(table.rows) + sum(1 for r in translation.rejected if r.file == key)
    return table


def _read_parquet(path: Path, what: str) -> SourceTable:
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(f"{what} '{path}' is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    header = tuple(t.column_names)
    cols = []
    for c in t.columns:
        if pa.types.is_timestamp(c.type) and c.type.tz is not None:
            cols.append([None if v is None else v.isoformat() for v in c.to_pylist()])
        else:
            cols.append([None if v is None else (v.isoformat() if hasattr(v, "isoformat") else str(v)) for v in c.to_pylist()])
    rows = []
    for i in range(t.num_rows):
        values = {h: ("" if col[i] is None else col[i]) for h, col in zip(header, cols)}
        rows.append((i + 1, values, _json_raw(values)))
    return SourceTable(path, header, rows)


def _json_raw(values: dict) -> str:
    import json

    return json.dumps(values, ensure_ascii=False)


def _read_csv(path: Path, config: FunnelConfig, delimiter: str, translation: Translation, what: str) -> SourceTable:
    key = file_key(path)
    encoding = config.encoding.replace("latin-1", "latin_1")
    try:
        data = gzip.open(path, "rb").read() if path.name.lower().endswith(".gz") else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise UserError(f"{what} '{path}' cannot be read: {exc}.") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{what} '{path}' is UTF-16 encoded: expected {config.encoding} text (save it as UTF-8 CSV).")
    if b"\x00" in data[: 1 << 16]:
        raise UserError(f"{what} '{path}' contains NUL bytes: expected {config.encoding} CSV text, found binary data.")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    physical = data.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    if not physical or not physical[0].strip():
        raise UserError(f"{what} '{path}' is empty: expected a header row and at least one data row.")
    try:
        header_text = physical[0].decode(encoding).rstrip("\r")
    except (UnicodeDecodeError, LookupError):
        raise UserError(f"{what} '{path}' has a header row that is not valid {config.encoding}.") from None
    full = parse_header(path, header_text, delimiter, config.quote, what)
    header = tuple(h for h in full if h)
    if not header:
        raise UserError(f"{what} '{path}' has a header row with no column names: expected the export's column names.")
    if len(set(h.lower() for h in header)) != len(header):
        raise UserError(f"{what} '{path}' has two columns with the same name: expected unique column names.")
    fields_of = _field_picker(path, full, what)
    if len(header) < len(full):
        translation.notes.append(f"'{path.name}' has a column with no name in its header (such as a trailing delimiter "
                                 "makes); it holds no values and was not read.")

    rows: list[tuple[int, dict[str, str], str]] = []
    i = 1  # index into physical lines (0 = header)
    n = len(physical)
    while i < n:
        start = i
        chunk = physical[i]
        i += 1
        # A record continues while its quotes are unbalanced (a quoted value holding a line break).
        while chunk.count(config.quote.encode()) % 2 == 1 and i < n:
            chunk += b"\n" + physical[i]
            i += 1
        line_no = start + 1
        try:
            text = chunk.decode(encoding).rstrip("\r")
        except UnicodeDecodeError:
            translation.reject(key, line_no, "invalid_encoding", f"the row is not valid {config.encoding} text",
                               chunk.decode(encoding, errors="replace").rstrip("\r"))
            continue
        if not text.strip():
            continue  # a blank line is not a row
        if text.count(config.quote) % 2 == 1:
            translation.reject(key, line_no, "malformed_csv",
                               f"unterminated quote: the record runs from line {line_no} to the end of the file "
                               f"({i - start} line(s)) and was not loaded", text)
            continue
        try:
            fields = next(csv.reader([text], delimiter=delimiter, quotechar=config.quote, strict=True))
        except csv.Error as exc:
            translation.reject(key, line_no, "malformed_csv", f"the row cannot be parsed as CSV: {exc}", text)
            continue
        values = fields_of(fields, line_no)
        if values is None:
            translation.reject(key, line_no, "wrong_column_count",
                               f"expected {len(full)} fields, found {len(fields)}", text)
            continue
        rows.append((line_no, dict(zip(header, values)), text))
    return SourceTable(path, header, rows, delimiter)


def _field_picker(path: Path, full: list[str], what: str) -> Callable[[list[str], int], list[str] | None]:
    """A function giving a row's values for the named columns (None: wrong field count).

    A column with no name (a trailing delimiter in the header) must be empty in every row: a value
    there cannot be read under any name, so it stops the load. Rows may also lack trailing unnamed
    columns altogether (only the header ends in a delimiter).
    """
    named = [i for i, h in enumerate(full) if h]
    if len(named) == len(full):
        return lambda fields, line: fields if len(fields) == len(full) else None
    shortest = named[-1] + 1

    def pick(fields: list[str], line: int) -> list[str] | None:
        if len(fields) not in (len(full), shortest):
            return None
        for i in range(len(fields)):
            if not full[i] and fields[i].strip():
                raise UserError(f"{what} '{path}' has a column with no name (column {i + 1}) that holds a value on line "
                                f"{line} ('{fields[i].strip()[:40]}'): name that column in the header, or delete it.")
        return [fields[i] for i in named]

    return pick


# -- [source.NAME] options and side files ----------------------------------------------------------
#
# Each helper checks one kind of option of a `[source.NAME]` table and raises UserError naming
# `section` (such as "[source.hubspot]") and the key; `what` words what the key should hold.


def check_option_keys(options: dict, section: str, allowed: Sequence[str], *, one_of: bool = True) -> None:
    """UserError naming the first (sorted) key of `options` that is not in `allowed`."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UserError(f"{section} has unknown key '{unknown[0]}'; expected {'one of ' if one_of else ''}{', '.join(allowed)}.")


def option_files(options: dict, key: str, config: FunnelConfig, section: str, what: str) -> tuple[Path, ...]:
    """The files of `key = "FILE"` or `key = ["FILE", ...]`, relative to funnel.toml's folder; () when absent.

    `what` names one such file, e.g. "a pipelines JSON file".
    """
    if key not in options:
        return ()
    value = options[key]
    files = [value] if isinstance(value, str) else value
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f.strip() for f in files):
        raise UserError(f"{section} {key} = {value!r}; expected the path of {what} (or a list of them).")
    base = Path(config.source).parent if Path(config.source).is_file() else Path.cwd()
    paths = tuple(p if p.is_absolute() else base / p for p in (Path(f.strip()) for f in files))
    for p in paths:
        if not p.is_file():
            raise UserError(f"{section} {key} file '{p}' does not exist.")
    return paths


def option_table(options: dict, key: str, section: str, what: str) -> dict[str, str]:
    """A `key = { id = "text", ... }` table with non-empty text values, keys and values trimmed; {} when absent.

    `what` words one entry, e.g. 'stage id = "Stage label"'.
    """
    if key not in options:
        return {}
    raw = options[key]
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        raise UserError(f"{section} {key} = {raw!r}; expected a table of {what}.")
    return {str(k).strip(): v.strip() for k, v in raw.items()}


def is_attribute_name(name: str) -> bool:
    """True for a name an attribute column may take: lower_snake_case, not reserved, not a core column."""
    return column_name(name) == name and name not in RESERVED and name not in NOT_ATTRIBUTES


def option_attributes(
    options: dict, section: str, defaults: dict[str, tuple[str, ...]], what: str
) -> dict[str, tuple[str, ...]]:
    """The `attributes` table: attribute name -> the columns (or fields) that may hold it, first found wins.

    Each value is one name or a list of names; `what` words such a value, e.g. "a column name or a
    list of column names". A copy of `defaults` when the table is absent; when present it replaces them.
    """
    if "attributes" not in options:
        return dict(defaults)
    raw = options["attributes"]
    if not isinstance(raw, dict):
        raise UserError(f"{section} attributes = {raw!r}; expected a table such as {section[:-1]}.attributes].")
    attributes: dict[str, tuple[str, ...]] = {}
    for name, value in raw.items():
        cols = (value,) if isinstance(value, str) else value
        if not isinstance(cols, (list, tuple)) or not cols or not all(isinstance(c, str) and c.strip() for c in cols):
            raise UserError(f"{section}.attributes {name} = {value!r}; expected {what}.")
        if not is_attribute_name(name):
            raise UserError(f"{section}.attributes has attribute '{name}'; expected a lower_snake_case name other than "
                            f"{', '.join(sorted(NOT_ATTRIBUTES))}.")
        attributes[name] = tuple(c.strip() for c in cols)
    return attributes


def option_text(options: dict, key: str, section: str, default: str | None, what: str = "a column name") -> str | None:
    """The trimmed text of `key`, or `default` when absent; UserError when it is not non-empty text."""
    if key not in options:
        return default
    value = options[key]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{section} {key} = {value!r}; expected {what} as text.")
    return value.strip()


def read_json(path: Path, what: str, api: str) -> object:
    """One JSON document (optionally .gz, UTF-8 with or without BOM); UserError naming `what` and `path`.

    `api` names what writes such documents, e.g. "the HubSpot API".
    """
    try:
        data = gzip.open(path, "rb").read() if path.name.lower().endswith(".gz") else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise UserError(f"{what} '{path}' cannot be read: {exc}.") from None
    if not data.strip():
        raise UserError(f"{what} '{path}' is empty: expected a JSON document as {api} returns it.")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UserError(f"{what} '{path}' is not UTF-8 text: expected a JSON document.") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} '{path}' is not valid JSON: {exc.msg.removesuffix(' at')} at line {exc.lineno}, column {exc.colno}.") from None


# -- deal money history ---------------------------------------------------------------------------
#
# Events may carry the deal's money values as attributes: `amount` (a plain number), `close_date`
# (YYYY-MM-DD), `currency` (ISO 4217) and `forecast_category` (as the CRM writes it). The loader reads
# them per deal in event order, the latest non-empty value so far being the deal's value then, so an
# adapter writes each stage move with the values in force at its instant and, for a change between
# moves, a row repeating the current stage at the change's instant.

MONEY_ATTRIBUTES = ("amount", "close_date", "currency", "forecast_category")


def add_money_columns(columns: list[str], events) -> None:
    """Append to an events table's attribute columns each money column some event carries a value of."""
    for name in MONEY_ATTRIBUTES:
        if name not in columns and any(e.get(name) for e in events):
            columns.append(name)

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "₹": "INR", "₩": "KRW", "₪": "ILS", "₺": "TRY"}
_PLAIN = re.compile(r"-?\d+(?:\.\d+)?")
_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA = re.compile(r"-?(?:\d{1,3}(?:\.\d{3})+|\d+),\d{1,2}")


@dataclass(frozen=True)
class ValueChange:
    """New money values of one deal at one instant, and the source row that says so."""

    at: object  # an instant comparable with the deal's stage instants (a datetime)
    text: str  # entered_at text of a row made for this change
    values: dict[str, str]
    file: str
    line: int
    raw: str | None = None


@lru_cache(maxsize=1 << 16)  # exports repeat amounts: parse each distinct text once
def plain_amount(text: str | None) -> tuple[str | None, str | None]:
    """(plain number, ISO currency code or None) of an amount as exports write it; (None, None) when it is no number.

    "EUR 52,000.00" -> ("52000.00", "EUR"), "52000" -> ("52000", None), "€1,200.50" -> ("1200.50", "EUR").
    A symbol that names several currencies ("$") gives no code.
    """
    t = (text or "").strip()
    if not t:
        return None, None
    code = None
    m = re.fullmatch(r"([A-Za-z]{3})\s*(.+?)|(.+?)\s*([A-Za-z]{3})", t)
    if m and _CURRENCY_CODE.fullmatch((m.group(1) or m.group(4) or "").upper()):
        code = (m.group(1) or m.group(4)).upper()
        t = (m.group(2) or m.group(3)).strip()
    for symbol, iso in _CURRENCY_SYMBOLS.items():
        if symbol in t:
            code = code or iso
            t = t.replace(symbol, "").strip()
    t = t.lstrip("$").replace(" ", "").replace("\u00a0", "")
    if t.startswith("-$"):
        t = "-" + t[2:]
    if _GROUPED.fullmatch(t):
        t = t.replace(",", "")
    elif _DECIMAL_COMMA.fullmatch(t):  # 52.000,00 or 1200,5: a decimal comma no US grouping could be
        t = t.replace(".", "").replace(",", ".")
    return (t, code) if _PLAIN.fullmatch(t) else (None, None)


def value_history(stages: Sequence[tuple[object, dict]], changes: Sequence[ValueChange]) -> tuple[list[dict], list[ValueChange]]:
    """A deal's stage events with the money values in force at each, plus a row per change between moves.

    `stages` are (instant, event dict) in event order; `changes` in any order (sorted here, stably, by
    instant). Each stage event dict is updated in place with the values in force at its instant: changes
    before it and at its very instant (a change at the instant of a move folds into the move's row).
    A change later than a move and earlier than the next one (or after the last) that changes a value
    gives a copy of the current stage's event at the change's instant and source row; changes at one
    instant give one row. Returns (the new rows, the changes that gave no row of their own: folded into
    a stage row, earlier than the first move, or changing nothing).
    """
    ordered = sorted(changes, key=lambda c: c.at)
    in_force: dict[str, str] = {}
    made: list[dict] = []
    unused: list[ValueChange] = []
    current: dict | None = None
    last_made: tuple[object, dict] | None = None
    i = 0

    def apply(change: ValueChange) -> dict[str, str]:
        new = {k: v for k, v in change.values.items() if v not in (None, "") and in_force.get(k) != v}
        in_force.update(new)
        return new

    def between(change: ValueChange) -> None:
        nonlocal last_made
        new = apply(change)
        if not new or current is None:
            unused.append(change)
        elif last_made is not None and last_made[0] == change.at:
            last_made[1].update(new)  # a second change at the same instant: one row
            unused.append(change)
        else:
            row = {**current, **in_force, "entered_at": change.text, "_file": change.file, "_line": change.line,
                   "_raw": change.raw}
            made.append(row)
            last_made = (change.at, row)

    for at, event in stages:
        while i < len(ordered) and ordered[i].at < at:
            between(ordered[i])
            i += 1
        while i < len(ordered) and ordered[i].at == at:
            apply(ordered[i])
            unused.append(ordered[i])
            i += 1
        event.update({k: v for k, v in in_force.items()})
        current, last_made = event, None
    for change in ordered[i:]:
        between(change)
    return made, unused
