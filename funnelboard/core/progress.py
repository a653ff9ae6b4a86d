"""Progress for long loads: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

import duckdb


class Progress:
    """Reports phases and the percentage of long DuckDB statements to a stream (stderr)."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True, interval: float = 0.25):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def note(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def execute(self, con: duckdb.DuckDBPyConnection, label: str, sql: str, params: dict | None = None) -> None:
        """Run one statement while showing its progress; the statement's result is discarded."""
        if not self.enabled:
            con.execute(sql, params or {})
            return
        con.execute("SET enable_progress_bar = true")
        con.execute("SET enable_progress_bar_print = false")
        done = threading.Event()
        started = time.monotonic()
        self._show(label, 0.0)
        watcher = threading.Thread(target=self._watch, args=(con, label, done), daemon=True)
        watcher.start()
        try:
            con.execute(sql, params or {})
        finally:
            done.set()
            watcher.join()
        self._show(label, 100.0, final=True, seconds=time.monotonic() - started)

    def _watch(self, con: duckdb.DuckDBPyConnection, label: str, done: threading.Event) -> None:
        last_line = 0.0
        while not done.wait(self.interval):
            try:
                pct = con.query_progress()
            except duckdb.Error:
                continue
            if pct < 0:
                continue
            # Off a terminal, one line per 10 % step is enough for a log.
            if self.tty or pct - last_line >= 10:
                last_line = pct
                self._show(label, pct)

    def _show(self, label: str, pct: float, *, final: bool = False, seconds: float = 0.0) -> None:
        if self.tty:
            filled = int(pct / 5)
            bar = "#" * filled + "-" * (20 - filled)
            tail = f" {seconds:.1f}s\n" if final else ""
            print(f"\r  [{bar}] {pct:5.1f}% {label}{tail}", end="", file=self.stream, flush=True)
        elif final:
            print(f"  {label}: done in {seconds:.1f}s", file=self.stream, flush=True)
        elif pct == 0.0:
            print(f"  {label}: started", file=self.stream, flush=True)
        else:
            print(f"  {label}: {pct:.0f}%", file=self.stream, flush=True)
