"""The loader: every row loaded, quarantined with a reason, or collapsed as a duplicate."""

from __future__ import annotations

import gzip
import json
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import HEADER, NOW, rows, write

GOOD = "L1,New Lead,2024-01-01 09:00:00,,inbound,Ann"

# (case name, data line, expected quarantine reason or None when it must load)
BAD_ROWS = [
    ("missing lead id", ",mql,2024-01-02,,inbound,Ann", "missing_lead_id"),
    ("blank lead id", "   ,mql,2024-01-02,,inbound,Ann", "missing_lead_id"),
    ("missing timestamp", "L2,mql,,,inbound,Ann", "missing_timestamp"),
    ("day-first date", "L2,mql,31/01/2024,,inbound,Ann", "unparseable_timestamp"),
    ("words", "L2,mql,yesterday,,inbound,Ann", "unparseable_timestamp"),
    ("month 13", "L2,mql,2024-13-01,,inbound,Ann", "impossible_timestamp"),
    ("zone name", "L2,mql,2024-01-02 10:00 America/New_York,,inbound,Ann", "unparseable_timestamp"),
    ("February 30", "L2,mql,2024-02-30,,inbound,Ann", "impossible_timestamp"),
    ("hour 25", "L2,mql,2024-01-02T25:00:00,,inbound,Ann", "impossible_timestamp"),
    ("before 1990", "L2,mql,1970-01-01,,inbound,Ann", "timestamp_too_old"),
    ("far future", "L2,mql,2099-01-01T00:00:00Z,,inbound,Ann", "timestamp_in_future"),
    ("missing stage", "L2,,2024-01-02,,inbound,Ann", "missing_stage"),
    ("unknown label", "L2,Discovery Call,2024-01-02,,inbound,Ann", "unknown_stage"),
    ("too many fields", "L2,mql,2024-01-02,,inbound,Ann,extra", "wrong_column_count"),
    ("too few fields", "L2,mql,2024-01-02", "wrong_column_count"),
    ("one extra empty field", "L2,mql,2024-01-02,,inbound,Ann,", "wrong_column_count"),
    ("two extra empty fields", "L2,mql,2024-01-02,,inbound,Ann,,", "wrong_column_count"),
    ("unquoted comma shifts fields", "L2,mql,2024-01-02,,inbound,Brooks, Jordan", "wrong_column_count"),
    ("empty last field loads", "L2,mql,2024-01-02,,inbound,", None),
    ("messy label loads", "L2,  MARKETING   qualified ,2024-01-02,,inbound,Ann", None),
    ("canonical name loads", "L2,SQL,2024-01-02,,inbound,Ann", None),
    ("offset loads", "L2,mql,2024-01-02T10:00:00.000+0000,,inbound,Ann", None),
    ("quoted comma loads", 'L2,Disqualified,2024-01-02,"Budget, too low",inbound,Ann', None),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,line,reason", BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_each_bad_row_has_its_exact_outcome(tmp_path, db, config, case, line, reason):
    src = write(tmp_path / "events.csv", "\n".join([HEADER, GOOD, line, GOOD.replace("L1", "L9")]) + "\n")
    report = load_files(db, [src], config, now=NOW)
    f = report.files[0]
    assert (f.rows_read, f.rows_duplicate) == (3, 0)
    assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate
    quarantined = rows(db, "select reason, line, raw from quarantine")
    if reason is None:
        assert quarantined == []
        assert f.rows_loaded == 3
    else:
        assert [(r[0], r[1]) for r in quarantined] == [(reason, 3)]
        assert quarantined[0][2] == line, "the quarantine keeps the row's raw text"
        assert f.rows_loaded == 2
    assert rows(db, "select lead_id, source_line from raw_events where lead_id in ('L1', 'L9') order by 1") == [("L1", 2), ("L9", 4)]


def test_unterminated_quote_is_caught_not_loaded(tmp_path, db, config):
    text = "\n".join([HEADER, GOOD, 'L2,"mql,2024-01-02,,inbound,Ann', "L3,mql,2024-01-03,,inbound,Ann", 'L4,mql,2024-01-04,"x",inbound,Ann', "L5,mql,2024-01-05,,inbound,Ann"]) + "\n"
    report = load_files(db, [write(tmp_path / "e.csv", text)], config, now=NOW)
    f = report.files[0]
    (reason, line, detail, raw), = rows(db, "select reason, line, detail, raw from quarantine")
    assert reason == "malformed_csv" and line == 3
    assert "unterminated quote" in detail and "3 line(s)" in detail
    # The swallowed rows are not loaded as garbage, and their text is kept.
    assert "L3,mql" in raw and "L4,mql" in raw
    assert rows(db, "select lead_id, source_line from raw_events order by 1") == [("L1", 2), ("L5", 6)]
    assert f.rows_read == f.rows_loaded + f.rows_quarantined == 3


def test_invalid_encoding_is_quarantined(tmp_path, db, config):
    data = (HEADER + "\n" + GOOD + "\n").encode() + "L2,mql,2024-01-02,,Café,Ann\n".encode("latin-1") + b"L3,mql,2024-01-03,,inbound,Ann\n"
    src = tmp_path / "e.csv"
    src.write_bytes(data)
    load_files(db, [src], config, now=NOW)
    assert rows(db, "select reason, line from quarantine") == [("invalid_encoding", 3)]
    assert rows(db, "select lead_id from raw_events order by 1") == [("L1",), ("L3",)]


def test_rows_load_with_mapped_stage_utc_time_and_attributes(tmp_path, db, config):
    text = "\n".join([
        HEADER,
        "L1, New Lead ,2024-01-01T10:00:00+02:00,,inbound , Ann",
        "L1,Marketing Qualified,2024-01-02,,inbound,Ann",
        "L1,Disqualified,2024-01-03 12:30:00Z,No budget,inbound,Bob",
    ]) + "\n"
    load_files(db, [write(tmp_path / "e.csv", text)], config, now=NOW)
    assert rows(db, "select stage, stage_label, entered_at, reason, channel, owner from raw_events order by entered_at") == [
        ("lead", "New Lead", datetime(2024, 1, 1, 8, 0), None, "inbound", "Ann"),
        ("mql", "Marketing Qualified", datetime(2024, 1, 2), None, "inbound", "Ann"),
        ("disqualified", "Disqualified", datetime(2024, 1, 3, 12, 30), "No budget", "inbound", "Bob"),
    ]


def test_timestamps_without_offset_use_the_configured_time_zone(tmp_path, db):
    cfg_path = write(tmp_path / "funnel.toml", '[funnel]\ntimezone = "America/New_York"\n')
    config = load_config(cfg_path)
    text = HEADER + "\nL1,mql,2024-01-15 09:00:00,,inbound,Ann\nL1,sql,2024-07-15 09:00:00,,inbound,Ann\nL1,opportunity,2024-07-16T09:00:00+00:00,,inbound,Ann\n"
    load_files(db, [write(tmp_path / "e.csv", text)], config, now=NOW)
    assert rows(db, "select entered_at from raw_events order by entered_at") == [
        (datetime(2024, 1, 15, 14, 0),),  # EST, UTC-5
        (datetime(2024, 7, 15, 13, 0),),  # EDT, UTC-4
        (datetime(2024, 7, 16, 9, 0),),  # an explicit offset wins over the zone
    ]


def test_unknown_labels_are_listed_with_counts(tmp_path, db, config):
    text = HEADER + "\n" + "\n".join(["L1,Discovery Call,2024-01-01,,x,y"] * 2 + ["L2,Demo Scheduled,2024-01-01,,x,y", "L3,discovery call,2024-01-02,,x,y"]) + "\n"
    f = load_files(db, [write(tmp_path / "e.csv", text)], config, now=NOW).files[0]
    assert f.unknown_labels == {"Discovery Call": 2, "Demo Scheduled": 1, "discovery call": 1}
    assert f.rows_duplicate == 0 and f.rows_quarantined == 4, "bad rows are never collapsed: each keeps its line"


@pytest.mark.slow
def test_exact_duplicates_collapse_within_and_across_files(tmp_path, db, config):
    a = write(tmp_path / "a.csv", "\n".join([HEADER, GOOD, GOOD, " " + GOOD + " ", "L2,mql,2024-01-02,,inbound,Ann"]) + "\n")
    fa = load_files(db, [a], config, now=NOW).files[0]
    assert (fa.rows_read, fa.rows_loaded, fa.rows_duplicate) == (4, 2, 2)
    assert rows(db, "select source_line from raw_events where lead_id = 'L1'") == [(2,)], "the first occurrence is kept"
    b = write(tmp_path / "b.csv", "\n".join([HEADER, GOOD, "L2,mql,2024-01-02,,inbound,Bob", "L3,mql,2024-01-03,,inbound,Ann"]) + "\n")
    fb = load_files(db, [b], config, now=NOW).files[0]
    assert (fb.rows_read, fb.rows_loaded, fb.rows_duplicate) == (3, 2, 1), "appending a new file collapses rows already loaded"
    assert rows(db, "select count(*) from raw_events") == [(4,)]


@pytest.mark.slow
def test_a_file_with_fewer_columns_is_compared_with_absent_attributes_as_null(tmp_path, db, config):
    load_files(db, [write(tmp_path / "a.csv", HEADER + "\nL1,mql,2024-01-02,,,\n")], config, now=NOW)
    f = load_files(db, [write(tmp_path / "b.csv", "lead_id,stage,entered_at\nL1,mql,2024-01-02\nL1,sql,2024-01-03\n")], config, now=NOW).files[0]
    assert (f.rows_loaded, f.rows_duplicate) == (1, 1)


def test_same_file_twice_changes_nothing(tmp_path, db, config):
    src = write(tmp_path / "e.csv", HEADER + "\n" + GOOD + "\n")
    load_files(db, [src], config, now=NOW)
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    report = load_files(db, [src], config, now=NOW)
    assert not report.published
    assert report.files[0].status == "skipped" and "already loaded in load 1" in report.files[0].note
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    # A copy under another name has the same content: still nothing to do.
    copy = write(tmp_path / "copy.csv", src.read_text())
    assert not load_files(db, [copy], config, now=NOW).published


@pytest.mark.slow
def test_replace_reloads_a_file_in_place(tmp_path, db):
    src = write(tmp_path / "e.csv", HEADER + "\nL1,Discovery Call,2024-01-01,,x,y\nL1,mql,2024-01-02,,x,y\n")
    load_files(db, [src], load_config(None), now=NOW)
    assert rows(db, "select count(*) from quarantine") == [(1,)]
    mapped = load_config(write(tmp_path / "funnel.toml", '[labels]\n"discovery call" = "mql"\n'))
    report = load_files(db, [src], mapped, replace=True, now=NOW)
    f = report.files[0]
    assert (f.rows_loaded, f.rows_quarantined, f.rows_duplicate, f.rows_replaced) == (2, 0, 0, 1)
    assert rows(db, "select count(*) from quarantine") == [(0,)]
    assert rows(db, "select load_id, superseded_by from load_ledger order by file_id") == [(1, 2), (2, None)]
    assert rows(db, "select stage, count(*) from raw_events group by 1") == [("mql", 2)]


@pytest.mark.slow
def test_replace_by_path_removes_rows_of_the_earlier_version(tmp_path, db, config):
    src = write(tmp_path / "e.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\nL2,mql,2024-01-02,,x,y\n")
    load_files(db, [src], config, now=NOW)
    write(src, HEADER + "\nL1,mql,2024-01-02,,x,y\n")
    load_files(db, [src], config, replace=True, now=NOW)
    assert rows(db, "select lead_id from raw_events") == [("L1",)]


def _canonical_rows():
    return [
        {"lead_id": "L1", "stage": "New Lead", "entered_at": "2024-01-01 09:00:00", "reason": None, "channel": "inbound", "owner": "Ann"},
        {"lead_id": "L1", "stage": "Marketing Qualified", "entered_at": "2024-01-02 09:00:00", "reason": None, "channel": "inbound", "owner": "Ann"},
        {"lead_id": "", "stage": "mql", "entered_at": "2024-01-02", "reason": None, "channel": "inbound", "owner": "Ann"},
        {"lead_id": "L2", "stage": "Closed Lost", "entered_at": "2024-01-03T10:00:00Z", "reason": "Price", "channel": "events", "owner": "Bob"},
    ]


def _events(db):
    return rows(db, "select lead_id, stage, entered_at, reason, channel, owner from raw_events order by lead_id, entered_at")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet", "jsonl"])
def test_every_format_loads_the_same_rows(tmp_path, config, fmt):
    data = _canonical_rows()
    path = tmp_path / f"events.{fmt}"
    if fmt.startswith("csv"):
        lines = [HEADER] + [",".join(v or "" for v in r.values()) for r in data]
        text = ("\n".join(lines) + "\n").encode()
        path.write_bytes(gzip.compress(text) if fmt.endswith("gz") else text)
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(data), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in data))
    db = tmp_path / "wh.duckdb"
    f = load_files(db, [path], config, now=NOW).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (4, 3, 1)
    assert rows(db, "select reason, line from quarantine") == [("missing_lead_id", 4 if fmt.startswith("csv") else 3)]
    assert _events(db) == [
        ("L1", "lead", datetime(2024, 1, 1, 9), None, "inbound", "Ann"),
        ("L1", "mql", datetime(2024, 1, 2, 9), None, "inbound", "Ann"),
        ("L2", "lost", datetime(2024, 1, 3, 10), "Price", "events", "Bob"),
    ]


def test_jsonl_malformed_lines_are_quarantined_with_their_text(tmp_path, db, config):
    good = json.dumps(_canonical_rows()[0])
    path = write(tmp_path / "e.jsonl", "\n".join([good, "{not json", "[1, 2]", json.dumps(_canonical_rows()[3])]) + "\n")
    f = load_files(db, [path], config, now=NOW).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (4, 2, 2)
    assert rows(db, "select line, reason, raw from quarantine order by line") == [
        (2, "malformed_json", "{not json"),
        (3, "not_a_json_object", "[1, 2]"),
    ]


def test_parquet_timestamp_columns_load(tmp_path, db, config):
    table = pa.table({
        "lead_id": ["L1", "L1"],
        "stage": ["lead", "mql"],
        "entered_at": pa.array([datetime(2024, 1, 1, 9), datetime(2024, 1, 2, 9)], pa.timestamp("us", tz="UTC")),
    })
    pq.write_table(table, tmp_path / "e.parquet")
    load_files(db, [tmp_path / "e.parquet"], config, now=NOW)
    assert rows(db, "select entered_at from raw_events order by 1") == [(datetime(2024, 1, 1, 9),), (datetime(2024, 1, 2, 9),)]


def test_leads_file_loads_beside_events(tmp_path, db, config):
    events = write(tmp_path / "e.csv", HEADER + "\n" + GOOD + "\n")
    leads = write(tmp_path / "leads.csv", "lead_id,created_at,industry,Company Size\nL1,2023-12-30,healthcare,51-200\n,2023-12-30,x,y\nL2,someday,x,y\n")
    report = load_files(db, [events], config, leads=[leads], now=NOW)
    lf = report.files[1]
    assert (lf.role, lf.rows_read, lf.rows_loaded, lf.rows_quarantined) == ("leads", 3, 1, 2)
    assert rows(db, "select lead_id, created_at, industry, company_size from raw_leads") == [("L1", datetime(2023, 12, 30), "healthcare", "51-200")]


def test_renamed_required_columns_come_from_config(tmp_path, db):
    config = load_config(write(tmp_path / "funnel.toml", '[columns]\nlead_id = "Lead ID"\nstage = "Status"\nentered_at = "Changed At"\n'))
    src = write(tmp_path / "e.csv", "Lead ID,Status,Changed At\nL1,mql,2024-01-02\n")
    load_files(db, [src], config, now=NOW)
    assert rows(db, "select lead_id, stage from raw_events") == [("L1", "mql")]


FILE_ERRORS = [
    ("missing file", None, "does not exist"),
    ("empty file", b"", "is empty: expected a header row and at least one data row"),
    ("header only", b"lead_id,stage,entered_at\n", "has no data rows"),
    ("missing column", b"lead_id,status,entered_at\nL1,mql,2024-01-01\n", "has no 'stage' column: expected lead_id, stage, entered_at; found lead_id, status, entered_at"),
    ("utf-16", "lead_id,stage,entered_at\nL1,mql,2024-01-01\n".encode("utf-16"), "is UTF-16 encoded"),
    ("binary", b"PK\x03\x04\x00\x00binary", "contains NUL bytes"),
    ("duplicate columns", b"lead_id,stage,entered_at,Stage\nL1,mql,2024-01-01,x\n", "has two columns named 'stage'"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,content,message", FILE_ERRORS, ids=[c[0] for c in FILE_ERRORS])
def test_file_level_problems_stop_with_one_sentence_and_change_nothing(tmp_path, db, config, case, content, message):
    load_files(db, [write(tmp_path / "first.csv", HEADER + "\n" + GOOD + "\n")], config, now=NOW)
    before = db.read_bytes()
    bad = tmp_path / "bad.csv"
    if content is not None:
        bad.write_bytes(content)
    good_too = write(tmp_path / "second.csv", HEADER + "\nL7,mql,2024-01-02,,x,y\n")
    with pytest.raises(UserError) as err:
        load_files(db, [good_too, bad], config, now=NOW)
    text = str(err.value)
    assert message in text and "bad.csv" in text
    assert "\n" not in text and text.endswith(".")
    assert db.read_bytes() == before, "a file-level problem loads nothing, not even the good file beside it"


def test_unknown_format_names_what_is_expected(tmp_path, db, config):
    path = write(tmp_path / "export.xlsx", "whatever")
    with pytest.raises(UserError, match=r"cannot tell the format of '.*export.xlsx': expected a name ending in \.csv"):
        load_files(db, [path], config, now=NOW)
    assert not db.exists()


def test_corrupt_parquet_is_a_file_level_error(tmp_path, db, config):
    path = write(tmp_path / "e.parquet", "this is not parquet")
    with pytest.raises(UserError, match="is not a readable Parquet file"):
        load_files(db, [path], config, now=NOW)


@pytest.mark.slow
def test_line_numbers_hold_across_row_groups_and_parallel_reads(tmp_path, db, config):
    """Accepted CSV rows are numbered by their position in the table DuckDB builds: check it far into a file."""
    import duckdb

    n = 400_000
    path = tmp_path / "big.csv"
    duckdb.execute(
        f"copy (select 'L' || i as lead_id, 'mql' as stage, '2024-01-01' as entered_at, null as reason, 'x' as channel, 'y' as owner "
        f"from range({n}) t(i)) to '{path}' (header)"
    )
    with open(path, "a") as fh:
        fh.write("LBAD,mql,2024-01-01,,x,y,extra\n")  # line n + 2
        fh.write("LDATE,mql,someday,,x,y\n")  # line n + 3
        fh.write("LLAST,mql,2024-01-01,,x,y\n")  # line n + 4
    load_files(db, [path], config, now=NOW)
    assert rows(db, "select line, reason from quarantine order by line") == [(n + 2, "wrong_column_count"), (n + 3, "unparseable_timestamp")]
    sample = rows(db, "select lead_id, source_line from raw_events where lead_id in ('L0', 'L123456', 'L399999', 'LLAST') order by source_line")
    assert sample == [("L0", 2), ("L123456", 123458), ("L399999", n + 1), ("LLAST", n + 4)]
    assert rows(db, "select count(*) from raw_events where source_line <> cast(substr(lead_id, 2) as bigint) + 2 and lead_id <> 'LLAST'") == [(0,)]


# (case, leads file text, events file text or None, refused?)
LEADS_DATES = [
    ("no created_at and no events", "lead_id,industry\nL1,healthcare\nL2,retail\n", None, True),
    ("created_at empty in every row", "lead_id,created_at,industry\nL1,,healthcare\nL2, ,retail\n", None, True),
    ("no created_at, and no event has these ids", "lead_id,industry\nX1,healthcare\n", HEADER + "\n" + GOOD + "\n", True),
    ("created_at dates the leads", "lead_id,created_at,industry\nL1,2023-12-30,healthcare\n", None, False),
    ("events date the leads", "lead_id,industry\nL1,healthcare\n", HEADER + "\n" + GOOD + "\n", False),
]


@pytest.mark.slow
@pytest.mark.parametrize("case,leads_text,events_text,refused", LEADS_DATES, ids=[c[0] for c in LEADS_DATES])
def test_a_leads_file_that_dates_none_of_its_leads_is_refused(tmp_path, db, config, case, leads_text, events_text, refused):
    leads = write(tmp_path / "leads.csv", leads_text)
    events = [write(tmp_path / "e.csv", events_text)] if events_text else []
    if not refused:
        report = load_files(db, events, config, leads=[leads], now=NOW)
        assert report.files[-1].rows_loaded == report.files[-1].rows_read
        return
    with pytest.raises(UserError) as err:
        load_files(db, events, config, leads=[leads], now=NOW)
    message = str(err.value)
    assert f"leads file '{leads.resolve()}' gives no date for any of its" in message
    assert "each needs a created_at" in message and "or events (lead_id, stage, entered_at)" in message
    assert "\n" not in message and not db.exists()


@pytest.mark.slow
def test_a_leads_file_without_dates_may_add_attributes_to_leads_loaded_before(tmp_path, db, config):
    load_files(db, [write(tmp_path / "e.csv", HEADER + "\n" + GOOD + "\n")], config, now=NOW)
    leads = write(tmp_path / "leads.csv", "lead_id,industry\nL1,healthcare\n")
    report = load_files(db, [], config, leads=[leads], now=NOW)
    assert report.files[0].rows_loaded == 1
    assert rows(db, "select lead_id, industry from raw_leads") == [("L1", "healthcare")]


def test_a_header_ending_in_a_comma_is_noted_in_the_ledger(tmp_path, db, config):
    src = write(tmp_path / "e.csv", HEADER + ",\n" + GOOD + ",\n")
    (f,) = load_files(db, [src], config, now=NOW).files
    assert (f.rows_read, f.rows_loaded) == (1, 1)
    assert rows(db, "select notes from load_ledger") == [
        ('["\'e.csv\' has a column with no name in its header (column 7, such as a trailing delimiter makes); '
         'it holds no values and was not read."]',)]
    assert "_unnamed6" not in [c[0] for c in rows(db, "describe raw_events")]


def test_the_quarantine_keeps_the_lead_of_a_checked_row_and_an_older_warehouse_gains_the_column(tmp_path, db, config):
    """A row that failed a check keeps its lead id (a pull replaces it with the record, etl/load.py
    supersede_records); a row without one, or one the CSV reader rejected, has none. A warehouse
    whose quarantine predates the column gets it at its next load, its earlier rows without a lead."""
    load_files(db, [write(tmp_path / "a.csv", HEADER + "\n" + GOOD + "\nL2,Discovery Call,2024-01-02,,inbound,Ann\n")], config, now=NOW)
    con = duckdb.connect(str(db))
    con.execute("alter table quarantine drop column lead_id")  # as funnelboard wrote it before
    con.close()
    lines = ["  L3 ,Discovery Call,2024-01-02,,inbound,Ann", ",mql,2024-01-02,,inbound,Ann", "L4,mql,2024-01-02"]
    load_files(db, [write(tmp_path / "b.csv", HEADER + "\n" + "\n".join(lines) + "\n")], config, now=NOW)
    assert rows(db, "select reason, lead_id from quarantine order by file_id, line") == [
        ("unknown_stage", None), ("unknown_stage", "L3"), ("missing_lead_id", None), ("wrong_column_count", None)]
