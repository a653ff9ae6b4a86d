"""HubSpot exports -> canonical events: deal-stage, lifecycle and lead-status history, or the wide deal export.

Reads, in any mix and order (each file's kind is told by its content, not its name):

* Property history in long form (CSV, TSV or Parquet): one row per value a property took,
  `objectId, property, value, timestamp[, sourceType, sourceId, ...]`. Rows of the stage
  properties (`dealstage`, `lifecyclestage`, `hs_lead_status`) are stage entries; rows of the
  reason properties (`closed_lost_reason`, `hs_lead_disqualification_reason`) give the reason of
  an exit; rows of attribute properties (`hubspot_owner_id`, `amount`, ...) give attributes.
* The API's JSON: v3 objects with `propertiesWithHistory` (ISO timestamps), as one page, a list
  of pages or a list of objects; or the legacy v1 deals / contacts payloads whose
  `properties.<name>.versions` carry epoch milliseconds.
* The wide deal export: one row per deal with `hs_v2_date_entered_<stageId>` columns (property
  names) or their UI labels `Date entered "<Stage> (<Pipeline>)"`; one event per non-empty cell.
* Pipeline definitions as the API returns them (GET /crm/v3/pipelines/deals, or the legacy
  crm-pipelines/v1 shape): the stage id -> label map. Also `[source.hubspot] pipelines = FILE`.

* Deal-contact associations: a v4 (or v3) associations batch read, the `associations` of v3 objects
  and legacy v1 deals, or the deal export's `Associated Contact IDs` column.
* Contact properties of the buyer (in JSON or a long history): `hs_first_outreach_date` (else
  `hs_sa_first_engagement_date`) as the first response, `jobtitle` as the buyer role (by keywords:
  etl/sources/roles.py) and `hs_buying_role` for the number of decision makers of a journey's contacts.

Deal stages are ids (`appointmentscheduled`, `152118301`); the adapter writes their labels
("Appointment Scheduled"), and `[labels]` maps labels to canonical stages. Lifecycle stages and
lead statuses are written with HubSpot's display labels ("Marketing Qualified Lead", "Unqualified").

Deals and contacts are different records whose numeric ids may be equal, so every journey id names
its object (`deal:9001`, `contact:501`). A deal associated with a contact continues that contact's
journey (one journey per buyer, as Salesforce's converted lead continues into its opportunity).

How it runs: the translation is SQL in an in-memory DuckDB. CSV/TSV exports are read into it by
etl/sources/duck_rows.py; the JSON documents are parsed by Python's json (their errors are its
sentences) and flattened into one row per history version. From there everything is set-wise:
timestamps (`hs_instant`; the few values SQL does not take exactly, such as non-ASCII digits or
epoch milliseconds beyond 2106, go through `_instant`), ids and objects, stage labels (looked up
per distinct value), each exit's reason (an ASOF join), the latest attributes, the money history
(window functions), the journeys of buyers (joins), the events in the order the adapter always
wrote them. Python keeps what is small or rare: options, pipelines, per-value lookups, the buyer
properties of contacts.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from funnelboard.core.config import FunnelConfig, normalise_label
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.base import (
    ISO,
    MONEY_ATTRIBUTES,
    SourceTable,
    Translation,
    check_option_keys,
    events_table,
    file_key,
    option_attributes,
    option_files,
    option_table,
    option_text,
    plain_amount,
    read_json,
)
from funnelboard.etl.sources.duck_rows import RowTable, connect, read_rows
from funnelboard.etl.sources.roles import role_of_title

NAME = "hubspot"
_SECTION = f"[source.{NAME}]"
_API = "the HubSpot API"  # what writes the JSON documents read here
OPTION_KEYS = ("pipelines", "stage_labels", "properties", "reason_properties", "attributes", "id_column",
               "first_response_properties", "decision_roles")
# Contact properties of a journey's buyer: when a sales rep first reached out (any channel, ever; else the current
# owner's first engagement, which HubSpot resets when the owner changes), the job title, and the buying roles
# (a multiple checkbox: values joined by ";") of which these mark a decision maker.
DEFAULT_RESPONSE_PROPERTIES = ("hs_first_outreach_date", "hs_sa_first_engagement_date")
TITLE_PROPERTY, BUYING_ROLE_PROPERTY = "jobtitle", "hs_buying_role"
DEFAULT_DECISION_ROLES = ("DECISION_MAKER", "BUDGET_HOLDER")
DEFAULT_PROPERTIES = ("dealstage", "lifecyclestage", "hs_lead_status")
DEFAULT_REASONS = ("closed_lost_reason", "hs_lead_disqualification_reason")
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "owner": ("hubspot_owner_id", "Deal owner", "Contact owner"),
    "amount": ("amount", "Amount"),
    "deal_type": ("dealtype", "Deal Type"),
    "pipeline": ("pipeline", "Pipeline"),
    "channel": ("hs_analytics_source", "Original Source", "Original Traffic Source"),
}
# UI export column labels of the reason properties.
REASON_LABELS = {"closed_lost_reason": ("Closed Lost Reason",)}
HISTORY_ID_COLUMNS = ("objectId", "object_id", "hs_object_id", "dealId", "deal_id", "contactId", "contact_id", "vid")
WIDE_ID_COLUMNS = ("Record ID", "hs_object_id", "Deal ID", "dealId", "objectId", "id")

# Deals and contacts are different records whose numeric ids may be equal: every record id is
# written with its object, `deal:9001` or `contact:501`. What tells a record's object:
KIND_OF_ID_COLUMN = {"dealid": "deal", "deal_id": "deal", "contactid": "contact", "contact_id": "contact", "vid": "contact"}
TYPE_COLUMNS = ("objectType", "object_type", "objectTypeId", "object_type_id")
KIND_OF_TYPE = {"deal": "deal", "deals": "deal", "0-3": "deal", "contact": "contact", "contacts": "contact", "0-1": "contact"}
# Deal properties whose history is the deal's money history, and the attribute each is written as.
MONEY_PROPERTIES = {"amount": "amount", "closedate": "close_date", "deal_currency_code": "currency",
                    "hs_manual_forecast_category": "forecast_category", "hs_forecast_category": "forecast_category"}
DEAL_PROPERTIES = {"dealstage", "dealname", "pipeline", "closed_lost_reason", "closed_won_reason", "closedate", "amount", "dealtype",
                   *MONEY_PROPERTIES}
CONTACT_PROPERTIES = {"lifecyclestage", "hs_lead_status", "hs_lead_disqualification_reason", "email", "firstname", "lastname"}
# Where deal-contact associations are read: a deal export's column of contact ids (";"-separated),
# and the association type ids/names of the v4 and v3 associations APIs.
ASSOCIATION_COLUMNS = ("Associated Contact IDs", "Associated Contact ID", "associated_contact_ids")
ASSOCIATION_DEAL_COLUMNS = ("dealId", "deal_id", "Deal ID")  # a CSV of pairs: one deal and one contact per row
ASSOCIATION_CONTACT_COLUMNS = ("contactId", "contact_id", "Contact ID", "vid")
DEAL_TO_CONTACT = {3, "deal_to_contact"}
CONTACT_TO_DEAL = {4, "contact_to_deal"}

# HubSpot's built-in internal values and their display labels.
DEFAULT_PIPELINE = {
    "appointmentscheduled": "Appointment Scheduled",
    "qualifiedtobuy": "Qualified To Buy",
    "presentationscheduled": "Presentation Scheduled",
    "decisionmakerboughtin": "Decision Maker Bought-In",
    "contractsent": "Contract Sent",
    "closedwon": "Closed Won",
    "closedlost": "Closed Lost",
}
LIFECYCLE_STAGES = {
    "subscriber": "Subscriber",
    "lead": "Lead",
    "marketingqualifiedlead": "Marketing Qualified Lead",
    "salesqualifiedlead": "Sales Qualified Lead",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "evangelist": "Evangelist",
    "other": "Other",
}
LEAD_STATUSES = {
    "NEW": "New",
    "OPEN": "Open",
    "IN_PROGRESS": "In Progress",
    "OPEN_DEAL": "Open Deal",
    "UNQUALIFIED": "Unqualified",
    "ATTEMPTED_TO_CONTACT": "Attempted to Contact",
    "CONNECTED": "Connected",
    "BAD_TIMING": "Bad Timing",
}

_EPOCH_MS = re.compile(r"-?\d{1,15}")
_ENTERED_API = re.compile(r"hs_(?:v2_)?date_entered_(.+)", re.IGNORECASE)
_ENTERED_UI = re.compile(r'date entered "(.*)"', re.IGNORECASE)
_WITH_PIPELINE = re.compile(r"(.*\S)\s+\(([^()]*)\)")
_NOT_STAGE_IDS = {"current_stage"}  # hs_v2_date_entered_current_stage is not a stage


@dataclass(frozen=True)
class Options:
    """`[source.hubspot]` of funnel.toml, checked."""

    pipelines: tuple[Path, ...] = ()
    stage_labels: dict[str, str] = field(default_factory=dict)
    properties: tuple[str, ...] = DEFAULT_PROPERTIES
    reason_properties: tuple[str, ...] = DEFAULT_REASONS
    attributes: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))
    id_column: str | None = None
    response_properties: tuple[str, ...] = DEFAULT_RESPONSE_PROPERTIES
    decision_roles: tuple[str, ...] = DEFAULT_DECISION_ROLES

    @property
    def buyer_properties(self) -> set[str]:
        return {*self.response_properties, TITLE_PROPERTY, BUYING_ROLE_PROPERTY}



# -- the translation's state ---------------------------------------------------------------------
#
# An entry's order is (fseq, seq): fseq numbers the files in the order they are translated (the JSON
# documents first, then the tables, each in command order), seq the entry within its file (a table's
# line, a running number in a JSON document). The latest of several values is the one with the
# greatest (instant, order).

_MAX = 9223372036854775807  # BIGINT's largest: "no end" for a record's last stage
_HOUR_US = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SAFE_EPOCH_MS = 4_294_967_296_000  # below this |value|, ms / 1000 as a float gives the exact instant (before 2106)
# ISO-8601 as HubSpot and most exports write it: a date, then optionally a time to the minute, second or millisecond and Z.
_COMMON_ISO = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{3})?)?Z?)?"


@dataclass
class _Build:
    """What translate() collects: Python-side facts, and the DuckDB connection holding the rows."""

    config: FunnelConfig
    options: Options
    out: Translation
    con: duckdb.DuckDBPyConnection
    outcome_labels: set[str]
    stage_ids: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> (label, pipeline label)
    pipeline_labels: dict[str, str] = field(default_factory=dict)  # pipeline id -> label
    unknown_ids: int = 0  # dealstage ids nothing names
    has_definition: bool = False
    associations_given: bool = False
    associations: list[tuple] = field(default_factory=list)  # (deal, contact, phase, file, position, index)
    versions: list[tuple] = field(default_factory=list)  # one row per JSON history version (_VERSION_COLUMNS)
    buyer_rows: list[tuple] = field(default_factory=list)  # a JSON object's buyer property values (_ENTRY_COLUMNS)
    lazy_raw: dict[tuple[int, int], tuple[str, str, dict]] = field(default_factory=dict)  # (fseq, seq) -> raw's parts
    json_objects: list[tuple[int, int]] = field(default_factory=list)  # (fseq, position) of objects read
    files: dict[int, str] = field(default_factory=dict)  # fseq -> file key
    current: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # obj -> attr -> current value
    money_now: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # deal -> money property -> current
    wide_tables: int = 0
    wide: list[tuple] = field(default_factory=list)  # (fseq, file key, rows table, label per column, outcome per column)
    roles: dict[str, str | None] = field(default_factory=dict)

    @property
    def tz(self) -> str:
        return self.config.timezone

    def role(self, prop: str) -> str | None:
        if prop not in self.roles:
            self.roles[prop] = _role(self, prop) or ("buyer" if prop in self.options.buyer_properties else None)
        return self.roles[prop]

    def is_outcome(self, label: str) -> bool:
        return normalise_label(label) in self.outcome_labels

    def sql(self, query: str, params: dict | None = None) -> list[tuple]:
        return self.con.execute(query, params or {}).fetchall()

    def register(self, name: str, columns: dict[str, pa.Array]) -> None:
        """Copy Python rows into a DuckDB table `name` (replacing it)."""
        self.con.register("_incoming", pa.table(columns))
        self.con.execute(f'create or replace temp table "{name}" as select * from _incoming')
        self.con.unregister("_incoming")

    def ignore(self, reason: str, query: str, params: dict | None = None) -> None:
        """Count as ignored under `reason` the rows a query counts per file: (file key or fseq, n)."""
        for key, n in self.sql(query, params):
            if n:
                self.out.ignore(self.files[key] if isinstance(key, int) else key, reason, n)


# Columns of `entries`: one value a property took, with a valid instant. role: stage, reason, money,
# attr:NAME or buyer; from_table: read from a table (else a JSON document).
_ENTRY_COLUMNS = ("fseq", "seq", "line", "obj", "prop", "role", "value", "at_us", "txt", "from_table")
_ENTRY_TYPES = ("integer", "bigint", "bigint", "varchar", "varchar", "varchar", "varchar", "bigint", "varchar", "boolean")
# Columns of a JSON history version before its timestamp is read.
_VERSION_COLUMNS = ("fseq", "seq", "file", "line", "raw", "obj", "prop", "role", "value", "s", "stamp", "prefix")


def _sql_list(values) -> str:
    """A SQL list literal of text values (constants of this module and the options, never row data)."""
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]::varchar[]"


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _setup(con: duckdb.DuckDBPyConnection) -> None:
    """The macros and the tables the steps fill."""
    iso = ISO.pattern.replace(r"\d", "[0-9]")
    con.execute(f"create macro hs_iso(s) as regexp_extract(s, '^{iso}$', ['y', 'mo', 'd', 'h', 'mi', 'sec', 'f', 'off'])")
    con.execute(
        """create macro hs_iso_value(p) as (
            case when p.y::int <= 1000 or p.y::int >= 9999 then {'kind': 'py', 'us': null::bigint, 'bad': null::varchar}
                 when p.mo::int not between 1 and 12
                      or p.d::int not between 1 and (case when p.mo::int = 2 then (case when (p.y::int % 4 = 0 and p.y::int % 100 <> 0)
                                                                                         or p.y::int % 400 = 0 then 29 else 28 end)
                                                          when p.mo::int in (4, 6, 9, 11) then 30 else 31 end)
                      or (p.h <> '' and (p.h::int > 23 or p.mi::int > 59)) or (p.sec <> '' and p.sec::int > 59)
                      or (length(p.off) > 1 and substr(p.off, 2, 2)::int * 3600
                          + (case length(p.off) when 5 then substr(p.off, 4, 2)::int when 6 then substr(p.off, 5, 2)::int else 0 end) * 60
                          >= 86400)
                 then {'kind': 'bad', 'us': null::bigint, 'bad': 'impossible_timestamp'}
                 else {'kind': case when p.off = '' then 'wall' else 'utc' end,
                       'us': epoch_us(make_timestamp(p.y::bigint, p.mo::bigint, p.d::bigint, coalesce(nullif(p.h, ''), '0')::bigint,
                                                     coalesce(nullif(p.mi, ''), '0')::bigint, coalesce(nullif(p.sec, ''), '0')::double))
                             + rpad(substr(p.f, 1, 6), 6, '0')::bigint
                             - (case when length(p.off) > 1
                                     then (case when starts_with(p.off, '-') then -1 else 1 end)
                                          * (substr(p.off, 2, 2)::bigint * 3600
                                             + (case length(p.off) when 5 then substr(p.off, 4, 2)::bigint
                                                                   when 6 then substr(p.off, 5, 2)::bigint else 0 end) * 60) * 1000000
                                     else 0 end),
                       'bad': null::varchar}
            end)"""
    )
    # A date and time as exports mostly write them (2026-03-04T15:22:01.123Z, 2026-03-04 15:22, 2026-03-04), with a year
    # after 1000 and before 9999, as a timestamp: strptime checks the ranges as fromisoformat does, far faster than
    # taking the parts apart with a regular expression; NULL when it is not a real date or time.
    con.execute(f"create macro hs_common(s) as ({_common_formats()})")
    # A stripped timestamp text -> {kind, us, bad} as _instant reads it. common: it has a common form (ts: hs_common
    # of it); p: its ISO parts (hs_iso) when it has none and is not epoch milliseconds.
    con.execute(
        f"""create macro hs_parse(s, common, ts, p) as (
            case when s is null then null
                 when s = '' then {{'kind': 'bad', 'us': null::bigint, 'bad': 'missing_timestamp'}}
                 when common and s >= '1001' and s < '9999'
                 then (case when ts is null then {{'kind': 'bad', 'us': null::bigint, 'bad': 'impossible_timestamp'}}
                            else {{'kind': case when ends_with(s, 'Z') then 'utc' else 'wall' end, 'us': epoch_us(ts),
                                   'bad': null::varchar}} end)
                 when strlen(s) <> length(s) or common
                 then {{'kind': 'py', 'us': null::bigint, 'bad': null::varchar}}
                 when regexp_full_match(s, '-?[0-9]{{1,15}}')
                 then (case when abs(s::bigint) < {_SAFE_EPOCH_MS} then {{'kind': 'epoch', 'us': s::bigint * 1000, 'bad': null::varchar}}
                            else {{'kind': 'py', 'us': null::bigint, 'bad': null::varchar}} end)
                 when p.y <> '' then hs_iso_value(p)
                 else {{'kind': 'bad', 'us': null::bigint, 'bad': 'unparseable_timestamp'}}
            end)"""
    )
    # entered_at text of an epoch instant: 2026-03-04T15:22:01.123Z.
    con.execute("create macro hs_epoch_text(us) as strftime(make_timestamp(us), '%Y-%m-%dT%H:%M:%S.') "
                "|| lpad((((us // 1000) % 1000 + 1000) % 1000)::varchar, 3, '0') || 'Z'")
    # _TIME_DETAIL in SQL.
    con.execute(
        """create macro hs_detail(bad, col, value) as (
            case bad when 'missing_timestamp' then col || ' is empty'
                     when 'unparseable_timestamp' then col || ' is "' || value || '", not an ISO-8601 timestamp or epoch milliseconds'
                     else col || ' is "' || value || '", not a real date or time' end)"""
    )
    columns = ", ".join(f"{c} {t}" for c, t in zip(_ENTRY_COLUMNS, _ENTRY_TYPES))
    con.execute(f"create temp table entries ({columns})")
    con.execute("create temp table rejects (file varchar, line bigint, reason varchar, detail varchar, raw varchar, fseq integer, seq bigint, obj varchar)")
    con.execute("create temp table json_raws (fseq integer, seq bigint, raw varchar)")
    con.execute("create temp table assoc (deal varchar, contact varchar, phase integer, fseq integer, line bigint, k bigint)")


def _common_formats() -> str:
    """SQL: try_strptime of a text of _COMMON_ISO's form with the one format of its length and separator."""
    times = {16: "%H:%M", 19: "%H:%M:%S", 23: "%H:%M:%S.%g"}
    branches = ["when 10 then try_strptime(s, '%Y-%m-%d')"]
    for length, time in times.items():
        for z in ("", "Z"):
            t, space = (f"try_strptime(s, '%Y-%m-%d{sep}{time}{z}')" for sep in ("T", " "))
            branches.append(f"when {length + len(z)} then (case when substr(s, 11, 1) = 'T' then {t} else {space} end)")
    return f"case length(s) {' '.join(branches)} end"


def _instants(b: _Build, source: str, target: str, tz: str, *, utc_date: bool = False) -> None:
    """Table `target`: `source` (a table name or a parenthesised query with a stripped text column `s`, NULL for rows
    that need no instant) plus at_us (UTC microseconds), txt (entered_at text) and bad (the loader's reason, or NULL),
    as _instant(s, tz) gives them; with utc_date, the instant's UTC date (utc_date)."""
    relation = source if source.startswith("(") else f'"{source}"'
    day = ", case when _p.kind in ('utc', 'wall', 'epoch') then strftime(make_timestamp(_p.us), '%Y-%m-%d') end as utc_date" if utc_date else ""
    local = "'utc', 'epoch'" if tz != "UTC" else "'utc', 'epoch', 'wall'"
    b.con.execute(
        f"""create or replace temp table "{target}" as
            select * exclude (_p),
                   case when _p.kind in ({local}) then _p.us end as at_us,
                   case when _p.kind = 'epoch' then hs_epoch_text(_p.us) when _p.kind in ('utc', 'wall') then s end as txt,
                   _p.bad as bad, _p.kind = 'py' as _py, case when _p.kind = 'wall' then _p.us end as _wall{day}
            from (
                select * exclude (_common, _ts, _iso), hs_parse(s, _common, _ts, _iso) as _p from (
                    select *, case when _common and s >= '1001' and s < '9999' then hs_common(s) end as _ts,
                              case when not _common and not regexp_full_match(s, '-?[0-9]{{1,15}}') then hs_iso(s) end as _iso
                    from (select *, regexp_full_match(s, '{_COMMON_ISO}') as _common from {relation})))"""
    )
    if tz != "UTC":
        # A wall time's offset is the zone's at that wall time (fold 0), looked up per hour; an hour in which the
        # offset changes is left to Python.
        hour = f"(_wall - (_wall % {_HOUR_US} + {_HOUR_US}) % {_HOUR_US}) // {_HOUR_US}"
        hours = [h for (h,) in b.sql(f'select distinct {hour} from "{target}" where _wall is not null')]
        if hours:
            zone, offsets = ZoneInfo(tz), []
            for h in hours:
                wall = datetime(1970, 1, 1) + timedelta(hours=h)
                first, last = zone.utcoffset(wall), zone.utcoffset(wall + timedelta(minutes=59, seconds=59, microseconds=999999))
                offsets.append(first // timedelta(microseconds=1) if first == last else None)
            b.register("_offsets", {"h": pa.array(hours, pa.int64()), "off": pa.array(offsets, pa.int64())})
            b.con.execute(f"""update "{target}" t set at_us = t._wall - o.off, _py = o.off is null
                              from _offsets o where t._wall is not null and o.h = {hour.replace('_wall', 't._wall')}""")
    rare = [s for (s,) in b.sql(f'select distinct s from "{target}" where _py')]
    if rare:
        zone_info = timezone.utc if tz == "UTC" else ZoneInfo(tz)
        values = [(s, *_instant(s, zone_info)) for s in rare]
        b.register("_rare", {
            "s": pa.array(rare, pa.string()),
            "at_us": pa.array([None if at is None else (at - _EPOCH) // timedelta(microseconds=1) for _, at, _ in values], pa.int64()),
            "txt": pa.array([None if at is None else text for _, at, text in values], pa.string()),
            "bad": pa.array([text if at is None else None for _, at, text in values], pa.string()),
            "utc_date": pa.array([None if at is None else at.astimezone(timezone.utc).strftime("%Y-%m-%d") for _, at, _ in values],
                                 pa.string())})
        b.con.execute(f"""update "{target}" t set at_us = r.at_us, txt = r.txt, bad = r.bad{', utc_date = r.utc_date' if utc_date else ''}
                          from _rare r where t._py and r.s = t.s""")


def translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation:
    """Turn HubSpot exports (property history CSV or JSON, wide deal export, pipelines, associations) into events."""
    opts = parse_options(options, config)
    out = Translation()
    label_map = config.label_map()
    con = connect()
    try:
        _setup(con)
        b = _Build(config, opts, out, con, {k for k, v in label_map.items() if v in config.outcomes})
        for path in opts.pipelines:
            doc = read_json(path, f"pipeline definition ({_SECTION} pipelines)", _API)
            b.has_definition = True
            if not _add_pipelines(b, doc):
                raise UserError(f"{_SECTION} pipelines file '{path}' is not a HubSpot pipeline definition: expected "
                                "{\"results\": [{\"id\", \"label\", \"stages\": [...]}]} as GET /crm/v3/pipelines/deals returns it.")
        documents, tables = _read_inputs(b, paths)
        b.files = {i: file_key(path) for i, (path, _) in enumerate(documents)}
        b.files.update({len(documents) + i: file_key(path) for i, (path, _, _) in enumerate(tables)})
        b.register("files", {"fseq": pa.array(list(b.files), pa.int32()), "file": pa.array(list(b.files.values()), pa.string())})
        # The raw text of an entry, by its order: a history row's, or a JSON version's (kept when it may be written).
        b.con.execute("create temp view raws as " + " union all ".join(
            [f'select {len(documents) + i}::integer as fseq, _line as seq, _raw as raw from "{table.name}"'
             for i, (_, table, kind) in enumerate(tables) if kind == "history"] + ["select fseq, seq, raw from json_raws"]))
        b.stage_ids.update({k: (v, None) for k, v in opts.stage_labels.items()})
        for fseq, (path, objects) in enumerate(documents):
            seq = 0
            for position, obj in enumerate(objects, 1):
                seq = _json_object(b, path, fseq, position, seq, obj)
        _json_entries(b)
        for i, (path, table, kind) in enumerate(tables):
            fseq = len(documents) + i
            if kind == "history":
                _history_table(b, path, table, fseq)
            elif kind == "associations":
                _association_table(b, path, table, fseq)
            else:
                _wide_table(b, path, table, fseq)
        _buyer_entries(b)
        _no_stage_history(b)
        _history_events(b)
        _join_journeys(b)
        buyer_columns = _buyer_attributes(b)

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
        out.events = _events_table(b, buyer_columns)
        _rejections(b)
    finally:
        con.close()
    return out


def _read_inputs(b: _Build, paths: list[Path]) -> tuple[list[tuple[Path, list[dict]]], list[tuple[Path, RowTable, str]]]:
    """Read every file and tell its kind: pipelines and associations are taken in at once; objects and tables are returned."""
    documents: list[tuple[Path, list[dict]]] = []
    tables: list[tuple[Path, RowTable, str]] = []
    for path in paths:
        if not _is_json(path):
            table = read_rows(b.con, path, b.config, b.out, f"t{len(tables)}", what="HubSpot export")
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


def _objects_of(path: Path, doc: object) -> list[dict]:
    """The deals or contacts of an objects document; UserError for a document of another kind or none."""
    objects = _objects(doc)
    if objects is None:
        keys = ", ".join(sorted(doc)[:8]) if isinstance(doc, dict) else f"a list of {len(doc)} item(s)" if isinstance(doc, list) else type(doc).__name__
        raise UserError(
            f"HubSpot export '{path}' is neither a pipeline definition (results[].stages) nor deals or contacts "
            f"with property history (results[].propertiesWithHistory, or legacy properties.*.versions): found {keys}."
        )
    if not objects:
        raise UserError(f"HubSpot export '{path}' has no objects: expected at least one deal or contact.")
    return objects


# -- options ---------------------------------------------------------------------------------------


def parse_options(options: dict, config: FunnelConfig) -> Options:
    """Check `[source.hubspot]`; UserError naming the key for anything unknown or malformed."""
    check_option_keys(options, _SECTION, OPTION_KEYS)

    def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if key not in options:
            return default
        value = options[key]
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise UserError(f"{_SECTION} {key} = {options[key]!r}; expected a list of HubSpot property names.")
        return tuple(v.strip() for v in value)

    pipelines = option_files(options, "pipelines", config, _SECTION, "a pipelines JSON file")
    stage_labels = option_table(options, "stage_labels", _SECTION, 'stage id = "Stage label"')
    attributes = option_attributes(options, _SECTION, DEFAULT_ATTRIBUTES, "a property or column name, or a list of them")
    id_column = option_text(options, "id_column", _SECTION, None)
    props = names("properties", DEFAULT_PROPERTIES)
    reasons = names("reason_properties", DEFAULT_REASONS)
    clash = set(props) & set(reasons)
    if clash:
        raise UserError(f"{_SECTION} lists '{sorted(clash)[0]}' both as a stage property and as a reason property.")
    responses = names("first_response_properties", DEFAULT_RESPONSE_PROPERTIES)
    deciding = names("decision_roles", DEFAULT_DECISION_ROLES)
    return Options(pipelines, stage_labels, props, reasons, attributes, id_column, responses, deciding)


# -- files -----------------------------------------------------------------------------------------


def _is_json(path: Path) -> bool:
    return path.name.lower().endswith((".json", ".json.gz"))


def _pipeline_list(doc: object) -> list[dict]:
    """The pipelines in a pipelines document (v3 or legacy v1; one pipeline, a page or a list), else []."""
    items = doc.get("results") if isinstance(doc, dict) and "results" in doc else [doc] if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not items:
        return []
    if all(isinstance(p, dict) and isinstance(p.get("stages"), list) and ("id" in p or "pipelineId" in p) for p in items):
        return items
    return []


def _add_pipelines(b: _Build, doc: object) -> bool:
    """Add a pipelines document's stage labels to the map; False when the document is not one."""
    pipelines = _pipeline_list(doc)
    for p in pipelines:
        pid = str(p.get("id", p.get("pipelineId")))
        plabel = str(p.get("label") or pid)
        b.pipeline_labels[pid] = plabel
        for s in p["stages"]:
            sid = s.get("id", s.get("stageId")) if isinstance(s, dict) else None
            if sid is not None and s.get("label"):
                b.stage_ids[str(sid)] = (str(s["label"]), plabel)
    return bool(pipelines)


def _objects(doc: object) -> list[dict] | None:
    """The deals or contacts of an objects document (a page, a list of pages or a list of objects), else None."""
    def page_items(d: dict) -> list | None:
        for key in ("results", "deals", "contacts", "objects"):
            if isinstance(d.get(key), list):
                return d[key]
        return None

    if isinstance(doc, dict):
        items = page_items(doc)
    elif isinstance(doc, list) and doc and all(isinstance(d, dict) and page_items(d) is not None for d in doc):
        items = [o for d in doc for o in page_items(d)]
    else:
        items = doc
    if not isinstance(items, list):
        return None
    if items and not all(isinstance(o, dict) and ("propertiesWithHistory" in o or "properties" in o) for o in items):
        return None
    return items


def _table_kind(table: SourceTable) -> str:
    if table.column("property") is not None:
        return "history"
    if any(_entered_column(h) for h in table.header):
        return "wide"
    if _pair_columns(table):
        return "associations"
    raise UserError(
        f"HubSpot export '{table.path}' is neither a property history (objectId, property, value, timestamp), a "
        f"deal export with 'Date entered' or hs_v2_date_entered_* columns, nor deal-contact pairs (dealId, contactId): "
        f"found {', '.join(table.header)}."
    )


def _pair_columns(table: SourceTable) -> tuple[str, str] | None:
    """The (deal id, contact id) columns of a table of deal-contact associations, one pair per row."""
    deal = next((h for h in (table.column(c) for c in ASSOCIATION_DEAL_COLUMNS) if h), None)
    contact = next((h for h in (table.column(c) for c in ASSOCIATION_CONTACT_COLUMNS) if h), None)
    return (deal, contact) if deal and contact else None


def _entered_column(header: str) -> tuple[str, str] | None:
    """('id', stage id) for hs_v2_date_entered_<id>, ('label', inner text) for Date entered "...", else None."""
    m = _ENTERED_API.fullmatch(header.strip())
    if m and m.group(1).lower() not in _NOT_STAGE_IDS:
        return ("id", m.group(1))
    m = _ENTERED_UI.fullmatch(header.strip())
    if m:
        return ("label", m.group(1))
    return None


def _id_column(table: SourceTable, opts: Options, candidates: tuple[str, ...], what: str) -> str:
    wanted = (opts.id_column,) if opts.id_column else candidates
    for name in wanted:
        header = table.column(name)
        if header is not None:
            return header
    raise UserError(f"{what} '{table.path}' has no id column: expected {' or '.join(repr(w) for w in wanted)}; "
                    f"found {', '.join(table.header)}.")


# -- timestamps and labels -------------------------------------------------------------------------


def _instant(value: object, tz: ZoneInfo) -> tuple[datetime, str] | tuple[None, str]:
    """(instant, entered_at text) of an ISO or epoch-millisecond value; (None, loader reason) otherwise."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None, "missing_timestamp"
    if _EPOCH_MS.fullmatch(text):
        try:
            at = datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None, "impossible_timestamp"
        return at, at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    if not ISO.fullmatch(text):
        return None, "unparseable_timestamp"
    iso = text[:11] + text[11:].replace(" ", "").replace("z", "Z")  # fromisoformat wants the offset unspaced
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return None, "impossible_timestamp"
    return (at if at.tzinfo else at.replace(tzinfo=tz)), text


_TIME_DETAIL = {
    "missing_timestamp": "{col} is empty",
    "unparseable_timestamp": '{col} is "{value}", not an ISO-8601 timestamp or epoch milliseconds',
    "impossible_timestamp": '{col} is "{value}", not a real date or time',
}


def _stage_label(b: _Build, prop: str, value: str) -> tuple[str, str | None] | None:
    """(label, pipeline label) of a stage property's value, or None for a stage id nothing names."""
    if value in b.stage_ids:
        return b.stage_ids[value]
    known = normalise_label(value) in b.config.label_map()
    if prop == "dealstage":
        if value in DEFAULT_PIPELINE:
            return DEFAULT_PIPELINE[value], b.pipeline_labels.get("default")
        return (value, None) if known else None
    if prop == "lifecyclestage" and value.lower() in LIFECYCLE_STAGES:
        return LIFECYCLE_STAGES[value.lower()], None
    if prop == "hs_lead_status" and value.upper() in LEAD_STATUSES:
        return LEAD_STATUSES[value.upper()], None
    if value.isdigit() and not known:
        return None  # a custom stage's id
    return value, None


def _qualified(b: _Build, label: str, pipeline: str | None) -> str:
    """`Label (Pipeline)` when [labels] maps that form, so equal labels in two pipelines can differ; else the label."""
    if pipeline:
        both = f"{label} ({pipeline})"
        if normalise_label(both) in b.config.label_map():
            return both
    return label




# -- property history (long CSV and JSON) ----------------------------------------------------------


def _role(b: _Build, prop: str) -> str | None:
    """What a property is to the adapter: stage, reason, money, attribute name, or None."""
    if prop in b.options.properties:
        return "stage"
    if prop in b.options.reason_properties:
        return "reason"
    if prop in MONEY_PROPERTIES:
        return "money"
    for name, candidates in b.options.attributes.items():
        if prop in candidates:
            return f"attr:{name}"
    return None


def _history_table(b: _Build, path: Path, table: RowTable, fseq: int) -> None:
    """A long property-history export: one row per value a property took."""
    found = table.require(["property", "value", "timestamp"], "HubSpot property history")
    id_col = _id_column(table, b.options, HISTORY_ID_COLUMNS, "HubSpot property history")
    type_col = next((h for h in (table.column(c) for c in TYPE_COLUMNS) if h), None)
    fixed = KIND_OF_ID_COLUMN.get(id_col.strip().lower())
    key = file_key(path)
    # Per distinct property as written: its name, what it is to the adapter, and the object it tells; per distinct
    # objectType value, the object it names.
    raw_props = [p for (p,) in b.sql(f'select distinct {table.col(found["property"])} from "{table.name}"')]
    props = [p.strip() for p in raw_props]
    b.register("props", {"written": pa.array(raw_props, pa.string()), "prop": pa.array(props, pa.string()),
                         "role": pa.array([b.role(p) for p in props], pa.string()),
                         "tells": pa.array(["deal" if p in DEAL_PROPERTIES else "contact" if p in CONTACT_PROPERTIES else None
                                            for p in props], pa.string())})
    typed = "null::varchar"
    if type_col:
        raw_types = [t for (t,) in b.sql(f'select distinct {table.col(type_col)} from "{table.name}"')]
        b.register("types", {"written": pa.array(raw_types, pa.string()),
                             "kind": pa.array([KIND_OF_TYPE.get(t.strip().lower()) for t in raw_types], pa.string())})
        typed = f"(select kind from types where types.written = t.{table.col(type_col)})"
    _instants(b, f"""(select *, case when role is not null and oid <> '' then py_strip(stamp) end as s from (
                          select t._line as line, p.prop, p.role, p.tells, py_strip(t.{table.col(id_col)}) as oid,
                                 py_strip(t.{table.col(found['value'])}) as value, t.{table.col(found['timestamp'])} as stamp,
                                 {typed} as typ
                          from "{table.name}" t join props p on p.written = t.{table.col(found['property'])}))""", "h", b.tz)
    counts = dict(b.sql(
        """select case when role is null then 'other' when oid = '' or bad is not null then 'rejected'
                       when role = 'stage' and value = '' then 'cleared' when role = 'reason' then 'reason'
                       when role like 'attr:%' then 'attribute' end, count(*) from h group by 1"""))
    if counts.get("other"):
        b.out.ignore(key, "other_property", counts["other"])
    if counts.get("cleared"):  # HubSpot clears lifecyclestage before setting an earlier one: no stage
        b.out.ignore(key, "cleared_value", counts["cleared"])
    if counts.get("reason"):
        b.out.ignore(key, "reason_value", counts["reason"])
    if counts.get("attribute"):
        b.out.ignore(key, "attribute_value", counts["attribute"])
    # The object of a row: its objectType, the id column's object, the property's, else the objects its id's
    # other rows show (both when they show both: a reason or attribute then goes to the deal too).
    if fixed:
        kind, other, seen = "coalesce(typ, $fixed)", "null", ""
    else:
        b.con.execute("create or replace temp table seen as select oid, bool_or(tells = 'deal') as d, bool_or(tells = 'contact') as c "
                      "from h where tells is not null group by oid")
        kind = "coalesce(typ, tells, case when s.c then 'contact' else 'deal' end)"
        other = "case when typ is null and tells is null and s.c and s.d and (role in ('reason', 'money') or role like 'attr:%') then 'deal' end"
        seen = "left join seen s on s.oid = h.oid"
    if counts.get("rejected"):  # under the object the row tells, as its entries would be
        b.con.execute(f"""insert into rejects
                          select $key, h.line, case when h.oid = '' then 'missing_lead_id' else bad end,
                                 case when h.oid = '' then $missing else hs_detail(bad, $col, h.s) end, t._raw, null, null,
                                 case when h.oid <> '' then {kind} || ':' || h.oid end
                          from h {seen} join "{table.name}" t on t._line = h.line
                          where role is not null and (h.oid = '' or bad is not null)""",
                      {"key": key, "missing": f"{id_col} is empty", "col": found["timestamp"], **({"fixed": fixed} if fixed else {})})
    b.con.execute(
        f"""create or replace temp table h_kind as
            select line, prop, role, h.oid, value, at_us, txt, {kind} as kind, {other} as other
            from h {seen} where role is not null and h.oid <> '' and bad is null and (role <> 'stage' or value <> '')""",
        {"fixed": fixed} if fixed else {},
    )
    b.con.execute(
        f"""insert into entries
            select {fseq}, line, line, kind || ':' || oid, prop, role, value, at_us, txt, true from h_kind
            union all
            select {fseq}, line, line, other || ':' || oid, prop, role, value, at_us, txt, true from h_kind where other is not null"""
    )
    for name in ("h", "h_kind", "props", *(("types",) if type_col else ()), *(() if fixed else ("seen",))):
        b.con.execute(f'drop table "{name}"')


def _json_object(b: _Build, path: Path, fseq: int, position: int, seq: int, obj: dict) -> int:
    """One deal or contact of an API payload: its history versions as rows; returns the running entry number."""
    key = file_key(path)
    if obj.get("archived") is True or obj.get("isDeleted") is True:
        b.out.ignore(key, "archived")
        return seq
    raw_id = next((str(obj[k]).strip() for k in ("id", "dealId", "vid", "objectId") if obj.get(k) not in (None, "")), "")
    if not raw_id:
        b.out.reject(key, position, "missing_lead_id", "the object has no id, dealId or vid", json.dumps(obj, ensure_ascii=False))
        return seq
    history = obj.get("propertiesWithHistory") if isinstance(obj.get("propertiesWithHistory"), dict) else {}
    props = obj.get("properties") if isinstance(obj.get("properties"), dict) else {}
    kind = _object_kind(obj, history, props)
    oid = f"{kind}:{raw_id}"
    b.json_objects.append((fseq, position))
    _object_associations(b, kind, raw_id, obj.get("associations"), fseq, position)
    seq = _object_buyer_properties(b, oid, history, props, key, fseq, position, seq)
    for prop in dict.fromkeys([*history, *props]):
        role = b.role(prop)
        if role is None or role == "buyer":
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
            seq += 1
            stamp = version.get("timestamp")
            value = "" if version.get("value") is None else str(version["value"]).strip()
            if role in ("stage", "money"):
                raw = json.dumps({"id": raw_id, "property": prop, **version}, ensure_ascii=False)
            else:
                raw = None
                b.lazy_raw[(fseq, seq)] = (raw_id, prop, version)
            text = str(stamp).strip() if stamp is not None else ""
            b.versions.append((fseq, seq, key, position, raw, oid, prop, role, value, text, str(stamp),
                               f"{prop} history entry {i} of {kind} {raw_id}: "))
    return seq


def _json_entries(b: _Build) -> None:
    """The JSON documents' history versions: a timestamp that is not one is rejected, the others are entries."""
    rows = b.versions
    types = (pa.int32(), pa.int64(), pa.string(), pa.int64(), pa.string(), pa.string(), pa.string(), pa.string(), pa.string(),
             pa.string(), pa.string(), pa.string())
    b.register("versions", {c: pa.array([r[i] for r in rows], t) for i, (c, t) in enumerate(zip(_VERSION_COLUMNS, types))})
    b.versions = []
    _instants(b, "versions", "versions_at", b.tz)
    b.con.execute("insert into rejects select file, line, bad, prefix || hs_detail(bad, 'timestamp', stamp), raw, fseq, seq, obj "
                  "from versions_at where bad is not null")
    b.con.execute("""insert into entries select fseq, seq, line, obj, prop, role, value, at_us, txt, false
                     from versions_at where bad is null and (role <> 'stage' or value <> '')""")
    b.con.execute("insert into json_raws select fseq, seq, raw from versions_at where raw is not null and bad is null")
    rows = b.buyer_rows
    b.register("buyer_json", {c: pa.array([r[i] for r in rows], t) for i, (c, t) in enumerate(zip(
        (*_ENTRY_COLUMNS, "raw"), (pa.int32(), pa.int64(), pa.int64(), pa.string(), pa.string(), pa.string(), pa.string(),
                                   pa.int64(), pa.string(), pa.bool_(), pa.string())))})
    b.buyer_rows = []
    b.con.execute(f"insert into entries select {', '.join(_ENTRY_COLUMNS)} from buyer_json")
    b.con.execute("insert into json_raws select fseq, seq, raw from buyer_json")
    for name in ("versions", "versions_at", "buyer_json"):
        b.con.execute(f'drop table "{name}"')


def _object_kind(obj: dict, history: dict, props: dict) -> str:
    """Whether an API object is a deal or a contact: its legacy id key, else the properties it has."""
    if obj.get("dealId") not in (None, ""):
        return "deal"
    if obj.get("vid") not in (None, ""):
        return "contact"
    names = set(history) | set(props)
    if names & DEAL_PROPERTIES:
        return "deal"
    if names & CONTACT_PROPERTIES:
        return "contact"
    associations = obj.get("associations") if isinstance(obj.get("associations"), dict) else {}
    return "contact" if any(str(k).lower() in ("deals", "0-3") for k in associations) else "deal"


def _object_associations(b: _Build, kind: str, raw_id: str, associations: object, fseq: int, position: int) -> None:
    """The associations an API object carries: a v3 deal's contacts (or a contact's deals), a v1 deal's associatedVids."""
    if not isinstance(associations, dict):
        return
    wanted = ("contacts", "contact", "0-1") if kind == "deal" else ("deals", "deal", "0-3")
    for name, value in associations.items():
        if str(name).lower() in wanted and isinstance(value, dict) and isinstance(value.get("results"), list):
            b.associations_given = True
            for to in value["results"]:
                other = str(to.get("id", "") if isinstance(to, dict) else to)
                pair = (raw_id, other) if kind == "deal" else (other, raw_id)
                b.associations.append((*pair, 1, fseq, position, len(b.associations)))
    if kind == "deal" and isinstance(associations.get("associatedVids"), list):
        b.associations_given = True
        for vid in associations["associatedVids"]:
            b.associations.append((raw_id, str(vid), 1, fseq, position, len(b.associations)))


def _no_stage_history(b: _Build) -> None:
    """Count the JSON objects that gave no stage entry and no rejection."""
    b.register("objects", {"fseq": pa.array([o[0] for o in b.json_objects], pa.int32()),
                           "line": pa.array([o[1] for o in b.json_objects], pa.int64())})
    b.ignore(
        "no_stage_history",
        """select fseq, count(*) from objects o
           where not exists (select 1 from entries e where e.fseq = o.fseq and e.line = o.line and not e.from_table and e.role = 'stage')
             and not exists (select 1 from rejects r where r.fseq = o.fseq and r.line = o.line)
           group by fseq"""
    )
    b.con.execute("drop table objects")


def _history_events(b: _Build) -> None:
    """The stage entries as events: labels, each exit's reason, each record's attributes, then its money history."""
    labels = b.sql("select distinct prop, value from entries where role = 'stage'")
    found = [_stage_label(b, prop, value) for prop, value in labels]
    written = [None if f is None else _qualified(b, *f) for f in found]
    b.register("labels", {"prop": pa.array([p for p, _ in labels], pa.string()), "value": pa.array([v for _, v in labels], pa.string()),
                          "label": pa.array(written, pa.string()),
                          "outcome": pa.array([w is not None and b.is_outcome(w) for w in written], pa.bool_())})
    b.con.execute(
        """create or replace temp table stages as
           select e.*, l.label, l.outcome, min((e.fseq, e.seq)) over (partition by e.obj) as first_entry
           from entries e join labels l on l.prop = e.prop and l.value = e.value where e.role = 'stage'"""
    )
    b.unknown_ids += b.sql("select count(*) from stages where label is null and prop = 'dealstage'")[0][0]
    b.con.execute(
        """insert into rejects
            select f.file, s.line, 'unknown_stage_id',
                   s.prop || ' "' || s.value || '" of ' || s.obj || ' is not a stage id in '
                   || case when s.prop = 'dealstage' then 'the pipeline definition' else $where end
                   || ': add it there, or map the id under [labels]', r.raw, s.fseq, s.seq, s.obj
            from stages s join files f using (fseq) left join raws r using (fseq, seq) where s.label is null""",
        {"where": f"{_SECTION} stage_labels"}
    )
    # Records in the order their first stage entry was read; within one, by (instant, order).
    b.con.execute(
        """create or replace temp table moves as
           select *, dense_rank() over (order by first_entry) as g,
                  row_number() over (partition by obj order by at_us, fseq, seq) as k,
                  coalesce(lead(at_us) over (partition by obj order by at_us, fseq, seq), 9223372036854775807) as ends
           from stages where label is not null"""
    )
    # An exit's reason: the value the reason property held last before the record's next move.
    b.con.execute(
        """create or replace temp table reasons as
           select obj, at_us, arg_max(value, (fseq, seq)) as value from entries where role = 'reason' group by obj, at_us"""
    )
    names = [n for n in b.options.attributes if n not in MONEY_ATTRIBUTES]
    current = [(obj, name, value) for obj, values in b.current.items() for name, value in values.items() if name in names]
    b.register("current_values", {"obj": pa.array([c[0] for c in current], pa.string()), "name": pa.array([c[1] for c in current], pa.string()),
                                  "value": pa.array([c[2] for c in current], pa.string())})
    _pipelines_table(b)
    picks = ", ".join(
        f"""coalesce(max(c.value) filter (where c.name = {_sql_text(n)}),
                     arg_max(e.value, (e.at_us, e.fseq, e.seq)) filter (where e.role = {_sql_text('attr:' + n)} and e.value <> '')) as a_{i}"""
        for i, n in enumerate(names)
    ) or "null as a_none"
    b.con.execute(
        f"""create or replace temp table obj_attrs as
            with objs as (select distinct obj from moves),
            latest as (select o.obj, {picks}
                       from objs o left join entries e on e.obj = o.obj and e.role like 'attr:%'
                       left join current_values c on c.obj = o.obj group by o.obj)
            select obj, {', '.join(_attr_sql(n, f'a_{i}') + f' as "{n}"' for i, n in enumerate(names)) or 'null as a_none'} from latest"""
    )
    b.con.execute(
        """create or replace temp table moves as
           select m.*, case when m.outcome then nullif(r.value, '') end as reason
           from moves m asof left join reasons r on r.obj = m.obj and m.ends > r.at_us"""
    )
    _money_history(b)
    b.con.execute("drop table reasons")


def _attr_sql(name: str, column: str) -> str:
    """An attribute's value, a pipeline id written as its label."""
    if name != "pipeline":
        return column
    return f"coalesce((select label from pipelines p where p.id = {column}), {column})"


def _pipelines_table(b: _Build) -> None:
    b.register("pipelines", {"id": pa.array(list(b.pipeline_labels), pa.string()),
                             "label": pa.array(list(b.pipeline_labels.values()), pa.string())})


def _money_history(b: _Build) -> None:
    """A deal's money values on its stage events, and an event repeating its stage for each change between moves.

    The value of each money attribute after a change is the latest non-empty one so far (in instant, then
    read order); a move takes the values after the changes up to its instant; a change at no move's instant
    that changes a value makes an event from the move before it (changes at one instant: one event, from the
    first that changes something, with the values after all of them). A current value without history holds
    from the deal's first move. A long history row that gives no event of its own is counted as ignored.
    """
    amounts = [v for (v,) in b.sql("select distinct value from entries where role = 'money' and prop = 'amount'")]
    now = [(obj, prop, value, i) for obj, values in b.money_now.items() for i, (prop, value) in enumerate(values.items())]
    plain = {v: plain_amount(v)[0] or "" for v in amounts + [v for _, p, v, _ in now if p == "amount"]}
    upper = {v: v.upper() for v in [v for (v,) in b.sql("select distinct value from entries where role = 'money' and prop = 'deal_currency_code'")]
             + [v for _, p, v, _ in now if p == "deal_currency_code"]}
    b.register("plain", {"value": pa.array(list(plain), pa.string()), "plain": pa.array(list(plain.values()), pa.string())})
    b.register("upper", {"value": pa.array(list(upper), pa.string()), "upper": pa.array(list(upper.values()), pa.string())})
    attribute = "map {" + ", ".join(f"'{k}': '{v}'" for k, v in MONEY_PROPERTIES.items()) + "}"
    b.con.execute("create or replace temp table money_in as select obj, prop, value as s, at_us, fseq, seq, line, txt, from_table "
                  "from entries where role = 'money'")
    _instants(b, "money_in", "money_at", "UTC", utc_date=True)
    value = ("case m.prop when 'amount' then pl.plain when 'closedate' then coalesce(m.utc_date, '') "
             "when 'deal_currency_code' then u.upper else m.s end")
    # One row per change: the value it sets (NULL when empty) under its attribute.
    cols = ", ".join(f"case when {attribute}[m.prop] = '{a}' then nullif({value}, '') end as v_{a}" for a in MONEY_ATTRIBUTES)
    b.con.execute(
        f"""create or replace temp table changes as
            select m.obj, m.at_us, m.fseq, m.seq, m.line, m.txt, m.from_table, {cols}
            from money_at m left join plain pl on pl.value = m.s left join upper u on u.value = m.s"""
    )
    # A current value of a property with no history: one change at the deal's first move, after its other changes.
    b.register("now", {"obj": pa.array([n[0] for n in now], pa.string()), "prop": pa.array([n[1] for n in now], pa.string()),
                       "s": pa.array([n[2] for n in now], pa.string()), "i": pa.array([n[3] for n in now], pa.int64())})
    b.con.execute("create or replace temp table now_in as select * from now anti join (select distinct obj, prop from entries "
                  "where role = 'money') h on h.obj = now.obj and h.prop = now.prop")
    _instants(b, "now_in", "now_at", "UTC", utc_date=True)
    b.con.execute(
        f"""create or replace temp table now_values as
            select n.obj, {attribute}[n.prop] as name, arg_max({value.replace('m.', 'n.')}, n.i) as v
            from now_at n left join plain pl on pl.value = n.s left join upper u on u.value = n.s group by all"""
    )
    cols = ", ".join(f"nullif(max(v) filter (where name = '{a}'), '') as v_{a}" for a in MONEY_ATTRIBUTES)
    b.con.execute(
        f"""insert into changes
            select f.obj, f.at_us, 2147483647, 0, 0, '', false, {', '.join(f'n.v_{a}' for a in MONEY_ATTRIBUTES)}
            from (select n.obj, {cols} from now_values n group by n.obj) n
            join (select obj, min(at_us) as at_us from moves group by obj) f on f.obj = n.obj"""
    )
    state = ", ".join(f"last_value(v_{a} ignore nulls) over w as s_{a}" for a in MONEY_ATTRIBUTES)
    before = ", ".join(f"last_value(v_{a} ignore nulls) over before as b_{a}" for a in MONEY_ATTRIBUTES)
    new = " or ".join(f"(v_{a} is not null and v_{a} is distinct from b_{a})" for a in MONEY_ATTRIBUTES)
    b.con.execute(
        f"""create or replace temp table changes as
            select *, {new} as new from (
                select *, {state}, {before} from changes
                window w as (partition by obj order by at_us, fseq, seq rows between unbounded preceding and current row),
                       before as (partition by obj order by at_us, fseq, seq rows between unbounded preceding and 1 preceding))"""
    )
    # The values in force at each instant (after its last change), and whether a move is at that instant.
    states = ", ".join(f"arg_max_null(s_{a}, (fseq, seq)) as s_{a}" for a in MONEY_ATTRIBUTES)
    b.con.execute(f"create or replace temp table in_force as select obj, at_us, {states} from changes group by obj, at_us")
    b.con.execute(
        f"""create or replace temp table moves as
            select m.*, {', '.join(f'f.s_{a} as m_{a}' for a in MONEY_ATTRIBUTES)}
            from moves m asof left join in_force f on f.obj = m.obj and m.at_us >= f.at_us"""
    )
    # A change between moves: the move before it (the last of those at one instant) and whether it makes a row.
    b.con.execute(
        """create or replace temp table last_moves as
           select obj, at_us, arg_max(k, (fseq, seq)) as k from moves group by obj, at_us"""
    )
    b.con.execute(
        f"""create or replace temp table made as
            with candidates as (
                select obj, at_us, fseq, seq, line, txt from changes c where new
                and not exists (select 1 from last_moves m where m.obj = c.obj and m.at_us = c.at_us)),
            between_moves as (
                select c.*, p.k as move from candidates c asof join last_moves p on p.obj = c.obj and c.at_us > p.at_us),
            makers as (
                select *, row_number() over (partition by obj, at_us order by fseq, seq) as i from between_moves)
            select k.obj, k.move, k.at_us, k.fseq, k.seq, k.line, k.txt,
                   {', '.join(f'f.s_{a} as m_{a}' for a in MONEY_ATTRIBUTES)}
            from makers k join in_force f on f.obj = k.obj and f.at_us = k.at_us where k.i = 1"""
    )
    b.ignore("attribute_value", "select fseq, count(*) from changes c where from_table "
             "and not exists (select 1 from made m where m.fseq = c.fseq and m.seq = c.seq and m.obj = c.obj) group by fseq")
    for name in ("money_in", "money_at", "now", "now_in", "now_at", "now_values", "plain", "upper", "in_force", "last_moves", "changes"):
        b.con.execute(f'drop table "{name}"')


def _money_value(b: _Build, prop: str, value: str) -> str:
    """A money property's value as written in the events: a plain amount, a YYYY-MM-DD close date (HubSpot keeps it as
    a UTC instant: midnight, or epoch milliseconds), an upper-case currency code, the forecast category as written."""
    name = MONEY_PROPERTIES[prop]
    if name == "amount":
        return plain_amount(value)[0] or ""
    if name == "close_date":
        at, _ = _instant(value, timezone.utc)
        return at.astimezone(timezone.utc).strftime("%Y-%m-%d") if at is not None else ""
    return value.upper() if name == "currency" else value


# -- the wide deal export ----------------------------------------------------------------------------


def _wide_table(b: _Build, path: Path, table: RowTable, fseq: int) -> None:
    """One row per deal; each non-empty 'Date entered' cell is one stage entry."""
    what = "HubSpot deal export"
    id_col = _id_column(table, b.options, WIDE_ID_COLUMNS, what)
    key = file_key(path)
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
    reason = "coalesce(" + ", ".join([f"nullif(py_strip({table.col(h)}), '')" for h in reason_cols] + ["null::varchar"]) + ")"
    _pipelines_table(b)
    attrs = ", ".join((_attr_sql(n, f"nullif(py_strip({table.col(h)}), '')") if h else "null::varchar") + f' as "{n}"'
                      for n, h in attr_cols.items())
    source, rows = f'"{table.name}"', f"w{fseq}"
    # The rows: what every event of a row carries (the deal, its reason, its attributes), kept for the events table.
    b.con.execute(f"""create temp table "{rows}" as select _line as line, py_strip({table.col(id_col)}) as deal, {reason} as reason,
                      {attrs} from {source}""")
    b.con.execute(f"""insert into rejects select $key, line, 'missing_lead_id', $detail, t._raw, null, null, null
                      from "{rows}" w join {source} t on t._line = w.line where deal = ''""",
                  {"key": key, "detail": f"{id_col} is empty"})
    if contacts_col:
        b.con.execute(
            f"""insert into assoc
                select deal, contact, 2, {fseq}, line, k from (
                    select line, deal, unnest(parts) as contact, unnest(range(len(parts))) as k
                    from (select _line as line, py_strip({table.col(id_col)}) as deal,
                                 regexp_split_to_array({table.col(contacts_col)}, '[;,]') as parts from {source})
                    where deal <> '')"""
        )
    # The non-empty stage cells of rows with an id: one event each, once its column names a stage and its text a time.
    missing = f'and _line not in (select line from "{rows}" where deal = \'\')' if b.sql(
        f"""select count(*) from "{rows}" where deal = ''""")[0][0] else ""
    cells = " union all ".join(
        f"""select _line as line, {k} as k, py_strip({table.col(h)}) as cell from {source} where {table.col(h)} <> '' {missing}"""
        for k, (h, _, _) in enumerate(stage_columns)
    ) or "select null::bigint as line, null::bigint as k, null::varchar as cell where false"
    labels = [None if f is None else _qualified(b, *f) for _, f, _ in stage_columns]
    b.register("wide_columns", {
        "k": pa.array(range(len(stage_columns)), pa.int64()), "header": pa.array([h for h, _, _ in stage_columns], pa.string()),
        "stage_id": pa.array([s for _, _, s in stage_columns], pa.string()), "label": pa.array(labels, pa.string())})
    _instants(b, f"(select line, k, case when k in (select k from wide_columns where label is not null) then cell end as s "
                 f"from ({cells}) where cell <> '')", "w_at", b.tz)
    b.ignore("no_stage_dates", f"""select $key, (select count(*) from "{rows}" where deal <> '') - count(distinct line) from w_at""",
             {"key": key})
    b.unknown_ids += b.sql("select count(*) from w_at where s is null")[0][0]
    b.con.execute(
        f"""insert into rejects
            select $key, a.line, case when a.s is null then 'unknown_stage_id' else a.bad end,
                   case when a.s is null then h.header || ': stage id "' || h.stage_id || '" is not in the pipeline '
                                              || 'definition: add it there, or map the id under [labels]'
                        else hs_detail(a.bad, h.header, a.s) end, t._raw, null, null, 'deal:' || w.deal
            from w_at a join wide_columns h using (k) join {source} t on t._line = a.line join "{rows}" w on w.line = a.line
            where a.s is null or a.bad is not null""",
        {"key": key},
    )
    b.con.execute(f"""{'insert into wide_events' if b.wide_tables else 'create temp table wide_events as'}
                      select {fseq} as fseq, line, k, txt, at_us from w_at where s is not null and bad is null""")
    b.wide.append((fseq, key, table.name, labels, [x is not None and b.is_outcome(x) for x in labels]))
    b.wide_tables += 1
    for name in ("w_at", "wide_columns"):
        b.con.execute(f'drop table "{name}"')


# -- associations: one journey per buyer -------------------------------------------------------------


def _association_items(doc: object) -> list[dict] | None:
    """The items of an associations batch read (v4 or v3; one page or a list of pages), else None."""
    pages = doc if isinstance(doc, list) else [doc]
    if not pages or not all(isinstance(p, dict) and isinstance(p.get("results"), list) for p in pages):
        return None
    items = [i for p in pages for i in p["results"]]
    if items and all(isinstance(i, dict) and isinstance(i.get("from"), dict) and isinstance(i.get("to"), list) for i in items):
        return items
    return None


def _direction(to: object) -> str | None:
    """'deal' when an association goes from a deal to a contact, 'contact' for the other way, None when it does not say."""
    if not isinstance(to, dict):
        return None
    types = [to.get("type")] + [t.get("typeId", t.get("associationTypeId")) for t in to.get("associationTypes") or [] if isinstance(t, dict)]
    if any(t in DEAL_TO_CONTACT for t in types):
        return "deal"
    if any(t in CONTACT_TO_DEAL for t in types):
        return "contact"
    return None


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
            pair = (start, other) if (_direction(to) or next(iter(directions))) == "deal" else (other, start)
            b.associations.append((*pair, 0, 0, 0, len(b.associations)))
    b.associations_given = True
    b.out.source_rows[file_key(path)] = len(items)
    b.out.ignore(path, "association", len(items))


def _association_table(b: _Build, path: Path, table: RowTable, fseq: int) -> None:
    """A CSV of deal-contact pairs (dealId, contactId): each row associates one deal with one contact, in row order."""
    deal_col, contact_col = _pair_columns(table)
    b.associations_given = True
    key = file_key(path)
    b.con.execute(f"""create or replace temp table pairs as select _line as line, _raw as raw, py_strip({table.col(deal_col)}) as deal,
                      py_strip({table.col(contact_col)}) as contact from "{table.name}" """)
    b.con.execute("insert into rejects select $key, line, 'missing_lead_id', case when deal = '' then $deal else $contact end, raw, "
                  "null, null, null from pairs where deal = '' or contact = ''",
                  {"key": key, "deal": f"{deal_col} is empty", "contact": f"{contact_col} is empty"})
    b.con.execute(f"insert into assoc select deal, contact, 2, {fseq}, line, 0 from pairs where deal <> '' and contact <> ''")
    b.ignore("association", "select $key, count(*) from pairs where deal <> '' and contact <> ''", {"key": key})
    b.con.execute("drop table pairs")


def _join_journeys(b: _Build) -> None:
    """Write each deal's stages under the contact it is associated with, so a buyer is one journey.

    A deal joins the first associated contact (in the order the export lists them) that has stage
    history in this load; a contact takes one deal, its earliest (by first stage entry); the other
    deals, and deals with no associated contact here, stay journeys of their own under `deal:ID`.
    """
    rows = b.associations
    b.register("assoc_json", {"deal": pa.array([r[0] for r in rows], pa.string()), "contact": pa.array([r[1] for r in rows], pa.string()),
                              "phase": pa.array([r[2] for r in rows], pa.int32()), "fseq": pa.array([r[3] for r in rows], pa.int32()),
                              "line": pa.array([r[4] for r in rows], pa.int64()), "k": pa.array([r[5] for r in rows], pa.int64())})
    b.con.execute("insert into assoc select * from assoc_json")
    b.con.execute(
        """create or replace temp table contacts_of as
           select 'deal:' || deal as deal, 'contact:' || contact as contact, min((phase, fseq, line, k)) as listed
           from (select py_strip(deal) as deal, py_strip(contact) as contact, phase, fseq, line, k from assoc)
           where deal <> '' and contact <> '' group by all"""
    )
    wide = " ".join(f"""union all select 'deal:' || w.deal, e.at_us from (select line, min(at_us) as at_us from wide_events
                                                                       where fseq = {fseq} group by line) e
                        join "w{fseq}" w using (line)""" for fseq, *_ in b.wide)
    b.con.execute(f"""create or replace temp table first_at as
                      select lead_id, min(at_us) as at_us from (select obj as lead_id, at_us from moves {wide}) group by lead_id""")
    b.con.execute(
        """create or replace temp table joined as
           with deals as (
               select f.lead_id as deal, f.at_us,
                      (select count(*) from contacts_of c where c.deal = f.lead_id) as listed,
                      (select arg_min(c.contact, c.listed) from contacts_of c semi join first_at j on j.lead_id = c.contact
                       where c.deal = f.lead_id) as found
               from first_at f where f.lead_id like 'deal:%')
           select deal, found as contact, listed,
                  found is not null and row_number() over (partition by found order by at_us, deal) = 1 as joins
           from deals"""
    )
    deals, joined, several, busy = b.sql("select count(*), count(*) filter (where joins), count(*) filter (where listed > 1), "
                                         "count(*) filter (where contact is not null and not joins) from joined")[0]
    contacts = b.sql("select count(*) from first_at where lead_id like 'contact:%'")[0][0]
    if deals and (contacts or b.associations_given):
        _join_notes(b, deals, joined, several, busy)
    b.con.execute("drop table assoc_json")


def _join_notes(b: _Build, deals: int, joined: int, several: int, busy: int) -> None:
    if not b.associations_given:
        b.out.notes.append(
            f"Deals and contacts were given without their associations, so none of the {deals} deal(s) could join its "
            "contact's journey: give the deals with associations=contacts (v3), the associations batch read (v4), or "
            "the export's 'Associated Contact IDs' column, in the same command."
        )
        return
    b.out.notes.append(
        f"{joined} of {deals} deal(s) continue the journey of an associated contact (under its contact: id); "
        f"{deals - joined} have no associated contact with stage history in this load and are journeys of their own (deal: id)."
    )
    if several:
        b.out.notes.append(f"{several} deal(s) are associated with several contacts: each joins the first one listed that "
                           "has stage history in this load.")
    if busy:
        b.out.notes.append(f"{busy} deal(s) are associated with a contact an earlier deal already continues: one journey per "
                           "buyer, so they stay journeys of their own.")


# -- the buyer: first response, buyer role, decision makers ------------------------------------------


def _object_buyer_properties(b: _Build, oid: str, history: dict, props: dict, key: str, fseq: int, position: int,
                             seq: int) -> int:
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
            seq += 1
            raw = json.dumps({"id": oid.split(":", 1)[1], "property": prop, "value": value}, ensure_ascii=False)
            b.buyer_rows.append((fseq, seq, position, oid, prop, "buyer", value, 0, "", False, raw))
    return seq


def _buyer_entries(b: _Build) -> None:
    """Each record's latest value of each buyer property; a first response that is not a time is rejected instead."""
    b.con.execute("create or replace temp table buyer_in as select * exclude (at_us, txt), at_us as entry_at, value as s "
                  "from entries where role = 'buyer'")
    _instants(b, "buyer_in", "buyer_at", b.tz)
    responses = _sql_list(b.options.response_properties)
    b.con.execute(
        f"""create or replace temp table buyer_at as
            select * replace (case when value <> '' and list_contains({responses}, prop) then bad end as bad) from buyer_at"""
    )
    b.con.execute("insert into rejects select f.file, b.line, b.bad, b.prop || ' of ' || b.obj || ': ' || hs_detail(b.bad, b.prop, b.value), "
                  "r.raw, b.fseq, b.seq, b.obj from buyer_at b join files f using (fseq) left join raws r using (fseq, seq) "
                  "where b.bad is not null")
    b.ignore("attribute_value", "select fseq, count(*) from buyer_at where bad is null and from_table group by fseq")
    b.con.execute(
        """create or replace temp table buyer as
           select obj, prop, arg_max(value, (entry_at, fseq, seq)) as value, arg_max_null(txt, (entry_at, fseq, seq)) as txt
           from buyer_at where bad is null group by obj, prop"""
    )
    b.con.execute("drop table buyer_in")
    b.con.execute("drop table buyer_at")


def _buyer_attributes(b: _Build) -> list[str]:
    """Give every event of a journey its buyer's first response and role, and its contacts' decision makers.

    A contact's journey takes them from the contact itself; a deal's journey from its first associated
    contact (in the order the associations list them) that has any of these properties in the load.
    decision_makers counts the journey's contacts (the contact, and the contacts of the deal joined to
    it, or the deal's contacts) whose `hs_buying_role` holds a `decision_roles` value; it is written
    only when one of them has a buying role at all. Returns the columns written (table `buyer_values`).
    """
    buyer: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for obj, prop, value, txt in b.sql("select obj, prop, value, txt from buyer"):
        buyer[obj][prop] = (value, txt)
    if not buyer:
        return []
    joined = b.sql("select j.deal, j.contact from joined j join first_at f on f.lead_id = j.deal where j.joins order by f.at_us, j.deal")
    contacts_of: dict[str, list[str]] = defaultdict(list)
    for deal, contact in b.sql("select deal, contact from contacts_of order by deal, listed"):
        contacts_of[deal].append(contact)
    journeys = [j for (j,) in b.sql("""select distinct coalesce(j.contact, f.lead_id) from first_at f
                                       left join joined j on j.deal = f.lead_id and j.joins""")]
    deals_of: dict[str, list[str]] = defaultdict(list)
    for deal, contact in joined:
        deals_of[contact].append(deal)
    response_name = b.config.first_response_column or "first_response_at"
    deciding = {r.casefold() for r in b.options.decision_roles}
    values: dict[str, dict[str, str]] = {}
    for journey in journeys:
        if journey.startswith("contact:"):
            main = journey if journey in buyer else None
            members = [journey, *(c for d in deals_of[journey] for c in contacts_of.get(d, []))]
        else:
            members = contacts_of.get(journey, [])
            main = next((c for c in members if c in buyer), None)
        found: dict[str, str] = {}
        props = buyer.get(main, {}) if main else {}
        for prop in b.options.response_properties:
            entry = props.get(prop)
            if entry is not None and entry[0]:
                found[response_name] = entry[1]  # checked when read
                break
        title = props.get(TITLE_PROPERTY)
        role = role_of_title(title[0]) if title else None
        if role:
            found["buyer_role"] = role
        roles = [buyer[c][BUYING_ROLE_PROPERTY][0] for c in dict.fromkeys(members)
                 if c in buyer and BUYING_ROLE_PROPERTY in buyer[c] and buyer[c][BUYING_ROLE_PROPERTY][0]]
        # the contacts whose values this journey takes, for the next pull (Translation.ties): should one be no longer
        # associated, a pull that finds only it changed fetches this journey too
        b.out.ties.update((c, journey) for c in dict.fromkeys(members) if c in buyer and c != journey)
        if roles:
            found["decision_makers"] = str(sum(bool({v.strip().casefold() for v in r.split(";")} & deciding) for r in roles))
        values[journey] = found
    names = [n for n in (response_name, "buyer_role", "decision_makers") if any(n in v for v in values.values())]
    b.register("buyer_values", {"journey": pa.array(list(values), pa.string()),
                                **{f"b{i}": pa.array([v.get(n) for v in values.values()], pa.string()) for i, n in enumerate(names)}})
    return names


# -- the events table --------------------------------------------------------------------------------


def _events_table(b: _Build, buyer_columns: list[str]) -> pa.Table:
    """Every event in the order the adapter writes them: the wide exports' (by file, row, column), then each record's
    moves (records by their first stage entry read, moves by instant) followed by its money changes between moves.

    A wide export's events are put together with Arrow: each takes its row's deal, reason, attributes and raw text
    by position, so the row's text is copied once per event and never through a join or a sort."""
    names = list(b.options.attributes)
    union = names + [m for m in MONEY_ATTRIBUTES if m not in names]
    moved = [n for n in names if n not in MONEY_ATTRIBUTES]
    # An attribute is a column once some event has a value for it, in the order the events first give one (a wide
    # event's attributes in their configured order); a money attribute once some move of a record has one, after
    # that record's moves.
    first: dict[str, tuple] = {}

    def consider(name: str, key: tuple) -> None:
        if None not in key and (name not in first or key < first[name]):
            first[name] = key

    parts = []
    for fseq, key, source, labels, outcomes in b.wide:
        events = b.con.sql(f"select line, k, txt from wide_events where fseq = {fseq} order by line, k").to_arrow_table()
        rows = b.con.sql(f"""select line, 'deal:' || deal as lead_id, reason, {', '.join(f'"{n}"' for n in names) or 'null as none'}
                             from "w{fseq}" order by line""").to_arrow_table()
        raws = b.con.sql(f'select _line, _raw from "{source}" order by _line').to_arrow_table()
        lines = events["line"].to_numpy()
        at = pa.array(np.searchsorted(rows["line"].to_numpy(), lines))
        k = events["k"]
        columns = {"lead_id": rows["lead_id"].take(at), "stage": pa.array(labels, pa.string()).take(k), "entered_at": events["txt"],
                   "reason": pc.if_else(pa.array(outcomes, pa.bool_()).take(k), rows["reason"].take(at), None)}
        for i, n in enumerate(union):
            columns[n] = rows[n].take(at) if n in names else pa.nulls(len(events), pa.string())
            if n in names and (position := pc.index(pc.is_valid(columns[n]), True).as_py()) >= 0:
                consider(n, (0, fseq, position, 0, i))
        columns["_file"] = pa.repeat(key, len(events))
        columns["_line"] = events["line"]
        columns["_raw"] = raws["_raw"].take(pa.array(np.searchsorted(raws["_line"].to_numpy(), lines)))
        parts.append(pa.table(columns))
        b.con.execute(f'drop table "w{fseq}"')

    def from_obj(name: str) -> str:
        return f'a."{name}"' if name in moved else "null::varchar"

    def money(name: str, prefix: str) -> str:
        return f"{prefix}.m_{name}" if name in MONEY_ATTRIBUTES else from_obj(name)

    columns_sql = ", ".join(f'"{n}"' for n in union)
    parts.append(b.con.sql(
        f"""select * exclude (g, o2, o3, o4) from (
                select m.obj, m.label, m.txt, m.reason, {', '.join(money(n, 'm') for n in union)}, f.file, m.line, r.raw, m.g, 0, m.k, 0
                from moves m left join obj_attrs a on a.obj = m.obj join files f on f.fseq = m.fseq
                left join raws r on r.fseq = m.fseq and r.seq = m.seq
                union all
                select m.obj, m.label, d.txt, m.reason, {', '.join(money(n, 'd') for n in union)}, f.file, d.line, r.raw,
                       m.g, 1, d.at_us, d.seq + d.fseq * 1000000000000
                from made d join moves m on m.obj = d.obj and m.k = d.move left join obj_attrs a on a.obj = m.obj
                join files f on f.fseq = d.fseq left join raws r on r.fseq = d.fseq and r.seq = d.seq
            ) t(lead_id, stage, entered_at, reason, {columns_sql}, _file, _line, _raw, g, o2, o3, o4)
            order by g, o2, o3, o4"""
    ).to_arrow_table())
    for n in moved:
        consider(n, (1, b.sql(f'select min(m.g) from moves m join obj_attrs a on a.obj = m.obj where a."{n}" is not null')[0][0],
                     0, 0, names.index(n)))
    for j, n in enumerate(MONEY_ATTRIBUTES):
        consider(n, (1, b.sql(f"select min(g) from moves where m_{n} is not null")[0][0], 1, 0, j))
    attrs = sorted(first, key=first.get)
    attrs += [n for n in buyer_columns if n not in attrs]
    schema = events_table([], attrs).schema
    table = pa.concat_tables([t.cast(pa.schema([(f.name, pa.int64() if f.name == "_line" else pa.string()) for f in t.schema]))
                              for t in parts])
    # Deals that continue a contact's journey are written under the contact's id.
    joined = b.con.sql("select deal, contact from joined where joins").to_arrow_table()
    b.out.superseded.update(joined["deal"].to_pylist())
    b.out.ties.update(zip(joined["deal"].to_pylist(), joined["contact"].to_pylist()))
    lead = pc.coalesce(joined["contact"].take(pc.index_in(table["lead_id"], value_set=joined["deal"])), table["lead_id"])
    out = {"lead_id": lead, "stage": table["stage"], "entered_at": table["entered_at"], "reason": table["reason"]}
    if buyer_columns:
        values = b.con.sql("select * from buyer_values").to_arrow_table()
        at = pc.index_in(lead, value_set=values["journey"])
    for n in attrs:
        out[n] = values[f"b{buyer_columns.index(n)}"].take(at) if n in buyer_columns else table[n]
    out.update({"_file": table["_file"], "_line": table["_line"], "_raw": table["_raw"]})
    return pa.table(out).cast(schema)


def _rejections(b: _Build) -> None:
    """The rejections the SQL made, with the raw text of JSON versions written only now."""
    for file, line, reason, detail, raw, fseq, seq, obj in b.sql("select * from rejects order by file, line, fseq, seq"):
        if raw is None and (fseq, seq) in b.lazy_raw:
            raw_id, prop, version = b.lazy_raw[(fseq, seq)]
            raw = json.dumps({"id": raw_id, "property": prop, **version}, ensure_ascii=False)
        b.out.reject(file, line, reason, detail, raw, obj)
