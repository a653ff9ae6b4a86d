"""Atomic publish of the warehouse file (docs/architecture.md, the warehouse protocol).

A load never writes into the file the dashboard reads: it copies the live file to a
private build file, writes there, runs CHECKPOINT, closes it and `os.replace`s it over
the live path. A crash at any moment leaves the last published warehouse as it was;
the orphaned build file is removed by the next load.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb

from funnelboard.core.errors import UserError

BUILD_MARK = ".building-"


class NoWarehouse(UserError):
    """There is no published warehouse at the path asked for."""

    def __init__(self, path: Path):
        super().__init__(
            f"no warehouse at '{path}': load one with `funnelboard load EVENTS.csv --db {path}` or try `funnelboard demo`."
        )
        self.path = Path(path)


BUILD_MEMORY_LIMIT = "1536MB"
COPY_CHECKPOINT_THRESHOLD = "1TB"


def build_path(live: Path) -> Path:
    return live.with_name(f".{live.name}{BUILD_MARK}{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans(live: Path) -> list[Path]:
    """Delete build files left by loads that died (their process no longer exists)."""
    removed = []
    for candidate in live.parent.glob(f".{live.name}{BUILD_MARK}*"):
        pid_text = candidate.name.rsplit(BUILD_MARK, 1)[1].split(".", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            if candidate.is_dir():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def load_lock(live: Path) -> Iterator[None]:
    """Hold the one-writer lock of a warehouse; a second load fails at once with a clear message."""
    live.parent.mkdir(parents=True, exist_ok=True)
    lock_path = live.with_name(f".{live.name}.lock")
    with open(lock_path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another load into '{live}' is running: wait for it to finish, then try again.") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def building(live: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to a private copy of the warehouse, published when the block succeeds.

    Must run under `load_lock`. On any exception the copy is deleted and the live file
    is untouched.
    """
    live = Path(live)
    remove_orphans(live)
    tmp = build_path(live)
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    copied = live.exists()
    if copied:
        copy_file(live, tmp)
    con = duckdb.connect(str(tmp))
    try:
        con.execute("SET TimeZone = 'UTC'")
        # Loads stay within the memory budget (docs/performance.md) and spill beyond it.
        con.execute(f"SET memory_limit = '{BUILD_MEMORY_LIMIT}'")
        if copied:
            # The copy is private until the CHECKPOINT below: an append writes its changes there once,
            # not in automatic checkpoints along the way (each rewrote the tables changed so far).
            con.execute(f"SET checkpoint_threshold = '{COPY_CHECKPOINT_THRESHOLD}'")
        yield con
        con.execute("CHECKPOINT")
        con.close()
        os.replace(tmp, live)
        _fsync_dir(live.parent)
    except BaseException:
        with contextlib.suppress(Exception):
            con.close()
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        raise


# ioctl FICLONE (linux/fs.h, _IOW(0x94, 9, int)): the destination shares the source's blocks until
# either is written. XFS (reflink, the default since xfsprogs 5.1) and btrfs have it; ext4 does not.
FICLONE = 0x40049409


def copy_file(source: Path, target: Path) -> str:
    """Copy `source` to `target` as a reflink clone where the filesystem can ("clone": no data is
    copied now, and the build's CHECKPOINT later writes only the blocks it changed), else byte for
    byte ("copy")."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return "clone"
        except OSError:  # EOPNOTSUPP (ext4, tmpfs), EXDEV, EINVAL, ENOTTY (not Linux): copy the bytes
            pass
    shutil.copyfile(source, target)
    return "copy"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Where `funnelboard demo` puts its warehouse, and the default --db: places worth naming.
NEARBY = ("funnelboard-demo/funnelboard.duckdb", "funnelboard.duckdb")


def no_warehouse_message(live: Path) -> str:
    """For the command line: one sentence for a path that holds no warehouse, naming the warehouses
    near it (the dashboard never lists files)."""
    cwd = Path.cwd()
    found = {
        p.resolve() for folder in {cwd, live.resolve().parent} for p in [*folder.glob("*.duckdb"), *(folder / n for n in NEARBY)]
        if p.is_file() and not p.name.startswith(".") and p.resolve() != live.resolve()
    }
    seen = sorted(str(p.relative_to(cwd)) if p.is_relative_to(cwd) else str(p) for p in found)
    if seen:
        shown = ", ".join(f"'{s}'" for s in seen[:5])
        return f"no warehouse at '{live}'; warehouses here: {shown} (pass one with --db)."
    return str(NoWarehouse(live))


def open_read_only(live: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published warehouse; UserError when there is none."""
    live = Path(live)
    if not live.is_file():
        raise NoWarehouse(live)
    # Not `duckdb.connect(live, read_only=True)`: DuckDB caches database instances by path, so
    # while any connection to the old file is open that call hands back the old instance, and a
    # reader never sees a newer publish. A fresh in-memory instance that ATTACHes the file opens
    # the file as it is now, every time.
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {sql_string(str(live))} AS warehouse (READ_ONLY)")
    except duckdb.Error as exc:
        con.close()
        raise UserError(f"'{live}' is not a funnelboard warehouse DuckDB can open: {str(exc).splitlines()[0]}") from None
    use_warehouse(con)
    return con


def use_warehouse(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Point a connection (or a new cursor of one) from `open_read_only` at the attached warehouse."""
    con.execute("USE warehouse")
    con.execute("SET TimeZone = 'UTC'")
    return con


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
