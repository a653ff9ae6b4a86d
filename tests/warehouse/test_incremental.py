"""Incremental refresh: loading a log in batches, the models refreshed for the leads each batch
touches, leaves every model table exactly as one load of the whole log builds it."""

from __future__ import annotations

import csv
import os
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from funnelboard.cli import main
from funnelboard.core.config import load_config
from funnelboard.warehouse.models import ModelError, load_models
from funnelboard.warehouse.pipeline import load_files, rebuild
from tests.conftest import HEADER, NOW, rows, write
from tests.olist import CONFIG as OLIST_CONFIG
from tests.olist import load_olist, olist_files
from tests.oracle.oracle import Event, LeadRow
from tests.oracle.strategies import BASE, config_from_toml, config_text, config_variants, event_logs

TABLES = tuple(m.name for m in load_models().values() if m.materialized == "table")
ATTR_COLUMNS = ("channel", "owner", "lead_score", "amount", "close_date", "currency", "forecast_category")


def write_batch(folder: Path, k: int, events: list[Event], leads: list[LeadRow]) -> tuple[list[Path], list[Path]]:
    """Batch k as an events CSV and a leads CSV (none for an empty side), in the given row order."""
    def iso(t: datetime | None) -> str:
        return "" if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")

    out: tuple[list[Path], list[Path]] = ([], [])
    if events:
        path = folder / f"events_{k}.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(("lead_id", "stage", "entered_at", "reason", *ATTR_COLUMNS))
            for e in events:
                w.writerow((e.lead_id, e.stage, iso(e.entered_at), e.reason or "", *(e.attrs.get(a) or "" for a in ATTR_COLUMNS)))
        out[0].append(path)
    if leads:
        path = folder / f"leads_{k}.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(("lead_id", "created_at", *ATTR_COLUMNS))
            for r in leads:
                w.writerow((r.lead_id, iso(r.created_at), *(r.attrs.get(a) or "" for a in ATTR_COLUMNS)))
        out[1].append(path)
    return out


def model_tables(db: Path) -> dict[str, tuple[list[str], Counter]]:
    """Every model table's columns and its rows as a multiset."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: ([d[0] for d in con.execute(f"describe {t}").fetchall()], Counter(con.execute(f"select * from {t}").fetchall()))
                for t in TABLES}
    finally:
        con.close()


def assert_same_models(incremental: Path, full: Path) -> None:
    got, want = model_tables(incremental), model_tables(full)
    for table in TABLES:
        assert got[table][0] == want[table][0], f"{table}: columns {got[table][0]} vs {want[table][0]}"
        extra, missing = got[table][1] - want[table][1], want[table][1] - got[table][1]
        assert not extra and not missing, f"{table}: rows only after the batches {list(extra)[:3]}, only in one load {list(missing)[:3]}"


def load_in_batches(folder: Path, batches: list[tuple[list[Event], list[LeadRow]]], config) -> tuple[Path, Path, list[str]]:
    """Load the batches one after another into one warehouse, and all their files in one load into
    another; return both and how each batch's models were built."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [write_batch(folder, k, ev, ld) for k, (ev, ld) in enumerate(batches)]
    inc, full = folder / "batches.duckdb", folder / "one.duckdb"
    builds = []
    for ev_files, ld_files in files:
        if ev_files or ld_files:
            builds.append(load_files(inc, ev_files, config, leads=ld_files, now=NOW).build)
    # One load of every file, in the same order per table: the file ids that break ties among
    # events (and among leads rows) at one instant keep their order.
    load_files(full, [p for ev, _ in files for p in ev], config, leads=[p for _, ld in files for p in ld], now=NOW)
    return inc, full, builds


# ---- a worked example, small enough for the fast lane -------------------------------------------


def ev(lead: str, stage: str, day: float, reason: str | None = None, **attrs: str) -> Event:
    return Event(lead, stage, BASE + timedelta(days=day), reason, attrs={"channel": "inbound", **attrs})


MONEY = config_text("UTC", "count", 0, 2, None, money="crm")

WEEK_1 = [
    ev("A", "lead", 0), ev("A", "mql", 1), ev("A", "sql", 3), ev("A", "opportunity", 5, amount="1000", close_date="2024-02-29", currency="EUR",
                                                                forecast_category="Commit"),
    ev("B", "lead", 2, channel="referral"), ev("B", "mql", 4),
    ev("C", "lead", 1), ev("C", "disqualified", 2, "  Bad   FIT "),
    ev("D", "mql", 6), ev("D", "sql", 8),  # D's sql spell is open at the latest event: fct_open_spells holds it
]
WEEK_2 = [
    ev("A", "proposal", 9, amount="1200", close_date="2024-03-31"),     # A moves on, its deal grows and slips
    ev("B", "lead", 3),                                                  # earlier than B's mql: an out-of-order append
    ev("B", "sql", 4),                                                   # at the same instant as B's mql
    ev("C", "lead", 1),                                                  # exactly a row of week 1: a duplicate
    ev("E", "lead", 20), ev("E", "nurture", 21, "Timing"),               # a new lead, and the latest event moves on
]
LEADS_2 = [LeadRow("B", BASE, attrs={"owner": "ana", "channel": "events"}), LeadRow("F", BASE + timedelta(days=19), attrs={"lead_score": "90"})]


@pytest.mark.slow
def test_two_batches_equal_one_load_of_both(tmp_path):
    config = config_from_toml(MONEY)
    inc, full, builds = load_in_batches(tmp_path, [(WEEK_1, []), (WEEK_2, LEADS_2)], config)
    # the second batch touched A, B (events and a leads row), E and F; C's only row was a duplicate
    assert builds == ["full", "incremental: 4 leads"]
    assert_same_models(inc, full)
    assert rows(inc, "select value from meta where key = 'last_build'") == [("incremental: 4 leads",)]
    # what the refresh had to get right: B's lead row won, the open spells follow the new latest event
    assert rows(inc, "select channel, owner from fct_leads where lead_id = 'B'") == [("events", "ana")]
    assert rows(inc, "select distinct open_at from fct_open_spells") == [(BASE + timedelta(days=21),)]
    assert rows(inc, "select count(*) from fct_pipeline_moves where lead_id = 'A' and amount_after = 1200") == [(1,)]


@pytest.mark.slow
def test_a_latest_event_that_moves_back_rebuilds_the_open_spells_whole(tmp_path):
    """Z's sql spell at day 20 is the latest; a backfilled sql event at day 15 merges into it, so the
    latest spell start moves back to day 15 and Y's mql spell (closed on day 9) enters the 7 days."""
    import io

    from funnelboard.core.progress import Progress

    first = write_batch(tmp_path, 0, [ev("Y", "mql", 1), ev("Y", "sql", 9), ev("Z", "mql", 10), ev("Z", "sql", 20)], [])[0]
    second = write_batch(tmp_path, 1, [ev("Z", "sql", 15)], [])[0]
    inc, full, out = tmp_path / "batches.duckdb", tmp_path / "one.duckdb", io.StringIO()
    load_files(inc, first, load_config(None), now=NOW)
    assert rows(inc, "select count(*) from fct_open_spells where lead_id = 'Y'") == [(1,)]
    load_files(inc, second, load_config(None), now=NOW, progress=Progress(out))
    assert "refreshing marts/fct_open_spells (window)" in out.getvalue() and "building marts/fct_open_spells" in out.getvalue()
    load_files(full, first + second, load_config(None), now=NOW)
    assert_same_models(inc, full)
    assert rows(inc, "select stage from fct_open_spells where lead_id = 'Y' order by spell_no") == [("mql",), ("sql",)]


@pytest.mark.slow
def test_replace_refreshes_the_leads_of_the_rows_it_removes(tmp_path):
    config = load_config(None)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_batch(tmp_path, 0, WEEK_1, [])[0][0].rename(first)
    write_batch(tmp_path, 1, WEEK_2, [])[0][0].rename(second)
    db = tmp_path / "wh.duckdb"
    load_files(db, [first], config, now=NOW)
    load_files(db, [second], config, now=NOW)
    # b.csv again with E gone and G new: E's rows are deleted, so E is refreshed (to nothing)
    write_batch(tmp_path, 2, [e for e in WEEK_2 if e.lead_id != "E"] + [ev("G", "lead", 15)], [])[0][0].rename(second)
    report = load_files(db, [second], config, replace=True, now=NOW)
    assert report.build == "incremental: 4 leads"  # A, B and G from the new file (C's row is a duplicate), E from the old one
    assert rows(db, "select count(*) from fct_leads where lead_id = 'E'") == [(0,)]
    reference = tmp_path / "one.duckdb"
    load_files(reference, [first, second], config, now=NOW)
    assert_same_models(db, reference)


@pytest.mark.slow
def test_a_load_with_another_config_builds_in_full_and_says_why(tmp_path):
    import io

    from funnelboard.core.progress import Progress

    inc = tmp_path / "wh.duckdb"
    load_files(inc, write_batch(tmp_path, 0, WEEK_1, [])[0], load_config(None), now=NOW)
    other = config_from_toml(config_text("UTC", "strict", 0, 2, None))
    out = io.StringIO()
    report = load_files(inc, write_batch(tmp_path, 9, WEEK_2, [])[0], other, now=NOW, progress=Progress(out))
    assert report.build == "full"
    assert "building the models in full: the configuration changed since the last build" in out.getvalue()
    assert rows(inc, "select value from meta where key = 'last_build'") == [("full",)]


@pytest.mark.slow
def test_build_is_a_no_op_when_the_models_are_current_and_full_rebuilds(tmp_path):
    inc = tmp_path / "wh.duckdb"
    load_files(inc, write_batch(tmp_path, 0, WEEK_1, [])[0], load_config(None), now=NOW)
    before = os.stat(inc).st_ino
    assert rebuild(inc, load_config(None)).how is None
    assert os.stat(inc).st_ino == before, "nothing to rebuild: nothing published"
    result = CliRunner().invoke(main, ["build", "--db", str(inc), "--full"])
    assert result.exit_code == 0 and "built 7 models" in result.output, result.output
    assert os.stat(inc).st_ino != before
    assert rows(inc, "select value from meta where key = 'last_build'") == [("full",)]
    again = CliRunner().invoke(main, ["build", "--db", str(inc)])
    assert again.exit_code == 0 and "are up to date" in again.output, again.output


def test_full_is_for_duckdb_only(tmp_path):
    result = CliRunner().invoke(main, ["build", "--engine", "spark", "--full", "--events", "e.csv", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--full is for --engine duckdb" in result.output and "Traceback" not in result.output


# ---- the refresh key, checked when the models load -------------------------------------------------

GOOD = 'description = "d"\ngrain = "g"\n'
WINDOW = GOOD + 'refresh = "window"\n[columns]\nlead_id = ""\n[tests]\nunique = [["lead_id"]]\n'
LATEST = "with g as (select max(entered_at) as at from raw_events) "


@pytest.mark.parametrize(
    "sql,meta,message",
    [
        ("select lead_id from raw_events", GOOD + 'refresh = "lead"\n[columns]\nlead_id = ""\n',
         "model m has refresh = \"lead\": use \"by_lead\", \"window\" or \"full\"."),
        ("select 1 as x from raw_events", GOOD + 'refresh = "by_lead"\n[columns]\nx = ""\n',
         "model m has refresh = \"by_lead\" but no lead_id column: make it \"full\"."),
        ("select lead_id from load_ledger as l, raw_events", GOOD + 'refresh = "by_lead"\n[columns]\nlead_id = ""\n',
         "model m has refresh = \"by_lead\" but reads load_ledger, which is not split by lead: make it \"full\"."),
        ("select lead_id from f", GOOD + 'refresh = "by_lead"\n[columns]\nlead_id = ""\n',
         "model m has refresh = \"by_lead\" but reads f, which is not split by lead: make it \"full\"."),
        ("select e.lead_id from raw_events as e join raw_leads as l on l.lead_id = e.lead_id", WINDOW,
         "model m has refresh = \"window\" but reads 2 tables split by lead, not one: make it \"full\"."),
        ("select lead_id from raw_events", WINDOW,
         "model m has refresh = \"window\" but has no CTE that aggregates every lead's rows: make it \"full\"."),
        ("with g as (select max(entered_at) as at from raw_events), x as (select e.lead_id from raw_events as e, g where e.entered_at = g.at) "
         "select x.lead_id from x", WINDOW,
         "model m has refresh = \"window\" but reads its global g elsewhere than in its final SELECT: make it \"full\"."),
        (LATEST + "select e.lead_id, g.at - e.entered_at as age from raw_events as e, g", WINDOW,
         "model m has refresh = \"window\" but its column age computes with a global: make it \"full\"."),
        (LATEST + "select e.lead_id, count(*) as n from raw_events as e, g group by e.lead_id", WINDOW,
         "model m has refresh = \"window\" but its final SELECT has GROUP: make it \"full\"."),
        (LATEST + "select e.lead_id, g.at from raw_events as e, g", WINDOW.replace("[tests]\nunique = [[\"lead_id\"]]\n", ""),
         "model m has refresh = \"window\" but declares no unique key with lead_id in [tests]: make it \"full\"."),
        ("select lead_id from raw_events", GOOD + 'refresh = "by_lead"\nmaterialized = "ephemeral"\n[columns]\nlead_id = ""\n',
         "model m has materialized = \"ephemeral\": use \"table\", \"view\" or \"temporary\"."),
        ("select lead_id from raw_events", GOOD + 'materialized = "temporary"\n[columns]\nlead_id = ""\n',
         "model m is temporary but not refresh = \"by_lead\": make it a \"table\"."),
    ],
)
def test_a_wrong_refresh_key_is_one_sentence(tmp_path, sql, meta, message):
    root = tmp_path / "queries"
    for layer in ("staging", "intermediate", "marts"):
        (root / layer).mkdir(parents=True)
    (root / "marts" / "m.sql").write_text(sql)
    (root / "marts" / "m.toml").write_text(meta)
    (root / "intermediate" / "f.sql").write_text("select lead_id from raw_events")  # refresh "full" when not given
    (root / "intermediate" / "f.toml").write_text(GOOD + "[columns]\nlead_id = \"\"\n")
    with pytest.raises(ModelError) as err:
        load_models(root)
    assert str(err.value) == message


def test_a_temporary_model_read_whole_is_refused(tmp_path):
    root = tmp_path / "queries"
    for layer in ("staging", "intermediate", "marts"):
        (root / layer).mkdir(parents=True)
    (root / "intermediate" / "t.sql").write_text("select lead_id from raw_events")
    (root / "intermediate" / "t.toml").write_text(GOOD + 'refresh = "by_lead"\nmaterialized = "temporary"\n[columns]\nlead_id = ""\n')
    (root / "marts" / "m.sql").write_text("select count(*) as n from t")
    (root / "marts" / "m.toml").write_text(GOOD + '[columns]\nn = ""\n')
    with pytest.raises(ModelError) as err:
        load_models(root)
    assert str(err.value) == "model t is temporary but m reads it whole: make it a \"table\"."


@pytest.mark.slow
def test_temporary_models_are_not_stored_and_an_older_stored_one_goes(tmp_path):
    """The intermediates live only while a build runs; a warehouse built when they were tables loses
    them at its next (full) build, and a refresh, which reads only their touched rows, still equals a full load."""
    temporary = {m.name for m in load_models().values() if m.materialized == "temporary"}
    assert temporary == {"int_spells", "int_lead_attributes"}
    db = tmp_path / "wh.duckdb"
    load_files(db, [write(tmp_path / "a.csv", HEADER + "\nA,lead,2024-01-01T00:00:00,,,\nB,lead,2024-01-02T00:00:00,,,\n")],
               load_config(None), now=NOW)
    stored = "select table_name from information_schema.tables where table_schema = 'main'"
    assert not temporary & {name for (name,) in rows(db, stored)}
    con = duckdb.connect(str(db))
    con.execute("create table int_spells as select 1 as x")  # as an older funnelboard stored it
    con.execute("update meta set value = 'older' where key = 'models_fingerprint'")
    con.close()
    report = load_files(db, [write(tmp_path / "b.csv", HEADER + "\nA,mql,2024-01-03T00:00:00,,,\n")], load_config(None), now=NOW)
    assert report.build == "full"
    assert not temporary & {name for (name,) in rows(db, stored)}
    assert rows(db, "select lead_id, current_stage from fct_leads order by 1") == [("A", "mql"), ("B", "lead")]


# ---- the property: any log, any batches ------------------------------------------------------------


@st.composite
def batched_logs(draw) -> list[tuple[list[Event], list[LeadRow]]]:
    """An event log (tests/oracle/strategies.py) cut into 2-4 batches: either at random (events of
    one lead in any batches, earlier ones after later ones) or by time (each batch later than the
    one before: the latest event moves every batch); leads rows in any batch; a few rows given
    again, exactly, in another batch."""
    events, leads = draw(event_logs(max_leads=8))
    n = draw(st.integers(2, 4))
    if draw(st.booleans()):
        batch = [draw(st.integers(0, n - 1)) for _ in events]
    else:
        cuts = sorted(draw(st.lists(st.integers(0, len(events)), min_size=n - 1, max_size=n - 1)))
        rank = {i: r for r, i in enumerate(sorted(range(len(events)), key=lambda i: events[i].entered_at))}
        batch = [sum(rank[i] >= c for c in cuts) for i in range(len(events))]
    out: list[tuple[list[Event], list[LeadRow]]] = [([], []) for _ in range(n)]
    for e, k in zip(events, batch):
        out[k][0].append(e)
    for r in leads:
        out[draw(st.integers(0, n - 1))][1].append(r)
    for i in draw(st.lists(st.integers(0, len(events) - 1), max_size=3, unique=True)):
        out[draw(st.integers(0, n - 1))][0].append(events[i])
    # the loader refuses a leads file that dates none of its leads (no created_at, no events yet)
    seen: set[str] = set()
    for ev_rows, ld_rows in out:
        seen |= {e.lead_id for e in ev_rows}
        assume(not ld_rows or any(r.created_at is not None or r.lead_id in seen for r in ld_rows))
    return out


def check_batches(batches, config) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inc, full, builds = load_in_batches(Path(tmp), batches, config)
        assert builds[0] == "full" and all(b.startswith("incremental: ") for b in builds[1:]), builds
        assert_same_models(inc, full)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(batches=batched_logs(), config=config_variants())
def test_any_log_loaded_in_batches_equals_one_load(batches, config):
    check_batches(batches, config)


# ---- the Olist example in three batches ------------------------------------------------------------


@pytest.mark.slow
def test_olist_in_three_batches_equals_one_load(tmp_path):
    """The MQLs in three slices of their first contact date, each with its closed deals (a deal
    joins its MQL in the same command), loaded one after another."""
    mqls_file, deals_file = olist_files()
    with open(mqls_file, newline="", encoding="utf-8") as fh:
        mqls = list(csv.DictReader(fh))
    with open(deals_file, newline="", encoding="utf-8") as fh:
        deals = list(csv.DictReader(fh))
    dates = sorted(m["first_contact_date"] for m in mqls)
    cuts = [dates[len(dates) // 3], dates[2 * len(dates) // 3]]
    db = tmp_path / "batches.duckdb"
    for k in range(3):
        part = [m for m in mqls if sum(m["first_contact_date"] >= c for c in cuts) == k]
        ids = {m["mql_id"] for m in part}
        files = []
        for name, table in (("olist_marketing_qualified_leads_dataset", part), ("olist_closed_deals_dataset", [d for d in deals if d["mql_id"] in ids])):
            path = tmp_path / f"b{k}_{name}.csv"
            with open(path, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=list((mqls if "qualified" in name else deals)[0]))
                w.writeheader()
                w.writerows(table)
            files.append(str(path))
        result = CliRunner().invoke(main, ["load", *files, "--source", "wide", "--config", str(OLIST_CONFIG), "--db", str(db)])
        assert result.exit_code == 0, result.output
        assert ("refreshing the models for the" in result.output) == (k > 0), result.output
    assert_same_models(db, load_olist(tmp_path / "one.duckdb"))
