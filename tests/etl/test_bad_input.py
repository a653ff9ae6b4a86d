"""The bad-input catalogue: every way a load's input can be wrong, through `funnelboard load`.

Each case runs the command with click's runner against a warehouse that already holds a good load.
A file-level problem (exit 2) is one sentence on one line, never a traceback, and leaves the
warehouse file byte-identical, even though the command also names a new good file. A row-level
problem (exit 0) is quarantined with its reason and line, and every new ledger row balances:
rows read = loaded + quarantined + duplicates.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import HEADER, NOW, rows

GOOD = "L1,New Lead,2024-01-02 09:00:00,,inbound,Ann"
Maker = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it (the arguments after `load`), the exit code, and what must follow."""

    name: str
    make: Maker
    exit: int
    says: str = ""  # refusals: part of the one error line; quarantines: part of the output
    quarantined: list[tuple[str, int]] = field(default_factory=list)  # (reason, line) of each row, by line
    loaded: int | None = None  # rows loaded by the command (quarantines)
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None
    with_good: bool = True  # refusals: a new good file is named first, and must not load either
    usage: bool = False  # click refuses the arguments itself: its usage text, then one error line
    names: str | None = "bad"  # refusals: the error line names this file (None: no file to name)


# -- makers --------------------------------------------------------------------------------------


def raw(name: str, data: bytes | str, *extra: str) -> Maker:
    """A maker writing `data` to `name`; the arguments are its path and `extra`."""
    def make(d: Path) -> list[str]:
        (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        return [str(d / name), *extra]
    return make


def events(*lines: str, name: str = "bad.csv", header: str = HEADER) -> Maker:
    """A maker writing a canonical CSV of `lines` after `header`."""
    return raw(name, "\n".join([header, *lines]) + "\n")


def with_config(toml: str, make: Maker) -> Maker:
    """`make`, then --config with a funnel.toml of `toml`."""
    def both(d: Path) -> list[str]:
        (d / "funnel.toml").write_text(toml)
        return make(d) + ["--config", str(d / "funnel.toml")]
    return both


def parquet(name: str, table: pa.Table) -> Maker:
    """A maker writing `table` as Parquet."""
    def make(d: Path) -> list[str]:
        pq.write_table(table, d / name)
        return [str(d / name)]
    return make


def jsonl(*lines: str, name: str = "bad.jsonl") -> Maker:
    return raw(name, "".join(line + "\n" for line in lines))


def obj(lead: str = "L2", stage: str = "mql", at: str = "2024-01-03", **more) -> str:
    return json.dumps({"lead_id": lead, "stage": stage, "entered_at": at, **more})


def many_rows(n: int = 5_000) -> str:
    return "".join(f"L{i},mql,2024-01-02,,x,y\n" for i in range(n))


def gz_events(n: int = 20_000) -> bytes:
    """A gzip of `n` events that compresses poorly (so damage lands in the data, and past 64 KB)."""
    body = "".join(f"L{i},mql,2024-01-{1 + i % 28:02d},,c{i * 7919 % 104729},o{i * 104729 % 7919}\n" for i in range(n))
    return gzip.compress((HEADER + "\n" + body).encode())


def flipped(data: bytes, count: int = 200) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + count]) + data[middle + count:]


def a_dir(name: str, option: str | None = None) -> Maker:
    def make(d: Path) -> list[str]:
        (d / name).mkdir()
        return [option, str(d / name)] if option else [str(d / name)]
    return make


def leads(content: str, with_events: bool = False) -> Maker:
    def make(d: Path) -> list[str]:
        (d / "bad_leads.csv").write_text(content)
        first = events(GOOD.replace("L1", "L8"), name="ev.csv")(d) if with_events else []
        return first + ["--leads", str(d / "bad_leads.csv")]
    return make


def after_checks(action: Callable[[Path], None]) -> Callable[[pytest.MonkeyPatch, Path], None]:
    """A patch running `action` on bad.csv after every file is checked, before the load reads it."""
    def patch(monkeypatch: pytest.MonkeyPatch, d: Path) -> None:
        import funnelboard.warehouse.pipeline as pipeline

        real = pipeline.pending

        def pending(jobs, already, replace):
            action(d / "bad.csv")
            return real(jobs, already, replace)

        monkeypatch.setattr(pipeline, "pending", pending)
    return patch


def quoted(*rows_: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows_)
    return out.getvalue()


def parquet_truncated(d: Path) -> list[str]:
    pq.write_table(pa.table({"lead_id": ["L2"] * 500, "stage": ["mql"] * 500, "entered_at": ["2024-01-03"] * 500}), d / "full.parquet")
    data = (d / "full.parquet").read_bytes()
    (d / "bad.parquet").write_bytes(data[: len(data) // 2])
    return [str(d / "bad.parquet")]


def twice(d: Path) -> list[str]:
    path = events(GOOD.replace("L1", "L2"), name="twice.csv")(d)[0]
    return [path, path]


# -- file-level problems: exit 2, one sentence, nothing changed -----------------------------------

REFUSED = [
    Case("missing file", lambda d: [str(d / "bad.csv")], 2, "does not exist"),
    Case("empty file", raw("bad.csv", b""), 2, "is empty"),
    Case("only blank lines", raw("bad.csv", "\n \n\t\n"), 2, "is empty"),
    Case("header only", raw("bad.csv", HEADER + "\n"), 2, "has no data rows"),
    Case("missing required column", raw("bad.csv", "lead_id,status,entered_at\nL1,mql,2024-01-02\n"), 2,
         "has no 'stage' column: expected lead_id, stage, entered_at; found lead_id, status, entered_at"),
    Case("UTF-16", raw("bad.csv", (HEADER + "\n" + GOOD + "\n").encode("utf-16")), 2, "is UTF-16 encoded"),
    Case("binary", raw("bad.csv", b"PK\x03\x04\x14\x00\x00\x00\x08\x00binary"), 2, "contains NUL bytes"),
    Case("NUL after the first 64 KB", raw("bad.csv", (HEADER + "\n" + many_rows()).encode() + b"L\x00,mql,2024-01-02,,x,y\n"), 2,
         "contains NUL bytes (the first on line 5,002)"),
    Case("unknown format", raw("bad.xlsx", "whatever"), 2, "cannot tell the format"),
    Case("no extension", raw("bad", HEADER + "\n" + GOOD + "\n"), 2, "cannot tell the format"),
    Case("duplicate headers", events(GOOD + ",mql", header=HEADER + ",Stage"), 2, "has two columns named 'stage'"),
    Case("header without names", raw("bad.csv", ",,\nL1,mql,2024-01-02\n"), 2, "no column names"),
    Case("semicolon-separated", raw("bad.csv", "lead_id;stage;entered_at\nL1;mql;2024-01-02\n"), 2, "semicolon-separated"),
    Case("tab-separated named .csv", raw("bad.csv", "lead_id\tstage\tentered_at\nL1\tmql\t2024-01-02\n"), 2, "tab-separated"),
    Case("reserved column name", events(GOOD + ",7", header=HEADER + ",source_line"), 2, "which funnelboard reserves"),
    Case("unnamed column holding values", raw("bad.csv", "lead_id,stage,entered_at,\nL1,mql,2024-01-02,x\n"), 2,
         "has a column with no name (column 4) that holds values"),
    Case("header not valid UTF-8", raw("bad.csv", "lead_id,stage,entered_at,Café\nL1,mql,2024-01-02,x\n".encode("latin-1")), 2,
         "has a header row that is not valid utf-8"),
    Case("a directory given as a file", a_dir("bad.csv"), 2, "is a directory", usage=True),
    Case("a directory given as --leads", a_dir("bad.csv", "--leads"), 2, "is a directory", usage=True),
    Case("a file that disappears after its check", events(GOOD.replace("L1", "L2")), 2, "disappeared after it was checked",
         patch=after_checks(lambda p: p.unlink())),
    Case("a file that changes after its check", events(GOOD.replace("L1", "L2")), 2, "changed after it was checked",
         patch=after_checks(lambda p: p.write_text(p.read_text() + "L3,mql,2024-01-05,,x,y\n"))),
    Case("zero-byte gzip", raw("bad.csv.gz", b""), 2, "is empty"),
    Case("plain text named .gz", raw("bad.csv.gz", HEADER + "\n" + GOOD + "\n"), 2, "is not gzip data"),
    Case("gzip with 200 flipped bytes", raw("bad.csv.gz", flipped(gz_events())), 2, "is a damaged gzip file"),
    Case("gzip cut after its header", raw("bad.csv.gz", gz_events()[:10]), 2, "is a damaged gzip file: it ends before"),
    Case("gzip cut past its first 64 KB", raw("bad.csv.gz", gz_events()[: len(gz_events()) // 2]), 2,
         "is a damaged gzip file: it ends before"),
    Case("gzip with bytes after its end", raw("bad.csv.gz", gzip.compress((HEADER + "\n" + GOOD + "\n").encode()) + b"garbage"), 2,
         "is a damaged gzip file: bytes that are not gzip follow"),
    Case("gzip padded with zeros", raw("bad.csv.gz", gzip.compress((HEADER + "\n" + GOOD + "\n").encode()) + b"\0" * 8), 2,
         "cannot be read"),
    Case("damaged JSON Lines gzip", raw("bad.jsonl.gz", flipped(gzip.compress("".join(
        obj(f"L{i}", note=f"{i * 7919 % 104729}") + "\n" for i in range(20_000)).encode()), 1)), 2, "is a damaged gzip file"),
    Case("not Parquet", raw("bad.parquet", "this is not parquet"), 2, "is not a readable Parquet file"),
    Case("Parquet cut in half", parquet_truncated, 2, "is not a readable Parquet file"),
    Case("Parquet without a required column", parquet("bad.parquet", pa.table({"lead_id": ["L2"], "stage": ["mql"]})), 2,
         "has no 'entered_at' column"),
    Case("Parquet with no rows", parquet("bad.parquet", pa.table({c: pa.array([], pa.string()) for c in ("lead_id", "stage", "entered_at")})),
         2, "has no data rows"),
    Case("JSON Lines of blank lines", raw("bad.jsonl", "\n  \n"), 2, "is empty: expected one JSON object per line"),
    Case("JSON Lines without an object", jsonl("[1, 2]", '"text"', "3"), 2, "has no 'lead_id' column"),
    Case("JSON Lines with a reserved key", jsonl(obj(source_line=4)), 2, "which funnelboard reserves"),
    Case("JSON Lines with a 65 MB line", raw("bad.jsonl", obj() + "\n" + json.dumps({"x": "y" * (65 << 20)}) + "\n"), 2,
         "has a line of"),
    Case("leads file that dates none of its leads", leads("lead_id,industry\nX1,retail\n"), 2, "gives no date for any of its",
         names="bad_leads"),
    Case("leads file without lead_id", leads("id,created_at\n1,2024-01-01\n"), 2, "has no 'lead_id' column", names="bad_leads"),
    Case("unknown --source", lambda d: [str(d / "x.csv"), "--source", "nope"], 2, "unknown --source 'nope'", names=None),
    Case("--source wide without its table", lambda d: events(GOOD, name="bad.csv")(d) + ["--source", "wide"], 2,
         "needs a [source.wide] table", with_good=False, names=None),
    Case("nothing to load", lambda d: [], 2, "nothing to load", with_good=False, names=None),
    Case("SQL in an attribute name in funnel.toml", with_config(
        '[attributes]\namount = "x\\" varchar; COPY (SELECT 1) TO \'pwned.csv\'; --"\n', events(GOOD.replace("L1", "L2"))), 2,
        "expected lower-case letters, digits and underscores", names="funnel.toml"),
]


# -- row-level problems: exit 0, quarantined, every ledger row balances ---------------------------

QUARANTINED = [
    Case("too many fields", events(GOOD, "L2,mql,2024-01-02,,x,y,extra"), 0, quarantined=[("wrong_column_count", 3)], loaded=1),
    Case("too few fields", events(GOOD, "L2,mql,2024-01-02"), 0, quarantined=[("wrong_column_count", 3)], loaded=1),
    Case("unterminated quote", events(GOOD, 'L2,"mql,2024-01-02,,x,y', "L3,mql,2024-01-03,,x,y"), 0,
         quarantined=[("malformed_csv", 3)], loaded=1),
    Case("a row that is not UTF-8", raw("bad.csv", (HEADER + "\n" + GOOD + "\n").encode() + "L2,mql,2024-01-02,,Café,y\n".encode("latin-1")),
         0, quarantined=[("invalid_encoding", 3)], loaded=1),
    Case("bad dates of every kind", events(
        GOOD, "L2,mql,31/01/2024,,x,y", "L3,mql,yesterday,,x,y", "L4,mql,2024-01-02 10:00 Europe/Berlin,,x,y",
        "L5,mql,2024-13-01,,x,y", "L6,mql,2024-02-30,,x,y", "L7,mql,2024-01-02T25:00:00,,x,y",
        "L8,mql,2024-01-02T10:00:00+25:00,,x,y", "L9,mql,2024-01-02T10:00:00+10:75,,x,y", "L10,mql,,,x,y",
        "L11,mql,1970-01-01,,x,y", "L12,mql,2099-01-01T00:00:00Z,,x,y", "L13,mql,2024-1-2,,x,y"), 0,
        quarantined=[("unparseable_timestamp", 3), ("unparseable_timestamp", 4), ("unparseable_timestamp", 5),
                     ("impossible_timestamp", 6), ("impossible_timestamp", 7), ("impossible_timestamp", 8),
                     ("impossible_timestamp", 9), ("impossible_timestamp", 10), ("missing_timestamp", 11),
                     ("timestamp_too_old", 12), ("timestamp_in_future", 13), ("unparseable_timestamp", 14)], loaded=1),
    Case("missing ids", raw("bad.csv", quoted(HEADER.split(","), GOOD.split(","), ["", "mql", "2024-01-02", "", "x", "y"],
                                               ["   ", "mql", "2024-01-02", "", "x", "y"], ["\u00a0\u202f", "mql", "2024-01-02", "", "x", "y"],
                                               ["\t", "mql", "2024-01-02", "", "x", "y"])), 0,
         quarantined=[("missing_lead_id", 3), ("missing_lead_id", 4), ("missing_lead_id", 5), ("missing_lead_id", 6)], loaded=1),
    Case("missing and unknown stages", raw("bad.csv", quoted(HEADER.split(","), GOOD.split(","), ["L2", "", "2024-01-02", "", "x", "y"],
                                                              ["L3", "\u00a0", "2024-01-02", "", "x", "y"],
                                                              ["L4", "Discovery Call", "2024-01-02", "", "x", "y"])), 0,
         says='"Discovery Call" (1 row)',
         quarantined=[("missing_stage", 3), ("missing_stage", 4), ("unknown_stage", 5)], loaded=1),
    Case("amounts that are not numbers", events(
        "L1,New Lead,2024-01-02 09:00:00,,inbound,Ann,1200.50", "L2,mql,2024-01-02,,x,y,\"1,200\"", "L3,mql,2024-01-02,,x,y,USD 900",
        "L4,mql,2024-01-02,,x,y,inf", "L5,mql,2024-01-02,,x,y,", "L6,mql,2024-01-02,,x,y, 75 ", "L7,mql,2024-01-02,,x,y,-3e2",
        header=HEADER + ",amount"), 0,
        says='quarantined: unparseable_amount 3',
        quarantined=[("unparseable_amount", 3), ("unparseable_amount", 4), ("unparseable_amount", 5)], loaded=4),
    Case("currencies that are not ISO 4217 codes", events(
        "L1,New Lead,2024-01-02 09:00:00,,inbound,Ann,EUR", "L2,mql,2024-01-02,,x,y,usd", "L3,mql,2024-01-02,,x,y,U.D",
        "L4,mql,2024-01-02,,x,y,EURUSD", "L5,mql,2024-01-02,,x,y,EUR|USD", "L6,mql,2024-01-02,,x,y, GBP ", "L7,mql,2024-01-02,,x,y,",
        "L8,mql,2024-01-02,,x,y,US", "L9,mql,2024-01-02,,x,y,(?:USD)", "L10,mql,2024-01-02,,x,y,ZWL",
        header=HEADER + ",currency"), 0,
        says="quarantined: unknown_currency 6",
        quarantined=[("unknown_currency", 3), ("unknown_currency", 4), ("unknown_currency", 5), ("unknown_currency", 6),
                     ("unknown_currency", 9), ("unknown_currency", 10)], loaded=4),
    Case("UTF-8 byte-order mark", raw("bad.csv", b"\xef\xbb\xbf" + (HEADER + "\n" + GOOD + "\n").encode()), 0, loaded=1),
    Case("a CSV line over 2,000,000 bytes", events(GOOD, "L2,mql,2024-01-02," + "x" * 2_100_000 + ",x,y", "L3,mql,2024-01-03,,x,y"), 0,
         quarantined=[("line_too_long", 3)], loaded=2),
    Case("a JSON line over 2,000,000 bytes", jsonl(obj("L1"), obj(note="x" * 2_100_000), obj("L3")), 0,
         quarantined=[("line_too_long", 2)], loaded=2),
    Case("mixed CRLF and LF", raw("bad.csv", (HEADER + "\r\n" + GOOD + "\r\nL2,mql,2024-01-02,,x,y\nL3,sql,2024-01-03,,x,y\r\n").encode()),
         0, says="mixes CRLF and LF line endings", loaded=3),
    Case("CRLF only", raw("bad.csv", (HEADER + "\r\n" + GOOD + "\r\nL2,mql,2024-01-02,,x,y\r\n").encode()), 0, loaded=2),
    Case("mixed line endings in a gzip", raw("bad.csv.gz", gzip.compress((HEADER + "\n" + GOOD + "\r\nL2,mql,2024-01-02,,x,y\n").encode())),
         0, loaded=2),
    Case("JSON Lines: not JSON, not an object, keys twice, a blank line", jsonl(
        obj("L1"), "{not json", "[1, 2]", '{"lead_id": 1, "Lead_ID": 2, "stage": "mql", "entered_at": "2024-01-02"}', "", obj("L6")), 0,
        quarantined=[("malformed_json", 2), ("not_a_json_object", 3), ("duplicate_keys", 4), ("malformed_json", 5)], loaded=2),
    Case("JSON Lines with keys in two cases on two lines", jsonl(obj("L1"), '{"Lead_ID": "L2", "STAGE": "sql", "Entered_At": "2024-01-04"}'),
         0, loaded=2),
    Case("Parquet with wrong types", parquet("bad.parquet", pa.table({
        "lead_id": [2, 3, 4], "stage": ["mql", "sql", "mql"],
        "entered_at": pa.array([1704153600, 1704240000, None], pa.int64())})), 2,
         "has no usable date: no row's entered_at is a date (3 empty or unreadable)"),
    Case("Parquet with dates, numbers and nulls", parquet("bad.parquet", pa.table({
        "lead_id": ["L2", None, "L4"], "stage": ["mql", "sql", None],
        "entered_at": pa.array([NOW.date()] * 3, pa.date32()), "amount": [1.5, None, 3.0]})), 0,
         quarantined=[("missing_lead_id", 2), ("missing_stage", 3)], loaded=1),
    Case("leads with bad dates", leads("lead_id,created_at,industry\nL8,2023-12-30,retail\nL9,someday,x\n,2023-12-30,y\n", with_events=True), 0,
         quarantined=[("unparseable_timestamp", 3), ("missing_lead_id", 4)], loaded=2),
    Case("the same file twice", twice, 0, says="given twice in this command; loaded once", loaded=1),
    Case("a header ending in a comma", events(GOOD + ",", header=HEADER + ","), 0, says="has a column with no name in its header", loaded=1),
    Case("a label with a no-break space, mapped", with_config('[labels]\n"Demo\u00a0Booked" = "sql"\n',
                                                              events("L2,demo\u00a0 booked,2024-01-02,,x,y", "L3,DEMO BOOKED,2024-01-03,,x,y")),
         0, loaded=2),
    Case("exact duplicates, within the file and of the load before", events(GOOD, GOOD, " " + GOOD + " ", "L0,mql,2024-01-02,,x,y"), 0,
         says="4 rows read = 1 loaded + 0 quarantined + 3 duplicates", loaded=1),
    Case("an empty line and a line of spaces", events(GOOD, "", "   ", "L2,mql,2024-01-02,,x,y"), 0,
         quarantined=[("wrong_column_count", 4)], loaded=2),
    Case("every row bad", events("L2,mql,never,,x,y", ",mql,2024-01-02,,x,y"), 0,
         quarantined=[("unparseable_timestamp", 2), ("missing_lead_id", 3)], loaded=0),
]

CASES = REFUSED + QUARANTINED


def test_the_catalogue_has_every_class_of_bad_input():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)
    assert len(REFUSED) >= 30 and len(QUARANTINED) >= 15


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> bytes:
    """The bytes of a warehouse holding one good load (with L0, so later rows may repeat it)."""
    d = tmp_path_factory.mktemp("published")
    db = d / "wh.duckdb"
    (d / "first.csv").write_text(HEADER + "\nL0,mql,2024-01-02,,x,y\n")
    load_files(db, [d / "first.csv"], load_config(None), now=NOW)
    return db.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, monkeypatch, published):
    monkeypatch.chdir(tmp_path)  # no funnel.toml of the repository; a stray output file would show here
    db = tmp_path / "wh.duckdb"
    db.write_bytes(published)
    args = case.make(tmp_path)
    if case.exit == 2 and case.with_good:
        (tmp_path / "new_good.csv").write_text(HEADER + "\nL7,mql,2024-01-05,,x,y\n")
        args = [str(tmp_path / "new_good.csv"), *args]
    if case.patch:
        case.patch(monkeypatch, tmp_path)
    result = CliRunner().invoke(main, ["load", *args, "--db", str(db), "--quiet"])

    assert result.exit_code == case.exit, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert not (tmp_path / "pwned.csv").exists()
    if case.exit == 2:
        _check_refusal(case, result.output, db, published)
    else:
        _check_quarantine(case, result.output, db)


def _check_refusal(case: Case, output: str, db: Path, published: bytes) -> None:
    errors = [line for line in output.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, output
    if not case.usage:
        assert output.strip() == errors[0], "a refusal prints its one line and nothing else"
    line = errors[0]
    assert line.endswith(".") and case.says in line, line
    assert ". " not in line.rstrip(".").replace("e.g. ", "").replace(". ...", ""), f"one sentence: {line}"
    if case.names:
        assert case.names in line, line
    assert db.read_bytes() == published, "a refusal leaves the warehouse byte-identical"
    assert not list(db.parent.glob(f".{db.name}.building-*"))


def _check_quarantine(case: Case, output: str, db: Path) -> None:
    assert case.says in output, output
    ledger = rows(db, "select file_id, rows_read, rows_loaded, rows_quarantined, rows_duplicate from load_ledger "
                      "where load_id = (select max(load_id) from load_ledger)")
    assert ledger and rows(db, "select max(load_id) from load_ledger") == [(2,)], "the command published a new load"
    for _, read, loaded, quarantined, duplicates in ledger:
        assert read == loaded + quarantined + duplicates
    assert sum(r[2] for r in ledger) == case.loaded
    files = [r[0] for r in ledger]
    found = rows(db, "select reason, line from quarantine where list_contains($f, file_id) order by file_id, line", {"f": files})
    assert found == case.quarantined
