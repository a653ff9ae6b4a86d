"""What every metric family promises on a demo log: the columns its metadata names, filters that select
the same leads everywhere, and the identities between families."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from funnelboard.warehouse.build import expansion, expected_columns
from funnelboard.warehouse.metrics import REGISTRY, Context, MetricRequest
from funnelboard.warehouse.metrics.base import _metric_model, start_week
from funnelboard.warehouse.metrics.stalled import threshold_params
from tests.warehouse.metrics.logs import run


def test_demo_other_invariants(demo):
    conversion = run(demo, "conversion", window_days=0)[0]
    t = run(demo, "time_to_convert")[0]
    assert (t["from_stage"], t["to_stage"]) == (conversion["from_stage"], conversion["to_stage"])
    assert t["entered"] == conversion["cohort"] and t["reached"] == conversion["converted"]
    assert 0 <= t["reached_within"] <= t["mature"] <= t["entered"]
    assert run(demo, "time_to_sql") == run(demo, "time_to_convert")  # the first name still works

    exits = run(demo, "disqualifiers")
    assert sum(r["share"] for r in exits) == pytest.approx(1.0)
    assert exits[-1]["cumulative_share"] == pytest.approx(1.0)
    assert [r["exits"] for r in exits] == sorted((r["exits"] for r in exits), reverse=True)
    for by in ("stage_left", "week", "channel"):
        grouped = run(demo, "disqualifiers", by=by)
        assert sum(r["exits"] for r in grouped) == sum(r["exits"] for r in exits)

    per_stage = {r["stage"]: r["n_completed"] + r["n_open"] for r in run(demo, "time_in_stage")}
    by_lead = run(demo, "time_in_stage_by_lead")
    for stage, n in per_stage.items():
        assert sum(r["spells"] for r in by_lead if r["stage"] == stage) == n
    assert all(r["cumulative_days"] >= r["latest_days"] >= 0 for r in by_lead)

    bands = run(demo, "score_bands")
    assert bands and all(0 <= r["from_rate"] <= 1 for r in bands)
    scored = demo.query("select count(*) from fct_leads where score_value between 0 and 100").rows[0][0]
    assert sum(r["leads"] for r in bands) == scored
    assert not any(math.isnan(r["from_rate"]) for r in bands)


MORE_METRICS = ["time_to_convert", "time_in_stage_by_lead", "segment_conversion", "mix_vs_rate", "disqualifiers", "stalled",
                "stalled_summary", "weekly_kpis", "score_bands"]


# stalled_summary reuses stalled.sql; stall_thresholds is a query of its own behind stalled
@pytest.mark.parametrize("name", [m for m in MORE_METRICS if m != "stalled_summary"] + ["stall_thresholds", "win_rate", "conversion_horizon"])
def test_each_query_returns_the_columns_its_metadata_promises(demo, name):
    ctx = Context(demo)
    as_of = ctx.latest_event()
    params = {
        "start": ctx.earliest_event(), "end": as_of + timedelta(microseconds=1), "as_of": as_of, "window_days": 90,
        "within_days": 30, "business_days": False, "as_of_bd": 0.0, "segmented": True, "weeks": 13,
        "before_start": as_of - timedelta(days=56), "before_end": as_of - timedelta(days=28),
        "after_start": as_of - timedelta(days=28), "after_end": as_of, "before_as_of": as_of - timedelta(days=7),
        "first_week": (as_of - timedelta(weeks=12)).date(), "last_week": as_of.date(), "start_week": start_week(ctx.earliest_event()),
        "maturity_days": 20.0, "mature_only": True, "same_point": 0, "lost": ["lost"], "open_after": as_of - timedelta(days=7),
        "from_stage": "mql", "to_stage": "sql",
    }
    identifiers = {"__from__": "reached_mql", "__to__": "reached_sql", "__segment__": "channel", "__segment2__": "region",
                   "__by__": "stage_left", "__first__": "reached_lead", "__mql__": "reached_mql", "__sql__": "reached_sql",
                   "__from_week__": "week_mql", "__to_week__": "week_sql", "__won__": "reached_won", "__won_week__": "week_won"}
    if name in ("stalled", "changes"):  # the thresholds come in as lists, from stall_thresholds (checked below)
        params.update(threshold_params(ctx, ctx.resolve(MetricRequest(segment="channel"))))
    rows = ctx.run_sql(name, MetricRequest(), params, identifiers)
    assert rows, "a query that returns nothing checks nothing"
    assert list(rows[0]) == expected_columns(_metric_model(name), expansion(ctx.config))


@pytest.mark.slow
@pytest.mark.parametrize("name", MORE_METRICS)
def test_filters_select_the_same_leads_in_every_metric(demo, name):
    req = {"filters": (("channel", "referral"),)}
    if REGISTRY[name].splits:
        req["segment"] = "channel"
    if name == "disqualifiers":
        req["by"] = "channel"
    rows = run(demo, name, **req)
    assert rows
    values = {r.get("segment", r.get("channel")) for r in rows} - {"(total)", None}
    if name in ("segment_conversion", "mix_vs_rate", "disqualifiers", "stalled"):
        assert values == {"referral"}
    if name == "segment_conversion":
        assert rows[0]["n"] == run(demo, "conversion", filters=req["filters"])[0]["cohort"]
