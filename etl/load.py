"""Load canonical event (and lead) files, or a source adapter's translation, into the raw tables.

Every row read ends up loaded, quarantined with a reason, or collapsed as an exact
duplicate of a row already loaded:  rows read = loaded + quarantined + duplicates.
With `--source NAME` the adapter's records go through the same checks, and every export
row is also accounted for: export rows = rows used + rows ignored (etl/sources/base.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from funnelboard.core.config import SPACE_RUN, SPACES, FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.core.money import CURRENCIES, FORECAST_CATEGORIES, forecast_category_sql
from funnelboard.core.progress import Progress
from funnelboard.etl import raw_schema
from funnelboard.etl.identifiers import ident
from funnelboard.etl.readers import (
    RESERVED,
    InputFile,
    file_sha256,
    inspect,
    jsonl_rejects_sql,
    raw_sql,
    reading,
    source_sql,
)
from funnelboard.etl.sources.base import BOOK_COLUMNS, ISO_TIMESTAMP, Rejection, Translation, empty_events, file_key
from funnelboard.etl.sources.registry import get_adapter

# Values are trimmed of SPACES (funnelboard.core.config: Unicode's White_Space, the no-break spaces
# included; plain trim() strips only the space), bound as $spaces; stage labels are matched with
# runs of them made one space ($space_run), as normalise_label does in Python.
# trim(x, chars) costs ~10x a plain copy per value, and almost no value needs it. A row needs
# it only if its values, joined with a separator (0x1f) and wrapped in it, hold a separator
# next to a space, or any other of SPACES anywhere: one cheap test per row instead of a trim per
# value (contains() is ~3x cheaper than a regular expression here). A 0x1f inside a value can
# only make it say yes. The non-ASCII spaces are looked for only in rows with a non-ASCII
# character (more bytes than characters): most rows are ASCII, and the 19 searches are a
# third of the test's cost.
_ASCII_SPACES = [c for c in SPACES if c != " " and c.isascii()]
_OTHER_SPACES = [c for c in SPACES if not c.isascii()]


def _any_of(text: str, chars: list[str]) -> str:
    """SQL: `text` contains one of `chars`."""
    return " or ".join(f"contains({text}, chr({ord(c)}))" for c in chars)


ROW_NEEDS_TRIM = (
    f"({_any_of('_fb_row', _ASCII_SPACES)} or contains(_fb_row, e'\\x1f ') or contains(_fb_row, e' \\x1f') "
    f"or case when strlen(_fb_row) = length(_fb_row) then false else ({_any_of('_fb_row', _OTHER_SPACES)}) end)"
)


def label_key_sql(label: str) -> str:
    """SQL for normalise_label(label) of a label trimmed of SPACES: runs of SPACES ($space_run) made one space, lower case."""
    return f"lower(regexp_replace({label}, $space_run, ' ', 'g'))"


def stage_sql(label: str) -> str:
    """SQL: the canonical stage of a trimmed label, through the map $label_keys -> $label_stages whose
    keys are normalise_label's. A label found on lower case alone has no space to collapse (no key
    has one), so the regular expression runs only for the others (coalesce is lazy)."""
    lookup = "map($label_keys, $label_stages)"
    return f"coalesce({lookup}[lower({label})], {lookup}[{label_key_sql(label)}])"


REJECT_REASONS = {
    "TOO MANY COLUMNS": "wrong_column_count",
    "MISSING COLUMNS": "wrong_column_count",
    "UNQUOTED VALUE": "malformed_csv",
    "INVALID ENCODING": "invalid_encoding",
    "LINE SIZE OVER MAXIMUM": "line_too_long",
}


@dataclass
class FileReport:
    """What happened to one input file."""

    path: Path
    role: str
    status: str  # loaded | skipped
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_replaced: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    first_entered_at: datetime | None = None
    last_entered_at: datetime | None = None
    note: str = ""
    source: str = "canonical"
    source_rows: int | None = None  # adapters, events row only: data rows in the export
    ignored: dict[str, int] = field(default_factory=dict)  # adapters: export rows that are not events
    notes: list[str] = field(default_factory=list)

    @property
    def rows_ignored(self) -> int:
        return sum(self.ignored.values())

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate


@dataclass
class Job:
    """One ledger row to write: a checked input file, and for an adapter its records for that file."""

    file: InputFile
    source: str = "canonical"
    records: pa.Table | None = None
    rejections: list[Rejection] = field(default_factory=list)
    source_rows: int | None = None
    ignored: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    superseded: frozenset[str] = frozenset()  # Translation.superseded: replaced by a pull too
    ties: frozenset[tuple[str, str]] = frozenset()  # Translation.ties: stored by a pull


def prepare(
    events: list[Path],
    config: FunnelConfig,
    *,
    leads: list[Path] = (),
    source: str = "canonical",
    progress: Progress | None = None,
) -> list[Job]:
    """Check every input file (and run the adapter named by `source` over the exports) before the
    warehouse is touched: one Job per ledger row to write. "canonical" is the native path."""
    progress = progress or Progress(enabled=False)
    if not events and not leads:
        raise UserError("nothing to load: give at least one events file (or --leads FILE).")
    adapter = None if source == "canonical" else get_adapter(source)
    scratch = duckdb.connect()
    try:
        if adapter is None:
            jobs = [_canonical_job(p, "events", config, scratch) for p in events]
        else:
            progress.note(f"translating {len(events)} file(s) with --source {source}")
            jobs = _translate_once(adapter, source, [Path(p) for p in events], config)
        jobs += [_canonical_job(p, "leads", config, scratch) for p in leads]
    finally:
        scratch.close()
    return jobs


def _canonical_job(path: Path, role: str, config: FunnelConfig, scratch: duckdb.DuckDBPyConnection) -> Job:
    f = inspect(path, role, config, scratch)
    return Job(f, notes=list(f.notes))


def loaded_files(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple[int, datetime]]:
    """(role, sha256) -> (load id, loaded at) of every file whose rows are in the raw tables."""
    has_ledger = con.execute(
        "select count(*) from information_schema.tables where table_name = 'load_ledger'"
    ).fetchall()[0][0]
    if not has_ledger:
        return {}
    rows = con.execute("select role, sha256, load_id, loaded_at from load_ledger where superseded_by is null").fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def pending(jobs: list[Job], already: dict, replace: bool) -> tuple[list[Job], list[FileReport]]:
    """The jobs to load, and a "skipped" report for each file loaded before (unless `replace`) and
    for each file given again in the same command (the same path, or the same content): it loads once."""
    todo: list[Job] = []
    skipped: list[FileReport] = []
    given: dict[tuple[str, str], Path] = {}
    for job in jobs:
        f = job.file
        # An adapter's leads rows follow their file's events row: both are loaded or both skipped.
        key = ("events" if job.records is not None else f.role, f.sha256)
        earlier = already.get(key)
        first = given.get((f.role, f.sha256))
        shown = job.records is None or f.role == "events"
        if first is not None:
            if shown:
                same = "given twice in this command" if first == f.path else f"the same content as '{first}', given before it"
                skipped.append(FileReport(f.path, f.role, "skipped", source=job.source, note=f"{same}; loaded once"))
        elif earlier and not replace:
            if shown:
                note = f"already loaded in load {earlier[0]} on {earlier[1]:%Y-%m-%d %H:%M} UTC; use --replace to load it again"
                skipped.append(FileReport(f.path, f.role, "skipped", source=job.source, note=note))
        else:
            todo.append(job)
        given.setdefault((f.role, f.sha256), f.path)
    return todo, skipped


def load_jobs(
    con: duckdb.DuckDBPyConnection,
    jobs: list[Job],
    config: FunnelConfig,
    *,
    now: datetime,
    replace: bool = False,
    progress: Progress | None = None,
    supersede: bool = False,
    removed: Collection[str] = (),
    source: str | None = None,
) -> tuple[int, list[FileReport]]:
    """Write the jobs' rows into the raw tables of `con` (quarantine and ledger included) as one
    new load, and record the configuration they were read with. Returns the load id and a report
    per file; building and publishing the models is the caller's (warehouse/pipeline.py).
    `supersede` (a pull): the jobs hold the whole history of every record in them, which replaces
    what earlier loads of the same source stored for those records (`supersede_records`), and `removed`, the
    journey ids the CRM deleted, go with them (`source` names the pull's adapter when no file came with them)."""
    progress = progress or Progress(enabled=False)
    raw_schema.ensure_schema(con)
    # a pull that only removed journeys writes no ledger row but stores its marks under its load id
    load_id = con.execute(
        "select greatest((select coalesce(max(load_id), 0) from load_ledger), (select coalesce(max(load_id), 0) from pull_marks)) + 1"
    ).fetchall()[0][0]
    superseded = supersede_records(con, jobs, removed=removed, source=source) if supersede else 0
    reports = []
    for job in jobs:
        f = job.file
        progress.note(f"loading {f.role} {f.path.name} ({f.size / 1e6:.1f} MB, {job.source if job.records is not None else f.fmt})")
        replaced = 0
        if replace and job.records is None:
            replaced = _remove_earlier(con, f, load_id)
        elif replace and f.role == "events":  # an adapter file: its earlier events and leads rows
            replaced = sum(_remove_earlier(con, dataclasses.replace(f, role=r), load_id) for r in ("events", "leads"))
        if job.records is not None:
            con.register("_adapter_records", job.records)
        try:
            report = _load_one(con, f, load_id, config, now, progress, job)
        finally:
            if job.records is not None:
                con.unregister("_adapter_records")
        report.rows_replaced = replaced
        if superseded and f.role == "events":  # told once, on the first events file
            report.rows_replaced, superseded = report.rows_replaced + superseded, 0
        if not report.balanced:  # a bug, never a user mistake: refuse to publish
            raise RuntimeError(f"row accounting does not balance for {f.path}: {report}")
        reports.append(report)
    raw_schema.set_meta(con, "published_at", now.isoformat(timespec="seconds"))
    return load_id, reports


_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _translate_once(adapter, source: str, paths: list[Path], config: FunnelConfig) -> list[Job]:
    """_translate over each file once; a file given again gets its first events job once more, which
    `pending` reports as given twice (an adapter given one file twice would read it twice)."""
    first: dict[Path, Path] = {}
    repeated: list[Path] = []
    for p in paths:
        if p.resolve() in first:
            repeated.append(p.resolve())
        else:
            first[p.resolve()] = p
    jobs = _translate(adapter, source, list(first.values()), config)
    events_job = {j.file.path: j for j in jobs if j.file.role == "events"}
    return jobs + [events_job[p] for p in repeated if p in events_job]


def _translate(adapter, source: str, paths: list[Path], config: FunnelConfig) -> list[Job]:
    """Run an adapter over the export files and split its Translation into one job per ledger row.

    Checks the contract of etl/sources/base.py; a breach is an adapter bug (RuntimeError), except
    a column name the user's config made, which is a UserError.
    """
    if not paths:
        raise UserError(f"--source {source} needs at least one export file.")
    for p in paths:
        if not p.exists():
            raise UserError(f"export file '{p}' does not exist.")
        if not p.is_file():
            raise UserError(f"export file '{p}' is not a file.")
    t = adapter(paths, config, dict(config.sources.get(source, {})))
    if not isinstance(t, Translation):
        raise RuntimeError(f"adapter '{source}' returned {type(t).__name__}, not a Translation")
    no_events = isinstance(t.events, pa.Table) and t.events.num_rows == 0
    events = _check_records(empty_events() if no_events else t.events, ("lead_id", "stage", "entered_at"), source, "events")
    no_leads = t.leads is None or (isinstance(t.leads, pa.Table) and t.leads.num_rows == 0)
    leads = None if no_leads else _check_records(t.leads, ("lead_id",), source, "leads")
    keys = {file_key(p) for p in paths}
    for name, table in (("events", events), ("leads", leads)):
        if table is not None and table.num_rows:
            stray = set(table.column("_file").to_pylist()) - keys
            if stray:
                raise RuntimeError(f"adapter '{source}' gave {name} for a file it was not given: {sorted(stray)[0]}")
    stray = {r.file for r in t.rejected} - keys
    if stray:
        raise RuntimeError(f"adapter '{source}' rejected rows of a file it was not given: {sorted(stray)[0]}")

    jobs: list[Job] = []
    for p in paths:
        key = file_key(p)
        ev = events.filter(pc.equal(events.column("_file"), key))
        ld = leads.filter(pc.equal(leads.column("_file"), key)) if leads is not None else None
        rejected = [r for r in t.rejected if r.file == key]
        ignored = {k: int(v) for k, v in t.ignored.get(key, {}).items() if v}
        if key not in t.source_rows:
            raise RuntimeError(f"adapter '{source}' did not say how many rows '{p}' has (Translation.source_rows)")
        lines = set(ev.column("_line").to_pylist())
        if ld is not None:
            lines |= set(ld.column("_line").to_pylist())
        lines |= {r.line for r in rejected if r.line is not None}
        used = len(lines) + sum(1 for r in rejected if r.line is None)
        if t.source_rows[key] != used + sum(ignored.values()):
            raise RuntimeError(
                f"adapter '{source}' does not account for every row of '{p}': {t.source_rows[key]} rows read, "
                f"{used} used + {sum(ignored.values())} ignored"
            )
        sha, size = file_sha256(p), p.stat().st_size

        def job(table: pa.Table, role: str, rej: list[Rejection], rows: int | None, ign: dict) -> Job:
            table = table.drop_columns(["_file"])
            cols = tuple(c for c in table.column_names if c not in BOOK_COLUMNS)
            f = InputFile(path=p.resolve(), role=role, fmt="arrow", compression=None, header=cols, names=cols,
                          size=size, sha256=sha, relation="_adapter_records", has_raw="_raw" in table.column_names)
            return Job(f, source, table, rej, rows, ign, list(t.notes), frozenset(t.superseded), frozenset(t.ties))

        jobs.append(job(ev, "events", rejected, t.source_rows[key], ignored))
        if ld is not None and ld.num_rows:
            jobs.append(job(ld, "leads", [], None, {}))
    return jobs


def _check_records(table: pa.Table, required: tuple[str, ...], source: str, what: str) -> pa.Table:
    """An adapter's events or leads table with text columns and `_line` int64, or an error saying what is wrong."""
    if not isinstance(table, pa.Table):
        raise RuntimeError(f"adapter '{source}' gave {what} as {type(table).__name__}, not a pyarrow Table")
    missing = [c for c in (*required, "_file", "_line") if c not in table.column_names]
    if missing:
        raise RuntimeError(f"adapter '{source}' gave {what} without a '{missing[0]}' column")
    for name in table.column_names:
        if name in BOOK_COLUMNS:
            continue
        if not _IDENT.match(name) or name in RESERVED:
            raise UserError(
                f"--source {source} makes a column named '{name}': expected lower-case letters, digits and "
                "underscores, and not a name funnelboard reserves; rename it in the [source] table of funnel.toml."
            )
    if table.column("_line").null_count:
        raise RuntimeError(f"adapter '{source}' gave {what} without a source line")
    columns = []
    for name in table.column_names:
        col = table.column(name)
        want = pa.int64() if name == "_line" else pa.string()
        columns.append(col if col.type == want else pc.cast(col, want))
    return pa.table(columns, names=table.column_names)


def _export_format(path: Path) -> str:
    """The ledger's format for an export read by an adapter: its suffixes (csv, csv.gz, json, ...)."""
    return "".join(path.suffixes).lstrip(".").lower() or "unknown"


def supersede_records(
    con: duckdb.DuckDBPyConnection, jobs: list[Job], *, removed: Collection[str] = (), source: str | None = None
) -> int:
    """A pull fetches each changed record's whole history, translated with the record's current
    attributes (its owner now, its first response): so the events, lead rows and quarantined rows that
    earlier loads of the same source stored for those records (those it writes events for or rejects rows of,
    `Rejection.lead_id`) are deleted before the new ones are
    stored, rather than kept beside copies that differ in one attribute; so are those stored under the ids of records the
    translation now writes under another journey (`Translation.superseded`), and those of journeys the CRM deleted
    (`removed`, `Pulled.removed`: nothing replaces them). Returns the events removed; the records' ids are left in the
    temp table `_superseded` (their models must be refreshed even if no row remains), and the deleted journeys that had
    rows in `_removed_journeys` (what the load report counts)."""
    ids = [job.records.select(["lead_id"]) for job in jobs if job.records is not None and "lead_id" in job.records.column_names]
    # a journey whose rows the adapter rejected was fetched whole too, even if none of its rows became an event
    rejected = {r.lead_id for job in jobs for r in job.rejections if r.lead_id is not None}
    superseded = sorted(set().union(*(job.superseded for job in jobs), removed, rejected))
    if superseded:
        ids.append(pa.table({"lead_id": pa.array(superseded, pa.string())}))
    con.execute("create or replace temp table _superseded (lead_id varchar)")
    con.execute("create or replace temp table _removed_journeys (lead_id varchar)")
    if not ids:
        return 0
    con.register("_pulled_ids", pa.concat_tables([t.cast(pa.schema([("lead_id", pa.string())])) for t in ids]))
    try:
        con.execute(
            "insert into _superseded select distinct trim(lead_id) from _pulled_ids where nullif(trim(lead_id), '') is not null"
        )
    finally:
        con.unregister("_pulled_ids")
    sources = {job.source for job in jobs if job.records is not None} | ({source} if source else set())
    earlier = "select file_id from load_ledger where superseded_by is null and list_contains($sources, source)"
    gone = sorted({i.strip() for i in removed} - {""})
    if gone:  # a record deleted and written again by this pull is not gone (read the records' ids only then)
        written = set().union(*(job.records.column("lead_id").to_pylist() for job in jobs if job.records is not None
                                and "lead_id" in job.records.column_names))
        gone = [i for i in gone if i not in written]
    if gone:  # the deleted journeys with rows stored: what the report counts (a record deleted and re-written is not gone)
        con.register("_removed_ids", pa.table({"lead_id": pa.array(gone, pa.string())}))
        try:
            con.execute(
                f"insert into _removed_journeys select distinct lead_id from (select lead_id from raw_events where file_id in "
                f"({earlier}) union all select lead_id from raw_leads where file_id in ({earlier})) "
                "where lead_id in (select lead_id from _removed_ids)",
                {"sources": sorted(sources)},
            )
        finally:
            con.unregister("_removed_ids")
    removed_events = 0
    # the rows of those records that failed a check go too: the new load quarantines them again if they still fail
    for table in ("raw_events", "raw_leads", "quarantine"):
        count = con.execute(
            f"delete from {ident(table)} where file_id in ({earlier}) and lead_id in (select lead_id from _superseded)",
            {"sources": sorted(sources)},
        ).fetchall()[0][0]
        removed_events += count if table == "raw_events" else 0
    # which journeys the fetched records are tied to now (raw_schema.tied_journeys), for the next pull
    con.execute("delete from pull_journeys where list_contains($sources, source) and (record in (select lead_id from _superseded) "
                "or journey in (select lead_id from _superseded))", {"sources": sorted(sources)})
    pairs = sorted({(job.source, r, j) for job in jobs if job.records is not None for r, j in job.ties})
    if pairs:
        con.executemany("insert into pull_journeys values (?, ?, ?)", pairs)
    return removed_events


def _remove_earlier(con: duckdb.DuckDBPyConnection, f: InputFile, load_id: int) -> int:
    """For --replace: drop the rows of earlier loads of this file (same path or same content)."""
    ids = [
        r[0]
        for r in con.execute(
            "select file_id from load_ledger where role = $role and superseded_by is null "
            "and (source_file = $path or sha256 = $sha)",
            {"role": f.role, "path": str(f.path), "sha": f.sha256},
        ).fetchall()
    ]
    if not ids:
        return 0
    table = "raw_leads" if f.role == "leads" else "raw_events"
    removed = con.execute(f"select count(*) from {ident(table)} where list_contains($ids, file_id)", {"ids": ids}).fetchall()[0][0]
    for t in (table, "quarantine"):
        con.execute(f"delete from {ident(t)} where list_contains($ids, file_id)", {"ids": ids})
    con.execute(
        "update load_ledger set superseded_by = $load where list_contains($ids, file_id)",
        {"load": load_id, "ids": ids},
    )
    return removed


# An offset no place on Earth has: beyond +-14:00, or 60 minutes or more ($bad_offset, searched in
# the text after the date, where a sign can only start the offset). DuckDB itself takes +25:00.
BAD_OFFSET = r"[+-]((1[5-9]|[2-9][0-9])(:?[0-9]{2})?|14:?(0[1-9]|[1-5][0-9])|[0-9]{2}:?[6-9][0-9])$"


def _timestamp_sql(text: str, config: FunnelConfig) -> str:
    """SQL turning trimmed ISO text into a naive UTC timestamp (NULL when it is not a real instant)."""
    naive = f"try_cast({text} as timestamp)"
    if config.timezone != "UTC":
        naive = f"timezone('UTC', timezone($tz, {naive}))"
    return (
        f"case when length({text}) > 10 and regexp_matches(substr({text}, 11), '[Zz+-]') "
        f"then (case when regexp_matches(substr({text}, 11), $bad_offset) then null "
        f"else timezone('UTC', try_cast({text} as timestamptz)) end) else {naive} end"
    )


@dataclass
class _Target:
    """Where one file's rows go and how their lines are numbered: the raw table and its columns,
    the SQL of a row's source line, the rows it is taken from (with the CSV reject offsets joined)."""

    table: str
    layout: list[tuple[str, str]]
    value_cols: list[str]
    ts_name: str
    line_expr: str = ""
    lines_from: str = "_incoming i"
    csv_rejects: bool = False


def _load_one(
    con: duckdb.DuckDBPyConnection,
    f: InputFile,
    load_id: int,
    config: FunnelConfig,
    now: datetime,
    progress: Progress,
    job: Job | None = None,
) -> FileReport:
    """Read, check and store one file as a new ledger row: its valid rows into the raw table, the
    others into the quarantine, exact duplicates dropped; the report says where every row went."""
    job = job or Job(f)
    file_id = con.execute("select coalesce(max(file_id), 0) + 1 from load_ledger").fetchall()[0][0]
    rejects = f"_rejects_{file_id}"
    if job.records is None:
        _unchanged(f)
    with reading(f.path, f.what):
        target = _read_and_check(con, f, file_id, rejects, config, now, progress)
        _quarantine(con, f, file_id, rejects, target, job)
    if job.records is None:
        _unchanged(f)  # what was read is what was checked and hashed
    if job.records is None:
        (_check_leads_dated if f.role == "leads" else _check_events_dated)(con, f)
    report = _store(con, f, file_id, target, job, progress)
    _record(con, f, file_id, load_id, report, job, config, now)
    for t in ("_incoming", "_dups", "_reject_lines", "_reject_offsets", rejects, f"{rejects}_scan", f"{rejects}_j"):
        con.execute(f"drop table if exists {ident(t)}")
    return report


def _unchanged(f: InputFile) -> None:
    """UserError when a file went away or changed since it was checked: its checks and its SHA-256 in
    the ledger would not be of what is read."""
    try:
        stat = f.path.stat()
    except OSError:
        raise UserError(f"{f.what} '{f.path}' disappeared after it was checked, before it was loaded: nothing was loaded.") from None
    if (stat.st_size, stat.st_mtime_ns) != (f.size, f.mtime_ns):
        raise UserError(f"{f.what} '{f.path}' changed after it was checked, before it was loaded: nothing was loaded "
                        "(load it again once it is written in full).")


def _check_leads_dated(con: duckdb.DuckDBPyConnection, f: InputFile) -> None:
    """Refuse a leads file that dates none of its leads: with no created_at and no event, a lead
    would count in no cohort and no week (the dashboard would put it in a week of 1969)."""
    good, dated = con.execute(
        "select count(*), count(*) filter (where created_at is not null or lead_id in (select lead_id from raw_events)) "
        "from _incoming where problem is null"
    ).fetchall()[0]
    if good and not dated:
        raise UserError(
            f"leads file '{f.path}' gives no date for any of its {good:,} leads: each needs a created_at "
            "(when the lead was created, such as 2024-01-31) or events (lead_id, stage, entered_at) loaded with "
            "or before it under the same lead_id."
        )


def _check_events_dated(con: duckdb.DuckDBPyConnection, f: InputFile) -> None:
    """Refuse an events file none of whose rows has a usable entered_at: it would load no event, and a
    warehouse of such files has no week to show (the dashboard would fall back to a week of 1969)."""
    undated = "problem in ('missing_timestamp', 'unparseable_timestamp', 'impossible_timestamp')"
    # the first row with a date (or another problem) ends the scan: a whole count only for a refusal
    if con.execute(f"select exists (select 1 from _incoming where problem is null or not {undated})").fetchall()[0][0]:
        return
    rows = con.execute("select count(*) from _incoming").fetchall()[0][0]
    if rows:
        raise UserError(
            f"events file '{f.path}' has no usable date: no row's entered_at is a date ({rows:,} empty or unreadable), "
            "and each event needs one (when its lead entered the stage, such as 2024-01-31 or 2024-01-31T09:30:00Z); "
            "nothing was loaded."
        )


def _check_params(f: InputFile, config: FunnelConfig, now: datetime) -> dict:
    """The values the checks compare with: the ISO pattern, the date limits, zone and label map."""
    params = {
        "iso": ISO_TIMESTAMP,
        "bad_offset": BAD_OFFSET,
        "min_ts": datetime.fromisoformat(config.min_date),
        "max_ts": now + timedelta(days=config.max_future_days),
        "spaces": SPACES,
    }
    if config.timezone != "UTC":
        params["tz"] = config.timezone
    if f.role == "events":
        labels = sorted(config.label_map().items())
        params["label_keys"] = [k for k, _ in labels]
        params["label_stages"] = [v for _, v in labels]
        params["space_run"] = SPACE_RUN
    return params


# A deal-value column's check (docs/loading.md, quarantine reasons): the config key naming the
# column, the problem, the SQL a bad value fails (`{c}`: the quoted column) and what the detail says.
VALUE_CHECKS = (
    ("amount_column", "unparseable_amount", "not coalesce(isfinite(try_cast({c} as double)), false)",
     "'amount \"' || {c} || '\" is not a number (write 1200.50: no currency, no thousands separators)'"),
    ("close_date_column", "unparseable_close_date",
     "not (regexp_full_match({c}, '\\d{{4}}-\\d{{2}}-\\d{{2}}([T ].*)?') and try_cast(left({c}, 10) as date) is not null)",
     "'close date \"' || {c} || '\" is not a date like 2026-12-31'"),
    ("deal_currency_column", "unknown_currency", "not regexp_full_match({c}, $currency_codes)",
     "'currency \"' || {c} || '\" is not an ISO 4217 code such as USD or EUR'"),
    ("forecast_column", "unknown_forecast_category", "{category} is null",
     "'forecast category \"' || {c} || '\" is not one of " + ", ".join(FORECAST_CATEGORIES) + "'"),
)


# The codes as one alternation: RE2 matches it in one pass over the value, ~14x cheaper than
# list_contains, which compares the value with each of the ~170 codes in turn.
CURRENCY_CODES = "(?:" + "|".join(re.escape(c) for c in sorted(CURRENCIES)) + ")"


def value_checks(config: FunnelConfig, attrs) -> list[tuple[str, str, str]]:
    """The deal-value checks of a file's columns: (problem, failing-value SQL, detail SQL) per
    configured column the file has; an empty value passes."""
    out = []
    for key, problem, fails, detail in VALUE_CHECKS:
        column = getattr(config, key)
        if column in attrs:
            c = ident(column)
            out.append((problem, f"{c} is not null and " + fails.format(c=c, category=forecast_category_sql(c)), detail.format(c=c)))
    return out


def _problem_sql(events: bool, ts_name: str, checks: list[tuple[str, str, str]] = ()) -> tuple[str, str]:
    """The CASE naming a row's quarantine reason (NULL: the row is good) and the one telling it;
    `checks`: the deal-value checks of the file's columns (value_checks)."""
    bad_values = " ".join(f"when {fails} then '{problem}'" for problem, fails, _ in checks)
    if events:
        problem = f"""case
            when lead_id is null then 'missing_lead_id'
            when ts_text is null then 'missing_timestamp'
            when not regexp_full_match(ts_text, $iso) then 'unparseable_timestamp'
            when ts is null then 'impossible_timestamp'
            when ts < $min_ts then 'timestamp_too_old'
            when ts > $max_ts then 'timestamp_in_future'
            when stage_label is null then 'missing_stage'
            when stage is null then 'unknown_stage'
            {bad_values}
        end"""
    else:
        problem = f"""case
            when lead_id is null then 'missing_lead_id'
            when ts_text is not null and not regexp_full_match(ts_text, $iso) then 'unparseable_timestamp'
            when ts_text is not null and ts is null then 'impossible_timestamp'
            when ts < $min_ts then 'timestamp_too_old'
            when ts > $max_ts then 'timestamp_in_future'
            {bad_values}
        end"""
    value_details = " ".join(f"when '{problem}' then {detail}" for problem, _, detail in checks)
    stage_details = (
        "when 'missing_stage' then 'stage is empty' "
        "when 'unknown_stage' then '{}' || stage_label || '{}'".format(*raw_schema.UNKNOWN_STAGE_DETAIL)
        if events
        else ""
    )
    detail = f"""case problem
            when 'missing_lead_id' then 'lead_id is empty'
            when 'missing_timestamp' then '{ts_name} is empty'
            when 'unparseable_timestamp' then '{ts_name} "' || ts_text || '" is not an ISO-8601 date or timestamp'
            when 'impossible_timestamp' then '{ts_name} "' || ts_text || '" is not a real date or time'
            when 'timestamp_too_old' then '{ts_name} ' || ts_text || ' is before ' || strftime($min_ts, '%Y-%m-%d')
            when 'timestamp_in_future' then '{ts_name} ' || ts_text || ' is after the load time'
            {stage_details}
            {value_details}
        end"""
    return problem, detail


def _read_and_check(
    con: duckdb.DuckDBPyConnection, f: InputFile, file_id: int, rejects: str, config: FunnelConfig, now: datetime, progress: Progress
) -> _Target:
    """Read the file into `_incoming`: every row with the raw table's columns, its problem (if any),
    the problem told in words and the raw text of a bad row."""
    events = f.role == "events"
    table = "raw_events" if events else "raw_leads"
    attrs = f.attributes
    raw_schema.add_attribute_columns(con, table, attrs)
    src, params = source_sql(f, rejects)
    raw_expr, raw_params = raw_sql(f)
    params.update(raw_params)
    params.update(_check_params(f, config, now))

    def col(name: str) -> str:
        c = f.column(name)
        return f"nullif(case when _fb_trim then trim({c}, $spaces) else {c} end, '')" if c else "null::varchar"

    ts_name = "entered_at" if events else "created_at"
    checks = value_checks(config, attrs)
    problem, detail = _problem_sql(events, ts_name, checks)
    if any(p == "unknown_currency" for p, _, _ in checks):
        params["currency_codes"] = CURRENCY_CODES
    stage_cols = stage_out = reason_sel = ""
    if events:
        stage_cols = f", {col('stage')} as stage_label"
        # A map lookup, not a join: a join would let DuckDB store the rows out of file order,
        # and the CSV line numbers below are taken from the order the rows are stored in.
        stage_out = f", {stage_sql('p.stage_label')} as stage"
        reason_sel = f", {col('reason')} as reason"
    attr_select = "".join(f", {col(a)} as {ident(a)}" for a in attrs)
    value_cols = (["lead_id", "stage", "stage_label", ts_name, "reason"] if events else ["lead_id", ts_name]) + list(attrs)
    # _incoming holds every column of the raw table, in its order and types, then the checks'
    # columns: when the raw table is empty it becomes the raw table (_take_over) instead of
    # being copied into it. CSV rows keep file order in the table DuckDB builds from them, so
    # rowid + 1 is the row's ordinal (numbering them during the read would make the read
    # single-threaded); their source_line is filled in afterwards.
    layout = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'main' and table_name = $t order by ordinal_position",
        {"t": table},
    ).fetchall()
    sources = {"file_id": "$file_id", "source_line": "null" if f.fmt == "csv" else "_ord"}
    sources.update({c: ident(c) for c in value_cols})
    table_select = ", ".join(f'cast({sources.get(c, "null")} as {kind}) as {ident(c)}' for c, kind in layout)
    params["file_id"] = file_id
    # concat, not concat_ws: one call with the separators as arguments costs ~0.6x (a NULL is '',
    # which puts no space next to a separator)
    row_text = "concat(chr(31), " + ", chr(31), ".join(f"c{i}" for i in range(len(f.names))) + ", chr(31))"
    incoming = f"""
        create or replace table _incoming as
        with src as ({src}),
        trimmed as (
            select *, {col('lead_id')} as lead_id{stage_cols},
                   {col(ts_name)} as ts_text{reason_sel}{attr_select}
            from (select *, {ROW_NEEDS_TRIM} as _fb_trim from (select *, {row_text} as _fb_row from src))
        ),
        parsed as (
            select p.*{stage_out}, {_timestamp_sql('p.ts_text', config)} as ts
            from trimmed p
        ),
        checked as (select *, ts as {ident(ts_name)}, {problem} as problem from parsed)
        select {table_select}, problem,
               case when problem is not null then {detail} end as detail,
               case when problem is not null then {raw_expr} end as _raw
        from checked
    """
    progress.execute(con, f"reading and checking {f.path.name}", incoming, params)
    return _Target(table=table, layout=layout, value_cols=value_cols, ts_name=ts_name)


def _quarantine(con: duckdb.DuckDBPyConnection, f: InputFile, file_id: int, rejects: str, target: _Target, job: Job) -> None:
    """Put every row that cannot load into the quarantine with its line: rows that failed a check,
    records the CSV or JSON reader rejected, and what an adapter could not turn into a record.
    Sets the target's line numbering for the rows that load."""
    ord_expr = "(i.rowid + 1)" if f.fmt == "csv" else "i.source_line"
    target.line_expr = ord_expr
    if f.fmt == "csv":
        target.line_expr = _csv_line_fixup(con, rejects, ord_expr)
        target.csv_rejects = con.execute("select exists (select 1 from _reject_offsets)").fetchall()[0][0]
        if target.csv_rejects:
            target.lines_from += f" asof left join _reject_offsets r on {ord_expr} > r.valid_before"
        else:
            target.line_expr = f"{ord_expr} + 1"
    elif f.fmt == "jsonl":
        sql, params = jsonl_rejects_sql(f)
        con.execute(f"create or replace temp table {ident(rejects + '_j')} as {sql}", params)
    con.execute(
        f"""insert into quarantine (file_id, line, reason, detail, raw, lead_id)
            select $file_id, {target.line_expr}, problem, detail, _raw, nullif(trim(i.lead_id), '')
            from {target.lines_from} where problem is not null""",
        {"file_id": file_id},
    )
    if f.fmt == "csv":
        con.execute(
            f"""insert into quarantine (file_id, line, reason, detail, raw)
                select $file_id, line,
                       case error_type {''.join(f" when '{k}' then '{v}'" for k, v in REJECT_REASONS.items())} else 'malformed_csv' end,
                       case when error_type = 'UNQUOTED VALUE' then
                              'unterminated quote: the record runs over ' || n || ' line(s), from line ' || line || ', and the rows inside it were not loaded'
                            else error_message end,
                       csv_line
                from _reject_lines""",
            {"file_id": file_id},
        )
    elif f.fmt == "jsonl":
        con.execute(
            f"insert into quarantine (file_id, line, reason, detail, raw) select $file_id, line, reason, detail, raw from {ident(rejects + '_j')}",
            {"file_id": file_id},
        )
    if job.rejections:  # what the adapter could not turn into a record
        con.executemany(
            "insert into quarantine (file_id, line, reason, detail, raw, lead_id) values (?, ?, ?, ?, ?, nullif(trim(?), ''))",
            [(file_id, r.line, r.reason, r.detail, r.raw, r.lead_id) for r in job.rejections],
        )


def _store(con: duckdb.DuckDBPyConnection, f: InputFile, file_id: int, target: _Target, job: Job, progress: Progress) -> FileReport:
    """Store the good rows that are not exact duplicates in the raw table and count where every row went."""
    table, ts_name = target.table, target.ts_name
    progress.execute(
        con,
        f"finding exact duplicates in {f.path.name}",
        _duplicates_sql(con, table, target.value_cols, "rowid" if f.fmt == "csv" else "source_line, rowid"),
    )
    parsed_rows, valid_rows, first_ts, last_ts = con.execute(
        f"select count(*), count(*) filter (where problem is null), min({ident(ts_name)}) filter (where problem is null), "
        f"max({ident(ts_name)}) filter (where problem is null) from _incoming"
    ).fetchall()[0]
    unknown = {}
    if f.role == "events":
        unknown = dict(
            con.execute(
                "select stage_label, count(*) from _incoming where problem = 'unknown_stage' "
                "group by stage_label order by 2 desc, 1"
            ).fetchall()
        )
    before = con.execute(f"select count(*) from {ident(table)}").fetchall()[0][0]
    has_dups = con.execute("select exists (select 1 from _dups)").fetchall()[0][0]
    if before == 0 and not target.csv_rejects:
        _take_over(con, table, "rowid + 2" if f.fmt == "csv" else None)
    else:
        dup_filter = " and i.rowid not in (select rid from _dups)" if has_dups else ""
        columns = ", ".join(ident(c) for c, _ in target.layout)
        values = ", ".join(target.line_expr if c == "source_line" else f"i.{ident(c)}" for c, _ in target.layout)
        progress.execute(
            con,
            f"storing {f.path.name}",
            f"insert into {ident(table)} ({columns}) select {values} from {target.lines_from} where i.problem is null{dup_filter}",
        )
    after = con.execute(f"select count(*) from {ident(table)}").fetchall()[0][0]
    reasons = dict(
        con.execute(
            "select reason, count(*) from quarantine where file_id = $f group by reason order by 2 desc, 1",
            {"f": file_id},
        ).fetchall()
    )
    quarantined = sum(reasons.values())
    return FileReport(
        path=f.path,
        role=f.role,
        status="loaded",
        rows_read=parsed_rows + quarantined - (parsed_rows - valid_rows),
        rows_loaded=after - before,
        rows_quarantined=quarantined,
        rows_duplicate=valid_rows - (after - before),
        reasons=reasons,
        unknown_labels=unknown,
        first_entered_at=first_ts,
        last_entered_at=last_ts,
        source=job.source,
        source_rows=job.source_rows,
        ignored=dict(job.ignored),
        notes=list(job.notes),
    )


def _record(
    con: duckdb.DuckDBPyConnection, f: InputFile, file_id: int, load_id: int, report: FileReport, job: Job, config: FunnelConfig, now: datetime
) -> None:
    """The file's row in the load ledger: what it was, when, and where its rows went."""
    adapter = job.records is not None
    con.execute(
        """insert into load_ledger (file_id, load_id, role, source_file, format, sha256, size_bytes, loaded_at,
               rows_read, rows_loaded, rows_quarantined, rows_duplicate, first_entered_at, last_entered_at,
               unknown_labels, superseded_by, config_fingerprint, source, source_rows, rows_ignored, ignored, notes)
           values ($file_id, $load_id, $role, $path, $fmt, $sha, $size, $loaded_at,
           $read, $loaded, $quarantined, $dup, $first, $last, $unknown, null, $fp,
           $source, $source_rows, $ignored_n, $ignored, $notes)""",
        {
            "source": job.source,
            "source_rows": job.source_rows,
            "ignored_n": report.rows_ignored if adapter and f.role == "events" else None,
            "ignored": json.dumps(job.ignored) if adapter and f.role == "events" else None,
            "notes": json.dumps(job.notes) if job.notes else None,
            "file_id": file_id,
            "load_id": load_id,
            "role": f.role,
            "path": str(f.path),
            "fmt": _export_format(f.path) if adapter else f.fmt + (f"+{f.compression}" if f.compression else ""),
            "sha": f.sha256,
            "size": f.size,
            "loaded_at": now,
            "read": report.rows_read,
            "loaded": report.rows_loaded,
            "quarantined": report.rows_quarantined,
            "dup": report.rows_duplicate,
            "first": report.first_entered_at,
            "last": report.last_entered_at,
            "unknown": json.dumps(report.unknown_labels),
            "fp": config.fingerprint(),
        },
    )


def _take_over(con: duckdb.DuckDBPyConnection, table: str, csv_line: str | None) -> None:
    """Make `_incoming` the (empty) raw table: drop its rejected and duplicate rows and the checks'
    columns, give it the raw table's NOT NULL constraints and name. Costs a fraction of copying
    millions of rows, which is what appending to a table that already has rows takes."""
    not_null = [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'main' and table_name = $t and is_nullable = 'NO' order by ordinal_position",
            {"t": table},
        ).fetchall()
    ]
    if csv_line:
        con.execute(f"update _incoming set source_line = {csv_line}")
    con.execute("delete from _incoming where problem is not null or rowid in (select rid from _dups)")
    for extra in ("problem", "detail", "_raw"):
        con.execute(f"alter table _incoming drop column {ident(extra)}")
    for name in not_null:
        con.execute(f"alter table _incoming alter column {ident(name)} set not null")
    con.execute(f"drop table {ident(table)}")
    con.execute(f"alter table _incoming rename to {ident(table)}")


def _duplicates_sql(con: duckdb.DuckDBPyConnection, table: str, value_cols: list[str], order: str = "rowid") -> str:
    """SQL creating `_dups(rid)`: the valid incoming rows that repeat a kept row exactly.

    A 64-bit hash of the lead and its time finds the candidates cheaply; every candidate is then
    compared on all value columns, so a hash collision can never drop a row. Within the file the first
    occurrence is kept; across files, a row equal to one already stored is dropped (an
    attribute the other side lacks compares as NULL).
    """
    cols = ", ".join(ident(c) for c in value_cols)
    key = f"hash({ident('lead_id')}, {ident('entered_at' if 'entered_at' in value_cols else 'created_at')})"
    within = f"""
        select rid from (
            select rowid as rid, row_number() over (partition by {cols} order by {order}) as rn
            from _incoming
            where problem is null
              and {key} in (select {key} from _incoming where problem is null group by 1 having count(*) > 1)
        ) where rn > 1"""
    existing = raw_schema.value_columns(con, table)
    has_rows = con.execute(f"select exists (select 1 from {ident(table)})").fetchall()[0][0]
    if not has_rows:
        return f"create or replace temp table _dups as {within}"
    match = " and ".join(
        f"r.{ident(c)} = i.{ident(c)}" if c in ("lead_id", "entered_at", "created_at") and c in value_cols
        else (f"r.{ident(c)} is not distinct from i.{ident(c)}" if c in value_cols else f"r.{ident(c)} is null")
        for c in existing
    )
    across = f"""
        select i.rowid as rid from _incoming i
        where i.problem is null and exists (select 1 from {ident(table)} r where {match})"""
    return f"create or replace temp table _dups as {within} union {across}"


def _csv_line_fixup(con: duckdb.DuckDBPyConnection, rejects: str, ord_expr: str) -> str:
    """Build the tables that turn a CSV row's ordinal into its line; return the line expression.

    DuckDB numbers the rows it accepts (1, 2, ...) and reports the line of each row it
    rejects. A row's line is its ordinal + 1 (the header) + the lines taken by rejected
    records before it; exact unless quoted values or blank lines span extra lines.
    """
    con.execute(
        f"""create or replace temp table _reject_lines as
            select line, error_type, error_message, csv_line,
                   length(ltrim(csv_line, chr(10))) - length(replace(ltrim(csv_line, chr(10)), chr(10), '')) + 1 as n
            from (select *, row_number() over (partition by line order by column_idx) as k from {ident(rejects)}) where k = 1"""
    )
    con.execute(
        """create or replace temp table _reject_offsets as
           select valid_before, max(cum_n) as cum_n from (
               select line - 2 - coalesce(sum(n) over (order by line rows between unbounded preceding and 1 preceding), 0) as valid_before,
                      sum(n) over (order by line) as cum_n
               from _reject_lines
           ) group by valid_before"""
    )
    return f"{ord_expr} + 1 + coalesce(r.cum_n, 0)"
