"""Warming: the default views are computed before anyone asks, so opening a page queries nothing."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_warming_computes_every_default_view(app):
    import funnelboard.dashboard.pages.funnel as funnel
    import funnelboard.dashboard.pages.stalled as stalled
    import funnelboard.dashboard.pages.time_in_stage as time_in_stage
    import funnelboard.dashboard.pages.weekly as weekly
    from funnelboard.dashboard.app import default_views, warm
    from funnelboard.dashboard.tables import window_rows

    names = {getattr(v.func, "__name__", "") for v in default_views()}
    assert {"update", "update_movers", "update_stalled", "update_accounting", "update_trend", "update_mix", "update_heatmap",
            "update_survival", "update_distribution", "window_rows"} <= names
    g = app.server.config["FUNNELBOARD_GATEWAY"]
    assert warm(app) == len(default_views())
    misses, hits = g.misses, g.hits
    with app.server.test_request_context():
        cards = weekly.update("")
        stalled_line = weekly.update_stalled("")
        figures = funnel.update(""), funnel.update_accounting(""), funnel.update_heatmap(""), time_in_stage.update_survival("")
        summary, _body = stalled.update("")
        block, _count = window_rows("stalled", "", {"startRow": 0, "endRow": 100})
    assert g.misses == misses and g.hits > hits  # every query answered from the cache
    assert cards[0] and all(f for f in figures) and "leads stalled" in summary and block["rowData"]
    assert "leads stalled" in stalled_line[0].children


@pytest.mark.slow
def test_a_filtered_view_is_not_warmed_and_is_computed(app):
    import funnelboard.dashboard.pages.funnel as funnel
    from funnelboard.dashboard.app import warm

    g = app.server.config["FUNNELBOARD_GATEWAY"]
    warm(app)
    misses = g.misses
    with app.server.test_request_context():
        funnel.update("?channel=events&region=EMEA")
    assert g.misses > misses


@pytest.mark.slow
def test_healthz_says_whether_the_published_file_is_warm(app, tmp_path):
    from funnelboard.dashboard.app import create_app, warm_published

    client = app.server.test_client()
    g = app.server.config["FUNNELBOARD_GATEWAY"]
    app.server.config["FUNNELBOARD_WARM"] = {}
    before = client.get("/healthz")
    assert before.status_code == 200 and before.json["published"] and before.json["warm"] is False
    warm_published(app, g._stamp())
    after = client.get("/healthz").json
    assert after["warm"] is True and after["warmed_views"] > 10 and after["warm_seconds"] >= 0
    missing = create_app(tmp_path / "none.duckdb").server.test_client().get("/healthz")
    assert missing.status_code == 503 and missing.json["published"] is False and missing.json["warm"] is False
