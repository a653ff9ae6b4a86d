"""weekly_kpis on hand-made logs in a time zone, and the weeks of a demo log."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from funnelboard.warehouse.metrics.base import start_week
from tests.warehouse.metrics.logs import D, run, warehouse

# --- weekly_kpis -----------------------------------------------------------------------------------

WEEKLY_CONFIG = '[funnel]\ntimezone = "America/New_York"\n'
WEEKLY_EVENTS = [  # UTC instants; local weeks (Monday) in New York, UTC-5 in winter
    "A,lead,2024-01-01T03:00Z",  # local Sunday 2023-12-31 22:00: week 12-25
    "A,mql,2024-01-02T12:00Z",  # week 01-01
    "A,sql,2024-01-09T13:00Z",  # week 01-08; 7 days 1 hour after its mql: outside a 7-day window
    "B,lead,2023-12-19T12:00Z", "B,mql,2023-12-20T12:00Z",  # week 12-18
    "B,sql,2023-12-27T12:00Z",  # week 12-25, exactly 7 days after its mql
    "C,lead,2024-01-15T12:00Z", "C,mql,2024-01-16T12:00Z", "C,disqualified,2024-01-17T12:00Z",  # week 01-15
    "D,lead,2024-01-22T12:00Z", "D,mql,2024-01-25T12:00Z",  # the mql comes after as_of
    "E,nurture,2023-12-26T12:00Z",  # a new lead and an exit in week 12-25
    "F,lead,2023-11-01T00:00Z",  # created before the first week
    "F,mql,2024-01-23T12:00Z", "F,sql,2024-01-24T00:00Z",  # week 01-22 (sql: local 01-23 19:00)
]
WEEKS = [date(2023, 12, 18) + timedelta(days=7 * i) for i in range(6)]
# week:                12-18  12-25  01-01  01-08  01-15  01-22
WEEKLY_VALUES = {
    "new_leads":           [1,    2,     0,     0,     1,     1],  # B; A, E; C; D
    "reached_mql":         [1,    0,     1,     0,     1,     1],  # B; A; C; F
    "reached_sql":         [0,    1,     0,     1,     0,     1],  # B; A; F
    "reached_opportunity": [0] * 6,
    "reached_proposal":    [0] * 6,
    "reached_won":         [0] * 6,
    "exits":               [0,    1,     0,     0,     1,     0],  # E; C
    # the key rate (mql -> sql) with a 7-day window: B converts (exactly 7), A does not (7d 1h), C not, F converts
    "key_rate":            [1.0,  None,  0.0,   None,  0.0,   1.0],
    # immature (as_of - mql < 7 days, as_of 01-24 12:00): only F (1 day) in week 01-22
    "immature":            [0,    0,     0,     0,     0,     1],
    # lead -> sql: B 8 days; A 01-01 03:00 -> 01-09 13:00 = 8 + 10/24; F 11-01 -> 01-24 = 84 days
    "median_days_to_target": [None, 8.0, None, 8 + 10 / 24, None, 84.0],
    # no "lost" spell anywhere in the data: a win rate would say nothing, so neither is given
    "lost":                [None] * 6,
    "win_rate":            [None] * 6,
}


def test_weekly_kpis_values_by_hand(tmp_path):
    gw = warehouse(tmp_path, WEEKLY_EVENTS, WEEKLY_CONFIG)
    # The period starts at local midnight 2023-12-18 (05:00 UTC): weeks 12-18 .. 01-22.
    rows = run(gw, "weekly_kpis", start=D(2023, 12, 18, 5), as_of=D(2024, 1, 24, 12), window_days=7)
    assert list(rows[0]) == ["week", "kpi", "value", "previous", "delta_week", "mean_4w", "delta_4w", "partial", "window_days"]
    assert {r["window_days"] for r in rows} == {7}
    # as_of (Wed 01-24 07:00 local) falls inside the last week: it is week to date
    assert {r["week"] for r in rows if r["partial"]} == {WEEKS[5]}
    assert [r["week"] for r in rows[:: len(WEEKLY_VALUES)]] == WEEKS
    got = {}
    for r in rows:
        got.setdefault(r["kpi"], []).append(r["value"])
    assert list(got) == list(WEEKLY_VALUES)
    assert got == {k: [None if v is None else pytest.approx(v) for v in vs] for k, vs in WEEKLY_VALUES.items()}


def test_weekly_kpis_stop_at_the_period_end(tmp_path):
    gw = warehouse(tmp_path, WEEKLY_EVENTS, WEEKLY_CONFIG)
    # --to 2024-01-14 (local): end = local 01-15 00:00 = 05:00 UTC; the last week is 01-08.
    rows = run(gw, "weekly_kpis", start=D(2023, 12, 18, 5), end=D(2024, 1, 15, 5), as_of=D(2024, 1, 24, 12), window_days=7)
    assert sorted({r["week"] for r in rows}) == WEEKS[:4]
    # Values are still as of as_of: A's sql in week 01-08 counts.
    assert next(r["value"] for r in rows if r["week"] == WEEKS[3] and r["kpi"] == "reached_sql") == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("week", "kpi", "previous", "delta_week", "mean_4w", "delta_4w"),
    [
        (WEEKS[0], "new_leads", None, None, None, None),  # no week before it in the series
        (WEEKS[1], "new_leads", 1, 1, None, None),
        (WEEKS[3], "new_leads", 0, 0, None, None),  # only 3 weeks before it
        (WEEKS[4], "new_leads", 0, 1, 0.75, 0.25),  # mean of 1, 2, 0, 0
        # The review week (01-22, to Wed 07:00 local) against the 4 weeks before at the same point
        # (as of 01-17, 01-10, 01-03 and 12-27 12:00 UTC): C (01-15) counted; in week 12-25 only E,
        # A's creation (01-01 03:00 UTC) is after that week's point.
        (WEEKS[5], "new_leads", 1, 0, 0.5, 0.5),  # mean of 1, 0, 0, 1
        (WEEKS[5], "exits", 1, -1, 0.5, -0.5),  # C's exit (01-17 12:00) is just in time; mean of 1, 0, 0, 1
        # C's cohort seen a day after its mql is immature, as A's was on 01-03: mean of 1, 0, 1, 0
        (WEEKS[5], "immature", 1, 0, 0.5, 0.5),
        (WEEKS[5], "key_rate", 0.0, 1.0, None, None),  # week 01-08 has no rate
        (WEEKS[4], "key_rate", None, None, None, None),  # last week had no rate
        (WEEKS[5], "median_days_to_target", None, None, None, None),
    ],
)
def test_weekly_kpis_comparisons(tmp_path, week, kpi, previous, delta_week, mean_4w, delta_4w):
    gw = warehouse(tmp_path, WEEKLY_EVENTS, WEEKLY_CONFIG)
    rows = run(gw, "weekly_kpis", start=D(2023, 12, 18, 5), as_of=D(2024, 1, 24, 12), window_days=7)
    row = next(r for r in rows if r["week"] == week and r["kpi"] == kpi)
    assert (row["previous"], row["delta_week"], row["mean_4w"], row["delta_4w"]) == (previous, delta_week, mean_4w, delta_4w)


def test_weekly_kpis_default_is_13_weeks_to_as_of(tmp_path):
    gw = warehouse(tmp_path, WEEKLY_EVENTS, WEEKLY_CONFIG)
    rows = run(gw, "weekly_kpis", as_of=D(2024, 1, 24, 12))
    weeks = sorted({r["week"] for r in rows})
    assert weeks == [date(2024, 1, 22) - timedelta(days=7 * i) for i in range(12, -1, -1)]
    # F's lead week (2023-10-30) is the first week shown: its creation counts there.
    assert next(r["value"] for r in rows if r["week"] == date(2023, 10, 30) and r["kpi"] == "new_leads") == 1


def test_demo_weekly_kpis_weeks_are_contiguous(demo):
    latest = demo.query("select max(entered_at) from raw_events").rows[0][0]
    rows = run(demo, "weekly_kpis", as_of=latest)
    weeks = sorted({r["week"] for r in rows})
    assert len(weeks) == 13
    assert all(b - a == timedelta(days=7) for a, b in zip(weeks, weeks[1:]))
    assert all(w.weekday() == 0 for w in weeks)
    assert weeks[-1] == latest.date() - timedelta(days=latest.weekday())  # the demo is in UTC
    kpis = {r["kpi"] for r in rows}
    assert len(rows) == 13 * len(kpis) == 13 * 12
    total_new = sum(r["value"] for r in rows if r["kpi"] == "new_leads")
    assert total_new > 0


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "UTC", "America/New_York", "Asia/Kolkata"])
def test_start_week_is_on_or_before_the_local_week_of_start_in_any_zone(zone):
    from funnelboard.warehouse.metrics.base import local_monday

    for hours in range(0, 24 * 14, 5):  # every weekday and hour of two weeks, both sides of midnight
        start = datetime(2026, 3, 2) + timedelta(hours=hours, minutes=7)
        assert start_week(start) <= local_monday(start, zone), (zone, start)
        assert (local_monday(start, zone) - start_week(start)).days <= 7  # and at most a week before it


# --- the review week ---------------------------------------------------------------------------------

REVIEW_EVENTS = [  # UTC; the tests load them "now" = 2026-11-23 12:00 (tests/conftest.py NOW)
    "A,lead,2026-11-02T09:00Z", "A,mql,2026-11-03T09:00Z",
    "B,lead,2026-11-11T09:00Z", "B,mql,2026-11-12T09:00Z",
    "C,lead,2026-11-18T09:00Z",  # Wednesday: the last new lead
    "A,sql,2026-11-20T09:00Z",  # Friday: the last event
]


def test_live_data_reviews_this_week_to_date(tmp_path):
    """The latest event (Fri 11-20) is 3 days before the load: the review is its week, to date."""
    gw = warehouse(tmp_path, REVIEW_EVENTS)
    (week,) = run(gw, "review_week")
    assert (week["week"], week["reason"], week["partial"]) == (date(2026, 11, 16), "live", True)
    assert week["days_in"] == pytest.approx(4 + 9 / 24)  # Monday 00:00 to Friday 09:00
    assert week["data_end"] == D(2026, 11, 20, 9) and week["new_leads_end"] == D(2026, 11, 18, 9)
    kpis = run(gw, "weekly_kpis")
    assert max(r["week"] for r in kpis) == date(2026, 11, 16) and all(r["partial"] for r in kpis if r["week"] == date(2026, 11, 16))


@pytest.mark.parametrize(("zone", "monday"), [("UTC", date(2026, 11, 16)),
                                              ("America/New_York", date(2026, 3, 2)),  # clocks go forward on Sun 8 Mar:
                                              ("America/New_York", date(2026, 3, 9)),  # this week has 167 hours
                                              ("America/New_York", date(2026, 10, 26))])  # and 1 Nov's week 169
def test_a_week_seen_to_its_last_microsecond_is_complete(tmp_path, zone, monday):
    """as_of on a Sunday is that day's last microsecond: the week is over, not "7.0 of 7 days" to date;
    a microsecond earlier it is still to date. Days are the local week's, whatever its length."""
    from zoneinfo import ZoneInfo

    gw = warehouse(tmp_path, ["A,lead,2026-01-05T09:00Z", "A,mql,2026-12-01T09:00Z"], f'[funnel]\ntimezone = "{zone}"\n')
    tz = ZoneInfo(zone)
    start = datetime.combine(monday, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(monday + timedelta(weeks=1), datetime.min.time(), tzinfo=tz)

    def utc(local):
        return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    last = end.astimezone(ZoneInfo("UTC")) - timedelta(microseconds=1)
    (week,) = run(gw, "review_week", as_of=last.replace(tzinfo=None))
    assert (week["week"], week["partial"], week["days_in"]) == (monday, False, 7.0)
    (week,) = run(gw, "review_week", as_of=last.replace(tzinfo=None) - timedelta(microseconds=1))
    assert week["week"] == monday and week["partial"] is True and week["days_in"] < 7.0
    noon_thursday = utc(start.replace(day=start.day + 3, hour=12))  # 3.5 local days in, whatever the clocks did
    (week,) = run(gw, "review_week", as_of=noon_thursday)
    assert week["partial"] is True and week["days_in"] == pytest.approx(3.5, abs=1e-9)


def test_old_data_reviews_the_last_full_week_of_new_leads(tmp_path):
    """The same data loaded a year later: no week to date, no empty week; the feed stopped on a
    Wednesday, so the last full week of new leads is the week before."""
    events = REVIEW_EVENTS + ["B,won,2026-12-30T09:00Z"]  # a late close keeps the data going after the feed
    from funnelboard.core.config import load_config
    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.pipeline import load_files

    width = 9
    (tmp_path / "e.csv").write_text(
        "lead_id,stage,entered_at,reason,channel,region,owner,lead_score,amount\n"
        + "\n".join(r + "," * (width - 1 - r.count(",")) for r in events) + "\n", "utf-8")
    load_files(tmp_path / "wh.duckdb", [tmp_path / "e.csv"], load_config(None), now=datetime(2027, 12, 1))
    gw = Gateway(tmp_path / "wh.duckdb")
    (week,) = run(gw, "review_week")
    assert (week["week"], week["reason"], week["partial"]) == (date(2026, 11, 9), "last_full_week", False)
    assert max(r["week"] for r in run(gw, "weekly_kpis")) == date(2026, 11, 9)
    assert {r["week"] for r in run(gw, "movers")} <= {date(2026, 11, 9)}


def test_a_given_as_of_or_period_end_chooses_the_week(tmp_path):
    gw = warehouse(tmp_path, REVIEW_EVENTS)
    assert run(gw, "review_week", as_of=D(2026, 11, 4, 12))[0]["week"] == date(2026, 11, 2)
    (week,) = run(gw, "review_week", end=D(2026, 11, 16))
    assert (week["week"], week["reason"], week["partial"]) == (date(2026, 11, 9), "period_end", False)
