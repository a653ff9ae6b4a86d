"""`notes`: dated annotations on the weekly numbers, beside the warehouse (docs/report.md, Annotations)."""

from __future__ import annotations

from pathlib import Path

import click

from funnelboard.cli.common import db_option, require_warehouse
from funnelboard.cli.query import _filters
from funnelboard.core import annotations
from funnelboard.core.errors import UserError


def _segments(db: str):
    from funnelboard.warehouse.gateway import Gateway

    return Gateway(require_warehouse(Path(db))).config().segments


@click.group()
def notes() -> None:
    """Dated notes drawn on the weekly charts and listed in the weekly pack: add, import, list, remove."""


@notes.command("add")
@click.argument("day")
@click.argument("text")
@click.option("--filter", "filters", multiple=True, help="COLUMN=VALUE: the note is about these leads only; repeatable.")
@db_option
def add(day: str, text: str, filters: tuple[str, ...], db: str) -> None:
    """Add a note on DAY (YYYY-MM-DD), e.g. `notes add 2026-11-10 "launched the healthcare campaign"`."""
    note = annotations.add(annotations.notes_path(Path(db)), annotations.check_day(day), text, _filters(filters), _segments(db))
    click.echo(f"note {note.id}: {note.label()}")


@notes.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False))
@db_option
def import_notes(csv_file: str, db: str) -> None:
    """Add the notes of a CSV with the columns date, text and optionally column, value (a scope)."""
    added = annotations.add_many(annotations.notes_path(Path(db)), annotations.from_csv(Path(csv_file)), _segments(db))
    click.echo(f"added {len(added)} note(s) from {csv_file}")


@notes.command("list")
@db_option
def list_notes(db: str) -> None:
    """Every note: its number, day, text and scope."""
    for note in annotations.read(annotations.notes_path(Path(db))):
        click.echo(f"{note.id}\t{note.label()}")


@notes.command("remove")
@click.argument("note_id", type=int)
@db_option
def remove(note_id: int, db: str) -> None:
    """Remove the note with this number (`notes list` shows them)."""
    if not annotations.remove(annotations.notes_path(Path(db)), note_id):
        raise UserError(f"there is no note {note_id}; `funnelboard notes list` shows them.")
    click.echo(f"removed note {note_id}")
