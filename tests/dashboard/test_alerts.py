"""`funnelboard alerts check`: [[alerts]] against the CLI's own weekly numbers (a threshold just
either side of a figure fires or not), weeks in a row, filters, a key rate still converting (never
fires), the state that makes a firing alert news once, exit codes for cron, and the email of the news
through a real SMTP server on loopback."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from tests.dashboard.test_report_delivery import smtp_server  # noqa: F401 - the fixture


def cli(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env or {})


def kpis(db, monday: date, *filters: str) -> dict:
    out = cli("query", "weekly_kpis", "--to", str(monday + timedelta(days=6)), *filters, "--db", str(db), "--format", "json")
    rows = json.loads(out.output)
    return {(r["week"], r["kpi"]): r["value"] for r in rows}


def last_week(db) -> date:
    out = cli("query", "review_week", "--db", str(db), "--format", "json")
    (week,) = json.loads(out.output)
    monday = date.fromisoformat(week["week"])
    return monday - timedelta(weeks=1) if week["partial"] else monday


def check(db, config, *args, env=None):
    return cli("alerts", "check", "--db", str(db), "--config", str(config), *args, env=env)


@pytest.mark.slow
def test_thresholds_either_side_of_the_cli_s_figures(db, tmp_path):
    monday = last_week(db)
    mine, theirs = kpis(db, monday), kpis(db, monday, "--filter", "channel=referral")
    now, before = mine[(monday.isoformat(), "new_leads")], mine[((monday - timedelta(weeks=1)).isoformat(), "new_leads")]
    referral = theirs[(monday.isoformat(), "reached_mql")]
    config = tmp_path / "funnel.toml"
    config.write_text(f"""
[[alerts]]
name = "new leads above"
metric = "new_leads"
above = {now - 1}

[[alerts]]
name = "new leads above, exactly"
metric = "new_leads"
above = {now}

[[alerts]]
name = "two weeks in a row"
metric = "new_leads"
above = {min(now, before) - 1}
weeks = 2

[[alerts]]
name = "two weeks, one short"
metric = "new_leads"
above = {max(now, before) - 1}
weeks = 2

[[alerts]]
name = "referral MQLs"
metric = "reached_mql"
below = {referral + 1}
filter = {{ channel = "referral" }}
severity = "critical"

[[alerts]]
name = "rate still converting"
metric = "key_rate"
below = 1.0
""", "utf-8")
    out = check(db, config, "--format", "json")
    assert out.exit_code == 1, out.output
    fired = {r["name"]: r["fired"] for r in json.loads(out.output)}
    assert fired == {"new leads above": True, "new leads above, exactly": False, "two weeks in a row": True,
                     "two weeks, one short": now == before, "referral MQLs": True, "rate still converting": False}
    table = check(db, config)
    assert f"referral MQLs [critical] fires: Reached MQL (channel = referral) {referral:,}" in table.output
    assert "SQL rate — (still converting)" in table.output


@pytest.mark.slow
def test_a_firing_alert_is_news_once_and_cron_reads_the_exit_code(db, tmp_path, smtp_server):  # noqa: F811
    inbox, address = smtp_server
    monday = last_week(db)
    now = kpis(db, monday)[(monday.isoformat(), "new_leads")]
    config = tmp_path / "funnel.toml"

    def alert(threshold):
        config.write_text(f'[[alerts]]\nname = "busy week"\nmetric = "new_leads"\nabove = {threshold}\n', "utf-8")

    state = db.parent / f"{db.name}.alerts.json"
    state.unlink(missing_ok=True)
    alert(now - 1)
    first = check(db, config, "--email", "ops@bpo.example", "--smtp", address)
    assert first.exit_code == 1 and "FIRES  (new) busy week" in first.output
    assert len(inbox.messages) == 1 and b"busy week [warning] fires" in inbox.messages[0][1]
    again = check(db, config, "--email", "ops@bpo.example", "--smtp", address)
    assert again.exit_code == 1 and "(new)" not in again.output and len(inbox.messages) == 1  # not sent twice
    alert(now - 2)  # a new rule is news again
    assert "(new)" in check(db, config).output
    alert(now + 1)  # stops firing: off the state, exit 0
    quiet = check(db, config, "--email", "ops@bpo.example", "--smtp", address)
    assert quiet.exit_code == 0 and quiet.output.startswith("ok ") and json.loads(state.read_text()) == {}
    alert(now - 1)
    assert "(new)" in check(db, config).output  # firing again after a quiet run is news


def test_no_alerts_and_bad_state_are_one_sentence(db, tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("[funnel]\nmin_sample = 30\n", "utf-8")
    out = check(db, empty)
    assert out.exit_code == 2 and "the config has no [[alerts]]" in out.output
    config = tmp_path / "funnel.toml"
    config.write_text('[[alerts]]\nname = "x"\nmetric = "new_leads"\nabove = 1\n', "utf-8")
    state = db.parent / f"{db.name}.alerts.json"
    state.write_text("{not json", "utf-8")
    out = check(db, config)
    assert out.exit_code == 2 and "is not readable JSON; remove it to start afresh" in out.output
    state.unlink()
