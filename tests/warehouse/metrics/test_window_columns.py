"""Every metric a conversion window changes says which window it used (docs/metrics.md, The default
window): run each registered metric with --window 3 and --window 0 and, where the rows differ, expect
the window on every row."""

from __future__ import annotations

import pytest

from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics.registry import METRICS
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.warehouse.metrics.logs import run

# the handoff family's --window is its own N (sent back within N days), named handoff_days in its rows
WINDOW_COLUMN = {"handoff": "handoff_days", "handoff_leads": "handoff_days"}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Gateway:
    folder = tmp_path_factory.mktemp("small")
    generate(out=folder / "events.csv", n_leads=300, seed=3)
    load_files(folder / "wh.duckdb", [folder / "events.csv"], load_config(None), now=NOW)
    return Gateway(folder / "wh.duckdb")


def windowed(gw: Gateway, name: str) -> tuple[list[dict], list[dict]]:
    extra = {"lead_id": gw.query("select min(lead_id) from fct_leads").rows[0][0]} if name == "lead_history" else {}
    return run(gw, name, window_days=3, **extra), run(gw, name, window_days=0, **extra)


@pytest.mark.slow
@pytest.mark.parametrize("name", [m.name for m in METRICS])
def test_a_metric_the_window_changes_carries_the_window_used(small, name):
    three, none = windowed(small, name)
    if three == none:
        return
    column = WINDOW_COLUMN.get(name, "window_days")
    assert three and all(row.get(column, "missing") == 3 for row in three), f"{name} rows lack {column} = 3"
    assert all(row.get(column, "missing") == 0 for row in none), f"{name} rows lack {column} = 0"


def test_the_small_warehouse_is_one_a_window_changes(small):
    """Without conversions slower than 3 days the test above would check nothing."""
    three, none = windowed(small, "conversion")
    assert three[0]["converted"] < none[0]["converted"]
