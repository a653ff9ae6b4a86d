"""stalled and stalled_summary on hand-made logs, and their invariants on a demo log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import Context, MetricRequest, run_metric
from tests.warehouse.metrics.logs import D, run, warehouse

# --- stalled ------------------------------------------------------------------------------------

STALLED_CONFIG = "[funnel]\nmin_sample = 2\n\n[sla_days]\nsql = 5\n"
STALLED_EVENTS = [
    # Completed lead spells: x 1, 2, 3 days (and W's 23 below); y 10 days.
    "X1,lead,2024-01-01,,x", "X1,disqualified,2024-01-02",
    "X2,lead,2024-01-01,,x", "X2,disqualified,2024-01-03",
    "X3,lead,2024-01-01,,x", "X3,disqualified,2024-01-04",
    "Y1,lead,2024-01-01,,y", "Y1,disqualified,2024-01-11",
    # W: lead 02-05 -> mql 02-28 (23 days); at 02-23 it was 18 days old: stalled then, recovered since.
    "W,lead,2024-02-05,,x", "W,mql,2024-02-28",
    # Open at as_of 03-01 00:00:
    "P,lead,2024-02-12T12:00,,x,,Ann",  # 17.5 days
    "Q,lead,2024-02-10,,y,,Bob",  # 20 days
    "R,lead,2024-02-01,,x,EU,Ann",  # 29 days
    "S,sql,2024-02-20,,y,,Cy,,1000",  # 10 days, SLA 5
    "T,mql,2024-02-25,,x",  # no mql spell completed, no SLA: no threshold
    "V,nurture,2024-01-01,,x",  # an outcome never stalls
    "U,lead,2024-01-01,,x", "U,won,2024-01-01T00:00:01",  # won is the last stage; U's 1-second lead spell counts
]
# Completed lead durations: x 1, 2, 3, 23 and U's 1/86400; y 10.
# Stage p90 over [0.0000116, 1, 2, 3, 10, 23]: position 4.5 -> 10 + 0.5 * 13 = 16.5.
# x p90 over [0.0000116, 1, 2, 3, 23]: position 3.6 -> 3 + 0.6 * 20 = 15.0.  y: 1 spell < min_sample 2.
STAGE_P90 = 16.5
X_P90 = 15.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("segment", "expected", "summary"),
    [
        (
            None,
            # P (17.5) is over 16.5 too; Q and P were younger than the threshold a week ago, R was not.
            # Newly stalled first, each part by age.
            [
                ("Q", "lead", 20.0, STAGE_P90, "p90 stage", True, "Bob"),
                ("P", "lead", 17.5, STAGE_P90, "p90 stage", True, "Ann"),
                ("S", "sql", 10.0, 5.0, "sla", True, "Cy"),
                ("R", "lead", 29.0, STAGE_P90, "p90 stage", False, "Ann"),
            ],
            # a week ago: R (22 > 16.5) and W (18 > 16.5) stalled; W closed on 02-28.
            {"stalled": 4, "newly_stalled": 3, "recovered": 1},
        ),
        (
            "channel",
            [
                ("Q", "lead", 20.0, STAGE_P90, "p90 stage", True, "Bob"),  # y has too few
                ("P", "lead", 17.5, X_P90, "p90 segment", True, "Ann"),
                ("S", "sql", 10.0, 5.0, "sla", True, "Cy"),
                ("R", "lead", 29.0, X_P90, "p90 segment", False, "Ann"),
            ],
            {"stalled": 4, "newly_stalled": 3, "recovered": 1},
        ),
    ],
)
def test_stalled(tmp_path, segment, expected, summary):
    gw = warehouse(tmp_path, STALLED_EVENTS, STALLED_CONFIG)
    rows = run(gw, "stalled", as_of=D(2024, 3, 1), segment=segment)
    got = [(r["lead_id"], r["stage"], r["age_days"], r["threshold_days"], r["threshold_source"], r["newly_stalled"], r["owner"])
           for r in rows]
    assert got == [(e[0], e[1], pytest.approx(e[2]), pytest.approx(e[3], abs=1e-4), *e[4:]) for e in expected]
    assert run(gw, "stalled_summary", as_of=D(2024, 3, 1), segment=segment) == [summary]


@pytest.mark.slow
def test_stalled_at_a_lower_p90_shows_the_segment_effect(tmp_path):
    # Without U's tiny spell the x p90 is 3 + 0.7 * 20 = 17.0 and the stage p90 10 + 0.6 * 13 = 17.8:
    # P (17.5) is stalled only against its segment's threshold.
    gw = warehouse(tmp_path, [e for e in STALLED_EVENTS if not e.startswith("U,")], STALLED_CONFIG)
    plain = {r["lead_id"]: r for r in run(gw, "stalled", as_of=D(2024, 3, 1))}
    by_channel = {r["lead_id"]: r for r in run(gw, "stalled", as_of=D(2024, 3, 1), segment="channel")}
    assert sorted(plain) == ["Q", "R", "S"] and plain["R"]["threshold_days"] == pytest.approx(17.8)
    assert sorted(by_channel) == ["P", "Q", "R", "S"] and by_channel["P"]["threshold_days"] == pytest.approx(17.0)
    assert run(gw, "stalled_summary", as_of=D(2024, 3, 1)) == [{"stalled": 3, "newly_stalled": 2, "recovered": 1}]


def test_stalled_filters_select_leads_not_thresholds(tmp_path):
    gw = warehouse(tmp_path, STALLED_EVENTS, STALLED_CONFIG)
    # Only x leads: R and P, with the thresholds of the whole warehouse (16.5 per stage).
    rows = run(gw, "stalled", as_of=D(2024, 3, 1), filters=(("channel", "x"),))
    assert [(r["lead_id"], r["threshold_days"]) for r in rows] == [("P", pytest.approx(STAGE_P90)), ("R", pytest.approx(STAGE_P90))]  # P newly stalled: first
    # x: R, P stalled (P new); W recovered.
    assert run(gw, "stalled_summary", as_of=D(2024, 3, 1), filters=(("channel", "x"),)) == [
        {"stalled": 2, "newly_stalled": 1, "recovered": 1}
    ]
    assert run(gw, "stalled_summary", as_of=D(2024, 3, 1), filters=(("owner", "Bob"),)) == [
        {"stalled": 1, "newly_stalled": 1, "recovered": 0}
    ]


def test_stalled_lead_columns(tmp_path):
    gw = warehouse(tmp_path, STALLED_EVENTS, STALLED_CONFIG)
    s = [r for r in run(gw, "stalled", as_of=D(2024, 3, 1)) if r["lead_id"] == "S"][0]
    segments = [c for c in gw.config().segments if c != "owner"]
    assert list(s) == ["lead_id", "stage", "entered_at", "age_days", "threshold_days", "threshold_source", "sla_hours", "clock", "breached_at",
                       "newly_stalled", "owner", *segments, "amount", "amount_currency", "last_activity_at", "days_since_activity",
                       "close_pushes", "days_slipped"]
    assert (s["entered_at"], s["owner"], s["channel"], s["industry"], s["amount"]) == (D(2024, 2, 20), "Cy", "y", None, 1000.0)


@pytest.mark.slow
def test_stalled_without_an_owner_attribute(tmp_path):
    config = STALLED_CONFIG + '\n[segments]\nchannel = "Channel"\n'
    gw = warehouse(tmp_path, STALLED_EVENTS, config)
    rows = run(gw, "stalled", as_of=D(2024, 3, 1))
    assert list(rows[0]) == ["lead_id", "stage", "entered_at", "age_days", "threshold_days", "threshold_source", "sla_hours", "clock", "breached_at",
                             "newly_stalled", "owner", "channel", "amount", "amount_currency", "last_activity_at", "days_since_activity",
                             "close_pushes", "days_slipped"]
    assert all(r["owner"] is None for r in rows)


@pytest.mark.parametrize("segment", [None, "channel", "owner"])
def test_demo_stalled_are_older_than_their_threshold(demo, segment):
    rows = run(demo, "stalled", segment=segment)
    assert rows
    calendar = [r for r in rows if r["clock"] == "calendar"]
    assert calendar and all(r["age_days"] > r["threshold_days"] for r in calendar)
    # the demo's [sla] is in business hours: over since a deadline before as_of, at least the SLA's hours after entry
    business = [r for r in rows if r["clock"] == "business"]
    as_of = run(demo, "review_week")[0]["as_of"]
    assert business and all(r["entered_at"] + timedelta(hours=r["sla_hours"]) <= r["breached_at"] < as_of for r in business)
    assert len({r["lead_id"] for r in rows}) == len(rows)
    summary = run(demo, "stalled_summary", segment=segment)[0]
    assert summary["stalled"] == len(rows)
    assert summary["newly_stalled"] == sum(r["newly_stalled"] for r in rows)
    sources = {r["threshold_source"] for r in rows}
    assert sources <= ({"sla", "sla segment", "p90 stage", "p90 segment"} if segment else {"sla", "sla segment", "p90 stage"})
    assert {r["stage"] for r in rows if r["threshold_source"].startswith("sla")} == {"mql", "sql"}
    # A filter selects leads from the list; it does not move the thresholds.
    referral = run(demo, "stalled", segment=segment, filters=(("channel", "referral"),))
    assert referral and referral == [r for r in rows if r["channel"] == "referral"]


def test_an_as_of_before_the_first_event_is_an_empty_answer_not_an_error(tmp_path):
    gw = warehouse(tmp_path, ["A,lead,2024-01-10"])
    assert run(gw, "stalled", as_of=D(2024, 1, 5)) == []


def test_stall_thresholds_are_computed_once_per_file_for_every_filter(demo, monkeypatch):
    from funnelboard.warehouse.metrics import base as metrics

    runs = []
    real = metrics.Context.run_sql

    def counting(self, name, *args, **kwargs):
        runs.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(metrics.Context, "run_sql", counting)
    gateway = Gateway(demo.db, cache_rows=0)
    for filters in ((), (("channel", "referral"),), (("owner", "Maya Patel"),)):
        run_metric(gateway, "stalled_summary", MetricRequest(filters=filters))
    assert runs.count("stall_thresholds") == 1
    run_metric(gateway, "stalled_summary", MetricRequest(segment="region"))
    assert runs.count("stall_thresholds") == 2  # per segment column: its values' own p90s


@pytest.mark.slow
@pytest.mark.parametrize("req", [
    MetricRequest(),
    MetricRequest(segment="channel", filters=(("region", "EMEA"),)),
    MetricRequest(segment="owner"),
])
def test_the_stalled_list_from_open_spells_equals_the_one_from_all_spells(demo, req, monkeypatch):
    """At the latest event (and later) fct_open_spells holds every candidate; before it, fct_spells serves."""
    import funnelboard.warehouse.metrics.stalled as more

    gateway = Gateway(demo.db, cache_rows=0)
    used = []
    real = more.at_latest_event
    monkeypatch.setattr(more, "at_latest_event", lambda ctx, as_of: used.append(real(ctx, as_of)) or used[-1])
    from_open = run_metric(gateway, "stalled", req), run_metric(gateway, "stalled_summary", req)
    assert used and all(used)  # the default as_of is the latest event: the open spells cover it
    monkeypatch.setattr(more, "at_latest_event", lambda ctx, as_of: False)
    from_all = run_metric(gateway, "stalled", req), run_metric(gateway, "stalled_summary", req)
    assert from_open == from_all and from_open[0] and from_open[1][0]["recovered"] > 0
    earlier = Context(gateway).latest_event() - timedelta(days=30)
    assert not real(Context(gateway), earlier)  # a month back, some candidates closed before open_at - 7 days
