"""The docs stay true: every metric, model and command is where a reader looks for it."""

from __future__ import annotations

from pathlib import Path

from funnelboard.cli import main
from funnelboard.warehouse.metrics import REGISTRY
from funnelboard.warehouse.models import load_models

ROOT = Path(__file__).resolve().parents[1]


def test_every_metric_is_in_the_readme_and_defined_in_docs_metrics():
    readme = (ROOT / "README.md").read_text()
    metrics_doc = (ROOT / "docs" / "metrics.md").read_text()
    for name in REGISTRY:
        assert f"`{name}`" in readme, name
        assert f"`{name}`" in metrics_doc, name


def test_every_model_has_a_description_and_documented_columns():
    for model in load_models().values():
        assert model.description.strip(), model.name
        assert model.meta["columns"], model.name


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert f"funnelboard {name}" in readme, name
