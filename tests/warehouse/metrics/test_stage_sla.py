"""Stage SLAs ([sla]: hours per stage on the calendar or business clock, per value of a segment) in
stalled, its summary, the board and the changes: SQL against the oracle on hand-made logs in two
time zones and across a weekend, and the breaches' leads are the list's rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from funnelboard.warehouse.metrics import Context, MetricRequest
from funnelboard.warehouse.metrics.stalled import stalled_by_stage
from tests.oracle import oracle_changes
from tests.oracle.oracle import Oracle, events_from_warehouse
from tests.queries.test_oracle_agreement import assert_rows_equal
from tests.warehouse.metrics.logs import D, run, warehouse

SLA_CONFIG = """[funnel]
timezone = "{tz}"
min_sample = 2

[sla]
clock = "{clock}"
hours = {{ mql = 16 }}
by = "channel"
hours_by = {{ inbound = {{ mql = 8 }} }}

[sla_days]
sql = 3

[response]
# the response SLA by another column than the stage SLAs: each reads its own
sla_hours = 4
sla_by = "region"
"""
# Wall-clock times in the funnel's zone: Friday 2024-01-05 15:00 and so on (09:00-17:00 business hours).
SLA_EVENTS = [
    "B1,mql,2024-01-05T15:00,,inbound,,Ann",   # inbound, 8 h: Fri 2 + Mon 6: over from Mon 15:00
    "B2,mql,2024-01-05T15:00,,referral,,Bob",  # 16 h: Fri 2 + Mon 8 + Tue 6: over from Tue 15:00
    "B3,mql,2024-01-01T09:00,,referral,,Bob",  # 16 h used up at Tue 01-02 17:00: over from Wed 09:00
    "B4,mql,2024-01-06T12:00,,inbound,,Ann",   # a Saturday: Mon 8 h: over from Tue 01-09 09:00
    "B5,mql,2024-01-08T10:00,,inbound,,Cy",    # Mon 7 h + Tue 1: over from Tue 10:00
    "B5,sql,2024-01-09T11:00,,inbound,,Cy",    # left mql after its deadline: recovered; sql (3 calendar days) not yet over
    "C1,sql,2024-01-02T08:00,,referral,,Cy",   # [sla_days] sql = 3: over from Fri 01-05 08:00
]
AS_OF_LOCAL = datetime(2024, 1, 9, 13, 30)  # Tuesday


def utc(local: datetime, tz: str) -> datetime:
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@pytest.mark.slow
@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_business_hour_slas_per_channel_agree_with_the_oracle(tmp_path, tz):
    gw = warehouse(tmp_path, SLA_EVENTS, SLA_CONFIG.format(tz=tz, clock="business"))
    as_of = utc(AS_OF_LOCAL, tz)
    events, leads = events_from_warehouse(tmp_path / "wh.duckdb")
    oracle = Oracle(events, gw.config(), leads, as_of=as_of)
    rows = run(gw, "stalled", as_of=as_of)
    assert_rows_equal(rows, oracle.stalled(), "stalled")
    got = {r["lead_id"]: (r["threshold_source"], r["sla_hours"], r["clock"], r["breached_at"]) for r in rows}
    assert sorted(got) == ["B1", "B3", "B4", "C1"]  # B2 is due at 15:00, B5 left mql
    # the deadlines above, on the funnel's wall clock
    assert got["B1"] == ("sla segment", 8.0, "business", utc(D(2024, 1, 8, 15), tz))
    assert got["B3"] == ("sla", 16.0, "business", utc(D(2024, 1, 3, 9), tz))
    assert got["B4"] == ("sla segment", 8.0, "business", utc(D(2024, 1, 9, 9), tz))
    assert got["C1"] == ("sla", 72.0, "calendar", utc(D(2024, 1, 5, 8), tz))
    assert all(r["threshold_days"] is None for r in rows if r["clock"] == "business")
    assert run(gw, "stalled_summary", as_of=as_of) == oracle.stalled_summary()
    # the changes of the review week: newly stalled at the deadline, B5 recovered when it left mql
    start, end = utc(D(2024, 1, 8), tz), utc(D(2024, 1, 15), tz)
    changes = run(gw, "change_leads", start=start, end=end, as_of=as_of)
    want = oracle_changes.change_rows(oracle, start, end)
    stall_kinds = ("newly_stalled", "recovered")
    assert sorted((r["lead_id"], r["change"], r["changed_at"]) for r in changes if r["change"] in stall_kinds) == sorted(
        (r["lead_id"], r["change"], r["changed_at"]) for r in want if r["change"] in stall_kinds)
    assert ("B5", "newly_stalled", utc(D(2024, 1, 9, 10), tz)) in {(r["lead_id"], r["change"], r["changed_at"]) for r in changes}
    gw.close()


def test_the_calendar_clock_counts_every_hour_and_the_board_counts_days_over(tmp_path):
    gw = warehouse(tmp_path, SLA_EVENTS, SLA_CONFIG.format(tz="UTC", clock="calendar"))
    as_of = AS_OF_LOCAL
    events, leads = events_from_warehouse(tmp_path / "wh.duckdb")
    oracle = Oracle(events, gw.config(), leads, as_of=as_of)
    rows = run(gw, "stalled", as_of=as_of)
    assert_rows_equal(rows, oracle.stalled(), "stalled")
    by_lead = {r["lead_id"]: r for r in rows}
    # 16 calendar hours after Fri 15:00 is Sat 07:00; 8 after Sat 12:00 is Sat 20:00
    assert by_lead["B2"]["breached_at"] == D(2024, 1, 6, 7) and by_lead["B2"]["threshold_days"] == pytest.approx(16 / 24)
    assert by_lead["B4"]["breached_at"] == D(2024, 1, 6, 20)
    board = {(r["stage"], r["owner"]): r for r in run_metric_board(gw, as_of)}
    over = sorted((as_of - r["breached_at"]) / timedelta(days=1) for r in rows if r["owner"] == "Ann")
    assert board[("mql", "Ann")]["stalled"] == len(over)
    assert board[("mql", "Ann")]["median_over_days"] == pytest.approx(sum(over) / 2 if len(over) == 2 else over[len(over) // 2], abs=1e-9)
    gw.close()


def test_the_board_counts_business_rows_in_days_since_their_deadline(tmp_path):
    gw = warehouse(tmp_path, SLA_EVENTS, SLA_CONFIG.format(tz="UTC", clock="business"))
    rows = run(gw, "stalled", as_of=AS_OF_LOCAL)
    board = {(r["stage"], r["owner"]): r for r in run_metric_board(gw, AS_OF_LOCAL)}
    ann = sorted((AS_OF_LOCAL - r["breached_at"]) / timedelta(days=1) for r in rows if r["owner"] == "Ann")
    assert len(ann) == 2  # B1 (over since Mon 15:00) and B4 (since Tue 09:00)
    assert board[("mql", "Ann")]["median_over_days"] == pytest.approx(sum(ann) / 2, abs=1e-9)
    assert board[("(all)", "(all)")]["stalled"] == len(rows)
    gw.close()


def test_a_stage_filter_and_a_lead_filter_keep_the_breaches_they_name(tmp_path):
    gw = warehouse(tmp_path, SLA_EVENTS, SLA_CONFIG.format(tz="UTC", clock="business"))
    everyone = run(gw, "stalled", as_of=AS_OF_LOCAL)
    inbound = run(gw, "stalled", as_of=AS_OF_LOCAL, filters=(("channel", "inbound"),))
    assert [r["lead_id"] for r in inbound] == [r["lead_id"] for r in everyone if r["channel"] == "inbound"]
    assert {r["lead_id"] for r in run(gw, "stalled", as_of=AS_OF_LOCAL, filters=(("stage", "sql"),))} == {"C1"}
    gw.close()


def run_metric_board(gw, as_of):
    return run(gw, "stalled_board", as_of=as_of)


@pytest.mark.slow
def test_the_counts_by_stage_and_kind_add_up_to_the_summary(tmp_path):
    gw = warehouse(tmp_path, SLA_EVENTS, SLA_CONFIG.format(tz="UTC", clock="business"))
    ctx = Context(gw)
    rows = stalled_by_stage(ctx, MetricRequest(as_of=AS_OF_LOCAL))
    summary = run(gw, "stalled_summary", as_of=AS_OF_LOCAL)[0]
    assert {k: sum(r[k] for r in rows) for k in summary} == summary
    for over in ("sla", "p90"):
        for stage in {r["stage"] for r in rows}:
            want = run(gw, "stalled_summary", as_of=AS_OF_LOCAL, filters=(("over", over), ("stage", stage)))[0]
            got = next((r for r in rows if (r["stage"], r["over"]) == (stage, over)), dict.fromkeys(summary, 0))
            assert {k: got[k] for k in summary} == want, (stage, over)
    gw.close()
