"""Pipeline value on a hand-worked log (every figure worked out in the comments, from docs/metrics.md),
through the loader, the marts and the metrics, and the oracle beside them; then the properties that
hold on any data: the change reconciles, and a week's snapshot is the change's end."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from tests.oracle import oracle_money
from tests.oracle.oracle import Event, Oracle
from tests.queries.test_oracle_agreement import assert_rows_equal, load_log

CONFIG = replace(load_config(None), stage_slas=(), sla_by=None)  # pipeline from opportunity; proposal 0.5, opportunity 0.2
WEEK = (datetime(2024, 1, 8), datetime(2024, 1, 15))  # Monday to Monday, UTC
_line = iter(range(2, 10_000))


def ev(lead, stage, day, hour=0, amount=None, reason=None, channel="inbound") -> Event:
    return Event(lead, stage, datetime(2024, 1, day, hour), reason, 1, next(_line), {"channel": channel, "amount": amount})


LOG = [
    # D1: created in the week at 100 (opportunity), raised to 150 on the same stage, cut to 120 on the move to
    # proposal, won on the 12th: created 100, increased 50, decreased 30, won 120
    ev("D1", "sql", 2), ev("D1", "opportunity", 8, 9, "100"), ev("D1", "opportunity", 9, 9, "150"),
    ev("D1", "proposal", 10, 9, "120"), ev("D1", "won", 12, 9),
    # D2: in the pipeline at 50 before the week, lost in it: start 50, lost 50
    ev("D2", "opportunity", 3, 0, "50"), ev("D2", "lost", 9, 12, reason="Price"),
    # D3: in at 70 before the week, nurtured in it: start 70, exited 70
    ev("D3", "proposal", 4, 0, "70", channel="outbound"), ev("D3", "nurture", 11, channel="outbound"),
    # D4: in at 30 before the week and still there: start 30, end 30
    ev("D4", "proposal", 5, 0, "30", channel="outbound"),
    # D5: an amount at SQL (not pipeline yet); enters at opportunity in the week: created 40, end 40
    ev("D5", "sql", 6, 0, "40"), ev("D5", "opportunity", 13),
    # D6: enters after the week: not counted in it
    ev("D6", "opportunity", 16, 0, "999"),
]
# start = 50 + 70 + 30 = 150; end = 30 + 40 = 70; 150 + 140 + 50 - 30 - 120 - 50 - 70 = 70


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    return load_log(tmp_path_factory.mktemp("pipeline"), LOG, [], CONFIG)


def test_the_week_s_change_by_hand(wh):
    (row,) = run_metric(Gateway(wh), "pipeline_changes", MetricRequest(start=WEEK[0], end=WEEK[1], as_of=datetime(2024, 1, 20)))
    assert (row["start_deals"], row["start"]) == (3, 150.0)
    assert (row["n_created"], row["created"], row["n_increased"], row["increased"]) == (2, 140.0, 1, 50.0)
    assert (row["n_decreased"], row["decreased"], row["n_won"], row["won"]) == (1, 30.0, 1, 120.0)
    assert (row["n_lost"], row["lost"], row["n_exited"], row["exited"]) == (1, 50.0, 1, 70.0)
    assert (row["end_deals"], row["end"]) == (2, 70.0)
    assert row["currency"] == "USD"
    oracle = Oracle(LOG, CONFIG, as_of=datetime(2024, 1, 20))
    assert oracle_money.pipeline_changes(oracle, *WEEK) == [row]


def test_by_segment_and_as_of(wh):
    rows = run_metric(Gateway(wh), "pipeline_changes", MetricRequest(start=WEEK[0], end=WEEK[1], as_of=datetime(2024, 1, 20), segment="channel"))
    by = {r["channel"]: r for r in rows}
    assert (by["inbound"]["start"], by["inbound"]["end"]) == (50.0, 40.0)  # D2 out, D1 won, D5 in
    assert (by["outbound"]["start"], by["outbound"]["exited"], by["outbound"]["end"]) == (100.0, 70.0, 30.0)
    # seen on the 10th at 00:00, D1's cut (10th 09:00) and what follows are not known yet
    (early,) = run_metric(Gateway(wh), "pipeline_changes", MetricRequest(start=WEEK[0], end=WEEK[1], as_of=datetime(2024, 1, 10)))
    # D1 at 150, D3 70 and D4 30 still in; D2 lost on the 9th
    assert (early["created"], early["increased"], early["won"], early["lost"], early["end"]) == (100.0, 50.0, 0.0, 50.0, 250.0)


def test_weekly_snapshots_by_hand(wh):
    rows = run_metric(Gateway(wh), "pipeline_snapshot", MetricRequest(start=datetime(2024, 1, 1), end=WEEK[1], as_of=datetime(2024, 1, 20)))
    got = {(str(r["week"]), r["stage"]): (r["deals"], r["value"], r["weighted_value"]) for r in rows}
    # end of the week of Jan 1 (Jan 8 00:00): D2 opportunity 50; D3 70 and D4 30 in proposal
    assert got[("2024-01-01", "opportunity")] == (1, 50.0, 10.0)
    assert got[("2024-01-01", "proposal")] == (2, 100.0, 50.0)
    # end of the week of Jan 8 (Jan 15 00:00): D5 opportunity 40, D4 proposal 30
    assert got[("2024-01-08", "opportunity")] == (1, 40.0, 8.0)
    assert got[("2024-01-08", "proposal")] == (1, 30.0, 15.0)
    assert len(rows) == 4


def test_without_an_amount_column_money_is_one_sentence(tmp_path):
    config = replace(CONFIG, amount_column=None)
    db = load_log(tmp_path, LOG, [], config)
    out = CliRunner().invoke(main, ["query", "pipeline_changes", "--db", str(db)])
    assert out.exit_code != 0 and "pipeline value needs amounts: name the amount column under [attributes] amount" in out.output
    assert "Traceback" not in out.output


@pytest.mark.parametrize("weeks_back", [1, 3, 9])
@pytest.mark.parametrize("closing", [None, "quarter"])
def test_on_the_demo_the_change_reconciles_and_ends_at_the_snapshot(demo, weeks_back, closing):
    g = demo
    (week,) = run_metric(g, "review_week", MetricRequest())
    monday = week["week"] - timedelta(weeks=weeks_back)
    start, end = datetime.combine(monday, datetime.min.time()), datetime.combine(monday + timedelta(weeks=1), datetime.min.time())
    for row in run_metric(g, "pipeline_changes", MetricRequest(start=start, end=end, segment="channel", closing=closing)):
        moves = row["created"] + row["pulled_in"] + row["increased"] - row["decreased"] - row["pushed_out"] - row["won"] - row["lost"] - row["exited"]
        assert row["start"] + moves == pytest.approx(row["end"], rel=1e-12, abs=1e-6)
        assert (row["start_deals"] + row["n_created"] + row["n_pulled_in"] - row["n_pushed_out"] - row["n_won"] - row["n_lost"] - row["n_exited"]
                == row["end_deals"])
    (total,) = run_metric(g, "pipeline_changes", MetricRequest(start=start, end=end, closing=closing))
    snapshot = run_metric(g, "pipeline_snapshot", MetricRequest(start=start, end=end, closing=closing))
    at_end = [r for r in snapshot if r["week"] == monday]
    assert sum(r["value"] for r in at_end) == pytest.approx(total["end"], rel=1e-12)
    assert sum(r["deals"] for r in at_end) == total["end_deals"] > 0
    assert total["n_created"] + total["n_won"] + total["n_lost"] + total["n_exited"] > 0  # a week with moves


def test_an_amount_that_is_not_a_number_is_quarantined_not_dropped(tmp_path):
    from funnelboard.warehouse.pipeline import load_files
    from tests.conftest import NOW, rows

    events = tmp_path / "events.csv"
    events.write_text("lead_id,stage,entered_at,reason,amount\nD1,opportunity,2024-01-02,,1000\nD1,proposal,2024-01-03,,\"1,200\"\n"
                      "D1,proposal,2024-01-04,,1300\n")
    db = tmp_path / "wh.duckdb"
    report = load_files(db, [events], CONFIG, now=NOW)
    assert (report.files[0].rows_loaded, report.files[0].rows_quarantined) == (2, 1)
    assert rows(db, "select reason, line, detail from quarantine") == [
        ("unparseable_amount", 3, 'amount "1,200" is not a number (write 1200.50: no currency, no thousands separators)')]
    (row,) = run_metric(Gateway(db), "pipeline_changes", MetricRequest(start=datetime(2024, 1, 1), end=datetime(2024, 1, 8)))
    assert (row["created"], row["increased"], row["end"]) == (1000.0, 300.0, 1300.0)


def test_the_deals_behind_each_bar_add_up_to_it(wh, demo):
    req = MetricRequest(start=WEEK[0], end=WEEK[1], as_of=datetime(2024, 1, 20))
    deals = run_metric(Gateway(wh), "pipeline_deals", req)
    # by hand: D2, D3, D4 at the start; D1 and D5 created; D1 up then down and won; D2 lost; D3 exited; D4, D5 at the end
    assert [(d["change"], d["lead_id"], d["value"]) for d in deals] == [
        ("start", "D2", 50.0), ("start", "D3", 70.0), ("start", "D4", 30.0), ("created", "D1", 100.0), ("created", "D5", 40.0),
        ("increased", "D1", 50.0), ("decreased", "D1", 30.0), ("won", "D1", 120.0), ("lost", "D2", 50.0), ("exited", "D3", 70.0),
        ("end", "D4", 30.0), ("end", "D5", 40.0)]
    assert next(d for d in deals if d["change"] == "decreased")["amount_before"] == 150.0
    assert [d["lead_id"] for d in run_metric(Gateway(wh), "pipeline_deals", replace(req, change="won"))] == ["D1"]
    for g, request in ((Gateway(wh), req), (demo, MetricRequest())):
        (row,) = run_metric(g, "pipeline_changes", request)
        deals = run_metric(g, "pipeline_deals", request)
        for kind, value, count in (("start", "start", "start_deals"), ("end", "end", "end_deals"),
                                   *((k, k, f"n_{k}") for k in oracle_money.KINDS)):
            of_kind = [d for d in deals if d["change"] == kind]
            assert len(of_kind) == row[count], kind
            assert sum(d["value"] for d in of_kind) == pytest.approx(row[value], rel=1e-12), kind


def test_a_bar_that_is_not_one_is_one_sentence(wh):
    out = CliRunner().invoke(main, ["query", "pipeline_deals", "--change", "pushed", "--db", str(wh)])
    assert out.exit_code != 0 and "--change 'pushed' is not a bar of the pipeline waterfall; expected one of start, created" in out.output


def money(lead, stage, day, amount=None, close=None, currency=None, category=None) -> Event:
    return Event(lead, stage, datetime(2024, 1, day, 9), None, 1, next(_line),
                 {"channel": "inbound", "amount": amount, "close_date": close, "currency": currency, "forecast_category": category})


# Close dates and currencies in the week of Jan 8; rates EUR 1.08, GBP 1.27 (the default config's), window Q1 2024
MONEY_LOG = [
    # E1: 100 closing in April (outside Q1); its close date pulled into March on the 9th: pulled in 100
    money("E1", "opportunity", 3, "100", "2024-04-15"), money("E1", "opportunity", 9, close="2024-03-20"),
    # E2: EUR 200 (216) closing in February; pushed to May on the 10th: pushed out 216
    money("E2", "proposal", 4, "200", "2024-02-10", "EUR"), money("E2", "proposal", 10, close="2024-05-01"),
    # E3: GBP 50 (63.5) closing in March; raised to GBP 60 (76.2) on the move to proposal: increased 12.7
    money("E3", "opportunity", 5, "50", "2024-03-01", "GBP"), money("E3", "proposal", 11, "60"),
    # E4: 10 without a close date: in no window, created 10 without one
    money("E4", "opportunity", 9, "10"),
    # E5: 80 closing at the end of January, won on the 12th (its close date becomes that day): won 80
    money("E5", "opportunity", 2, "80", "2024-01-31"), money("E5", "won", 12, close="2024-01-12"),
]


@pytest.fixture(scope="module")
def money_wh(tmp_path_factory):
    return load_log(tmp_path_factory.mktemp("money"), MONEY_LOG, [], CONFIG)


@pytest.mark.parametrize("closing,expected", [
    # Q1: start E2 216 + E3 63.5 + E5 80; end E1 100 + E3 76.2
    ("quarter", {"start": 359.5, "created": 0.0, "pulled_in": 100.0, "increased": 12.7, "pushed_out": 216.0, "won": 80.0, "end": 176.2,
                 "start_deals": 3, "end_deals": 2}),
    # every deal: start E1 100 + E2 216 + E3 63.5 + E5 80; end E1 100 + E2 216 + E3 76.2 + E4 10
    (None, {"start": 459.5, "created": 10.0, "pulled_in": 0.0, "increased": 12.7, "pushed_out": 0.0, "won": 80.0, "end": 402.2,
            "start_deals": 4, "end_deals": 4}),
])
def test_close_dates_and_currencies_by_hand(money_wh, closing, expected):
    req = MetricRequest(start=WEEK[0], end=WEEK[1], as_of=datetime(2024, 1, 20), closing=closing)
    (row,) = run_metric(Gateway(money_wh), "pipeline_changes", req)
    assert {k: row[k] for k in expected} == pytest.approx(expected)
    assert (row["closing_from"], row["closing_to"]) == ((datetime(2024, 1, 1).date(), datetime(2024, 3, 31).date()) if closing else (None, None))
    assert_rows_equal([row], oracle_money.pipeline_changes(Oracle(MONEY_LOG, CONFIG, as_of=datetime(2024, 1, 20)), *WEEK, closing=closing), "by hand")
    deals = run_metric(Gateway(money_wh), "pipeline_deals", req)
    if closing:
        pushed = next(d for d in deals if d["change"] == "pushed_out")
        assert (pushed["lead_id"], str(pushed["close_before"]), str(pushed["close_after"]), pushed["currency_after"], pushed["value"]) == (
            "E2", "2024-02-10", "2024-05-01", "EUR", pytest.approx(216.0))


def test_forecast_categories_and_their_moves_by_hand(money_wh):
    req = MetricRequest(start=WEEK[0], end=WEEK[1], as_of=datetime(2024, 1, 20))
    week = {r["category"]: (r["deals"], r["value"]) for r in run_metric(Gateway(money_wh), "forecast", req) if str(r["week"]) == "2024-01-08"}
    # opportunity is pipeline, proposal best case (the default config); closed: E5 won in the week
    assert week == {"omitted": (0, 0.0), "pipeline": (2, 110.0), "best case": (2, pytest.approx(292.2)), "commit": (0, 0.0), "closed": (1, 80.0)}
    moves = [(r["from_category"], r["to_category"], r["deals"], r["from_value"], r["to_value"]) for r in run_metric(Gateway(money_wh), "forecast_moves", req)]
    assert moves == [("(new)", "pipeline", 1, 0.0, 10.0), ("pipeline", "best case", 1, 63.5, pytest.approx(76.2)), ("pipeline", "closed", 1, 80.0, 80.0)]


def test_amounts_in_a_currency_without_a_rate_are_refused_not_summed(tmp_path):
    config = replace(CONFIG, fixed_rates={"EUR": 1.08})
    db = load_log(tmp_path, MONEY_LOG, [], config)
    for metric in ("pipeline_changes", "pipeline_snapshot", "forecast"):
        out = CliRunner().invoke(main, ["query", metric, "--db", str(db)])
        assert out.exit_code != 0 and "Traceback" not in out.output
        assert re.search(r"the pipeline holds amounts in GBP and funnel.toml has no GBP rate to USD for 202\d-\d\d: add one to "
                         r"\[pipeline\] rates or its rates file, so they are converted, not summed", out.output), out.output


def test_a_rates_file_prices_each_month_at_its_rate(tmp_path):
    # GBP at 1.20 in January, 1.30 from February: the same deal is worth 60 then 65
    config = replace(CONFIG, fixed_rates={"EUR": 1.08}, monthly_rates=(("GBP", "2024-01", 1.2), ("GBP", "2024-02", 1.3)))
    db = load_log(tmp_path, [money("G1", "opportunity", 2, "50", "2024-03-01", "GBP")], [], config)
    rows = run_metric(Gateway(db), "pipeline_snapshot", MetricRequest(start=datetime(2024, 1, 22), end=datetime(2024, 2, 12), as_of=datetime(2024, 2, 20)))
    assert [(str(r["week"]), r["value"]) for r in rows] == [("2024-01-22", 60.0), ("2024-01-29", 65.0), ("2024-02-05", 65.0)]


@pytest.mark.parametrize("closing,says", [("soon", "--closing 'soon' is not a close window; expected all, month, quarter, year or FROM:TO"),
                                          ("2024-03-01:2024-01-01", "ends before it starts")])
def test_a_close_window_that_is_not_one_is_one_sentence(money_wh, closing, says):
    out = CliRunner().invoke(main, ["query", "pipeline_changes", "--closing", closing, "--db", str(money_wh)])
    assert out.exit_code != 0 and says in out.output and "Traceback" not in out.output


@pytest.mark.slow
def test_bad_close_dates_currencies_and_categories_are_quarantined(tmp_path):
    from funnelboard.warehouse.pipeline import load_files
    from tests.conftest import NOW, rows

    config = replace(CONFIG, forecast_column="forecast_category")
    events = tmp_path / "events.csv"
    events.write_text("lead_id,stage,entered_at,reason,amount,close_date,currency,forecast_category\n"
                      "D1,opportunity,2024-01-02,,1000,2024-03-31,EUR,Commit\n"
                      "D1,proposal,2024-01-03,,,31/03/2024,,\nD1,proposal,2024-01-04,,,2024-02-30,,\n"
                      "D1,proposal,2024-01-05,,,,euro,\nD1,proposal,2024-01-06,,,,,maybe\n"
                      "D1,proposal,2024-01-07,,,2024-04-30T17:00:00Z,GBP,BEST_CASE\n")
    db = tmp_path / "wh.duckdb"
    report = load_files(db, [events], config, now=NOW)
    assert (report.files[0].rows_loaded, report.files[0].rows_quarantined) == (2, 4)
    assert rows(db, "select reason, line, detail from quarantine order by line") == [
        ("unparseable_close_date", 3, 'close date "31/03/2024" is not a date like 2026-12-31'),
        ("unparseable_close_date", 4, 'close date "2024-02-30" is not a date like 2026-12-31'),
        ("unknown_currency", 5, 'currency "euro" is not an ISO 4217 code such as USD or EUR'),
        ("unknown_forecast_category", 6, 'forecast category "maybe" is not one of omitted, pipeline, best case, commit, closed')]
    (deal,) = run_metric(Gateway(db), "pipeline_deals", MetricRequest(start=datetime(2024, 1, 7), end=datetime(2024, 1, 8), change="end"))
    assert (str(deal["close_after"]), deal["currency_after"], deal["amount_after"]) == ("2024-04-30", "GBP", 1000.0)


def test_close_date_pushes_and_days_slipped_on_the_lists(money_wh):
    g = Gateway(money_wh)
    rows = {r["lead_id"]: r for r in run_metric(g, "leads", MetricRequest(start=datetime(2024, 1, 1), end=WEEK[1], as_of=datetime(2024, 1, 20),
                                                                           from_stage="opportunity", to_stage="won"))}
    # E2 pushed once, Feb 10 -> May 1: 81 days; E1 pulled in, Apr 15 -> Mar 20: no push, -26 days; E4 never had a close date
    assert (rows["E2"]["close_pushes"], rows["E2"]["days_slipped"], rows["E2"]["amount_currency"]) == (1, 81, "EUR")
    assert (rows["E1"]["close_pushes"], rows["E1"]["days_slipped"]) == (0, -26)
    assert (rows["E4"]["close_pushes"], rows["E4"]["days_slipped"]) == (0, None)
    # E5's close date became the day it was won, Jan 31 -> Jan 12: pulled in
    assert (rows["E5"]["close_pushes"], rows["E5"]["days_slipped"]) == (0, -19)


@pytest.mark.parametrize("metric", ["pipeline_snapshot", "pipeline_changes", "forecast", "forecast_moves", "deal_value"])
def test_the_cli_prints_each_money_metric_as_json_with_a_segment_and_a_filter(money_wh, metric):
    import json

    args = ["query", metric, "--from", "2024-01-08", "--to", "2024-01-14", "--as-of", "2024-01-20", "--segment", "channel",
            "--filter", "channel=inbound", "--closing", "quarter", "--format", "json", "--db", str(money_wh)]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    req = MetricRequest(start=datetime(2024, 1, 8), end=datetime(2024, 1, 15), as_of=datetime(2024, 1, 20, 23, 59, 59, 999999), segment="channel",
                        filters=(("channel", "inbound"),), closing="quarter")
    expected = json.loads(json.dumps(run_metric(Gateway(money_wh), metric, req), default=lambda v: v.isoformat()))
    assert rows == expected and rows and all(r["channel"] == "inbound" for r in rows)
