"""`funnelboard sql`, `build --engine spark` and `serve --marts` at the command line."""

from __future__ import annotations

import re
import sys

import pytest
import sqlglot
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.errors import UserError
from funnelboard.warehouse.dialects import DIALECTS, VERIFIED
from funnelboard.warehouse.models import build_order, load_models, queries_root

HEADER = re.compile(r"^-- (\w+)$", re.MULTILINE)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def blocks(output: str) -> list[tuple[str, list[str], str]]:
    """(name, warnings, sql) per model printed by `funnelboard sql`."""
    parts = HEADER.split(output)
    out = []
    for name, body in zip(parts[1::2], parts[2::2]):
        lines = body.strip().splitlines()
        warnings = [line.removeprefix("-- warning: ") for line in lines if line.startswith("-- warning: ")]
        sql = "\n".join(line for line in lines if not line.startswith("-- warning: ")).strip()
        out.append((name, warnings, sql))
    return out


EXPECTED = [m.name for m in build_order(load_models())] + sorted(p.stem for p in (queries_root() / "metrics").glob("*.sql"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_sql_prints_every_model_then_every_metric_and_it_parses_back(dialect):
    result = invoke("sql", "--dialect", dialect)
    assert result.exit_code == 0, result.output
    printed = blocks(result.output)
    assert [name for name, _, _ in printed] == EXPECTED
    for name, warnings, sql in printed:
        if dialect in VERIFIED:
            assert sql and not warnings, (name, warnings)
        if sql:
            assert sql.endswith(";")
            parsed = sqlglot.parse(sql, read=dialect)
            assert len([s for s in parsed if s is not None]) == 1, name
        else:
            assert warnings, name  # a model that could not be compiled says why


def test_sql_for_one_model():
    result = invoke("sql", "--dialect", "spark", "--model", "fct_spells")
    assert result.exit_code == 0, result.output
    assert [name for name, _, _ in blocks(result.output)] == ["fct_spells"]
    assert "CONVERT_TIMEZONE(" in result.output and "UNIX_MICROS(" in result.output and "EPOCH_US" not in result.output


def test_sql_refuses_an_unknown_dialect_or_model():
    result = invoke("sql", "--dialect", "oracle")
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown SQL dialect 'oracle'; expected one of spark, trino, bigquery, snowflake, postgres, duckdb."
    result = invoke("sql", "--dialect", "spark", "--model", "fct_nothing")
    assert result.exit_code == 2 and "no model or metric query named 'fct_nothing'" in result.output


def test_build_on_spark_refuses_a_missing_events_file(tmp_path):
    result = invoke("build", "--engine", "spark", "--events", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.strip().endswith(f"error: events file '{tmp_path / 'nope.csv'}' does not exist.")
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_build_flags_belong_to_their_engine(tmp_path):
    result = invoke("build", "--engine", "spark", "--out", str(tmp_path))
    assert result.exit_code == 2 and "needs --events FILE" in result.output
    result = invoke("build", "--events", "x.csv", "--db", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 2 and "--events is for --engine spark" in result.output
    result = invoke("build", "--engine", "spark", "--events", "x.csv", "--out", str(tmp_path), "--db", "wh.duckdb")
    assert result.exit_code == 2 and "--db is for --engine duckdb" in result.output


def test_a_missing_pyspark_is_one_sentence(monkeypatch, tmp_path):
    from funnelboard.etl.generate import generate

    events = generate(out=tmp_path / "e.csv", n_events=50, seed=1).path
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now raises ImportError
    result = invoke("build", "--engine", "spark", "--events", str(events), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == "error: the Spark engine needs pyspark: install it with `pip install 'funnelboard[spark]'`."


def test_a_missing_java_is_one_sentence(monkeypatch):
    import types

    import funnelboard.warehouse.spark as ws

    monkeypatch.setitem(sys.modules, "pyspark", types.SimpleNamespace(__version__="4.x"))  # pyspark there or not
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(ws.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match=r"^the Spark engine needs Java 17 or later, and no `java` was found"):
        ws.require_spark()


def test_the_master_comes_from_the_flag_then_the_environment():
    from funnelboard.warehouse.spark import resolve_master

    assert resolve_master(None, {}) == "local[*]"
    assert resolve_master(None, {"FUNNELBOARD_SPARK_MASTER": "spark://head:7077"}) == "spark://head:7077"
    assert resolve_master("local[2]", {"FUNNELBOARD_SPARK_MASTER": "spark://head:7077"}) == "local[2]"


def test_serve_marts_serves_the_catalog(built, monkeypatch):
    import funnelboard.cli.serve as cli

    served = {}
    monkeypatch.setattr(cli, "serve_app", lambda db, host, port, debug, credentials, **_server: served.update(db=db))
    result = invoke("serve", "--marts", str(built.out))
    assert result.exit_code == 0, result.output
    assert served["db"] == built.catalog
    result = invoke("serve", "--marts", str(built.out), "--db", "wh.duckdb")
    assert result.exit_code == 2 and "give --db or --marts, not both" in result.output


def test_serve_refuses_a_directory_without_a_build(tmp_path):
    result = invoke("serve", "--marts", str(tmp_path))
    assert result.exit_code == 2
    assert "no Spark build in" in result.output


def test_docs_spark_lists_every_correction():
    from pathlib import Path

    from funnelboard.warehouse.dialects import CORRECTIONS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "spark.md").read_text()
    for correction in CORRECTIONS:
        assert f"| `{correction.name}` |" in doc, correction.name
