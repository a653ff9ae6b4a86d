"""funnel.toml mistakes are one-sentence errors naming the file, never a traceback later."""

from __future__ import annotations

import pytest

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from tests.conftest import write


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[funnel]\nstages = ["mql", "won"]\n', "at least three funnel stages"),
        ('[funnel]\nstages = ["lead", "mql", "lead"]\n', "names a stage twice"),
        ('[funnel]\nskipped_stages = "sometimes"\n', "expected 'count' or 'strict'"),
    ],
)
def test_a_bad_config_is_one_sentence(tmp_path, toml, says):
    path = write(tmp_path / "funnel.toml", toml)
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert says in message and str(path) in message and "\n" not in message

