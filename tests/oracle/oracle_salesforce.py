"""The Salesforce adapter's translation as it was written row by row in Python: the reference the
DuckDB translation (etl/sources/salesforce.py) must equal (tests/etl/sources/test_salesforce_sql.py).

Kept as it was when the adapter moved to DuckDB, trimmed to what moved: reading every row with
`read_table`, OpportunityHistory, the report, LeadHistory and the loss reasons, walked row by row.
The options, constants, value readers (ids, timestamps, amounts, report dates) and the steps that
still run in Python (objects by id, conversions, first responses, contact roles, leads rows) are
imported from the adapter.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from funnelboard.core.config import FunnelConfig
from funnelboard.etl.sources.base import (
    ISO,
    MONEY_ATTRIBUTES,
    Translation,
    ValueChange,
    add_money_columns,
    events_table,
    plain_amount,
    read_table,
    string_table,
    value_history,
)
from funnelboard.etl.sources.salesforce import (
    REPORT_CURRENCY_COLUMNS,
    WHAT,
    _attributes,
    _Build,
    _check_columns,
    _contact_roles,
    _conversions,
    _drop_report_footer,
    _export_notes,
    _extras,
    _first_responses,
    _history_row,
    _is_outcome,
    _is_total,
    _is_true,
    _journeys_without_lead_rows,
    _kind,
    _latest_by_id,
    _lead_start,
    _opportunity_rows,
    _report_date,
    _require_history,
    _Row,
    _timestamp_detail,
    canonical_id,
    parse_instant,
    parse_options,
)


@dataclass
class _Change:
    """A candidate stage entry: a history row with a parsed instant."""

    at: datetime
    stage: str
    row: _Row
    text: str  # entered_at as it will be written


def translate(paths: list[Path], config: FunnelConfig, options: dict) -> Translation:
    """Turn Salesforce exports (object CSVs from Data Loader / Bulk API, or the UI report) into events and leads."""
    opts = parse_options(options)
    out = Translation()
    by_kind: dict[str, list[_Row]] = {k: [] for k in WHAT}
    given: dict[str, list[Path]] = {k: [] for k in WHAT}
    for order, path in enumerate(paths):
        table = read_table(path, config, out, what="Salesforce export")
        kind = _kind(table)
        _check_columns(table, kind, opts)
        if kind == "report":
            _drop_report_footer(table, out, max((line for line, _, _ in table.rows), default=0))
        given[kind].append(path)
        columns = {h.strip().lower(): h for h in table.header}
        by_kind[kind].extend(_Row(table, columns, order, line, values, raw) for line, values, raw in table.rows)
    _require_history(given, paths)

    b = _Build(config, opts, out)
    deleted_leads: set[str] = set()
    leads = _latest_by_id(b, by_kind["lead"], "Id", deleted_leads)
    opportunities = _latest_by_id(b, by_kind["opportunity"], "Id")
    owner_of_opportunity = _conversions(b, leads)
    opp_events = _opportunity_history(b, by_kind["opportunity_history"], owner_of_opportunity, opportunities)
    known_opportunities = set(opportunities) | set(owner_of_opportunity) | set(opp_events)
    _first_responses(b, by_kind["task"] + by_kind["event"], leads, known_opportunities, owner_of_opportunity)
    _contact_roles(b, by_kind["contact_role"], known_opportunities, owner_of_opportunity)
    _report(b, by_kind["report"])
    history = by_kind["lead_history"]
    if given["lead"]:
        history = _known_leads_only(b, history, leads, deleted_leads)
    _lead_journeys(b, leads, history)
    _loss_reasons(b, opp_events, _opportunity_rows(b, opportunities, leads, owner_of_opportunity, set(opp_events)))
    _journeys_without_lead_rows(b)

    _export_notes(out, given, opts, config, owner_of_opportunity, opp_events)

    add_money_columns(b.event_attrs, b.events)
    out.events = events_table(b.events, b.event_attrs)
    if b.leads:
        out.leads = string_table(b.leads, ("lead_id", "created_at", *b.lead_attrs, "_file", "_line", "_raw"))
    return out


def _change(b: _Build, row: _Row, stage_column: str, journey: str) -> _Change | None:
    """A history row's stage and instant, or None after rejecting the row (under its journey)."""
    stage = row.get(stage_column)
    text = row.get("CreatedDate")
    at, problem = parse_instant(text, b.config.timezone)
    if problem:
        b.reject(row, problem, _timestamp_detail("CreatedDate", text, problem), journey)
        return None
    if not stage:
        b.reject(row, "missing_stage", f"{stage_column} is empty", journey)
        return None
    return _Change(at, stage, row, text)


def _opportunity_history(b: _Build, rows: list[_Row], owner: dict[str, str], opportunities: dict[str, _Row]) -> dict[str, list[dict]]:
    """Stage entries of each opportunity: its first row, then each row whose StageName differs from the previous;
    a row between them that changed the amount, close date or forecast category repeats the stage with the new values."""
    per_opp: dict[str, list[_Change]] = defaultdict(list)
    seen: set[str] = set()
    for row in rows:
        opp = canonical_id(row.get("OpportunityId"))
        if not opp:
            b.reject(row, "missing_lead_id", "OpportunityId is empty")
            continue
        if not _history_row(b, row, seen):
            continue
        change = _change(b, row, "StageName", owner.get(opp, opp))
        if change:
            per_opp[opp].append(change)
    events: dict[str, list[dict]] = {}
    for opp, changes in per_opp.items():
        previous = None
        stages: list[tuple[datetime, dict]] = []
        money: list[ValueChange] = []
        repeats: list[_Row] = []
        for c in sorted(changes, key=lambda c: (c.at, c.row.sort_key)):
            money.append(ValueChange(c.at, c.text, _history_money(c.row, opportunities.get(opp)), c.row.key, c.row.line, c.row.raw))
            if previous is not None and c.stage == previous:
                repeats.append(c.row)
            else:
                stages.append((c.at, b.event(c.row, owner.get(opp, opp), c.stage, c.text)))
            previous = c.stage
        made, _ = value_history(stages, money)
        b.events.extend(made)
        gave = {(r["_file"], r["_line"]) for r in made}
        for row in repeats:
            if (row.key, row.line) not in gave:
                b.ignore(row, "not_a_stage_change")  # changed only what is not read (probability, expected revenue)
        events[opp] = sorted([e for _, e in stages] + made, key=lambda e: parse_instant(e["entered_at"], "UTC")[0])
    return events


def _history_money(row: _Row, opportunity: _Row | None) -> dict[str, str]:
    """An OpportunityHistory row's amount, close date and forecast category; its currency, else its Opportunity's."""
    amount, code = plain_amount(row.get("Amount"))
    close = row.get("CloseDate")
    currency = row.get("CurrencyIsoCode") or code or (opportunity.get("CurrencyIsoCode") if opportunity else "")
    return {"amount": amount or "", "close_date": close[:10] if ISO.fullmatch(close) else "",
            "currency": currency.upper(), "forecast_category": row.get("ForecastCategory")}


def _report(b: _Build, rows: list[_Row]) -> None:
    """The UI report: each row with From Stage != To Stage (or no From Stage: creation) is a stage entry; a row with
    From Stage = To Stage that changed the amount, close date or forecast category repeats the stage with the new values."""
    fmt = b.options.report_date_format
    per_opp: dict[str, list[tuple[datetime, str, _Row, bool]]] = defaultdict(list)  # (instant, text, row, is a move)
    for row in rows:
        opp = canonical_id(row.get(b.options.report_id_column))
        date_column = next(c for c in b.options.report_date_columns if row.column(c))
        text = row.get(date_column)
        to_stage, from_stage = row.get("To Stage"), row.get("From Stage")
        if not opp and _is_total(row.values.values()):
            b.ignore(row, "report_footer")  # "Grand Totals (9 records)" and subtotal rows of a summary report
        elif not opp:
            b.reject(row, "missing_lead_id", f"{b.options.report_id_column} is empty")
        elif from_stage and from_stage == to_stage:
            entered = _report_date(text, fmt) if text else None
            if entered is None:
                b.ignore(row, "not_a_stage_change")
            else:
                per_opp[opp].append((datetime.fromisoformat(entered), entered, row, False))
        elif not to_stage:
            b.reject(row, "missing_stage", "To Stage is empty", opp)
        elif not text:
            b.reject(row, "missing_timestamp", f"{date_column} is empty", opp)
        else:
            entered = _report_date(text, fmt)
            if entered is None:
                example = date(2026, 3, 31).strftime(fmt)
                b.reject(row, "unparseable_timestamp",
                         f'{date_column} "{text}" does not match report_date_format "{fmt}" (e.g. {example})', opp)
            else:
                per_opp[opp].append((datetime.fromisoformat(entered), entered, row, True))
    for opp, items in per_opp.items():
        stages: list[tuple[datetime, dict]] = []
        money: list[ValueChange] = []
        repeats: list[_Row] = []
        for at, entered, row, move in sorted(items, key=lambda item: (item[0], item[2].sort_key)):
            money.append(ValueChange(at, entered, _report_money(b, row), row.key, row.line, row.raw))
            if move:
                attrs = {k: v for k, v in _attributes(b, row).items() if k not in MONEY_ATTRIBUTES}
                stages.append((at, b.event(row, opp, row.get("To Stage"), entered, **attrs)))
            else:
                repeats.append(row)
        made, _ = value_history(stages, money)
        b.events.extend(made)
        gave = {(r["_file"], r["_line"]) for r in made}
        for row in repeats:
            if (row.key, row.line) not in gave:
                b.ignore(row, "not_a_stage_change")
    if b.unnamed_currency:
        b.out.notes.append(f"{b.unnamed_currency} report amount(s) are written with '$', which names no single currency: "
                           "their currency is left empty; add the Opportunity Currency column to the report to keep it.")


def _report_money(b: _Build, row: _Row) -> dict[str, str]:
    """A report row's amount as a plain number and its currency (a currency column, else the code written with the
    amount: "EUR 52,000.00"), close date (in report_date_format) and forecast category."""
    column = next((c for c in b.options.attributes.get("amount", ("Amount",)) if row.column(c)), "Amount")
    text = row.get(column)
    amount, code = plain_amount(text)
    currency = next((row.get(c) for c in REPORT_CURRENCY_COLUMNS if row.get(c)), "") or code or ""
    if amount and not currency and "$" in text:
        b.unnamed_currency += 1
    close = _report_date(row.get("Close Date"), b.options.report_date_format) if row.get("Close Date") else None
    forecast = next((row.get(c) for c in ("Forecast Category", "ForecastCategory") if row.get(c)), "")
    return {"amount": amount or "", "close_date": (close or "")[:10], "currency": currency.upper(), "forecast_category": forecast}


def _known_leads_only(b: _Build, history: list[_Row], leads: dict[str, _Row], deleted: set[str]) -> list[_Row]:
    """The LeadHistory rows of leads the Lead export has; the others are ignored whole.

    A lead the Lead export lacks was deleted (or merged into another, or filtered out of the
    export): without its Lead row its journey has no creation, no attributes and no conversion,
    so its history would be a journey that starts mid-way. Its rows are counted as `deleted`
    (a Lead row with IsDeleted = true) or `lead_not_in_export`, and a note says how many.
    """
    kept, orphans = [], set()
    for row in history:
        lead_id = canonical_id(row.get("LeadId"))
        if not lead_id or lead_id in leads:
            kept.append(row)
        elif lead_id in deleted:
            b.ignore(row, "deleted")
        else:
            orphans.add(lead_id)
            b.ignore(row, "lead_not_in_export")
    if orphans:
        b.out.notes.append(
            f"{len(orphans)} lead(s) have LeadHistory rows but no row in the Lead export (deleted, merged or filtered out): "
            "without its Lead row a journey has no start, so their history is ignored (lead_not_in_export); export "
            "those leads too to keep it."
        )
    return kept


def _lead_journeys(b: _Build, leads: dict[str, _Row], history: list[_Row]) -> None:
    """Each lead's statuses: the one it was created in, then every Status change of LeadHistory."""
    changes: dict[str, list[_Change]] = defaultdict(list)
    created: dict[str, list[_Row]] = defaultdict(list)
    seen: set[str] = set()
    for row in history:
        lead_id = canonical_id(row.get("LeadId"))
        if not lead_id:
            b.reject(row, "missing_lead_id", "LeadId is empty")
            continue
        if not _history_row(b, row, seen):
            continue
        field_name = row.get("Field").lower()
        if field_name == "status":
            change = _change(b, row, "NewValue", lead_id)
            if change:
                changes[lead_id].append(change)
        elif field_name == "created":
            created[lead_id].append(row)
        else:
            b.ignore(row, "not_a_status_change")

    events: dict[str, list[dict]] = defaultdict(list)
    for lead_id in sorted(set(changes) | set(created) | set(leads)):
        ordered = sorted(changes.get(lead_id, []), key=lambda c: (c.at, c.row.sort_key))
        first_status = ordered[0].row.get("OldValue") if ordered else ""
        lead_row = leads.get(lead_id)
        creation_rows = sorted(created.get(lead_id, []), key=lambda r: r.sort_key)
        if lead_row is not None:
            for row in creation_rows:
                b.ignore(row, "creation_row")  # the Lead's CreatedDate says the same
            start = _lead_start(b, lead_row, lead_id, first_status or lead_row.get("Status"), "Status")
        elif creation_rows and first_status:
            for row in creation_rows[1:]:
                b.ignore(row, "creation_row")
            start = _lead_start(b, creation_rows[0], lead_id, first_status, "OldValue")
        else:
            for row in creation_rows:
                b.ignore(row, "creation_row")
            start = None
        if start is not None:
            events[lead_id].append(start)
        events[lead_id].extend(b.event(c.row, lead_id, c.stage, c.text) for c in ordered)

        if lead_row is not None:
            _, problem = parse_instant(lead_row.get("CreatedDate"), b.config.timezone)
            b.lead(lead_row, lead_id, None if problem else lead_row.get("CreatedDate"),
                   {**_attributes(b, lead_row), **_extras(b, lead_id, lead_row)})
            reason = lead_row.get(b.options.lead_reason_field) if b.options.lead_reason_field else ""
            last = events[lead_id][-1] if events[lead_id] else None
            if reason and last is not None and not _is_true(lead_row.get("IsConverted")) and _is_outcome(b, last["stage"]):
                last["reason"] = reason


def _loss_reasons(b: _Build, opp_events: dict[str, list[dict]], reasons: dict[str, str]) -> None:
    """The loss reason of each opportunity that was not won (its leads row was written by the adapter's _opportunity_rows)."""
    for opp, reason in reasons.items():
        history = opp_events[opp]
        if _is_outcome(b, history[-1]["stage"]):
            for event in reversed(history):  # the loss, and the rows repeating it with later values
                if event["stage"] != history[-1]["stage"]:
                    break
                event["reason"] = reason
