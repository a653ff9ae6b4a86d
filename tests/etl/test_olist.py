"""The Olist walkthrough of the README, checked against figures computed here from the raw CSVs.

The data (CC BY-NC-SA 4.0) is never copied into the repository: it is read from
$FUNNELBOARD_OLIST_DIR, else ../shared/data/olist_marketing_funnel/ beside the checkout
(`.ci/run` sets the variable for a clone of a local checkout). Without the data these tests
fail under CI=true, as every test missing what it needs, and are skipped on a developer machine.
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.conftest import rows
from tests.olist import CONFIG, DEALS, MQLS, olist_files


@pytest.fixture(scope="module", autouse=True)
def _olist_data():
    olist_files()


@pytest.fixture(scope="module")
def olist(tmp_path_factory):
    """The README's command, run as written (in the repository root), into a temporary warehouse."""
    db = tmp_path_factory.mktemp("olist") / "olist.duckdb"
    result = CliRunner().invoke(main, ["load", str(MQLS), str(DEALS), "--source", "wide", "--config", str(CONFIG), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    return db, result.output


@pytest.fixture(scope="module")
def raw():
    """The two CSVs, read with nothing but the csv module."""
    with open(MQLS, newline="", encoding="utf-8") as fh:
        mqls = list(csv.DictReader(fh))
    with open(DEALS, newline="", encoding="utf-8") as fh:
        deals = list(csv.DictReader(fh))
    return mqls, deals


def _metric(db: Path, name: str, **kw) -> list[dict]:
    return run_metric(Gateway(db), name, MetricRequest(**kw))


def test_every_row_loads(olist):
    db, output = olist
    assert "8,000 events read = 8,000 loaded + 0 quarantined + 0 duplicates" in output
    assert "842 events read = 842 loaded + 0 quarantined + 0 duplicates" in output
    assert rows(db, "select sum(source_rows), sum(rows_ignored), sum(rows_loaded) from load_ledger") == [(8842, 0, 8842)]


def test_mql_to_won_overall(olist, raw):
    mqls, deals = raw
    won = {d["mql_id"] for d in deals} & {m["mql_id"] for m in mqls}
    (row,) = _metric(olist[0], "conversion", from_stage="mql", to_stage="won")
    assert (row["cohort"], row["converted"]) == (len(mqls), len(won)) == (8000, 842)
    assert row["rate"] == pytest.approx(842 / 8000)


def test_won_rate_by_origin(olist, raw):
    mqls, deals = raw
    won = {d["mql_id"] for d in deals}
    n = Counter(m["origin"] or "(none)" for m in mqls)
    converted = Counter(m["origin"] or "(none)" for m in mqls if m["mql_id"] in won)
    got = {r["channel"]: r for r in _metric(olist[0], "segment_conversion", segment="channel", from_stage="mql", to_stage="won")}
    assert set(got) == set(n)
    for origin, count in n.items():
        assert (got[origin]["n"], got[origin]["converted"]) == (count, converted[origin]), origin
        assert got[origin]["rate"] == pytest.approx(converted[origin] / count)
    assert (n["organic_search"], converted["organic_search"]) == (2296, 271)


def test_wins_by_business_segment_and_owner(olist, raw):
    """Segment and owner are known only for closed deals: count the wins each has."""
    _, deals = raw
    for segment, column in (("business_segment", "business_segment"), ("owner", "sr_id"), ("sdr", "sdr_id")):
        expected = Counter(d[column] or "(none)" for d in deals)
        got = {r[segment]: r["converted"] for r in _metric(olist[0], "segment_conversion", segment=segment, from_stage="mql", to_stage="won")}
        assert {k: v for k, v in got.items() if k != "(none)"} == {k: v for k, v in expected.items() if k != "(none)"}, segment
    assert Counter(d["business_segment"] for d in deals)["home_decor"] == 105


def test_leads_without_a_deal_are_open_mqls_censored_not_lost(olist, raw):
    """No exit event: an MQL without a deal is an open spell, in the denominator, never an exit."""
    mqls, deals = raw
    tz = ZoneInfo(load_config(CONFIG).timezone)
    contact = {m["mql_id"]: datetime.fromisoformat(m["first_contact_date"]).replace(tzinfo=tz) for m in mqls}
    days = []
    for d in deals:
        won = datetime.fromisoformat(d["won_date"]).replace(tzinfo=tz)
        if won >= contact[d["mql_id"]]:  # one deal is dated before its first contact: its MQL spell comes last, open
            days.append((won - contact[d["mql_id"]]).total_seconds() / 86400)
    (acc,) = [r for r in _metric(olist[0], "stage_accounting") if r["stage"] == "mql"]
    assert (acc["entered"], acc["advanced"], acc["exited"], acc["open"]) == (8000, len(days), 0, 8000 - len(days)) == (8000, 841, 0, 7159)
    (tis,) = [r for r in _metric(olist[0], "time_in_stage") if r["stage"] == "mql"]
    assert (tis["n_completed"], tis["n_open"]) == (841, 7159)
    assert tis["p50"] == pytest.approx(statistics.median(days), abs=1e-6)
    # With 89 % of MQLs censored, the Kaplan-Meier median time to close does not exist: shown empty, not guessed.
    assert tis["km_p50"] is None


def test_share_closed_within_30_days(olist, raw):
    """`time_to_convert` of this funnel (its key rate is mql -> won): MQLs whose deal closed within 30 days of reaching MQL."""
    mqls, deals = raw
    tz = ZoneInfo(load_config(CONFIG).timezone)
    contact = {m["mql_id"]: datetime.fromisoformat(m["first_contact_date"]).replace(tzinfo=tz) for m in mqls}
    within = 0
    for d in deals:
        won = datetime.fromisoformat(d["won_date"]).replace(tzinfo=tz)
        reached_mql = min(contact[d["mql_id"]], won)  # reaching won also reaches mql (skipped = count)
        within += (won - reached_mql).total_seconds() <= 30 * 86400
    (row,) = _metric(olist[0], "time_to_convert", within_days=30)
    assert (row["from_stage"], row["to_stage"]) == ("mql", "won")
    assert (row["entered"], row["mature"], row["reached_within"], row["reached"]) == (8000, 8000, within, 842)
    assert within == 547
