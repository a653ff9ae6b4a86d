"""`views`: the dashboard's saved views of a warehouse (`<db>.views.json`), listed or removed from
the shell, e.g. to tidy a departed user's list (saving happens in the dashboard's header)."""

from __future__ import annotations

from pathlib import Path

import click

from funnelboard.cli.common import db_option
from funnelboard.core import saved_views
from funnelboard.core.errors import UserError

user_option = click.option("--user", default="", metavar="NAME",
                           help="Whose views (a name of the users file); without it, the shared list of a server without accounts.")


@click.group()
def views() -> None:
    """The dashboard's saved views: list, remove."""


@views.command("list")
@db_option
@user_option
def list_views(db: str, user: str) -> None:
    """Each saved view of one user (or the shared list): its name and address."""
    for name, address in saved_views.views_of(saved_views.views_path(Path(db)), user):
        click.echo(f"{name}\t{address}")


@views.command("remove")
@click.argument("name")
@db_option
@user_option
def remove_view(name: str, db: str, user: str) -> None:
    """Remove one saved view."""
    path = saved_views.views_path(Path(db))
    if not saved_views.remove(path, user, name):
        whose = f"user '{user}'" if user else "the shared list"
        raise UserError(f"there is no saved view '{name}' of {whose} in {path}.")
    click.echo(f"removed '{name}' from {path}")
