"""The Olist marketing-funnel example, loaded for a test: the real public data (CC BY-NC-SA, never
copied into the repository) from $FUNNELBOARD_OLIST_DIR, else ../shared/data/olist_marketing_funnel
beside the checkout. Without it a test fails under CI (CI=true) and is skipped elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
OLIST = Path(os.environ.get("FUNNELBOARD_OLIST_DIR") or ROOT.parent / "shared" / "data" / "olist_marketing_funnel")
MQLS = OLIST / "olist_marketing_qualified_leads_dataset.csv"
DEALS = OLIST / "olist_closed_deals_dataset.csv"
CONFIG = ROOT / "examples" / "olist" / "funnel.toml"
MISSING = f"Olist data not found in {OLIST} (it is never copied into the repository; set FUNNELBOARD_OLIST_DIR)"


def olist_files() -> tuple[Path, Path]:
    """The MQL and closed-deal files, or the test fails (CI) or is skipped (elsewhere) saying where they were looked for."""
    if not (MQLS.exists() and DEALS.exists()):
        if os.environ.get("CI") == "true":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return MQLS, DEALS


def load_olist(db: Path, config: Path = CONFIG) -> Path:
    """`funnelboard load` of the example into `db` with the example's config (or another), as a user runs it."""
    from funnelboard.cli import main

    mqls, deals = olist_files()
    result = CliRunner().invoke(main, ["load", str(mqls), str(deals), "--source", "wide", "--config", str(config), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    return db
