"""The wide adapter: one timestamp column per stage, mapped in [source.wide], through the loader."""

from __future__ import annotations

import json
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
    return _build(tomllib.loads(default_config_text()), user, "test")


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
