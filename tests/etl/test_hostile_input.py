"""The loader never runs hostile input and never answers a user mistake with a traceback.

Names reach SQL only quoted by sqlglot; a damaged gzip, mixed line endings, keys that name one
column twice, impossible offsets and NUL bytes anywhere each get a sentence or a quarantine reason.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl import raw_schema
from funnelboard.etl.generate import generate
from funnelboard.etl.identifiers import ident
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import HEADER, NOW, rows, write

ETL = Path(__file__).resolve().parents[2] / "etl"
HOSTILE = "x\" varchar; COPY (SELECT 1) TO 'pwned.csv'; --"


def cli(*args: str):
    """`funnelboard ARGS` through click's runner; the result."""
    return CliRunner().invoke(main, list(args))


def refused_in_one_sentence(result, name: str) -> str:
    """The one error line of a refused command, checked: exit 2, no traceback, naming `name`."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), result.output
    assert name in lines[0]
    return lines[0]


# -- 1. names reach SQL only through the compiler -------------------------------------------------


def test_the_injection_in_funnel_toml_is_refused_in_one_sentence_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "funnel.toml"
    config.write_text(f"[attributes]\namount = {json.dumps(HOSTILE)}\n")
    src = write(tmp_path / "e.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\n")
    result = cli("load", str(src), "--db", "wh.duckdb", "--config", str(config), "--quiet")
    refused_in_one_sentence(result, "funnel.toml")
    assert not (tmp_path / "pwned.csv").exists() and not (tmp_path / "wh.duckdb").exists()


def test_an_attribute_column_of_any_name_is_added_as_that_name_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect()
    raw_schema.ensure_schema(con)
    raw_schema.add_attribute_columns(con, "raw_events", (HOSTILE, 'a"b', "--"))
    assert raw_schema.table_columns(con, "raw_events")[-3:] == [HOSTILE, 'a"b', "--"]
    assert not (tmp_path / "pwned.csv").exists()


def test_ident_quotes_through_sqlglot_whatever_the_name_holds():
    assert ident("channel") == '"channel"'
    assert ident('a"b') == '"a""b"'
    assert duckdb.connect().execute(f"select 1 as {ident(HOSTILE)}").description[0][0] == HOSTILE
    with pytest.raises(ValueError):
        ident("")


def _formatted_quoted_names(path: Path) -> list[str]:
    """f-strings of a module that put a value between double quotes, as SQL quotes an identifier."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.JoinedStr):
            continue
        parts = node.values
        for before, value, after in zip(parts, parts[1:], parts[2:]):
            if (isinstance(value, ast.FormattedValue) and isinstance(before, ast.Constant) and isinstance(after, ast.Constant)
                    and str(before.value).endswith('"') and str(after.value).startswith('"')):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_identifier_in_the_loaders_sql_is_quoted_by_string_formatting():
    found = [hit for name in ("load.py", "readers.py", "raw_schema.py") for hit in _formatted_quoted_names(ETL / name)]
    assert found == [], found


def test_csv_header_names_holding_quotes_semicolons_and_comments_load_as_data(tmp_path, db):
    config_text = (
        "[columns]\n"
        "lead_id = 'Lead \"ID\"; DROP TABLE raw_events; --'\n"
        "stage = \"Stage'); --\"\n"
        "entered_at = 'When -- \"x\" ;'\n"
    )
    config = load_config(write(tmp_path / "funnel.toml", config_text))
    header = '"Lead ""ID""; DROP TABLE raw_events; --",Stage\'); --,"When -- ""x"" ;","Team""; DROP TABLE load_ledger; --"'
    src = write(tmp_path / "e.csv", header + "\nL1,mql,2024-01-02,north\nL2,sql,2024-01-03,south\n")
    (f,) = load_files(db, [src], config, now=NOW).files
    assert (f.rows_read, f.rows_loaded) == (2, 2)
    assert rows(db, "select lead_id, stage, team_drop_table_load_ledger from raw_events order by 1") == [
        ("L1", "mql", "north"), ("L2", "sql", "south")]
    assert rows(db, "select count(*) from load_ledger") == [(1,)]


def test_parquet_and_json_names_holding_sql_are_read_as_names(tmp_path, db):
    config = load_config(write(tmp_path / "funnel.toml", f"[columns]\nlead_id = {json.dumps(HOSTILE)}\n"))
    pq.write_table(pa.table({HOSTILE: ["L1"], "stage": ["mql"], "entered_at": ["2024-01-02"], 'Owner"; --': ["Ann"]}),
                   tmp_path / "e.parquet")
    write(tmp_path / "e.jsonl", json.dumps({HOSTILE: "L2", "stage": "sql", "entered_at": "2024-01-03", 'Owner"; --': "Bo"}) + "\n")
    load_files(db, [tmp_path / "e.parquet", tmp_path / "e.jsonl"], config, now=NOW)
    assert rows(db, "select lead_id, stage, owner from raw_events order by 1") == [("L1", "mql", "Ann"), ("L2", "sql", "Bo")]


# -- 2. a damaged gzip is refused -----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_gzip(tmp_path_factory) -> bytes:
    """56,587 demo events as gzip bytes."""
    out = tmp_path_factory.mktemp("gz") / "events.csv"
    generate(out=out, fmt="csv", n_events=56_587, seed=1)
    return gzip.compress(out.read_bytes())


def _published(tmp_path: Path) -> tuple[Path, bytes]:
    """A warehouse holding one good load, and its bytes."""
    db = tmp_path / "wh.duckdb"
    load_files(db, [write(tmp_path / "first.csv", HEADER + "\nL0,mql,2024-01-02,,x,y\n")], load_config(None), now=NOW)
    return db, db.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["200 flipped bytes mid-stream", "cut after the gzip header", "cut half way"])
def test_a_damaged_gzip_is_refused_naming_it_and_nothing_is_published(tmp_path, demo_gzip, damage):
    db, before = _published(tmp_path)
    data = bytearray(demo_gzip)
    if damage.startswith("200"):
        middle = len(data) // 2
        data[middle:middle + 200] = bytes(b ^ 0xFF for b in data[middle:middle + 200])
    else:
        data = data[:10] if "header" in damage else data[: len(data) // 2]
    bad = tmp_path / "events.csv.gz"
    bad.write_bytes(bytes(data))
    result = cli("load", str(bad), "--db", str(db), "--quiet")
    line = refused_in_one_sentence(result, "events.csv.gz")
    assert "damaged gzip file" in line
    assert db.read_bytes() == before


def test_a_damaged_json_lines_gzip_is_refused(tmp_path, db, config):
    data = bytearray(gzip.compress(b"".join(json.dumps({"lead_id": f"L{i}", "stage": "mql", "entered_at": "2024-01-02",
                                                        "note": f"{i * 7919 % 104729}"}).encode() + b"\n"
                                            for i in range(20_000))))
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "e.jsonl.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"e\.jsonl\.gz' is a damaged gzip file"):
        load_files(db, [bad], config, now=NOW)
    assert not db.exists()


def test_an_intact_gzip_of_several_members_loads(tmp_path, db, config):
    src = tmp_path / "e.csv.gz"
    src.write_bytes(gzip.compress((HEADER + "\nL1,mql,2024-01-02,,x,y\n").encode()) + gzip.compress(b"L2,sql,2024-01-03,,x,y\n"))
    (f,) = load_files(db, [src], config, now=NOW).files
    assert (f.rows_read, f.rows_loaded) == (2, 2)


# -- 3. mixed line endings load --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("gz", [False, True], ids=["csv", "csv.gz"])
def test_mixed_line_endings_load_every_row_on_its_line(tmp_path, db, config, gz):
    text = (HEADER + "\r\nL1,mql,2024-01-02,,x,y\r\nL2,sql,2024-01-03,,x,y\nL3,mql,2024-01-04,,x,y\r\n").encode()
    src = tmp_path / ("e.csv.gz" if gz else "e.csv")
    src.write_bytes(gzip.compress(text) if gz else text)
    (f,) = load_files(db, [src], config, now=NOW).files
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (3, 3, 0)
    assert rows(db, "select lead_id, owner, source_line from raw_events order by 1") == [("L1", "y", 2), ("L2", "y", 3), ("L3", "y", 4)]
    assert any("mixes CRLF and LF" in n for n in f.notes)
    assert rows(db, "select sha256, format from load_ledger")[0][1] == ("csv+gzip" if gz else "csv")


def test_a_bad_row_in_a_file_of_mixed_endings_is_quarantined_on_its_line(tmp_path, db, config):
    src = tmp_path / "e.csv"
    src.write_bytes((HEADER + "\nL1,mql,2024-01-02,,x,y\r\nL2,mql,someday,,x,y\nL3,mql,2024-01-02,,x,y,extra\r\nL4,sql,2024-01-03,,x,y\n").encode())
    (f,) = load_files(db, [src], config, now=NOW).files
    assert rows(db, "select line, reason from quarantine order by line") == [(3, "unparseable_timestamp"), (4, "wrong_column_count")]
    assert rows(db, "select lead_id, source_line from raw_events order by 1") == [("L1", 2), ("L4", 5)]
    assert f.rows_read == f.rows_loaded + f.rows_quarantined == 4


# -- 5. JSON Lines: keys that name one column ------------------------------------------------------


def test_a_json_line_with_two_keys_for_one_column_is_quarantined_on_its_own(tmp_path, db, config):
    lines = [
        {"lead_id": "L1", "stage": "mql", "entered_at": "2024-01-02"},
        {"lead_id": 1, "Lead_ID": 2, "stage": "mql", "entered_at": "2024-01-02"},
        {"Lead_ID": "L3", "Stage": "sql", "entered_at": "2024-01-03"},
    ]
    src = write(tmp_path / "e.jsonl", "\n".join(json.dumps(x) for x in lines) + '\n{"lead_id": "L4", "lead_id": "L5", "stage": "mql", "entered_at": "2024-01-02"}\n')
    (f,) = load_files(db, [src], config, now=NOW).files
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (4, 2, 2)
    assert rows(db, "select line, reason, detail from quarantine order by line") == [
        (2, "duplicate_keys", "the object has two keys for one column (keys are matched without regard to case)"),
        (4, "duplicate_keys", "the object has two keys for one column (keys are matched without regard to case)"),
    ]
    assert rows(db, "select lead_id, stage, source_line from raw_events order by 1") == [("L1", "mql", 1), ("L3", "sql", 3)]


def test_a_json_line_over_the_line_limit_is_quarantined_and_later_lines_keep_their_numbers(tmp_path, db, config):
    good = json.dumps({"lead_id": "L1", "stage": "mql", "entered_at": "2024-01-02"})
    huge = json.dumps({"lead_id": "L2", "stage": "mql", "entered_at": "2024-01-02", "note": "x" * 2_500_000})
    src = write(tmp_path / "e.jsonl", "\n".join([good, huge, good.replace("L1", "L3")]) + "\n")
    (f,) = load_files(db, [src], config, now=NOW).files
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (3, 2, 1)
    assert rows(db, "select line, reason, length(raw) from quarantine") == [(2, "line_too_long", 10_000)]
    assert rows(db, "select lead_id, source_line from raw_events order by 1") == [("L1", 1), ("L3", 3)]


# -- 6. offsets, NUL bytes, the same file twice ----------------------------------------------------

OFFSETS = [
    ("+25:00", "impossible_timestamp"),
    ("+14:30", "impossible_timestamp"),
    ("-15:00", "impossible_timestamp"),
    ("+10:75", "impossible_timestamp"),
    ("+99", "impossible_timestamp"),
    ("+1401", "impossible_timestamp"),
    ("+14:00", None),
    ("-12:00", None),
    ("+05:45", None),
    ("+0530", None),
    ("-03", None),
    ("Z", None),
]


@pytest.mark.slow
@pytest.mark.parametrize("offset,reason", OFFSETS, ids=[o for o, _ in OFFSETS])
def test_an_offset_no_place_has_is_an_impossible_timestamp(tmp_path, db, config, offset, reason):
    src = write(tmp_path / "e.csv", f"{HEADER}\nL1,mql,2024-01-02T10:00:00{offset},,x,y\nL2,mql,2024-01-02,,x,y\n")
    load_files(db, [src], config, now=NOW)
    assert rows(db, "select reason from quarantine") == ([(reason,)] if reason else [])


def test_a_nul_byte_after_the_first_64_kb_refuses_the_file(tmp_path, db, config):
    body = "".join(f"L{i},mql,2024-01-02,,x,y\n" for i in range(5_000))
    src = tmp_path / "e.csv"
    src.write_bytes((HEADER + "\n" + body).encode() + b"L\x00X,mql,2024-01-02,,x,y\n")
    assert src.stat().st_size > 1 << 16
    with pytest.raises(UserError, match=r"e\.csv' contains NUL bytes \(the first on line 5,002\)"):
        load_files(db, [src], config, now=NOW)
    assert not db.exists()


def test_the_same_path_twice_in_one_command_loads_once_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = write(tmp_path / "e.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\n")
    copy = write(tmp_path / "copy.csv", src.read_text())
    result = cli("load", str(src), "e.csv", str(copy), "--db", "wh.duckdb", "--quiet")
    assert result.exit_code == 0, result.output
    assert f"skipped {src}: given twice in this command; loaded once" in result.output
    assert f"skipped {copy}: the same content as '{src}', given before it; loaded once" in result.output
    assert rows(tmp_path / "wh.duckdb", "select source_file, rows_loaded from load_ledger") == [(str(src), 1)]


def test_docs_list_every_quarantine_reason_the_loader_gives():
    docs = (ETL.parent / "docs" / "loading.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", docs, re.M))
    listed = {name for pair in listed for name in pair if name}
    source = (ETL / "load.py").read_text() + (ETL / "readers.py").read_text()
    given = set(re.findall(r"then '([a-z_]+)'", source)) | set(re.findall(r'"[A-Z ]+": "([a-z_]+)"', source))
    assert {"line_too_long", "duplicate_keys", "impossible_timestamp"} <= given
    assert given - listed == set()


def test_unmapped_labels_holding_quotes_line_breaks_and_formulas_are_listed_as_written(tmp_path):
    """The unmapped labels are read back from the quarantine's detail: a label with quotes, a line break inside
    its quoted value or a formula is listed whole, as the CSV wrote it."""
    from funnelboard.warehouse.status import warehouse_status

    labels = ['Demo "live"', "Call\nback", '=HYPERLINK("http://x")']
    body = "".join(f'L{n},"{label.replace(chr(34), chr(34) * 2)}",2024-01-0{n + 1},,web,ann\n' for n, label in enumerate(labels))
    db = tmp_path / "w.duckdb"
    load_files(db, [write(tmp_path / "e.csv", HEADER + "\n" + body)], load_config(None), now=NOW)
    assert warehouse_status(db)["unknown_labels"] == {label: 1 for label in labels}
