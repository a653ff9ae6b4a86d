"""speed_to_lead and response_bands: a hand-made week across a weekend in New York, the plain-Python
oracle (tests/oracle/oracle_response.py) on generated logs in three time zones and both clocks, the
demo's bands, and a one-sentence refusal without a first-response column."""

from __future__ import annotations

import json
import math
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.metrics.base import business_clock
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.oracle import oracle_response
from tests.oracle.oracle import Oracle, events_from_warehouse
from tests.oracle.oracle_response import business_hours_between

D = datetime
HEADER = "lead_id,stage,entered_at,channel,first_response_at"
BASE = """[funnel]
stages = ["lead", "mql", "sql", "won"]
outcomes = ["lost"]
timezone = "{tz}"
min_sample = 2

[segments]
channel = "Channel"

[attributes]
first_response = "first_response_at"

[response]
sla_hours = {sla}
clock = "{clock}"
business_hours = "{hours}"
sla_by = "channel"
sla_hours_by = {{ inbound = {inbound} }}
"""


def load(folder: Path, rows: list[str], *, tz="UTC", sla=4, clock="business", hours="09:00-17:00", inbound=1):
    (folder / "events.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n", "utf-8")
    (folder / "funnel.toml").write_text(BASE.format(tz=tz, sla=sla, clock=clock, hours=hours, inbound=inbound), "utf-8")
    config = load_config(folder / "funnel.toml")
    load_files(folder / "wh.duckdb", [folder / "events.csv"], config, now=NOW)
    return folder / "wh.duckdb", config


def test_business_clock_counts_only_weekday_opening_hours():
    friday_4pm, monday_10am = D(2024, 3, 8, 16), D(2024, 3, 11, 10)
    assert business_clock(monday_10am, 9, 17) - business_clock(friday_4pm, 9, 17) == 2.0  # 1 h Friday, 1 h Monday
    assert business_clock(D(2024, 3, 9, 12), 9, 17) == business_clock(D(2024, 3, 10, 23), 9, 17)  # a weekend stands still
    assert business_clock(D(2024, 3, 11, 8), 9, 17) == business_clock(D(2024, 3, 8, 20), 9, 17)  # nights too
    for a, b in ((friday_4pm, monday_10am), (D(2024, 3, 4, 3), D(2024, 3, 29, 22, 30)), (D(2024, 3, 6, 12, 15), D(2024, 3, 6, 12, 45))):
        assert math.isclose(business_clock(b, 9, 17) - business_clock(a, 9, 17), business_hours_between(a, b, "UTC", 9, 17), abs_tol=1e-9)


@pytest.fixture(scope="module")
def weekend(tmp_path_factory):
    rows = [
        # times without an offset are New York's wall clock (clocks go forward on Sunday 10 March)
        # A (inbound, SLA 1 h): MQL Friday 15:30, answered Monday 09:45: 1.5 + 0.75 business hours, a breach;
        # 65.25 calendar hours (the lost hour of DST included)
        "A,mql,2024-03-08 15:30:00,inbound,2024-03-11 09:45:00", "A,sql,2024-03-12 11:00:00,inbound,2024-03-11 09:45:00",
        # B (outbound, SLA 4 h): MQL Saturday 15:00, answered Monday 10:00 (written in UTC): 1 business hour, within
        "B,mql,2024-03-09 15:00:00,outbound,2024-03-11T14:00:00Z",
        # C (outbound): answered before it became an MQL: 0 hours
        "C,lead,2024-03-04 12:00:00,outbound,2024-03-04 13:00:00", "C,mql,2024-03-05 12:00:00,outbound,2024-03-04 13:00:00",
        # E (inbound): never answered; its SLA ran out long before as_of: a breach
        "E,mql,2024-03-06 14:00:00,inbound,",
    ]
    db, config = load(tmp_path_factory.mktemp("weekend"), rows, tz="America/New_York")
    gw = Gateway(db)
    yield gw
    gw.close()


def test_a_weekend_in_new_york_stops_the_business_clock(weekend):
    req = MetricRequest(start=D(2024, 3, 1), end=D(2024, 4, 1), as_of=D(2024, 3, 20))
    (row,) = run_metric(weekend, "speed_to_lead", req)
    assert (row["leads"], row["answered"], row["unanswered"]) == (4, 3, 1)
    assert (row["judged"], row["within_sla"], row["breaches"]) == (4, 2, 2)  # B and C within; A late, E never
    by_channel = {r["channel"]: r for r in run_metric(weekend, "speed_to_lead", MetricRequest(**{**req.__dict__, "segment": "channel"}))}
    assert by_channel["inbound"]["p50_business_hours"] == pytest.approx(2.25)  # A only
    assert by_channel["inbound"]["p50_hours"] == pytest.approx(65.25)
    assert by_channel["outbound"]["p90_business_hours"] == pytest.approx(0.9)  # B 1.0 and C 0.0: 0.9 by interpolation
    bands = {r["band"]: (r["leads"], r["converted"]) for r in run_metric(weekend, "response_bands", req)}
    assert bands == {"< 1 h": (1, 0), "1-4 h": (0, 0), "4-24 h": (0, 0), "1-3 d": (2, 1), "> 3 d": (0, 0), "never": (1, 0)}


def test_without_a_first_response_column_the_metric_says_what_to_set(tmp_path):
    (tmp_path / "events.csv").write_text("lead_id,stage,entered_at\nA,mql,2024-03-01 10:00:00\n", "utf-8")
    (tmp_path / "funnel.toml").write_text('[funnel]\nstages = ["mql", "won"]\n', "utf-8")
    load_files(tmp_path / "wh.duckdb", [tmp_path / "events.csv"], load_config(tmp_path / "funnel.toml"), now=NOW)
    gw = Gateway(tmp_path / "wh.duckdb")
    with pytest.raises(UserError, match=r"set \[attributes\] first_response"):
        run_metric(gw, "speed_to_lead", MetricRequest())
    gw.close()
    out = CliRunner().invoke(main, ["query", "response_bands", "--db", str(tmp_path / "wh.duckdb")])
    assert out.exit_code != 0 and "first_response" in out.output and "Traceback" not in out.output


def compare(db: Path, config, start, end, as_of, segment=None) -> None:
    events, leads = events_from_warehouse(db)
    oracle = Oracle(events, config, leads, as_of=as_of)
    gw = Gateway(db)
    try:
        req = MetricRequest(start=start, end=end, as_of=oracle.as_of, segment=segment)
        keys = ("leads", "answered", "p50_hours", "p90_hours", "p50_business_hours", "p90_business_hours", "judged", "within_sla")
        got = [{k: r[k] for k in ((segment,) if segment else ()) + keys} for r in run_metric(gw, "speed_to_lead", req)]
        want = oracle_response.speed_to_lead(oracle, start, end, segment=segment)
        assert len(got) == len(want), (got, want)
        for a, b in zip(got, want):
            for k in b:
                if isinstance(a[k], float) or isinstance(b[k], float):
                    assert a[k] is not None and b[k] is not None and math.isclose(a[k], b[k], abs_tol=1e-9), (k, a, b)
                else:
                    assert a[k] == b[k], (k, a, b)
        if segment is None:
            bands = [{k: r[k] for k in ("band", "leads", "converted", "wilson_low", "wilson_high")} for r in run_metric(gw, "response_bands", req)]
            assert bands == [{k: (pytest.approx(v, abs=1e-9) if isinstance(v, float) else v) for k, v in r.items()}
                             for r in oracle_response.response_bands(oracle, start, end)]
    finally:
        gw.close()


MARCH = D(2024, 3, 1)


@st.composite
def logs(draw):
    rows = []
    for i in range(draw(st.integers(1, 10))):
        channel = draw(st.sampled_from(["inbound", "outbound", ""]))
        mql = MARCH + timedelta(minutes=draw(st.integers(0, 60 * 24 * 40)))
        wait = draw(st.one_of(st.none(), st.integers(-600, 60 * 24 * 6)))  # minutes; negative: answered before
        answered = "" if wait is None else (mql + timedelta(minutes=wait)).strftime("%Y-%m-%d %H:%M:%S")
        lead = f"L{i}"
        rows.append(f"{lead},mql,{mql:%Y-%m-%d %H:%M:%S},{channel},{answered}")
        if draw(st.booleans()):
            later = mql + timedelta(hours=draw(st.integers(1, 24 * 20)))
            rows.append(f"{lead},sql,{later:%Y-%m-%d %H:%M:%S},{channel},{answered}")
    return rows


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=logs(), tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]), clock=st.sampled_from(["business", "calendar"]),
       hours=st.sampled_from(["09:00-17:00", "08:30-18:15"]), sla=st.sampled_from([1, 4, 30]), start_day=st.integers(0, 20),
       as_of_day=st.integers(5, 60), segment=st.sampled_from([None, "channel"]))
def test_sql_agrees_with_the_oracle_on_generated_logs(rows, tz, clock, hours, sla, start_day, as_of_day, segment):
    with tempfile.TemporaryDirectory() as tmp:
        db, config = load(Path(tmp), rows, tz=tz, sla=sla, clock=clock, hours=hours, inbound=0.5)
        compare(db, config, MARCH + timedelta(days=start_day), MARCH + timedelta(days=start_day + 30), MARCH + timedelta(days=as_of_day), segment)


@pytest.mark.slow
def test_on_the_demo_the_oracle_agrees_and_a_fast_answer_converts_more(demo):
    config = load_config(None)
    compare(demo.db, config, D(2026, 5, 1), D(2026, 11, 1), None)
    compare(demo.db, config, D(2026, 5, 1), D(2026, 11, 1), None, "channel")
    out = CliRunner().invoke(main, ["query", "response_bands", "--db", str(demo.db), "--format", "json", "--from", "2026-05-01", "--to", "2026-10-31"])
    assert out.exit_code == 0, out.output
    bands = {r["band"]: r for r in json.loads(out.output)}
    assert bands["< 1 h"]["wilson_low"] > bands["4-24 h"]["wilson_high"]  # the demo answers the playbook: speed converts


def test_every_count_is_the_length_of_its_list(weekend):
    req = MetricRequest(start=D(2024, 3, 1), end=D(2024, 4, 1), as_of=D(2024, 3, 20))
    (row,) = run_metric(weekend, "speed_to_lead", req)

    def listed(**filters) -> list[dict]:
        return run_metric(weekend, "response_leads", MetricRequest(**{**req.__dict__, "filters": tuple(filters.items())}))

    assert len(listed(status="within")) == row["within_sla"] and len(listed(status="breach")) == row["breaches"]
    assert {r["lead_id"] for r in listed(status="breach")} == {"A", "E"}
    for band in run_metric(weekend, "response_bands", req):
        assert len(listed(band=band["band"])) == band["leads"]
    assert [r["lead_id"] for r in listed()] == ["B", "A", "E", "C"]  # newest first
    assert listed(status="within", channel="outbound")[0]["channel"] == "outbound"
    with pytest.raises(UserError, match="status 'late' is not one of"):
        listed(status="late")


def test_a_period_without_leads_is_one_row_of_zeros(weekend):
    (row,) = run_metric(weekend, "speed_to_lead", MetricRequest(start=D(2023, 1, 2), end=D(2023, 1, 9), as_of=D(2024, 3, 20)))
    assert (row["leads"], row["answered"], row["judged"], row["p50_hours"], row["within_sla_share"]) == (0, 0, 0, None, None)
    assert run_metric(weekend, "speed_to_lead", MetricRequest(start=D(2023, 1, 2), end=D(2023, 1, 9), segment="channel")) == []
