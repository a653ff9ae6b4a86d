"""The latency benchmark fires every callback of every page through HTTP and each answers (no timings asserted)."""

from __future__ import annotations

import pytest

from benchmarks.latency import markdown, run_latency
from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW

pytestmark = pytest.mark.slow  # a served app, every page and callback over HTTP

PAGES = {"/", "/funnel", "/segments", "/time-in-stage", "/disqualifiers", "/speed-to-lead", "/stalled", "/leads", "/pipeline", "/data-quality",
         "/lead/<id>"}
# What each page must have fired besides the shell's callbacks (badge, filter bar, router, nav links).
PAGE_CALLBACKS = {
    "/": ["weekly-movers.children", "weekly-cards.children", "weekly-stalled.children", "weekly-response.children",
          "weekly-criteria.children"],
    "/funnel": ["funnel-graph.figure", "accounting-graph.figure", "cohort-heatmap-graph.figure"],
    "/segments": ["segments-conversion.figure", "segments-mix.figure"],
    "/time-in-stage": ["tis-quantiles.figure", "tis-survival.figure", "tis-distribution.figure"],
    "/disqualifiers": ["dq-pareto.figure", "dq-trend.figure"],
    "/speed-to-lead": ["stl-summary.children"],
    "/stalled": ["stalled-summary.children", "GET /export/stalled.csv (download)", "stalled/stalled[fb-grid].getRowsResponse (first block)"],
    "/leads": ["leads-header.children", "GET /export/leads.csv (download)", "leads/leads[fb-grid].getRowsResponse (first block)"],
    "/pipeline": ["pl-change.figure", "pl-snapshot.figure", "pl-deals.children"],
    "/data-quality": ["quality-message.children"],
    "/lead/<id>": ["lead-header.children"],
}
SHELL = ["dq-badge.children", "filter-bar.children", "_pages_content.children", "*[fb-nav].href"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    folder = tmp_path_factory.mktemp("latency")
    events = generate(out=folder / "events.csv", n_leads=1500, seed=5, dirty=True).path
    db = folder / "wh.duckdb"
    load_files(db, [events], load_config(None), now=NOW)
    return run_latency(db, repeats=1, warmup=False)


def test_every_page_and_callback_fired_and_answered(result):
    assert result.errors == []
    assert set(result.fired) == PAGES
    for page, expected in PAGE_CALLBACKS.items():
        fired = result.fired[page]
        for name in SHELL + expected:
            assert any(cb.startswith(name) for cb in fired), (page, name, fired)
    for row in result:
        assert row["errors"] == 0 and row["n"] >= 1, row
        if "url.href" not in row["callback"]:  # URL writers answer 204 on load, as in the browser
            assert row["statuses"] == [200], row


def test_filter_mix_and_report(result):
    funnel = next(r for r in result if r["page"] == "/funnel" and r["callback"].startswith("funnel-graph.figure"))
    assert funnel["filters"] == "none, channel, owner, 2 weeks"
    segments = next(r for r in result if r["page"] == "/segments" and r["callback"].startswith("segments-conversion"))
    assert "segment x segment2" in segments["filters"]
    assert result.server_peak_mb and result.server_peak_mb > 10
    table = markdown(result, result.server_peak_mb)
    assert "| /funnel | `funnel-graph.figure" in table and "Server peak RSS" in table


def test_served_mode_times_first_visits_after_the_warm_up(result, tmp_path_factory):
    db = next(iter(tmp_path_factory.getbasetemp().glob("latency*/wh.duckdb")))
    served = run_latency(db, served=True, only={"/funnel", "/stalled"})
    assert served.errors == [] and served.warm_seconds is not None and served.warm_seconds >= 0
    funnel = next(r for r in served if r["callback"].startswith("funnel-graph.figure"))
    assert funnel["n"] == 4  # each filter once: nothing repeated, so nothing timed comes from its own earlier answer
