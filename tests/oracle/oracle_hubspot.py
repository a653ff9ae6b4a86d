"""The HubSpot adapter's translation as it was written row by row in Python: the reference the
DuckDB translation (etl/sources/hubspot.py) must equal, row for row (tests/etl/sources/test_hubspot_sql.py).

Kept as it was when the adapter moved to DuckDB, trimmed to the translation. Imported from the
adapter: the options, the constants (property names, built-in labels), the file checks and the
per-value helpers the adapter still runs in Python (timestamps, stage labels, money values, join
notes). What turns rows into events, rejections and counts is here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.base import (
    MONEY_ATTRIBUTES,
    EventCollector,
    SourceTable,
    Translation,
    ValueChange,
    add_money_columns,
    file_key,
    read_json,
    read_table,
    value_history,
)
from funnelboard.etl.sources.hubspot import (
    _API,
    _SECTION,
    _TIME_DETAIL,
    ASSOCIATION_COLUMNS,
    BUYING_ROLE_PROPERTY,
    CONTACT_PROPERTIES,
    DEAL_PROPERTIES,
    HISTORY_ID_COLUMNS,
    KIND_OF_ID_COLUMN,
    KIND_OF_TYPE,
    MONEY_PROPERTIES,
    REASON_LABELS,
    TITLE_PROPERTY,
    TYPE_COLUMNS,
    WIDE_ID_COLUMNS,
    Options,
    _add_pipelines,
    _association_items,
    _direction,
    _entered_column,
    _id_column,
    _instant,
    _is_json,
    _join_notes,
    _money_value,
    _object_kind,
    _objects_of,
    _pair_columns,
    _pipeline_list,
    _qualified,
    _role,
    _stage_label,
    _table_kind,
    parse_options,
)
from funnelboard.etl.sources.roles import role_of_title

_EPOCH_MS = re.compile(r"-?\d{1,15}")
_ENTERED_API = re.compile(r"hs_(?:v2_)?date_entered_(.+)", re.IGNORECASE)
_ENTERED_UI = re.compile(r'date entered "(.*)"', re.IGNORECASE)
_WITH_PIPELINE = re.compile(r"(.*\S)\s+\(([^()]*)\)")
_NOT_STAGE_IDS = {"current_stage"}  # hs_v2_date_entered_current_stage is not a stage


@dataclass
class _Entry:
    """One value a property took: a candidate stage entry, reason or attribute value."""

    obj: str
    prop: str
    value: str
    at: datetime
    text: str  # the instant as entered_at text
    file: str
    line: int
    raw: str
    order: int


@dataclass
class _Build(EventCollector):
    """What translate() collects before writing the events table."""

    config: FunnelConfig
    options: Options
    out: Translation
    outcome_labels: set[str]
    stage_ids: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (label, pipeline label)
    pipeline_labels: dict[str, str] = field(default_factory=dict)  # pipeline id -> label
    stages: list[_Entry] = field(default_factory=list)
    reasons: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    attributes: dict[str, dict[str, _Entry]] = field(default_factory=lambda: defaultdict(dict))  # obj -> attr -> entry
    current: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # obj -> attr -> current value
    events: list[dict] = field(default_factory=list)
    event_attrs: list[str] = field(default_factory=list)
    unknown_ids: int = 0  # dealstage ids nothing names
    has_definition: bool = False
    order: int = 0
    contacts_of: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # deal -> associated contacts, in order
    associations_given: bool = False
    first_at: dict[str, datetime] = field(default_factory=dict)  # record -> its first stage entry
    joined: dict[str, str] = field(default_factory=dict)  # deal -> the contact whose journey it continues
    buyer: dict[str, dict[str, _Entry]] = field(default_factory=lambda: defaultdict(dict))  # record -> buyer property -> value
    money: dict[str, list[tuple[_Entry, bool]]] = field(default_factory=lambda: defaultdict(list))  # deal -> (value, from a table)
    money_now: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # deal -> money property -> current

    def next_order(self) -> int:
        self.order += 1
        return self.order

    def stage_event(self, obj: str, label: str, at: datetime, text: str, reason: str | None, attrs: dict[str, str | None],
                    file: str, line: int, raw: str) -> None:
        """One stage entry of a record (`deal:ID` or `contact:ID`), remembering when its journey starts."""
        if obj not in self.first_at or at < self.first_at[obj]:
            self.first_at[obj] = at
        self.event(obj, label, text, reason, attrs, file, line, raw)

    def associate(self, deal: str, contact: str) -> None:
        """Record that a deal is associated with a contact (raw ids); the first association listed comes first."""
        deal, contact = deal.strip(), contact.strip()
        if deal and contact and f"contact:{contact}" not in self.contacts_of[f"deal:{deal}"]:
            self.contacts_of[f"deal:{deal}"].append(f"contact:{contact}")


def translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation:
    """Turn HubSpot exports (property history CSV or JSON, wide deal export, pipelines, associations) into events."""
    opts = parse_options(options, config)
    out = Translation()
    label_map = config.label_map()
    b = _Build(config, opts, out, {k for k, v in label_map.items() if v in config.outcomes})
    for path in opts.pipelines:
        doc = read_json(path, f"pipeline definition ({_SECTION} pipelines)", _API)
        b.has_definition = True
        if not _add_pipelines(b, doc):
            raise UserError(f"{_SECTION} pipelines file '{path}' is not a HubSpot pipeline definition: expected "
                            "{\"results\": [{\"id\", \"label\", \"stages\": [...]}]} as GET /crm/v3/pipelines/deals returns it.")
    documents, tables = _read_inputs(b, paths)
    b.stage_ids.update({k: (v, None) for k, v in opts.stage_labels.items()})
    for path, objects in documents:
        for position, obj in enumerate(objects, 1):
            _json_object(b, path, position, obj)
    for path, table, kind in tables:
        if kind == "history":
            _history_table(b, path, table)
        elif kind == "associations":
            _association_table(b, path, table)
        else:
            _wide_table(b, path, table)
    _history_events(b)
    _join_journeys(b)
    _buyer_attributes(b)

    if documents:
        out.notes.append("In a HubSpot JSON payload a record's line is the position of its deal or contact in the file "
                         "(1 = the first object), not a line of text.")
    if any(kind == "wide" for _, _, kind in tables):
        out.notes.append("HubSpot's wide deal export keeps one 'Date entered' per stage: when a deal entered a stage more "
                         "than once only one of those entries is in it, so re-entries and loops are missing; "
                         "'Date exited' columns are not read.")
    if b.unknown_ids and not b.has_definition:
        out.notes.append("No pipeline definition was given, so only the default pipeline's stage ids have labels: give the "
                         f"pipelines JSON (GET /crm/v3/pipelines/deals) with the export, or map ids under {_SECTION} stage_labels.")
    out.events = b.events_table()
    return out


def _read_inputs(b: _Build, paths: list[Path]) -> tuple[list[tuple[Path, list[dict]]], list[tuple[Path, SourceTable, str]]]:
    """Read every file and tell its kind: pipelines and associations are taken in at once; objects and tables are returned."""
    documents: list[tuple[Path, list[dict]]] = []
    tables: list[tuple[Path, SourceTable, str]] = []
    for path in paths:
        if not _is_json(path):
            table = read_table(path, b.config, b.out, what="HubSpot export")
            tables.append((path, table, _table_kind(table)))
            continue
        doc = read_json(path, "HubSpot export", _API)
        if _add_pipelines(b, doc):
            b.has_definition = True
            stages = sum(len(p.get("stages") or []) for p in _pipeline_list(doc))
            b.out.source_rows[file_key(path)] = stages
            if stages:
                b.out.ignore(path, "pipeline_stage", stages)
        elif (links := _association_items(doc)) is not None:
            _add_associations(b, path, links)
        else:
            objects = _objects_of(path, doc)
            b.out.source_rows[file_key(path)] = len(objects)
            documents.append((path, objects))
    return documents, tables


# -- property history (long CSV and JSON) ----------------------------------------------------------


def _history_table(b: _Build, path: Path, table: SourceTable) -> None:
    """A long property-history export: one row per value a property took."""
    found = table.require(["property", "value", "timestamp"], "HubSpot property history")
    id_col = _id_column(table, b.options, HISTORY_ID_COLUMNS, "HubSpot property history")
    kind_of = _history_kinds(table, id_col, found["property"])
    key = file_key(path)
    tz = ZoneInfo(b.config.timezone)
    for line, values, raw in table.rows:
        prop = values[found["property"]].strip()
        role = _role(b, prop)
        if role is None and prop not in b.options.buyer_properties:
            b.out.ignore(key, "other_property")
            continue
        obj = values[id_col].strip()
        if not obj:
            b.out.reject(key, line, "missing_lead_id", f"{id_col} is empty", raw)
            continue
        stamp = values[found["timestamp"]]
        at, text = _instant(stamp, tz)
        first, *others = kind_of(values, prop, obj)
        if at is None:
            b.out.reject(key, line, text, _TIME_DETAIL[text].format(col=found["timestamp"], value=stamp.strip()), raw,
                         f"{first}:{obj}")
            continue
        entry = _Entry(f"{first}:{obj}", prop, values[found["value"]].strip(), at, text, key, line, raw, b.next_order())
        if role is None:  # a buyer property (first response, job title, buying role) of a contact
            if _add_buyer_entry(b, entry):
                b.out.ignore(key, "attribute_value")
            continue
        _add_entry(b, role, entry)
        for kind in others:  # a reason or attribute of an id a deal and a contact share in this file: both get it
            other = dataclasses.replace(entry, obj=f"{kind}:{obj}")
            if role == "reason":
                b.reasons[other.obj].append(other)
            elif role == "money":
                b.money[other.obj].append((other, True))
            elif role.startswith("attr:"):
                _add_entry_attribute(b, role, other)


def _history_kinds(table: SourceTable, id_col: str, prop_col: str):
    """A function telling the object(s) of a history row: deal or contact.

    In order: an objectType column; an id column named for its object (dealId, contactId, vid); a
    property only deals or only contacts have (dealstage, lifecyclestage, ...); else the objects the
    id's other rows show (a record whose object nothing tells is a deal).
    """
    type_col = next((h for h in (table.column(c) for c in TYPE_COLUMNS) if h), None)
    fixed = KIND_OF_ID_COLUMN.get(id_col.strip().lower())
    seen: dict[str, set[str]] = defaultdict(set)
    for _, values, _ in table.rows:
        prop = values[prop_col].strip()
        kind = "deal" if prop in DEAL_PROPERTIES else "contact" if prop in CONTACT_PROPERTIES else None
        if kind:
            seen[values[id_col].strip()].add(kind)

    def kind_of(values: dict[str, str], prop: str, obj: str) -> list[str]:
        if type_col and (kind := KIND_OF_TYPE.get(values[type_col].strip().lower())):
            return [kind]
        if fixed:
            return [fixed]
        if prop in DEAL_PROPERTIES or prop in CONTACT_PROPERTIES:
            return ["deal" if prop in DEAL_PROPERTIES else "contact"]
        return sorted(seen.get(obj) or {"deal"})

    return kind_of


def _add_entry(b: _Build, role: str, entry: _Entry) -> None:
    if role == "stage":
        if entry.value:
            b.stages.append(entry)
        else:  # HubSpot clears lifecyclestage before setting an earlier one: a cleared value is no stage
            b.out.ignore(entry.file, "cleared_value")
    elif role == "reason":
        b.reasons[entry.obj].append(entry)
        b.out.ignore(entry.file, "reason_value")
    elif role == "money":
        b.money[entry.obj].append((entry, True))  # counted once it is known whether it gives a row of its own
    else:
        _add_entry_attribute(b, role, entry)
        b.out.ignore(entry.file, "attribute_value")


def _json_object(b: _Build, path: Path, position: int, obj: dict) -> None:
    """One deal or contact of an API payload: its stage, reason and attribute histories."""
    key = file_key(path)
    raw_obj = json.dumps(obj, ensure_ascii=False)
    if obj.get("archived") is True or obj.get("isDeleted") is True:
        b.out.ignore(key, "archived")
        return
    raw_id = next((str(obj[k]).strip() for k in ("id", "dealId", "vid", "objectId") if obj.get(k) not in (None, "")), "")
    if not raw_id:
        b.out.reject(key, position, "missing_lead_id", "the object has no id, dealId or vid", raw_obj)
        return
    tz = ZoneInfo(b.config.timezone)
    history = obj.get("propertiesWithHistory") if isinstance(obj.get("propertiesWithHistory"), dict) else {}
    props = obj.get("properties") if isinstance(obj.get("properties"), dict) else {}
    kind = _object_kind(obj, history, props)
    oid = f"{kind}:{raw_id}"
    _object_associations(b, kind, raw_id, obj.get("associations"))
    records_before = len(b.stages), len(b.out.rejected)
    _object_buyer_properties(b, oid, history, props, key, position)
    for prop in dict.fromkeys([*history, *props]):
        role = _role(b, prop)
        if role is None:
            continue
        versions = history.get(prop)
        current = props.get(prop)
        if versions is None and isinstance(current, dict):
            versions = current.get("versions")
            current = current.get("value")
        if role.startswith("attr:") and current not in (None, ""):
            b.current[oid][role.split(":", 1)[1]] = str(current)
        if role == "money" and current not in (None, ""):
            b.money_now[oid][prop] = str(current)
        for i, version in enumerate(versions or [], 1):
            if not isinstance(version, dict):
                continue
            raw = json.dumps({"id": raw_id, "property": prop, **version}, ensure_ascii=False)
            stamp = version.get("timestamp")
            at, text = _instant(stamp, tz)
            if at is None:
                b.out.reject(key, position, text,
                             f"{prop} history entry {i} of {kind} {raw_id}: " + _TIME_DETAIL[text].format(col="timestamp", value=stamp), raw,
                             oid)
                continue
            value = "" if version.get("value") is None else str(version["value"]).strip()
            entry = _Entry(oid, prop, value, at, text, key, position, raw, b.next_order())
            if role == "stage":
                if value:
                    b.stages.append(entry)
            elif role == "reason":
                b.reasons[oid].append(entry)
            elif role == "money":
                b.money[oid].append((entry, False))
            else:
                _add_entry_attribute(b, role, entry)
    if (len(b.stages), len(b.out.rejected)) == records_before:
        b.out.ignore(key, "no_stage_history")


def _object_associations(b: _Build, kind: str, raw_id: str, associations: object) -> None:
    """The associations an API object carries: a v3 deal's contacts (or a contact's deals), a v1 deal's associatedVids."""
    if not isinstance(associations, dict):
        return
    wanted = ("contacts", "contact", "0-1") if kind == "deal" else ("deals", "deal", "0-3")
    for name, value in associations.items():
        if str(name).lower() in wanted and isinstance(value, dict) and isinstance(value.get("results"), list):
            b.associations_given = True
            for to in value["results"]:
                other = str(to.get("id", "") if isinstance(to, dict) else to)
                if kind == "deal":
                    b.associate(raw_id, other)
                else:
                    b.associate(other, raw_id)
    if kind == "deal" and isinstance(associations.get("associatedVids"), list):
        b.associations_given = True
        for vid in associations["associatedVids"]:
            b.associate(raw_id, str(vid))


def _add_entry_attribute(b: _Build, role: str, entry: _Entry) -> None:
    name = role.split(":", 1)[1]
    latest = b.attributes[entry.obj].get(name)
    if entry.value and (latest is None or (entry.at, entry.order) >= (latest.at, latest.order)):
        b.attributes[entry.obj][name] = entry


def _history_events(b: _Build) -> None:
    """Turn the collected stage entries into events, with each exit's reason and each object's attributes."""
    by_obj: dict[str, list[_Entry]] = defaultdict(list)
    for e in b.stages:
        by_obj[e.obj].append(e)
    for obj, entries in by_obj.items():
        attrs = {k: v for k, v in _object_attributes(b, obj).items() if k not in MONEY_ATTRIBUTES}
        labelled: list[tuple[_Entry, str]] = []
        for e in entries:
            found = _stage_label(b, e.prop, e.value)
            if found is None:
                b.unknown_ids += e.prop == "dealstage"
                where = "the pipeline definition" if e.prop == "dealstage" else f"{_SECTION} stage_labels"
                b.out.reject(e.file, e.line, "unknown_stage_id",
                             f'{e.prop} "{e.value}" of {obj} is not a stage id in {where}: add it there, or map the id under [labels]',
                             e.raw, obj)
                continue
            labelled.append((e, _qualified(b, *found)))
        labelled.sort(key=lambda pair: (pair[0].at, pair[0].order))
        reasons = sorted(b.reasons.get(obj, []), key=lambda r: (r.at, r.order))
        stages: list[tuple[datetime, dict]] = []
        for i, (e, label) in enumerate(labelled):
            reason = None
            if b.is_outcome(label):
                end = labelled[i + 1][0].at if i + 1 < len(labelled) else None
                # The reason is the value the reason property held while the record stayed in this exit.
                held = [r for r in reasons if end is None or r.at < end]
                reason = (held[-1].value or None) if held else None
            b.stage_event(obj, label, e.at, e.text, reason, attrs, e.file, e.line, e.raw)
            stages.append((e.at, b.events[-1]))
        _money_history(b, obj, stages)
    for obj in sorted(set(b.money) - set(by_obj)):  # records with money history but no stage entry: nothing to carry it
        _money_history(b, obj, [])


def _money_history(b: _Build, obj: str, stages: list[tuple[datetime, dict]]) -> None:
    """A deal's money values on its stage events, and a row repeating its stage for each change between moves.

    A current value with no history (a v3 property not asked for with history) holds from the deal's first move. A
    long history row that gives no row of its own (folded into a move, or changing nothing) is counted as ignored."""
    changes = [ValueChange(e.at, e.text, {MONEY_PROPERTIES[e.prop]: _money_value(b, e.prop, e.value)}, e.file, e.line, e.raw)
               for e, _ in b.money.get(obj, [])]
    from_table = {(e.file, e.line) for e, table in b.money.get(obj, []) if table}
    have = {e.prop for e, _ in b.money.get(obj, [])}
    now = {MONEY_PROPERTIES[p]: _money_value(b, p, v) for p, v in b.money_now.get(obj, {}).items() if p not in have}
    if now and stages:
        changes.append(ValueChange(stages[0][0], "", now, "", 0))
    made, unused = value_history(stages, changes)
    b.events.extend(made)
    add_money_columns(b.event_attrs, [e for _, e in stages])
    for change in unused:
        if (change.file, change.line) in from_table:
            b.out.ignore(change.file, "attribute_value")


def _object_attributes(b: _Build, obj: str) -> dict[str, str | None]:
    attrs: dict[str, str | None] = {}
    for name in b.options.attributes:
        value = b.current.get(obj, {}).get(name)
        if value is None and name in b.attributes.get(obj, {}):
            value = b.attributes[obj][name].value
        if name == "pipeline" and value in b.pipeline_labels:
            value = b.pipeline_labels[value]
        attrs[name] = value
    return attrs


# -- the wide deal export ----------------------------------------------------------------------------


def _wide_table(b: _Build, path: Path, table: SourceTable) -> None:
    """One row per deal; each non-empty 'Date entered' cell is one stage entry."""
    what = "HubSpot deal export"
    id_col = _id_column(table, b.options, WIDE_ID_COLUMNS, what)
    key = file_key(path)
    tz = ZoneInfo(b.config.timezone)
    stage_columns: list[tuple[str, tuple[str, str | None] | None, str]] = []  # (header, (label, pipeline) | None, stage id)
    for header in table.header:
        kind = _entered_column(header)
        if kind is None:
            continue
        if kind[0] == "label":
            m = _WITH_PIPELINE.fullmatch(kind[1].strip())
            stage_columns.append((header, (m.group(1), m.group(2)) if m else (kind[1].strip(), None), ""))
        else:
            stage_columns.append((header, _stage_label(b, "dealstage", kind[1]), kind[1]))
    reason_cols = [h for prop in b.options.reason_properties
                   for h in (table.column(c) for c in (prop, *REASON_LABELS.get(prop, ()))) if h is not None]
    contacts_col = next((h for h in (table.column(c) for c in ASSOCIATION_COLUMNS) if h), None)
    b.associations_given |= contacts_col is not None
    attr_cols = {name: next((h for h in (table.column(c) for c in cands) if h is not None), None)
                 for name, cands in b.options.attributes.items()}
    for line, values, raw in table.rows:
        deal = values[id_col].strip()
        if not deal:
            b.out.reject(key, line, "missing_lead_id", f"{id_col} is empty", raw)
            continue
        for contact in re.split(r"[;,]", values[contacts_col]) if contacts_col else ():
            b.associate(deal, contact.strip())
        deal = f"deal:{deal}"
        reason = next((values[h].strip() for h in reason_cols if values[h].strip()), None)
        attrs = {name: (values[h].strip() or None) if h else None for name, h in attr_cols.items()}
        if attrs.get("pipeline") in b.pipeline_labels:
            attrs["pipeline"] = b.pipeline_labels[attrs["pipeline"]]
        gave = False
        for header, found, stage_id in stage_columns:
            cell = values[header].strip()
            if not cell:
                continue
            gave = True
            if found is None:
                b.unknown_ids += 1
                b.out.reject(key, line, "unknown_stage_id",
                             f'{header}: stage id "{stage_id}" is not in the pipeline definition: add it there, or map the id under [labels]',
                             raw, deal)
                continue
            at, text = _instant(cell, tz)
            if at is None:
                b.out.reject(key, line, text, _TIME_DETAIL[text].format(col=header, value=cell), raw, deal)
                continue
            label = _qualified(b, *found)
            b.stage_event(deal, label, at, text, reason if b.is_outcome(label) else None, attrs, key, line, raw)
        if not gave:
            b.out.ignore(key, "no_stage_dates")


# -- associations: one journey per buyer -------------------------------------------------------------


def _add_associations(b: _Build, path: Path, items: list[dict]) -> None:
    """A deal-contact associations file (POST /crm/v4/associations/deals/contacts/batch/read, or v3): each
    item is one record and its associated records; every item is counted as ignored (`association`)."""
    directions = {d for i in items for to in i["to"] if (d := _direction(to))}
    if not directions:
        raise UserError(
            f"HubSpot associations file '{path}' does not say whether it links deals to contacts or contacts to deals: "
            "expected association typeId 3 (deal to contact) or 4 (contact to deal), or type deal_to_contact, as "
            "POST /crm/v4/associations/deals/contacts/batch/read returns."
        )
    for item in items:
        start = str(item["from"].get("id", ""))
        for to in item["to"]:
            other = str(to.get("toObjectId", to.get("id", ""))) if isinstance(to, dict) else ""
            if (_direction(to) or next(iter(directions))) == "deal":
                b.associate(start, other)
            else:
                b.associate(other, start)
    b.associations_given = True
    b.out.source_rows[file_key(path)] = len(items)
    b.out.ignore(path, "association", len(items))


def _association_table(b: _Build, path: Path, table: SourceTable) -> None:
    """A CSV of deal-contact pairs (dealId, contactId): each row associates one deal with one contact, in row order."""
    deal_col, contact_col = _pair_columns(table)
    b.associations_given = True
    for line, values, raw in table.rows:
        deal, contact = values[deal_col].strip(), values[contact_col].strip()
        if not deal or not contact:
            b.out.reject(path, line, "missing_lead_id", f"{deal_col if not deal else contact_col} is empty", raw)
            continue
        b.associate(deal, contact)
        b.out.ignore(path, "association")


def _join_journeys(b: _Build) -> None:
    """Write each deal's stages under the contact it is associated with, so a buyer is one journey.

    A deal joins the first associated contact (in the order the export lists them) that has stage
    history in this load; a contact takes one deal, its earliest (by first stage entry); the other
    deals, and deals with no associated contact here, stay journeys of their own under `deal:ID`.
    """
    journeys = set(b.first_at)
    contacts = {j for j in journeys if j.startswith("contact:")}
    deals = sorted((j for j in journeys if j.startswith("deal:")), key=lambda d: (b.first_at[d], d))
    joined: dict[str, str] = {}
    taken: set[str] = set()
    several = busy = 0
    for deal in deals:
        listed = b.contacts_of.get(deal, [])
        several += len(listed) > 1
        found = [c for c in listed if c in contacts]
        if found and found[0] in taken:
            busy += 1
        elif found:
            joined[deal] = found[0]
            taken.add(found[0])
    b.joined = joined
    for event in b.events:
        event["lead_id"] = joined.get(event["lead_id"], event["lead_id"])
    if deals and (contacts or b.associations_given):
        _join_notes(b, len(deals), len(joined), several, busy)


# -- the buyer: first response, buyer role, decision makers ------------------------------------------


def _add_buyer_entry(b: _Build, entry: _Entry) -> bool:
    """Keep a record's latest value of a buyer property (a cleared value clears it); a first response that is not
    a time is rejected instead (False), naming the property and the record."""
    if entry.value and entry.prop in b.options.response_properties:
        at, text = _instant(entry.value, ZoneInfo(b.config.timezone))
        if at is None:
            b.out.reject(entry.file, entry.line, text,
                         f"{entry.prop} of {entry.obj}: " + _TIME_DETAIL[text].format(col=entry.prop, value=entry.value), entry.raw,
                         entry.obj)
            return False
    latest = b.buyer[entry.obj].get(entry.prop)
    if latest is None or (entry.at, entry.order) >= (latest.at, latest.order):
        b.buyer[entry.obj][entry.prop] = entry
    return True


def _object_buyer_properties(b: _Build, oid: str, history: dict, props: dict, key: str, position: int) -> None:
    """An API object's buyer properties: the current `properties` value, else the latest of its history."""
    epoch = datetime.fromtimestamp(0, tz=timezone.utc)
    for prop in b.options.buyer_properties:
        current = props.get(prop)
        if isinstance(current, dict):  # legacy v1: {"value": ..., "versions": [...]}
            current = current.get("value")
        value = None if current is None else str(current).strip()
        if value is None:
            stamped = [(_instant(v.get("timestamp"), timezone.utc)[0], str(v.get("value") or "").strip())
                       for v in history.get(prop) or [] if isinstance(v, dict)]
            stamped = [(at or epoch, v) for at, v in stamped]
            value = max(stamped)[1] if stamped else None
        if value is not None:
            raw = json.dumps({"id": oid.split(":", 1)[1], "property": prop, "value": value}, ensure_ascii=False)
            _add_buyer_entry(b, _Entry(oid, prop, value, epoch, "", key, position, raw, b.next_order()))


def _buyer_attributes(b: _Build) -> None:
    """Give every event of a journey its buyer's first response and role, and its contacts' decision makers.

    A contact's journey takes them from the contact itself; a deal's journey from its first associated
    contact (in the order the associations list them) that has any of these properties in the load.
    decision_makers counts the journey's contacts (the contact, and the contacts of the deal joined to
    it, or the deal's contacts) whose `hs_buying_role` holds a `decision_roles` value; it is written
    only when one of them has a buying role at all.
    """
    if not b.buyer:
        return
    tz = ZoneInfo(b.config.timezone)
    deals_of: dict[str, list[str]] = defaultdict(list)
    for deal, contact in b.joined.items():
        deals_of[contact].append(deal)
    response_name = b.config.first_response_column or "first_response_at"
    deciding = {r.casefold() for r in b.options.decision_roles}
    values: dict[str, dict[str, str]] = {}
    for journey in dict.fromkeys(e["lead_id"] for e in b.events):
        if journey.startswith("contact:"):
            main = journey if journey in b.buyer else None
            members = [journey, *(c for d in deals_of[journey] for c in b.contacts_of.get(d, []))]
        else:
            members = b.contacts_of.get(journey, [])
            main = next((c for c in members if c in b.buyer), None)
        found: dict[str, str] = {}
        props = b.buyer.get(main, {}) if main else {}
        for prop in b.options.response_properties:
            entry = props.get(prop)
            if entry is not None and entry.value:
                found[response_name] = _instant(entry.value, tz)[1]  # checked when read
                break
        title = props.get(TITLE_PROPERTY)
        role = role_of_title(title.value) if title else None
        if role:
            found["buyer_role"] = role
        roles = [b.buyer[c][BUYING_ROLE_PROPERTY].value for c in dict.fromkeys(members)
                 if c in b.buyer and BUYING_ROLE_PROPERTY in b.buyer[c] and b.buyer[c][BUYING_ROLE_PROPERTY].value]
        if roles:
            found["decision_makers"] = str(sum(bool({v.strip().casefold() for v in r.split(";")} & deciding) for r in roles))
        values[journey] = found
    names = [n for n in (response_name, "buyer_role", "decision_makers") if any(n in v for v in values.values())]
    for name in names:
        if name not in b.event_attrs:
            b.event_attrs.append(name)
    for event in b.events:
        for name in names:
            event[name] = values[event["lead_id"]].get(name)
