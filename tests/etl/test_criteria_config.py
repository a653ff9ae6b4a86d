"""[criteria_health] in funnel.toml: the playbook's checks with their defaults, stages that exist or
none (never a guessed one), and mistakes as one sentence naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funnelboard.core.config import CRITERIA_CHECKS, FunnelConfig, HealthCheck, load_config
from funnelboard.core.errors import UserError
from tests.conftest import write

OLIST = Path(__file__).resolve().parents[2] / "examples" / "olist" / "funnel.toml"


def checks(config: FunnelConfig) -> dict[str, HealthCheck]:
    return {c.name: c for c in config.health_checks}


def test_the_default_funnel_has_every_check_with_the_playbooks_defaults():
    got = checks(load_config(None))
    assert list(got) == list(CRITERIA_CHECKS)
    assert got["too_broad"] == HealthCheck("too_broad", 0.20, "mql", "sql")
    assert got["too_loose"] == HealthCheck("too_loose", 0.90, "sql", "proposal")
    assert got["checklist_gap"] == HealthCheck("checklist_gap", 0.30, "sql")
    assert got["targeting"] == HealthCheck("targeting", 0.85, "mql", "sql", "channel")


def test_a_close_rate_gets_no_default_stages_and_nothing_past_the_win():
    """Olist (mql, won; key rate mql -> won, a close rate): the qualification checks get no stage by
    default, and nothing follows the win: every check gets no stage (they do not apply), never a guessed one."""
    got = checks(load_config(OLIST))
    assert got["too_broad"] == HealthCheck("too_broad", 0.20)
    assert got["targeting"] == HealthCheck("targeting", 0.85, None, None, "channel")
    assert got["too_loose"] == HealthCheck("too_loose", 0.90) and got["checklist_gap"] == HealthCheck("checklist_gap", 0.30)


def test_a_renamed_funnel_gets_checks_on_its_own_stages(tmp_path):
    """No mql or sql: the key rate is the first step (or the one [review] names), too_loose runs from
    its second stage to the stage before the win, checklist_gap at that second stage."""
    toml = '[funnel]\nstages = ["inquiry", "engaged", "proposal", "negotiation", "won"]\noutcomes = ["dropped"]\n'
    got = checks(load_config(write(tmp_path / "funnel.toml", toml)))
    assert got["too_broad"] == HealthCheck("too_broad", 0.20, "inquiry", "engaged")
    assert got["too_loose"] == HealthCheck("too_loose", 0.90, "engaged", "negotiation")
    assert got["checklist_gap"] == HealthCheck("checklist_gap", 0.30, "engaged")
    named = toml + '\n[review]\nkey_rate = { from = "engaged", to = "negotiation" }\n'
    got = checks(load_config(write(tmp_path / "named.toml", named)))
    assert got["too_broad"] == HealthCheck("too_broad", 0.20, "engaged", "negotiation")
    assert got["too_loose"] == HealthCheck("too_loose", 0.90)  # negotiation is the last stage before the win


def test_a_file_names_its_own_stages_thresholds_and_segment(tmp_path):
    path = write(
        tmp_path / "funnel.toml",
        '[funnel]\nstages = ["mql", "won"]\noutcomes = ["lost"]\n\n[segments]\norigin = "Origin"\n\n'
        "[criteria_health]\n"
        'too_broad = { from = "mql", to = "won", floor = 0.05 }\n'
        'checklist_gap = { stage = "mql", ceiling = 0.5 }\n'
        'targeting = { segment = "origin", from = "mql", to = "won", ceiling = 0.99 }\n',
    )
    config = load_config(path)
    got = checks(config)
    assert got["too_broad"] == HealthCheck("too_broad", 0.05, "mql", "won")
    assert got["checklist_gap"] == HealthCheck("checklist_gap", 0.5, "mql")
    assert got["targeting"] == HealthCheck("targeting", 0.99, "mql", "won", "origin")
    assert got["too_loose"] == HealthCheck("too_loose", 0.90)  # not named: the key rate mql -> won ends at the win
    assert FunnelConfig.from_json(config.to_json()) == config  # the warehouse keeps it


def test_only_a_threshold_keeps_the_default_stages(tmp_path):
    got = checks(load_config(write(tmp_path / "funnel.toml", "[criteria_health]\ntoo_loose = { ceiling = 0.8 }\n")))
    assert got["too_loose"] == HealthCheck("too_loose", 0.8, "sql", "proposal")


def test_a_warehouse_built_before_the_section_reads_the_defaults():
    config = load_config(None)
    stored = json.loads(config.to_json())
    del stored["criteria_health"]
    again = FunnelConfig.from_json(json.dumps(stored))
    assert again.criteria_health is None and again.health_checks == config.health_checks


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("too_wide = {}\n", "has [criteria_health] too_wide; expected one of too_broad, too_loose, checklist_gap, targeting"),
        ("too_broad = 0.2\n", 'too_broad = 0.2; expected a table such as { from = "mql", to = "sql", floor = 0.2 }'),
        ("too_broad = { ceiling = 0.2 }\n", "too_broad key 'ceiling'; expected from, to, floor"),
        ('too_broad = { floor = "20%" }\n', "too_broad floor = '20%'; expected a share from 0 to 1"),
        ("too_loose = { ceiling = 90 }\n", "too_loose ceiling = 90; expected a share from 0 to 1"),
        ("checklist_gap = { ceiling = true }\n", "checklist_gap ceiling = True"),
        ('too_broad = { from = "demo" }\n', "too_broad from = 'demo', which is not a funnel stage"),
        ('too_loose = { from = "proposal", to = "sql" }\n', "too_loose from 'proposal' to 'sql'; expected two funnel stages, the second later"),
        ('checklist_gap = { stage = "scope" }\n', "checklist_gap stage = 'scope', which is not a funnel stage"),
        ('targeting = { segment = "campaign" }\n', "targeting segment = 'campaign', which is not a [segments] column"),
    ],
)
def test_a_bad_criteria_health_section_is_one_sentence(tmp_path, toml, says):
    path = write(tmp_path / "funnel.toml", "[criteria_health]\n" + toml)
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert says in message and str(path) in message and "\n" not in message
