"""The HubSpot adapter: each export shape gives exact events, rejections and ignored rows; loads add up."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.hubspot import translate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows, write
from tests.etl.sources import NAME_NO_RECORD

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hubspot"

LABELS = """
[labels]
"Subscriber" = "lead"
"New" = "lead"
"Marketing Qualified Lead" = "mql"
"Sales Qualified Lead" = "sql"
"Customer" = "won"
"Evangelist" = "won"
"Unqualified" = "disqualified"
"Bad Timing" = "nurture"
"Appointment Scheduled" = "sql"
"Qualified To Buy" = "opportunity"
"Presentation Scheduled" = "opportunity"
"Decision Maker Bought-In" = "opportunity"
"Contract Sent" = "proposal"
"Closed Won" = "won"
"Closed Lost" = "lost"
"Discovery" = "sql"
"Scoping" = "opportunity"
"""


def make_config(tmp_path: Path, extra: str = ""):
    return load_config(write(tmp_path / "funnel.toml", LABELS + extra))


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


def fx(*names: str) -> list[Path]:
    return [FIXTURES / n for n in names]


def events_of(t) -> list[tuple]:
    """(lead, stage label, entered_at, reason, file name, line) per event, in the adapter's order."""
    return [(r["lead_id"], r["stage"], r["entered_at"], r["reason"], Path(r["_file"]).name, r["_line"])
            for r in t.events.to_pylist()]


def rejected_of(t) -> list[tuple]:
    return sorted((Path(r.file).name, r.line, r.reason) for r in t.rejected)


def by_name(d: dict) -> dict:
    return {Path(k).name: v for k, v in d.items()}


H = "deal_property_history.csv"
V3 = "deals_v3.json"
V1 = "contacts_v1.json"
UI = "deals_export.csv"
API = "deals_api_wide.csv"
P = "pipelines.json"

# (case, files, events, rejections, ignored per file, source rows per file)
CASES = [
    (
        "long property history CSV, with the pipeline definition",
        (P, H),
        [
            ("deal:9001", "Appointment Scheduled", "2026-03-02T09:15:00.000Z", None, H, 2),
            ("deal:9001", "Qualified To Buy", "2026-03-05T14:30:00.000Z", None, H, 5),
            ("deal:9001", "Contract Sent", "2026-03-12T10:00:00.000Z", None, H, 7),
            ("deal:9001", "Closed Won", "2026-03-20T16:45:12.345Z", None, H, 9),
            ("deal:9002", "Appointment Scheduled", "2026-03-03T11:00:00.000Z", None, H, 10),
            ("deal:9002", "Qualified To Buy", "2026-03-06T08:00:00.000Z", None, H, 12),
            ("deal:9002", "Contract Sent", "2026-03-10T12:00:00.000Z", None, H, 13),
            ("deal:9002", "Qualified To Buy", "2026-03-13T09:30:00.000Z", None, H, 14),  # a re-entry
            ("deal:9002", "Closed Lost", "2026-03-25T17:00:00.000Z", "Chose offshore competitor", H, 16),
            ("deal:9003", "Discovery", "2026-02-16T08:30:00.000Z", None, H, 17),  # epoch ms -> ISO
            ("deal:9003", "Proposal", "2026-02-27T16:45:30.000Z", None, H, 20),
            ("deal:9004", "Appointment Scheduled", "2026-03-04T10:00:00.000Z", None, H, 21),
            ("deal:9004", "Appointment Scheduled", "2026-03-04T10:00:00.000Z", None, H, 25),  # the loader collapses it
        ],
        [(H, 19, "unknown_stage_id"), (H, 22, "unparseable_timestamp"), (H, 23, "missing_lead_id"), (H, 26, "wrong_column_count")],
        {P: {"pipeline_stage": 12}, H: {"attribute_value": 5, "other_property": 1, "reason_value": 1, "cleared_value": 1}},
        {P: 12, H: 25},
    ),
    (
        "v3 API objects with propertiesWithHistory",
        (P, V3),
        [
            ("deal:9101", "Appointment Scheduled", "2026-03-02T08:00:00.000Z", None, V3, 1),
            ("deal:9101", "Presentation Scheduled", "2026-03-09T13:00:00.000Z", None, V3, 1),
            ("deal:9101", "Closed Lost", "2026-03-18T11:20:00.000Z", "Pricing too high", V3, 1),
            ("deal:9102", "Appointment Scheduled", "2026-03-03T09:00:00.000Z", None, V3, 2),
            ("deal:9102", "Qualified To Buy", "2026-03-05T12:00:00.000Z", None, V3, 2),
            ("deal:9102", "Closed Lost", "2026-03-10T16:30:00.000Z", "No budget", V3, 2),
            ("deal:9102", "Qualified To Buy", "2026-03-17T09:00:00.000Z", None, V3, 2),  # reopened
            ("deal:9102", "Contract Sent", "2026-03-20T10:00:00.000Z", None, V3, 2),
            ("deal:9102", "Closed Won", "2026-03-27T15:00:00.000Z", None, V3, 2),
            ("deal:9103", "Discovery", "2026-03-05T10:00:00.000Z", None, V3, 3),
        ],
        [(V3, 3, "unknown_stage_id")],
        {P: {"pipeline_stage": 12}, V3: {"no_stage_history": 1}},
        {P: 12, V3: 4},
    ),
    (
        "legacy v1 contacts: lifecycle stage and lead status, epoch milliseconds",
        (V1,),
        [
            ("contact:501", "Subscriber", "2026-02-02T10:00:00.000Z", None, V1, 1),
            ("contact:501", "Lead", "2026-02-05T09:30:00.000Z", None, V1, 1),
            ("contact:501", "New", "2026-02-05T09:30:00.000Z", None, V1, 1),
            ("contact:501", "Marketing Qualified Lead", "2026-02-10T15:45:00.000Z", None, V1, 1),
            ("contact:501", "Connected", "2026-02-12T13:00:00.000Z", None, V1, 1),  # not in [labels]: the loader lists it
            ("contact:501", "Sales Qualified Lead", "2026-02-18T11:20:00.000Z", None, V1, 1),
            ("contact:502", "Lead", "2026-02-03T08:15:00.000Z", None, V1, 2),
            ("contact:502", "Marketing Qualified Lead", "2026-02-06T10:00:00.000Z", None, V1, 2),
            ("contact:502", "Unqualified", "2026-02-20T16:40:00.000Z", "Budget too low", V1, 2),
            ("contact:503", "Lead", "2026-02-04T12:00:00.000Z", None, V1, 3),
            ("contact:503", "Marketing Qualified Lead", "2026-02-08T09:00:00.000Z", None, V1, 3),
            ("contact:503", "Lead", "2026-02-25T09:00:01.000Z", None, V1, 3),  # cleared, then set back
            ("contact:503", "Bad Timing", "2026-02-25T09:05:00.000Z", None, V1, 3),
            ("contact:504", "Lead", "2026-02-01T07:30:00.000Z", None, V1, 4),
            ("contact:504", "Customer", "2026-03-01T10:00:00.000Z", None, V1, 4),
            ("contact:504", "Evangelist", "2026-03-15T10:00:00.000Z", None, V1, 4),
        ],
        [(V1, 4, "unknown_stage_id")],  # a custom lifecycle stage's id
        {},
        {V1: 4},
    ),
    (
        "wide deal export from the UI (Date entered columns, a value spanning two lines)",
        (UI,),
        [
            ("deal:9201", "Appointment Scheduled", "2026-03-02 09:00", None, UI, 2),
            ("deal:9201", "Qualified To Buy", "2026-03-04 11:20", None, UI, 2),
            ("deal:9201", "Contract Sent", "2026-03-11 10:05", None, UI, 2),
            ("deal:9201", "Closed Won", "2026-03-24 15:30", None, UI, 2),
            ("deal:9202", "Appointment Scheduled", "2026-03-05 10:00", None, UI, 3),
            ("deal:9202", "Qualified To Buy", "2026-03-09 09:30", None, UI, 3),
            ("deal:9202", "Closed Lost", "2026-03-19 16:00", "Kept in-house", UI, 3),
            ("deal:9203", "Proposal", "2026-03-06 14:00", None, UI, 5),
            ("deal:9203", "Onboarding", "2026-03-20 09:00", None, UI, 5),
            ("deal:9204", "Appointment Scheduled", "2026-03-10 09:00", None, UI, 6),
        ],
        [(UI, 6, "unparseable_timestamp"), (UI, 8, "missing_lead_id")],
        {UI: {"no_stage_dates": 1}},
        {UI: 6},
    ),
    (
        "wide deal export with hs_v2_date_entered_<stageId> columns",
        (P, API),
        [
            ("deal:9301", "Appointment Scheduled", "2026-03-03T08:00:00.000Z", None, API, 2),
            ("deal:9301", "Qualified To Buy", "2026-03-06T10:00:00.000Z", None, API, 2),
            ("deal:9301", "Closed Won", "2026-03-16T12:00:00.000Z", None, API, 2),
            ("deal:9302", "Appointment Scheduled", "2026-03-04T09:00:00.000Z", None, API, 3),
            ("deal:9302", "Closed Lost", "2026-03-12T15:00:00.000Z", "Wrong service line", API, 3),
            ("deal:9303", "Discovery", "2026-03-05T10:00:00.000Z", None, API, 4),
        ],
        [(API, 4, "unknown_stage_id")],
        {P: {"pipeline_stage": 12}},
        {P: 12, API: 3},
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,files,events,rejections,ignored,source_rows", CASES, ids=[c[0] for c in CASES])
def test_translate_gives_exact_events(config, case, files, events, rejections, ignored, source_rows):
    t = translate(fx(*files), config, {})
    assert events_of(t) == events
    assert rejected_of(t) == sorted(rejections)
    assert by_name(t.ignored) == ignored
    assert by_name(t.source_rows) == source_rows
    for r in t.rejected:
        assert r.detail and r.raw, "every rejection says why and keeps the source text"
        # a rejected row names the journey it belongs to (a pull replaces its quarantined rows), unless it has no id
        assert (r.lead_id is None) == (r.reason in NAME_NO_RECORD), r


def test_rejections_name_the_value_and_what_to_do(config):
    t = translate(fx(P, H), config, {})
    details = {(r.line, r.reason): r.detail for r in t.rejected}
    assert details[(19, "unknown_stage_id")] == (
        'dealstage "152118399" of deal:9003 is not a stage id in the pipeline definition: add it there, or map the id under [labels]'
    )
    assert details[(22, "unparseable_timestamp")] == 'timestamp is "04/03/2026 10:15", not an ISO-8601 timestamp or epoch milliseconds'
    ui = translate(fx(UI), config, {})
    assert [r.detail for r in ui.rejected if r.reason == "unparseable_timestamp"] == [
        'Date entered "Qualified To Buy (Sales Pipeline)" is "10/03/2026 14:00", not an ISO-8601 timestamp or epoch milliseconds'
    ]


@pytest.mark.slow
def test_attributes_come_from_the_object_and_pipeline_ids_become_labels(config):
    def attrs(t, *names):
        return {r["lead_id"]: tuple(r.get(n) for n in names) for r in t.events.to_pylist()}

    # Long history: the latest value of each attribute property, on every event of the deal.
    assert attrs(translate(fx(P, H), config, {}), "owner", "amount", "pipeline") == {
        "deal:9001": ("4101", "52000", None), "deal:9002": ("4102", None, None), "deal:9003": (None, None, "BPO Outsourcing"), "deal:9004": (None, None, None),
    }
    # v3 JSON: the current `properties`.
    assert attrs(translate(fx(P, V3), config, {}), "owner", "amount", "deal_type", "pipeline") == {
        "deal:9101": ("4101", "36000", "newbusiness", "Sales Pipeline"),
        "deal:9102": ("4102", "91000", "existingbusiness", "Sales Pipeline"),
        "deal:9103": ("4103", None, "newbusiness", "BPO Outsourcing"),
    }
    assert attrs(translate(fx(V1), config, {}), "channel") == {
        "contact:501": ("ORGANIC_SEARCH",), "contact:502": ("PAID_SEARCH",), "contact:503": ("REFERRALS",), "contact:504": ("OFFLINE",)}
    # The UI export: the columns as written.
    assert attrs(translate(fx(UI), config, {}), "owner", "amount", "deal_type")["deal:9201"] == ("Dana Whitfield", "64000", "New Business")
    # Configured attributes replace the defaults; the deal's money history is read whatever they say.
    t = translate(fx(P, V3), config, {"attributes": {"owner": "hubspot_owner_id", "deal_name": ["dealname"]}})
    assert [c for c in t.events.column_names if c not in ("lead_id", "stage", "entered_at", "reason", "_file", "_line", "_raw")] == ["owner", "deal_name", "amount"]
    assert attrs(t, "deal_name")["deal:9102"] == ("Tailspin Air - multilingual chat, EMEA",)


def test_stage_labels_and_pipelines_options_replace_the_pipelines_file(tmp_path):
    config = make_config(tmp_path, '\n[source.hubspot]\npipelines = "defs/pipelines.json"\n')
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "pipelines.json").write_bytes((FIXTURES / P).read_bytes())
    t = translate(fx(API), config, config.sources["hubspot"])  # relative to funnel.toml's folder
    assert [r.reason for r in t.rejected] == ["unknown_stage_id"] and ("deal:9303", "Discovery") in [(e[0], e[1]) for e in events_of(t)]
    t = translate(fx(API), config, {"stage_labels": {"152118301": "Discovery", "152118399": "Scoping"}})
    assert [(e[0], e[1]) for e in events_of(t) if e[0] == "deal:9303"] == [("deal:9303", "Discovery"), ("deal:9303", "Scoping")]
    assert t.rejected == []


def test_without_a_pipeline_definition_custom_stage_ids_are_rejected_and_the_note_says_why(config):
    t = translate(fx(API), config, {})
    assert rejected_of(t) == [(API, 4, "unknown_stage_id"), (API, 4, "unknown_stage_id")]
    assert any("No pipeline definition was given" in n for n in t.notes)
    assert not any("No pipeline definition" in n for n in translate(fx(P, API), config, {}).notes)


def test_a_label_qualified_by_its_pipeline_wins_when_mapped(tmp_path):
    config = make_config(tmp_path, '"Proposal (BPO Outsourcing)" = "opportunity"\n')
    t = translate(fx(UI), config, {})
    assert ("deal:9203", "Proposal (BPO Outsourcing)") in [(e[0], e[1]) for e in events_of(t)]
    assert ("deal:9201", "Appointment Scheduled") in [(e[0], e[1]) for e in events_of(t)], "unqualified labels stay as they are"


def test_notes_say_what_each_shape_cannot_tell(config):
    notes = translate(fx(P, V3, UI), config, {}).notes
    assert any("position of its deal or contact" in n for n in notes)
    assert any("keeps one 'Date entered' per stage" in n and "re-entries" in n for n in notes)


# -- file-level problems: one sentence, nothing loaded ----------------------------------------------

FILE_ERRORS = [
    ("history without a timestamp column", ["property_history_no_timestamp.csv"], {},
     "HubSpot property history '{d}/property_history_no_timestamp.csv' has no 'timestamp' column: expected property, value, "
     "timestamp; found objectId, property, value, sourceType, sourceId."),
    ("truncated JSON", ["deals_truncated.json"], {}, "is not valid JSON: Unterminated string starting at line 19, column 46."),
    ("a JSON document of another kind", ["pipelines.json", "../pipedrive/stages.json"], {},
     "is neither a pipeline definition (results[].stages) nor deals or contacts with property history"),
    ("a CSV of another kind", ["../pipedrive/deals_export.csv"], {},
     "is neither a property history (objectId, property, value, timestamp), a deal export"),
    ("unknown option", [H], {"pipeline": "x.json"}, "[source.hubspot] has unknown key 'pipeline'; expected one of pipelines, "),
    ("bad attribute name", [H], {"attributes": {"Deal Owner": "hubspot_owner_id"}}, "[source.hubspot].attributes has attribute 'Deal Owner'"),
    ("missing pipelines file", [H], {"pipelines": "/nowhere/pipelines.json"}, "[source.hubspot] pipelines file '/nowhere/pipelines.json' does not exist."),
    ("a property both stage and reason", [H], {"reason_properties": ["dealstage"]}, "lists 'dealstage' both as a stage property and as a reason property"),
    ("wide export with a different id column", [UI], {"id_column": "Deal ID"}, "has no id column: expected 'Deal ID'; found Record ID, Deal Name"),
]


@pytest.mark.parametrize("case,files,options,message", FILE_ERRORS, ids=[c[0] for c in FILE_ERRORS])
def test_file_level_problems_are_one_clear_sentence(config, case, files, options, message):
    with pytest.raises(UserError) as exc:
        translate(fx(*files), config, options)
    text = str(exc.value).replace(str(FIXTURES), "{d}")
    assert message in text
    assert "\n" not in text


def test_a_malformed_export_changes_nothing(tmp_path, config):
    db = tmp_path / "wh.duckdb"
    with pytest.raises(UserError):
        load_files(db, fx(H, "property_history_no_timestamp.csv"), config, source="hubspot", now=NOW)
    assert not db.exists()


# -- full loads: row accounting and metrics on the result -------------------------------------------

# (files, {file: (events read, loaded, quarantined, duplicates, export rows, ignored)}, quarantine reasons,
#  funnel reached per stage lead..won, stage accounting rows {stage: {column: n}})
LOADS = [
    (
        (P, H),
        {P: (0, 0, 0, 0, 12, 12), H: (17, 12, 4, 1, 25, 8)},
        {"missing_lead_id": 1, "unknown_stage_id": 1, "unparseable_timestamp": 1, "wrong_column_count": 1},
        # 9001 sql->opp->proposal->won; 9002 sql->opp->proposal->opp->lost; 9003 sql->proposal; 9004 sql
        [4, 4, 4, 3, 3, 1],
        {
            "sql": {"entered": 4, "advanced": 3, "open": 1},
            "opportunity": {"entered": 3, "advanced": 2, "exited_lost": 1},
            "proposal": {"entered": 3, "advanced": 1, "regressed": 1, "open": 1},
        },
    ),
    (
        (V1,),
        {V1: (17, 15, 2, 0, 4, 0)},
        {"unknown_stage": 1, "unknown_stage_id": 1},
        # 501 lead->mql->sql; 502 lead->mql->disqualified; 503 lead->mql->lead->nurture; 504 lead->won
        [4, 4, 2, 1, 1, 1],
        {
            "lead": {"entered": 5, "advanced": 4, "exited_nurture": 1},
            "mql": {"entered": 3, "advanced": 1, "regressed": 1, "exited_disqualified": 1},
            "sql": {"entered": 1, "open": 1},
        },
    ),
    (
        (P, V3, UI),
        {P: (0, 0, 0, 0, 12, 12), V3: (11, 10, 1, 0, 4, 1), UI: (12, 9, 3, 0, 6, 1)},
        {"unknown_stage_id": 1, "unparseable_timestamp": 1, "missing_lead_id": 1, "unknown_stage": 1},
        # 9101, 9102 (lost, reopened, won), 9103, 9201 (won), 9202 (lost), 9203 (proposal), 9204 (sql)
        [7, 7, 7, 5, 3, 2],
        {
            "sql": {"entered": 6, "advanced": 4, "open": 2},
            "opportunity": {"entered": 5, "advanced": 2, "exited_lost": 3},
            "proposal": {"entered": 3, "advanced": 2, "open": 1},
        },
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("files,per_file,reasons,funnel,accounting", LOADS, ids=["+".join(c[0]) for c in LOADS])
def test_full_load_accounts_for_every_row_and_gives_the_hand_computed_funnel(tmp_path, config, files, per_file, reasons, funnel, accounting):
    db = tmp_path / "wh.duckdb"
    report = load_files(db, fx(*files), config, source="hubspot", now=NOW)
    got = {f.path.name: (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate, f.source_rows, f.rows_ignored)
           for f in report.files}
    assert got == per_file
    for f in report.files:
        assert f.balanced and f.source == "hubspot"
    assert dict(rows(db, "select reason, count(*) from quarantine group by 1")) == reasons
    gateway = Gateway(db)
    assert [r["reached"] for r in run_metric(gateway, "funnel", MetricRequest())] == funnel
    by_stage = {r["stage"]: r for r in run_metric(gateway, "stage_accounting", MetricRequest())}
    for stage, expected in accounting.items():
        assert {k: v for k, v in by_stage[stage].items() if v and k not in ("stage", "exited")} == expected


@pytest.mark.slow
def test_reasons_reach_the_disqualifier_metric(tmp_path, config):
    db = tmp_path / "wh.duckdb"
    load_files(db, fx(P, V3, UI), config, source="hubspot", now=NOW)
    got = {(r["outcome"], r["reason"]): r["exits"] for r in run_metric(Gateway(db), "disqualifiers", MetricRequest())}
    # "Pricing too high", "No budget" and "Kept in-house" through the default [reasons] map.
    assert got == {("lost", "Price"): 1, ("lost", "Budget"): 1, ("lost", "Kept in-house"): 1}


@pytest.mark.slow
def test_the_quarantine_keeps_line_detail_and_raw_text(tmp_path, config):
    db = tmp_path / "wh.duckdb"
    load_files(db, fx(P, H), config, source="hubspot", now=NOW)
    got = rows(db, "select line, reason, raw from quarantine order by line")
    assert got[0] == (19, "unknown_stage_id", "9003,dealstage,152118399,1771581600000,CRM_UI,userId:4101,Dana Whitfield,4101")
    assert [g[:2] for g in got] == [(19, "unknown_stage_id"), (22, "unparseable_timestamp"), (23, "missing_lead_id"), (26, "wrong_column_count")]
    loaded = rows(db, "select lead_id, stage, stage_label, entered_at, reason, source_line from raw_events where lead_id = 'deal:9002' order by entered_at")
    assert loaded[-1][1:] == ("lost", "Closed Lost", __import__("datetime").datetime(2026, 3, 25, 17, 0), "Chose offshore competitor", 16)


@pytest.mark.slow
def test_the_cli_loads_with_source_hubspot_and_prints_the_notes(tmp_path):
    cfg = write(tmp_path / "funnel.toml", LABELS)
    db = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(main, ["load", *map(str, fx(P, V3, UI)), "--source", "hubspot", "--config", str(cfg), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "12 events read = 9 loaded + 3 quarantined + 0 duplicates" in result.output
    assert "export rows: 6 = 5 used + 1 ignored (no_stage_dates 1)" in result.output
    assert "note: HubSpot's wide deal export keeps one 'Date entered' per stage" in result.output
    bad = CliRunner().invoke(main, ["load", str(FIXTURES / "deals_truncated.json"), "--source", "hubspot", "--config", str(cfg), "--db", str(db)])
    assert bad.exit_code == 2 and "is not valid JSON" in bad.output and "Traceback" not in bad.output


def test_docs_list_every_option_and_ignored_reason():
    import re

    import funnelboard.etl.sources.hubspot as adapter

    docs = (Path(__file__).parents[3] / "docs" / "sources.md").read_text()
    section = docs.split("\n## HubSpot\n", 1)[1].split("\n## ", 1)[0]
    reasons = set(re.findall(r'ignore\([^)]*?"([a-z_]+)"', Path(adapter.__file__).read_text()))
    assert reasons >= {"reason_value", "no_stage_dates", "pipeline_stage"}
    for name in sorted(reasons) + list(adapter.OPTION_KEYS):
        assert f"`{name}`" in section, name


# -- one journey per buyer: contacts and deals joined through their associations ---------------------

C3, D3A, V4, UIC = "contacts_v3.json", "deals_v3_associations.json", "deal_contact_associations_v4.json", "deals_export_contacts.csv"
ALONE = ["Lead"]
ANA = ["Subscriber", "Lead", "Marketing Qualified Lead", "Sales Qualified Lead"]
BEN, CHLOE = ["Lead", "Marketing Qualified Lead"], ["Lead", "Marketing Qualified Lead"]
DEV = ["Lead", "Marketing Qualified Lead", "Sales Qualified Lead"]


def journeys_of(t) -> dict[str, list[str]]:
    """Each journey's stage labels in time order (same instant: the file's order)."""
    from funnelboard.etl.sources.salesforce import parse_instant

    out: dict[str, list[tuple]] = {}
    for i, r in enumerate(t.events.to_pylist()):
        out.setdefault(r["lead_id"], []).append((parse_instant(r["entered_at"], "UTC")[0], i, r["stage"]))
    return {k: [s for *_, s in sorted(v)] for k, v in out.items()}


# (case, files, journeys, words in the notes)
JOINS = [
    (
        "v3 objects with associations: the deal's stages follow its contact's, under the contact's id",
        (C3, D3A),
        {
            "contact:601": [*ANA, "Appointment Scheduled", "Contract Sent", "Customer", "Closed Won"],
            "contact:602": [*BEN, "Appointment Scheduled", "Closed Lost"],
            "contact:603": [*CHLOE, "Appointment Scheduled", "Qualified To Buy"],  # 9603 lists 699 (not here) first
            "contact:604": DEV, "contact:605": ALONE,
            "contact:9604": ALONE, "deal:9604": ["Appointment Scheduled"],  # same number, two records
            "deal:9605": ["Appointment Scheduled"],  # 601's second deal: one journey per buyer
        },
        ["3 of 5 deal(s) continue the journey of an associated contact", "2 have no associated contact",
         "1 deal(s) are associated with several contacts: each joins the first one listed",
         "1 deal(s) are associated with a contact an earlier deal already continues"],
    ),
    (
        "the v4 associations batch read joins deals that carry none",
        (P, "deals_v3.json", C3, V4),
        {
            "contact:601": [*ANA, "Customer"], "contact:602": [*BEN, "Appointment Scheduled", "Qualified To Buy", "Closed Lost",
                                                                "Qualified To Buy", "Contract Sent", "Closed Won"],
            "contact:603": CHLOE, "contact:604": [*DEV, "Appointment Scheduled", "Presentation Scheduled", "Closed Lost"],
            "contact:605": ALONE, "contact:9604": ALONE, "deal:9103": ["Discovery"],
        },
        ["2 of 3 deal(s) continue the journey of an associated contact", "1 deal(s) are associated with several contacts"],
    ),
    (
        "a CSV of deal-contact pairs does the same",
        (P, "deals_v3.json", C3, "deal_contact_pairs.csv"),
        {
            "contact:601": [*ANA, "Customer"], "contact:602": [*BEN, "Appointment Scheduled", "Qualified To Buy", "Closed Lost",
                                                                "Qualified To Buy", "Contract Sent", "Closed Won"],
            "contact:603": CHLOE, "contact:604": [*DEV, "Appointment Scheduled", "Presentation Scheduled", "Closed Lost"],
            "contact:605": ALONE, "contact:9604": ALONE, "deal:9103": ["Discovery"],
        },
        ["2 of 3 deal(s) continue the journey of an associated contact"],
    ),
    (
        "the deal export's Associated Contact IDs column",
        (C3, UIC),
        {
            "contact:601": [*ANA, "Customer"], "contact:602": BEN, "contact:603": CHLOE,
            "contact:604": [*DEV, "Appointment Scheduled", "Closed Lost"],
            "contact:605": ["Lead", "Appointment Scheduled", "Contract Sent", "Closed Won"],  # "605;603": the first listed
            "contact:9604": ALONE, "deal:9703": ["Appointment Scheduled"],
        },
        ["2 of 3 deal(s) continue the journey of an associated contact"],
    ),
    (
        "deals and contacts without associations stay apart, and the note says what to give",
        ("deals_export.csv", "contacts_v1.json"),
        None,
        ["Deals and contacts were given without their associations, so none of the 4 deal(s) could join"],
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,files,journeys,notes", JOINS, ids=[c[0][:60] for c in JOINS])
def test_contacts_and_deals_join_through_their_associations(config, case, files, journeys, notes):
    t = translate(fx(*files), config, {})
    got = journeys_of(t)
    if journeys is not None:
        assert got == journeys
    else:
        assert {k.split(":")[0] for k in got} == {"deal", "contact"}
    for words in notes:
        assert any(words in n for n in t.notes), (words, t.notes)


def test_a_deal_and_a_contact_with_one_number_stay_two_records(config):
    """A long history keyed by objectId: the property says which record a row is; a shared attribute goes to both."""
    t = translate(fx("property_history_mixed.csv"), config, {})
    assert journeys_of(t) == {"contact:9001": ["Lead", "Marketing Qualified Lead"], "deal:9001": ["Appointment Scheduled", "Closed Won"]}
    assert {r["lead_id"]: r["owner"] for r in t.events.to_pylist()} == {"contact:9001": "4101", "deal:9001": "4101"}


@pytest.mark.slow
def test_joined_journeys_give_the_funnel_of_buyers(tmp_path, config):
    db = tmp_path / "wh.duckdb"
    report = load_files(db, fx(C3, D3A), config, source="hubspot", now=NOW)
    assert all(f.balanced for f in report.files)
    gateway = Gateway(db)
    # 8 journeys: six contacts (601-605, 9604) and deals 9604 and 9605, which start at sql (skipped stages count).
    assert [r["reached"] for r in run_metric(gateway, "funnel", MetricRequest())] == [8, 6, 6, 2, 1, 1]
    sql_rate = run_metric(gateway, "conversion", MetricRequest(from_stage="mql", to_stage="sql", window_days=0))[0]
    assert (sql_rate["cohort"], sql_rate["converted"]) == (6, 6)
    assert rows(db, "select count(distinct lead_id) from raw_events where lead_id like '%9604'") == [(2,)]


def test_an_associations_file_that_does_not_say_its_direction_is_one_sentence(tmp_path, config):
    src = write(tmp_path / "associations.json", '{"results": [{"from": {"id": "9101"}, "to": [{"toObjectId": 604, "associationTypes": '
                                                '[{"category": "USER_DEFINED", "typeId": 41, "label": "Decision maker"}]}]}]}')
    with pytest.raises(UserError, match=r"does not say whether it links deals to contacts or contacts to deals: expected association typeId 3"):
        translate([src], config, {})


# -- the buyer: first response, buyer role and decision makers from contact properties -----------------
#
# contacts_v3_buyers.json: GET /crm/v3/objects/contacts?properties=jobtitle,hs_buying_role,hs_first_outreach_date,
# hs_sa_first_engagement_date&propertiesWithHistory=lifecyclestage&associations=deals (one page);
# deals_v3_buyers.json: the deals with associations=contacts; contact_property_history_buyers.csv: a long history
# of contact properties, datetime values in epoch milliseconds as HubSpot writes them there.

BUYERS = ("contacts_v3_buyers.json", "deals_v3_buyers.json")
BUYER_VALUES = {
    # journey: (first response, buyer role, decision makers)
    "contact:701": ("2026-04-02T09:40:00.000Z", "operations lead", "2"),  # first outreach; Maria + Lin (budget holder)
    "contact:702": ("2026-04-06T13:00:00.000Z", "procurement", None),     # no first outreach: the owner's first engagement
    "contact:704": (None, None, None),                                    # never reached out to
    "deal:9803": ("2026-04-09T10:30:00.000Z", "operations lead", "1"),    # its contact Ola has no journey of her own
    "deal:9802": (None, None, None),                                      # its contact is not in the load
}
BUYER_CONFIG = '\n[segments]\nchannel = "Channel"\nbuyer_role = "Buyer role"\n[attributes]\nnumeric = ["decision_makers"]\nfirst_response = "first_response_at"\n'


def buyer_values(t) -> dict[str, tuple]:
    out: dict[str, set] = {}
    for r in t.events.to_pylist():
        out.setdefault(r["lead_id"], set()).add((r.get("first_response_at"), r.get("buyer_role"), r.get("decision_makers")))
    assert all(len(v) == 1 for v in out.values()), out  # every event of a journey carries its buyer's values
    return {k: v.pop() for k, v in out.items()}


def test_contact_properties_give_the_buyer_of_each_journey(config):
    t = translate(fx(*BUYERS), config, {})
    assert buyer_values(t) == BUYER_VALUES
    assert t.ignored == {str(FIXTURES / BUYERS[0]): {"no_stage_history": 3}} and t.rejected == []


def test_a_long_contact_history_gives_the_latest_title_and_epoch_first_outreach(config):
    path = FIXTURES / "contact_property_history_buyers.csv"
    t = translate([path], config, {})
    assert buyer_values(t) == {"contact:801": ("2026-04-01T09:12:30.000Z", "finance", "1"), "contact:802": (None, None, None)}
    assert t.ignored == {str(path): {"attribute_value": 4}}
    assert [(r.line, r.reason) for r in t.rejected] == [(10, "unparseable_timestamp")]
    assert 'hs_first_outreach_date of contact:802: hs_first_outreach_date is "02/04/2026 10:00"' in t.rejected[0].detail


def test_decision_roles_and_first_response_properties_options(config):
    t = translate(fx(*BUYERS), config, {"decision_roles": ["DECISION_MAKER"], "first_response_properties": ["hs_sa_first_engagement_date"]})
    got = buyer_values(t)
    assert got["contact:701"] == ("2026-04-03T14:00:00.000Z", "operations lead", "1")
    assert got["deal:9803"] == (None, "operations lead", "1")


def test_exports_without_buyer_properties_add_no_columns(config):
    t = translate(fx("contacts_v3.json", "deals_v3_associations.json", "deal_property_history.csv"), config, {})
    assert not {"first_response_at", "buyer_role", "decision_makers"} & set(t.events.column_names)


@pytest.mark.slow
def test_the_buyer_reaches_fct_leads_and_speed_to_lead(tmp_path):
    db = tmp_path / "wh.duckdb"
    report = load_files(db, fx(*BUYERS), make_config(tmp_path, BUYER_CONFIG), source="hubspot", now=NOW)
    assert all(f.balanced for f in report.files)
    got = rows(db, "select lead_id, first_response_at, buyer_role, decision_makers from fct_leads order by lead_id")
    assert got == sorted((k, *v) for k, v in BUYER_VALUES.items())
    # From MQL: Maria answered after 1 h 40 min, Tom after 28 h, deal 9803 before it reached MQL (0 h); Sam and 9802 never.
    [result] = run_metric(Gateway(db), "speed_to_lead", MetricRequest(as_of=datetime(2026, 6, 1)))
    assert (result["leads"], result["answered"], result["unanswered"]) == (5, 3, 2)
    assert result["p50_hours"] == pytest.approx(1 + 40 / 60, abs=1e-9)
    by_role = run_metric(Gateway(db), "speed_to_lead", MetricRequest(as_of=datetime(2026, 6, 1), segment="buyer_role"))
    assert {r["buyer_role"]: (r["leads"], r["answered"]) for r in by_role} == {
        "operations lead": (2, 2), "procurement": (1, 1), "(none)": (2, 0)}


def test_legacy_v1_contacts_give_the_buyer_from_property_values(tmp_path, config):
    """contacts/v1/lists/all/contacts/all?property=jobtitle&property=hs_first_outreach_date&propertyMode=value_and_history:
    each property is {"value", "versions"}; datetime values are epoch milliseconds."""
    doc = {"contacts": [{"vid": 901, "canonical-vid": 901, "is-contact": True, "properties": {
        "lifecyclestage": {"value": "marketingqualifiedlead", "versions": [
            {"value": "marketingqualifiedlead", "source-type": "AUTOMATION_PLATFORM", "timestamp": 1775379600000},
            {"value": "lead", "source-type": "FORM", "timestamp": 1775376000000}]},
        "jobtitle": {"value": "Contact Centre Manager", "versions": [{"value": "Contact Centre Manager", "timestamp": 1775376000000}]},
        "hs_first_outreach_date": {"value": "1775383200000", "versions": [{"value": "1775383200000", "timestamp": 1775383201000}]},
        "hs_buying_role": {"value": "END_USER", "versions": [{"value": "END_USER", "timestamp": 1775383300000}]},
    }}], "has-more": False, "vid-offset": 901}
    src = write(tmp_path / "contacts_v1.json", json.dumps(doc))
    t = translate([src], config, {})
    assert buyer_values(t) == {"contact:901": ("2026-04-05T10:00:00.000Z", "operations lead", "0")}


# --------------------------------------------------------------------------- money history


def money_of(t) -> list[tuple]:
    """(record, stage, entered_at, amount, close_date, currency, forecast_category, line) of each event, in time order."""
    out = [(r["lead_id"], r["stage"], r["entered_at"], r.get("amount"), r.get("close_date"), r.get("currency"),
            r.get("forecast_category"), r["_line"]) for r in t.events.to_pylist()]
    return sorted(out, key=lambda e: (e[0], e[2], e[7]))


def test_long_history_gives_each_move_its_money_and_a_row_per_change_between_moves(config):
    """Deal 9301: its values set as it was created fold into its first stage; a raise and a close-date push (epoch ms,
    with a forecast change in the same instant: one row) repeat the stage; a value set to what it was is no change."""
    money = "deal_money_history.csv"
    t = translate(fx(money), config, {})
    assert money_of(t) == [
        ("deal:9301", "Appointment Scheduled", "2026-04-01T09:00:00.000Z", "30000", "2026-05-29", "EUR", "PIPELINE", 2),
        ("deal:9301", "Appointment Scheduled", "2026-04-03T15:20:00.000Z", "36000", "2026-05-29", "EUR", "PIPELINE", 7),
        ("deal:9301", "Qualified To Buy", "2026-04-07T10:00:00.000Z", "36000", "2026-05-29", "EUR", "BEST_CASE", 8),
        ("deal:9301", "Qualified To Buy", "2026-04-10T11:00:00.000Z", "36000", "2026-06-29", "EUR", "COMMIT", 10),
        ("deal:9301", "Closed Won", "2026-04-20T16:00:00.000Z", "36000", "2026-06-29", "EUR", "CLOSED", 13),
    ]
    assert by_name(t.ignored) == {money: {"attribute_value": 8}}  # lines 3-6, 9, 11, 12 and 14
    assert by_name(t.source_rows) == {money: 13}


def test_v3_history_gives_money_changes_and_a_current_value_without_history_holds_from_the_first_move(config):
    t = translate(fx("deals_v3_money.json"), config, {})
    assert money_of(t) == [
        ("deal:9401", "Appointment Scheduled", "2026-04-02T08:00:00.000Z", "50000", "2026-06-30", "GBP", "PIPELINE", 1),
        ("deal:9401", "Appointment Scheduled", "2026-04-09T12:30:00.000Z", "58000", "2026-06-30", "GBP", "PIPELINE", 1),
        ("deal:9401", "Contract Sent", "2026-04-16T10:00:00.000Z", "64000", "2026-06-30", "GBP", "COMMIT", 1),
        ("deal:9401", "Contract Sent", "2026-04-21T09:00:00.000Z", "64000", "2026-07-15", "GBP", "COMMIT", 1),
    ]
