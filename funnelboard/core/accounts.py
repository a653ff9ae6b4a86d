"""Accounts of a served dashboard: who may sign in, with which password hash, seeing which leads.

A users file is TOML written by `funnelboard users add` (docs/serving.md):

    [users.maya]
    password = "scrypt:32768:8:1$..."       # a hash; a plain-text password is refused
    scope = { owner = ["Maya Patel"] }      # optional: the only leads this user sees

A scope maps segment columns to the values allowed (one value or a list); the dashboard adds it to
every query of the user's (dashboard/accounts.py, MetricRequest.scope). Passwords are hashed with
werkzeug.security (scrypt) and never written, logged or passed on a command line in plain text.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import generate_password_hash

from funnelboard.core.config import IDENTIFIER
from funnelboard.core.errors import UserError

HASH_METHODS = ("scrypt:", "pbkdf2:")  # what werkzeug.security writes and checks
USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
ENV = "FUNNELBOARD_AUTH"  # one account as NAME:HASH, for a container with no users file

Scope = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    scope: Scope = ()

    def describe(self) -> str:
        """`maya: owner in (Maya Patel)`: the user and what they see, never the hash."""
        if not self.scope:
            return f"{self.name}: every lead"
        return f"{self.name}: " + " and ".join(f"{col} in ({', '.join(values)})" for col, values in self.scope)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise UserError("a password needs at least 8 characters.")
    return generate_password_hash(password, method="scrypt")


def is_hash(text: str) -> bool:
    return text.startswith(HASH_METHODS) and text.count("$") == 2


def read_users(path: Path) -> dict[str, User]:
    """The users of a users file; UserError naming the file and the first problem (a plain-text
    password above all: the file is refused, not served)."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the users file '{path}': {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise UserError(f"the users file '{path}' is not UTF-8 text.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if re.search(r"^[^\s#\[=]+:\S", text, re.M):
            raise UserError(
                f"'{path}' holds user:password lines, passwords in plain text: funnelboard keeps only hashes; "
                f"write the file with `funnelboard users add NAME --users {path}`."
            ) from None
        raise UserError(f"the users file '{path}' is not valid TOML: {exc}.") from None
    table = data.get("users")
    if not isinstance(table, dict) or not table or set(data) != {"users"}:
        raise UserError(f"the users file '{path}' needs [users.NAME] tables and nothing else; `funnelboard users add` writes one.")
    return {name: _user(name, entry, path) for name, entry in table.items()}


def _user(name: str, entry, path: Path) -> User:
    where = f"user '{name}' in '{path}'"
    if not USER_NAME.match(name):
        raise UserError(f"{where}: a user name is 1 to 64 letters, digits, '.', '_', '@' or '-'.")
    if not isinstance(entry, dict) or set(entry) - {"password", "scope"}:
        raise UserError(f"{where} may have only `password` and `scope`.")
    password = entry.get("password")
    if not isinstance(password, str) or not password:
        raise UserError(f"{where} has no password hash; set one with `funnelboard users add {name} --users {path}`.")
    if not is_hash(password):
        raise UserError(
            f"{where} has a plain-text password: funnelboard keeps only hashes; set it with `funnelboard users add {name} --users {path}`."
        )
    return User(name, password, parse_scope(entry.get("scope", {}), where))


def parse_scope(raw, where: str) -> Scope:
    """{column: value or [values]} as a sorted Scope; column names follow the config's name rule."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: scope must be a table of column = value or [values].")
    scope = []
    for col, values in sorted(raw.items()):
        if not IDENTIFIER.match(col):
            raise UserError(f"{where}: scope column '{col}' is not a column name (lower-case letters, digits and _).")
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise UserError(f"{where}: scope {col} must be a value or a non-empty list of values.")
        scope.append((col, tuple(sorted(set(values)))))
    return tuple(scope)


def scope_from_flags(flags: tuple[str, ...]) -> Scope:
    """--scope COL=VALUE flags (repeatable; values of one column add up) as a Scope."""
    raw: dict[str, list[str]] = {}
    for flag in flags:
        col, sep, value = flag.partition("=")
        if not sep or not col or not value:
            raise UserError(f"--scope '{flag}' is not COLUMN=VALUE.")
        raw.setdefault(col.strip(), []).append(value.strip())
    return parse_scope(raw, "--scope")


def users_from_env(value: str) -> dict[str, User]:
    """FUNNELBOARD_AUTH=NAME:HASH (one account, every lead); a plain-text password is refused."""
    name, sep, password = value.partition(":")
    if not sep or not name or not password:
        raise UserError(f"{ENV} must be NAME:HASH (a hash from `funnelboard users hash`).")
    if not is_hash(password):
        raise UserError(f"{ENV} holds a plain-text password: funnelboard keeps only hashes; make one with `funnelboard users hash`.")
    return {name: _user(name, {"password": password}, Path(ENV))}


def check_scopes(users: dict[str, User], segments: tuple[str, ...]) -> None:
    """UserError when a scope names a column the warehouse does not segment by (it could not apply)."""
    for user in users.values():
        for col, _values in user.scope:
            if col not in segments:
                raise UserError(
                    f"user '{user.name}' has a scope on '{col}', which is not a segment column of this warehouse "
                    f"({', '.join(segments) or 'it has none'})."
                )


def write_users(path: Path, users: dict[str, User]) -> None:
    """Write the users file (readable by its owner only), replacing it whole."""
    lines = ["# funnelboard users: written by `funnelboard users`; passwords are hashes (docs/serving.md).", ""]
    for user in sorted(users.values(), key=lambda u: u.name):
        lines += [f"[users.{json.dumps(user.name)}]", f"password = {json.dumps(user.password_hash)}"]
        if user.scope:
            cols = ", ".join(f"{col} = [{', '.join(json.dumps(v) for v in values)}]" for col, values in user.scope)
            lines.append(f"scope = {{ {cols} }}")
        lines.append("")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    os.replace(tmp, path)
