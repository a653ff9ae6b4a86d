"""Shared helpers: machine facts, child processes with their own peak memory, medians, Markdown."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ChildRun:
    """One child process: wall seconds, its own peak RSS, exit code, captured output."""

    cmd: list[str]
    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run_child(cmd: list[str], *, cwd: Path | None = None, timeout: float | None = None, env: dict | None = None) -> ChildRun:
    """Run cmd as a child and measure it alone.

    os.wait4 returns the rusage of exactly that child (and the grandchildren it waited for),
    so ru_maxrss is this child's peak, not the maximum over every child the harness ran
    (which is what RUSAGE_CHILDREN would give).
    """
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"fbbench-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+") as out, open(f"{out_path}.err", "w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env={**os.environ, **(env or {})}, start_new_session=True)
        timed_out = False
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                os.killpg(proc.pid, 9)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    return ChildRun(cmd, seconds, usage.ru_maxrss / 1024, proc.returncode, stdout, stderr, timed_out)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def memory_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    import duckdb

    versions = {"python": platform.python_version(), "duckdb": duckdb.__version__}
    for mod in ("pyarrow", "numpy", "pandas"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = "not installed"
    try:
        from funnelboard import __version__ as fb_version
    except ImportError:
        fb_version = "?"
    versions["funnelboard"] = fb_version
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb(), 1),
        **versions,
    }


def md_table(headers: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            if v != v:
                return "-"
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def rss_peak_mb_self() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
