"""`--source salesforce`: Data Loader / Bulk API object exports and the UI report -> one journey per lead.

Fixtures (tests/fixtures/salesforce/) are hand-written in the exports' own shapes; the journeys
they hold, in canonical stages under examples/salesforce/funnel.toml:

  lead A  Brightline  lead, lead, mql, sql, opportunity (converted) -> opp X: opportunity, proposal, proposal, won
  lead B  Northwind   lead, lead, mql, disqualified ("No budget")
  lead C  Contoso     lead, mql, sql, opportunity (converted) -> opp Y: opportunity, [Security Review: unmapped],
                      proposal, lost ("Chose offshore competitor")
  lead D  Fabrikam    lead, lead, mql (still open)
  lead E  Tailspin    lead (created, never worked)
  opp Z   Adatum      no lead: opportunity, [Proposal row with an Excel-mangled date], proposal
  opp W   deleted     (both history rows IsDeleted = true)
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.salesforce import (
    LEAD_HISTORY_IGNORED,
    OPTION_KEYS,
    canonical_id,
    parse_instant,
    parse_options,
    translate,
)
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows
from tests.etl.sources import NAME_NO_RECORD

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "salesforce"
EXAMPLE_CONFIG = ROOT / "examples" / "salesforce" / "funnel.toml"
OBJECTS = ("OpportunityHistory.csv", "Opportunity.csv", "Lead.csv", "LeadHistory.csv")

A, B, C, D, E = (f"00Q5g00000Brt{k}EAR" for k in ("1A", "2K", "3P", "4T", "5X"))
Z = "0065g00000Dq7KlAAJ"


@pytest.fixture
def sf_config():
    return load_config(EXAMPLE_CONFIG)


def sf(name: str) -> Path:
    return FIXTURES / name


def events_of(t, *names: str) -> list[tuple]:
    """(lead_id, stage, entered_at, reason, file name, line) of each event, in journey order."""
    out = [(r["lead_id"], r["stage"], r["entered_at"], r["reason"], Path(r["_file"]).name, r["_line"]) for r in t.events.to_pylist()]
    return sorted(out, key=lambda e: (e[0], parse_instant(e[2], "UTC")[0], e[5]))


# --------------------------------------------------------------------------- translate(): exact output


OBJECT_EVENTS = [
    (A, "Open - Not Contacted", "2026-03-02T09:14:00.000Z", None, "Lead.csv", 2),
    (A, "Working - Contacted", "2026-03-03T15:02:00.000+0000", None, "LeadHistory.csv", 4),
    (A, "MQL", "2026-03-05T10:00:00.000+0000", None, "LeadHistory.csv", 7),
    (A, "SQL", "2026-03-09T11:30:00.000+0000", None, "LeadHistory.csv", 13),
    (A, "Closed - Converted", "2026-03-12T10:00:00.000+0000", None, "LeadHistory.csv", 16),
    (A, "Prospecting", "2026-03-12T10:00:05.000+0000", None, "OpportunityHistory.csv", 3),
    (A, "Prospecting", "2026-03-14T16:40:12.000+0000", None, "OpportunityHistory.csv", 4),  # amount 48000 -> 52000
    (A, "Proposal/Price Quote", "2026-03-20T11:05:44.000+0000", None, "OpportunityHistory.csv", 9),
    (A, "Proposal/Price Quote", "2026-03-25T09:12:30.000+0000", None, "OpportunityHistory.csv", 11),  # close date pulled in
    (A, "Negotiation/Review", "2026-04-02T14:20:00.000+0000", None, "OpportunityHistory.csv", 15),
    (A, "Closed Won", "2026-04-15T17:45:09.000+0000", None, "OpportunityHistory.csv", 17),
    (B, "Open - Not Contacted", "2026-03-03T13:30:00.000Z", None, "Lead.csv", 3),
    (B, "Working - Contacted", "2026-03-04T09:40:00.000+0000", None, "LeadHistory.csv", 6),
    (B, "MQL", "2026-03-06T14:30:00.000+0000", None, "LeadHistory.csv", 10),
    (B, "Closed - Not Converted", "2026-03-10T10:15:00.000+0000", "No budget", "LeadHistory.csv", 14),
    (C, "Open - Not Contacted", "2026-03-04T10:05:00.000Z", None, "Lead.csv", 4),
    (C, "MQL", "2026-03-06T16:45:00.000+0000", None, "LeadHistory.csv", 11),
    (C, "SQL", "2026-03-16T13:00:00.000+0000", None, "LeadHistory.csv", 18),
    (C, "Closed - Converted", "2026-03-18T15:30:00.000+0000", None, "LeadHistory.csv", 19),
    (C, "Prospecting", "2026-03-18T15:30:02.000+0000", None, "OpportunityHistory.csv", 6),
    (C, "Prospecting", "2026-03-19T10:02:11.000+0000", None, "OpportunityHistory.csv", 7),  # amount 30000 -> 36000
    (C, "Security Review", "2026-03-25T13:15:00.000+0000", None, "OpportunityHistory.csv", 12),
    (C, "Proposal/Price Quote", "2026-04-01T09:30:00.000+0000", None, "OpportunityHistory.csv", 14),
    (C, "Closed Lost", "2026-04-20T12:00:00.000+0000", "Chose offshore competitor", "OpportunityHistory.csv", 18),
    (D, "Open - Not Contacted", "2026-03-05T11:20:00.000Z", None, "Lead.csv", 5),
    (D, "Working - Contacted", "2026-03-07T09:00:00.000+0000", None, "LeadHistory.csv", 12),
    (D, "MQL", "2026-03-10T15:00:00.000+0000", None, "LeadHistory.csv", 15),
    (E, "Open - Not Contacted", "2026-04-01T08:00:00.000Z", None, "Lead.csv", 6),
    (Z, "Qualification", "2026-03-20T08:45:00.000+0000", None, "OpportunityHistory.csv", 8),
    (Z, "Negotiation/Review", "2026-04-08T16:00:00.000+0000", None, "OpportunityHistory.csv", 16),
]

REPORT = "OpportunityHistoryReport.csv"
R1, R2, R3 = (canonical_id(i) for i in ("0065g00000Eb1Aa", "0065g00000Eb2Bb", "0065g00000Eb3Cc"))
REPORT_EVENTS = [
    (R1, "Prospecting", "2026-03-02", None, REPORT, 2),
    (R1, "Prospecting", "2026-03-04", None, REPORT, 3),  # amount 48,000.00 -> 52,000.00
    (R1, "Proposal/Price Quote", "2026-03-10", None, REPORT, 4),
    (R1, "Closed Won", "2026-03-25", None, REPORT, 5),
    (R2, "Prospecting", "2026-03-05", None, REPORT, 6),
    (R2, "Closed Lost", "2026-03-20", None, REPORT, 7),
    (R3, "Qualification", "2026-03-09", None, REPORT, 8),
    (R3, "Legal Review", "2026-03-15", None, REPORT, 9),
]


@pytest.mark.parametrize(
    "files, expected, rejected, ignored",
    [
        pytest.param(
            OBJECTS,
            OBJECT_EVENTS,
            [("OpportunityHistory.csv", 13, "unparseable_timestamp", 'CreatedDate "3/27/2026 14:05"')],
            {
                "OpportunityHistory.csv": {"deleted": 2, "not_a_stage_change": 1},
                "LeadHistory.csv": {"creation_row": 5, "not_a_status_change": 3},
            },
            id="objects",
        ),
        pytest.param(
            (REPORT,),
            REPORT_EVENTS,
            [(REPORT, 10, "unparseable_timestamp", 'Last Modified "31/03/2026" does not match report_date_format "%m/%d/%Y"')],
            {REPORT: {"report_footer": 6}},
            id="report",
        ),
        pytest.param(
            ("OpportunityHistory.csv",),
            [(Z if e[0] == Z else {A: "0065g00000Dq7AbAAJ", C: "0065g00000Dq7FgAAJ"}[e[0]], *e[1:3], None, *e[4:])
             for e in OBJECT_EVENTS if e[4] == "OpportunityHistory.csv"],
            [("OpportunityHistory.csv", 13, "unparseable_timestamp", 'CreatedDate "3/27/2026 14:05"')],
            {"OpportunityHistory.csv": {"deleted": 2, "not_a_stage_change": 1}},
            id="history-alone-keeps-opportunity-ids",
        ),
        pytest.param(
            ("LeadHistory.csv",),
            # Without Lead.csv a lead begins at its `created` row, in the first Status change's OldValue;
            # E (a created row, no Status change) has no known status, so no event.
            [(lead, "Open - Not Contacted", when, None, "LeadHistory.csv", line)
             for lead, when, line in ((A, "2026-03-02T09:14:00.000+0000", 2), (B, "2026-03-03T13:30:00.000+0000", 3),
                                      (C, "2026-03-04T10:05:00.000+0000", 5), (D, "2026-03-05T11:20:00.000+0000", 8))]
            + [(*e[:3], None, *e[4:]) for e in OBJECT_EVENTS if e[4] == "LeadHistory.csv"],
            [],
            {"LeadHistory.csv": {"creation_row": 1, "not_a_status_change": 3}},
            id="lead-history-alone-starts-at-the-created-row",
        ),
    ],
)
def test_translate_gives_exactly_these_events(sf_config, files, expected, rejected, ignored):
    t = translate([sf(f) for f in files], sf_config, sf_config.sources["salesforce"])
    assert events_of(t) == sorted(expected, key=lambda e: (e[0], parse_instant(e[2], "UTC")[0], e[5]))
    assert [(Path(r.file).name, r.line, r.reason) for r in t.rejected] == [r[:3] for r in rejected]
    for r, (_, _, _, detail) in zip(t.rejected, rejected):
        assert detail in r.detail
        assert r.raw and r.raw.startswith('"')
        # a rejected row names the journey it belongs to (a pull replaces its quarantined rows), unless it has no id
        assert (r.lead_id is None) == (r.reason in NAME_NO_RECORD), r
    assert {Path(k).name: v for k, v in t.ignored.items()} == ignored
    # Every data row of every file is used (gave a record) or ignored, never both.
    for f in files:
        key = str(sf(f))
        used = {r["_line"] for r in t.events.to_pylist() if r["_file"] == key}
        used |= {r["_line"] for r in (t.leads.to_pylist() if t.leads is not None else []) if r["_file"] == key}
        used |= {r.line for r in t.rejected if r.file == key}
        assert t.source_rows[key] == len(used) + sum(t.ignored.get(key, {}).values())


def test_leads_rows_carry_attributes_lead_values_first(sf_config):
    t = translate([sf(f) for f in OBJECTS], sf_config, sf_config.sources["salesforce"])
    got = {(r["lead_id"], Path(r["_file"]).name): (r["created_at"], r["channel"], r["industry"], r["owner"], r["amount"])
           for r in t.leads.to_pylist()}
    assert got == {
        (A, "Lead.csv"): ("2026-03-02T09:14:00.000Z", "Web", "Healthcare", "Priya Raman", None),
        (B, "Lead.csv"): ("2026-03-03T13:30:00.000Z", "Partner Referral", "Transportation", "Priya Raman", None),
        (C, "Lead.csv"): ("2026-03-04T10:05:00.000Z", "Web", "Retail", "Priya Raman", None),
        (D, "Lead.csv"): ("2026-03-05T11:20:00.000Z", "Trade Show", "Insurance", "Priya Raman", None),
        (E, "Lead.csv"): ("2026-04-01T08:00:00.000Z", "Web", "Travel", "Priya Raman", None),
        # A converted lead's opportunity fills only what the lead lacks (the amount).
        (A, "Opportunity.csv"): (None, None, None, None, "52000"),
        (C, "Opportunity.csv"): (None, None, None, None, "36000"),
        (Z, "Opportunity.csv"): ("2026-03-20T08:45:00.000+0000", "Partner Referral", "Pharmaceuticals", "Marcus Oyelaran", "120000"),
    }


def test_report_amounts_lose_currency_formatting(sf_config):
    t = translate([sf(REPORT)], sf_config, {})
    assert [(r["owner"], r["amount"]) for r in t.events.to_pylist()][:2] == [("Dana Whitfield", "48000.00"), ("Dana Whitfield", "52000.00")]


# --------------------------------------------------------------------------- money history


def money_of(t, file: str = "") -> list[tuple]:
    """(lead_id, stage, entered_at, amount, close_date, currency, forecast_category, line) of each event (of files named
    `file`), in journey order."""
    out = [(r["lead_id"], r["stage"], r["entered_at"], r.get("amount"), r.get("close_date"), r.get("currency"),
            r.get("forecast_category"), r["_line"]) for r in t.events.to_pylist() if r["_file"].endswith(file)]
    return sorted(out, key=lambda e: (e[0], parse_instant(e[2], "UTC")[0], e[7]))


def test_opportunity_history_gives_each_move_its_values_and_a_row_per_value_change(sf_config):
    t = translate([sf(f) for f in OBJECTS], sf_config, sf_config.sources["salesforce"])
    assert money_of(t, "/OpportunityHistory.csv") == [
        # Z's probability-only row (line 10) is no value change; its currency is its Opportunity's CurrencyIsoCode.
        (Z, "Qualification", "2026-03-20T08:45:00.000+0000", "120000", "2026-05-15", "EUR", "Pipeline", 8),
        (Z, "Negotiation/Review", "2026-04-08T16:00:00.000+0000", "120000", "2026-05-15", "EUR", "Forecast", 16),
        (A, "Prospecting", "2026-03-12T10:00:05.000+0000", "48000", "2026-05-29", "USD", "Pipeline", 3),
        (A, "Prospecting", "2026-03-14T16:40:12.000+0000", "52000", "2026-05-29", "USD", "Pipeline", 4),  # amount up
        (A, "Proposal/Price Quote", "2026-03-20T11:05:44.000+0000", "52000", "2026-05-29", "USD", "BestCase", 9),
        (A, "Proposal/Price Quote", "2026-03-25T09:12:30.000+0000", "52000", "2026-04-30", "USD", "BestCase", 11),  # pulled in
        (A, "Negotiation/Review", "2026-04-02T14:20:00.000+0000", "52000", "2026-04-30", "USD", "Forecast", 15),
        (A, "Closed Won", "2026-04-15T17:45:09.000+0000", "52000", "2026-04-15", "USD", "Closed", 17),
        (C, "Prospecting", "2026-03-18T15:30:02.000+0000", "30000", "2026-06-30", "USD", "Pipeline", 6),
        (C, "Prospecting", "2026-03-19T10:02:11.000+0000", "36000", "2026-06-30", "USD", "Pipeline", 7),
        (C, "Security Review", "2026-03-25T13:15:00.000+0000", "36000", "2026-06-30", "USD", "Pipeline", 12),
        (C, "Proposal/Price Quote", "2026-04-01T09:30:00.000+0000", "36000", "2026-06-30", "USD", "BestCase", 14),
        (C, "Closed Lost", "2026-04-20T12:00:00.000+0000", "36000", "2026-04-20", "USD", "Omitted", 18),
    ]
    # Lead statuses are no deal: they carry no money.
    assert {e[3:7] for f in ("/Lead.csv", "/LeadHistory.csv") for e in money_of(t, f)} == {(None, None, None, None)}


def test_a_value_change_at_the_instant_of_a_move_folds_into_the_move(sf_config, tmp_path):
    history = tmp_path / "OpportunityHistory.csv"
    history.write_text(
        "Id,OpportunityId,CreatedDate,StageName,Amount,CloseDate,ForecastCategory\n"
        "h1,0065g00000Dq7KlAAJ,2026-03-20T08:45:00.000+0000,Qualification,100000,2026-05-15,Pipeline\n"
        "h2,0065g00000Dq7KlAAJ,2026-04-08T16:00:00.000+0000,Qualification,120000,2026-05-15,Pipeline\n"
        "h3,0065g00000Dq7KlAAJ,2026-04-08T16:00:00.000+0000,Negotiation/Review,120000,2026-06-30,Commit\n"
        "h4,0065g00000Dq7KlAAJ,2026-04-09T16:00:00.000+0000,Negotiation/Review,120000,2026-06-30,Commit\n"
    )
    t = translate([history], sf_config, {})
    assert money_of(t) == [
        (Z, "Qualification", "2026-03-20T08:45:00.000+0000", "100000", "2026-05-15", None, "Pipeline", 2),
        (Z, "Negotiation/Review", "2026-04-08T16:00:00.000+0000", "120000", "2026-06-30", None, "Commit", 4),
    ]
    assert t.ignored == {str(history): {"not_a_stage_change": 2}}  # h2 folded into h3; h4 changed nothing read


CURRENCIES = "OpportunityHistoryReport_currencies.csv"
R4, R5, R6 = (canonical_id(i) for i in ("0065g00000Eb4Dd", "0065g00000Eb5Ee", "0065g00000Eb6Ff"))


def test_report_amounts_keep_their_own_currency(sf_config):
    t = translate([sf(CURRENCIES)], sf_config, sf_config.sources["salesforce"])
    assert money_of(t) == [
        (R4, "Prospecting", "2026-03-02", "40000.00", "2026-06-30", "EUR", "Pipeline", 2),
        (R4, "Prospecting", "2026-03-06", "52000.00", "2026-06-30", "EUR", "Pipeline", 3),
        # Line 4 (EUR 55,000.00 on 3/12) is the day of the move to Proposal: it folds into line 5's row.
        (R4, "Proposal/Price Quote", "2026-03-12", "55000.00", "2026-07-31", "EUR", "Best Case", 5),
        (R4, "Proposal/Price Quote", "2026-03-20", "55000.00", "2026-08-31", "EUR", "Best Case", 6),  # close date pushed
        (R5, "Qualification", "2026-03-03", "18500.00", "2026-05-31", "GBP", "Pipeline", 7),
        (R5, "Closed Won", "2026-03-25", "18500.00", "2026-03-25", "GBP", "Closed", 8),
        (R6, "Prospecting", "2026-03-04", "12000.00", "2026-06-15", None, "Pipeline", 9),
    ]
    assert t.ignored == {str(sf(CURRENCIES)): {"not_a_stage_change": 2}}
    assert any("2 report amount(s) are written with '$'" in n for n in t.notes)


def test_notes_say_what_the_exports_cannot_tell(sf_config):
    t = translate([sf("OpportunityHistory.csv")], sf_config, {})
    assert any("No Lead export" in n for n in t.notes) and any("No Opportunity export" in n for n in t.notes)
    t = translate([sf("Lead.csv")], sf_config, {})
    assert any("No LeadHistory export" in n for n in t.notes)
    assert [(e[0], e[1]) for e in events_of(t)][0] == (A, "Closed - Converted")  # current status, at creation
    t = translate([sf(f) for f in OBJECTS], sf_config, {})
    assert t.notes == []


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    "given, expected",
    [
        ("0065g00000Eb1Aa", "0065g00000Eb1AaAAJ"),  # 15-char (reports) -> 18-char (API)
        ("00Q5g00000Brt1A", "00Q5g00000Brt1AEAR"),
        ("001000000000000", "001000000000000AAA"),
        ("0065g00000Dq7AbAAJ", "0065g00000Dq7AbAAJ"),
        (" 0065g00000Dq7AbAAJ ", "0065g00000Dq7AbAAJ"),
        ("DEAL-42", "DEAL-42"),  # not an id shape: kept as written
        ("", ""),
        # The suffix makes ids case-insensitive: a suffix in another case, or an id whose case was lost, is one record.
        ("0065g00000Dq7Abaaj", "0065g00000Dq7AbAAJ"),
        ("0065G00000DQ7ABAAJ", "0065g00000Dq7AbAAJ"),
        ("0065g00000dq7abaaj", "0065g00000Dq7AbAAJ"),
        ("00q5g00000brt1aear", "00Q5g00000Brt1AEAR"),
        ("0065g00000Dq7Ab999", "0065g00000Dq7Ab999"),  # 6-9 are no suffix characters: not an id
    ],
)
def test_canonical_id(given, expected):
    assert canonical_id(given) == expected


@pytest.mark.parametrize(
    "text, tz, expected",
    [
        ("2026-03-04T15:22:01.000+0000", "UTC", (datetime(2026, 3, 4, 15, 22, 1), None)),
        ("2026-03-04T15:22:01.000Z", "UTC", (datetime(2026, 3, 4, 15, 22, 1), None)),
        ("2026-03-04T15:22:01.000-0500", "UTC", (datetime(2026, 3, 4, 20, 22, 1), None)),
        ("2026-03-04 10:22", "America/New_York", (datetime(2026, 3, 4, 15, 22), None)),
        ("2026-03-04", "UTC", (datetime(2026, 3, 4), None)),
        ("3/4/2026 15:22", "UTC", (None, "unparseable_timestamp")),
        ("2026-02-30T10:00:00.000+0000", "UTC", (None, "impossible_timestamp")),
        ("", "UTC", (None, "missing_timestamp")),
    ],
)
def test_parse_instant(text, tz, expected):
    at, problem = parse_instant(text, tz)
    assert (at.replace(tzinfo=None) if at else None, problem) == expected


# --------------------------------------------------------------------------- malformed exports


@pytest.mark.parametrize(
    "files, options, message",
    [
        (("OpportunityHistory_no_CreatedDate.csv",), {},
         "OpportunityHistory export '{dir}/OpportunityHistory_no_CreatedDate.csv' has no 'CreatedDate' column: "
         "expected OpportunityId, StageName, CreatedDate; found Id, OpportunityId, CreatedById, StageName"),
        (("Lead.csv", "Account.csv"), {},
         "Salesforce export '{dir}/Account.csv' is not an object this adapter reads: expected the columns of "
         "OpportunityHistory (OpportunityId, StageName, CreatedDate)"),
        (("Opportunity.csv",), {}, "hold no stage history"),
        (("OpportunityHistory.csv", "Opportunity.csv"), {"reason_field": "Lost_Because__c"},
         "Opportunity export '{dir}/Opportunity.csv' has no 'Lost_Because__c' column, which [source.salesforce] reason_field names"),
        (("OpportunityHistoryReport.csv",), {"report_id_column": "Deal ID"},
         "Opportunity History report '{dir}/OpportunityHistoryReport.csv' has no 'Deal ID' column"),
        (("Lead.csv",), {"reason": "x"}, "[source.salesforce] has unknown key 'reason'"),
        (("Lead.csv",), {"report_date_format": "%H:%M"}, "[source.salesforce] report_date_format = '%H:%M'"),
        (("Lead.csv",), {"attributes": {"Lead Source": "LeadSource"}}, "[source.salesforce].attributes has attribute 'Lead Source'"),
    ],
)
def test_file_level_problems_are_one_sentence(sf_config, files, options, message):
    with pytest.raises(UserError) as err:
        translate([sf(f) for f in files], sf_config, options)
    text = str(err.value)
    assert message.format(dir=FIXTURES) in text
    assert "\n" not in text and text.endswith(".")


def test_field_history_is_named_as_the_wrong_object(sf_config, tmp_path):
    path = tmp_path / "OpportunityFieldHistory.csv"
    path.write_text('"Id","OpportunityId","CreatedDate","Field","OldValue","NewValue"\n'
                    '"0175g0000Ak001AAAR","0065g00000Dq7AbAAJ","2026-03-12T10:00:05.000+0000","StageName","Prospecting","Qualification"\n')
    with pytest.raises(UserError, match="looks like OpportunityFieldHistory .* expected OpportunityHistory"):
        translate([path], sf_config, {})


def test_row_problems_are_rejected_with_their_line(sf_config, tmp_path):
    header = '"Id","OpportunityId","CreatedDate","StageName","IsDeleted"\n'
    body = (
        '"h1","0065g00000Dq7AbAAJ","2026-03-12T10:00:05.000+0000","Prospecting","false"\n'
        '"h2","","2026-03-13T10:00:00.000+0000","Qualification","false"\n'           # no opportunity id
        '"h3","0065g00000Dq7AbAAJ","2026-03-14T10:00:00.000+0000","","false"\n'     # no stage
        '"h4","0065g00000Dq7AbAAJ","2026-13-14T10:00:00.000+0000","Closed Won","false"\n'  # month 13
        '"h5","0065g00000Dq7AbAAJ","2026-03-15T10:00:00.000+0000","Closed Won"\n'   # a field short
        '"h1","0065g00000Dq7AbAAJ","2026-03-12T10:00:05.000+0000","Prospecting","false"\n'  # same record again
    )
    path = tmp_path / "OpportunityHistory.csv"
    path.write_text(header + body)
    t = translate([path], sf_config, {})
    assert [(r.line, r.reason) for r in t.rejected] == [
        (6, "wrong_column_count"), (3, "missing_lead_id"), (4, "missing_stage"), (5, "impossible_timestamp"),
    ]
    assert t.ignored == {str(path): {"repeated_id": 1}}
    assert [(e[1], e[5]) for e in events_of(t)] == [("Prospecting", 2)]


# --------------------------------------------------------------------------- full loads and metrics


def _funnel(db: Path) -> dict[str, int]:
    return {r["stage"]: r["reached"] for r in run_metric(Gateway(db), "funnel", MetricRequest())}


def _conversion(db: Path, s: str, t: str) -> tuple[int, int]:
    row = run_metric(Gateway(db), "conversion", MetricRequest(from_stage=s, to_stage=t, window_days=0))[0]
    return row["cohort"], row["converted"]


@pytest.mark.slow
def test_load_objects_accounts_for_every_row_and_gives_the_hand_computed_funnel(sf_config, tmp_path):
    db = tmp_path / "wh.duckdb"
    report = load_files(db, [sf(f) for f in OBJECTS], sf_config, now=NOW, source="salesforce")
    by = {(f.path.name, f.role): f for f in report.files}
    expected = {
        # file, role: rows_read, loaded, quarantined, duplicates, export rows, ignored
        ("OpportunityHistory.csv", "events"): (14, 12, 2, 0, 17, 3),
        ("Opportunity.csv", "leads"): (3, 3, 0, 0, None, 0),
        ("Lead.csv", "events"): (5, 5, 0, 0, 5, 0),
        ("Lead.csv", "leads"): (5, 5, 0, 0, None, 0),
        ("LeadHistory.csv", "events"): (12, 12, 0, 0, 20, 8),
    }
    for key, (read, loaded, quarantined, dups, export_rows, ignored) in expected.items():
        f = by[key]
        assert (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate) == (read, loaded, quarantined, dups), key
        assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate
        if export_rows is not None:
            assert (f.source_rows, f.rows_ignored) == (export_rows, ignored), key
    assert by[("OpportunityHistory.csv", "events")].unknown_labels == {"Security Review": 1}
    assert rows(db, "select line, reason from quarantine order by line") == [(12, "unknown_stage"), (13, "unparseable_timestamp")]

    # Journeys in canonical stages, reasons normalised by [reasons]; a row repeating a stage is a value change.
    journeys = dict(rows(db, "select lead_id, list(stage order by entered_at) from raw_events group by lead_id"))
    assert journeys == {
        A: ["lead", "lead", "mql", "sql", "opportunity", "opportunity", "opportunity", "proposal", "proposal", "proposal", "won"],
        B: ["lead", "lead", "mql", "disqualified"],
        C: ["lead", "mql", "sql", "opportunity", "opportunity", "opportunity", "proposal", "lost"],
        D: ["lead", "lead", "mql"],
        E: ["lead"],
        Z: ["opportunity", "proposal"],
    }
    reasons = dict(rows(db, "select lead_id, reason from stg_events where reason is not null"))
    assert reasons == {B: "Budget", C: "Lost to competitor"}

    # Hand-computed: six journeys reach lead; Z skips to opportunity (skipped stages count).
    assert _funnel(db) == {"lead": 6, "mql": 5, "sql": 3, "opportunity": 3, "proposal": 3, "won": 1}
    assert _conversion(db, "mql", "sql") == (5, 3)
    assert _conversion(db, "sql", "won") == (3, 1)

    attrs = rows(db, "select lead_id, channel, industry, owner, amount from fct_leads order by lead_id")
    assert attrs == [
        (Z, "Partner Referral", "Pharmaceuticals", "Marcus Oyelaran", "120000"),
        (A, "Web", "Healthcare", "Priya Raman", "52000"),
        (B, "Partner Referral", "Transportation", "Priya Raman", None),
        (C, "Web", "Retail", "Priya Raman", "36000"),
        (D, "Trade Show", "Insurance", "Priya Raman", None),
        (E, "Web", "Travel", "Priya Raman", None),
    ]


@pytest.mark.slow
def test_load_report_through_the_cli(sf_config, tmp_path):
    db = tmp_path / "wh.duckdb"
    export = shutil.copy(sf(REPORT), tmp_path / REPORT)
    result = CliRunner().invoke(
        main, ["load", "--source", "salesforce", "--config", str(EXAMPLE_CONFIG), "--db", str(db), "--quiet", str(export)]
    )
    assert result.exit_code == 0, result.output
    assert "events read = 7 loaded + 2 quarantined + 0 duplicates" in result.output
    assert "15 = 9 used + 6 ignored" in result.output
    assert "Legal Review" in result.output
    assert rows(db, "select line, reason from quarantine order by line") == [(9, "unknown_stage"), (10, "unparseable_timestamp")]
    assert _funnel(db) == {"lead": 3, "mql": 3, "sql": 3, "opportunity": 3, "proposal": 1, "won": 1}
    assert _conversion(db, "opportunity", "won") == (3, 1)


def test_wrong_columns_stop_the_cli_with_one_line(tmp_path):
    db = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(
        main, ["load", "--source", "salesforce", "--config", str(EXAMPLE_CONFIG), "--db", str(db),
               str(sf("Lead.csv")), str(sf("OpportunityHistory_no_CreatedDate.csv"))]
    )
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "has no 'CreatedDate' column" in errors[0]
    assert "Traceback" not in result.output
    assert not db.exists()


def test_options_defaults():
    opts = parse_options({})
    assert opts.reason_field == "Loss_Reason__c" and not opts.reason_field_set
    assert opts.report_date_format == "%m/%d/%Y" and opts.report_id_column == "Opportunity ID"
    assert parse_options({"attributes": {"owner": "OwnerId"}}).attributes == {"owner": ("OwnerId",)}


def test_docs_name_every_reason_the_adapter_gives(sf_config):
    section = (ROOT / "docs" / "sources.md").read_text().split("## Salesforce", 1)[1].split("\n## ", 1)[0]
    source = (ROOT / "etl" / "sources" / "salesforce.py").read_text()
    reasons = set(re.findall(r'b\.(?:out\.)?(?:ignore|reject)\([^,]+, "([a-z_]+)"', source)) | {"report_footer", *LEAD_HISTORY_IGNORED}
    assert {"deleted", "not_a_stage_change", "not_a_status_change", "creation_row", "repeated_id", "missing_lead_id"} <= reasons
    assert [r for r in sorted(reasons) if f"`{r}`" not in section] == []
    assert [k for k in OPTION_KEYS if f"`{k}`" not in section] == []


def test_ids_that_differ_only_in_the_case_of_their_suffix_are_one_opportunity(sf_config, tmp_path):
    path = tmp_path / "OpportunityHistory.csv"
    path.write_text('"Id","OpportunityId","CreatedDate","StageName"\n'
                    '"h1","0065g00000Dq7AbAAJ","2026-03-12T10:00:05.000+0000","Prospecting"\n'
                    '"h2","0065g00000Dq7Abaaj","2026-03-20T11:05:44.000+0000","Prospecting"\n'     # no stage change
                    '"h3","0065g00000dq7abaaj","2026-04-02T14:20:00.000+0000","Closed Won"\n')
    t = translate([path], sf_config, {})
    assert [(e[0], e[1]) for e in events_of(t)] == [("0065g00000Dq7AbAAJ", "Prospecting"), ("0065g00000Dq7AbAAJ", "Closed Won")]
    assert t.ignored == {str(path): {"not_a_stage_change": 1}}


def test_history_of_a_lead_the_lead_export_lacks_is_ignored_with_its_reason(sf_config):
    """Lead 6V has LeadHistory rows but no Lead row (deleted, merged or filtered out), 7Z's Lead row is IsDeleted:
    neither becomes a journey that starts mid-way; both are counted, and a note says why."""
    lead, history = FIXTURES / "deleted_lead" / "Lead.csv", FIXTURES / "deleted_lead" / "LeadHistory.csv"
    t = translate([lead, history], sf_config, {})
    assert sorted({e[0] for e in events_of(t)}) == [A]
    assert t.ignored == {str(lead): {"deleted": 1}, str(history): {"creation_row": 1, "deleted": 1, "lead_not_in_export": 3}}
    assert any("1 lead(s) have LeadHistory rows but no row in the Lead export" in n for n in t.notes)
    # Without a Lead export, the history is all there is: the lead starts at its first history row.
    alone = translate([history], sf_config, {})
    assert "00Q5g00000Brt6VEAR" in {e[0] for e in events_of(alone)}


def test_report_total_rows_are_footer_not_missing_ids(sf_config):
    report = FIXTURES / "OpportunityHistoryReport_totals.csv"
    t = translate([report], sf_config, {})
    assert t.rejected == []
    assert t.ignored == {str(report): {"report_footer": 7}}
    assert t.source_rows[str(report)] == 3 + 7


# --------------------------------------------------------------------------- first responses and buyer roles
#
# tests/fixtures/salesforce/activities/: the Lead export again with Title, ConvertedContactId and a custom
# First_Response__c; Task.csv (calls and emails as the Bulk API exports them: closed, open, deleted, on a
# lead, on the contact a lead was converted into, on an opportunity, on a contact of nothing exported);
# OpportunityContactRole.csv with Contact.Title (primary roles, a deleted role, an opportunity not exported).

ACTIVITIES = FIXTURES / "activities"
ROLE_FILES = [sf("OpportunityHistory.csv"), sf("Opportunity.csv"), ACTIVITIES / "Lead.csv", sf("LeadHistory.csv"),
              ACTIVITIES / "Task.csv", ACTIVITIES / "OpportunityContactRole.csv"]
# lead: first response (earliest closed task), buyer role, decision makers
RESPONSES_AND_ROLES = {
    A: ("2026-03-03T14:58:00.000+0000", "operations lead", "2"),  # an email before the call; Decision Maker + Economic Buyer
    B: ("2026-03-06T16:10:00.000+0000", "procurement", None),     # the open call-back task does not count
    C: ("2026-03-07T09:15:00.000+0000", "C-level", "1"),          # logged on the converted contact: CreatedDate, no CompletedDateTime
    D: (None, "IT", None),                                        # its only task is deleted
    E: (None, None, None),                                        # no title, no task
    Z: ("2026-03-21T10:00:00.000+0000", "operations lead", "0"),  # by WhatId; no primary role: the first row's title
}


def test_tasks_give_first_responses_and_contact_roles_give_buyer_roles(sf_config):
    t = translate(ROLE_FILES, sf_config, {})
    got = {}
    for r in t.leads.to_pylist():
        values = (r["first_response_at"], r["buyer_role"], r["decision_makers"])
        if any(values):
            assert r["lead_id"] not in got, r["lead_id"]  # one row per journey carries them
            got[r["lead_id"]] = values
    assert got == {k: v for k, v in RESPONSES_AND_ROLES.items() if any(v)}
    task, roles = str(ACTIVITIES / "Task.csv"), str(ACTIVITIES / "OpportunityContactRole.csv")
    assert t.ignored[task] == {"open_task": 1, "deleted": 1, "activity": 6, "unmatched_activity": 1}
    assert t.ignored[roles] == {"deleted": 1, "contact_role": 7, "unmatched_contact_role": 1}
    assert any("2 Task or OpportunityContactRole row(s) belong to no journey" in n for n in t.notes)


def roles_config(tmp_path: Path):
    """The example funnel with buyer_role as a segment and its own [attributes] naming the three attributes."""
    text = EXAMPLE_CONFIG.read_text().replace('owner = "Owner"\n', 'owner = "Owner"\nbuyer_role = "Buyer role"\n', 1)
    text += '\n[attributes]\nnumeric = ["amount", "decision_makers"]\namount = "amount"\nfirst_response = "first_response_at"\n'
    path = tmp_path / "funnel.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.slow
def test_first_responses_and_roles_reach_fct_leads_and_speed_to_lead(tmp_path):
    db = tmp_path / "wh.duckdb"
    report = load_files(db, ROLE_FILES, roles_config(tmp_path), now=NOW, source="salesforce")
    by = {(f.path.name, f.role): f for f in report.files}
    task = by[("Task.csv", "events")]
    assert (task.source_rows, task.rows_ignored, task.rows_read) == (9, 9, 0)  # every task row read into a Lead row
    got = rows(db, "select lead_id, first_response_at, buyer_role, decision_makers from fct_leads order by lead_id")
    assert got == sorted((k, *v) for k, v in RESPONSES_AND_ROLES.items())
    # Speed to lead from MQL: A answered before its MQL (0 h), B 1 h 40 min after, C 16 h 30 min after, Z (which
    # skips to opportunity on 20 March 08:45) 25 h 15 min after; D never.
    [result] = run_metric(Gateway(db), "speed_to_lead", MetricRequest(as_of=datetime(2026, 6, 1)))
    assert (result["leads"], result["answered"], result["unanswered"]) == (5, 4, 1)
    assert result["p50_hours"] == pytest.approx((1 + 40 / 60 + 16.5) / 2, abs=1e-9)


def test_a_journey_without_lead_or_opportunity_rows_takes_them_from_its_task_and_role_rows(sf_config):
    """Only the stage history: opportunity X's contact task (by WhatId) and roles give X's leads row themselves."""
    files = [sf("OpportunityHistory.csv"), ACTIVITIES / "Task.csv", ACTIVITIES / "OpportunityContactRole.csv"]
    t = translate(files, sf_config, {})
    x, y = "0065g00000Dq7AbAAJ", "0065g00000Dq7FgAAJ"
    got = {(r["lead_id"], Path(r["_file"]).name, r["_line"]): (r.get("first_response_at"), r.get("buyer_role"), r.get("decision_makers"))
           for r in t.leads.to_pylist()}
    assert got == {
        (x, "Task.csv", 7): ("2026-03-13T11:20:00.000+0000", None, None),
        (y, "Task.csv", 6): ("2026-03-07T09:15:00.000+0000", None, None),
        (Z, "Task.csv", 8): ("2026-03-21T10:00:00.000+0000", None, None),
        (x, "OpportunityContactRole.csv", 2): (None, "operations lead", "2"),
        (y, "OpportunityContactRole.csv", 5): (None, "C-level", "1"),
        (Z, "OpportunityContactRole.csv", 8): (None, "operations lead", "0"),
    }
    # Tasks on leads (no Lead export to place them) are of no journey here: lead ids with no history events.
    assert t.ignored[str(ACTIVITIES / "Task.csv")] == {"open_task": 1, "deleted": 1, "unmatched_activity": 4}


def test_first_response_field_names_a_custom_lead_field_and_the_earliest_response_wins(sf_config, tmp_path):
    opts = {"first_response_field": "First_Response__c"}
    t = translate([ACTIVITIES / "Lead.csv", ACTIVITIES / "Task.csv"], sf_config, opts)
    got = {r["lead_id"]: r["first_response_at"] for r in t.leads.to_pylist()}
    # A: the field says 10:30 on 5 March, its email was earlier; D: only the field (its task is deleted).
    assert got[A] == "2026-03-03T14:58:00.000+0000" and got[D] == "2026-03-05T12:05:00.000Z"
    bad = tmp_path / "Lead.csv"
    bad.write_text((ACTIVITIES / "Lead.csv").read_text().replace("2026-03-05T12:05:00.000Z", "05/03/2026 12:05"))
    t = translate([bad], sf_config, opts)
    assert [(r.line, r.reason) for r in t.rejected] == [(5, "unparseable_timestamp")]
    assert "FIRST_RESPONSE__C" in t.rejected[0].detail and {r["lead_id"] for r in t.leads.to_pylist()} >= {D}
    with pytest.raises(UserError, match="no 'First_Response__c' column, which \\[source.salesforce\\] first_response_field names"):
        translate([sf("Lead.csv")], sf_config, opts)


def test_decision_roles_option_says_which_roles_decide(sf_config):
    t = translate(ROLE_FILES, sf_config, {"decision_roles": ["Decision Maker", "Executive Sponsor"]})
    got = {r["lead_id"]: r["decision_makers"] for r in t.leads.to_pylist() if r["decision_makers"]}
    assert got == {A: "1", C: "0", Z: "1"}
    with pytest.raises(UserError, match="decision_roles"):
        parse_options({"decision_roles": [""]})


def test_exports_without_these_fields_add_no_columns(sf_config):
    t = translate([sf(f) for f in OBJECTS], sf_config, {})
    assert not {"first_response_at", "buyer_role", "decision_makers"} & set(t.leads.column_names)
    assert not {"first_response_at", "buyer_role", "decision_makers"} & set(t.events.column_names)


def test_events_are_meetings_that_count_at_their_start(sf_config):
    """D's only task was deleted; its meeting on 6 March is its first response. A's workshop comes after its email."""
    event = ACTIVITIES / "Event.csv"
    t = translate([*ROLE_FILES, event], sf_config, {})
    got = {r["lead_id"]: r["first_response_at"] for r in t.leads.to_pylist() if r["first_response_at"]}
    assert got[D] == "2026-03-06T15:00:00.000+0000" and got[A] == RESPONSES_AND_ROLES[A][0]
    assert t.ignored[str(event)] == {"activity": 2}


@pytest.mark.slow
def test_the_cli_loads_tasks_and_roles_and_query_speed_to_lead_by_buyer_role(tmp_path):
    import json

    db, config = tmp_path / "wh.duckdb", tmp_path / "funnel.toml"
    roles_config(tmp_path)  # writes funnel.toml
    runner = CliRunner()
    loaded = runner.invoke(main, ["load", "--source", "salesforce", "--config", str(config), "--db", str(db), "--quiet",
                                  *map(str, ROLE_FILES)])
    assert loaded.exit_code == 0, loaded.output
    assert "export rows: 9 = 0 used + 9 ignored (open_task 1, deleted 1, activity 6, unmatched_activity 1)" in loaded.output
    out = runner.invoke(main, ["query", "speed_to_lead", "--db", str(db), "--segment", "buyer_role", "--format", "json",
                               "--as-of", "2026-06-01"])
    assert out.exit_code == 0, out.output
    got = {r["buyer_role"]: (r["leads"], r["answered"]) for r in json.loads(out.output)}
    # MQL cohort: A (operations lead), Z (operations lead), B (procurement), C (C-level), D (IT, never answered).
    assert got == {"operations lead": (2, 2), "procurement": (1, 1), "C-level": (1, 1), "IT": (1, 0)}
