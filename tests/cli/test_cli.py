"""The command line through click's test runner: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import tomllib

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import load_config
from tests.conftest import HEADER, rows, write


def run(*args: str, cwd=None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(main, list(args))
    with runner.isolated_filesystem(temp_dir=cwd):
        return runner.invoke(main, list(args))


@pytest.mark.slow
def test_load_prints_the_row_accounting_and_unknown_labels(tmp_path):
    src = write(tmp_path / "e.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\nL1,mql,2024-01-02,,x,y\nL2,Discovery Call,2024-01-02,,x,y\nL3,sql,never,,x,y\n")
    db = tmp_path / "wh.duckdb"
    result = run("load", str(src), "--db", str(db), "--quiet")
    assert result.exit_code == 0, result.output
    assert "4 rows read = 1 loaded + 2 quarantined + 1 duplicate" in result.output
    assert '"Discovery Call" (1 row)' in result.output
    assert "published load 1" in result.output
    again = run("load", str(src), "--db", str(db), "--quiet")
    assert again.exit_code == 0
    assert "already loaded in load 1" in again.output and "unchanged" in again.output


def test_user_mistakes_exit_2_with_one_line_and_no_traceback(tmp_path):
    db = tmp_path / "wh.duckdb"
    cases = [
        (["load", str(tmp_path / "missing.csv"), "--db", str(db)], "does not exist"),
        (["load", str(write(tmp_path / "e.txt", "x")), "--db", str(db)], "cannot tell the format"),
        (["load", "--db", str(db)], "nothing to load"),
        (["load", str(write(tmp_path / "h.csv", "id,stage\n1,x\n")), "--db", str(db)], "has no 'lead_id' column"),
        (["status", "--db", str(db)], "no warehouse at"),
        (["load", str(write(tmp_path / "ok.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\n")), "--config", str(tmp_path / "nope.toml")], "config file"),
        (["load", str(tmp_path / "ok.csv"), "--config", str(write(tmp_path / "bad.toml", "[funnel]\ntimezone = 'Mars/Base'\n"))], "unknown time zone 'Mars/Base'"),
        (["generate", "--out", str(tmp_path / "x.csv")], "exactly one of --events N or --leads N"),
        (["load", str(tmp_path / "ok.csv"), "--db", str(db), "--config", str(write(tmp_path / "f.toml", '[input]\nmax_future_days = "1; drop table events"\n'))],
         "max_future_days = '1; drop table events'; expected a whole number"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.output
    assert not db.exists()


def test_init_writes_the_default_config_which_loads_back(tmp_path):
    out = tmp_path / "funnel.toml"
    result = run("init", "--out", str(out))
    assert result.exit_code == 0
    assert tomllib.loads(out.read_text())["funnel"]["stages"][0] == "lead"
    assert load_config(out) == load_config(None).__class__(**{**load_config(None).__dict__, "source": str(out)})
    refused = run("init", "--out", str(out))
    assert refused.exit_code == 2 and "already exists" in refused.output


@pytest.mark.slow
def test_a_funnel_toml_in_the_current_folder_is_used(tmp_path):
    write(tmp_path / "funnel.toml", '[labels]\n"discovery call" = "mql"\n')
    write(tmp_path / "e.csv", HEADER + "\nL1,Discovery Call,2024-01-02,,x,y\n")
    runner = CliRunner()
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = runner.invoke(main, ["load", "e.csv", "--db", "wh.duckdb"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert "config: funnel.toml" in result.output
    assert rows(tmp_path / "wh.duckdb", "select stage from raw_events") == [("mql",)]


@pytest.mark.slow
def test_status_reports_loads_reasons_and_range(tmp_path):
    db = tmp_path / "wh.duckdb"
    src = write(tmp_path / "e.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\nL2,sql,2024-03-05 10:00,,x,y\n,sql,2024-03-05,,x,y\n")
    assert run("load", str(src), "--db", str(db), "--quiet").exit_code == 0
    text = run("status", "--db", str(db))
    assert text.exit_code == 0
    assert "events 2 from 2 leads; quarantined 1" in text.output
    assert "2024-01-02 00:00:00 .. 2024-03-05 10:00:00" in text.output
    assert "missing_lead_id: 1" in text.output
    info = json.loads(run("status", "--db", str(db), "--format", "json").output)
    assert info["events"] == 2 and info["quarantine_reasons"] == {"missing_lead_id": 1}
    assert info["files"][0]["rows_read"] == 3


def test_progress_lines_when_not_a_terminal(tmp_path):
    src = write(tmp_path / "e.csv", HEADER + "\nL1,mql,2024-01-02,,x,y\n")
    result = CliRunner().invoke(main, ["load", str(src), "--db", str(tmp_path / "wh.duckdb")])
    assert result.exit_code == 0
    assert "reading and checking e.csv: started" in result.output
    assert "reading and checking e.csv: done in" in result.output
    assert "\r" not in result.output, "no bar redraws off a terminal"


def _demo_db(tmp_path):
    from funnelboard.etl.generate import generate

    events = generate(out=tmp_path / "events.csv", n_leads=1500, seed=5).path
    db = tmp_path / "wh.duckdb"
    assert run("load", str(events), "--db", str(db), "--quiet").exit_code == 0
    return db


@pytest.mark.slow
def test_query_prints_every_metric_in_every_format(tmp_path):
    from funnelboard.warehouse.metrics import REGISTRY

    db = _demo_db(tmp_path)
    listed = run("query", "--list")
    assert listed.exit_code == 0
    a_lead = json.loads(run("query", "leads", "--db", str(db), "--format", "json").output)[0]["lead_id"]
    needs = {"lead_history": ["--lead-id", a_lead]}
    for name in REGISTRY:
        assert name in listed.output
        for fmt in ("table", "csv", "json"):
            result = run("query", name, "--db", str(db), "--format", fmt, *needs.get(name, []))
            assert result.exit_code == 0, (name, fmt, result.output)
            if fmt == "json":
                data = json.loads(result.output)
                assert isinstance(data, list) and data and isinstance(data[0], dict), name


@pytest.mark.slow
def test_query_json_matches_the_metric_and_honours_filters_and_dates(tmp_path):
    from datetime import datetime

    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics import MetricRequest, run_metric

    db = _demo_db(tmp_path)
    out = json.loads(run("query", "conversion", "--db", str(db), "--format", "json", "--filter", "channel=referral", "--from", "2026-06-01", "--to", "2026-06-30").output)
    direct = run_metric(Gateway(db), "conversion", MetricRequest(filters=(("channel", "referral"),), start=datetime(2026, 6, 1), end=datetime(2026, 7, 1)))
    assert out == direct
    assert 0 < out[0]["cohort"]


@pytest.mark.slow
def test_query_mistakes_are_one_line(tmp_path):
    db = _demo_db(tmp_path)
    for args, message in [
        (["query", "nope", "--db", str(db)], "unknown metric 'nope'"),
        (["query", "conversion", "--db", str(db), "--filter", "lead_id=L1"], "unknown segment column 'lead_id'"),
        (["query", "conversion", "--db", str(db), "--from", "01/06/2026"], "is not a date"),
        (["query", "conversion", "--db", str(db), "--from", "2026-06-30", "--to", "2026-06-01"], "the period is empty"),
        (["query", "conversion", "--db", str(db), "--filter", "channel"], "is not COLUMN=VALUE"),
        (["query", "conversion", "--db", str(tmp_path / "none.duckdb")], "no warehouse at"),
        # dates a computer can hold but a period cannot: each was a traceback
        (["query", "conversion", "--db", str(db), "--as-of", "9999-12-31"], "--as-of '9999-12-31' is out of range"),
        (["query", "conversion", "--db", str(db), "--as-of", "9999-12-31T23:59"], "--as-of '9999-12-31T23:59' is out of range"),
        (["query", "conversion", "--db", str(db), "--to", "9999-12-31"], "--to '9999-12-31' is out of range"),
        (["query", "conversion", "--db", str(db), "--from", "0001-01-01"], "--from '0001-01-01' is out of range"),
        (["query", "conversion", "--db", str(db), "--window", "99999999999999999999"], "is not in the range 0<=x<=36500"),
        (["query", "weekly_kpis", "--db", str(db), "--from", "1900-01-01"], "a weekly view shows at most 520"),
    ]:
        result = run(*args)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, (args, result.output)


def test_models_list_and_render(tmp_path):
    listed = run("models", "list")
    assert listed.exit_code == 0 and "marts/fct_leads" in listed.output
    rendered = run("models", "render", "fct_spells", "--dialect", "postgres")
    assert rendered.exit_code == 0 and '"channel"' in rendered.output
    assert run("models", "render", "nope").exit_code == 2


@pytest.mark.slow
def test_build_rebuilds_with_a_new_config(tmp_path):
    db = _demo_db(tmp_path)
    cfg = write(tmp_path / "funnel.toml", "[funnel]\nskipped_stages = \"strict\"\n")
    result = run("build", "--db", str(db), "--config", str(cfg))
    assert result.exit_code == 0, result.output
    strict = rows(db, "select count(*) from fct_leads where reached_mql is distinct from entered_mql")
    assert strict == [(0,)]


@pytest.mark.slow
def test_build_without_a_config_keeps_the_warehouse_s_own(tmp_path, monkeypatch):
    """No --config and no ./funnel.toml: a rebuild keeps the funnel the warehouse was loaded with (the
    built-in demo funnel would turn a two-stage funnel into the demo's six stages)."""
    own = write(tmp_path / "own.toml", '[funnel]\nstages = ["new", "won"]\noutcomes = ["lost"]\n\n[labels]\n"mql" = "new"\n')
    events = write(tmp_path / "events.csv", HEADER + "\nL1,mql,2024-01-02T10:00:00Z,,x,y\nL1,won,2024-01-09T10:00:00Z,,x,y\n")
    db = tmp_path / "wh.duckdb"
    assert run("load", str(events), "--config", str(own), "--db", str(db)).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run("build", "--db", str(db))
    assert result.exit_code == 0 and f"with config {own}" in result.output, result.output
    assert rows(db, "select reached_new is not null, reached_won is not null from fct_leads") == [(True, True)]


@pytest.mark.slow
def test_a_second_load_without_config_keeps_the_warehouse_config(tmp_path, monkeypatch):
    """Appending a week's file with no --config and no ./funnel.toml keeps the funnel the warehouse was
    loaded with: the demo config would map the renamed stages to nothing and quarantine the whole week."""
    cfg = write(tmp_path / "mine.toml", '[funnel]\nstages = ["inbound", "call", "deal"]\noutcomes = ["lost"]\n')
    first = write(tmp_path / "w1.csv", HEADER + "\nL1,inbound,2024-01-02,,x,y\n")
    second = write(tmp_path / "w2.csv", HEADER + "\nL1,call,2024-01-09,,x,y\nL2,inbound,2024-01-09,,x,y\n")
    db = tmp_path / "wh.duckdb"
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "funnel.toml").exists()
    assert run("load", str(first), "--config", str(cfg), "--db", str(db), "--quiet").exit_code == 0
    result = run("load", str(second), "--db", str(db))
    assert result.exit_code == 0, result.output
    assert f"config: {cfg}" in result.output
    assert "2 rows read = 2 loaded + 0 quarantined" in result.output
    assert rows(db, "select lead_id, stage from raw_events order by all") == [("L1", "call"), ("L1", "inbound"), ("L2", "inbound")]
