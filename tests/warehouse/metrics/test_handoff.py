"""handoff and handoff_leads: a hand-made month, the plain-Python oracle (tests/oracle/oracle_handoff.py)
on generated logs, the demo and a renamed funnel, every count the length of its list, and Olist (MQL ->
won), where sent back and never worked do not apply."""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.generate import generate
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW
from tests.dashboard.test_any_funnel import RENAMED
from tests.olist import load_olist
from tests.oracle import oracle_handoff
from tests.oracle.oracle import Event, Oracle, events_from_warehouse
from tests.oracle.strategies import BASE, config_variants, event_logs, request_windows
from tests.queries.test_oracle_agreement import assert_rows_equal
from tests.warehouse.metrics.logs import D

ATTRS = ("channel", "owner", "lead_score", "amount", "last_activity_at", "first_response_at")
MONTH = {"start": D(2024, 1, 1), "end": D(2024, 2, 1), "as_of": D(2024, 3, 20)}
EVENTS = [
    # A: handed off 01-03, back to mql 7 days later: sent back
    ("A", "mql", "2024-01-01"), ("A", "sql", "2024-01-03"), ("A", "mql", "2024-01-10"),
    # B: handed off 01-02, to nurture 28 days later: past the 14 days, not sent back
    ("B", "mql", "2024-01-01"), ("B", "sql", "2024-01-02"), ("B", "nurture", "2024-01-30"),
    # C: sql, opportunity, then nurture within 14 days: sales' stages are left for nurture, sent back
    ("C", "mql", "2024-01-01"), ("C", "sql", "2024-01-04"), ("C", "opportunity", "2024-01-05"), ("C", "nurture", "2024-01-06"),
    # D: disqualified by sales, then back to mql: the departure is a disposition, not a send-back
    ("D", "mql", "2024-01-01"), ("D", "sql", "2024-01-05"), ("D", "disqualified", "2024-01-06"), ("D", "mql", "2024-01-07"),
    # E: skips mql (reached at the sql time under rule count): a handoff after 0 days
    ("E", "lead", "2024-01-02"), ("E", "sql", "2024-01-02"),
    # G: an MQL nobody touched; H: nurtured (a disposition); J: worked, as its last activity says
    ("G", "mql", "2024-01-02"), ("H", "mql", "2024-01-03"), ("H", "nurture", "2024-01-04"), ("J", "mql", "2024-01-03"),
    # M: answered the day after it became an MQL (its first response)
    ("M", "mql", "2024-01-03"),
    # K: an MQL of March, younger than 14 days at as_of
    ("K", "mql", "2024-03-19"),
]
ACTIVITY = {"J": "2024-01-05 09:00:00", "G": "2024-01-01 09:00:00"}  # G's activity is before it became an MQL
RESPONSE = {"M": "2024-01-04 10:00:00", "G": "2024-01-02 00:00:00"}  # G's at the very moment it became one: not after it


def write_log(folder: Path, events: list[Event], config) -> Path:
    """Events with the attribute columns, last_activity_at included, loaded into a fresh warehouse."""
    path = folder / "events.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("lead_id", "stage", "entered_at", "reason") + ATTRS)
        for e in events:
            w.writerow((e.lead_id, e.stage, e.entered_at.strftime("%Y-%m-%dT%H:%M:%SZ"), e.reason or "") + tuple(e.attrs.get(a) or "" for a in ATTRS))
    db = folder / "wh.duckdb"
    load_files(db, [path], config, now=NOW)
    return db


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> Gateway:
    events = [Event(lead, stage, datetime.fromisoformat(day), None, 1, i, {"last_activity_at": ACTIVITY.get(lead), "first_response_at": RESPONSE.get(lead), "owner": "ana"})
              for i, (lead, stage, day) in enumerate(EVENTS, start=2)]
    return Gateway(write_log(tmp_path_factory.mktemp("handoff"), events, load_config(None)))


def test_a_hand_made_month_counts_what_the_doc_says(month):
    [row] = run_metric(month, "handoff", MetricRequest(**MONTH))
    assert (row["from_stage"], row["to_stage"], row["handoff_days"]) == ("mql", "sql", 14)
    assert (row["handoffs"], row["settled_handoffs"], row["sent_back"]) == (5, 5, 2)  # A and C
    assert row["sent_back_rate"] == pytest.approx(0.4, abs=1e-12) and 0 < row["wilson_low"] < 0.4 < row["wilson_high"] < 1
    assert row["too_few"]  # 5 settled handoffs < min_sample 30
    assert row["median_days_to_accept"] == pytest.approx(2.0, abs=1e-9)  # 0, 1, 2, 3, 4 days
    assert row["p90_days_to_accept"] == pytest.approx(3.6, abs=1e-9)
    assert (row["from_cohort"], row["from_settled"], row["no_disposition"], row["never_worked"]) == (9, 9, 3, 1)  # G, J, M did not move;
    # of them J and M were worked after (an activity, a response): G only was never worked
    assert row["note"] is None
    lists = {kind: [r["lead_id"] for r in run_metric(month, "handoff_leads", MetricRequest(change=kind, **MONTH))]
             for kind in ("handoff", "sent_back", "no_disposition", "never_worked")}
    assert lists == {"handoff": ["D", "C", "A", "E", "B"], "sent_back": ["C", "A"], "no_disposition": ["J", "M", "G"], "never_worked": ["G"]}
    sent = {r["lead_id"]: r["sent_back_to"] for r in run_metric(month, "handoff_leads", MetricRequest(change="sent_back", **MONTH))}
    assert sent == {"A": "mql", "C": "nurture"}


def test_the_window_moves_what_counts_as_sent_back_and_settled(month):
    anytime = run_metric(month, "handoff", MetricRequest(window_days=0, **MONTH))[0]
    assert (anytime["handoff_days"], anytime["sent_back"]) == (0, 3)  # B's nurture after 28 days counts now
    march = run_metric(month, "handoff", MetricRequest(start=D(2024, 3, 1), end=D(2024, 4, 1), as_of=D(2024, 3, 20)))[0]
    assert (march["from_cohort"], march["from_settled"], march["never_worked"]) == (1, 0, 0)  # K is too young to judge
    with pytest.raises(UserError, match="unknown handoff list"):
        run_metric(month, "handoff_leads", MetricRequest(change="lost", **MONTH))


def compare(db: Path, config, start: datetime, end: datetime, as_of: datetime | None, filters: dict, days: int | None,
            segment: str | None = None) -> None:
    events, leads = events_from_warehouse(db)
    oracle = Oracle(events, config, leads, as_of=as_of)
    gateway = Gateway(db)
    try:
        req = MetricRequest(start=start, end=end, as_of=oracle.as_of, filters=tuple(filters.items()), window_days=days, segment=segment)
        sql = run_metric(gateway, "handoff", req)
        notes = [r.pop("note") for r in sql]
        assert all((n is not None) == (oracle.key[1] == config.stages[-1]) for n in notes)
        expected = oracle_handoff.handoff(oracle, start, end, handoff_days=days, segment=segment, filters=filters)
        assert_rows_equal(sql, expected, "handoff")
        if segment is None and oracle.key[1] != config.stages[-1]:
            for kind in ("handoff", "sent_back", "no_disposition", "never_worked"):
                listed = sorted(r["lead_id"] for r in run_metric(gateway, "handoff_leads", replace(req, change=kind)))
                assert listed == oracle_handoff.listed(oracle, start, end, kind, handoff_days=days, filters=filters), kind
    finally:
        gateway.close()


@st.composite
def with_activity(draw):
    """A generated log whose leads may carry a last activity and a first response (the same on every event of a lead)."""
    events, leads = draw(event_logs())
    ids = sorted({e.lead_id for e in events})
    minutes = st.one_of(st.none(), st.integers(0, 120 * 24 * 60))
    def stamps() -> dict:
        drawn = {i: draw(minutes) for i in ids}
        return {i: None if m is None else (BASE + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M:%S") for i, m in drawn.items()}

    activity, response = stamps(), stamps()
    return [replace(e, attrs={**e.attrs, "last_activity_at": activity[e.lead_id], "first_response_at": response[e.lead_id]})
            for e in events], leads


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(log=with_activity(), config=config_variants(), window=request_windows(), days=st.sampled_from([None, 0, 1, 30]),
       sent_back=st.sampled_from([None, ("nurture", "rerouted"), ()]), segment=st.sampled_from([None, "owner", "channel"]))
def test_sql_agrees_with_the_oracle_on_generated_logs(log, config, window, days, sent_back, segment):
    events, _leads = log
    config = replace(config, sent_back_outcomes=sent_back)
    with tempfile.TemporaryDirectory() as tmp:
        db = write_log(Path(tmp), events, config)
        compare(db, config, window.start, window.end, window.as_of, window.filters, days, segment)


@pytest.mark.slow
def test_the_demo_agrees_with_the_oracle_per_owner_and_channel(demo):
    config = load_config(None)
    start, end = D(2026, 6, 1), D(2026, 9, 1)
    for segment in (None, "owner", "channel"):
        compare(demo.db, config, start, end, None, {}, None, segment)
    compare(demo.db, config, start, end, None, {"channel": "referral"}, 7)


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("renamed")
    events = generate(out=folder / "events.csv", n_leads=1200, seed=12).path
    (folder / "funnel.toml").write_text(RENAMED + '\n[attributes]\nlast_activity = "last_activity_at"\n', "utf-8")
    (folder / "funnel.toml").write_text((folder / "funnel.toml").read_text().replace('lost = ["closed_lost"]', 'lost = ["closed_lost"]\nsent_back = ["parked"]'))
    config = load_config(folder / "funnel.toml")
    load_files(folder / "wh.duckdb", [events], config, now=NOW)
    return folder / "wh.duckdb", config


@pytest.mark.slow
def test_a_renamed_funnel_hands_off_from_its_own_stages(renamed):
    db, config = renamed
    assert (config.review_rate.from_stage, config.review_rate.to_stage, config.sent_back) == ("new", "qualified", ("parked",))
    gateway = Gateway(db)
    [row] = run_metric(gateway, "handoff", MetricRequest())
    assert (row["from_stage"], row["to_stage"]) == ("new", "qualified") and row["handoffs"] > 0 and row["sent_back"] > 0
    gateway.close()
    compare(db, config, D(2026, 1, 1), D(2027, 1, 1), None, {}, None)
    compare(db, config, D(2026, 1, 1), D(2027, 1, 1), None, {}, 0, "owner")


def test_every_count_is_the_length_of_its_list_and_the_cli_prints_the_same(demo):
    [row] = run_metric(demo, "handoff", MetricRequest())
    for kind, count in (("handoff", "handoffs"), ("sent_back", "sent_back"), ("no_disposition", "no_disposition"), ("never_worked", "never_worked")):
        assert len(run_metric(demo, "handoff_leads", MetricRequest(change=kind))) == row[count] > 0
    out = CliRunner().invoke(main, ["query", "handoff", "--db", str(demo.db), "--format", "json", "--segment", "owner"])
    assert out.exit_code == 0, out.output
    by_owner = json.loads(out.output)
    assert sum(r["handoffs"] for r in by_owner) == row["handoffs"] and sum(r["never_worked"] for r in by_owner) == row["never_worked"]
    assert all(r["too_few"] == (r["settled_handoffs"] < 30) for r in by_owner)
    csv_out = CliRunner().invoke(main, ["query", "handoff", "--db", str(demo.db), "--format", "csv"])
    assert csv_out.exit_code == 0 and csv_out.output.splitlines()[0].startswith("from_stage,to_stage,handoff_days,handoffs")


@pytest.mark.slow
def test_olist_says_the_handoff_does_not_apply_where_the_key_rate_ends_at_the_win(tmp_path):
    db = load_olist(tmp_path / "olist.duckdb")
    out = CliRunner().invoke(main, ["query", "handoff", "--db", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.output)
    gateway = Gateway(db)
    [wins] = run_metric(gateway, "conversion", MetricRequest())
    gateway.close()
    assert (row["from_stage"], row["to_stage"]) == ("mql", "won")
    assert row["handoffs"] == wins["period_to"] > 0  # the handoffs are the wins
    assert row["sent_back"] is None and row["sent_back_rate"] is None and row["never_worked"] is None and row["no_disposition"] is None
    assert "no sales stage" in row["note"] and row["median_days_to_accept"] > 0
    refused = CliRunner().invoke(main, ["query", "handoff_leads", "--change", "never_worked", "--db", str(db)])
    assert refused.exit_code != 0 and "no sales stage" in refused.output


def test_the_handoff_settings_are_checked_in_a_sentence(tmp_path):
    path = tmp_path / "funnel.toml"
    for text, words in (('[review]\nhandoff_days = -1\n', "handoff_days"), ('[review]\nsent_back = ["moon"]\n', "not an outcome"),
                        ('[review]\nhand_off = 3\n', "expected key_rate, lost, sent_back or handoff_days")):
        path.write_text(text, "utf-8")
        with pytest.raises(UserError, match=words):
            load_config(path)
    path.write_text('[funnel]\nstages = ["a", "b", "c"]\noutcomes = ["later"]\n', "utf-8")
    assert (load_config(path).sent_back, load_config(path).handoff_days) == ((), 14)  # no nurture: only regressions
    assert (load_config(None).sent_back, load_config(None).handoff_days) == (("nurture",), 14)
