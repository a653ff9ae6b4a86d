"""`funnelboard demo` behaves like a demo: a rerun replaces its own warehouse, its planted mess is
announced as such, it leaves a warehouse it did not make alone; a missing --db names the
warehouses in sight."""

from __future__ import annotations

import duckdb
from click.testing import CliRunner

from funnelboard.cli import main


def demo(folder, *args: str):
    return CliRunner().invoke(main, ["demo", "--no-serve", "--dir", str(folder), *args])


def leads_in(db) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select count(distinct lead_id) from raw_events").fetchall()[0][0]
    finally:
        con.close()


def test_a_rerun_replaces_the_demo_warehouse(tmp_path):
    folder = tmp_path / "demo"
    first = demo(folder, "--leads", "400")
    assert first.exit_code == 0, first.output
    assert "mess planted on purpose" in first.output and "nothing is wrong with your setup" in first.output
    assert leads_in(folder / "funnelboard.duckdb") == 400
    again = demo(folder, "--leads", "150", "--seed", "2")
    assert again.exit_code == 0, again.output
    # the second demo, not the two added together
    assert leads_in(folder / "funnelboard.duckdb") == 150 and "published load 1 " in again.output


def test_a_warehouse_the_demo_did_not_make_is_left_alone(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    theirs = folder / "funnelboard.duckdb"
    con = duckdb.connect(str(theirs))
    con.execute("create table precious as select 42 as answer")
    con.close()
    before = theirs.read_bytes()
    result = demo(folder, "--leads", "150")
    assert result.exit_code == 2
    assert result.output.strip() == f"error: '{theirs}' is a warehouse the demo did not make: give the demo another --dir, or move that file."
    assert theirs.read_bytes() == before


def test_a_missing_db_names_the_warehouses_in_sight(tmp_path, monkeypatch):
    demo(tmp_path / "funnelboard-demo", "--leads", "150")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["query", "key_rate"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: no warehouse at 'funnelboard.duckdb'; warehouses here: 'funnelboard-demo/funnelboard.duckdb' (pass one with --db)."
    )
