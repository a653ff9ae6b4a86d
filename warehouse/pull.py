"""`funnelboard pull CRM`: fetch what changed since the stored marks, write it as export files, load them.

The files land in `<warehouse dir>/pulls/<crm>/<UTC instant>/` with a `.pull.json` manifest (marks,
counts, whether a quota stopped the pull), and are loaded by `load_files` with `--source <crm>`:
the adapter that reads hand exports reads pulls too. The marks are published with the load.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress
from funnelboard.etl import raw_schema
from funnelboard.etl.pull.base import Pulled, PullRequest, get_connector, iso_utc, parse_instant, write_manifest
from funnelboard.warehouse.pipeline import LoadReport, PullMarks, load_files
from funnelboard.warehouse.publish import open_read_only


@dataclass
class PullReport:
    crm: str
    out: Path
    started_from: dict[str, str]  # object -> the mark the pull started at ("" = from the beginning / --since)
    pulled: Pulled
    load: LoadReport | None  # None when nothing changed (nothing fetched, or only records stored as they are)
    seconds: float


def stored_marks(db: Path, crm: str) -> dict[str, str]:
    if not db.exists():
        return {}
    con = open_read_only(db)
    try:
        return raw_schema.current_marks(con, crm)
    finally:
        con.close()


@contextlib.contextmanager
def stored_ties(db: Path, crm: str) -> Iterator[Callable[[list[str]], list[tuple[str, str]]]]:
    """PullRequest.tied over the published warehouse, read on demand while the connector fetches (a big CRM may
    have a pair per lead; the connector asks only for the records it fetched), and closed before the load."""
    con = open_read_only(db) if db.exists() else None
    try:
        yield (lambda ids: raw_schema.tied_journeys(con, crm, ids)) if con is not None else (lambda ids: [])
    finally:
        if con is not None:
            con.close()


def stored_journeys(db: Path, crm: str, ids: list[str]) -> set[str]:
    """Those of `ids` with rows that loads of `crm` stored: a deletion the CRM lists again (at the mark) or of a
    record never pulled changes nothing, and must not publish a new warehouse on every pull."""
    if not ids or not db.exists():
        return set()
    con = open_read_only(db)
    try:
        return {r[0] for r in con.execute(
            "select distinct lead_id from (select lead_id, file_id from raw_events union all select lead_id, file_id from raw_leads) "
            "where list_contains($ids, lead_id) and file_id in "
            "(select file_id from load_ledger where superseded_by is null and source = $crm)",
            {"ids": sorted(ids), "crm": crm}).fetchall()}
    finally:
        con.close()


def pull(
    db: Path,
    crm: str,
    config: FunnelConfig,
    *,
    since: str | None = None,
    out: Path | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> PullReport:
    """Fetch `crm`'s changes since the warehouse's marks (or `since`, which overrides them), write and
    load them, and store the new marks with the load."""
    started = time.monotonic()
    progress = progress or Progress(enabled=False)
    db = Path(db)
    connector = get_connector(crm)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    since_iso = iso_utc(parse_instant(since)) if since else None
    marks = {} if since_iso else stored_marks(db, crm)
    out = Path(out) if out else _default_out(db.parent / "pulls" / crm / now.strftime("%Y%m%dT%H%M%SZ"))
    if out.exists() and any(out.iterdir()):
        raise UserError(f"the pull directory '{out}' is not empty: pick another --out (a pull never overwrites files).")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    for obj, mark in sorted(marks.items()):
        progress.note(f"{crm}: {obj} changed since {mark}")
    try:
        with stored_ties(db, crm) as tied:
            pulled = connector.fetch(PullRequest(crm=crm, marks=marks, since=since_iso, out=out, progress=progress,
                                                 options=dict(config.sources.get(crm, {})), tied=tied))
    except BaseException:
        _remove_if_empty(out, created)
        raise
    write_manifest(out, pulled)
    report = PullReport(crm, out, marks, pulled, None, 0.0)
    gone = stored_journeys(db, crm, pulled.removed)
    if pulled.files or pulled.leads or gone:  # deletions alone load: their journeys go
        report.load = load_files(
            db,
            pulled.files,
            config,
            leads=pulled.leads,
            source=crm,
            progress=progress,
            now=now,
            marks=PullMarks(crm, {**marks, **pulled.marks}, complete=pulled.stopped is None),
            removed=sorted(gone),
        )
        if not report.load.published:  # the records at the marks, fetched again, as they were stored
            report.load = None
    report.seconds = time.monotonic() - started
    return report


def _remove_if_empty(out: Path, created: bool) -> None:
    """A pull that failed before writing anything leaves no empty folder behind (one it made itself);
    its parents `pulls/<crm>/` stay, they are where the next pull goes."""
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _default_out(first: Path) -> Path:
    """The folder of a pull given no --out: its instant, with -2, -3, ... when a pull of the same second
    (one killed and run again at once) already wrote there."""
    out, n = first, 2
    while out.exists() and any(out.iterdir()):
        out, n = first.with_name(f"{first.name}-{n}"), n + 1
    return out
