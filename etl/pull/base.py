"""What a pull asks of a connector and what it gets back (the contract: etl/pull/__init__.py)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress
from funnelboard.etl.pull import CONNECTORS


class QuotaReached(Exception):
    """The CRM's daily (or other long) API quota is used up; the message says so in one sentence."""


@dataclass
class PullRequest:
    crm: str
    marks: dict[str, str]  # object -> ISO-8601 UTC instant: fetch records changed at or after it
    since: str | None  # ISO-8601 UTC: where objects without a mark start (None: from the beginning)
    out: Path  # the directory the connector writes its files into (it exists and is empty)
    progress: Progress = field(default_factory=lambda: Progress(enabled=False))
    options: dict = field(default_factory=dict)  # the [source.<crm>] table of funnel.toml: the columns the adapter will read
    # tied(ids): the (record, journey) pairs earlier pulls stored (Translation.ties) whose record or journey is one of
    # `ids`, read from the warehouse as the connector asks: a record fetched again brings the journey it was written
    # into, so a record leaving a journey rewrites both (a deal no longer associated with its contact, a task moved)
    tied: Callable[[list[str]], list[tuple[str, str]]] = field(default=lambda ids: [])

    def start(self, obj: str) -> str | None:
        """Where fetching `obj` starts: its mark, else `since`, else None (everything)."""
        return self.marks.get(obj) or self.since


@dataclass
class Pulled:
    files: list[Path]  # export files in the source adapter's input shape
    marks: dict[str, str]  # object -> new mark (only objects it fetched; others keep theirs)
    counts: dict[str, int] = field(default_factory=dict)  # records fetched per object, for the report
    leads: list[Path] = field(default_factory=list)  # canonical leads files (`load --leads`), if any
    stopped: str | None = None  # one sentence when a quota stopped the pull before the end
    # Journey ids (as the source adapter writes them) whose records the CRM deleted or merged away since the marks:
    # the load deletes what earlier loads stored under them. Never the id of a journey that lives on (a lead whose
    # deleted opportunity continued it is re-fetched and written without it instead).
    removed: list[str] = field(default_factory=list)

    def manifest(self) -> dict:
        return {
            "files": [p.name for p in self.files],
            "leads": [p.name for p in self.leads],
            "marks": self.marks,
            "counts": self.counts,
            "stopped": self.stopped,
            "removed": sorted(self.removed),
        }


def get_connector(name: str):
    """The connector module `name` (with its `fetch`); one sentence for an unknown name or a missing extra."""
    module_name = CONNECTORS.get(name)
    if module_name is None:
        raise UserError(f"unknown CRM '{name}': `funnelboard pull` knows {', '.join(sorted(CONNECTORS))}.")
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("requests", "simple_salesforce", "jwt"):
            raise UserError(
                f"`funnelboard pull {name}` needs the pull extra: pip install 'funnelboard[pull]' (missing: {exc.name})."
            ) from None
        raise


def iso_utc(moment: datetime) -> str:
    """An instant as the marks store it: ISO-8601 in UTC with a Z, to the millisecond."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant (a mark, `--since`); a date alone is midnight UTC."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UserError(f"'{text}' is not a date or an ISO-8601 instant (e.g. 2026-01-31 or 2026-01-31T09:00:00Z).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def write_manifest(out: Path, pulled: Pulled) -> Path:
    path = out / ".pull.json"  # hidden: `funnelboard load DIR/* --source CRM` replays the files without it
    path.write_text(json.dumps(pulled.manifest(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
