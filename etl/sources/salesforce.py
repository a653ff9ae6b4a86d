"""Salesforce exports -> canonical events: one journey per lead, from its first status to its deal's close.

Reads, in any mix and order (each file's object is told by its header, matched ignoring case,
so Data Loader's upper-case headers and the Bulk API's `Account.Industry` both work):

* `OpportunityHistory` (OpportunityId, StageName, CreatedDate[, IsDeleted, Id]): a row is
  written on any change of amount, stage, probability, close date or forecast category; only
  rows whose StageName differs from the opportunity's previous row are stage entries.
* `Opportunity` (Id[, IsDeleted, CreatedDate, LeadSource, Account.Industry, Owner.Name, Amount,
  a loss-reason field]): attributes, and the loss reason of a closed-lost deal.
* `LeadHistory` (LeadId, CreatedDate, Field, NewValue[, OldValue, IsDeleted, Id]): the rows with
  Field = Status are status changes; the first one's OldValue is the status the lead began in.
* `Lead` (Id, Status, CreatedDate[, IsConverted, ConvertedOpportunityId, IsDeleted, LeadSource,
  Industry, Owner.Name, a disqualification-reason field]): creation, attributes, conversion.
* The Opportunity History report as the UI exports it (Opportunity ID, From Stage, To Stage,
  Last Modified[, Amount, Opportunity Owner, ...]) with dates in the user's locale.
* `Task` (Id, WhoId, CreatedDate[, WhatId, Status, IsClosed, CompletedDateTime, TaskSubtype,
  IsDeleted]) and `Event` (Id, WhoId, StartDateTime[, WhatId, IsDeleted]): the first response of a
  lead is its earliest closed task or meeting (logged against it, or against the contact it was
  converted into, or its opportunity).
* `OpportunityContactRole` (OpportunityId, ContactId, Role[, IsPrimary, Contact.Title, IsDeleted]):
  the buyer role (the primary contact's title, by keywords: etl/sources/roles.py) and the number of
  decision makers (contacts whose Role is one of `decision_roles`) of each opportunity.

The journey id is the Lead Id; a converted lead's opportunity (Lead.ConvertedOpportunityId)
continues that lead's journey, and an opportunity no exported lead was converted into is a
journey of its own under its Opportunity Id. Ids are compared and written in one 18-character
form, so a report's 15-character ids join with the API's 18-character ones, and ids whose
case-checksum suffix differs only in case are one record. Given a Lead export, the LeadHistory of
a lead it lacks (deleted, merged, filtered out) is ignored rather than loaded without a start.

Every export is read into DuckDB (duck_rows.read_rows). LeadHistory, OpportunityHistory and the
report, the bulk of an org's rows, are translated there: their checks, rejections and ignored
counts, the Status changes and stage entries, the money values in force at each move and the rows
of value changes between moves (base.value_history's rule as window functions), and the loss
reasons. Their ids, report dates, amounts and timestamps not in the API's form are each read once
per distinct text by the Python readers below (canonical_id, parse_instant, _report_date,
plain_amount), so they read exactly as one row at a time would. The objects read one row per
record (Lead, Opportunity) and the side tables (Task, Event, OpportunityContactRole) are walked in
Python: one step per record, as are each lead's start event and leads row.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

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
    option_text,
    plain_amount,
    string_table,
)
from funnelboard.etl.sources.duck_rows import RowTable, _sql_text, connect, read_rows
from funnelboard.etl.sources.roles import role_of_title

NAME = "salesforce"
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "channel": ("LeadSource", "Lead Source"),
    "industry": ("Industry", "Account.Industry", "Account: Industry"),
    "owner": ("Owner.Name", "Opportunity Owner", "Lead Owner", "OwnerId"),
    "amount": ("Amount",),
}
DEFAULT_REASON_FIELD = "Loss_Reason__c"
REPORT_DATE_COLUMNS = ("Last Modified", "Last Modified Date", "Edit Date")
REPORT_CURRENCY_COLUMNS = ("Opportunity Currency", "Currency", "Amount Currency")
OPTION_KEYS = ("attributes", "reason_field", "lead_reason_field", "report_date_format", "report_id_column", "report_date_column",
               "first_response_field", "decision_roles")
# OpportunityContactRole.Role values (the standard picklist) that mark a contact who decides the purchase.
DEFAULT_DECISION_ROLES = ("Decision Maker", "Economic Decision Maker", "Economic Buyer")
TITLE_COLUMNS = ("Contact.Title", "Contact: Title", "Title")  # the contact's job title in a contact-role export
# Why a LeadHistory row is ignored (counted in SQL, _lead_history_rows): its lead is deleted or not exported, the row is
# deleted or repeats a history Id, or it changed another field than Status.
LEAD_HISTORY_IGNORED = ("deleted", "lead_not_in_export", "repeated_id", "not_a_status_change")
# Task statuses that close a task when the export has no IsClosed column (the standard picklist's closed value).
CLOSED_STATUSES = ("completed",)

WHAT = {
    "opportunity_history": "OpportunityHistory export",
    "opportunity": "Opportunity export",
    "lead_history": "LeadHistory export",
    "lead": "Lead export",
    "report": "Opportunity History report",
    "task": "Task export",
    "event": "Event export",
    "contact_role": "OpportunityContactRole export",
}
REQUIRED = {
    "opportunity_history": ("OpportunityId", "StageName", "CreatedDate"),
    "opportunity": ("Id",),
    "lead_history": ("LeadId", "CreatedDate", "Field", "NewValue"),
    "lead": ("Id", "Status", "CreatedDate"),
    "task": ("WhoId", "CreatedDate"),
    "event": ("WhoId", "StartDateTime"),
    "contact_role": ("OpportunityId", "ContactId", "Role"),
}

_ID = re.compile(r"[A-Za-z0-9]{15}")
_ID18 = re.compile(r"[A-Za-z0-9]{15}[A-Za-z0-5]{3}")
_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_US_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_TOTAL = re.compile(r"grand\s+totals?\b|sub-?totals?\b|totals?\s*(?:\(|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Options:
    """`[source.salesforce]` of funnel.toml, checked."""

    attributes: dict[str, tuple[str, ...]]
    reason_field: str | None = DEFAULT_REASON_FIELD
    reason_field_set: bool = False
    lead_reason_field: str | None = None
    report_date_format: str = "%m/%d/%Y"
    report_id_column: str = "Opportunity ID"
    report_date_columns: tuple[str, ...] = REPORT_DATE_COLUMNS
    first_response_field: str | None = None
    decision_roles: tuple[str, ...] = DEFAULT_DECISION_ROLES


@dataclass
class _Row:
    """One data row of one export, with where it came from."""

    table: SourceTable
    columns: dict[str, str]  # lower-case name -> the header as written (shared by the file's rows)
    order: int  # the file's position on the command line
    line: int
    values: dict[str, str]
    raw: str

    def column(self, name: str) -> str | None:
        return self.columns.get(name.strip().lower())

    def get(self, name: str) -> str:
        header = self.column(name)
        return self.values.get(header, "").strip() if header else ""

    @property
    def key(self) -> str:
        return file_key(self.table.path)

    @property
    def sort_key(self) -> tuple[int, int]:
        return (self.order, self.line)


@dataclass
class _Build:
    """What translate() collects before writing the two tables."""

    config: FunnelConfig
    options: Options
    out: Translation
    events: list[dict] = field(default_factory=list)
    leads: list[dict] = field(default_factory=list)
    event_attrs: list[str] = field(default_factory=list)
    lead_attrs: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(init=False)
    responses: dict[str, tuple[datetime, str, _Row | None]] = field(default_factory=dict)  # journey -> first response
    roles: dict[str, dict[str, str]] = field(default_factory=dict)  # journey -> buyer_role / decision_makers
    with_lead_row: set[str] = field(default_factory=set)  # journeys given a leads row
    task_rows: list[tuple[str | None, _Row]] = field(default_factory=list)  # closed tasks and their journey (None: no match)
    role_rows: list[tuple[str | None, _Row]] = field(default_factory=list)  # contact roles and their journey
    unnamed_currency: int = 0  # report amounts with a currency symbol that names no single currency ("$")
    report_attrs: list[str] = field(default_factory=list)  # attribute columns of the report's events (made in SQL)
    sql_journeys: set[str] = field(default_factory=set)  # journeys of the events made in SQL
    sql_events: list[tuple[str, list[str]]] = field(default_factory=list)  # tables of events made in SQL, their attributes a0, a1...

    def __post_init__(self) -> None:
        self.labels = self.config.label_map()

    @property
    def response_column(self) -> str:
        """The attribute a first response is written as: [attributes] first_response (default first_response_at)."""
        return self.config.first_response_column or "first_response_at"

    def event(self, row: _Row, lead_id: str, stage: str, entered_at: str, **attrs: str | None) -> dict:
        record = {"lead_id": lead_id, "stage": stage, "entered_at": entered_at, "reason": None, **attrs,
                  "_file": row.key, "_line": row.line, "_raw": row.raw}
        for name in attrs:
            if name not in self.event_attrs:
                self.event_attrs.append(name)
        self.events.append(record)
        return record

    def lead(self, row: _Row, lead_id: str, created_at: str | None, attrs: dict[str, str | None]) -> None:
        self.with_lead_row.add(lead_id)
        for name in attrs:
            if name not in self.lead_attrs:
                self.lead_attrs.append(name)
        self.leads.append({"lead_id": lead_id, "created_at": created_at, **attrs,
                           "_file": row.key, "_line": row.line, "_raw": row.raw})

    def ignore(self, row: _Row, reason: str) -> None:
        self.out.ignore(row.key, reason)

    def reject(self, row: _Row, reason: str, detail: str, journey: str | None = None) -> None:
        self.out.reject(row.key, row.line, reason, detail, row.raw, journey)


def translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation:
    """Turn Salesforce exports (object CSVs from Data Loader / Bulk API, or the UI report) into events and leads."""
    opts = parse_options(options)
    out = Translation()
    con = connect()
    try:
        return _translate(con, paths, config, opts, out)
    finally:
        con.close()


def _translate(con: duckdb.DuckDBPyConnection, paths: list[Path], config: FunnelConfig, opts: Options, out: Translation) -> Translation:
    by_kind: dict[str, list[_Row]] = {k: [] for k in WHAT}
    given: dict[str, list[Path]] = {k: [] for k in WHAT}
    history_tables: list[tuple[int, RowTable]] = []
    report_tables: list[tuple[int, RowTable]] = []
    oh_tables: list[tuple[int, RowTable]] = []
    for order, path in enumerate(paths):
        table = read_rows(con, path, config, out, f"sf_{order}", what="Salesforce export")
        kind = _kind(table)
        _check_columns(table, kind, opts)
        if kind == "report":
            _drop_report_footer(table, out, con.execute(f'select coalesce(max(_line), 0) from "{table.name}"').fetchall()[0][0])
        given[kind].append(path)
        if kind == "report":
            report_tables.append((order, table))
        elif kind == "opportunity_history":
            oh_tables.append((order, table))
        elif kind == "lead_history":
            history_tables.append((order, table))  # read in SQL: most of its rows change fields no journey needs
        else:
            by_kind[kind].extend(_rows(con, table, order))
    _require_history(given, paths)

    b = _Build(config, opts, out)
    deleted_leads: set[str] = set()
    leads = _latest_by_id(b, by_kind["lead"], "Id", deleted_leads)
    opportunities = _latest_by_id(b, by_kind["opportunity"], "Id")
    owner_of_opportunity = _conversions(b, leads)
    out.superseded.update(owner_of_opportunity)  # journeys of their own once, if pulled before the conversion
    opp_events = _opportunity_history_sql(b, con, oh_tables, owner_of_opportunity, opportunities)
    known_opportunities = set(opportunities) | set(owner_of_opportunity) | set(opp_events)
    _first_responses(b, by_kind["task"] + by_kind["event"], leads, known_opportunities, owner_of_opportunity)
    _contact_roles(b, by_kind["contact_role"], known_opportunities, owner_of_opportunity)
    _report_sql(b, con, report_tables)
    _lead_history_rows(b, con, history_tables, leads, deleted_leads, bool(given["lead"]))
    _lead_journeys(b, con, history_tables, leads)
    _loss_reasons(b, con, _opportunity_rows(b, opportunities, leads, owner_of_opportunity, opp_events))
    _journeys_without_lead_rows(b)

    _export_notes(out, given, opts, config, owner_of_opportunity, opp_events)

    out.events = _all_events(b, con)
    if b.leads:
        out.leads = string_table(b.leads, ("lead_id", "created_at", *b.lead_attrs, "_file", "_line", "_raw"))
    return out


def _require_history(given: dict[str, list[Path]], paths: list[Path]) -> None:
    """UserError when no export given holds a stage history."""
    if not any(given[k] for k in ("opportunity_history", "lead_history", "lead", "report")):
        raise UserError(
            f"the Salesforce exports given ({', '.join(str(p) for p in paths)}) hold no stage history: expected an "
            "OpportunityHistory, LeadHistory or Lead export, or the Opportunity History report (Task and "
            "OpportunityContactRole exports add to a journey; they do not make one)."
        )


def _export_notes(out: Translation, given: dict[str, list[Path]], opts: Options, config: FunnelConfig, owner: dict[str, str],
                  with_history: Collection[str]) -> None:
    """The notes on what the exports given cannot tell."""
    if given["opportunity_history"] and not given["lead"]:
        out.notes.append("No Lead export was given: each opportunity is a journey of its own under its Opportunity Id, "
                         "not joined to the lead it was converted from.")
    if given["opportunity_history"] and not given["opportunity"]:
        out.notes.append("No Opportunity export was given: opportunities carry no attributes (lead source, industry, "
                         "owner, amount) and no loss reason.")
    if given["lead"] and not given["lead_history"]:
        out.notes.append("No LeadHistory export was given: each lead appears once, in its current Status at its "
                         "CreatedDate; earlier statuses and when they changed are not in the Lead export.")
    if given["report"]:
        out.notes.append(
            f"The Opportunity History report has dates in the exporting user's locale and time zone and no time of day: "
            f"they were read as {opts.report_date_format} in {config.timezone}, and changes on the same day are "
            "ordered by funnel stage."
        )
    missing = [o for o in owner if o not in with_history]
    if given["opportunity_history"] and missing:
        out.notes.append(f"{len(missing)} converted lead(s) point at opportunities with no OpportunityHistory rows "
                         "in the export: their journeys stop at conversion.")


# -- options and files ---------------------------------------------------------------------------


def parse_options(options: dict) -> Options:
    """Check `[source.salesforce]`; UserError naming the key for anything unknown or malformed."""
    where = f"[source.{NAME}]"
    check_option_keys(options, where, OPTION_KEYS)

    def text(key: str, default: str | None) -> str | None:
        return option_text(options, key, where, default)

    attributes = option_attributes(options, where, DEFAULT_ATTRIBUTES, "a column name or a list of column names")
    fmt = text("report_date_format", "%m/%d/%Y")
    try:
        probe = date(2026, 11, 3)
        ok = datetime.strptime(probe.strftime(fmt), fmt).date() == probe
    except ValueError:
        ok = False
    if not ok:
        raise UserError(f"{where} report_date_format = {fmt!r}; expected a day-month-year format such as '%m/%d/%Y', "
                        "'%d/%m/%Y' or '%Y-%m-%d'.")
    date_column = text("report_date_column", None)
    roles = options.get("decision_roles", list(DEFAULT_DECISION_ROLES))
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not all(isinstance(r, str) and r.strip() for r in roles):
        raise UserError(f"{where} decision_roles = {options['decision_roles']!r}; expected a list of "
                        "OpportunityContactRole Role values such as ['Decision Maker', 'Economic Buyer'].")
    return Options(
        attributes=attributes,
        reason_field=text("reason_field", DEFAULT_REASON_FIELD),
        reason_field_set="reason_field" in options,
        lead_reason_field=text("lead_reason_field", None),
        report_date_format=fmt,
        report_id_column=text("report_id_column", "Opportunity ID"),
        report_date_columns=(date_column,) if date_column else REPORT_DATE_COLUMNS,
        first_response_field=text("first_response_field", None),
        decision_roles=tuple(r.strip() for r in roles),
    )


def _kind(table: SourceTable) -> str:
    """Which Salesforce object (or the report) a file holds, told by its columns."""

    def has(name: str) -> bool:
        return table.column(name) is not None

    if has("To Stage"):
        return "report"
    if has("WhoId"):
        return "event" if has("StartDateTime") else "task"
    if has("OpportunityId") and has("ContactId") and has("Role"):
        return "contact_role"
    if has("LeadId"):
        return "lead_history"
    if has("OpportunityId"):
        if has("Field"):
            raise UserError(
                f"Salesforce export '{table.path}' looks like OpportunityFieldHistory (OpportunityId, Field, NewValue): "
                "expected OpportunityHistory, the stage history object (OpportunityId, StageName, CreatedDate)."
            )
        return "opportunity_history"
    if has("Id") and (has("IsConverted") or has("ConvertedOpportunityId") or (has("Status") and has("Company"))):
        return "lead"
    if has("Id") and has("StageName"):
        return "opportunity"
    raise UserError(
        f"Salesforce export '{table.path}' is not an object this adapter reads: expected the columns of OpportunityHistory "
        "(OpportunityId, StageName, CreatedDate), Opportunity (Id, StageName), LeadHistory (LeadId, Field, NewValue), "
        f"Lead (Id, Status, IsConverted), Task (WhoId, CreatedDate), Event (WhoId, StartDateTime), OpportunityContactRole "
        f"(OpportunityId, ContactId, Role) or the Opportunity History report (To Stage); found {', '.join(table.header)}."
    )


def _check_columns(table: SourceTable, kind: str, opts: Options) -> None:
    what = WHAT[kind]
    if kind == "report":
        table.require([opts.report_id_column, "From Stage", "To Stage"], what)
        if not any(table.column(c) for c in opts.report_date_columns):
            raise UserError(
                f"{what} '{table.path}' has no '{opts.report_date_columns[0]}' column: expected the date of each change "
                f"({' or '.join(opts.report_date_columns)}; set report_date_column under [source.{NAME}]); "
                f"found {', '.join(table.header)}."
            )
        return
    table.require(REQUIRED[kind], what)
    if kind == "opportunity" and opts.reason_field_set and not table.column(opts.reason_field):
        raise UserError(f"{what} '{table.path}' has no '{opts.reason_field}' column, which [source.{NAME}] reason_field "
                        f"names; found {', '.join(table.header)}.")
    if kind == "lead" and opts.lead_reason_field and not table.column(opts.lead_reason_field):
        raise UserError(f"{what} '{table.path}' has no '{opts.lead_reason_field}' column, which [source.{NAME}] "
                        f"lead_reason_field names; found {', '.join(table.header)}.")
    if kind == "lead" and opts.first_response_field and not table.column(opts.first_response_field):
        raise UserError(f"{what} '{table.path}' has no '{opts.first_response_field}' column, which [source.{NAME}] "
                        f"first_response_field names; found {', '.join(table.header)}.")


def _drop_report_footer(table: SourceTable, out: Translation, last: int) -> None:
    """A classic report export ends with a one-field footer (report name, copyright, "Generated By"),
    and a summary report has total rows ("Grand Totals (9 records)"): those lines are not rows of the
    report, so count them as ignored. `last` is the line of the report's last row read."""
    key = file_key(table.path)
    footer = []
    for r in out.rejected:
        if r.file != key or r.reason != "wrong_column_count":
            continue
        fields = _fields(r.raw, table.delimiter)
        if (r.line or 0) > last and len(fields) <= 1 or _is_total(fields):
            footer.append(r)
    for r in footer:
        out.rejected.remove(r)
        out.ignore(key, "report_footer")


def _fields(raw: str | None, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([raw or ""], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration):
        return [raw or "", ""]  # not one field, and no total


def _is_total(values) -> bool:
    """True for a report's total row: its first non-empty cell says Grand Totals, Total or Subtotal."""
    first = next((v.strip() for v in values if v.strip()), "")
    return bool(_TOTAL.match(first))


# -- values --------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 20)  # an org's ids recur across its objects: one canonical form per id
def canonical_id(text: str) -> str:
    """A Salesforce id in one 18-character form, so every spelling of one record is one id.

    A 15-character id gets its case-checksum suffix. The suffix exists to make ids case-insensitive
    (it encodes which of the 15 characters are upper case), so an 18-character id is rebuilt from
    its first 15 characters with an upper-case suffix; when those characters carry no case at all
    (the id was lower- or upper-cased whole, as some tools and databases do), their case is
    restored from the suffix.
    """
    t = text.strip()
    if _ID.fullmatch(t):
        return t + _suffix(t)
    if _ID18.fullmatch(t):
        head, tail = t[:15], t[15:].upper()
        if head.lower() == head or head.upper() == head:
            head = _restore_case(head, tail)
        return head + _suffix(head)
    return t


def _suffix(head: str) -> str:
    return "".join(_ID_SUFFIX[sum(1 << i for i, c in enumerate(head[k:k + 5]) if "A" <= c <= "Z")] for k in (0, 5, 10))


def _restore_case(head: str, suffix: str) -> str:
    """The 15 characters with the case the suffix records (bit i of a suffix character: character i of its five is upper)."""
    out = []
    for k, code in enumerate(suffix):
        bits = _ID_SUFFIX.index(code)
        out += [c.upper() if bits >> i & 1 else c.lower() for i, c in enumerate(head[5 * k:5 * k + 5])]
    return "".join(out)


def parse_instant(text: str, tz: str) -> tuple[datetime | None, str | None]:
    """An export timestamp as an aware UTC datetime, or (None, reason) as the canonical loader would say it."""
    t = text.strip()
    if not t:
        return None, "missing_timestamp"
    m = ISO.fullmatch(t)
    if not m:
        return None, "unparseable_timestamp"
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        moment = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                          int((frac or "0").ljust(6, "0")[:6]))
    except ValueError:
        return None, "impossible_timestamp"
    if off is None:
        return moment.replace(tzinfo=ZoneInfo(tz)).astimezone(timezone.utc), None
    if off in ("Z", "z"):
        return moment.replace(tzinfo=timezone.utc), None
    digits = off[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return (moment - delta if off[0] == "+" else moment + delta).replace(tzinfo=timezone.utc), None


def _timestamp_detail(column: str, text: str, reason: str) -> str:
    if reason == "missing_timestamp":
        return f"{column} is empty"
    if reason == "impossible_timestamp":
        return f'{column} "{text}" is not a real date or time'
    return f'{column} "{text}" is not an ISO-8601 timestamp such as 2026-03-04T15:22:01.000+0000'


def _is_true(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def _number(text: str) -> str:
    """A report amount without currency or thousands separators ("USD 52,000.00" -> "52000.00"); else as written."""
    t = re.sub(r"^[^\d\-]+|[^\d]+$", "", text.strip())
    if _US_NUMBER.fullmatch(t):
        return t.replace(",", "")
    return t if re.fullmatch(r"-?\d+(?:\.\d+)?", t) else text.strip()


def _attributes(b: _Build, row: _Row) -> dict[str, str | None]:
    """The configured attributes found in this row's file: the first candidate column present wins."""
    out: dict[str, str | None] = {}
    for name, candidates in b.options.attributes.items():
        header = next((h for h in (row.column(c) for c in candidates) if h), None)
        if header is None:
            continue
        value = row.values.get(header, "").strip() or None
        if value is not None and name in b.config.numeric_attributes:
            value = _number(value)
        out[name] = value
    return out


def _is_outcome(b: _Build, stage: str) -> bool:
    return b.labels.get(normalise_label(stage)) in b.config.outcomes


# -- objects -------------------------------------------------------------------------------------


def _latest_by_id(b: _Build, rows: list[_Row], id_column: str, deleted: set[str] | None = None) -> dict[str, _Row]:
    """Object rows by their 18-character Id; a deleted record (its Id added to `deleted`) and an earlier
    copy of a repeated Id are ignored."""
    found: dict[str, _Row] = {}
    for row in rows:
        rid = canonical_id(row.get(id_column))
        if not rid:
            b.reject(row, "missing_lead_id", f"{id_column} is empty")
        elif _is_true(row.get("IsDeleted")):
            b.ignore(row, "deleted")
            if deleted is not None:
                deleted.add(rid)
        else:
            if rid in found:
                b.ignore(found[rid], "repeated_id")
            found[rid] = row
    return found


def _conversions(b: _Build, leads: dict[str, _Row]) -> dict[str, str]:
    """Opportunity id -> the lead whose journey it continues (the earliest lead converted into it)."""
    by_opp: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for lead_id, row in leads.items():
        opp = canonical_id(row.get("ConvertedOpportunityId"))
        if opp and _is_true(row.get("IsConverted") or "true"):
            by_opp[opp].append((row.get("ConvertedDate"), row.get("CreatedDate"), lead_id))
    shared = sum(len(v) - 1 for v in by_opp.values())
    if shared:
        b.out.notes.append(f"{shared} lead(s) were converted into an opportunity an earlier lead was also converted into: "
                           "the opportunity's stages continue the earliest lead's journey only.")
    return {opp: min(candidates)[2] for opp, candidates in by_opp.items()}


def _history_row(b: _Build, row: _Row, seen: set[str]) -> bool:
    """Common checks of a history row: deleted or repeated rows are ignored (False)."""
    if _is_true(row.get("IsDeleted")):
        b.ignore(row, "deleted")
        return False
    rid = row.get("Id")  # history record ids are only compared with each other
    if rid:
        if rid in seen:
            b.ignore(row, "repeated_id")
            return False
        seen.add(rid)
    return True


def _report_sql(b: _Build, con: duckdb.DuckDBPyConnection, tables: list[tuple[int, RowTable]]) -> None:
    """The UI report, in DuckDB: each row with From Stage != To Stage (or no From Stage: creation) is a stage entry; a row
    with From Stage = To Stage that changed the amount, close date or forecast category repeats the stage with the new
    values (value_history's rule as window functions). The dates, amounts, ids and currencies a report repeats are each
    read once in Python (_report_date, plain_amount, canonical_id), so they are read exactly as the row-by-row steps read
    them. Rows without an Opportunity ID (rejected, or total rows) are left to Python."""
    if not tables:
        return
    opts, fmt = b.options, b.options.report_date_format
    names = [n for n in opts.attributes if n not in MONEY_ATTRIBUTES]
    parts, attrs_of = [], {}
    for order, table in tables:
        columns = {h.strip().lower(): table.col(h) for h in table.header}

        def get(name: str) -> str:
            column = columns.get(name.strip().lower())
            return f"py_strip(coalesce({column}, ''))" if column else "''"

        date_column = next(c for c in opts.report_date_columns if c.strip().lower() in columns)
        amount_column = next((c for c in opts.attributes.get("amount", ("Amount",)) if c.strip().lower() in columns), "Amount")
        found = {n: next((columns[c.strip().lower()] for c in opts.attributes[n] if c.strip().lower() in columns), None) for n in names}
        attrs_of[order] = [n for n in names if found[n]]
        picks = ", ".join(f"nullif(py_strip(coalesce({found[n]}, '')), '') as a{i}" if found[n] else f"null::varchar as a{i}"
                          for i, n in enumerate(names))
        currency = ", ".join(f"nullif({get(c)}, '')" for c in REPORT_CURRENCY_COLUMNS)
        parts.append(
            f"""select {order} as o, _line, _raw, {_sql_text(file_key(table.path))} as file, {get(opts.report_id_column)} as opp_text,
                       {get(date_column)} as date_text, {_sql_text(date_column)} as date_column, {get('To Stage')} as to_stage,
                       {get('From Stage')} as from_stage, {get(amount_column)} as amount_text,
                       coalesce({currency}, '') as currency_text, {get('Close Date')} as close_text,
                       coalesce(nullif({get('Forecast Category')}, ''), {get('ForecastCategory')}) as forecast
                       {', ' if picks else ''}{picks}
                from "{table.name}" where {get(opts.report_id_column)} <> ''"""
        )
    con.execute(f"create or replace temp table sf_report as {' union all '.join(parts)}")
    for order, table in tables:  # rows without an id: a total row, or rejected
        for row in _rows(con, table, order, f"{_strip_sql(table, opts.report_id_column)} = ''"):
            if _is_total(row.values.values()):
                b.ignore(row, "report_footer")
            else:
                b.reject(row, "missing_lead_id", f"{opts.report_id_column} is empty")

    epoch = datetime(1970, 1, 1)

    def day(text: str) -> tuple:
        entered = _report_date(text, fmt)
        return entered, None if entered is None else (datetime.fromisoformat(entered) - epoch) // timedelta(microseconds=1)

    _lookup(con, "sf_r_ids", "select distinct opp_text from sf_report", lambda t: (canonical_id(t),), {"id": pa.string()})
    _lookup(con, "sf_r_days", "select distinct date_text from sf_report union select distinct close_text from sf_report", day,
           {"entered": pa.string(), "at_us": pa.int64()})
    _lookup(con, "sf_r_amounts", "select distinct amount_text from sf_report", plain_amount, {"amount": pa.string(), "code": pa.string()})
    attr_sql = []
    for i, n in enumerate(names):
        if n in b.config.numeric_attributes:
            _lookup(con, f"sf_r_a{i}", f"select distinct a{i} from sf_report where a{i} is not null", lambda t: (_number(t),), {"v": pa.string()})
            attr_sql.append(f"(select v from sf_r_a{i} x where x.t = r.a{i}) as a{i}")
        else:
            attr_sql.append(f"r.a{i}")
    example = date(2026, 3, 31).strftime(fmt)
    con.execute(
        f"""create or replace temp table sf_report_rows as
            select r.o, r._line, r._raw, r.file, i.id as opp, r.date_text, r.date_column, r.to_stage, d.entered, d.at_us,
                   case when r.from_stage <> '' and r.from_stage = r.to_stage
                        then case when r.date_text <> '' and d.entered is not null then 'repeat' else 'not_a_stage_change' end
                        when r.to_stage = '' then 'missing_stage'
                        when r.date_text = '' then 'missing_timestamp'
                        when d.entered is null then 'unparseable_timestamp'
                        else 'move' end as kind,
                   coalesce(m.amount, '') as amount, m.code, r.amount_text, r.currency_text,
                   coalesce(left(c.entered, 10), '') as close_date, r.forecast as forecast_category
                   {', ' if attr_sql else ''}{', '.join(attr_sql)}
            from sf_report r join sf_r_ids i on i.t = r.opp_text left join sf_r_days d on d.t = r.date_text
                 left join sf_r_days c on c.t = r.close_text and r.close_text <> '' left join sf_r_amounts m on m.t = r.amount_text"""
    )
    for (reason,) in [("missing_stage",), ("missing_timestamp",), ("unparseable_timestamp",)]:
        detail = {"missing_stage": "'To Stage is empty'", "missing_timestamp": "date_column || ' is empty'",
                  "unparseable_timestamp": f"""date_column || ' "' || date_text || '" does not match report_date_format '
                                               || {_sql_text(f'"{fmt}" (e.g. {example})')}"""}[reason]
        for file, line, text, raw, opp in con.execute(
                f"select file, _line, {detail}, _raw, opp from sf_report_rows where kind = '{reason}' order by o, _line").fetchall():
            b.out.reject(file, line, reason, text, raw, opp)
    _lookup(con, "sf_r_currencies", "select distinct coalesce(nullif(currency_text, ''), code, '') from sf_report_rows where kind in ('move', 'repeat')",
           lambda t: (t.upper(),), {"v": pa.string()})
    b.unnamed_currency += con.execute(
        """select count(*) from sf_report_rows where kind in ('move', 'repeat') and amount <> ''
               and coalesce(nullif(currency_text, ''), code, '') = '' and strpos(amount_text, '$') > 0""").fetchall()[0][0]
    _value_history_sql(con, """select c.* exclude (to_stage, currency_text, code, currency_key), opp as lead_id, to_stage as stage,
                                      u.v as currency, at_us as sort_us
                               from (select *, coalesce(nullif(currency_text, ''), code, '') as currency_key
                                     from sf_report_rows where kind in ('move', 'repeat')) c
                               join sf_r_currencies u on u.t = c.currency_key""", "sf_report_events", len(names))
    for file, count in con.execute(
            """select file, count(*) from sf_report_rows r where kind = 'not_a_stage_change'
                   or kind = 'repeat' and not exists (select 1 from sf_report_events e where e._file = r.file and e._line = r._line)
               group by file""").fetchall():
        b.out.ignore(file, "not_a_stage_change", count)
    # The attribute columns in the order the row-by-row steps first met them: the file of each opportunity's first move,
    # the opportunities in the order of their first row.
    first_files = [o for (o,) in con.execute(
        """with firsts as (select opp, min(o * 1099511627776 + _line) as k from sf_report_rows where kind in ('move', 'repeat') group by opp),
                moves as (select lead_id as opp, arg_min(o, seq) as o from sf_report_events where not made group by lead_id)
           select m.o from moves m join firsts f using (opp) group by m.o order by min(f.k)""").fetchall()]
    for order in first_files:
        for n in attrs_of[order]:
            if n not in b.report_attrs:
                b.report_attrs.append(n)
    b.sql_journeys.update(i for (i,) in con.execute("select distinct lead_id from sf_report_events").fetchall())
    b.sql_events.append(("sf_report_events", names))
    if b.unnamed_currency:
        b.out.notes.append(f"{b.unnamed_currency} report amount(s) are written with '$', which names no single currency: "
                           "their currency is left empty; add the Opportunity Currency column to the report to keep it.")


def _opportunity_history_sql(b: _Build, con: duckdb.DuckDBPyConnection, tables: list[tuple[int, RowTable]], owner: dict[str, str],
                             opportunities: dict[str, _Row]) -> set[str]:
    """Stage entries of each opportunity, in DuckDB: its first row, then each row whose StageName differs from the
    previous; a row between them that changed the amount, close date or forecast category repeats the stage with the new
    values. Returns the opportunities with history. Ids, timestamps, amounts and close dates are read once per distinct
    text by the Python functions (canonical_id, parse_instant, plain_amount), so they read as the row-by-row steps read them."""
    if not tables:
        return set()
    parts = []
    for order, table in tables:
        def get(name: str, table: RowTable = table) -> str:
            return _strip_sql(table, name)

        parts.append(
            f"""select {order} as o, _line, _raw, {_sql_text(file_key(table.path))} as file, {get('OpportunityId')} as opp_text,
                       {get('IsDeleted')} as is_deleted, {get('Id')} as history_id, {get('CreatedDate')} as entered,
                       {get('StageName')} as stage, {get('Amount')} as amount_text, {get('CloseDate')} as close_text,
                       {get('CurrencyIsoCode')} as currency_text, {get('ForecastCategory')} as forecast_category
                from "{table.name}\"""")
    con.execute(f"create or replace temp table sf_oh as {' union all '.join(parts)}")
    _lookup(con, "sf_oh_ids", "select distinct opp_text from sf_oh", lambda t: (canonical_id(t),), {"id": pa.string()})
    con.execute(
        """create or replace temp table sf_oh_rows as
           with judged as (
               select h.*, i.id as opp, case when i.id = '' then 'missing_lead_id'
                                             when lower(is_deleted) in ('true', '1', 'yes') then 'deleted' else 'check' end as verdict
               from sf_oh h join sf_oh_ids i on i.t = h.opp_text)
           select * exclude (verdict), case when verdict = 'check' and history_id <> ''
                                                 and row_number() over (partition by verdict, history_id order by o, _line) > 1
                                            then 'repeated_id' else verdict end as verdict
           from judged"""
    )
    _instants(con, "sf_oh_times", "select distinct entered from sf_oh_rows where verdict = 'check'", b.config.timezone)
    _lookup(con, "sf_oh_amounts", "select distinct amount_text from sf_oh_rows where verdict = 'check'", plain_amount,
            {"amount": pa.string(), "code": pa.string()})
    _lookup(con, "sf_oh_closes", "select distinct close_text from sf_oh_rows where verdict = 'check'",
            lambda t: (t[:10] if ISO.fullmatch(t) else "",), {"v": pa.string()})
    con.register("sf_oh_owner", pa.table({"opp": pa.array(list(owner), pa.string()), "lead_id": pa.array(list(owner.values()), pa.string())}))
    currencies = {opp: row.get("CurrencyIsoCode") for opp, row in opportunities.items()}
    con.register("sf_oh_opps", pa.table({"opp": pa.array(list(currencies), pa.string()), "currency": pa.array(list(currencies.values()), pa.string())}))
    con.execute(
        """create or replace temp table sf_oh_changes as
           select r.o, r._line, r._raw, r.file, r.opp, coalesce(w.lead_id, r.opp) as lead_id, r.entered, r.stage, t.at_us, t.sort_us,
                  case when r.verdict <> 'check' then r.verdict when t.problem is not null then t.problem
                       when r.stage = '' then 'missing_stage' else 'change' end as verdict, t.detail,
                  coalesce(m.amount, '') as amount, c.v as close_date,
                  coalesce(nullif(r.currency_text, ''), m.code, x.currency, '') as currency_key, r.forecast_category
           from sf_oh_rows r left join sf_oh_times t on t.t = r.entered and r.verdict = 'check'
                left join sf_oh_amounts m on m.t = r.amount_text and r.verdict = 'check'
                left join sf_oh_closes c on c.t = r.close_text and r.verdict = 'check'
                left join sf_oh_owner w on w.opp = r.opp left join sf_oh_opps x on x.opp = r.opp"""
    )
    for file, line, verdict, detail, raw, journey in con.execute(
            """select file, _line, verdict, case verdict when 'missing_lead_id' then 'OpportunityId is empty'
                                                         when 'missing_stage' then 'StageName is empty' else detail end, _raw,
                      nullif(lead_id, '')
               from sf_oh_changes where verdict not in ('change', 'deleted', 'repeated_id') order by o, _line""").fetchall():
        b.out.reject(file, line, verdict, detail, raw, journey)
    for file, verdict, count in con.execute(
            "select file, verdict, count(*) from sf_oh_changes where verdict in ('deleted', 'repeated_id') group by all").fetchall():
        b.out.ignore(file, verdict, count)
    _lookup(con, "sf_oh_currencies", "select distinct currency_key from sf_oh_changes where verdict = 'change'", lambda t: (t.upper(),),
            {"v": pa.string()})
    _value_history_sql(con, """select c.* exclude (verdict, detail, currency_key),
                                      case when lag(stage) over (partition by opp order by at_us, o, _line) = stage then 'repeat'
                                           else 'move' end as kind, u.v as currency
                               from sf_oh_changes c join sf_oh_currencies u on u.t = c.currency_key where verdict = 'change'""",
                       "sf_opp_events", 0)
    for file, count in con.execute(
            """select file, count(*) from (select file, _line from sf_oh_changes where verdict = 'change' except all
                                           select _file, _line from sf_opp_events) group by file""").fetchall():
        b.out.ignore(file, "not_a_stage_change", count)  # changed only what is not read (probability, expected revenue)
    b.sql_journeys.update(i for (i,) in con.execute("select distinct lead_id from sf_opp_events").fetchall())
    b.sql_events.append(("sf_opp_events", []))
    return {o for (o,) in con.execute("select distinct opp from sf_opp_events").fetchall()}


def _loss_reasons(b: _Build, con: duckdb.DuckDBPyConnection, reasons: dict[str, str]) -> None:
    """The loss reason of each closed-lost opportunity on its last event and the rows repeating that stage just before it
    (in the order of their entered_at read in UTC, moves before value changes, as the row-by-row steps sorted them)."""
    if not reasons or not any(name == "sf_opp_events" for name, _ in b.sql_events):
        return
    con.register("sf_reasons", pa.table({"opp": pa.array(list(reasons), pa.string()), "reason": pa.array(list(reasons.values()), pa.string())}))
    _lookup(con, "sf_outcomes", "select distinct stage from sf_opp_events", lambda t: (_is_outcome(b, t),), {"v": pa.bool_()})
    con.execute(
        """update sf_opp_events e set reason = x.reason from (
               select opp, seq, reason from (
                   select *, min(case when stage <> last_stage then pos end) over (partition by opp) as cut from (
                       select e.opp, e.seq, e.stage, r.reason,
                              row_number() over (partition by e.opp order by sort_us desc, made desc, seq desc) as pos,
                              first_value(e.stage) over (partition by e.opp order by sort_us desc, made desc, seq desc) as last_stage
                       from sf_opp_events e join sf_reasons r on r.opp = e.opp))
               where pos < coalesce(cut, 9223372036854775807)
                 and last_stage in (select t from sf_outcomes where v)) x
           where e.opp = x.opp and e.seq = x.seq"""
    )


# The form the Salesforce API writes (2026-03-04T15:22:01.000+0000) with a year after 999: read in SQL; other texts by
# parse_instant. strptime checks the day of the month and the ranges the pattern does not.
_API_INSTANT = r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}(Z|\+0000|\+00:00)"


def _instants(con: duckdb.DuckDBPyConnection, name: str, texts: str, tz: str) -> None:
    """Register table `name`: each distinct timestamp text `texts` gives (column t), its instant in UTC microseconds
    (at_us) as parse_instant(t, tz) reads it, the instant of the text read in UTC (sort_us), and the loader's reason and
    detail when it is no instant (problem, detail)."""
    con.execute(
        f"""create or replace temp table "{name}" as
            select t, at_us, at_us as sort_us, null::varchar as problem, null::varchar as detail from (
                select t, case when regexp_full_match(t, '{_API_INSTANT}') then epoch_us(try_strptime(left(t, 23), '%Y-%m-%dT%H:%M:%S.%g'))
                          end as at_us
                from ({texts}) x(t))"""
    )
    utc = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def instant(text: str) -> tuple:
        at, problem = parse_instant(text, tz)
        if problem:
            return None, None, problem, _timestamp_detail("CreatedDate", text, problem)
        return (at - utc) // timedelta(microseconds=1), (parse_instant(text, "UTC")[0] - utc) // timedelta(microseconds=1), None, None

    _lookup(con, "sf_rare_times", f'select t from "{name}" where at_us is null', instant,
            {"at_us": pa.int64(), "sort_us": pa.int64(), "problem": pa.string(), "detail": pa.string()})
    con.execute(f'delete from "{name}" where at_us is null')
    con.execute(f'insert into "{name}" select * from sf_rare_times')
    con.unregister("sf_rare_times")


def _lookup(con: duckdb.DuckDBPyConnection, name: str, sql: str, fn, types: dict[str, pa.DataType]) -> None:
    """Register table `name`: each distinct text `sql` gives (column t) and the values fn gives for it (columns `types`)."""
    texts = [t for (t,) in con.execute(sql).fetchall()]
    values = [fn(t) for t in texts]
    con.register(name, pa.table({"t": pa.array(texts, pa.string()),
                                 **{k: pa.array([v[i] for v in values], typ) for i, (k, typ) in enumerate(types.items())}}))


def _value_history_sql(con: duckdb.DuckDBPyConnection, changes: str, target: str, attributes: int) -> None:
    """Table `target`: value_history of each deal in SQL. `changes` gives one row per change: opp, lead_id, stage, entered,
    at_us (the instant), sort_us, o, _line, _raw, file, kind ('move': a stage entry, 'repeat': the same stage), the money
    columns and a0... (the attributes a move's event carries). The target has the move events with the values in force at
    their instant, and a row per change between moves (at an instant without a move, after the first move) that changed a
    value, with the current move's stage and attributes; `made` tells them apart, `seq` is the order of a deal's changes."""
    money = MONEY_ATTRIBUTES
    running = ", ".join(f"last_value(nullif({k}, '') ignore nulls) over w as run_{k}" for k in money)
    lagged = ", ".join(f"lag(run_{k}) over w as prev_{k}" for k in money)
    final = ", ".join(f"last_value(run_{k}) over instant as fin_{k}" for k in money)
    changed = " or ".join(f"({k} <> '' and {k} is distinct from prev_{k})" for k in money)
    attrs = "".join(f"a{i}, " for i in range(attributes))
    con.execute(
        f"""create or replace temp table "{target}" as
            with changes as (select *, row_number() over (partition by opp order by at_us, o, _line) as seq from ({changes})),
            ran as (select *, {running} from changes window w as (partition by opp order by seq rows between unbounded preceding and current row)),
            lagged as (select *, {lagged} from ran window w as (partition by opp order by seq)),
            valued as (
                select *, {final}, bool_or(kind = 'move') over (partition by opp, at_us) as at_move,
                       min(o * 1099511627776 + _line) over (partition by opp) as first_k,
                       last_value(case when kind = 'move' then seq end ignore nulls) over w as current_move,
                       ({changed}) as changed
                from lagged
                window instant as (partition by opp, at_us order by seq rows between unbounded preceding and unbounded following),
                       w as (partition by opp order by seq rows between unbounded preceding and current row)),
            made as (
                select v.*, row_number() over (partition by v.opp, v.at_us order by v.seq) as nth
                from valued v where v.kind = 'repeat' and not v.at_move and v.current_move is not null and v.changed)
            select lead_id, opp, stage, entered as entered_at, null::varchar as reason, {attrs}
                   {', '.join(f'fin_{k} as {k}' for k in money)}, file as _file, _line, _raw, o, seq, false as made, first_k, sort_us
            from valued where kind = 'move'
            union all
            select m.lead_id, m.opp, s.stage, m.entered, null, {''.join(f's.a{i}, ' for i in range(attributes))}
                   {', '.join(f'm.fin_{k}' for k in money)}, m.file, m._line, m._raw, m.o, m.seq, true, m.first_k, m.sort_us
            from made m join valued s on s.opp = m.opp and s.seq = m.current_move where m.nth = 1"""
    )


@lru_cache(maxsize=1 << 16)  # a report has few distinct dates: parse each once
def _report_date(text: str, fmt: str) -> str | None:
    """A report date (optionally with a time of day) as ISO text without offset, or None."""
    for pattern, iso in ((f"{fmt} %I:%M %p", "%Y-%m-%dT%H:%M"), (f"{fmt} %H:%M", "%Y-%m-%dT%H:%M"), (fmt, "%Y-%m-%d")):
        try:
            return datetime.strptime(text.strip(), pattern).strftime(iso)
        except ValueError:
            continue
    return None


def _lead_history_rows(b: _Build, con: duckdb.DuckDBPyConnection, tables: list[tuple[int, RowTable]], leads: dict[str, _Row],
                       deleted: set[str], given_leads: bool) -> None:
    """Table sf_verdicts: each LeadHistory row and what it is (a `status` change, a `created` row, or why it is not
    read: those are counted as ignored or rejected here).

    Given a Lead export, the rows of a lead it lacks are ignored whole: that lead was deleted (or merged into another, or
    filtered out of the export), and without its Lead row its journey has no creation, no attributes and no conversion,
    so its history would be a journey that starts mid-way. Its rows are counted as `deleted` (a Lead row with IsDeleted =
    true) or `lead_not_in_export`, and a note says how many. Then, as for every history object, a deleted row and a
    repeated history Id are ignored, and rows of fields other than Status are `not_a_status_change`.
    """
    if not tables:
        con.execute("""create or replace temp table sf_verdicts (o integer, _line bigint, _raw varchar, file varchar, id varchar,
                       entered varchar, new_value varchar, old_value varchar, verdict varchar)""")
        return
    parts = []
    for order, table in tables:
        columns = {h.strip().lower(): table.col(h) for h in table.header}

        def get(name: str) -> str:
            column = columns.get(name.lower())
            return f"py_strip(coalesce({column}, ''))" if column else "''"

        parts.append(f"""select {order} as o, _line, _raw, {_sql_text(file_key(table.path))} as file, {get('LeadId')} as lead_text,
                                {get('IsDeleted')} as is_deleted, {get('Id')} as history_id, {get('Field')} as field,
                                {get('CreatedDate')} as entered, {get('NewValue')} as new_value, {get('OldValue')} as old_value
                         from "{table.name}" """)
    con.execute(f"create or replace temp table sf_history as {' union all '.join(parts)}")
    texts = [t for (t,) in con.execute("select distinct lead_text from sf_history").fetchall()]
    con.register("sf_ids", pa.table({"t": pa.array(texts, pa.string()), "id": pa.array([canonical_id(t) for t in texts], pa.string())}))
    con.register("sf_kept", pa.table({"id": pa.array(list(leads), pa.string())}))
    con.register("sf_deleted", pa.table({"id": pa.array(sorted(deleted), pa.string())}))
    con.execute(
        f"""create or replace temp table sf_verdicts as
            with ided as (select h.*, i.id from sf_history h join sf_ids i on i.t = h.lead_text),
            judged as (
                select o, _line, _raw, file, id, history_id, field, entered, new_value, old_value,
                       case when id = '' then 'missing_lead_id'
                            when {given_leads} and id not in (select id from sf_kept)
                            then case when id in (select id from sf_deleted) then 'deleted' else 'lead_not_in_export' end
                            when lower(is_deleted) in ('true', '1', 'yes') then 'deleted'
                            else 'check' end as verdict
                from ided)
            select o, _line, _raw, file, id, entered, new_value, old_value, case
                when verdict <> 'check' then verdict
                when history_id <> '' and row_number() over (partition by verdict, history_id order by o, _line) > 1 then 'repeated_id'
                when strlen(field) <> length(field) then 'not_a_status_change'  -- str.lower() of no other text gives these
                when lower(field) = 'status' then 'status' when lower(field) = 'created' then 'created'
                else 'not_a_status_change' end as verdict
            from judged"""
    )
    for unregister in ("sf_ids", "sf_kept", "sf_deleted"):
        con.unregister(unregister)
    key_of = {order: file_key(table.path) for order, table in tables}
    for order, verdict, count in con.execute(
            f"""select o, verdict, count(*) from sf_verdicts where verdict in ({', '.join(map(_sql_text, LEAD_HISTORY_IGNORED))})
                group by all order by all""").fetchall():
        b.out.ignore(key_of[order], verdict, count)
    orphans = con.execute("select count(distinct id) from sf_verdicts where verdict = 'lead_not_in_export'").fetchall()[0][0]
    if orphans:
        b.out.notes.append(
            f"{orphans} lead(s) have LeadHistory rows but no row in the Lead export (deleted, merged or filtered out): "
            "without its Lead row a journey has no start, so their history is ignored (lead_not_in_export); export "
            "those leads too to keep it."
        )
    for file, line, raw in con.execute("select file, _line, _raw from sf_verdicts where verdict = 'missing_lead_id'").fetchall():
        b.out.reject(file, line, "missing_lead_id", "LeadId is empty", raw)


def _strip_sql(table: RowTable, name: str) -> str:
    """SQL of a column's stripped text (row.get(name)): '' when the file has no such column."""
    columns = {h.strip().lower(): table.col(h) for h in table.header}
    column = columns.get(name.strip().lower())
    return f"py_strip(coalesce({column}, ''))" if column else "''"


def _rows(con: duckdb.DuckDBPyConnection, table: RowTable, order: int, where: str = "true") -> list[_Row]:
    """A file's rows (those `where` keeps) in line order, as the Python steps walk them."""
    columns = {h.strip().lower(): h for h in table.header}
    picks = ", ".join(table.col(h) for h in table.header)
    header = table.header
    return [_Row(table, columns, order, line, dict(zip(header, values)), raw)
            for line, raw, *values in con.execute(f'select _line, _raw, {picks} from "{table.name}" where {where} order by _line').fetchall()]


def _lead_journeys(b: _Build, con: duckdb.DuckDBPyConnection, tables: list[tuple[int, RowTable]], leads: dict[str, _Row]) -> None:
    """Each lead's statuses: the one it was created in, then every Status change of LeadHistory (sf_verdicts). The changes
    are events made in DuckDB (their timestamps read once per distinct text by parse_instant); each lead's start and
    its leads row are made here, one per lead."""
    _instants(con, "sf_lh_times", "select distinct entered from sf_verdicts where verdict = 'status'", b.config.timezone)
    con.execute(
        """create or replace temp table sf_lh_status as
           select v.*, t.at_us, case when t.problem is not null then t.problem when v.new_value = '' then 'missing_stage' end as problem,
                  coalesce(t.detail, 'NewValue is empty') as detail
           from sf_verdicts v join sf_lh_times t on t.t = v.entered where v.verdict = 'status'"""
    )
    for file, line, problem, detail, raw, lead in con.execute(
            "select file, _line, problem, detail, _raw, id from sf_lh_status where problem is not null order by o, _line").fetchall():
        b.out.reject(file, line, problem, detail, raw, lead)
    con.execute(
        """create or replace temp table sf_lead_events as
           select id as lead_id, id as opp, new_value as stage, entered as entered_at, null::varchar as reason,
                  null::varchar as amount, null::varchar as close_date, null::varchar as currency, null::varchar as forecast_category,
                  file as _file, _line, _raw, o, row_number() over (partition by id order by at_us, o, _line) as seq, false as made,
                  0 as first_k, old_value
           from sf_lh_status where problem is null"""
    )
    firsts = dict(con.execute("select lead_id, arg_min(old_value, seq) from sf_lead_events group by lead_id").fetchall())
    lasts = dict(con.execute("select lead_id, arg_max(stage, seq) from sf_lead_events group by lead_id").fetchall())
    con.register("sf_lh_kept", pa.table({"id": pa.array(list(leads), pa.string())}))
    con.register("sf_lh_firsts", pa.table({"id": pa.array(list(firsts), pa.string()), "s": pa.array(list(firsts.values()), pa.string())}))
    con.execute(
        """create or replace temp table sf_lh_created as
           select c.*, c.k = 1 and c.id not in (select id from sf_lh_kept) and coalesce(f.s, '') <> '' as used
           from (select *, row_number() over (partition by id order by o, _line) as k from sf_verdicts where verdict = 'created') c
                left join sf_lh_firsts f on f.id = c.id"""
    )
    for file, count in con.execute("select file, count(*) from sf_lh_created where not used group by file").fetchall():
        b.out.ignore(file, "creation_row", count)  # the Lead's CreatedDate says the same, or there is no status to start in
    creation = {}
    for order, table in tables:
        for row in _rows(con, table, order, f"_line in (select _line from sf_lh_created where used and o = {order})"):
            creation[canonical_id(row.get("LeadId"))] = row
    reasons = {}
    for lead_id in sorted(set(creation) | set(leads)):
        first_status = firsts.get(lead_id) or ""
        lead_row = leads.get(lead_id)
        if lead_row is not None:
            start = _lead_start(b, lead_row, lead_id, first_status or lead_row.get("Status"), "Status")
        else:
            start = _lead_start(b, creation[lead_id], lead_id, first_status, "OldValue")
        if lead_row is not None:
            _, problem = parse_instant(lead_row.get("CreatedDate"), b.config.timezone)
            b.lead(lead_row, lead_id, None if problem else lead_row.get("CreatedDate"),
                   {**_attributes(b, lead_row), **_extras(b, lead_id, lead_row)})
            reason = lead_row.get(b.options.lead_reason_field) if b.options.lead_reason_field else ""
            if reason and not _is_true(lead_row.get("IsConverted")):
                if lead_id in lasts:
                    if _is_outcome(b, lasts[lead_id]):
                        reasons[lead_id] = reason
                elif start is not None and _is_outcome(b, start["stage"]):
                    start["reason"] = reason
    if reasons:
        con.register("sf_lh_reasons", pa.table({"id": pa.array(list(reasons), pa.string()), "r": pa.array(list(reasons.values()), pa.string())}))
        con.execute("""update sf_lead_events e set reason = r.r from sf_lh_reasons r
                       where e.lead_id = r.id and e.seq = (select max(seq) from sf_lead_events x where x.lead_id = r.id)""")
    b.sql_journeys.update(i for (i,) in con.execute("select distinct lead_id from sf_lead_events").fetchall())
    b.sql_events.append(("sf_lead_events", []))


def _lead_start(b: _Build, row: _Row, lead_id: str, stage: str, stage_column: str) -> dict | None:
    """The event of a lead's creation in its first status, or None after rejecting it."""
    text = row.get("CreatedDate")
    _, problem = parse_instant(text, b.config.timezone)
    if problem:
        b.reject(row, problem, _timestamp_detail("CreatedDate", text, problem), lead_id)
        return None
    if not stage:
        b.reject(row, "missing_stage", f"{stage_column} is empty", lead_id)
        return None
    return b.event(row, lead_id, stage, text)


def _opportunity_rows(
    b: _Build,
    opportunities: dict[str, _Row],
    leads: dict[str, _Row],
    owner: dict[str, str],
    opp_events: set[str],
) -> dict[str, str]:
    """One leads row per Opportunity: its own journey's attributes, or the gaps of the lead it was converted from.
    Returns the loss reason of each opportunity with history that was not won (_loss_reasons writes it)."""
    reasons = {}
    lead_values = {lead_id: _attributes(b, row) for lead_id, row in leads.items()}
    for opp, row in opportunities.items():
        attrs = _attributes(b, row)
        lead_id = owner.get(opp)
        if lead_id is None:
            _, problem = parse_instant(row.get("CreatedDate"), b.config.timezone)
            created = None if problem else row.get("CreatedDate")
            b.lead(row, opp, created, {**attrs, **_extras(b, opp, None)})
        else:
            have = lead_values.get(lead_id, {})
            b.lead(row, lead_id, None, {k: (None if have.get(k) else v) for k, v in attrs.items()})
        reason = row.get(b.options.reason_field) if b.options.reason_field else ""
        if reason and opp in opp_events and not _is_true(row.get("IsWon")):
            reasons[opp] = reason
    return reasons


# -- first responses and buyer roles ---------------------------------------------------------------


def _first_responses(b: _Build, rows: list[_Row], leads: dict[str, _Row], opportunities: set[str], owner: dict[str, str]) -> None:
    """Each journey's first response: the earliest of its Lead's `first_response_field`, its closed tasks and its events.

    An activity belongs to the lead its WhoId names, or to the lead converted into the contact it names
    (conversion moves a lead's activities to its contact: Lead.ConvertedContactId), else to the journey
    of the opportunity its WhatId names. A task's instant is CompletedDateTime, else CreatedDate; an
    event's (a meeting) its StartDateTime.
    """
    tz = b.config.timezone

    def keep(journey: str, at: datetime, text: str, row: _Row) -> None:
        if journey not in b.responses or (at, row.sort_key) < (b.responses[journey][0], b.responses[journey][2].sort_key):
            b.responses[journey] = (at, text, row)

    column = b.options.first_response_field
    for lead_id, row in leads.items() if column else ():
        text = row.get(column)
        if text:
            at, problem = parse_instant(text, tz)
            if problem:
                b.reject(row, problem, _timestamp_detail(row.column(column), text, problem) + "; the lead loads without it", lead_id)
            else:
                keep(lead_id, at, text, row)
    converted = {canonical_id(r.get("ConvertedContactId")): lead_id for lead_id, r in leads.items() if r.get("ConvertedContactId")}
    seen: set[str] = set()
    for row in rows:
        if not _history_row(b, row, seen):
            continue
        if not _task_closed(row):
            b.ignore(row, "open_task")
            continue
        who, what = canonical_id(row.get("WhoId")), canonical_id(row.get("WhatId"))
        journey = who if who in leads else converted.get(who)
        if journey is None and what in opportunities:
            journey = owner.get(what, what)
        if journey is None and not leads and who.startswith("00Q"):  # a Lead id (key prefix 00Q): no Lead export to ask
            journey = who
        column_done = ("StartDateTime" if row.column("StartDateTime") else
                       "CompletedDateTime" if row.get("CompletedDateTime") else "CreatedDate")
        text = row.get(column_done)
        at, problem = parse_instant(text, tz)
        if problem:
            b.reject(row, problem, _timestamp_detail(column_done, text, problem), journey)
            continue
        b.task_rows.append((journey, row))
        if journey is not None:
            keep(journey, at, text, row)
    # the activity that is a journey's first response, for the next pull: should it move to another lead or
    # opportunity, the journey it leaves is fetched again too and takes its next response (Translation.ties)
    activities = {(row.key, row.line) for row in rows}
    b.out.ties.update((canonical_id(row.get("Id")), journey) for journey, (_, _, row) in b.responses.items()
                      if (row.key, row.line) in activities and row.get("Id"))


def _task_closed(row: _Row) -> bool:
    """A task that was done: IsClosed, else a closed Status ("Completed"); an export with neither has only done tasks."""
    if row.column("IsClosed"):
        return _is_true(row.get("IsClosed"))
    if row.column("Status"):
        return row.get("Status").lower() in CLOSED_STATUSES
    return True


def _contact_roles(b: _Build, rows: list[_Row], opportunities: set[str], owner: dict[str, str]) -> None:
    """Each opportunity's buyer role (its primary contact's Contact.Title by keywords, else the first role row's) and
    its decision makers (distinct contacts whose Role is one of decision_roles)."""
    per_opp: dict[str, list[_Row]] = defaultdict(list)
    seen: set[str] = set()
    for row in rows:
        if not _history_row(b, row, seen):
            continue
        opp = canonical_id(row.get("OpportunityId"))
        if opp in opportunities:
            per_opp[opp].append(row)
        else:
            b.role_rows.append((None, row))
    deciding = {r.casefold() for r in b.options.decision_roles}
    untitled = 0
    for opp, opp_rows in per_opp.items():
        journey = owner.get(opp, opp)
        makers = {canonical_id(r.get("ContactId")) or f"row {r.line}" for r in opp_rows if r.get("Role").casefold() in deciding}
        main = next((r for r in opp_rows if _is_true(r.get("IsPrimary"))), opp_rows[0])
        attrs = {"decision_makers": str(len(makers))}
        title = next((c for c in TITLE_COLUMNS if main.column(c)), None)
        untitled += title is None
        role = role_of_title(main.get(title)) if title else None
        if role:
            attrs["buyer_role"] = role
        b.roles[journey] = attrs
        b.role_rows.extend((journey, r) for r in opp_rows)
        # the roles this journey's values come from, for the next pull (Translation.ties): a role deleted in Salesforce
        # is seen only in the delete log, by its id, and brings this journey again (etl/pull/salesforce.py)
        b.out.ties.update((canonical_id(r.get("Id")), journey) for r in opp_rows if r.get("Id"))
    if untitled:
        b.out.notes.append(f"The OpportunityContactRole export has no Contact.Title column, so the buyer role of {untitled} "
                           "opportunity(ies) is unknown (their decision makers are counted): add Contact.Title to the export.")


def _all_events(b: _Build, con: duckdb.DuckDBPyConnection) -> pa.Table:
    """The events made in Python and in SQL as one table: attribute columns in the order they were met, then each money
    column some event has a value of."""
    columns = [*b.report_attrs, *(a for a in b.event_attrs if a not in b.report_attrs)]
    sql_money = set()
    for name, _ in b.sql_events:
        has_value = ", ".join(f"bool_or({k} <> '')" for k in MONEY_ATTRIBUTES)
        found = con.execute(f"select {has_value} from {name}").fetchall()[0]
        sql_money |= {k for k, has in zip(MONEY_ATTRIBUTES, found) if has}
    for k in MONEY_ATTRIBUTES:
        if k not in columns and (k in sql_money or any(e.get(k) for e in b.events)):
            columns.append(k)
    table = events_table(b.events, columns)
    for name, attrs in b.sql_events:
        picks = [f"a{attrs.index(c)} as \"{c}\"" if c in attrs else (f"{c}" if c in MONEY_ATTRIBUTES else f"null::varchar as \"{c}\"")
                 for c in columns]
        made = con.sql(f"""select lead_id, stage, entered_at, reason{''.join(', ' + p for p in picks)}, _file, _line, _raw
                           from {name} order by first_k, made, seq""").to_arrow_table()  # each deal's moves, then its changes
        table = pa.concat_tables([table, made.cast(table.schema)])
    return table


def _extras(b: _Build, journey: str, row: _Row | None) -> dict[str, str]:
    """A journey's first response and buyer roles, for its leads row: a Lead's own Title first, then its deal's roles."""
    out: dict[str, str] = {}
    if journey in b.responses:
        out[b.response_column] = b.responses[journey][1]
    out.update(b.roles.get(journey, {}))
    if row is not None and row.column("Title") and "buyer_role" not in b.options.attributes:
        role = role_of_title(row.get("Title"))
        if role:
            out["buyer_role"] = role
    return out


def _journeys_without_lead_rows(b: _Build) -> None:
    """Write first responses and roles of journeys no Lead or Opportunity row carries from their own task or role row;
    count every other task and role row as ignored (read into another row, open, or of no journey in the load)."""
    journeys = {e["lead_id"] for e in b.events} | b.sql_journeys
    bare = journeys - b.with_lead_row
    used: set[int] = set()
    for journey, (_, text, row) in sorted(b.responses.items()):
        if journey in bare:
            used.add(id(row))
            b.lead(row, journey, None, {b.response_column: text})
    firsts = {}
    for journey, row in b.role_rows:
        firsts.setdefault(journey, row)
    for journey, attrs in sorted(b.roles.items()):
        if journey in bare:
            row = next((r for j, r in b.role_rows if j == journey and _is_true(r.get("IsPrimary"))), firsts[journey])
            used.add(id(row))
            b.lead(row, journey, None, attrs)
    unmatched = 0
    for journey, row in b.task_rows:
        if id(row) in used:
            continue
        matched = journey is not None and journey in journeys
        unmatched += not matched
        b.ignore(row, "activity" if matched else "unmatched_activity")
    for journey, row in b.role_rows:
        if id(row) in used:
            continue
        matched = journey is not None and journey in journeys
        unmatched += not matched
        b.ignore(row, "contact_role" if matched else "unmatched_contact_role")
    if unmatched:
        b.out.notes.append(f"{unmatched} Task or OpportunityContactRole row(s) belong to no journey in this load (a WhoId, "
                           "WhatId or OpportunityId of a record not exported, or a contact no Lead's ConvertedContactId names): "
                           "they give no first response or role (unmatched_activity, unmatched_contact_role).")
