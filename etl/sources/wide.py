"""The `wide` adapter: any table with one timestamp column per stage, mapped in funnel.toml.

    [source.wide]
    id = "mql_id"                                        # the lead id column
    stages = { mql = "first_contact_date", won = "won_date" }   # stage label = date column
    attributes = { channel = "origin" }                  # attribute = column
    reasons = { lost = "loss_reason" }                   # stage = column holding that stage's reason
    date_format = "%Y-%m-%d %H:%M:%S"                     # optional; a list tries each in turn

Several files (say an MQL file and a closed-deals file sharing the lead id) are described by
`[[source.wide.tables]]` entries, each with `name`, `match` (a glob on the file name) and
its own keys; keys written directly under `[source.wide]` are defaults for every table.
`join = "<name>"` keeps only rows whose id appears in that other table's file (the others
are quarantined as `unmatched_id`). The files are combined through the lead id: every table
gives events for its stage columns, and the models build one journey per lead.

Per export row: an empty id rejects the row (`missing_lead_id`); each non-empty stage cell
gives one event carrying the row's attributes and the reason mapped to that stage; a cell
that does not parse under `date_format` is rejected (`unparseable_timestamp`, naming the
column) while the row's other cells still load; a row with every stage cell empty gives no
event and is counted as ignored (`no_stage_dates`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.base import Translation, check_option_keys, empty_events, file_key, is_attribute_name, read_table, string_table

TABLE_KEYS = {"name", "match", "id", "stages", "attributes", "reasons", "date_format", "join"}
TOP_KEYS = TABLE_KEYS - {"name", "match"} | {"tables"}
EPOCH = {"epoch_s": 1, "epoch_ms": 1000}
_SECTION = "[source.wide]"


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
            entries.append({"name": f"table{i}", "match": "*", **defaults, **t})
    specs = [_spec(e) for e in entries]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UserError(f"{_SECTION} names two tables '{next(n for n in names if names.count(n) > 1)}': expected unique names.")
    for s in specs:
        if s.join is not None and (s.join not in names or s.join == s.name):
            raise UserError(f"{_SECTION} table '{s.name}' has join = '{s.join}'; expected the name of another table ({', '.join(n for n in names if n != s.name)}).")
    return specs


def _spec(e: dict) -> TableSpec:
    where = f"{_SECTION} table '{e['name']}'" if e["name"] != "wide" else _SECTION
    if not isinstance(e.get("id"), str) or not e["id"].strip():
        raise UserError(f"{where} has no id: expected id = \"<the lead id column>\".")
    stages = _mapping(e.get("stages"), "stages", where, required=True)
    attributes = _mapping(e.get("attributes", {}), "attributes", where)
    for name in attributes:
        if not is_attribute_name(name):
            raise UserError(f"{where} has attribute '{name}'; expected a lower_snake_case name that is not a core or reserved column.")
    reasons = _mapping(e.get("reasons", {}), "reasons", where)
    for stage in reasons:
        if stage not in stages:
            raise UserError(f"{where} maps a reason to stage '{stage}', which is not in its stages ({', '.join(stages)}).")
    formats = e.get("date_format", ())
    if isinstance(formats, str):
        formats = (formats,)
    if not isinstance(formats, (list, tuple)) or not all(isinstance(f, str) and f for f in formats):
        raise UserError(f"{where} has date_format = {formats!r}; expected a strptime format such as \"%d/%m/%Y\", \"epoch_ms\", or a list of them.")
    join = e.get("join")
    if join is not None and not isinstance(join, str):
        raise UserError(f"{where} has join = {join!r}; expected the name of another table.")
    if not isinstance(e["match"], str) or not isinstance(e["name"], str):
        raise UserError(f"{where} needs text values for name and match.")
    return TableSpec(e["name"], e["match"], e["id"], stages, attributes, reasons, tuple(formats), join)


def _mapping(value, key: str, where: str, required: bool = False) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()) or (required and not value):
        example = '{ mql = "first_contact_date", won = "won_date" }' if key == "stages" else '{ channel = "origin" }'
        raise UserError(f"{where} has {key} = {value!r}; expected a table of names to column names such as {key} = {example}.")
    return {str(k): str(v) for k, v in value.items()}


def translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation:
    """One event per non-empty stage cell of every row, for every file matched to a table spec."""
    if not options:
        raise UserError(f"--source wide needs a {_SECTION} table in funnel.toml saying which column is the id and which columns are stage dates.")
    specs = parse_options(options)
    out = Translation(events=empty_events())
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
    for path, spec, table in read:
        table.require([spec.id, *spec.stages.values(), *spec.attributes.values(), *spec.reasons.values()], "export file")

    ids_by_table: dict[str, set[str]] = {}
    for _, spec, table in read:
        col = table.column(spec.id)
        ids_by_table.setdefault(spec.name, set()).update(v.strip() for _, row, _ in table.rows if (v := row[col].strip()))
    for spec in specs:
        if spec.join is not None and any(s is spec for _, s, _ in read) and spec.join not in ids_by_table:
            raise UserError(f"{_SECTION} table '{spec.name}' joins table '{spec.join}', but no file given matches {next(s.match for s in specs if s.name == spec.join)!r}: give that file too.")

    attributes: list[str] = []
    for spec in specs:
        attributes += [a for a in spec.attributes if a not in attributes]
    events: list[dict] = []
    for path, spec, table in read:
        key = file_key(path)
        cols = {name: table.column(c) for name, c in spec.stages.items()}
        attr_cols = {name: table.column(c) for name, c in spec.attributes.items()}
        reason_cols = {stage: table.column(c) for stage, c in spec.reasons.items()}
        id_col = table.column(spec.id)
        for line, row, raw in table.rows:
            lead_id = row[id_col].strip()
            if not lead_id:
                out.reject(key, line, "missing_lead_id", f"{spec.id} is empty", raw)
                continue
            if spec.join is not None and lead_id not in ids_by_table[spec.join]:
                out.reject(key, line, "unmatched_id", f"{spec.id} \"{lead_id}\" is not in the {spec.join} file", raw)
                continue
            made = 0
            for stage, col in cols.items():
                text = row[col].strip()
                if not text:
                    continue
                made += 1
                entered_at, problem = _timestamp(text, spec.date_formats)
                if problem:
                    out.reject(key, line, "unparseable_timestamp", f"{spec.stages[stage]} \"{text}\" {problem}", raw)
                    continue
                event = {"lead_id": lead_id, "stage": stage, "entered_at": entered_at,
                         "reason": row[reason_cols[stage]] if stage in reason_cols else None,
                         "_file": key, "_line": line, "_raw": raw}
                event.update({name: row[c] for name, c in attr_cols.items()})
                events.append(event)
            if not made:
                out.ignore(key, "no_stage_dates")
    out.events = string_table(events, ("lead_id", "stage", "entered_at", "reason", *attributes, "_file", "_line", "_raw"))
    return out


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
