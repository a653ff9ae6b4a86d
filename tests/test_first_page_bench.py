"""The first-page benchmark draws the weekly review in headless Chromium on both servers (no timings asserted)."""

from __future__ import annotations

import os
import shutil

import pytest

from benchmarks.first_page import run_first_page
from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW


def test_first_page_is_drawn_cold_and_warm(tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        message = "headless Chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    events = generate(out=tmp_path / "events.csv", n_leads=1500, seed=5).path
    db = tmp_path / "wh.duckdb"
    load_files(db, [events], load_config(None), now=NOW)
    result = run_first_page(db, repeats=1)
    # each figure is a page that reached "every card, the trend and the movers drawn" (else it raises)
    assert len(result["cold_all_s"]) == 1 and len(result["warm_all_s"]) == 1
    assert all(0 < s < 300 for s in (*result["cold_all_s"], *result["warm_all_s"])) and result["warm_up_s"] >= 0
