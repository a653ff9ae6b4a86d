"""The one query gateway (docs/architecture.md, the warehouse protocol): every read of the warehouse goes through here.

It owns the connections (read-only, one per thread, reopened when a newer warehouse is
published), binds every value as a `$name` parameter, caps result sizes and logs timings.
Callers never import duckdb.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb
import numpy as np

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.warehouse.publish import open_read_only, use_warehouse

log = logging.getLogger("funnelboard.gateway")
T = TypeVar("T")
DEFAULT_ROW_CAP = 100_000
CACHE_ROWS = 50_000  # rows of recent results kept per gateway (a published file never changes)
PER_FILE_KEYS = 256  # small per-file facts kept per gateway (see Gateway.per_file)
SHARED_VALUES = 2  # large values shared by concurrent requests (see Gateway.shared): an unfiltered 10M-event one is ~70 MB
# DuckDB's share of the server's 1 GB (docs/performance.md): beyond it sorts and aggregates spill
# to a temporary directory instead of growing the process. FUNNELBOARD_READ_MEMORY overrides it.
READ_MEMORY_LIMIT = "640MB"
READS_AT_EXIT_SECONDS = 10.0  # how long exit waits for the calls into DuckDB under way (Gateway.finish_reads)


_SPILL: list[str] = []


def _spill_dir() -> str:
    """One temporary directory per process for DuckDB's spill files, removed at exit."""
    if not _SPILL:
        _SPILL.append(tempfile.mkdtemp(prefix="funnelboard-spill-"))
        atexit.register(shutil.rmtree, _SPILL[0], True)
    return _SPILL[0]


def _finish_reads_at_exit(ref: weakref.ref) -> None:
    gateway = ref()
    if gateway is not None:
        gateway.finish_reads()


def param_key(params: dict | None) -> tuple:
    """Parameters as a hashable, order-free cache key."""
    return tuple(sorted((k, repr(v)) for k, v in (params or {}).items()))


@dataclass
class Result:
    """Column names and rows of one query."""

    columns: list[str]
    rows: list[tuple]
    truncated: bool = False

    def dicts(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


class Gateway:
    """Read-only access to one published warehouse file."""

    def __init__(self, db: Path, *, row_cap: int = DEFAULT_ROW_CAP, cache_rows: int = CACHE_ROWS, memory_limit: str | None = None):
        self.db = Path(db)
        self.row_cap = row_cap
        self._local = threading.local()
        # Results of recent queries, keyed by the published file (inode, mtime), the SQL and its
        # values: a file is never written after it is published, so a hit is always current, and
        # a new publish changes the key. Bounded by rows, least recently used out first.
        self.cache_rows = cache_rows
        self._cache: OrderedDict[tuple, Result] = OrderedDict()
        self._cached_rows = 0
        self._cache_lock = threading.Lock()
        self.hits = self.misses = 0
        self._per_file: OrderedDict = OrderedDict()
        self._shared: OrderedDict = OrderedDict()
        self._inflight: dict[tuple, threading.Lock] = {}
        self._per_file_stamp: tuple | None = None
        self._base: duckdb.DuckDBPyConnection | None = None
        self._base_stamp: tuple | None = None
        self._instance_lock = threading.Lock()
        self._reads = 0  # calls into DuckDB under way (see finish_reads)
        self._reads_done = threading.Condition()
        self._finishing = False
        self._exit_hook = False
        self.memory_limit = memory_limit or os.environ.get("FUNNELBOARD_READ_MEMORY") or READ_MEMORY_LIMIT
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", self.memory_limit, re.IGNORECASE):
            raise UserError(f"the read memory limit '{self.memory_limit}' is not a size like 640MB or 1GB.")

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the published file as it is now.

        One DuckDB instance per published file, shared by all threads (one buffer pool, one
        memory limit); each thread has its own cursor on it. When a newer file is published the
        instance is replaced; the old one closes when the last thread's cursor on it does.
        """
        stamp = self._stamp()
        con = getattr(self._local, "con", None)
        if con is None or self._local.stamp != stamp:
            if con is not None:
                con.close()
            con = use_warehouse(self._instance(stamp).cursor())
            self._local.con, self._local.stamp = con, stamp
        return con

    def _instance(self, stamp: tuple) -> duckdb.DuckDBPyConnection:
        with self._instance_lock:
            if self._base is None or self._base_stamp != stamp:
                # The old instance is dropped, not closed: other threads may be reading from it.
                base = open_read_only(self.db)
                base.execute(f"SET memory_limit = '{self.memory_limit}'")
                base.execute(f"SET temp_directory = '{self._spill_dir()}'")
                if not self._exit_hook:  # registered after the spill directory's removal, so it runs before it
                    atexit.register(_finish_reads_at_exit, weakref.ref(self))
                    self._exit_hook = True
                self._base = base
                self._base_stamp = stamp
            return self._base

    def _spill_dir(self) -> str:
        return _spill_dir().replace("'", "''")

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Count one call into DuckDB; once the process is exiting, other threads wait here instead."""
        with self._reads_done:
            while self._finishing and threading.current_thread() is not threading.main_thread():
                self._reads_done.wait()
            self._reads += 1
        try:
            yield
        finally:
            with self._reads_done:
                self._reads -= 1
                self._reads_done.notify_all()

    def finish_reads(self, timeout: float = READS_AT_EXIT_SECONDS) -> bool:
        """At exit: wait for the calls into DuckDB under way and keep new ones out; whether they all
        finished in time. A daemon thread (the warm-up, a server's worker) still inside DuckDB when the
        interpreter finalizes aborts the process: it leaves through DuckDB's C++ frames."""
        with self._reads_done:
            self._finishing = True
            return self._reads_done.wait_for(lambda: self._reads == 0, timeout)

    def _stamp(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.db)
        except FileNotFoundError:
            return (0, 0, 0)
        # os.replace gives the published file a new inode, so a new publish is always seen.
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def query(self, sql: str, params: dict | None = None, *, row_cap: int | None = None) -> Result:
        """Run one SELECT with bound parameters; at most row_cap rows come back."""
        cap = self.row_cap if row_cap is None else row_cap
        return self.remembered(("query", sql, param_key(params), cap), lambda: self._run(sql, params, cap))

    def _run(self, sql: str, params: dict | None, cap: int) -> Result:
        started = time.perf_counter()
        with self._reading():
            con = self._connection()
            cur = con.execute(sql, params or {})
            columns = [d[0] for d in cur.description]
            rows = cur.fetchmany(cap + 1)
            truncated = len(rows) > cap
            if truncated:
                con.abort()  # results stream in DuckDB 2: drop the rest instead of reading it
        log.debug("query %.1f ms, %d rows", (time.perf_counter() - started) * 1000, len(rows))
        return Result(columns, rows[:cap], truncated)

    def remembered(self, key: tuple, compute: Callable[[], Result]) -> Result:
        """compute()'s result for this key and the published file, from the result cache when it is there."""
        key = (self._stamp(), *key)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return Result(hit.columns, list(hit.rows), hit.truncated)
            self.misses += 1
        result = compute()
        self._remember(key, result)
        return Result(result.columns, list(result.rows), result.truncated)

    def array(self, sql: str, params: dict | None = None) -> np.ndarray:
        """The one column of a SELECT as a numpy array (for statistics over millions of rows that
        would cost seconds as Python tuples). Not cached: callers cache what they compute from it."""
        started = time.perf_counter()
        with self._reading():
            columns = self._connection().execute(sql, params or {}).fetchnumpy()
        if len(columns) != 1:
            raise RuntimeError(f"array() needs a query with one column, got {list(columns)}")
        (values,) = columns.values()
        if np.ma.is_masked(values):
            raise RuntimeError("array() got NULLs")
        log.debug("array %.1f ms, %d values", (time.perf_counter() - started) * 1000, len(values))
        return np.asarray(values)

    def shared(self, key: tuple, compute: Callable[[], T]) -> T:
        """compute()'s value, shared by the requests that ask for the same key at about the same time
        (the three time-in-stage charts of one page read one array of spells): concurrent askers wait
        for one computation, and the last SHARED_VALUES values are kept. Off with the result cache
        (cache_rows 0): then every request computes its own."""
        if not self.cache_rows:
            return compute()
        key = (self._stamp(), *key)
        with self._cache_lock:
            if key in self._shared:
                self._shared.move_to_end(key)
                return self._shared[key]
            lock = self._inflight.setdefault(key, threading.Lock())
        with lock:
            with self._cache_lock:
                if key in self._shared:
                    return self._shared[key]
            try:
                value = compute()
            finally:
                with self._cache_lock:
                    self._inflight.pop(key, None)
            with self._cache_lock:
                self._shared[key] = value
                while len(self._shared) > SHARED_VALUES:
                    self._shared.popitem(last=False)
        return value

    def arrow(self, sql: str, params: dict | None = None):
        """A SELECT's rows as a pyarrow Table (columnar, no Python object per value). Not cached."""
        started = time.perf_counter()
        with self._reading():
            table = self._connection().sql(sql, params=params or None).to_arrow_table()
        log.debug("arrow %.1f ms, %d rows", (time.perf_counter() - started) * 1000, table.num_rows)
        return table

    def per_file(self, key: tuple, compute: Callable[[], T]) -> T:
        """A small fact derived from the published file (a segment column's values, the stall thresholds
        at an as_of), computed once per file: a file never changes. Kept apart from the result cache
        (and kept when it is off): these are the warehouse's facts, not answers to a view. At most
        PER_FILE_KEYS of them, the least recently used out first."""
        stamp = self._stamp()
        with self._cache_lock:
            if self._per_file_stamp != stamp:
                self._per_file, self._per_file_stamp = OrderedDict(), stamp
            if key in self._per_file:
                self._per_file.move_to_end(key)
                return self._per_file[key]
        value = compute()
        with self._cache_lock:
            if self._per_file_stamp == stamp:
                self._per_file[key] = value
                while len(self._per_file) > PER_FILE_KEYS:
                    self._per_file.popitem(last=False)
        return value

    def stream(self, sql: str, params: dict | None = None, *, batch: int = 10_000) -> Iterator[dict]:
        """Rows of one SELECT as dicts, read `batch` at a time (for downloads of any length: memory
        holds a batch, not the result). Its own cursor, so the thread's connection stays free."""
        with self._reading():
            cur = use_warehouse(self._connection().cursor())
        try:
            with self._reading():
                cur.execute(sql, params or {})
            columns = [d[0] for d in cur.description]
            while True:
                with self._reading():  # a batch at a time: not across the yields, where the reader sets the pace
                    rows = cur.fetchmany(batch)
                if not rows:
                    break
                for row in rows:
                    yield dict(zip(columns, row))
        finally:
            cur.close()

    def _remember(self, key: tuple, result: Result) -> None:
        size = max(len(result.rows), 1)
        if size > self.cache_rows // 4:
            return  # a long list would push out many small results (and cache_rows 0 keeps nothing)
        with self._cache_lock:
            if key in self._cache:
                return
            self._cache[key] = result
            self._cached_rows += size
            while self._cached_rows > self.cache_rows:
                _old, dropped = self._cache.popitem(last=False)
                self._cached_rows -= max(len(dropped.rows), 1)

    def config(self) -> FunnelConfig:
        """The configuration the warehouse was built with (read once per published file)."""
        return self.facts()["config"]

    def facts(self) -> dict:
        """What every metric needs to know of the published file, read once until a new one is published:
        its config, the fingerprint of the models it was built with, its first and last event."""
        stamp = self._stamp()
        cached = getattr(self._local, "facts", None)
        if cached is None or cached[0] != stamp:
            meta = dict(self.query("select key, value from meta where key in ('config', 'models_fingerprint', 'published_at')").rows)
            first, last = self.query("select min(entered_at), max(entered_at) from raw_events").rows[0]
            facts = {
                "config": FunnelConfig.from_json(meta["config"]),
                "models_fingerprint": meta.get("models_fingerprint"),
                "first_event": first,
                "last_event": last,
                "published_at": datetime.fromisoformat(meta["published_at"]) if meta.get("published_at") else None,
            }
            self._local.facts = cached = (stamp, facts)
        return cached[1]

    def close(self) -> None:
        """Close this thread's cursor; the shared instance goes when no thread holds a cursor on it."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
        with self._instance_lock:
            self._base = self._base_stamp = None  # dropped, not closed: closing would close every cursor

    def shutdown(self) -> None:
        """Close the shared instance and with it every thread's cursor: for a server that stopped,
        once no thread reads any more. DuckDB objects left for the interpreter's finalization can
        be torn down in a thread that is being killed, which aborts the process."""
        self.finish_reads()
        with self._instance_lock:
            if self._base is not None:
                self._base.close()
            self._base = self._base_stamp = None
