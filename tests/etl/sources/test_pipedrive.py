"""The Pipedrive adapter: deal flow, deals export and stages give exact events; loads add up."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.sources.pipedrive import translate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows, write
from tests.etl.sources import NAME_NO_RECORD

FIXTURES = Path(__file__).parents[2] / "fixtures" / "pipedrive"

LABELS = """
[labels]
"Qualified" = "mql"
"Contact Made" = "sql"
"Demo Scheduled" = "opportunity"
"Proposal Made" = "proposal"
"Negotiations Started" = "proposal"
"""


def make_config(tmp_path: Path, extra: str = ""):
    return load_config(write(tmp_path / "funnel.toml", LABELS + extra))


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


def fx(*names: str) -> list[Path]:
    return [FIXTURES / n for n in names]


def events_of(t) -> list[tuple]:
    return [(r["lead_id"], r["stage"], r["entered_at"], r["reason"], Path(r["_file"]).name, r["_line"])
            for r in t.events.to_pylist()]


def rejected_of(t) -> list[tuple]:
    return sorted((Path(r.file).name, r.line, r.reason) for r in t.rejected)


def by_name(d: dict) -> dict:
    return {Path(k).name: v for k, v in d.items()}


FLOW, STAGES, CSV, FLOW_CSV = "deal_flow.json", "stages.json", "deals_export.csv", "deals_export_flow_deals.csv"

# Deal 42 moves 1->2->3->4 and is won; 43 is lost, reopened into its stage and won; 44 never moves and is
# lost; 45 moves through a stage id nothing names; 46 is deleted; 47 has an impossible log_time.
FLOW_EVENTS = [
    ("42", "Qualified", "2026-03-02T09:00:00Z", None, FLOW, 9),
    ("42", "Contact Made", "2026-03-04T10:00:00Z", None, FLOW, 8),
    ("42", "Demo Scheduled", "2026-03-09T15:30:00Z", None, FLOW, 7),
    ("42", "Proposal Made", "2026-03-13T11:00:00Z", None, FLOW, 4),
    ("42", "Won", "2026-03-20T16:00:00Z", None, FLOW, 2),
    ("43", "Qualified", "2026-03-03T08:30:00Z", None, FLOW, 18),
    ("43", "Contact Made", "2026-03-05T11:00:00Z", None, FLOW, 17),
    ("43", "Proposal Made", "2026-03-10T13:15:00Z", None, FLOW, 15),
    ("43", "Lost", "2026-03-17T12:00:00Z", "Chose offshore competitor", FLOW, 14),
    ("43", "Proposal Made", "2026-03-24T09:00:00Z", None, FLOW, 12),  # reopened: back in its stage
    ("43", "Negotiations Started", "2026-03-26T14:00:00Z", None, FLOW, 11),
    ("43", "Won", "2026-04-02T10:00:00Z", None, FLOW, 10),
]
FLOW_TAIL = [
    ("45", "Qualified", "2026-03-07T10:00:00Z", None, FLOW, 24),
    ("45", "Demo Scheduled", "2026-03-11T12:00:00Z", None, FLOW, 22),
    ("47", "Qualified", "2026-03-08T09:00:00Z", None, FLOW, 30),
    ("47", "Contact Made", "2026-03-09T10:00:00Z", None, FLOW, 29),
]
FLOW_IGNORED = {"not_a_deal_change": 2, "other_field": 1, "attribute_value": 2, "reason_value": 2, "deleted_deal": 3}

# (case, files, events, rejections, ignored per file, source rows per file)
CASES = [
    (
        "deal flow alone",
        (FLOW,),
        FLOW_EVENTS + [("44", "Lost", "2026-03-12T17:04:58Z", "No budget", FLOW, 20)] + FLOW_TAIL,
        [(FLOW, 21, "unknown_initial_stage"), (FLOW, 23, "unknown_stage_id"), (FLOW, 28, "impossible_timestamp")],
        {FLOW: FLOW_IGNORED},
        {FLOW: 30},
    ),
    (
        "deal flow with stages and the deals export: the export supplies 44's first stage, 48 has no flow",
        (STAGES, FLOW, FLOW_CSV),
        [
            ("48", "lead", "2026-03-11 09:00:00", None, FLOW_CSV, 3),
            ("48", "Contact Made", "2026-03-13 15:00:00", None, FLOW_CSV, 3),
            *FLOW_EVENTS,
            ("44", "Qualified", "2026-03-06T10:00:00Z", None, FLOW, 21),
            ("44", "Lost", "2026-03-12T17:04:58Z", "No budget", FLOW, 20),
            *FLOW_TAIL,
        ],
        [(FLOW, 23, "unknown_stage_id"), (FLOW, 28, "impossible_timestamp")],
        {STAGES: {"stage_definition": 5}, FLOW: FLOW_IGNORED, FLOW_CSV: {"history_in_flow": 1}},
        {STAGES: 5, FLOW: 30, FLOW_CSV: 2},
    ),
    (
        "deals export alone: creation, current stage, won or lost time",
        (CSV,),
        [
            ("101", "lead", "2026-03-02 09:00:00", None, CSV, 2),
            ("101", "Proposal Made", "2026-03-13 11:00:00", None, CSV, 2),
            ("101", "Won", "2026-03-20 16:00:00", None, CSV, 2),
            ("102", "lead", "2026-03-03 08:30:00", None, CSV, 3),
            ("102", "Contact Made", "2026-03-05 14:00:00", None, CSV, 3),
            ("102", "Lost", "2026-03-12 12:00:00", "Pricing too high", CSV, 3),
            ("103", "Qualified", "2026-03-04 10:00:00", None, CSV, 4),  # never moved: its stage since creation
            ("104", "Demo Scheduled", "2026-03-09 10:00:00", None, CSV, 5),
            ("106", "lead", "2026-03-05 09:00:00", None, CSV, 7),
            ("106", "Negotiations Started", "2026-03-18 10:00:00", None, CSV, 7),
            ("107", "lead", "2026-03-10 12:00:00", None, CSV, 8),
            ("107", "Kick-off", "2026-03-16 09:30:00", None, CSV, 8),  # not in [labels]: the loader lists it
        ],
        [(CSV, 5, "unparseable_timestamp"), (CSV, 7, "missing_timestamp")],
        {CSV: {"deleted": 1}},
        {CSV: 7},
    ),
]


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


def test_rejections_say_what_is_wrong_and_what_to_do(config):
    details = {r.line: r.detail for r in translate(fx(FLOW), config, {}).rejected}
    assert details == {
        21: "deal 44 never changed stage in the flow, so the stage it was created in is unknown",
        23: 'deal 45 moved to stage id "9", which is not in the stages list: give GET /stages with the flow or name it '
            "under [source.pipedrive] stage_names",
        28: 'deal 47 stage_id change: log_time is "2026-02-30 14:00:00", not a real date or time',
    }
    details = {r.line: r.detail for r in translate(fx(CSV), config, {}).rejected}
    assert details == {5: 'Deal - Deal created is "04/03/2026 10:15", not a time like 2026-03-04 15:22:01',
                       7: "Deal - Won time is empty"}


def test_attributes_come_from_the_export_row_else_from_the_flow(config):
    t = translate(fx(STAGES, FLOW, FLOW_CSV), config, {})
    got = {r["lead_id"]: (r["owner"], r["amount"], r["pipeline"], r["channel"]) for r in t.events.to_pylist()}
    assert got["44"] == ("Tom Okafor", "22000", "Sales", "Cold outreach")  # the export row, though its history is the flow's
    assert got["42"] == (None, "84000", None, None)  # the flow's latest `value`
    assert got["43"] == ("9", None, None, None)  # the flow's latest `user_id`
    assert got["48"] == ("Mia Chen", "9000", "Sales", "Referral")


def test_stage_names_option_names_an_unknown_id(config):
    t = translate(fx(FLOW), config, {"stage_names": {"9": "Demo Scheduled"}})
    assert ("45", "Demo Scheduled", "2026-03-08T09:00:00Z", None, FLOW, 23) in events_of(t)
    assert [r.reason for r in t.rejected if r.line == 23] == []


def test_stages_file_option_is_read_relative_to_funnel_toml(tmp_path):
    config = make_config(tmp_path, '"Discovery Call" = "sql"\n\n[source.pipedrive]\nstages = "defs/stages.json"\n')
    stages = json.loads((FIXTURES / STAGES).read_text())
    stages["data"].append({**stages["data"][1], "id": 9, "name": "Discovery Call", "order_nr": 9})
    (tmp_path / "defs").mkdir()
    write(tmp_path / "defs" / "stages.json", json.dumps(stages))
    t = translate(fx(FLOW), config, config.sources["pipedrive"])
    assert ("45", "Discovery Call", "2026-03-08T09:00:00Z", None, FLOW, 23) in events_of(t)
    assert "stages.json" not in by_name(t.source_rows), "an options file is not an export"
    assert rejected_of(t) == [(FLOW, 21, "unknown_initial_stage"), (FLOW, 28, "impossible_timestamp")]


def test_created_stage_names_the_stage_a_new_deal_enters(config):
    t = translate(fx(CSV), config, {"created_stage": "Qualified"})
    assert events_of(t)[0] == ("101", "Qualified", "2026-03-02 09:00:00", None, CSV, 2)


def test_export_without_last_stage_change_dates_the_current_stage_at_creation(tmp_path, config):
    src = write(tmp_path / "deals.csv", (
        '"Deal - ID","Deal - Title","Deal - Stage","Deal - Status","Deal - Deal created","Deal - Won time","Deal - Lost time","Deal - Lost reason"\n'
        '"201","Acme","Proposal Made","Won","2026-03-02 09:00:00","2026-03-20 16:00:00","",""\n'
        '"202","Beta","Contact Made","Lost","2026-03-03 10:00:00","","2026-03-09 11:00:00","No decision-maker involved"\n'
        '"203","Gamma","Qualified","Abandoned","2026-03-04 10:00:00","","",""\n'
    ))
    t = translate([src], config, {})
    assert [e[:4] for e in events_of(t)] == [
        ("201", "Proposal Made", "2026-03-02 09:00:00", None),
        ("201", "Won", "2026-03-20 16:00:00", None),
        ("202", "Contact Made", "2026-03-03 10:00:00", None),
        ("202", "Lost", "2026-03-09 11:00:00", "No decision-maker involved"),
    ]
    assert [(r.line, r.reason, r.detail) for r in t.rejected] == [
        (4, "unknown_status", 'Deal - Status is "Abandoned", not Open, Won, Lost or Deleted')]
    assert any("without a 'Deal - Last stage change' column dates each deal's current stage at its creation" in n for n in t.notes)


def test_notes_say_the_deals_export_is_partial_only_when_it_is_used(config):
    partial = translate(fx(CSV), config, {}).notes
    assert any("keeps only each deal's creation, current stage and won or lost time" in n for n in partial)
    flow = translate(fx(FLOW), config, {}).notes
    assert not any("keeps only" in n for n in flow)
    assert any("position of its flow item" in n and "UTC" in n for n in flow)
    assert any("1 deal(s) never changed stage in their flow" in n for n in flow)


# -- file-level problems ---------------------------------------------------------------------------

FILE_ERRORS = [
    ("deals export without Deal - Status", ["deals_export_no_status.csv"], {},
     "Pipedrive deals export '{d}/deals_export_no_status.csv' has no 'Deal - Status' column: expected Deal - ID, Deal - Stage, "
     "Deal - Status, Deal - Deal created, Deal - Won time, Deal - Lost time; found Deal - ID, Deal - Title"),
    ("a deals list instead of a flow", ["deals_list.json"], {},
     "Pipedrive export '{d}/deals_list.json' is neither a deal flow (GET /deals/{id}/flow: data[].object) nor a stages list"),
    ("unknown option", [FLOW], {"stage": "x"}, "[source.pipedrive] has unknown key 'stage'; expected one of stages, stage_names, "),
    ("created_stage not a stage or label", [CSV], {"created_stage": "Inbox"}, "[source.pipedrive] created_stage = 'Inbox'; expected a stage"),
    ("missing stages file", [FLOW], {"stages": "/nowhere/stages.json"}, "[source.pipedrive] stages file '/nowhere/stages.json' does not exist."),
]


@pytest.mark.parametrize("case,files,options,message", FILE_ERRORS, ids=[c[0] for c in FILE_ERRORS])
def test_file_level_problems_are_one_clear_sentence(config, case, files, options, message):
    with pytest.raises(UserError) as exc:
        translate(fx(*files), config, options)
    text = str(exc.value).replace(str(FIXTURES), "{d}")
    assert message in text and "\n" not in text


@pytest.mark.parametrize("text,message", [
    ('[{"success": true, "data": [', "is not valid JSON: Expecting value at line 1, column 29."),
    ('{"success": false, "error": "unauthorized access", "errorCode": 401}', "is an error response from the Pipedrive API: unauthorized access."),
    ('{"success": true, "data": [], "additional_data": {}}', "has no flow items: expected at least one."),
])
def test_broken_json_is_one_clear_sentence(tmp_path, config, text, message):
    src = write(tmp_path / "flow.json", text)
    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("(", r"\(")):
        translate([src], config, {})


def test_a_malformed_export_changes_nothing(tmp_path, config):
    db = tmp_path / "wh.duckdb"
    with pytest.raises(UserError):
        load_files(db, fx(CSV, "deals_export_no_status.csv"), config, source="pipedrive", now=NOW)
    assert not db.exists()


# -- full loads ------------------------------------------------------------------------------------

# (files, {file: (events read, loaded, quarantined, duplicates, export rows, ignored)}, quarantine reasons,
#  funnel reached lead..won, stage accounting {stage: {column: n}})
LOADS = [
    (
        (STAGES, FLOW, FLOW_CSV),
        {STAGES: (0, 0, 0, 0, 5, 5), FLOW: (20, 18, 2, 0, 30, 10), FLOW_CSV: (2, 2, 0, 0, 2, 1)},
        {"unknown_stage_id": 1, "impossible_timestamp": 1},
        # 42 mql->sql->opp->proposal->won; 43 mql->sql->proposal->lost->proposal->won; 44 mql->lost;
        # 45 mql->opp; 47 mql->sql; 48 lead->sql
        [6, 6, 5, 3, 2, 2],
        {
            "mql": {"entered": 5, "advanced": 4, "exited_lost": 1},
            "proposal": {"entered": 3, "advanced": 2, "exited_lost": 1},
        },
    ),
    (
        (CSV,),
        {CSV: (14, 11, 3, 0, 7, 1)},
        {"unparseable_timestamp": 1, "missing_timestamp": 1, "unknown_stage": 1},
        # 101 lead->proposal->won; 102 lead->sql->lost; 103 mql; 104 opp; 106 lead->proposal; 107 lead
        [6, 5, 4, 3, 2, 1],
        {
            "lead": {"entered": 4, "advanced": 3, "open": 1},
            "sql": {"entered": 1, "exited_lost": 1},
            "proposal": {"entered": 2, "advanced": 1, "open": 1},
        },
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("files,per_file,reasons,funnel,accounting", LOADS, ids=["+".join(c[0]) for c in LOADS])
def test_full_load_accounts_for_every_row_and_gives_the_hand_computed_funnel(tmp_path, config, files, per_file, reasons, funnel, accounting):
    db = tmp_path / "wh.duckdb"
    report = load_files(db, fx(*files), config, source="pipedrive", now=NOW)
    got = {f.path.name: (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate, f.source_rows, f.rows_ignored)
           for f in report.files}
    assert got == per_file
    assert all(f.balanced and f.source == "pipedrive" for f in report.files)
    assert dict(rows(db, "select reason, count(*) from quarantine group by 1")) == reasons
    gateway = Gateway(db)
    assert [r["reached"] for r in run_metric(gateway, "funnel", MetricRequest())] == funnel
    by_stage = {r["stage"]: r for r in run_metric(gateway, "stage_accounting", MetricRequest())}
    for stage, expected in accounting.items():
        assert {k: v for k, v in by_stage[stage].items() if v and k not in ("stage", "exited")} == expected
    conversion = run_metric(gateway, "conversion", MetricRequest(from_stage="mql", to_stage="won"))[0]
    assert (conversion["cohort"], conversion["converted"]) == (funnel[1], funnel[-1])


def test_flow_times_are_utc_whatever_the_funnel_time_zone(tmp_path):
    config = make_config(tmp_path, '\n[funnel]\ntimezone = "Europe/Berlin"\n')
    db = tmp_path / "wh.duckdb"
    load_files(db, fx(STAGES, FLOW, FLOW_CSV), config, source="pipedrive", now=NOW)
    from datetime import datetime

    got = dict(rows(db, "select lead_id || ' ' || stage_label, entered_at from raw_events where lead_id in ('42', '48') and stage_label in ('Won', 'lead')"))
    assert got == {"42 Won": datetime(2026, 3, 20, 16, 0), "48 lead": datetime(2026, 3, 11, 8, 0)}  # export times are Berlin time


def test_loss_reasons_reach_the_disqualifier_metric(tmp_path, config):
    db = tmp_path / "wh.duckdb"
    load_files(db, fx(STAGES, FLOW, FLOW_CSV), config, source="pipedrive", now=NOW)
    got = {(r["outcome"], r["reason"]): r["exits"] for r in run_metric(Gateway(db), "disqualifiers", MetricRequest())}
    assert got == {("lost", "Lost to competitor"): 1, ("lost", "Budget"): 1}


def test_the_cli_loads_with_source_pipedrive_and_says_history_is_partial(tmp_path):
    cfg = write(tmp_path / "funnel.toml", LABELS)
    db = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(main, ["load", str(FIXTURES / CSV), "--source", "pipedrive", "--config", str(cfg), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "14 events read = 11 loaded + 3 quarantined + 0 duplicates" in result.output
    assert "export rows: 7 = 6 used + 1 ignored (deleted 1)" in result.output
    assert "note: Pipedrive's deals export keeps only each deal's creation, current stage and won or lost time" in result.output
    assert '"Kick-off" (1 row)' in result.output


def test_docs_list_every_option_and_ignored_reason():
    import re

    import funnelboard.etl.sources.pipedrive as adapter

    docs = (Path(__file__).parents[3] / "docs" / "sources.md").read_text()
    section = docs.split("\n## Pipedrive\n", 1)[1].split("\n## ", 1)[0]
    reasons = set(re.findall(r'ignore\([^)]*?"([a-z_]+)"', Path(adapter.__file__).read_text()))
    assert reasons >= {"deleted_deal", "history_in_flow", "stage_definition"}
    for name in sorted(reasons) + list(adapter.OPTION_KEYS):
        assert f"`{name}`" in section, name


def test_every_flow_item_of_a_deleted_deal_is_deleted_deal(config):
    """Deal 61 is deleted: its activity, file, email (which names no deal: its response's deal), field changes and
    even an unreadable change are all `deleted_deal`. Deal 62 was deleted and restored: its history loads."""
    t = translate(fx("deal_flow_deleted.json", STAGES), config, {})
    flow = "deal_flow_deleted.json"
    assert by_name(t.ignored)[flow] == {"deleted_deal": 9, "other_status_change": 2, "not_a_deal_change": 1}
    assert t.rejected == []
    assert [(e[0], e[1]) for e in events_of(t)] == [("62", "Qualified"), ("62", "Contact Made")]
    assert by_name(t.source_rows)[flow] == 14 == 9 + 2 + 1 + 2


EXAMPLE = Path(__file__).parents[3] / "examples" / "pipedrive" / "funnel.toml"


def test_the_example_funnel_is_self_contained_and_loads_the_exports(tmp_path):
    config = load_config(EXAMPLE)
    assert config.stages == ("qualified", "contact_made", "demo", "proposal", "negotiation", "won")
    assert "closed won" not in config.label_map() and "no timeline" not in config.reason_map(), "nothing of the demo funnel"
    db = tmp_path / "wh.duckdb"
    report = load_files(db, fx(STAGES, FLOW, FLOW_CSV), config, source="pipedrive", now=NOW)
    assert all(f.balanced for f in report.files) and not any(f.unknown_labels for f in report.files)
    gateway = Gateway(db)
    # 42 and 43 won; 44 lost in qualified; 45 skips contact_made to demo; 47 reached contact_made; 48 (export) too.
    assert [r["reached"] for r in run_metric(gateway, "funnel", MetricRequest())] == [6, 5, 3, 2, 2, 2]
    got = {(r["outcome"], r["reason"]): r["exits"] for r in run_metric(gateway, "disqualifiers", MetricRequest())}
    assert got == {("lost", "Lost to competitor"): 1, ("lost", "Budget"): 1}


# -- first responses from activities ----------------------------------------------------------------
#
# deal_flow_activities.json: two deals' flows (GET /v1/deals/{id}/flow) with their activity items: deal 61's
# done task (the seller's own to-do), call and email; deal 62's call still to do. activities.json: GET
# /v1/activities?user_id=0 with done, open and other-type activities of the deals export's deals, a logged
# call with no marked_as_done_time, a time Excel rewrote, and activities of no deal in the load.

RESPONSE = "first_response_at"


def responses_of(t) -> dict[str, str | None]:
    out: dict[str, set] = {}
    for r in t.events.to_pylist():
        out.setdefault(r["lead_id"], set()).add(r.get(RESPONSE))
    assert all(len(v) == 1 for v in out.values()), out  # every event of a deal carries its first response
    return {k: v.pop() for k, v in out.items()}


def test_the_flow_s_earliest_done_call_email_or_meeting_is_the_first_response(config):
    path = FIXTURES / "deal_flow_activities.json"
    t = translate([path], config, {})
    assert responses_of(t) == {"61": "2026-04-01T11:15:20Z", "62": None}  # the 09:30 task is not a response
    assert t.ignored == {str(path): {"not_a_deal_change": 5}}  # activity items count as before
    with_tasks = translate([path], config, {"response_types": ["task", "call"]})
    assert responses_of(with_tasks)["61"] == "2026-04-01T09:30:00Z"


def test_an_activities_file_gives_first_responses_to_the_deals_export(config):
    activities = FIXTURES / "activities.json"
    t = translate(fx("deals_export.csv", "activities.json"), config, {})
    got = responses_of(t)
    assert (got["101"], got["102"], got["103"]) == ("2026-03-02T09:30:00Z", "2026-03-04T16:45:00Z", None)
    assert t.ignored[str(activities)] == {"open_activity": 1, "other_activity_type": 1, "activity": 3, "unmatched_activity": 2}
    assert [(r.line, r.reason) for r in t.rejected if r.file == str(activities)] == [(6, "unparseable_timestamp")]
    assert t.source_rows[str(activities)] == 8


def test_exports_without_activities_add_no_first_response_column(config):
    t = translate(fx("deal_flow.json", "deals_export.csv", "stages.json"), config, {})
    assert RESPONSE not in t.events.column_names


@pytest.mark.slow
def test_first_responses_reach_fct_leads_and_speed_to_lead(tmp_path):
    db = tmp_path / "wh.duckdb"
    config = make_config(tmp_path, '\n[attributes]\nfirst_response = "first_response_at"\n')
    report = load_files(db, fx("deal_flow_activities.json", "activities.json"), config, now=NOW, source="pipedrive")
    assert all(f.balanced for f in report.files)
    assert rows(db, "select lead_id, first_response_at from fct_leads order by lead_id") == [
        ("61", "2026-04-01T11:15:20Z"), ("62", None)]
    # Deal 61 is created in Qualified (mql) at 09:00 UTC and first called at 11:15:20; deal 62 never.
    [result] = run_metric(Gateway(db), "speed_to_lead", MetricRequest(as_of=datetime(2026, 6, 1)))
    assert (result["leads"], result["answered"], result["unanswered"]) == (2, 1, 1)
    assert result["p50_hours"] == pytest.approx(2 + 15 / 60 + 20 / 3600, abs=1e-9)


def test_response_types_must_be_a_list_of_names(config):
    with pytest.raises(UserError, match="response_types"):
        translate(fx("deal_flow_activities.json"), config, {"response_types": [""]})


# --------------------------------------------------------------------------- money history


def money_of(t) -> list[tuple]:
    """(deal, stage, entered_at, amount, close_date, currency, line) of each event, in time order."""
    out = [(r["lead_id"], r["stage"], r["entered_at"], r.get("amount"), r.get("close_date"), r.get("currency"), r["_line"])
           for r in t.events.to_pylist()]
    return sorted(out, key=lambda e: (e[0], e[2], e[6]))


def test_flow_value_changes_give_each_move_its_values_and_a_row_per_change(config):
    """Deal 51: created at 36000 EUR closing 2026-04-30 (the first changes' old values); value raised twice between
    moves, then the currency and close date changed in one second (one row), and the value once more as it was won."""
    values = "deal_flow_values.json"
    t = translate(fx(values), config, {})
    assert money_of(t) == [
        ("51", "Qualified", "2026-03-30T09:00:00Z", "36000", "2026-04-30", "EUR", 9),
        ("51", "Demo Scheduled", "2026-04-01T10:00:00Z", "36000", "2026-04-30", "EUR", 8),
        ("51", "Demo Scheduled", "2026-04-02T12:00:00Z", "40000", "2026-04-30", "EUR", 7),
        ("51", "Proposal Made", "2026-04-06T11:00:00Z", "40000", "2026-04-30", "EUR", 6),
        ("51", "Proposal Made", "2026-04-08T16:00:00Z", "45000", "2026-04-30", "EUR", 5),
        ("51", "Proposal Made", "2026-04-14T09:30:00Z", "45000", "2026-05-29", "USD", 4),  # close date pushed, currency
        ("51", "Won", "2026-04-20T10:00:00Z", "47500", "2026-05-29", "USD", 1),  # the raise as it was won folds into the win
    ]
    # The close date logged in the currency's second, and the raise logged with the win, are no rows of their own.
    assert by_name(t.ignored) == {values: {"attribute_value": 2}}
    assert by_name(t.source_rows) == {values: 9}


def test_a_value_change_with_a_move_folds_into_the_move(config):
    """Deal 42's value went 60000 -> 84000 in the second it moved to Proposal Made."""
    got = [e for e in money_of(translate(fx(FLOW), config, {})) if e[0] == "42"]
    assert [(e[1], e[3]) for e in got] == [("Qualified", "60000"), ("Contact Made", "60000"), ("Demo Scheduled", "60000"),
                                           ("Proposal Made", "84000"), ("Won", "84000")]


def test_the_deals_export_gives_close_date_and_currency(config):
    got = {e[0]: e[3:6] for e in money_of(translate(fx(CSV), config, {}))}
    assert got["101"] == ("84000", "2026-03-31", "EUR")
    assert got["102"] == ("31000", None, "EUR")
