"""`funnelboard demo` behaves like a demo: a rerun replaces its own warehouse, its planted mess is
announced as such, it leaves a warehouse it did not make alone; a missing --db names the
warehouses in sight."""

from __future__ import annotations

import json
import re

import duckdb
import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.etl.generate import generate


def demo(folder, *args: str):
    return CliRunner().invoke(main, ["demo", "--no-serve", "--dir", str(folder), *args])


def leads_in(db) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select count(distinct lead_id) from raw_events").fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_missing_db_names_the_warehouses_in_sight(tmp_path, monkeypatch):
    demo(tmp_path / "funnelboard-demo", "--leads", "150")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["query", "key_rate"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: no warehouse at 'funnelboard.duckdb'; warehouses here: 'funnelboard-demo/funnelboard.duckdb' (pass one with --db)."
    )


@pytest.mark.slow
def test_segment_splits_the_metrics_that_split_and_is_refused_elsewhere(tmp_path):
    folder = tmp_path / "demo"
    demo(folder, "--leads", "400")
    db = str(folder / "funnelboard.duckdb")
    split = CliRunner().invoke(main, ["query", "sql_rate", "--segment", "channel", "--db", db, "--format", "json"])
    assert split.exit_code == 0, split.output
    rows = json.loads(split.output)
    assert len(rows) > 1 and all(r["rate_name"] == "SQL rate" and r["channel"] for r in rows)
    whole = json.loads(CliRunner().invoke(main, ["query", "sql_rate", "--db", db, "--format", "json"]).output)[0]
    assert sum(r["cohort"] for r in rows) == whole["cohort"]
    refused = CliRunner().invoke(main, ["query", "time_to_sql", "--segment", "channel", "--db", db])
    assert refused.exit_code == 2 and refused.output.startswith("error: time_to_sql does not split by segment: --segment works with key_rate")
    assert refused.output.count("\n") == 1


@pytest.mark.slow
def test_load_and_status_say_what_a_window_leaves_out(tmp_path):
    events = tmp_path / "events.csv"
    generate(out=events, n_leads=400, seed=3)
    config = tmp_path / "funnel.toml"
    config.write_text("[funnel]\nconversion_window_days = 7\n", "utf-8")
    db = str(tmp_path / "wh.duckdb")
    loaded = CliRunner().invoke(main, ["load", str(events), "--config", str(config), "--db", db, "--quiet"])
    assert loaded.exit_code == 0, loaded.output
    left = re.search(r"note: the 7-day conversion window leaves out ([\d,]+) of ([\d,]+) MQL → SQL conversions", loaded.output)
    assert left, loaded.output
    # the key rate over all the data: every conversion with no window, those within 7 days with it
    def converted(window: str) -> int:
        out = CliRunner().invoke(main, ["query", "key_rate", "--db", db, "--window", window, "--format", "json"]).output
        return json.loads(out)[0]["converted"]

    every, within = converted("0"), converted("7")
    assert (int(left.group(1).replace(",", "")), int(left.group(2).replace(",", ""))) == (every - within, every)
    assert "conversion window leaves out" in CliRunner().invoke(main, ["status", "--db", db]).output
    no_window = CliRunner().invoke(main, ["load", str(events), "--db", str(tmp_path / "w0.duckdb"), "--quiet"])
    assert "conversion window" not in no_window.output
