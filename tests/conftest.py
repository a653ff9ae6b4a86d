"""Shared fixtures: tiny warehouses in tmp_path and a helper to read them back."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from funnelboard.config import load_config

# Loads in tests use a fixed "now" so the future-timestamp rule is reproducible.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
HEADER = "lead_id,stage,entered_at,reason,channel,owner"


@pytest.fixture
def config():
    return load_config(None)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "wh.duckdb"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rows(db: Path, sql: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()
