"""A generated demo warehouse shared by the invariant tests of every metric family."""

from __future__ import annotations

import pytest

from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW


@pytest.fixture(scope="package")
def demo(tmp_path_factory) -> Gateway:
    folder = tmp_path_factory.mktemp("demo")
    generate(out=folder / "events.csv", n_leads=3000, seed=3)
    load_files(folder / "wh.duckdb", [folder / "events.csv"], load_config(None), now=NOW)
    return Gateway(folder / "wh.duckdb")
