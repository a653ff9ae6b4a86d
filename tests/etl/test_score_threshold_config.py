"""[attributes] score_threshold: the lowest lead score that makes an MQL, optional, a number; the demo's
value and a bad value told in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from funnelboard.core.config import FunnelConfig, check_config, load_config
from funnelboard.core.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def test_the_demo_sets_a_threshold_and_a_funnel_of_its_own_has_none_unless_it_says():
    assert load_config(None).score_threshold == 45.0
    assert load_config(ROOT / "examples" / "olist" / "funnel.toml").score_threshold is None


@pytest.mark.parametrize("value, expected", [("60", 60.0), ("62.5", 62.5), ("0", 0.0)])
def test_a_number_is_kept_and_survives_the_warehouse_round_trip(tmp_path, value, expected):
    config = load_config(write(tmp_path / "funnel.toml", f'[attributes]\nscore = "lead_score"\nscore_threshold = {value}\n'))
    assert config.score_threshold == expected
    assert FunnelConfig.from_json(config.to_json()).score_threshold == expected


def test_unset_is_none(tmp_path):
    assert load_config(write(tmp_path / "funnel.toml", '[attributes]\nscore = "lead_score"\n')).score_threshold is None


@pytest.mark.parametrize("value", ['"60"', "true", "[60]", "nan", "inf"])
def test_a_value_that_is_not_a_number_is_one_sentence(tmp_path, value):
    path = write(tmp_path / "funnel.toml", f'[attributes]\nscore = "lead_score"\nscore_threshold = {value}\n')
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert "[attributes] score_threshold" in message and "expected a number" in message
    assert message.count(". ") == 0 and message.endswith(".") and "\n" not in message


def test_a_threshold_without_a_score_column_is_refused(tmp_path):
    path = write(tmp_path / "funnel.toml", "[attributes]\nscore_threshold = 60\n")
    _config, problems = check_config(path)
    assert len(problems) == 1 and "without [attributes] score" in problems[0]
