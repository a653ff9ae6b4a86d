"""One demo warehouse and one app for the page tests (callbacks are pure functions of the URL)."""

from __future__ import annotations

import pytest

from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW


@pytest.fixture(scope="session")
def db(tmp_path_factory):
    """A dirty demo warehouse of 3,000 leads: every page has data, quarantine included."""
    folder = tmp_path_factory.mktemp("dashboard")
    path = generate(out=folder / "events.csv", n_leads=3000, seed=9, dirty=True).path
    db = folder / "wh.duckdb"
    load_files(db, [path], load_config(None), now=NOW)
    return db


@pytest.fixture(scope="session")
def app(db):
    from funnelboard.dashboard.app import create_app

    return create_app(db)
