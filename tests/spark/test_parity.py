"""The Spark build equals the DuckDB load and build of the same files, row for row.

Counts and keys exactly, floats within 1e-9, timestamps equal. The data is checked first to
hold what makes spells subtle: skipped stages, re-entries, exits and leads still open.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import duckdb
import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.build import expansion
from funnelboard.warehouse.models import build_order, load_models
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import model_select, rows

KEYS = {
    "int_lead_attributes": ("lead_id",),
    "int_spells": ("lead_id", "spell_no"),
    "fct_leads": ("lead_id",),
    "fct_spells": ("lead_id", "spell_no"),
    "fct_open_spells": ("lead_id", "spell_no"),
    "fct_pipeline_moves": ("lead_id", "move_no"),
}


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9
    if isinstance(a, datetime) or isinstance(b, datetime) or isinstance(a, date):
        return type(a) is type(b) and a == b
    return a == b


def table(path, name: str, order: tuple[str, ...], relation: str | None = None) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute(f"select * from {relation or name} order by {', '.join(order)}")
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def assert_same_table(duck, spark_catalog, name: str, keys: tuple[str, ...]) -> int:
    # DuckDB does not store a temporary model (the intermediates): its rows are its SQL run on the warehouse
    temporary = load_models()[name].materialized == "temporary"
    columns, expected = table(duck, name, keys, f"({model_select(name)})" if temporary else None)
    spark_columns, actual = table(spark_catalog, name, keys)
    assert spark_columns == columns, name
    assert len(actual) == len(expected), name
    for want, got in zip(expected, actual):
        for column, a, b in zip(columns, want, got):
            assert same(a, b), f"{name}.{column} of {dict(zip(columns, want))[keys[0]]}: DuckDB {a!r}, Spark {b!r}"
    return len(expected)


def test_the_data_has_skips_reentries_exits_and_open_leads(built):
    (skips,) = rows(built.db, "select count(*) from fct_leads where reached_mql is not null and entered_mql is null")[0]
    (reentries,) = rows(built.db, "select count(*) from (select lead_id, stage from fct_spells group by all having count(*) > 1)")[0]
    (exits,) = rows(built.db, "select count(*) from fct_spells where next_kind = 'exited'")[0]
    (returns,) = rows(built.db, "select count(*) from fct_spells where next_kind = 'returned'")[0]
    (open_leads,) = rows(built.db, "select count(*) from fct_spells where next_kind = 'open'")[0]
    (leads_only,) = rows(built.db, "select count(*) from fct_leads where current_stage is null")[0]
    assert skips > 0 and reentries > 0 and exits > 0 and returns > 0 and open_leads > 0 and leads_only == 5


@pytest.mark.parametrize("name", list(KEYS))
def test_models_equal_row_for_row(built, name):
    assert assert_same_table(built.db, built.catalog, name, KEYS[name]) > 0


def test_every_model_table_is_compared():
    tables = {m.name for m in load_models().values() if m.materialized in ("table", "temporary")}
    assert tables == set(KEYS)


def test_seeds_and_raw_tables_equal(built):
    for name, keys in {
        "cfg_stages": ("stage",),
        "cfg_reasons": ("reason_key",),
        "cfg_settings": ("timezone",),
        "raw_events": ("file_id", "source_line"),
        "raw_leads": ("file_id", "source_line"),
    }.items():
        columns, _ = table(built.db, name, keys)
        spark_columns, _ = table(built.catalog, name, keys)
        shared = [c for c in columns if c in spark_columns]
        if name.startswith("raw_"):
            assert set(expansion(load_config(None)).attributes) <= set(shared), name
        order = ", ".join(keys)
        cols = ", ".join(f'"{c}"' for c in shared)
        assert rows(built.db, f"select {cols} from {name} order by {order}") == rows(built.catalog, f"select {cols} from {name} order by {order}"), name


def test_the_ledger_counts_equal(built):
    sql = ("select role, rows_read, rows_loaded, rows_quarantined, rows_duplicate, first_entered_at, last_entered_at, "
           "unknown_labels from load_ledger order by file_id")
    assert rows(built.db, sql) == rows(built.catalog, sql)
    formats = [f for (f,) in rows(built.catalog, "select format from load_ledger order by file_id")]
    assert formats == ["csv (spark)", "csv (spark)"]


def test_the_manifest_says_what_was_built(built):
    manifest = json.loads((built.out / "manifest.json").read_text())
    assert manifest["engine"] == "spark" and manifest["master"] == "local[2]"
    assert manifest["spark_version"].startswith("4.")
    assert manifest["models"] == [m.name for m in build_order(load_models())]
    assert manifest["tables"]["fct_spells"]["rows"] == rows(built.db, "select count(*) from fct_spells")[0][0]
    assert manifest["tables"]["fct_leads"]["rows"] == rows(built.db, "select count(*) from fct_leads")[0][0]
    assert (built.out / manifest["build"] / "fct_leads").is_dir()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_dirty_input_is_checked_as_the_duckdb_load_checks_it(spark, tmp_path, fmt):
    """Through the CLI: every row loaded, quarantined (same line, same reason) or collapsed as by DuckDB."""
    events = generate(out=tmp_path / f"dirty.{fmt}", fmt=fmt, n_events=1000, seed=5, dirty=True).path
    db = tmp_path / "wh.duckdb"
    duck = load_files(db, [events], load_config(None)).files[0]  # "now" as the CLI's: the real one
    out = tmp_path / "marts"
    result = CliRunner().invoke(main, ["build", "--engine", "spark", "--events", str(events), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (f"{duck.rows_read:,} rows read = {duck.rows_loaded:,} loaded + {duck.rows_quarantined:,} quarantined + "
            f"{duck.rows_duplicate:,} duplicates") in result.output
    assert duck.rows_quarantined and duck.rows_duplicate and {"unknown_stage", "impossible_timestamp"} <= set(duck.reasons)
    assert fmt == "parquet" or "wrong_column_count" in duck.reasons  # broken lines exist only in text files
    from funnelboard.warehouse.marts_dir import catalog

    spark_db = catalog(out)
    quarantined = "select line, reason, lead_id from quarantine order by line"
    assert rows(spark_db, quarantined) == rows(db, quarantined)
    details = "select line, detail, raw from quarantine where reason <> 'wrong_column_count' order by line"
    assert rows(spark_db, details) == rows(db, details)
    events_sql = "select source_line, lead_id, stage, stage_label, entered_at, reason, channel from raw_events order by source_line"
    assert rows(spark_db, events_sql) == rows(db, events_sql)
