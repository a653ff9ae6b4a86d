"""Saved views: named dashboard addresses (a page's path and query string), kept per user in a small
JSON file next to the warehouse (`<db>.views.json`).

The file is written whole to a temporary file in the same folder and moved over the old one, so a
reader never sees half of it, with mode 0600 (it names users), one writer at a time. A file that is not what this module
writes is refused in one sentence and never overwritten. Without accounts every visitor shares one
list (user ""); with accounts each user sees and changes only their own. A saved address carries
no scope: scopes are applied by the server to every request, so opening a view never widens one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
import unicodedata
from pathlib import Path

from funnelboard.core.errors import UserError

MAX_NAME = 60
MAX_VIEWS = 100  # per user
MAX_ADDRESS = 2000  # characters of path + query string
VERSION = 1
_lock = threading.Lock()  # one writer at a time among a server's threads (flock below: among processes)


def views_path(db: Path) -> Path:
    """Where the saved views of warehouse `db` live."""
    return Path(str(db) + ".views.json")


def check_name(name: str | None) -> str:
    """The name trimmed, or a UserError saying what is wrong with it."""
    return check_text(name, "a view's name", MAX_NAME, "give the view a name first.")


def check_text(text: str | None, what: str, most: int, missing: str) -> str:
    """A short text a person typed, trimmed: not empty (else `missing`), at most `most` characters, no
    control or invisible format characters (a tab included; each a one-sentence UserError)."""
    text = (text or "").strip()
    if not text:
        raise UserError(missing)
    if len(text) > most:
        raise UserError(f"{what} has at most {most} characters; this one has {len(text)}.")
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise UserError(f"{what} cannot hold control or invisible format characters.")
    return text


def check_address(address: str) -> str:
    """A path with its query string on this server (no scheme, host or fragment)."""
    if not address.startswith("/") or address.startswith("//") or "#" in address or "\\" in address:
        raise UserError("only an address of this dashboard (a path starting with /) can be saved.")
    if len(address) > MAX_ADDRESS:
        raise UserError(f"this address is longer than {MAX_ADDRESS:,} characters and cannot be saved.")
    if any(unicodedata.category(c).startswith("C") for c in address):
        raise UserError("this address holds control characters and cannot be saved.")
    return address


def read(path: Path) -> dict[str, dict[str, str]]:
    """user -> {name: address}; {} when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"the saved views file '{path.name}' cannot be read ({exc.__class__.__name__}); fix or remove it.") from None
    try:
        data = json.loads(text)
        users = data["users"]
        if data.get("version") != VERSION or not isinstance(users, dict):
            raise ValueError
        for user, views in users.items():
            if not isinstance(user, str) or not isinstance(views, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in views.items()
            ):
                raise ValueError
    except (ValueError, KeyError, TypeError):
        raise UserError(f"the saved views file '{path.name}' is not a views file funnelboard wrote; fix or remove it.") from None
    return users


def _write(path: Path, users: dict[str, dict[str, str]]) -> None:
    write_json(path, {"version": VERSION, "users": users}, prefix=".views-")


def write_json(path: Path, data: dict, *, prefix: str) -> None:
    """`data` as the whole of `path`: a temporary file in the same folder (mode 0600), synced, moved over."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def writing(path: Path):
    """One writer at a time: the server's threads, and a `funnelboard views` command beside it."""
    with _lock:
        fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock


def views_of(path: Path, user: str) -> list[tuple[str, str]]:
    """The user's saved views as (name, address), by name."""
    return sorted(read(path).get(user, {}).items(), key=lambda kv: kv[0].casefold())


def save(path: Path, user: str, name: str, address: str) -> str:
    """Save (or replace) the user's view `name`; the name as stored."""
    name, address = check_name(name), check_address(address)
    with writing(path):
        users = read(path)
        mine = users.setdefault(user, {})
        if name not in mine and len(mine) >= MAX_VIEWS:
            raise UserError(f"you have {MAX_VIEWS} saved views already; remove one first.")
        mine[name] = address
        _write(path, users)
    return name


def remove(path: Path, user: str, name: str) -> bool:
    """Remove the user's view `name`; whether there was one."""
    with writing(path):
        users = read(path)
        if name not in users.get(user, {}):
            return False
        del users[user][name]
        if not users[user]:
            del users[user]
        _write(path, users)
    return True
