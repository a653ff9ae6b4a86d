"""Steps measured in child processes: generate, `funnelboard load`, the bare DuckDB floor, the metric set.

Child entry points (run by the harness, not by hand):
    python -m benchmarks.load_bench floor FILE DB      bare CREATE TABLE AS SELECT * FROM read_csv/read_parquet
    python -m benchmarks.load_bench metrics DB         funnelboard's metric set via run_metric, one process
Each prints one JSON line with in-process seconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.common import PYTHON, ChildRun, median, run_child

# The metric set of the pandas peer, as funnelboard computes it: (metric, segment).
METRIC_SET = [
    ("sql_rate", None),
    ("segment_conversion", "channel"),
    ("time_in_stage", None),
    ("stage_accounting", None),
    ("disqualifiers", None),
    ("stalled", None),
]


def funnelboard_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "funnelboard", *args]


def generate(n: int, out: Path) -> ChildRun:
    run = run_child(funnelboard_cmd("generate", "--events", str(n), "--out", str(out)))
    _check(run, "generate")
    return run


def load(src: Path, db: Path) -> ChildRun:
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    run = run_child(funnelboard_cmd("load", "--quiet", "--db", str(db), str(src)), cwd=db.parent)
    _check(run, "funnelboard load")
    return run


def floor(src: Path, db: Path) -> ChildRun:
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    run = run_child([PYTHON, "-m", "benchmarks.load_bench", "floor", str(src), str(db)])
    _check(run, "bare DuckDB read")
    db.unlink(missing_ok=True)
    return run


def metric_set(db: Path) -> tuple[ChildRun, dict]:
    run = run_child([PYTHON, "-m", "benchmarks.load_bench", "metrics", str(db)])
    _check(run, "metric set")
    return run, json.loads(run.stdout.strip().splitlines()[-1])


def repeat(fn, times: int) -> dict:
    """Run fn() `times` times; median seconds, max peak MB, the runs."""
    runs = [fn() for _ in range(times)]
    return {"seconds": median([r.seconds for r in runs]), "peak_mb": max(r.peak_mb for r in runs), "runs": [r.seconds for r in runs]}


def _check(run: ChildRun, what: str) -> None:
    if not run.ok:
        raise RuntimeError(f"{what} failed ({run.returncode}): {' '.join(run.cmd)}\n{run.stderr[-3000:]}")


# ---- child side ---------------------------------------------------------------------------


def _child_floor(src: str, db: str) -> None:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(db)
    reader = "read_parquet" if src.endswith(".parquet") else "read_csv"
    con.execute(f"create table t as select * from {reader}(?)", [src])
    con.close()
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def _child_metrics(db: str) -> None:
    t_import = time.perf_counter()
    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics import LISTS, MetricRequest, list_table, run_metric

    t0 = time.perf_counter()
    gateway = Gateway(Path(db))
    per_metric = {}
    rows = {}
    for name, segment in METRIC_SET:
        t = time.perf_counter()
        if name in LISTS:  # a list as columns (pyarrow), as the peer's is a DataFrame
            rows[name] = list_table(gateway, name, MetricRequest(segment=segment)).num_rows
        else:
            rows[name] = len(run_metric(gateway, name, MetricRequest(segment=segment)))
        per_metric[name] = time.perf_counter() - t
    total = time.perf_counter() - t0
    # the lists again as run_metric returns them, a Python dict per row (reported beside the headline)
    as_dicts = {}
    for name, segment in METRIC_SET:
        if name in LISTS:
            t = time.perf_counter()
            run_metric(gateway, name, MetricRequest(segment=segment))
            as_dicts[name] = time.perf_counter() - t
    print(json.dumps({"seconds": total, "import_seconds": t0 - t_import, "per_metric": per_metric, "rows": rows,
                      "lists_as_dicts": as_dicts}))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"floor": _child_floor, "metrics": _child_metrics}[mode](*args)
