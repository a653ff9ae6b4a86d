"""`funnelboard init --from EXPORT` drafts a funnel.toml that loads every label of the export, and
`funnelboard check-config` checks one; through click's test runner."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.config import default_config_text, load_config
from tests.conftest import write

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SALESFORCE = [FIXTURES / "salesforce" / f for f in ("Lead.csv", "LeadHistory.csv", "Opportunity.csv", "OpportunityHistory.csv")]
HUBSPOT = [FIXTURES / "hubspot" / f for f in ("pipelines.json", "deal_property_history.csv", "contacts_v3.json",
                                              "deal_contact_associations_v4.json")]
PIPEDRIVE = [FIXTURES / "pipedrive" / f for f in ("stages.json", "deal_flow.json", "deals_export.csv")]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def _quarantine(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("select reason, count(*) from quarantine group by reason").fetchall())
    finally:
        con.close()


def _events(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select count(*) from raw_events").fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize(("files", "source", "printed", "stages"), [
    ([FIXTURES / "draft" / "crm_export.csv"], None,
     ["'Closed Lost'", "2 rows", "-> lost (outcome, a guess)", "Channel", "segment candidate", "Lead Score", "numeric"],
     ["new", "mql", "sql", "proposal_sent", "won"]),
    ([FIXTURES / "draft" / "crm_semicolon.csv"], None,
     ["delimiter ';'", "'Signed'", "-> signed (the win)", "Company", "one per lead"], ["lead", "demo", "offer", "signed"]),
    ([FIXTURES / "draft" / "deals_wide.csv"], "wide", ["--source wide", "'lost'", "Source"], ["created", "demo", "won"]),
    (SALESFORCE, "salesforce", ["'Closed - Not Converted'", "-> disqualified (outcome, a guess)"], None),
    (HUBSPOT, "hubspot", ["'Marketing Qualified Lead'", "-> mql"], None),
    (PIPEDRIVE, "pipedrive", ["'Negotiations Started'", "'Lost'"], None),
])
def test_a_draft_loads_the_same_export_without_unknown_stages(tmp_path, files, source, printed, stages):
    out, db = tmp_path / "funnel.toml", tmp_path / "wh.duckdb"
    with_source = ["--source", source] if source else []
    result = run("init", "--from", *files, *with_source, "--out", out)
    assert result.exit_code == 0, result.output
    for text in (*printed, "stage labels, in the order journeys take them", f"wrote the draft {out}"):
        assert text in result.output, (text, result.output)
    config = load_config(out)
    if stages:
        assert list(config.stages) == stages
    loaded = run("load", *files, *with_source, "--config", out, "--db", db, "--quiet")
    assert loaded.exit_code == 0, loaded.output
    assert "unknown stage labels" not in loaded.output
    assert "unknown_stage" not in _quarantine(db)
    assert _events(db) > 0


def test_more_exports_follow_from(tmp_path):
    a = write(tmp_path / "a.csv", "lead_id,stage,entered_at\nL1,Lead,2024-01-01\nL1,Demo,2024-01-02\n")
    b = write(tmp_path / "b.csv", "lead_id,stage,entered_at\nL2,Lead,2024-01-01\nL2,Won,2024-01-05\n")
    result = run("init", "--from", a, b, "--out", tmp_path / "f.toml")
    assert result.exit_code == 0, result.output
    assert "read a.csv, b.csv" in result.output
    assert load_config(tmp_path / "f.toml").stages == ("lead", "demo", "won")


def test_a_draft_never_overwrites_without_force(tmp_path):
    out = write(tmp_path / "funnel.toml", "# mine\n")
    src = FIXTURES / "draft" / "crm_export.csv"
    refused = run("init", "--from", src, "--out", out)
    assert refused.exit_code == 2
    assert refused.output.strip() == f"error: '{out}' already exists: pass --force to overwrite it."
    assert out.read_text() == "# mine\n"
    forced = run("init", "--from", src, "--out", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert load_config(out).stages[-1] == "won"


def test_plain_init_still_writes_the_built_in_config(tmp_path):
    out = tmp_path / "funnel.toml"
    result = run("init", "--out", out)
    assert result.exit_code == 0
    assert out.read_text() == default_config_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "missing.csv"], "events file 'missing.csv' does not exist."),
    (["--from", "export.xlsx"], "cannot tell the format of 'export.xlsx'"),
    (["events.csv"], "give the exports to draft from with --from"),
    (["--source", "wide"], "--source says what the exports are: give them with --from FILE."),
    (["--from", "events.csv", "--source", "nope"], "unknown --source 'nope'"),
    (["--from", "nostage.csv"], "cannot tell which column holds the stage labels"),
    (["--from", "events.csv", "--source", "salesforce"], "is not an object this adapter reads"),
    (["--from", "."], "cannot tell the format of '.'"),
    (["--from", "events.csv", "--out", "nowhere/draft.toml"], "the folder 'nowhere' does not exist"),
])
def test_init_from_mistakes_are_one_sentence_and_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "export.xlsx", "x")
    write(tmp_path / "events.csv", "lead_id,stage,entered_at\nL1,Lead,2024-01-01\nL1,Won,2024-01-02\n")
    write(tmp_path / "nostage.csv", "id,channel,when\n1,web,2024-01-01\n")
    result = run("init", *args, *([] if "--out" in args else ["--out", "draft.toml"]))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [result.output.strip()]
    assert not (tmp_path / "draft.toml").exists()


def test_check_config_says_ok_with_the_stages_key_rate_and_segments(tmp_path):
    out = tmp_path / "funnel.toml"
    assert run("init", "--from", FIXTURES / "draft" / "crm_export.csv", "--out", out).exit_code == 0
    result = run("check-config", "--config", out)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == 'ok: 5 stages (new, mql, sql, proposal_sent, won), key rate mql → sql ("SQL rate"), 2 segments'


def test_check_config_uses_the_funnel_toml_of_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = run("check-config")
    assert missing.exit_code == 2
    assert missing.output.strip() == ("error: there is no funnel.toml in this folder: pass --config FILE, or write one with "
                                      "`funnelboard init`.")
    write(tmp_path / "funnel.toml", default_config_text())
    found = run("check-config")
    assert found.exit_code == 0, found.output
    assert found.output.startswith("ok: 6 stages (lead, mql, sql, opportunity, proposal, won), key rate mql → sql")
    assert found.output.strip().endswith("7 segments")


def test_check_config_prints_every_problem_on_its_own_line(tmp_path):
    bad = write(tmp_path / "bad.toml", """
[funnel]
stages = ["lead", "Won"]
timezone = "Mars/Base"
[labels]
"Closed Won" = "win"
[review]
key_rate = { from = "lead", to = "nowhere" }
[colums]
""")
    result = run("check-config", "--config", bad)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    expected = ["unknown section [colums]", "stage 'Won'", "unknown time zone 'Mars/Base'", "maps label 'Closed Won' to 'win'",
                "key_rate from 'lead' to 'nowhere'"]
    assert len(lines) == len(expected), result.output
    for text in expected:
        assert sum(text in line for line in lines) == 1, (text, result.output)
    assert all(line.startswith(f"config '{bad}' ") and line.endswith(".") for line in lines), result.output
    assert "ok:" not in result.output


@pytest.mark.parametrize(("name", "text", "message"), [
    ("nope.toml", None, "does not exist"),
    ("broken.toml", "[funnel\n", "is not valid TOML"),
])
def test_check_config_of_a_missing_or_broken_file(tmp_path, name, text, message):
    path = tmp_path / name
    if text is not None:
        write(path, text)
    result = run("check-config", "--config", path)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
