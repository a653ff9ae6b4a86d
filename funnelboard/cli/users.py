"""`users`: the accounts of a served dashboard, in a users file of password hashes (docs/serving.md).

Passwords are asked for (hidden, twice) or read from standard input with --password-stdin, never
taken from the command line, where other users of the machine and shell history would see them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from funnelboard.core.accounts import USER_NAME, User, hash_password, read_users, scope_from_flags, write_users
from funnelboard.core.errors import UserError

users_option = click.option("--users", "users_file", required=True, type=click.Path(dir_okay=False), envvar="FUNNELBOARD_USERS",
                            help="The users file (TOML of password hashes).")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise UserError("--password-stdin read no password.")
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _existing(path: Path) -> dict[str, User]:
    return read_users(path) if path.exists() and path.stat().st_size else {}


@click.group()
def users() -> None:
    """Accounts for `funnelboard serve --users FILE`: add, remove, list, hash."""


@users.command("add")
@click.argument("name")
@users_option
@click.option("--scope", "scopes", multiple=True, metavar="COL=VALUE",
              help="Show this user only leads with COL=VALUE (repeatable; values of one column add up).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking.")
def add_user(name: str, users_file: str, scopes: tuple[str, ...], password_stdin: bool) -> None:
    """Add a user, or set an existing user's password and scope."""
    if not USER_NAME.match(name):
        raise UserError(f"'{name}' is not a user name: 1 to 64 letters, digits, '.', '_', '@' or '-'.")
    path = Path(users_file)
    found = _existing(path)
    user = User(name, hash_password(_password(password_stdin)), scope_from_flags(scopes))
    write_users(path, {**found, name: user})
    click.echo(f"{'updated' if name in found else 'added'} {user.describe()} in {path}")


@users.command("remove")
@click.argument("name")
@users_option
def remove_user(name: str, users_file: str) -> None:
    """Remove a user."""
    path = Path(users_file)
    found = _existing(path)
    if name not in found:
        raise UserError(f"there is no user '{name}' in {path}.")
    del found[name]
    write_users(path, found)
    click.echo(f"removed {name} from {path}")


@users.command("list")
@users_option
def list_users(users_file: str) -> None:
    """Each user and the leads they see (never a password hash)."""
    for user in sorted(_existing(Path(users_file)).values(), key=lambda u: u.name):
        click.echo(user.describe())


@users.command("hash")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking.")
def hash_command(password_stdin: bool) -> None:
    """Print a password hash, for FUNNELBOARD_AUTH=NAME:HASH."""
    click.echo(hash_password(_password(password_stdin)))
