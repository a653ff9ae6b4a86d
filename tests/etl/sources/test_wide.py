"""The wide adapter: one timestamp column per stage, mapped in [source.wide], through the loader."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import _build, default_config_text
from funnelboard.core.errors import UserError
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows, write

WIDE = {
    "id": "lead",
    "stages": {"mql": "mql_date", "sql": "sql_date", "lost": "lost_date"},
    "attributes": {"channel": "origin"},
    "reasons": {"lost": "why"},
}
HEADER = "lead,mql_date,sql_date,lost_date,why,origin"


def config_with(options: dict | None, funnel: str = ""):
    user = tomllib.loads(funnel) if funnel else {}
    if options is not None:
        user["source"] = {"wide": options}
    config, problems = _build(tomllib.loads(default_config_text()), user, "test")
    assert not problems, problems
    return config


def events(db: Path) -> list[tuple]:
    return rows(db, "select lead_id, stage, strftime(entered_at, '%Y-%m-%d %H:%M'), reason, channel, source_line "
                    "from raw_events order by source_line, entered_at, stage")


def quarantined(db: Path) -> list[tuple]:
    return rows(db, "select reason, line, detail, raw from quarantine order by line, reason")


# (case, options, data lines after HEADER, expected events, expected quarantine (reason, line, detail part), ignored)
CASES = [
    (
        "good rows: one event per non-empty stage cell, attributes and the stage's reason on each",
        WIDE,
        ["A,2024-01-02,2024-01-05 10:30,,,web", "B,2024-01-03,,2024-02-01,no budget,event"],
        [("A", "mql", "2024-01-02 00:00", None, "web", 2), ("A", "sql", "2024-01-05 10:30", None, "web", 2),
         ("B", "mql", "2024-01-03 00:00", None, "event", 3), ("B", "lost", "2024-02-01 00:00", "no budget", "event", 3)],
        [],
        {},
    ),
    (
        "an empty stage date gives no event; a row with none at all is ignored, not quarantined",
        WIDE,
        ["A,2024-01-02,,,,web", "B,,,,,web", "C, ,  ,,,x"],
        [("A", "mql", "2024-01-02 00:00", None, "web", 2)],
        [],
        {"no_stage_dates": 2},
    ),
    (
        "a date not matching date_format is quarantined with the column, value and line; the row's other cells load",
        {**WIDE, "date_format": "%d/%m/%Y"},
        ["A,02/01/2024,05/01/2024,,,web", "B,03/01/2024,31/02/2024,,,web"],
        [("A", "mql", "2024-01-02 00:00", None, "web", 2), ("A", "sql", "2024-01-05 00:00", None, "web", 2),
         ("B", "mql", "2024-01-03 00:00", None, "web", 3)],
        [("unparseable_timestamp", 3, 'sql_date "31/02/2024" does not match date_format %d/%m/%Y')],
        {},
    ),
    (
        "without date_format a non-ISO date reaches the loader's own check",
        WIDE,
        ["A,2024-01-02,31/01/2024,,,web"],
        [("A", "mql", "2024-01-02 00:00", None, "web", 2)],
        [("unparseable_timestamp", 2, 'entered_at "31/01/2024" is not an ISO-8601 date or timestamp')],
        {},
    ),
    (
        "several formats are tried in turn, epoch milliseconds included",
        {**WIDE, "date_format": ["%Y-%m-%d", "epoch_ms"]},
        ["A,2024-01-02,1704448800000,,,web"],
        [("A", "mql", "2024-01-02 00:00", None, "web", 2), ("A", "sql", "2024-01-05 10:00", None, "web", 2)],
        [],
        {},
    ),
    (
        "an empty id quarantines the row once",
        WIDE,
        [" ,2024-01-02,2024-01-03,,,web", "A,2024-01-02,,,,web"],
        [("A", "mql", "2024-01-02 00:00", None, "web", 3)],
        [("missing_lead_id", 2, "lead is empty")],
        {},
    ),
    (
        "a future date is the loader's timestamp_in_future, on the row's line",
        WIDE,
        ["A,2024-01-02,2099-01-01,,,web"],
        [("A", "mql", "2024-01-02 00:00", None, "web", 2)],
        [("timestamp_in_future", 2, "entered_at 2099-01-01 is after the load time")],
        {},
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,options,lines,expected,expected_q,ignored", CASES, ids=[c[0][:60] for c in CASES])
def test_wide_rows(tmp_path, db, case, options, lines, expected, expected_q, ignored):
    src = write(tmp_path / "leads.csv", "\n".join([HEADER, *lines]) + "\n")
    report = load_files(db, [src], config_with(options), now=NOW, source="wide")
    (f,) = report.files
    assert events(db) == expected
    got_q = quarantined(db)
    assert [(r[0], r[1]) for r in got_q] == [(r[0], r[1]) for r in expected_q]
    for (_, line, part), (_, _, detail, raw) in zip(expected_q, got_q):
        assert part in detail
        assert raw == lines[line - 2], "the quarantine keeps the export row's text"
    # The two accounting identities of etl/sources/base.py.
    assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate
    assert f.source_rows == len(lines)
    used = len({e[5] for e in expected} | {q[1] for q in expected_q})
    assert f.source_rows == used + f.rows_ignored
    assert f.ignored == ignored
    ledger = rows(db, "select source, source_rows, rows_ignored, ignored, rows_read, rows_loaded, rows_quarantined, rows_duplicate from load_ledger")
    assert ledger == [("wide", len(lines), sum(ignored.values()), json.dumps(ignored), f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)]


def test_duplicate_rows_collapse_as_duplicate_events(tmp_path, db):
    line = "A,2024-01-02,2024-01-05,,,web"
    src = write(tmp_path / "w.csv", "\n".join([HEADER, line, "B,2024-01-03,,,,web", line]) + "\n")
    (f,) = load_files(db, [src], config_with(WIDE), now=NOW, source="wide").files
    assert (f.source_rows, f.rows_read, f.rows_loaded, f.rows_duplicate) == (3, 5, 3, 2)
    assert rows(db, "select lead_id, source_line from raw_events order by 1, 2") == [("A", 2), ("A", 2), ("B", 3)]


def test_wrong_column_count_is_quarantined_with_its_line(tmp_path, db):
    src = write(tmp_path / "w.csv", "\n".join([HEADER, "A,2024-01-02,,,,web", "B,2024-01-02,,,web", "C,2024-01-02,,,,web"]) + "\n")
    (f,) = load_files(db, [src], config_with(WIDE), now=NOW, source="wide").files
    assert [(r[0], r[1], r[3]) for r in quarantined(db)] == [("wrong_column_count", 3, "B,2024-01-02,,,web")]
    assert (f.source_rows, f.rows_loaded, f.rows_quarantined) == (3, 2, 1)


def test_parquet_export(tmp_path, db):
    table = pa.table({"lead": ["A", "B"], "mql_date": ["2024-01-02", "2024-01-03"], "sql_date": ["2024-01-04", None],
                      "lost_date": [None, None], "why": [None, None], "origin": ["web", "event"]})
    pq.write_table(table, tmp_path / "w.parquet")
    (f,) = load_files(db, [tmp_path / "w.parquet"], config_with(WIDE), now=NOW, source="wide").files
    assert events(db) == [("A", "mql", "2024-01-02 00:00", None, "web", 1), ("A", "sql", "2024-01-04 00:00", None, "web", 1),
                          ("B", "mql", "2024-01-03 00:00", None, "event", 2)]


JOINED = {
    "id": "mql_id",
    "tables": [
        {"name": "mqls", "match": "*mql*", "stages": {"mql": "first_contact_date"}, "attributes": {"channel": "origin"}},
        {"name": "deals", "match": "*deal*", "join": "mqls", "stages": {"won": "won_date"}, "attributes": {"owner": "sr_id"}},
    ],
}


@pytest.mark.slow
def test_two_files_joined_on_the_id(tmp_path, db):
    mqls = write(tmp_path / "mqls.csv", "mql_id,first_contact_date,origin\nA,2018-01-02,social\nB,2018-01-03,email\n")
    deals = write(tmp_path / "deals.csv", "mql_id,won_date,sr_id\nA,2018-02-01 10:00:00,s1\nZ,2018-02-02 10:00:00,s2\n")
    report = load_files(db, [mqls, deals], config_with(JOINED), now=NOW, source="wide")
    assert [(f.path.name, f.rows_read, f.rows_loaded, f.rows_quarantined) for f in report.files] == [
        ("mqls.csv", 2, 2, 0), ("deals.csv", 2, 1, 1)]
    assert rows(db, "select lead_id, stage, channel, owner from raw_events order by 1, 2") == [
        ("A", "mql", "social", None), ("A", "won", None, "s1"), ("B", "mql", "email", None)]
    assert [(r[0], r[1], r[2]) for r in quarantined(db)] == [("unmatched_id", 3, 'mql_id "Z" is not in the mqls file')]
    # One journey per lead: A's attributes come from both files.
    assert rows(db, "select lead_id, channel, owner from fct_leads order by 1") == [("A", "social", "s1"), ("B", "email", None)]
    # Loading the same files again changes nothing.
    before = db.read_bytes()
    again = load_files(db, [mqls, deals], config_with(JOINED), now=NOW, source="wide")
    assert not again.published and [f.status for f in again.files] == ["skipped", "skipped"]
    assert db.read_bytes() == before


@pytest.mark.slow
def test_replace_reloads_an_export(tmp_path, db):
    src = write(tmp_path / "w.csv", HEADER + "\nA,2024-01-02,2024-01-05,,,web\n")
    load_files(db, [src], config_with(WIDE), now=NOW, source="wide")
    (f,) = load_files(db, [src], config_with(WIDE), now=NOW, source="wide", replace=True).files
    assert (f.rows_replaced, f.rows_loaded) == (2, 2)
    assert rows(db, "select count(*) from raw_events") == [(2,)]


# (case, options, file name, text, words the one-sentence error must contain)
FILE_ERRORS = [
    ("a mapped column is missing", WIDE, "w.csv", "lead,mql_date,lost_date,why,origin\nA,2024-01-02,,,web\n", ["w.csv", "'sql_date'", "found lead, mql_date"]),
    ("no [source.wide] table", None, "w.csv", HEADER + "\nA,2024-01-02,,,,web\n", ["[source.wide]"]),
    ("an unknown key", {**WIDE, "stage": {}}, "w.csv", HEADER + "\nA,2024-01-02,,,,web\n", ["unknown key 'stage'"]),
    ("no id", {k: v for k, v in WIDE.items() if k != "id"}, "w.csv", HEADER + "\n", ["no id"]),
    ("a bad attribute name", {**WIDE, "attributes": {"Channel Name": "origin"}}, "w.csv", HEADER + "\n", ["attribute 'Channel Name'"]),
    ("a reason for a stage it does not map", {**WIDE, "reasons": {"won": "why"}}, "w.csv", HEADER + "\n", ["stage 'won'"]),
    ("a file no table matches", JOINED, "other.csv", "mql_id,won_date\nA,2018-01-01\n", ["other.csv", "matches no table"]),
    ("the joined file is missing", JOINED, "deals.csv", "mql_id,won_date,sr_id\nA,2018-01-01,s\n", ["joins table 'mqls'"]),
    ("an empty export", WIDE, "w.csv", "", ["is empty"]),
    ("a header and no rows", WIDE, "w.csv", HEADER + "\n", ["no data rows"]),
]


@pytest.mark.parametrize("case,options,name,text,words", FILE_ERRORS, ids=[c[0] for c in FILE_ERRORS])
def test_file_level_problems_stop_the_load_and_change_nothing(tmp_path, db, case, options, name, text, words):
    src = write(tmp_path / name, text)
    with pytest.raises(UserError) as err:
        load_files(db, [src], config_with(options), now=NOW, source="wide")
    message = str(err.value)
    for word in words:
        assert word in message
    assert "\n" not in message
    assert not db.exists()


def test_cli_source_wide_prints_both_identities(tmp_path):
    cfg = tmp_path / "funnel.toml"
    cfg.write_text('[source.wide]\nid = "lead"\nstages = { mql = "mql_date", sql = "sql_date" }\n')
    src = write(tmp_path / "w.csv", "lead,mql_date,sql_date\nA,2024-01-02,2024-01-04\nB,,\nC,2024-01-02,bad\n")
    result = CliRunner().invoke(main, ["load", str(src), "--source", "wide", "--config", str(cfg), "--db", str(tmp_path / "w.duckdb"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "(--source wide): 4 events read = 3 loaded + 1 quarantined + 0 duplicates" in result.output
    assert "export rows: 3 = 2 used + 1 ignored (no_stage_dates 1)" in result.output
    assert "quarantined: unparseable_timestamp 1" in result.output


def test_cli_unknown_source_is_one_sentence_and_exit_2(tmp_path):
    src = write(tmp_path / "w.csv", "lead,mql_date\nA,2024-01-02\n")
    db = tmp_path / "w.duckdb"
    result = CliRunner().invoke(main, ["load", str(src), "--source", "zoho", "--db", str(db)])
    assert result.exit_code == 2
    assert "unknown --source 'zoho': expected one of canonical, hubspot, pipedrive, salesforce, wide." in result.output
    assert not db.exists()


# -- status-dependent dates (status_stages) -------------------------------------------------------------

STATUS = {
    "id": "deal",
    "stages": {"lead": "created"},
    "status_stages": {"column": "close_date", "status": "status", "values": {"Won": "won", "Lost": "lost"}},
    "reasons": {"lost": "why"},
}
STATUS_HEADER = "deal,created,close_date,status,why"
STATUS_ROWS = [
    "D1,2024-01-02,2024-02-01,Won,",
    "D2,2024-01-03,2024-02-05, lost ,No budget",   # status values match ignoring case and spaces
    "D3,2024-01-04,2024-03-01,Open,",              # an open deal's close date is a plan, not an event
    "D4,,2024-03-01,Pending,",                     # nothing else dated: ignored as unmapped_status
    "D5,,,Won,",                                   # a won deal without a close date: nothing to date it by
]

# (case, extra options, expected events (lead, stage, day, reason, line), ignored, words in the notes)
STATUS_CASES = [
    (
        "the close date is won or lost by the row's status; other statuses are counted, never dropped",
        {},
        [("D1", "lead", "2024-01-02", None, 2), ("D1", "won", "2024-02-01", None, 2), ("D2", "lead", "2024-01-03", None, 3),
         ("D2", "lost", "2024-02-05", "No budget", 3), ("D3", "lead", "2024-01-04", None, 4)],
        {"unmapped_status": 1, "no_stage_dates": 1},
        ["2 row(s) have a status that status_stages does not map (Open 1, Pending 1): their close_date is not an event"],
    ),
    (
        "snapshot_date dates a mapped status whose date is empty",
        {"snapshot_date": "2024-04-30"},
        [("D1", "lead", "2024-01-02", None, 2), ("D1", "won", "2024-02-01", None, 2), ("D2", "lead", "2024-01-03", None, 3),
         ("D2", "lost", "2024-02-05", "No budget", 3), ("D3", "lead", "2024-01-04", None, 4), ("D5", "won", "2024-04-30", None, 6)],
        {"unmapped_status": 1},
        ["1 stage(s) had no date and were dated at snapshot_date 2024-04-30"],
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,extra,expected,ignored,notes", STATUS_CASES, ids=[c[0][:60] for c in STATUS_CASES])
def test_status_stages(tmp_path, db, case, extra, expected, ignored, notes):
    src = write(tmp_path / "deals.csv", "\n".join([STATUS_HEADER, *STATUS_ROWS]) + "\n")
    (f,) = load_files(db, [src], config_with({**STATUS, **extra}), now=NOW, source="wide").files
    got = rows(db, "select lead_id, stage, strftime(entered_at, '%Y-%m-%d'), reason, source_line from raw_events order by source_line, entered_at")
    assert got == expected
    assert f.ignored == ignored
    assert f.source_rows == len(STATUS_ROWS) == len({e[4] for e in expected}) + f.rows_ignored
    for words in notes:
        assert any(words in n for n in f.notes), f.notes


STATUS_ERRORS = [
    ("no values", {"column": "close_date", "status": "status"}, "expected { column = \"close_date\", status = \"status\", values = {"),
    ("values not text", {"column": "close_date", "status": "status", "values": {"Won": 1}}, "has status_stages ="),
    ("a reason for a stage neither maps", {"column": "close_date", "status": "status", "values": {"Won": "won"}}, "maps a reason to stage 'lost'"),
]


@pytest.mark.parametrize("case,value,message", STATUS_ERRORS, ids=[c[0] for c in STATUS_ERRORS])
def test_status_stages_is_checked(tmp_path, db, case, value, message):
    src = write(tmp_path / "deals.csv", "\n".join([STATUS_HEADER, *STATUS_ROWS]) + "\n")
    with pytest.raises(UserError, match=re.escape(message)):
        load_files(db, [src], config_with({**STATUS, "status_stages": value}), now=NOW, source="wide")
    assert not db.exists()


# -- lookup tables joined on any column ----------------------------------------------------------------

LOOKUPS = {
    "tables": [
        {"name": "deals", "match": "deals*", "id": "deal", "stages": {"lead": "created", "won": "won"},
         "attributes": {"owner": "Agent", "industry": "Sector"}, "lookups": {"accounts": "Account", "owners": "Agent"}},
        {"name": "accounts", "match": "accounts*", "key": "Account Name",
         "attributes": {"industry": "Industry", "company_size": "Employees"}},
        {"name": "owners", "match": "owners*", "key": "Agent", "attributes": {"team": "Team"}},
    ],
}


@pytest.mark.slow
def test_lookup_tables_give_attributes_to_the_rows_that_name_them(tmp_path, db):
    deals = write(tmp_path / "deals.csv", "deal,created,won,Account,Agent,Sector\n"
                                          "D1,2024-01-02,2024-02-01,Acme Corp,Ann,\n"
                                          "D2,2024-01-03,,  globex ,Bob,Public sector\n"   # its own Sector wins
                                          "D3,2024-01-04,,Initech,Ann,\n"                  # no such account
                                          "D4,2024-01-05,,,Zed,\n")                        # no account, unknown agent
    accounts = write(tmp_path / "accounts.csv", "Account Name,Industry,Employees\n"
                                                "Acme Corp,Healthcare,51-200\n"
                                                "Globex,Retail,1-50\n"
                                                "Umbrella,Pharma,500+\n"
                                                "ACME CORP,Healthcare,201-500\n")          # a later copy wins
    owners = write(tmp_path / "owners.csv", "Agent,Team\nann,EMEA\nBob,Americas\n")
    report = load_files(db, [deals, accounts, owners], config_with(LOOKUPS), now=NOW, source="wide")
    by_file = {f.path.name: f for f in report.files}
    assert rows(db, "select distinct lead_id, industry, company_size, team from raw_events order by 1") == [
        ("D1", "Healthcare", "201-500", "EMEA"), ("D2", "Public sector", "1-50", "Americas"),
        ("D3", None, None, "EMEA"), ("D4", None, None, None)]
    assert by_file["accounts.csv"].ignored == {"repeated_key": 1, "lookup_row": 2, "lookup_unmatched": 1}
    assert by_file["owners.csv"].ignored == {"lookup_row": 2}
    for f in report.files:
        assert f.source_rows == f.rows_ignored + len(set(rows(db, f"select source_line from raw_events r join load_ledger l using (file_id) where l.source_file = '{f.path}'"))) + f.rows_quarantined
    notes = by_file["deals.csv"].notes
    for words in ("1 row(s) of 'deals.csv' have a Account value that lookup table 'accounts' (accounts.csv) does not have ('Initech')",
                  "1 row(s) of 'deals.csv' have no Account", "1 row(s) of 'deals.csv' have a Agent value that lookup table 'owners'",
                  "1 row(s) of lookup table 'accounts' (accounts.csv) have a Account Name value no record names"):
        assert any(words in n for n in notes), (words, notes)


LOOKUP_ERRORS = [
    ("a lookup table with stages", {**LOOKUPS, "tables": [LOOKUPS["tables"][0], {**LOOKUPS["tables"][1], "stages": {"won": "x"}}, LOOKUPS["tables"][2]]},
     "table 'accounts' is a lookup table (it has key), which only gives attributes: remove stages"),
    ("lookups naming a stage table", {**LOOKUPS, "tables": [{**LOOKUPS["tables"][0], "lookups": {"deals": "Account"}}, *LOOKUPS["tables"][1:]]},
     "table 'deals' has lookups naming 'deals'; expected a lookup table"),
    ("a lookup without attributes", {**LOOKUPS, "tables": [LOOKUPS["tables"][0], {"name": "accounts", "match": "accounts*", "key": "Account Name"}, LOOKUPS["tables"][2]]},
     "is a lookup table (it has key) without attributes"),
]


@pytest.mark.parametrize("case,options,message", LOOKUP_ERRORS, ids=[c[0] for c in LOOKUP_ERRORS])
def test_lookup_options_are_checked(tmp_path, db, case, options, message):
    deals = write(tmp_path / "deals.csv", "deal,created,won,Account,Agent,Sector\nD1,2024-01-02,,Acme,Ann,\n")
    with pytest.raises(UserError, match=re.escape(message)):
        load_files(db, [deals], config_with(options), now=NOW, source="wide")


def test_a_lookup_table_named_but_not_given_stops_the_load(tmp_path, db):
    deals = write(tmp_path / "deals.csv", "deal,created,won,Account,Agent,Sector\nD1,2024-01-02,,Acme,Ann,\n")
    with pytest.raises(UserError, match="table 'deals' looks up table 'accounts', but no file given matches 'accounts\\*': give that file too."):
        load_files(db, [deals], config_with(LOOKUPS), now=NOW, source="wide")


# -- exports without dates --------------------------------------------------------------------------------

UNDATED = [
    ("every stage cell empty", WIDE, ["A,,,,,web", "B,,,,,event"]),
    ("every date unreadable under date_format", {**WIDE, "date_format": "%d/%m/%Y"}, ["A,2024-01-02,,,,web"]),
    ("check marks instead of dates", WIDE, ["A,x,x,,,web", "B,yes,,,,event"]),
]


@pytest.mark.parametrize("case,options,lines", UNDATED, ids=[c[0] for c in UNDATED])
def test_an_export_without_a_usable_date_is_refused_with_the_dates_it_needs(tmp_path, db, case, options, lines):
    src = write(tmp_path / "w.csv", "\n".join([HEADER, *lines]) + "\n")
    with pytest.raises(UserError) as err:
        load_files(db, [src], config_with(options), now=NOW, source="wide")
    message = str(err.value)
    assert f"export file '{src}' has no usable date in any of its {len(lines)} row(s)" in message
    assert "mql_date, sql_date, lost_date" in message and 'snapshot_date = "YYYY-MM-DD"' in message
    assert "\n" not in message and not db.exists()


def test_snapshot_date_dates_check_marks(tmp_path, db):
    src = write(tmp_path / "w.csv", "\n".join([HEADER, "A,x,X,,,web", "B,yes,,,,event", "C,,,,,web"]) + "\n")
    (f,) = load_files(db, [src], config_with({**WIDE, "snapshot_date": "2024-03-31"}), now=NOW, source="wide").files
    assert events(db) == [("A", "mql", "2024-03-31 00:00", None, "web", 2), ("A", "sql", "2024-03-31 00:00", None, "web", 2),
                          ("B", "mql", "2024-03-31 00:00", None, "event", 3)]
    assert f.ignored == {"no_stage_dates": 1}
    assert any("3 stage(s) had no date and were dated at snapshot_date 2024-03-31" in n for n in f.notes)


def test_snapshot_date_must_be_a_day(tmp_path, db):
    src = write(tmp_path / "w.csv", HEADER + "\nA,x,,,,web\n")
    with pytest.raises(UserError, match=re.escape("[source.wide] has snapshot_date = '31/03/2024'; expected the day the export was taken")):
        load_files(db, [src], config_with({**WIDE, "snapshot_date": "31/03/2024"}), now=NOW, source="wide")


# -- the header: an unnamed trailing column, another delimiter -------------------------------------------


def test_a_trailing_comma_in_the_header_is_read_and_noted(tmp_path, db):
    src = write(tmp_path / "w.csv", "\n".join([HEADER + ",", "A,2024-01-02,,,,web,", "B,2024-01-03,,,,event"]) + "\n")
    (f,) = load_files(db, [src], config_with(WIDE), now=NOW, source="wide").files
    assert [e[:2] for e in events(db)] == [("A", "mql"), ("B", "mql")]
    assert any("has a column with no name in its header" in n for n in f.notes)


def test_an_unnamed_column_that_holds_a_value_is_refused(tmp_path, db):
    src = write(tmp_path / "w.csv", "\n".join([HEADER + ",", "A,2024-01-02,,,,web,", "B,2024-01-03,,,,event,oops"]) + "\n")
    with pytest.raises(UserError, match=re.escape(f"export file '{src}' has a column with no name (column 7) that holds a value on line 3 ('oops')")):
        load_files(db, [src], config_with(WIDE), now=NOW, source="wide")
    assert not db.exists()


def test_the_input_delimiter_is_honoured(tmp_path, db):
    src = write(tmp_path / "w.csv", HEADER.replace(",", ";") + "\nA;2024-01-02;;;;web\n")
    with pytest.raises(UserError, match="looks semicolon-separated, but it was read as comma-separated; set delimiter"):
        load_files(db, [src], config_with(WIDE), now=NOW, source="wide")
    config = config_with(WIDE, '[input]\ndelimiter = ";"\n')
    load_files(db, [src], config, now=NOW, source="wide")
    assert [e[:2] for e in events(db)] == [("A", "mql")]


def test_a_current_amount_is_one_change_at_the_deal_creation(tmp_path):
    """A wide row holds today's amount and close date: they are written once, on the deal's earliest event, as a plain
    number (a currency code written with it becomes the currency) and a YYYY-MM-DD date; other attributes stay on every event."""
    from funnelboard.etl.sources.wide import translate

    options = {"id": "deal", "stages": {"mql": "created", "sql": "qualified", "won": "won_date"}, "date_format": "%d/%m/%Y",
               "attributes": {"channel": "origin", "amount": "deal_value", "close_date": "expected_close"}}
    export = write(tmp_path / "deals.csv", "deal,created,qualified,won_date,origin,deal_value,expected_close\n"
                                          'D1,02/03/2026,05/03/2026,20/03/2026,web,"EUR 52,000.00",15/12/2026\n'
                                          "D2,,04/03/2026,,event,48000,\n")
    t = translate([export], config_with(options), options)
    got = [(r["lead_id"], r["stage"], r["channel"], r["amount"], r["close_date"], r["currency"]) for r in t.events.to_pylist()]
    assert got == [
        ("D1", "mql", "web", "52000.00", "2026-12-15", "EUR"),
        ("D1", "sql", "web", None, None, None),
        ("D1", "won", "web", None, None, None),
        ("D2", "sql", "event", "48000", None, None),
    ]
