"""`funnelboard query` and `check-config` on a funnel with its own stage names and no [review] lost:
what they print names the funnel's stages and outcomes, never MQL/SQL."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from tests.warehouse.metrics.logs import warehouse

# stages inquiry -> engaged -> proposal -> won; `dropped` exits happen, but no outcome is named a loss
OWN_NAMES = """
[funnel]
stages = ["inquiry", "engaged", "proposal", "won"]
outcomes = ["dropped"]

[segments]
channel = "channel"

[review]
key_rate = { from = "inquiry", to = "engaged" }
"""
EVENTS = [
    "A,inquiry,2024-01-02,,web", "A,engaged,2024-01-05,,web", "A,proposal,2024-01-09,,web", "A,won,2024-01-20,,web",
    "B,inquiry,2024-01-03,,web", "B,engaged,2024-01-10,,web", "B,dropped,2024-01-15,no budget,web",
    "C,inquiry,2024-01-04,,ads", "C,dropped,2024-01-08,no fit,ads",
]
FUNNEL_WORDS = re.compile(r"\b(sqls?|mqls?)\b", re.IGNORECASE)


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_time_to_convert_names_the_key_rates_stages(tmp_path):
    db = str(warehouse(tmp_path, EVENTS, OWN_NAMES).db)
    for name in ("time_to_convert", "time_to_sql"):  # the first name still works, with the same columns
        (row,) = json.loads(cli("query", name, "--db", db, "--format", "json"))
        assert (row["from_stage"], row["to_stage"], row["entered"], row["reached"]) == ("inquiry", "engaged", 3, 2)
        assert not FUNNEL_WORDS.findall(" ".join(row)), row
    assert not FUNNEL_WORDS.findall(cli("query", "time_to_sql", "--db", db))


def test_query_help_and_list_speak_of_the_key_rates_stages():
    for text in (cli("query", "--help"), cli("query", "--list")):
        assert not FUNNEL_WORDS.findall(text.replace("sql_rate", "").replace("time_to_sql", "")), FUNNEL_WORDS.findall(text)
    assert "the key rate's stages" in cli("query", "--help")


def test_criteria_health_runs_on_the_funnels_own_stages(tmp_path):
    db = str(warehouse(tmp_path, EVENTS, OWN_NAMES).db)
    rows = json.loads(cli("query", "criteria_health", "--db", db, "--format", "json"))
    got = {r["check"]: (r["from_stage"], r["to_stage"], r["status"]) for r in rows}
    assert got == {
        "too_broad": ("inquiry", "engaged", "too_few"), "too_loose": ("engaged", "proposal", "too_few"),
        "checklist_gap": ("engaged", None, "too_few"), "targeting": ("inquiry", "engaged", "too_few"),
    }, got
    assert not FUNNEL_WORDS.findall(" ".join(r["reading"] for r in rows))


UNNAMED = "no outcome is named a loss; name the lost ones in [review] lost = [...] (outcomes: dropped)"


def test_win_rate_says_no_outcome_is_named_a_loss_not_that_none_is_recorded(tmp_path):
    """`dropped` exits are in the data; the config names none a loss: the note says that, and how to name them."""
    db = str(warehouse(tmp_path, EVENTS, OWN_NAMES).db)
    (row,) = json.loads(cli("query", "win_rate", "--db", db, "--format", "json"))
    assert row["win_rate"] is None and row["note"] == UNNAMED


def test_check_config_warns_when_no_outcome_is_named_a_loss(tmp_path):
    own = tmp_path / "funnel.toml"
    own.write_text(OWN_NAMES, "utf-8")
    assert cli("check-config", "--config", str(own)).splitlines()[1] == f"warning: the win rate weighs no loss: {UNNAMED}."
    own.write_text(OWN_NAMES + 'lost = ["dropped"]\n', "utf-8")
    assert "warning" not in cli("check-config", "--config", str(own))
