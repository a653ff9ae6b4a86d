"""The adapter contract (etl/sources/base.py) as the loader enforces it, and canonical through it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.errors import UserError
from funnelboard.etl.generate import generate
from funnelboard.etl.sources import Translation, read_table, registry, string_table
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW, rows, write

RAW_EVENTS = "select * exclude (file_id) from raw_events order by lead_id, entered_at, stage, source_line"


@pytest.mark.slow
def test_source_canonical_on_the_command_line_is_the_old_path(tmp_path):
    src = tmp_path / "events.csv"
    generate(out=src, fmt="csv", n_leads=300, seed=3, dirty=True)
    runner = CliRunner()
    old = runner.invoke(main, ["load", str(src), "--db", str(tmp_path / "old.duckdb"), "--quiet"])
    new = runner.invoke(main, ["load", str(src), "--source", "canonical", "--db", str(tmp_path / "new.duckdb"), "--quiet"])
    assert old.exit_code == new.exit_code == 0
    assert old.output.replace("old.duckdb", "X").split(" in ")[0] == new.output.replace("new.duckdb", "X").split(" in ")[0]
    for sql in (RAW_EVENTS, "select * from quarantine order by line",
                "select * exclude (loaded_at) from load_ledger"):
        assert rows(tmp_path / "old.duckdb", sql) == rows(tmp_path / "new.duckdb", sql)


@pytest.mark.slow
def test_the_canonical_example_adapter_gives_the_native_raw_tables(tmp_path, config, monkeypatch):
    """etl/sources/canonical.py through the adapter path == the native SQL path, on a clean demo file."""
    monkeypatch.setitem(registry.ADAPTERS, "canonical_example", "funnelboard.etl.sources.canonical")
    src = tmp_path / "events.csv"
    generate(out=src, fmt="csv", n_leads=300, seed=5)
    extra = write(tmp_path / "more.csv", src.read_text().splitlines()[0] + "\n" + "\n".join(src.read_text().splitlines()[1:40]) + "\nX1,Bogus,2024-01-01" + "," * (src.read_text().splitlines()[0].count(",") - 2) + "\n")
    native = load_files(tmp_path / "a.duckdb", [src, extra], config, now=NOW)
    adapted = load_files(tmp_path / "b.duckdb", [src, extra], config, now=NOW, source="canonical_example")
    for n, a in zip(native.files, adapted.files):
        assert (n.rows_read, n.rows_loaded, n.rows_quarantined, n.rows_duplicate, n.reasons) == (
            a.rows_read, a.rows_loaded, a.rows_quarantined, a.rows_duplicate, a.reasons)
        assert a.source_rows == a.rows_read  # one event per row
    assert adapted.files[1].rows_duplicate == 39
    for sql in (RAW_EVENTS, "select * from fct_leads order by lead_id",
                "select reason, line, detail from quarantine order by file_id, line"):
        assert rows(tmp_path / "a.duckdb", sql) == rows(tmp_path / "b.duckdb", sql)


def _adapter_module(monkeypatch, translate) -> None:
    import sys
    import types

    module = types.ModuleType("tests_fake_adapter")
    module.translate = translate
    monkeypatch.setitem(sys.modules, "tests_fake_adapter", module)
    monkeypatch.setitem(registry.ADAPTERS, "fake", "tests_fake_adapter")


def _history(tmp_path: Path) -> Path:
    return write(tmp_path / "history.csv", "Id,Field,New,At\n1,Amount,5,2024-01-01\n1,Stage,New,2024-01-01\n1,Stage,Closed Won,2024-01-09\n2,Stage,,2024-01-02\n")


def _fake(paths, config, options, *, forget_ignored=False):
    """A tiny history adapter: Stage rows are events, other fields are ignored, empty stages rejected."""
    out = Translation(events=pa.table({}))
    events, leads = [], []
    for path in paths:
        table = read_table(path, config, out)
        for line, row, raw in table.rows:
            if row["Field"] != "Stage":
                if not forget_ignored:
                    out.ignore(path, "not_a_stage_change")
            elif not row["New"]:
                out.reject(path, line, "missing_stage", "New is empty", raw)
            else:
                events.append({"lead_id": row["Id"], "stage": row["New"], "entered_at": row["At"], "_file": str(path), "_line": line})
                leads.append({"lead_id": row["Id"], "region": "emea", "_file": str(path), "_line": line})
    out.events = string_table(events, ("lead_id", "stage", "entered_at", "_file", "_line"))
    out.leads = string_table(leads, ("lead_id", "region", "_file", "_line"))
    out.notes.append("the fake export keeps no reasons.")
    return out


@pytest.mark.slow
def test_ignored_rejected_and_lead_rows_are_all_accounted(tmp_path, db, config, monkeypatch):
    _adapter_module(monkeypatch, _fake)
    src = _history(tmp_path)
    report = load_files(db, [src], config, now=NOW, source="fake")
    ev, ld = report.files
    assert (ev.role, ev.source_rows, ev.ignored, ev.rows_read, ev.rows_loaded, ev.rows_quarantined) == (
        "events", 4, {"not_a_stage_change": 1}, 3, 2, 1)
    # Lead 1's two Stage rows give the same lead row twice: one is an exact duplicate.
    assert (ld.role, ld.rows_read, ld.rows_loaded, ld.rows_duplicate) == ("leads", 2, 1, 1)
    assert rows(db, "select role, source, source_rows, rows_ignored, notes from load_ledger order by file_id") == [
        ("events", "fake", 4, 1, '["the fake export keeps no reasons."]'),
        ("leads", "fake", None, None, '["the fake export keeps no reasons."]'),
    ]
    # No _raw column: the quarantine keeps the adapter's raw text, and the loader's own rejects get JSON.
    assert rows(db, "select reason, line, raw from quarantine") == [("missing_stage", 5, "2,Stage,,2024-01-02")]
    again = load_files(db, [src], config, now=NOW, source="fake")
    assert [f.status for f in again.files] == ["skipped"] and not again.published
    replaced = load_files(db, [src], config, now=NOW, source="fake", replace=True)
    assert replaced.files[0].rows_replaced == 3  # 2 events + 1 lead row
    assert rows(db, "select count(*) from raw_events") == [(2,)] and rows(db, "select count(*) from raw_leads") == [(1,)]


def test_an_adapter_that_loses_a_row_is_refused_and_nothing_changes(tmp_path, db, config, monkeypatch):
    _adapter_module(monkeypatch, lambda p, c, o: _fake(p, c, o, forget_ignored=True))
    with pytest.raises(RuntimeError, match="does not account for every row"):
        load_files(db, [_history(tmp_path)], config, now=NOW, source="fake")
    assert not db.exists()


def test_an_adapter_column_named_by_the_user_must_be_an_identifier(tmp_path, db, config, monkeypatch):
    def bad(paths, config, options):
        event = {"lead_id": "1", "stage": "mql", "entered_at": "2024-01-01", "Bad Name": "x", "_file": str(paths[0]), "_line": 2}
        out = Translation(events=string_table([event], ("lead_id", "stage", "entered_at", "Bad Name", "_file", "_line")))
        out.source_rows[str(paths[0])] = 1
        return out

    _adapter_module(monkeypatch, bad)
    with pytest.raises(UserError, match="'Bad Name'"):
        load_files(db, [_history(tmp_path)], config, now=NOW, source="fake")


# (case, text, expected rows (line, first value), expected rejections (line, reason))
READ_CASES = [
    ("header is line 1", "a,b\n1,x\n2,y\n", [(2, "1"), (3, "2")], []),
    ("a quoted line break keeps the line it starts on", 'a,b\n1,"x\ny"\n2,z\n', [(2, "1"), (4, "2")], []),
    ("blank lines count as lines, not rows", "a,b\n1,x\n\n2,y\n", [(2, "1"), (4, "2")], []),
    ("wrong field count", "a,b\n1,x,extra\n2,y\n", [(3, "2")], [(2, "wrong_column_count")]),
    ("unterminated quote", 'a,b\n1,x\n2,"y\n3,z\n', [(2, "1")], [(3, "malformed_csv")]),
    ("CRLF line ends", "a,b\r\n1,x\r\n2,y\r\n", [(2, "1"), (3, "2")], []),
]


@pytest.mark.parametrize("case,text,expected,rejected", READ_CASES, ids=[c[0] for c in READ_CASES])
def test_read_table_numbers_lines_as_an_editor_does(tmp_path, config, case, text, expected, rejected):
    out = Translation(events=pa.table({}))
    table = read_table(write(tmp_path / "x.csv", text), config, out)
    assert [(line, row["a"]) for line, row, _ in table.rows] == expected
    assert [(r.line, r.reason) for r in out.rejected] == rejected
    assert out.source_rows[str(tmp_path / "x.csv")] == len(expected) + len(rejected)


def test_read_table_rejects_undecodable_rows(tmp_path, config):
    src = tmp_path / "x.csv"
    src.write_bytes(b"a,b\n1,caf\xe9\n2,y\n")
    out = Translation(events=pa.table({}))
    table = read_table(src, config, out)
    assert [r[0] for r in table.rows] == [3]
    assert [(r.line, r.reason) for r in out.rejected] == [(2, "invalid_encoding")]


# -- the header: another delimiter, a column with no name ------------------------------------------------

FIXTURES = Path(__file__).parents[2] / "fixtures"
WIDE_OPTIONS = '[source.wide]\nid = "lead"\nstages = { mql = "mql_date" }\n'
# (source, a file in the export's real shape, the config's [source] table)
EXPORTS = [
    ("canonical", None, ""),
    ("wide", None, WIDE_OPTIONS),
    ("salesforce", FIXTURES / "salesforce" / "OpportunityHistory.csv", ""),
    ("hubspot", FIXTURES / "hubspot" / "deals_export.csv", ""),
    ("pipedrive", FIXTURES / "pipedrive" / "deals_export.csv", ""),
]


def _export(tmp_path: Path, source: str, fixture: Path | None, delimiter: str) -> Path:
    """The export rewritten with `delimiter`, as a spreadsheet saved in another locale writes it."""
    import csv
    import io

    if fixture is None:
        rows_ = [["lead_id", "stage", "entered_at"], ["L1", "mql", "2024-01-02"]] if source == "canonical" else [["lead", "mql_date"], ["L1", "2024-01-02"]]
    else:
        rows_ = list(csv.reader(io.StringIO(fixture.read_text("utf-8"))))
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, quoting=csv.QUOTE_ALL if fixture else csv.QUOTE_MINIMAL, lineterminator="\n").writerows(rows_)
    return write(tmp_path / "export.csv", out.getvalue())


@pytest.mark.slow
@pytest.mark.parametrize("source,fixture,options", EXPORTS, ids=[e[0] for e in EXPORTS])
@pytest.mark.parametrize("delimiter,name,toml", [(";", "semicolon", '";"'), ("\t", "tab", '"\\t"')], ids=["semicolon", "tab"])
def test_every_source_names_the_delimiter_an_export_uses_and_honours_input_delimiter(tmp_path, source, fixture, options, delimiter, name, toml):
    from funnelboard.core.config import load_config

    src = _export(tmp_path, source, fixture, delimiter)
    config = load_config(write(tmp_path / "funnel.toml", options))
    with pytest.raises(UserError) as err:
        load_files(tmp_path / "a.duckdb", [src], config, now=NOW, source=source)
    message = str(err.value)
    assert f"'{src}' has its whole header in one column" in message
    assert f"it looks {name}-separated, but it was read as comma-separated; set delimiter = {toml} under [input] in funnel.toml." in message
    assert "\n" not in message
    config = load_config(write(tmp_path / "funnel.toml", f"[input]\ndelimiter = {toml}\n" + options))
    report = load_files(tmp_path / "b.duckdb", [src], config, now=NOW, source=source)
    assert report.files[0].rows_loaded > 0


@pytest.mark.slow
@pytest.mark.parametrize("source,fixture,options", EXPORTS, ids=[e[0] for e in EXPORTS])
def test_every_source_reads_a_header_that_ends_in_a_comma(tmp_path, source, fixture, options):
    from funnelboard.core.config import load_config

    config = load_config(write(tmp_path / "funnel.toml", options))
    plain = _export(tmp_path, source, fixture, ",")
    lines = plain.read_text().splitlines()
    src = write(tmp_path / "trailing.csv", "\n".join([lines[0] + ","] + [line + "," for line in lines[1:]]) + "\n")
    expected = load_files(tmp_path / "a.duckdb", [plain], config, now=NOW, source=source).files[0]
    got = load_files(tmp_path / "b.duckdb", [src], config, now=NOW, source=source).files[0]
    assert (got.rows_read, got.rows_loaded, got.rows_quarantined) == (expected.rows_read, expected.rows_loaded, expected.rows_quarantined)
    assert any("has a column with no name in its header" in n for n in got.notes)
    bad = write(tmp_path / "bad.csv", "\n".join([lines[0] + ",", lines[1] + ",surprise"] + [line + "," for line in lines[2:]]) + "\n")
    with pytest.raises(UserError, match=r"has a column with no name \(column \d+\) that holds .*'surprise'.*name that column in the header, or delete it\."):
        load_files(tmp_path / "c.duckdb", [bad], config, now=NOW, source=source)


TRAILING_CASES = [
    ("trailing comma in the header and every row", "a,b,\n1,x,\n2,y,\n", [(2, "1"), (3, "2")], []),
    ("trailing comma in the header only", "a,b,\n1,x\n2,y\n", [(2, "1"), (3, "2")], []),
    ("a row with too many fields is still wrong", "a,b,\n1,x,,\n2,y,\n", [(3, "2")], [(2, "wrong_column_count")]),
]


@pytest.mark.parametrize("case,text,expected,rejected", TRAILING_CASES, ids=[c[0] for c in TRAILING_CASES])
def test_read_table_drops_an_empty_unnamed_column(tmp_path, config, case, text, expected, rejected):
    out = Translation(events=pa.table({}))
    table = read_table(write(tmp_path / "x.csv", text), config, out)
    assert table.header == ("a", "b")
    assert [(line, row["a"]) for line, row, _ in table.rows] == expected
    assert [(r.line, r.reason) for r in out.rejected] == rejected
    assert len(out.notes) == 1
