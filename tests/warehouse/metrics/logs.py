"""Tiny hand-made event logs loaded into fresh warehouses, for the metric tests of this folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from funnelboard.core.config import load_config
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import MetricRequest, run_metric
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW

D = datetime
CSV_HEADER = "lead_id,stage,entered_at,reason,channel,region,owner,lead_score,amount"
JAN = {"start": D(2024, 1, 1), "end": D(2024, 2, 1)}


def warehouse(tmp_path: Path, rows: list[str], config: str | None = None) -> Gateway:
    """Load events (CSV_HEADER columns, trailing ones may be left off) into a fresh warehouse."""
    width = CSV_HEADER.count(",") + 1
    lines = [r + "," * (width - 1 - r.count(",")) for r in rows]
    events = tmp_path / "events.csv"
    events.write_text(CSV_HEADER + "\n" + "\n".join(lines) + "\n", "utf-8")
    cfg_path = None
    if config is not None:
        cfg_path = tmp_path / "funnel.toml"
        cfg_path.write_text(config, "utf-8")
    db = tmp_path / "wh.duckdb"
    load_files(db, [events], load_config(cfg_path), now=NOW)
    return Gateway(db)


def run(gw: Gateway, name: str, **fields) -> list[dict]:
    return run_metric(gw, name, MetricRequest(**fields))


def approx_rows(rows: list[dict]) -> list[dict]:
    return [{k: pytest.approx(v, abs=1e-9) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
