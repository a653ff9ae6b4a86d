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
from funnelboard.etl.sources.salesforce import OPTION_KEYS, canonical_id, parse_instant, parse_options, translate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows

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
    (A, "Proposal/Price Quote", "2026-03-20T11:05:44.000+0000", None, "OpportunityHistory.csv", 9),
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
                "OpportunityHistory.csv": {"deleted": 2, "not_a_stage_change": 4},
                "LeadHistory.csv": {"creation_row": 5, "not_a_status_change": 3},
            },
            id="objects",
        ),
        pytest.param(
            (REPORT,),
            REPORT_EVENTS,
            [(REPORT, 10, "unparseable_timestamp", 'Last Modified "31/03/2026" does not match report_date_format "%m/%d/%Y"')],
            {REPORT: {"not_a_stage_change": 1, "report_footer": 6}},
            id="report",
        ),
        pytest.param(
            ("OpportunityHistory.csv",),
            [(Z if e[0] == Z else {A: "0065g00000Dq7AbAAJ", C: "0065g00000Dq7FgAAJ"}[e[0]], *e[1:3], None, *e[4:])
             for e in OBJECT_EVENTS if e[4] == "OpportunityHistory.csv"],
            [("OpportunityHistory.csv", 13, "unparseable_timestamp", 'CreatedDate "3/27/2026 14:05"')],
            {"OpportunityHistory.csv": {"deleted": 2, "not_a_stage_change": 4}},
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


def test_load_objects_accounts_for_every_row_and_gives_the_hand_computed_funnel(sf_config, tmp_path):
    db = tmp_path / "wh.duckdb"
    report = load_files(db, [sf(f) for f in OBJECTS], sf_config, now=NOW, source="salesforce")
    by = {(f.path.name, f.role): f for f in report.files}
    expected = {
        # file, role: rows_read, loaded, quarantined, duplicates, export rows, ignored
        ("OpportunityHistory.csv", "events"): (11, 9, 2, 0, 17, 6),
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

    # Journeys in canonical stages, reasons normalised by [reasons].
    journeys = dict(rows(db, "select lead_id, list(stage order by entered_at) from raw_events group by lead_id"))
    assert journeys == {
        A: ["lead", "lead", "mql", "sql", "opportunity", "opportunity", "proposal", "proposal", "won"],
        B: ["lead", "lead", "mql", "disqualified"],
        C: ["lead", "mql", "sql", "opportunity", "opportunity", "proposal", "lost"],
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


def test_load_report_through_the_cli(sf_config, tmp_path):
    db = tmp_path / "wh.duckdb"
    export = shutil.copy(sf(REPORT), tmp_path / REPORT)
    result = CliRunner().invoke(
        main, ["load", "--source", "salesforce", "--config", str(EXAMPLE_CONFIG), "--db", str(db), "--quiet", str(export)]
    )
    assert result.exit_code == 0, result.output
    assert "events read = 6 loaded + 2 quarantined + 0 duplicates" in result.output
    assert "15 = 8 used + 7 ignored" in result.output
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
    reasons = set(re.findall(r'b\.(?:ignore|reject)\([^,]+, "([a-z_]+)"', source)) | {"report_footer"}
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
