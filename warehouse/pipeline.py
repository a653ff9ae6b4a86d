"""Load -> build -> publish: the one place that turns input files into a published warehouse.

etl/ checks the files and writes the raw tables into a connection it is given; this module owns
the warehouse file around it: the one-writer lock, the private build copy, the models built from
the raw tables, and the atomic publish (warehouse/publish.py). The CLI's `load`, `build` and
`demo` call it; nothing below the CLI publishes any other way.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from sqlglot import exp

from funnelboard import __version__
from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress
from funnelboard.etl import raw_schema
from funnelboard.etl.load import FileReport, Job, load_jobs, loaded_files, pending, prepare
from funnelboard.warehouse.build import NotRefreshable, build_models, refresh_blocker, refresh_models
from funnelboard.warehouse.publish import building, load_lock, open_read_only, sql_string

# The temporary table of the leads a load touched: their rows are refreshed in every by_lead model.
TOUCHED = "_touched_leads"


@dataclass
class LoadReport:
    """What one `load_files` did: a report per file, and whether a new warehouse was published."""

    db: Path
    load_id: int | None
    files: list[FileReport]
    published: bool
    seconds: float
    build: str | None = None  # how the models were built: "full", or "incremental: N leads"
    journeys_removed: int = 0  # a pull: stored journeys whose records the CRM deleted (Pulled.removed)


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
    removed: Collection[str] = (),
) -> LoadReport:
    """Check every file, load the new ones into a private copy of the warehouse, build the models
    and publish it; files loaded before are skipped (unless `replace`) and nothing is published
    when nothing is new. `source` names the adapter that reads `events` (etl/sources); `marks`, a
    pull's high-water marks, are stored by the same publish as the records they cover; `removed`, the
    journey ids the pull saw deleted in the CRM, are deleted with it (a pull with only those loads no file)."""
    started = time.monotonic()
    progress = progress or Progress(enabled=False)
    db = Path(db)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    if removed and marks is None:
        raise ValueError("removed journeys come from a pull: give its marks")
    jobs = prepare(events, config, leads=leads, source=source, progress=progress) if events or leads or not removed else []
    with load_lock(db):
        todo, skipped = pending(jobs, _loaded(db), replace)
        if not todo and not removed:
            return LoadReport(db, None, skipped, False, time.monotonic() - started)
        copied = db.exists()
        step = time.monotonic()
        try:
            with building(db) as con:
                if copied:
                    progress.note(f"  copying the warehouse for the build: done in {time.monotonic() - step:.1f}s")
                if replace:
                    _leads_of_earlier_loads(con, todo)
                load_id, reports = load_jobs(con, todo, config, now=now, replace=replace, progress=progress,
                                             supersede=marks is not None, removed=removed, source=source)
                gone = con.execute("select count(*) from _removed_journeys").fetchall()[0][0] if marks is not None else 0
                _touched_by(con, load_id, replace, progress, superseded=marks is not None)
                if (marks is not None and copied and not gone and refresh_blocker(con, config) is None
                        and _pull_changed_nothing(con, db, marks, load_id)):
                    raise _Unchanged()  # (a changed config still rebuilds the models and publishes)
                if marks is not None:
                    raw_schema.record_marks(con, marks.source, marks.marks, load_id, now, marks.complete)
                _built, how = _build(con, config, progress, touched=TOUCHED)
                progress.note("publishing warehouse")
                step = time.monotonic()
        except _Unchanged:  # the copy is deleted: the published warehouse stays as it was
            progress.note("the pull changed no stored row and no mark: nothing published")
            return LoadReport(db, None, skipped + reports, False, time.monotonic() - started)
        progress.note(f"  publishing warehouse: done in {time.monotonic() - step:.1f}s")
    return LoadReport(db, load_id, skipped + reports, True, time.monotonic() - started, how, gone)


class _Unchanged(Exception):
    """A pull's load would publish the warehouse as it is: the build copy is dropped."""


def _pull_changed_nothing(con: duckdb.DuckDBPyConnection, live: Path, marks: PullMarks, load_id: int) -> bool:
    """Whether a pull's load, done in the build copy, leaves the published warehouse as it was: the
    same marks (and completeness) as stored, and for every lead it touched the same rows in raw_events
    and raw_leads (all columns but where a row came from: file_id, source_line) and no quarantined
    row that is not already in the quarantine. A pull re-fetches the records at its marks, so a pull
    of a CRM where nothing happened loads rows equal to the stored ones."""
    con.execute(f"attach {sql_string(str(live))} as _published (read_only)")
    try:
        stored = con.execute(
            "select object, arg_max(mark, load_id), arg_max(complete, load_id) from _published.main.pull_marks "
            "where source = $s group by object", {"s": marks.source},
        ).fetchall() if raw_schema.table_columns(con, "pull_marks", "_published") else []
        if {o: (m, c) for o, m, c in stored} != {o: (m, marks.complete) for o, m in marks.marks.items()}:
            return False
        for table in ("raw_events", "raw_leads"):
            columns = raw_schema.value_columns(con, table)
            if raw_schema.value_columns(con, table, "_published") != columns:
                return False
            cols = ", ".join(exp.to_identifier(c, quoted=True).sql("duckdb") for c in columns)
            touched = f"lead_id in (select lead_id from {TOUCHED})"
            now, before = (f"select {cols} from {catalog}main.{table} where {touched}" for catalog in ("", "_published."))
            differ = con.execute(
                f"select (select count(*) from ({now} except all {before})) + (select count(*) from ({before} except all {now}))"
            ).fetchall()[0][0]
            if differ:
                return False
        new_problems = con.execute(
            "select count(*) from (select reason, detail, raw from main.quarantine where file_id in "
            "(select file_id from main.load_ledger where load_id = $l) "
            "except select reason, detail, raw from _published.main.quarantine)", {"l": load_id},
        ).fetchall()[0][0]
        return new_problems == 0
    finally:
        con.execute("detach _published")


@dataclass
class BuildReport:
    """What `rebuild` did: the models built (in build order) and how, or nothing when they were up to date."""

    models: list[str]
    how: str | None  # "full", or None: already built from these model files and this configuration


def rebuild(db: Path, config: FunnelConfig, progress: Progress | None = None, *, full: bool = False) -> BuildReport:
    """Rebuild every model of a published warehouse from its raw tables and publish it, when they were
    built from other model files (an edit of queries/), another configuration or another funnelboard,
    or when `full` is asked for; otherwise they are up to date and nothing is published."""
    db = Path(db)
    progress = progress or Progress(enabled=False)
    if not db.is_file():
        raise UserError(f"no warehouse at '{db}': load one with `funnelboard load EVENTS.csv --db {db}`.")
    with load_lock(db):
        if not full:
            con = open_read_only(db)
            try:
                current = refresh_blocker(con, config) is None
            finally:
                con.close()
            if current:
                return BuildReport([], None)
        with building(db) as con:
            built, how = _build(con, config, progress)
    return BuildReport(built, how)


def _build(con: duckdb.DuckDBPyConnection, config: FunnelConfig, progress: Progress, touched: str | None = None) -> tuple[list[str], str]:
    """Build the models, only the rows of the leads in the table `touched` when that is exact (the
    models were built by these model files and this configuration), and record what they were built
    with (the dashboard and `query` read it). Returns the models and how they were built."""
    how = "full"
    built: list[str] | None = None
    if touched is not None:
        blocker = refresh_blocker(con, config)
        if blocker is None:
            n = con.execute(f"select count(*) from {touched}").fetchall()[0][0]
            progress.note(f"refreshing the models for the {n:,} leads this load touched")
            try:
                built = refresh_models(con, config, touched, progress)
                how = f"incremental: {n} leads"
            except NotRefreshable as exc:
                blocker = str(exc)
        if built is None:
            progress.note(f"building the models in full: {blocker}")
    if built is None:
        built = build_models(con, config, progress)
    raw_schema.set_meta(con, "config", config.to_json())
    raw_schema.set_meta(con, "config_source", config.source)
    raw_schema.set_meta(con, "funnelboard_version", __version__)
    raw_schema.set_meta(con, "last_build", how)
    return built, how


def _leads_of_earlier_loads(con: duckdb.DuckDBPyConnection, jobs: list[Job]) -> None:
    """For --replace, before the load: the leads of every loaded file that a job may replace (same
    path or same content, as etl/load.py matches them; a few more do no harm, they are refreshed to
    the same rows). Their rows are deleted by the load, so their models' rows must be refreshed."""
    raw_schema.ensure_schema(con)
    con.execute(
        "create or replace temp table _replaced_files as select file_id from load_ledger "
        "where superseded_by is null and (list_contains($paths, source_file) or list_contains($shas, sha256))",
        {"paths": sorted({str(j.file.path) for j in jobs}), "shas": sorted({j.file.sha256 for j in jobs})},
    )
    con.execute(
        "create or replace temp table _replaced_leads as "
        "select lead_id from raw_events where file_id in (select file_id from _replaced_files) "
        "union select lead_id from raw_leads where file_id in (select file_id from _replaced_files)"
    )


def _touched_by(con: duckdb.DuckDBPyConnection, load_id: int, replace: bool, progress: Progress, superseded: bool = False) -> None:
    """The table TOUCHED: the leads with rows from this load's files in raw_events or raw_leads, and
    the leads whose rows it deleted: with --replace, and for a pull the records it re-fetched
    (`_superseded`, etl/load.py `supersede_records`). File ids grow with every file loaded, so the
    range test lets DuckDB skip the row groups of earlier loads."""
    ids = [r[0] for r in con.execute("select file_id from load_ledger where load_id = $l", {"l": load_id}).fetchall()]
    lo, hi = (min(ids), max(ids)) if ids else (0, -1)
    new_rows = " union ".join(
        f"select lead_id from {table} where file_id between $lo and $hi and list_contains($ids, file_id)"
        for table in ("raw_events", "raw_leads")
    )
    replaced = (" union select lead_id from _replaced_leads" if replace else "") + (" union select lead_id from _superseded" if superseded else "")
    progress.execute(con, "finding the leads this load touched", f"create or replace temp table {TOUCHED} as {new_rows}{replaced}",
                     {"lo": lo, "hi": hi, "ids": ids})


def _loaded(db: Path) -> dict:
    """The files already in the published warehouse (none when there is no warehouse yet)."""
    if not db.exists():
        return {}
    con = open_read_only(db)
    try:
        return loaded_files(con)
    finally:
        con.close()
