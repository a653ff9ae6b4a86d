"""Pipedrive exports -> canonical events: full history from the deal flow, partial from the deals export.

Reads, in any mix and order (each file's kind is told by its content):

* Deal flow JSON as the API returns it (GET /v1/deals/{id}/flow): one response, a list of
  responses (one per deal) or a list of flow items. `dealChange` items with `field_key`
  `add_time` (creation), `stage_id` (a stage move), `status` (won, lost, reopened) and
  `lost_reason` are the history; times are UTC. Every other item (activities, notes, other
  fields) is counted as ignored; every item of a deal whose last status is `deleted` is counted
  as `deleted_deal`.
* The deals CSV export (`Deal - ID`, `Deal - Stage`, `Deal - Status`, `Deal - Deal created`,
  `Deal - Won time`, `Deal - Lost time`[, `Deal - Lost reason`, `Deal - Last stage change`,
  `Deal - Pipeline`, `Deal - Owner`, ...]): only creation, current stage and won/lost time,
  so history is partial. A deal that also has a flow takes its history from the flow and its
  attributes (and, if it never moved, its stage at creation) from the export row.
* Stages JSON (GET /v1/stages or /api/v2/stages): the stage id -> name map. Also
  `[source.pipedrive] stages = FILE`, or names in `stage_names`; otherwise the names the flow
  carries in `additional_data`.
* Activities: the `activity` items of the flow, or an activities JSON (GET /v1/activities,
  GET /v1/deals/{id}/activities): a deal's first response is its earliest done call, email, meeting
  or lunch (`response_types`), at `marked_as_done_time` (UTC).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from funnelboard.core.config import FunnelConfig, normalise_label
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.base import (
    ISO,
    MONEY_ATTRIBUTES,
    EventCollector,
    Rejection,
    SourceTable,
    Translation,
    ValueChange,
    add_money_columns,
    check_option_keys,
    file_key,
    option_attributes,
    option_files,
    option_table,
    plain_amount,
    read_json,
    read_table,
    value_history,
)

NAME = "pipedrive"
_SECTION = f"[source.{NAME}]"
OPTION_KEYS = ("stages", "stage_names", "created_stage", "attributes", "response_types")
# Activity types (key_string) that reach the buyer: Pipedrive's default call, email, meeting and lunch (task and
# deadline are the seller's own to-dos).
DEFAULT_RESPONSE_TYPES = ("call", "email", "meeting", "lunch")
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "owner": ("Deal - Owner", "user_id"),
    "amount": ("Deal - Value", "value"),
    "pipeline": ("Deal - Pipeline", "pipeline_id"),
    "channel": ("Deal - Source channel", "channel"),
}
# Deal fields whose changes are the deal's money history, and the attribute each is written as.
MONEY_FIELDS = {"value": "amount", "expected_close_date": "close_date", "currency": "currency"}
CLOSE_DATE, CURRENCY = "Deal - Expected close date", ("Deal - Currency of Value", "Deal - Currency")
WON, LOST = "Won", "Lost"  # Pipedrive statuses, written as stage labels ("won" and "lost" are canonical names)

ID, STAGE, STATUS, CREATED = "Deal - ID", "Deal - Stage", "Deal - Status", "Deal - Deal created"
WON_TIME, LOST_TIME, LOST_REASON = "Deal - Won time", "Deal - Lost time", "Deal - Lost reason"
LAST_CHANGE, PIPELINE = "Deal - Last stage change", "Deal - Pipeline"
REQUIRED = (ID, STAGE, STATUS, CREATED, WON_TIME, LOST_TIME)

_OFFSET = re.compile(r".{11,}(?:[Zz]|[+-]\d{2}(?::?\d{2})?)")
_TIME_DETAIL = {
    "missing_timestamp": "{col} is empty",
    "unparseable_timestamp": '{col} is "{value}", not a time like 2026-03-04 15:22:01',
    "impossible_timestamp": '{col} is "{value}", not a real date or time',
}


@dataclass(frozen=True)
class Options:
    """`[source.pipedrive]` of funnel.toml, checked."""

    stages: tuple[Path, ...] = ()
    stage_names: dict[str, str] = field(default_factory=dict)
    created_stage: str | None = None
    attributes: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))
    response_types: tuple[str, ...] = DEFAULT_RESPONSE_TYPES


@dataclass
class _Change:
    """One flow item that is part of a deal's history."""

    deal: str
    key: str  # field_key
    old: str | None
    new: str | None
    at: datetime
    text: str  # the instant as entered_at text (UTC)
    file: str
    line: int
    raw: str
    order: tuple[int, int]  # (data id, position) to order changes logged in the same second


@dataclass
class _Row:
    """One deals-export row."""

    deal: str
    values: dict[str, str]
    table: SourceTable
    line: int
    raw: str

    def get(self, name: str) -> str:
        header = self.table.column(name)
        return self.values.get(header, "").strip() if header else ""


@dataclass
class _Build(EventCollector):
    """What translate() collects before writing the events table."""

    config: FunnelConfig
    options: Options
    out: Translation
    outcome_labels: set[str]
    names: dict[str, str] = field(default_factory=dict)  # stage id -> name
    stage_pipeline: dict[str, str] = field(default_factory=dict)  # stage id -> pipeline name
    flow_names: dict[str, str] = field(default_factory=dict)  # stage id -> name, from additional_data
    changes: dict[str, list[_Change]] = field(default_factory=lambda: defaultdict(list))
    # Flow items of a deal that are not part of its history: counted once the deal is known not to be deleted.
    asides: dict[str, list[tuple[str, str, Rejection | None]]] = field(default_factory=lambda: defaultdict(list))
    rows: dict[str, _Row] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    event_attrs: list[str] = field(default_factory=list)
    unknown_initial: int = 0
    responses: dict[str, tuple[datetime, str, str]] = field(default_factory=dict)  # deal -> its first response (UTC), activity id
    activities: list[tuple[str | None, str, int, str]] = field(default_factory=list)  # done activities: deal, file, line, raw

    def label(self, stage_id: str | None) -> str | None:
        if stage_id is None:
            return None
        name = self.options.stage_names.get(stage_id) or self.names.get(stage_id) or self.flow_names.get(stage_id)
        return _qualified(self.config, name, self.stage_pipeline.get(stage_id)) if name else None


def translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation:
    """Turn Pipedrive exports (deal flow JSON, deals CSV, stages JSON) into events."""
    opts = parse_options(options, config)
    out = Translation()
    b = _Build(config, opts, out, {k for k, v in config.label_map().items() if v in config.outcomes})
    for path in opts.stages:
        if not _add_stages(b, _read_json(path, f"stages file ({_SECTION} stages)")):
            raise UserError(f"{_SECTION} stages file '{path}' is not a Pipedrive stages list: expected "
                            "{\"data\": [{\"id\", \"name\", \"pipeline_id\", ...}]} as GET /stages returns it.")

    flows: list[tuple[Path, list]] = []
    tables: list[tuple[Path, SourceTable]] = []
    for path in paths:
        if path.name.lower().endswith((".json", ".json.gz")):
            doc = _read_json(path, "Pipedrive export")
            stages = _stage_list(doc)
            if stages:
                _add_stages(b, doc)
                out.source_rows[file_key(path)] = len(stages)
                out.ignore(path, "stage_definition", len(stages))
                continue
            activities = _activity_list(doc)
            if activities is not None:
                out.source_rows[file_key(path)] = len(activities)
                for position, activity in enumerate(activities, 1):
                    _activity(b, file_key(path), position, activity, None, from_flow=False)
                continue
            items = _flow_items(doc, path)
            out.source_rows[file_key(path)] = len(items)
            flows.append((path, items))
        else:
            table = read_table(path, config, out, what="Pipedrive deals export")
            table.require(REQUIRED, "Pipedrive deals export")
            tables.append((path, table))

    for path, items in flows:
        for position, (item, deal) in enumerate(items, 1):
            _flow_item(b, path, position, item, deal)
    partial: dict[str, SourceTable] = {}  # deals exports with rows read as partial history
    for path, table in tables:
        for line, values, raw in table.rows:
            deal = values[table.column(ID)].strip()
            row = _Row(deal, values, table, line, raw)
            if not deal:
                out.reject(path, line, "missing_lead_id", f"{table.column(ID)} is empty", raw)
            elif deal in b.changes:
                b.rows[deal] = row
                out.ignore(path, "history_in_flow")
            else:
                _deal_row(b, row)
                partial[file_key(path)] = table
    for deal, changes in b.changes.items():
        _deal_flow(b, deal, changes)
    for deal in list(b.asides):  # deals whose flow holds no change of their history: their items count as they are
        _settle_asides(b, deal, deleted=False)
    _first_responses(b)

    if flows:
        out.notes.append("In a Pipedrive flow JSON a record's line is the position of its flow item in the file "
                         "(1 = the first item of the first response), not a line of text; flow times are UTC.")
    if b.unknown_initial:
        out.notes.append(f"{b.unknown_initial} deal(s) never changed stage in their flow, so the stage they were created in "
                         "is not in it: give the deals export (CSV) with the flow to supply it.")
    if partial:
        created = opts.created_stage or config.stages[0]
        out.notes.append(
            "Pipedrive's deals export keeps only each deal's creation, current stage and won or lost time: the stages in "
            "between, re-entries and reopened deals are not in it, and times spent in earlier stages are unknown; "
            f"a deal that has moved since creation enters '{created}' when created and its current stage at 'Last stage change'."
        )
        if any(t.column(LAST_CHANGE) is None for t in partial.values()):
            out.notes.append(f"A deals export without a '{LAST_CHANGE}' column dates each deal's current stage at its creation.")
    out.events = b.events_table()
    return out


# -- options and files ----------------------------------------------------------------------------


def parse_options(options: dict, config: FunnelConfig) -> Options:
    """Check `[source.pipedrive]`; UserError naming the key for anything unknown or malformed."""
    check_option_keys(options, _SECTION, OPTION_KEYS)
    stages = option_files(options, "stages", config, _SECTION, "a stages JSON file")
    names = option_table(options, "stage_names", _SECTION, 'stage id = "Stage name"')
    created = options.get("created_stage")
    if created is not None:
        if not isinstance(created, str) or normalise_label(created) not in config.label_map():
            raise UserError(f"{_SECTION} created_stage = {created!r}; expected a stage or a label in [labels] "
                            f"(such as '{config.stages[0]}').")
    attributes = option_attributes(options, _SECTION, DEFAULT_ATTRIBUTES, "a column or field key, or a list of them")
    types = options.get("response_types", list(DEFAULT_RESPONSE_TYPES))
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not all(isinstance(t, str) and t.strip() for t in types):
        raise UserError(f"{_SECTION} response_types = {options['response_types']!r}; expected a list of activity types "
                        "(key_string) such as ['call', 'email', 'meeting'].")
    return Options(stages, names, created.strip() if created else None, attributes, tuple(t.strip().lower() for t in types))


def _read_json(path: Path, what: str) -> object:
    """A Pipedrive API document; UserError for an unreadable one or an error response (success = false)."""
    doc = read_json(path, what, "the Pipedrive API")
    for response in doc if isinstance(doc, list) else [doc]:
        if isinstance(response, dict) and response.get("success") is False:
            raise UserError(f"{what} '{path}' is an error response from the Pipedrive API: "
                            f"{response.get('error') or 'success is false'}.")
    return doc


def _stage_list(doc: object) -> list[dict]:
    items = doc.get("data") if isinstance(doc, dict) else doc
    if isinstance(items, list) and items and all(
        isinstance(s, dict) and "object" not in s and "id" in s and "name" in s and "pipeline_id" in s for s in items
    ):
        return items
    return []


def _add_stages(b: _Build, doc: object) -> bool:
    stages = _stage_list(doc)
    for s in stages:
        b.names[str(s["id"])] = str(s["name"])
        if s.get("pipeline_name"):
            b.stage_pipeline[str(s["id"])] = str(s["pipeline_name"])
    return bool(stages)


def _flow_items(doc: object, path: Path) -> list[tuple[dict, str | None]]:
    """The flow items of a flow document (one response, a list of responses, or a list of items), each with
    its deal: the deal its response is the flow of (GET /deals/{id}/flow is one deal's), else the item's own."""
    def is_response(d: object) -> bool:
        return isinstance(d, dict) and isinstance(d.get("data"), list)

    if is_response(doc):
        responses = [doc["data"]]
    elif isinstance(doc, list) and doc and all(is_response(d) for d in doc):
        responses = [d["data"] for d in doc]
    elif isinstance(doc, list):
        responses = [[i] for i in doc]  # bare items: each names its own deal
    else:
        responses = None
    items = [i for r in responses for i in r] if responses is not None else None
    if items is None or not all(isinstance(i, dict) and "object" in i for i in items):
        found = (f"keys {', '.join(sorted(doc)[:8])}" if isinstance(doc, dict) else
                 f"items with keys {', '.join(sorted(next((i for i in items or [] if isinstance(i, dict) and 'object' not in i), {}))[:6])}")
        raise UserError(f"Pipedrive export '{path}' is neither a deal flow (GET /deals/{{id}}/flow: data[].object) nor a "
                        f"stages list (GET /stages: data[].name, pipeline_id) nor activities (GET /activities: data[].deal_id, "
                        f"done, type): found {found}.")
    if not items:
        raise UserError(f"Pipedrive export '{path}' has no flow items: expected at least one.")
    return [(i, _item_deal(i) or shared) for r in responses for shared in [_response_deal(r)] for i in r]


def _item_deal(item: dict) -> str | None:
    """The deal a flow item names: `item_id` of a dealChange, `deal_id` of an activity, note, file or email."""
    data = item.get("data") if isinstance(item.get("data"), dict) else {}
    value = data.get("item_id") if item.get("object") == "dealChange" else data.get("deal_id")
    return None if value in (None, "") else str(value).strip() or None


def _response_deal(items: list[dict]) -> str | None:
    """The deal a flow response is about, when its items name exactly one."""
    deals = {d for i in items if (d := _item_deal(i))}
    return next(iter(deals)) if len(deals) == 1 else None


# -- timestamps and labels -----------------------------------------------------------------------


def _instant(value: object) -> tuple[datetime, str] | tuple[None, str]:
    """(naive instant, text) of a `YYYY-MM-DD HH:MM:SS`-style value, or (None, loader reason)."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None, "missing_timestamp"
    if not ISO.fullmatch(text):
        return None, "unparseable_timestamp"
    try:
        at = datetime.fromisoformat(text[:11] + text[11:].replace(" ", "").replace("z", "Z"))
    except ValueError:
        return None, "impossible_timestamp"
    return at, text


def _qualified(config: FunnelConfig, name: str, pipeline: str | None) -> str:
    """`Name (Pipeline)` when [labels] maps that form, so equal names in two pipelines can differ; else the name."""
    if pipeline:
        both = f"{name} ({pipeline})"
        if normalise_label(both) in config.label_map():
            return both
    return name


# -- the deal flow -------------------------------------------------------------------------------


def _flow_item(b: _Build, path: Path, position: int, item: dict, deal: str | None) -> None:
    """Sort one flow item into its deal's history, or set it aside as ignored (or rejected) until the
    deal is known not to be deleted; an item of no known deal is counted at once."""
    key = file_key(path)
    data = item.get("data") if isinstance(item.get("data"), dict) else {}
    if item.get("object") != "dealChange":
        if item.get("object") == "activity":
            _activity(b, key, position, data, deal, from_flow=True)
        _aside(b, deal, key, "not_a_deal_change")
        return
    field_key = str(data.get("field_key") or "")
    attribute = any(field_key in cols for cols in b.options.attributes.values())
    if field_key not in ("add_time", "stage_id", "status", "lost_reason", *MONEY_FIELDS) and not attribute:
        _aside(b, deal, key, "other_field")
        return
    raw = json.dumps(item, ensure_ascii=False)
    if not deal:
        b.out.reject(key, position, "missing_lead_id", f"flow item {position} ({field_key}) has no item_id", raw)
        return
    stamp = data.get("log_time") or item.get("timestamp")
    at, text = _instant(stamp)
    if at is None:
        detail = f"deal {deal} {field_key} change: " + _TIME_DETAIL[text].format(col="log_time", value=stamp)
        _aside(b, deal, key, text, Rejection(key, position, text, detail, raw, deal))
        return
    old = None if data.get("old_value") is None else str(data["old_value"]).strip()
    new = None if data.get("new_value") is None else str(data["new_value"]).strip()
    if field_key == "stage_id" and isinstance(data.get("additional_data"), dict):
        for value, formatted in ((old, "old_value_formatted"), (new, "new_value_formatted")):
            if value and data["additional_data"].get(formatted):
                b.flow_names.setdefault(value, str(data["additional_data"][formatted]))
    if field_key == "add_time":  # the creation time is the new value; log_time is when it was written
        created, created_text = _instant(new)
        if created is not None:
            at, text = created, created_text
    utc = text if _OFFSET.fullmatch(text) else text.replace(" ", "T", 1) + "Z"
    order = (int(data["id"]) if str(data.get("id", "")).isdigit() else 0, position)
    b.changes[deal].append(_Change(deal, field_key, old, new, at, utc, key, position, raw, order))


def _aside(b: _Build, deal: str | None, file: str, reason: str, rejection: Rejection | None = None) -> None:
    """Count a flow item that is not part of its deal's history, once the deal is known not to be deleted."""
    if deal is None:
        b.out.ignore(file, reason)
    else:
        b.asides[deal].append((file, reason, rejection))


def _settle_asides(b: _Build, deal: str, deleted: bool) -> None:
    """Count the items set aside for a deal: all of a deleted deal's as `deleted_deal`, the others as they are."""
    for file, reason, rejection in b.asides.pop(deal, []):
        if deleted:
            b.out.ignore(file, "deleted_deal")
        elif rejection is not None:
            b.out.rejected.append(rejection)
        else:
            b.out.ignore(file, reason)


def _deal_flow(b: _Build, deal: str, changes: list[_Change]) -> None:
    """One deal's flow as events: creation in its first stage, each move, each win, loss and reopening."""
    changes.sort(key=lambda c: (c.at, c.order))
    statuses = [c for c in changes if c.key == "status"]
    deleted = bool(statuses) and statuses[-1].new == "deleted"
    _settle_asides(b, deal, deleted)
    if deleted:
        for c in changes:
            b.out.ignore(c.file, "deleted_deal")
        return
    row = b.rows.get(deal)
    moves = [c for c in changes if c.key == "stage_id"]
    if moves:
        initial = b.label(moves[0].old)
        initial_id = moves[0].old
    else:
        initial = _qualified(b.config, row.get(STAGE), row.get(PIPELINE)) if row and row.get(STAGE) else None
        initial_id = None
    attrs = _flow_attributes(b, deal, changes, row)
    money = _initial_money(changes, row, attrs)
    attrs = {k: v for k, v in attrs.items() if k not in MONEY_ATTRIBUTES}
    current, current_id = initial, initial_id
    made: list[tuple[_Change, str]] = []
    reasons: list[_Change] = []
    for c in changes:
        if c.key == "add_time":
            if current is None:
                b.unknown_initial += not moves
                why = ("never changed stage in the flow" if not moves else
                       f'was created in stage id "{initial_id}", which has no name in the stages list or the flow')
                b.out.reject(c.file, c.line, "unknown_initial_stage",
                             f"deal {deal} {why}, so the stage it was created in is unknown", c.raw, deal)
            else:
                made.append((c, current))
        elif c.key == "stage_id":
            current, current_id = b.label(c.new), c.new
            if current is None:
                b.out.reject(c.file, c.line, "unknown_stage_id",
                             f'deal {deal} moved to stage id "{c.new}", which is not in the stages list: give GET /stages '
                             f"with the flow or name it under {_SECTION} stage_names", c.raw, deal)
            else:
                made.append((c, current))
        elif c.key == "status" and c.new in ("won", "lost"):
            made.append((c, WON if c.new == "won" else LOST))
        elif c.key == "status" and c.new == "open" and c.old in ("won", "lost"):
            if current is None:
                b.out.reject(c.file, c.line, "unknown_stage_id" if current_id else "unknown_initial_stage",
                             f"deal {deal} was reopened into a stage that has no name", c.raw, deal)
            else:
                made.append((c, current))  # reopened: back in the stage it was won or lost in
        elif c.key == "lost_reason":
            reasons.append(c)
            b.out.ignore(c.file, "reason_value")
        elif c.key == "status":
            b.out.ignore(c.file, "other_status_change")
        elif c.key in MONEY_FIELDS:
            money.append(ValueChange(c.at, c.text, {MONEY_FIELDS[c.key]: _money_value(c.key, c.new)}, c.file, c.line, c.raw))
        else:
            b.out.ignore(c.file, "attribute_value")
    fallback = row.get(LOST_REASON) if row else ""
    stages: list[tuple[datetime, dict]] = []
    for i, (c, label) in enumerate(made):
        reason = None
        if b.is_outcome(label):
            end = made[i + 1][0].at if i + 1 < len(made) else None
            held = [r for r in reasons if end is None or r.at < end]
            if held:
                reason = held[-1].new or None
            elif i == len(made) - 1:  # the export row's reason belongs to the loss the deal is in now
                reason = fallback or None
        b.event(deal, label, c.text, reason, attrs, c.file, c.line, c.raw)
        stages.append((c.at, b.events[-1]))
    rows, unused = value_history(stages, money)
    b.events.extend(rows)
    add_money_columns(b.event_attrs, [e for _, e in stages])
    for change in unused:
        if change.line:  # a flow item folded into a move's row, or changing nothing: not an event of its own
            b.out.ignore(change.file, "attribute_value")


def _money_value(key: str, value: str | None) -> str:
    """A flow or export value as the money attribute is written: a plain amount, a YYYY-MM-DD date, an ISO code."""
    text = (value or "").strip()
    if key == "value":
        return plain_amount(text)[0] or ""
    if key == "expected_close_date":
        return text[:10] if ISO.fullmatch(text) else ""
    return text.upper()


def _initial_money(changes: list[_Change], row: _Row | None, attrs: dict[str, str | None]) -> list[ValueChange]:
    """The deal's money values at creation, as one change before every move: the old value of each field's first change
    in the flow, else the deals export row's current value (or the flow's attribute value)."""
    values: dict[str, str] = {}
    for key, name in MONEY_FIELDS.items():
        first = next((c for c in changes if c.key == key), None)
        if first is not None:
            values[name] = _money_value(key, first.old)
        elif name == "amount":
            values[name] = _money_value(key, attrs.get("amount"))
        elif row is not None:
            column = CLOSE_DATE if key == "expected_close_date" else next((c for c in CURRENCY if row.get(c)), CURRENCY[0])
            values[name] = _money_value(key, row.get(column))
    return [ValueChange(changes[0].at, "", values, "", 0)] if changes else []


def _flow_attributes(b: _Build, deal: str, changes: list[_Change], row: _Row | None) -> dict[str, str | None]:
    """The deals-export row's attributes when there is one, else the latest value of each attribute field in the flow."""
    attrs: dict[str, str | None] = {}
    for name, cols in b.options.attributes.items():
        value = None
        if row is not None:
            value = next((row.get(c) for c in cols if row.get(c)), None)
        if value is None:
            latest = [c for c in changes if c.key in cols and c.new]
            value = latest[-1].new if latest else None
        attrs[name] = value
    return attrs


# -- the deals export ----------------------------------------------------------------------------


def _deal_row(b: _Build, row: _Row) -> None:
    """One deals-export row without a flow: creation, current stage, and the win or loss."""
    key, line, raw, deal = file_key(row.table.path), row.line, row.raw, row.deal
    status = row.get(STATUS).lower()
    if status == "deleted":
        b.out.ignore(key, "deleted")
        return
    if status not in ("open", "won", "lost"):
        b.out.reject(key, line, "unknown_status",
                     f'{row.table.column(STATUS)} is "{row.get(STATUS)}", not Open, Won, Lost or Deleted', raw, deal)
        return
    stage = row.get(STAGE)
    if not stage:
        b.out.reject(key, line, "missing_stage", f"{row.table.column(STAGE)} is empty", raw, deal)
        return
    label = _qualified(b.config, stage, row.get(PIPELINE))
    attrs = {name: next((row.get(c) for c in cols if row.get(c)), None) for name, cols in b.options.attributes.items()}
    if "amount" in attrs:
        attrs["amount"] = _money_value("value", attrs["amount"]) or None
    attrs["close_date"] = _money_value("expected_close_date", row.get(CLOSE_DATE)) or None
    attrs["currency"] = _money_value("currency", next((row.get(c) for c in CURRENCY if row.get(c)), "")) or None

    def entry(column: str, stage_label: str, reason: str | None = None) -> None:
        at, text = _instant(row.get(column))
        if at is None:
            b.out.reject(key, line, text, _TIME_DETAIL[text].format(col=row.table.column(column), value=row.get(column)), raw,
                         deal)
        else:
            b.event(deal, stage_label, text, reason, attrs, key, line, raw)

    moved = row.get(LAST_CHANGE) and row.get(LAST_CHANGE) != row.get(CREATED)
    if moved:
        entry(CREATED, b.options.created_stage or b.config.stages[0])
        entry(LAST_CHANGE, label)
    else:
        entry(CREATED, label)
    if status == "won":
        entry(WON_TIME, WON)
    elif status == "lost":
        entry(LOST_TIME, LOST, row.get(LOST_REASON) or None)


# -- first responses -------------------------------------------------------------------------------


def _activity_list(doc: object) -> list | None:
    """The activities of an activities response (GET /v1/activities: data[] with deal_id, done, type), else None."""
    pages = doc if isinstance(doc, list) else [doc]
    if not pages or not all(isinstance(p, dict) and isinstance(p.get("data"), list) for p in pages):
        return None
    items = [i for p in pages for i in p["data"]]
    if items and all(isinstance(i, dict) and "object" not in i and "done" in i and "type" in i and "deal_id" in i for i in items):
        return items
    return None


def _activity(b: _Build, key: str, position: int, data: dict, deal: str | None, *, from_flow: bool) -> None:
    """A done activity of a response type is a candidate first response of its deal. A flow item is counted as the
    flow counts it (not_a_deal_change); an item of an activities file is counted here."""
    raw = json.dumps(data, ensure_ascii=False)
    deal = str(data.get("deal_id") or "").strip() or deal
    if not data.get("done") or str(data.get("type") or "").strip().lower() not in b.options.response_types:
        if not from_flow:
            b.out.ignore(key, "open_activity" if not data.get("done") else "other_activity_type")
        return
    stamp = data.get("marked_as_done_time") or data.get("add_time")
    at, text = _instant(stamp)
    if at is None:
        if not from_flow:
            column = "marked_as_done_time" if data.get("marked_as_done_time") else "add_time"
            b.out.reject(key, position, text, f"activity {data.get('id')} of deal {deal}: "
                         + _TIME_DETAIL[text].format(col=column, value=stamp), raw, deal or None)
        return
    utc = text if _OFFSET.fullmatch(text) else text.replace(" ", "T", 1) + "Z"
    if deal and (deal not in b.responses or at < b.responses[deal][0]):
        b.responses[deal] = (at, utc, str(data.get("id") or "").strip())
    if not from_flow:
        b.activities.append((deal, key, position, raw))


def _first_responses(b: _Build) -> None:
    """Write each deal's first response on its events; count the activities file's done activities."""
    name = b.config.first_response_column or "first_response_at"
    deals = {e["lead_id"] for e in b.events}
    for deal, key, _, _ in b.activities:
        b.out.ignore(key, "activity" if deal in deals else "unmatched_activity")
    # the activity each deal takes its first response from, for the next pull (Translation.ties): should it move to
    # another deal, or stop being done, the deal it leaves is fetched again with it (etl/pull/pipedrive.py)
    b.out.ties.update((f"activity:{act}", deal) for deal, (_, _, act) in b.responses.items() if deal in deals and act)
    if not any(d in deals for d in b.responses):
        return
    if name not in b.event_attrs:
        b.event_attrs.append(name)
    for event in b.events:
        found = b.responses.get(event["lead_id"])
        event[name] = found[1] if found else None
