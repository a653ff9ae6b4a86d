"""Annotations: dated notes on the weekly numbers ("launched the healthcare campaign", "CRM outage"),
each for every lead or scoped to segment values, kept beside the warehouse (`<db>.notes.json`) and
drawn on the weekly charts and listed in the weekly pack (docs/report.md, Annotations).

Written like the saved views: the whole file to a temporary file in the same folder, then moved over
the old one (mode 0600), one writer at a time; a file this module did not write is refused in one
sentence and never overwritten.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from funnelboard.core import saved_views
from funnelboard.core.accounts import Scope
from funnelboard.core.errors import UserError

MAX_TEXT = 200
MAX_NOTES = 2000
VERSION = 1


@dataclass(frozen=True)
class Note:
    """One annotation: its number, its day (local), its text, and the segment values it is about
    (none: every lead)."""

    id: int
    day: date
    text: str
    filters: tuple[tuple[str, str], ...] = ()

    def applies(self, view_filters: tuple[tuple[str, str], ...]) -> bool:
        """A note about inbound leads belongs on views of inbound leads; a note about every lead on all."""
        return set(self.filters) <= set(view_filters)

    def label(self) -> str:
        scope = f" ({', '.join(f'{k} = {v}' for k, v in self.filters)})" if self.filters else ""
        return f"{self.day:%d %b %Y}: {self.text}{scope}"


def notes_path(db: Path) -> Path:
    return Path(str(db) + ".notes.json")


def check_text(text: str | None) -> str:
    """A note's text with its runs of spaces made one (so a note from a CSV reads as typed), checked."""
    text = re.sub(" {2,}", " ", text or "")
    return saved_views.check_text(text, "a note", MAX_TEXT, "a note needs a text, e.g. \"launched the healthcare campaign\".")


def check_day(text: str) -> date:
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise UserError(f"'{text}' is not a date like 2026-11-10.") from None


def read(path: Path) -> list[Note]:
    """Every note, by day then number; [] when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"the notes file '{path.name}' cannot be read ({exc.__class__.__name__}); fix or remove it.") from None
    try:
        data = json.loads(text)
        if data.get("version") != VERSION or not isinstance(data.get("notes"), list):
            raise ValueError
        notes = [Note(int(n["id"]), date.fromisoformat(n["day"]), str(n["text"]), tuple((str(k), str(v)) for k, v in n["filters"]))
                 for n in data["notes"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"the notes file '{path.name}' is not a notes file funnelboard wrote; fix or remove it.") from None
    return sorted(notes, key=lambda n: (n.day, n.id))


def _write(path: Path, notes: list[Note]) -> None:
    data = {"version": VERSION, "notes": [{"id": n.id, "day": n.day.isoformat(), "text": n.text, "filters": [list(f) for f in n.filters]}
                                          for n in notes]}
    saved_views.write_json(path, data, prefix=".notes-")


def add(path: Path, day: date, text: str, filters: tuple[tuple[str, str], ...] = (), segments=None) -> Note:
    """A new note; `segments` (the funnel's columns) checks the scope when given."""
    return add_many(path, [(day, text, filters)], segments)[0]


def add_many(path: Path, items: list[tuple[date, str, tuple[tuple[str, str], ...]]], segments=None) -> list[Note]:
    checked = []
    for day, text, filters in items:
        for column, _value in filters:
            if segments is not None and column not in segments:
                raise UserError(f"a note's scope '{column}' is not a segment column of this funnel ({', '.join(segments) or 'none'}).")
        checked.append((day, check_text(text), tuple(filters)))
    with saved_views.writing(path):
        notes = read(path)
        if len(notes) + len(checked) > MAX_NOTES:
            raise UserError(f"a warehouse keeps at most {MAX_NOTES:,} notes; remove some first.")
        first = max((n.id for n in notes), default=0) + 1
        new = [Note(first + i, day, text, filters) for i, (day, text, filters) in enumerate(checked)]
        _write(path, notes + new)
    return new


def remove(path: Path, note_id: int, scope: Scope = ()) -> bool:
    """Remove note `note_id`; whether there was one (one a user with `scope` may remove, see `removable`)."""
    with saved_views.writing(path):
        notes = read(path)
        kept = [n for n in notes if n.id != note_id or not removable(n, scope)]
        if len(kept) == len(notes):
            return False
        _write(path, kept)
    return True


def from_csv(csv_file: Path) -> list[tuple[date, str, tuple[tuple[str, str], ...]]]:
    """Notes from a CSV with the columns date, text and optionally column, value (a scope)."""
    try:
        with open(csv_file, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read '{csv_file}' ({exc.__class__.__name__}).") from None
    if rows and not {"date", "text"} <= set(rows[0]):
        raise UserError(f"'{csv_file}' needs the columns date and text (and optionally column and value for a scope).")
    out = []
    for line, row in enumerate(rows, start=2):
        try:
            day = check_day(row["date"])
        except UserError as exc:
            raise UserError(f"'{csv_file}' line {line}: {exc}") from None
        column, value = (row.get("column") or "").strip(), (row.get("value") or "").strip()
        out.append((day, row["text"], ((column, value),) if column else ()))
    return out


def for_view(notes: list[Note], filters: tuple[tuple[str, str], ...], first: date | None = None, last: date | None = None,
             scope: Scope = ()) -> list[Note]:
    """The notes a view shows: scoped to no more than its filters, on days in [first, last].

    A signed-in user's `scope` (docs/serving.md) filters the view too: a scope column with one allowed
    value counts as filtered to it, and a note about a value outside the scope never shows, whatever
    the address asks (`?owner=someone-else` finds no lead and no note)."""
    own = {column for column, _value in filters}
    implied = tuple((column, values[0]) for column, values in scope if len(values) == 1 and column not in own)
    view = tuple(filters) + implied
    return [n for n in notes if visible(n, scope) and n.applies(view)
            and (first is None or n.day >= first) and (last is None or n.day <= last)]


def visible(note: Note, scope: Scope) -> bool:
    """Whether a user with `scope` may see the note: it names no value of a scope column outside the scope."""
    allowed = dict(scope)
    return all(value in allowed[column] for column, value in note.filters if column in allowed)


def removable(note: Note, scope: Scope) -> bool:
    """Whether a user with `scope` may remove the note: anyone without a scope; a scoped user only a
    note about leads of their scope (one that names each scope column, within it)."""
    return not scope or (visible(note, scope) and all(any(c == column for c, _v in note.filters) for column, _values in scope))


def filters_for_new(view_filters: tuple[tuple[str, str], ...], scope: Scope, only_view: bool) -> tuple[tuple[str, str], ...]:
    """The scope of a note added from a view: the view's filters when `only_view`; and for a scoped
    user always a value of each scope column (the view's, or the scope's only one), so their note
    never shows on the views of leads outside their scope."""
    chosen = list(dict.fromkeys(view_filters)) if only_view else []
    for column, values in scope:
        picked = [v for c, v in view_filters if c == column]
        if any(v not in values for v in picked):
            raise UserError(f"your account sees {column} = {' or '.join(values)} only; this view's {column} filter is outside it.")
        if not picked:
            if len(values) > 1:
                raise UserError(f"your account sees several {column} values ({', '.join(values)}): filter the view to one "
                                f"to add a note for it.")
            picked = [values[0]]
        chosen += [(column, v) for v in picked if (column, v) not in chosen]
    return tuple(chosen)
