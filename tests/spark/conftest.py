"""One JVM for every Spark test: a local[2] session with few shuffle partitions, tiny data.

The Spark tests need pyspark and Java 17+. Without them they fail under CI=true, as every
test missing what it needs does, and are skipped on a developer machine.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW


def require_spark_or_skip() -> None:
    from funnelboard.warehouse.spark import require_spark

    try:
        require_spark()
    except UserError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Spark tests cannot run: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def spark():
    """The session every Spark test shares (starting a JVM costs seconds: once)."""
    require_spark_or_skip()
    from funnelboard.warehouse.spark import spark_session

    session = spark_session(
        "local[2]",
        {
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": "1g",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@dataclass(frozen=True)
class Built:
    """One generated dataset, loaded into DuckDB and built on Spark from the same files."""

    events: Path
    leads: Path
    db: Path  # the DuckDB warehouse
    out: Path  # the Spark build's directory
    catalog: Path  # its DuckDB catalog (warehouse/marts_dir.py)
    seconds: float  # the Spark build's wall time


def write_leads(events: Path, path: Path, seed: int = 3) -> Path:
    """A leads file for a third of the leads (created_at, some attributes rewritten) plus leads with no events."""
    rng = random.Random(seed)
    with open(events, newline="", encoding="utf-8") as fh:
        ids = sorted({row["lead_id"] for row in csv.DictReader(fh)})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["lead_id", "created_at", "channel", "region"])
        for lead in ids[::3]:
            out.writerow([lead, f"2025-0{rng.randint(1, 4)}-1{rng.randint(0, 9)} 09:30:00", rng.choice(["partners", "events", ""]), ""])
        for i in range(5):
            out.writerow([f"X{i:07d}", f"2026-10-0{i + 1}T08:00:00Z", "referral", "EMEA"])
    return path


@pytest.fixture(scope="session")
def built(spark, tmp_path_factory) -> Built:
    """A small clean dataset (skips, re-entries, exits, open leads) built by both engines."""
    import time

    from funnelboard.warehouse.marts_dir import catalog
    from funnelboard.warehouse.spark import build

    folder = tmp_path_factory.mktemp("spark")
    events = generate(out=folder / "events.csv", n_events=2500, seed=21).path
    leads = write_leads(events, folder / "leads.csv")
    config = load_config(None)
    db = folder / "wh.duckdb"
    load_files(db, [events], config, leads=[leads], now=NOW)
    out = folder / "marts"
    started = time.monotonic()
    build(events, out, config, leads=leads, spark=spark, now=NOW)
    seconds = time.monotonic() - started
    return Built(events, leads, db, out, catalog(out), seconds)
