"""The `wide` adapter: any table with one timestamp column per stage, mapped in funnel.toml.

    [source.wide]
    id = "mql_id"                                        # the lead id column
    stages = { mql = "first_contact_date", won = "won_date" }   # stage label = date column
    attributes = { channel = "origin" }                  # attribute = column
    reasons = { lost = "loss_reason" }                   # stage = column holding that stage's reason
    date_format = "%Y-%m-%d %H:%M:%S"                     # optional; a list tries each in turn
    status_stages = { column = "close_date", status = "status", values = { Won = "won", Lost = "lost" } }
    snapshot_date = "2024-05-31"                          # optional: the day the export was taken

Several files (say an MQL file and a closed-deals file sharing the lead id) are described by
`[[source.wide.tables]]` entries, each with `name`, `match` (a glob on the file name) and
its own keys; keys written directly under `[source.wide]` are defaults for every table.
`join = "<name>"` keeps only rows whose id appears in that other table's file (the others
are quarantined as `unmatched_id`). The files are combined through the lead id: every table
gives events for its stage columns, and the models build one journey per lead.

A lookup table (an entry with `key` and `attributes`, no stages) gives attributes to the rows
of the tables that name it in `lookups = { <table> = "<their column holding the key>" }`:
an accounts file joined to deals by account name, an owners file joined by agent.

Per export row: an empty id rejects the row (`missing_lead_id`); each non-empty stage cell
gives one event carrying the row's attributes and the reason mapped to that stage; a
`status_stages` date gives an event of the stage its row's status maps to; a cell that does
not parse under `date_format` is rejected (`unparseable_timestamp`, naming the column) while
the row's other cells still load; a row with no stage date is counted as ignored
(`no_stage_dates`, or `unmapped_status` when its status is none of status_stages' values).
A file none of whose rows has a usable date is refused, unless `snapshot_date` dates the
stages its rows mark without a date (a status, or a cell such as "x" or "yes").
"""

from __future__ import annotations

import fnmatch
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from funnelboard.core.config import FunnelConfig, normalise_label
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.base import (
    ISO,
    MONEY_ATTRIBUTES,
    SourceTable,
    Translation,
    check_option_keys,
    empty_events,
    file_key,
    is_attribute_name,
    plain_amount,
    read_table,
    string_table,
)

TABLE_KEYS = {"name", "match", "id", "stages", "attributes", "reasons", "date_format", "join",
              "status_stages", "lookups", "key", "snapshot_date"}
TOP_KEYS = TABLE_KEYS - {"name", "match", "key"} | {"tables"}
# A lookup table gives attributes only: none of these keys applies to it.
NOT_LOOKUP_KEYS = ("id", "stages", "status_stages", "reasons", "date_format", "join", "lookups", "snapshot_date")
EPOCH = {"epoch_s": 1, "epoch_ms": 1000}
# Cells that mark a stage as reached without dating it (a hand-kept sheet's check marks).
FLAGS = {"x", "yes", "y", "true", "✓", "✔"}
STATUS_EXAMPLE = '{ column = "close_date", status = "status", values = { Won = "won", Lost = "lost" } }'
_SECTION = "[source.wide]"


@dataclass(frozen=True)
class StatusStages:
    """One `status_stages` entry: a date column whose stage depends on the row's status."""

    column: str
    status: str
    values: dict[str, str]  # normalised status value -> stage label


@dataclass(frozen=True)
class TableSpec:
    """One `[[source.wide.tables]]` entry (or the whole `[source.wide]` table when there are none)."""

    name: str
    match: str
    id: str
    stages: dict[str, str]
    attributes: dict[str, str]
    reasons: dict[str, str]
    date_formats: tuple[str, ...]
    join: str | None
    status_stages: tuple[StatusStages, ...] = ()
    lookups: dict[str, str] = field(default_factory=dict)  # lookup table name -> this table's column with its key
    key: str | None = None  # set for a lookup table: the column holding its key
    snapshot: str | None = None  # snapshot_date

    @property
    def is_lookup(self) -> bool:
        return self.key is not None

    def columns(self) -> list[str]:
        """Every column the mapping names, as written in funnel.toml."""
        if self.is_lookup:
            return [self.key, *self.attributes.values()]
        status = [c for s in self.status_stages for c in (s.column, s.status)]
        return [self.id, *self.stages.values(), *status, *self.attributes.values(), *self.reasons.values(), *self.lookups.values()]


# -- options ---------------------------------------------------------------------------------------


def parse_options(options: dict) -> list[TableSpec]:
    """The table specs of `[source.wide]`; UserError naming the key for anything missing or wrong."""
    check_option_keys(options, _SECTION, sorted(TOP_KEYS), one_of=False)
    defaults = {k: v for k, v in options.items() if k != "tables"}
    tables = options.get("tables")
    if tables is None:
        entries = [{"name": "wide", "match": "*", **defaults}]
    else:
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables) or not tables:
            raise UserError(f"{_SECTION} tables must be a list of tables written as [[source.wide.tables]].")
        entries = []
        for i, t in enumerate(tables, 1):
            check_option_keys(t, f"[[source.wide.tables]] number {i}", sorted(TABLE_KEYS), one_of=False)
            base = {"name": f"table{i}", "match": "*"}
            entries.append({**base, **t} if "key" in t else {**base, **defaults, **t})
    specs = [_lookup_spec(e) if "key" in e else _spec(e) for e in entries]
    _check_references(specs)
    return specs


def _check_references(specs: list[TableSpec]) -> None:
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UserError(f"{_SECTION} names two tables '{next(n for n in names if names.count(n) > 1)}': expected unique names.")
    if all(s.is_lookup for s in specs):
        raise UserError(f"{_SECTION} has only lookup tables (tables with key): expected at least one table with stages.")
    mains = [s.name for s in specs if not s.is_lookup]
    lookups = [s.name for s in specs if s.is_lookup]
    for s in specs:
        if s.join is not None and (s.join not in mains or s.join == s.name):
            raise UserError(f"{_SECTION} table '{s.name}' has join = '{s.join}'; expected the name of another table "
                            f"with stages ({', '.join(n for n in mains if n != s.name) or 'none'}).")
        for name in s.lookups:
            if name not in lookups:
                raise UserError(f"{_SECTION} table '{s.name}' has lookups naming '{name}'; expected a lookup table "
                                f"(a table with key and attributes: {', '.join(lookups) or 'none is configured'}).")


def _where(e: dict) -> str:
    return f"{_SECTION} table '{e['name']}'" if e["name"] != "wide" else _SECTION


def _spec(e: dict) -> TableSpec:
    where = _where(e)
    if not isinstance(e.get("id"), str) or not e["id"].strip():
        raise UserError(f"{where} has no id: expected id = \"<the lead id column>\".")
    if not isinstance(e["match"], str) or not isinstance(e["name"], str):
        raise UserError(f"{where} needs text values for name and match.")
    status_stages = _status_stages(e["status_stages"], where) if "status_stages" in e else ()
    stages = _mapping(e.get("stages", {}), "stages", where, required=not status_stages)
    attributes = _attribute_map(e.get("attributes", {}), where)
    reasons = _mapping(e.get("reasons", {}), "reasons", where)
    named = set(stages) | {v for s in status_stages for v in s.values.values()}
    for stage in reasons:
        if stage not in named:
            raise UserError(f"{where} maps a reason to stage '{stage}', which is not in its stages ({', '.join(sorted(named))}).")
    formats = e.get("date_format", ())
    if isinstance(formats, str):
        formats = (formats,)
    if not isinstance(formats, (list, tuple)) or not all(isinstance(f, str) and f for f in formats):
        raise UserError(f"{where} has date_format = {formats!r}; expected a strptime format such as \"%d/%m/%Y\", \"epoch_ms\", or a list of them.")
    join = e.get("join")
    if join is not None and not isinstance(join, str):
        raise UserError(f"{where} has join = {join!r}; expected the name of another table.")
    lookups = _mapping(e.get("lookups", {}), "lookups", where)
    return TableSpec(e["name"], e["match"], e["id"], stages, attributes, reasons, tuple(formats), join,
                     status_stages, lookups, None, _snapshot(e.get("snapshot_date"), where))


def _lookup_spec(e: dict) -> TableSpec:
    where = _where(e)
    if not isinstance(e["key"], str) or not e["key"].strip():
        raise UserError(f"{where} has key = {e['key']!r}; expected the name of the column holding the key the other tables name.")
    if not isinstance(e["match"], str) or not isinstance(e["name"], str):
        raise UserError(f"{where} needs text values for name and match.")
    for k in NOT_LOOKUP_KEYS:
        if k in e:
            raise UserError(f"{where} is a lookup table (it has key), which only gives attributes: remove {k}, or remove key.")
    attributes = _attribute_map(e.get("attributes"), where)
    if not attributes:
        raise UserError(f"{where} is a lookup table (it has key) without attributes: expected attributes = {{ industry = \"Industry\" }}.")
    return TableSpec(e["name"], e["match"], "", {}, attributes, {}, (), None, key=e["key"].strip())


def _mapping(value, key: str, where: str, required: bool = False) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()) or (required and not value):
        examples = {"stages": '{ mql = "first_contact_date", won = "won_date" }', "lookups": '{ accounts = "Account Name" }'}
        example = examples.get(key, '{ channel = "origin" }')
        raise UserError(f"{where} has {key} = {value!r}; expected a table of names to column names such as {key} = {example}.")
    return {str(k): str(v) for k, v in value.items()}


def _attribute_map(value, where: str) -> dict[str, str]:
    attributes = _mapping(value if value is not None else {}, "attributes", where)
    for name in attributes:
        if not is_attribute_name(name):
            raise UserError(f"{where} has attribute '{name}'; expected a lower_snake_case name that is not a core or reserved column.")
    return attributes


def _status_stages(value, where: str) -> tuple[StatusStages, ...]:
    """`status_stages`: one table, or a list of them, each `{ column, status, values = { status = stage } }`."""
    entries = [value] if isinstance(value, dict) else value
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{where} has status_stages = {value!r}; expected {STATUS_EXAMPLE}.")
    out = []
    for entry in entries:
        ok = isinstance(entry, dict) and set(entry) == {"column", "status", "values"}
        ok = ok and all(isinstance(entry[k], str) and entry[k].strip() for k in ("column", "status"))
        values = entry.get("values") if ok else None
        if not ok or not isinstance(values, dict) or not values or not all(isinstance(v, str) and v.strip() for v in values.values()):
            raise UserError(f"{where} has status_stages = {entry!r}; expected {STATUS_EXAMPLE}.")
        out.append(StatusStages(entry["column"].strip(), entry["status"].strip(),
                                {normalise_label(str(k)): v.strip() for k, v in values.items()}))
    return tuple(out)


def _snapshot(value, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except (AttributeError, ValueError):
        raise UserError(f"{where} has snapshot_date = {value!r}; expected the day the export was taken, such as \"2024-05-31\".") from None


# -- translate -------------------------------------------------------------------------------------


@dataclass
class _Lookup:
    """A lookup table's rows by normalised key, and which keys the other tables named or missed."""

    spec: TableSpec
    rows: dict[str, tuple[str, dict[str, str | None]]] = field(default_factory=dict)  # key -> (file, attributes)
    files: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    missed: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))  # (file, column) -> values

    def add(self, path: Path, table: SourceTable, out: Translation) -> None:
        key_col = table.column(self.spec.key)
        cols = {a: table.column(c) for a, c in self.spec.attributes.items()}
        self.files.append(path.name)
        for line, row, raw in table.rows:
            k = normalise_label(row[key_col])
            if not k:
                out.reject(path, line, "missing_key", f"{self.spec.key} is empty", raw)
                continue
            if k in self.rows:
                out.ignore(self.rows[k][0], "repeated_key")  # the last copy wins
            self.rows[k] = (file_key(path), {a: row[c].strip() or None for a, c in cols.items()})

    def find(self, value: str, file: str, column: str) -> dict[str, str | None]:
        k = normalise_label(value)
        if k in self.rows:
            self.used.add(k)
            return self.rows[k][1]
        self.missed[(file, column)][value.strip()] += 1
        return {}

    def account(self, out: Translation) -> None:
        """Count every row as a lookup row or an unmatched one, and say in notes what did not match."""
        unmatched = 0
        for k, (file, _) in self.rows.items():
            out.ignore(file, "lookup_row" if k in self.used else "lookup_unmatched")
            unmatched += k not in self.used
        where = ", ".join(self.files)
        for (file, column), values in self.missed.items():
            blank = values.pop("", 0)
            if values:
                shown = ", ".join(f"'{v}'" for v, _ in values.most_common(3))
                out.notes.append(f"{sum(values.values())} row(s) of '{file}' have a {column} value that lookup table "
                                 f"'{self.spec.name}' ({where}) does not have ({shown}): they carry none of its attributes.")
            if blank:
                out.notes.append(f"{blank} row(s) of '{file}' have no {column}, so lookup table '{self.spec.name}' gives them "
                                 "no attributes.")
        if unmatched:
            out.notes.append(f"{unmatched} row(s) of lookup table '{self.spec.name}' ({where}) have a {self.spec.key} value "
                             "no record names: they are counted as ignored (lookup_unmatched).")


@dataclass
class _Run:
    """What translate() shares while it walks the rows of the stage tables."""

    out: Translation
    ids: dict[str, set[str]]
    lookups: dict[str, _Lookup]
    events: list[dict] = field(default_factory=list)
    unmapped: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))  # (table, status column)
    snapshot_stages: int = 0


def translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation:
    """One event per stage date of every row, for every file matched to a table spec; lookups add attributes."""
    if not options:
        raise UserError(f"--source wide needs a {_SECTION} table in funnel.toml saying which column is the id and which columns are stage dates.")
    specs = parse_options(options)
    out = Translation(events=empty_events())
    read = _read_files(paths, specs, config, out)
    run = _Run(out, _ids_by_table(read), {s.name: _Lookup(s) for s in specs if s.is_lookup})
    _check_companions(specs, read)
    for path, spec, table in read:
        if spec.is_lookup:
            run.lookups[spec.name].add(path, table, out)
    for path, spec, table in read:
        if not spec.is_lookup:
            _stage_table(run, path, spec, table)
    for lookup in run.lookups.values():
        lookup.account(out)
    _notes(run, specs)
    attributes: list[str] = []
    for spec in specs:
        attributes += [a for a in spec.attributes if a not in attributes]
    if any(a in MONEY_ATTRIBUTES for a in attributes):
        _money_at_creation(run, {s.name: s for s in specs}, attributes)
    out.events = string_table(run.events, ("lead_id", "stage", "entered_at", "reason", *attributes, "_file", "_line", "_raw"))
    return out


def _read_files(paths: list[Path], specs: list[TableSpec], config: FunnelConfig, out: Translation) -> list[tuple[Path, TableSpec, SourceTable]]:
    """Each file with the first table spec whose `match` fits its name, read and checked for the columns it maps."""
    assigned: list[tuple[Path, TableSpec]] = []
    for path in paths:
        matches = [s for s in specs if fnmatch.fnmatch(path.name, s.match)]
        if not matches:
            raise UserError(
                f"export file '{path}' matches no table of {_SECTION}: expected a name matching "
                f"{', '.join(repr(s.match) for s in specs)}."
            )
        assigned.append((path, matches[0]))
    read = [(path, spec, read_table(path, config, out, what="export file")) for path, spec in assigned]
    for _, spec, table in read:
        table.require(list(dict.fromkeys(spec.columns())), "export file")
    return read


def _ids_by_table(read: list[tuple[Path, TableSpec, SourceTable]]) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {}
    for _, spec, table in read:
        if not spec.is_lookup:
            col = table.column(spec.id)
            ids.setdefault(spec.name, set()).update(v.strip() for _, row, _ in table.rows if (v := row[col].strip()))
    return ids


def _check_companions(specs: list[TableSpec], read: list[tuple[Path, TableSpec, SourceTable]]) -> None:
    """A table that joins or looks up another needs that other table's file in the same command."""
    given = {s.name for _, s, _ in read}
    for spec in specs:
        if spec.name not in given:
            continue
        for other, why in ([(spec.join, "joins")] if spec.join else []) + [(n, "looks up") for n in spec.lookups]:
            if other not in given:
                match = next(s.match for s in specs if s.name == other)
                raise UserError(f"{_SECTION} table '{spec.name}' {why} table '{other}', but no file given matches {match!r}: give that file too.")


def _stage_table(run: _Run, path: Path, spec: TableSpec, table: SourceTable) -> None:
    """The events of one stage table's rows; refuses a file none of whose rows has a usable date."""
    key = file_key(path)
    cols = {c: table.column(c) for c in spec.columns()}  # each mapped column -> the header as written
    id_col = cols[spec.id]
    candidates = usable = 0
    for line, row, raw in table.rows:
        lead_id = row[id_col].strip()
        if not lead_id:
            run.out.reject(key, line, "missing_lead_id", f"{spec.id} is empty", raw)
            continue
        if spec.join is not None and lead_id not in run.ids[spec.join]:
            run.out.reject(key, line, "unmatched_id", f"{spec.id} \"{lead_id}\" is not in the {spec.join} file", raw)
            continue
        candidates += 1
        attrs = _row_attributes(run, spec, cols, row, path.name)
        made, good, unmapped = _row_events(run, spec, cols, (lead_id, line, row, raw), attrs, key)
        usable += good
        if not made:
            run.out.ignore(key, "unmapped_status" if unmapped else "no_stage_dates")
    if candidates and not usable:
        _refuse_undated(path, spec, candidates)


def _row_attributes(run: _Run, spec: TableSpec, cols: dict[str, str], row: dict[str, str], file: str) -> dict[str, str | None]:
    """The row's own attributes, then what its lookups give for the attributes the row leaves empty."""
    attrs: dict[str, str | None] = {name: row[cols[c]] for name, c in spec.attributes.items()}
    for name, column in spec.lookups.items():
        found = run.lookups[name].find(row[cols[column]], file, column)
        for attr, value in found.items():
            if not (attrs.get(attr) or "").strip():
                attrs[attr] = value
    return attrs


def _stage_cells(run: _Run, spec: TableSpec, cols: dict[str, str], row: dict[str, str]) -> tuple[list[tuple[str, str, str, bool]], bool]:
    """(stage, column, cell text, from a status) per stage the row may date, and whether a status was none of the values."""
    cells = [(stage, col, row[cols[col]].strip(), False) for stage, col in spec.stages.items()]
    unmapped = False
    for ss in spec.status_stages:
        status = row[cols[ss.status]].strip()
        stage = ss.values.get(normalise_label(status))
        if stage is None:
            unmapped = True
            run.unmapped[(spec.name, ss.status)][status or "(empty)"] += 1
        else:
            cells.append((stage, ss.column, row[cols[ss.column]].strip(), True))
    return cells, unmapped


def _row_events(run: _Run, spec: TableSpec, cols: dict[str, str], source: tuple[str, int, dict[str, str], str],
                attrs: dict[str, str | None], key: str) -> tuple[int, int, bool]:
    """Append the row's events (or reject its unreadable cells): (records made, usable dates, unmapped status)."""
    lead_id, line, row, raw = source
    cells, unmapped = _stage_cells(run, spec, cols, row)
    reason_cols = {stage: cols[c] for stage, c in spec.reasons.items()}
    made = good = 0
    for stage, column, text, from_status in cells:
        entered_at, problem, usable = _date_of(text, from_status, spec)
        if entered_at is None and problem is None:
            continue
        made += 1
        if problem:
            run.out.reject(key, line, "unparseable_timestamp", f"{column} \"{text}\" {problem}", raw)
            continue
        good += usable
        run.snapshot_stages += spec.snapshot is not None and (not text or text.lower() in FLAGS)
        run.events.append({"lead_id": lead_id, "stage": stage, "entered_at": entered_at,
                           "reason": row[reason_cols[stage]] if stage in reason_cols else None,
                           **attrs, "_file": key, "_line": line, "_raw": raw, "_spec": spec.name})
    return made, good, unmapped


def _money_at_creation(run: _Run, specs: dict[str, TableSpec], attributes: list[str]) -> None:
    """A wide row holds a deal's current amount, close date and currency, not their history: write them once, on the
    deal's earliest event (its creation), as plain values: an amount without currency text or thousands separators
    (a currency code written with it becomes the currency when no column gives one, added to `attributes`), a close
    date as YYYY-MM-DD. The first non-empty value of each, in file and row order, is the deal's."""
    names = [a for a in attributes if a in MONEY_ATTRIBUTES]
    by_lead: dict[str, list[dict]] = defaultdict(list)
    for event in run.events:
        by_lead[event["lead_id"]].append(event)
    for events in by_lead.values():
        values: dict[str, str] = {}
        for event in events:
            spec = specs[event.pop("_spec")]
            for name in names:
                text = (event.pop(name, None) or "").strip()
                if not text or name in values:
                    continue
                if name == "amount":
                    amount, code = plain_amount(text)
                    if amount:
                        values["amount"] = amount
                    if code:
                        values.setdefault("currency_from_amount", code)
                elif name == "close_date":
                    iso, problem = _timestamp(text, spec.date_formats)
                    values[name] = iso[:10] if not problem and ISO.fullmatch(iso) else text
                else:
                    values[name] = text.upper() if name == "currency" else text
        code = values.pop("currency_from_amount", None)
        if code and "currency" not in values:
            values["currency"] = code
            if "currency" not in attributes:
                attributes.append("currency")
        first = min(events, key=lambda e: (e["entered_at"][:10], e["entered_at"][11:], e["_line"]))
        first.update(values)


def _date_of(text: str, from_status: bool, spec: TableSpec) -> tuple[str | None, str | None, bool]:
    """(entered_at, why it cannot be read, usable) of one stage cell; (None, None, False) when it gives no event.

    An empty cell gives none, except a status's date under snapshot_date; a check mark ("x", "yes")
    is dated at snapshot_date when there is one.
    """
    if not text:
        return (spec.snapshot, None, True) if from_status and spec.snapshot else (None, None, False)
    if spec.snapshot and text.lower() in FLAGS:
        return spec.snapshot, None, True
    entered_at, problem = _timestamp(text, spec.date_formats)
    if problem:
        return None, problem, False
    return entered_at, None, bool(spec.date_formats) or bool(ISO.fullmatch(text))


def _refuse_undated(path: Path, spec: TableSpec, rows: int) -> None:
    columns = [*spec.stages.values(), *(s.column for s in spec.status_stages)]
    how = f" written as {' or '.join(spec.date_formats)}" if spec.date_formats else " written as ISO dates such as 2024-01-31 (or set date_format)"
    raise UserError(
        f"export file '{path}' has no usable date in any of its {rows} row(s): expected the day each row entered a stage in "
        f"{', '.join(dict.fromkeys(columns))}{how}; if the export has no dates, set snapshot_date = \"YYYY-MM-DD\" "
        f"(the day it was taken) under {_SECTION} to date the stages its rows mark by a status or a check mark."
    )


def _notes(run: _Run, specs: list[TableSpec]) -> None:
    for (table, column), values in run.unmapped.items():
        spec = next(s for s in specs if s.name == table)
        shown = ", ".join(f"{v} {n}" for v, n in values.most_common(5))
        dates = ", ".join(dict.fromkeys(s.column for s in spec.status_stages if s.status == column))
        run.out.notes.append(f"{sum(values.values())} row(s) have a {column} that status_stages does not map ({shown}): "
                             f"their {dates} is not an event (a row with no other date is ignored as unmapped_status).")
    if run.snapshot_stages:
        when = ", ".join(sorted({s.snapshot for s in specs if s.snapshot}))
        run.out.notes.append(f"{run.snapshot_stages} stage(s) had no date and were dated at snapshot_date {when}: "
                             "the time spent before them is unknown.")


def _timestamp(text: str, formats: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(ISO text, None), or (None, why not) for a cell under the configured formats; no formats = as written."""
    if not formats:
        return text, None
    for fmt in formats:
        if fmt in EPOCH:
            try:
                value = datetime.fromtimestamp(float(text) / EPOCH[fmt], tz=timezone.utc)
            except (ValueError, OverflowError, OSError):
                continue
            return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), None
        try:
            value = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if value.tzinfo is not None:
            return value.isoformat(), None
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if value.microsecond else value.strftime("%Y-%m-%d %H:%M:%S"), None
    return None, f"does not match date_format {' or '.join(formats)}"
