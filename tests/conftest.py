"""Shared fixtures: tiny warehouses in tmp_path and a helper to read them back."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from funnelboard.core.config import load_config

# Loads in tests use a fixed "now" so the future-timestamp rule is reproducible.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
HEADER = "lead_id,stage,entered_at,reason,channel,owner"


@pytest.fixture
def config():
    return load_config(None)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "wh.duckdb"


# Lanes (README, Development): tests that drive a real Chromium or a Spark session carry a marker by
# where they live, so `-m "not slow and not browser and not spark"` is the fast lane.
BROWSER_TESTS = ("tests/e2e/", "tests/test_first_page_bench.py")
SPARK_TESTS = ("tests/spark/",)


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parents[1]
    for item in items:
        where = item.path.resolve().relative_to(root).as_posix()
        if where.startswith(BROWSER_TESTS):
            item.add_marker(pytest.mark.browser)
        if where.startswith(SPARK_TESTS):
            item.add_marker(pytest.mark.spark)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rows(db: Path, sql: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def model_select(name: str, config=None) -> str:
    """A built model's DuckDB SQL for `config` (the default one): a temporary model is not stored in
    the warehouse, so a test reads its rows by running its SQL on the warehouse's tables."""
    from funnelboard.warehouse.build import compiled_models, expansion
    from funnelboard.warehouse.models import models_fingerprint

    return {m.name: sql for m, sql in compiled_models(models_fingerprint(), expansion(config or load_config(None)))}[name]
