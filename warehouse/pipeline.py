"""Load -> build -> publish: the one place that turns input files into a published warehouse.

etl/ checks the files and writes the raw tables into a connection it is given; this module owns
the warehouse file around it: the one-writer lock, the private build copy, the models built from
the raw tables, and the atomic publish (warehouse/publish.py). The CLI's `load`, `build` and
`demo` call it; nothing below the CLI publishes any other way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from funnelboard import __version__
from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress
from funnelboard.etl import raw_schema
from funnelboard.etl.load import FileReport, load_jobs, loaded_files, pending, prepare
from funnelboard.warehouse.build import build_models
from funnelboard.warehouse.publish import building, load_lock, open_read_only


@dataclass
class LoadReport:
    """What one `load_files` did: a report per file, and whether a new warehouse was published."""

    db: Path
    load_id: int | None
    files: list[FileReport]
    published: bool
    seconds: float


@dataclass(frozen=True)
class PullMarks:
    """The marks a pull reached: stored with its load, so they advance exactly when its records publish."""

    source: str
    marks: dict[str, str]
    complete: bool = True


def load_files(
    db: Path,
    events: list[Path],
    config: FunnelConfig,
    *,
    leads: list[Path] = (),
    replace: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
    source: str = "canonical",
    marks: PullMarks | None = None,
) -> LoadReport:
    """Check every file, load the new ones into a private copy of the warehouse, build the models
    and publish it; files loaded before are skipped (unless `replace`) and nothing is published
    when nothing is new. `source` names the adapter that reads `events` (etl/sources); `marks`, a
    pull's high-water marks, are stored by the same publish as the records they cover."""
    started = time.monotonic()
    progress = progress or Progress(enabled=False)
    db = Path(db)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    jobs = prepare(events, config, leads=leads, source=source, progress=progress)
    with load_lock(db):
        todo, skipped = pending(jobs, _loaded(db), replace)
        if not todo:
            return LoadReport(db, None, skipped, False, time.monotonic() - started)
        with building(db) as con:
            load_id, reports = load_jobs(con, todo, config, now=now, replace=replace, progress=progress, supersede=marks is not None)
            if marks is not None:
                raw_schema.record_marks(con, marks.source, marks.marks, load_id, now, marks.complete)
            _build(con, config, progress)
            progress.note("publishing warehouse")
    return LoadReport(db, load_id, skipped + reports, True, time.monotonic() - started)


def rebuild(db: Path, config: FunnelConfig, progress: Progress | None = None) -> list[str]:
    """Rebuild every model of a published warehouse from its raw tables (after an edit of
    queries/ or funnel.toml) and publish it; returns the models built, in build order."""
    db = Path(db)
    if not db.is_file():
        raise UserError(f"no warehouse at '{db}': load one with `funnelboard load EVENTS.csv --db {db}`.")
    with load_lock(db), building(db) as con:
        return _build(con, config, progress or Progress(enabled=False))


def _build(con: duckdb.DuckDBPyConnection, config: FunnelConfig, progress: Progress) -> list[str]:
    """Build the models and record what they were built with (the dashboard and `query` read it)."""
    built = build_models(con, config, progress)
    raw_schema.set_meta(con, "config", config.to_json())
    raw_schema.set_meta(con, "config_source", config.source)
    raw_schema.set_meta(con, "funnelboard_version", __version__)
    return built


def _loaded(db: Path) -> dict:
    """The files already in the published warehouse (none when there is no warehouse yet)."""
    if not db.exists():
        return {}
    con = open_read_only(db)
    try:
        return loaded_files(con)
    finally:
        con.close()
