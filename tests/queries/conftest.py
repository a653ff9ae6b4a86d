"""A generated demo warehouse the oracle tests of this folder compare against (built once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW


@pytest.fixture(scope="package")
def demo_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    path = generate(out=folder / "events.csv", n_leads=4000, seed=21).path
    db = folder / "wh.duckdb"
    load_files(db, [path], load_config(None), now=NOW)
    return db
