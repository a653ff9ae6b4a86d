"""Incremental refresh: append this week's events to a warehouse vs load everything again.

    python -m benchmarks.incremental --events 1000000 [--source FILE] [--repeat 3] [--json OUT]

Generates N events (`funnelboard generate`, or reads --source, a canonical events CSV), holds back
the latest 1 % of them by entered_at as "this week's batch", loads the other 99 % (a full build),
then times, each in a child process and side by side, (a) appending the batch to a copy of that
warehouse (the models refreshed for the leads it touches) and (b) one load of both files into a new
warehouse (every model built in full, the same raw rows). Reports the medians, append / full, and
where the append's time goes, from the load's own progress lines. Checks that (a) and (b) hold the
same rows in every model table.

Child entry points (run by the harness): `python -m benchmarks.incremental load DB FILE...` prints
one JSON line with the load's seconds, how the models were built and its timed steps; `... split
SOURCE BASE WEEK` cuts the events and prints the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import PYTHON, ChildRun, machine, md_table, median, run_child
from benchmarks.load_bench import funnelboard_cmd

# The append's steps, by the labels of the load's progress lines (warehouse/pipeline.py, build.py,
# etl/load.py); the first pattern a label matches names its step.
STEPS = (
    ("copying the live warehouse", re.compile(r"copying the warehouse")),
    ("reading + checking the file", re.compile(r"reading and checking")),
    ("duplicates against stored rows", re.compile(r"finding exact duplicates")),
    ("storing the rows", re.compile(r"storing ")),
    ("the touched leads and their raw rows", re.compile(r"leads this load touched|touched leads' rows of raw_")),
    ("by_lead models: the touched leads' rows", re.compile(r"refreshing (staging|intermediate|marts)/\w+$")),
    ("by_lead models: replacing them", re.compile(r"replacing the touched leads' rows of (?!marts/fct_open_spells)")),
    ("fct_open_spells (window refresh)", re.compile(r"fct_open_spells")),
    ("models built whole", re.compile(r"building ")),
    ("publishing (checkpoint, rename)", re.compile(r"publishing warehouse")),
)


def split(source: Path, base: Path, week: Path) -> dict:
    """Write the events of `source` but the latest 1 % by entered_at to `base`, those to `week`,
    each in file order; return the counts and the leads of the batch."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("set enable_progress_bar = false")
        con.execute("set memory_limit = '4GB'")
        con.execute("create table e as select *, row_number() over () as _ord from read_csv($f, all_varchar = true, header = true)",
                    {"f": str(source)})
        n = con.execute("select count(*) from e").fetchall()[0][0]
        cut = n - n // 100
        con.execute("create table k as select _ord, row_number() over (order by entered_at::timestamp, _ord) <= $cut as old from e",
                    {"cut": cut})
        columns = ", ".join(f'"{c}"' for c, *_ in con.execute("describe e").fetchall() if c != "_ord")
        for path, old in ((base, True), (week, False)):
            con.execute(f"copy (select {columns} from e join k using (_ord) where old = {old} order by _ord) to '{path}' (header)")
        leads = con.execute("select count(distinct lead_id) from e join k using (_ord) where not old").fetchall()[0][0]
        return {"events": n, "base_events": cut, "week_events": n - cut, "week_leads": leads}
    finally:
        con.close()


def load(db: Path, files: list[Path]) -> tuple[ChildRun, dict]:
    run = run_child([PYTHON, "-m", "benchmarks.incremental", "load", str(db), *map(str, files)])
    if not run.ok:
        raise RuntimeError(f"load failed ({run.returncode}): {' '.join(run.cmd)}\n{run.stderr[-3000:]}")
    return run, json.loads(run.stdout.strip().splitlines()[-1])


def fingerprints(db: Path) -> dict[str, tuple[int, int]]:
    """Each model table's rows and the sum of their hashes: equal multisets of rows give equal pairs."""
    import duckdb

    from funnelboard.warehouse.models import load_models

    tables = [m.name for m in load_models().values() if m.materialized == "table"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {m: tuple(con.execute(f"select count(*), coalesce(sum(hash(t)), 0) from {m} as t").fetchall()[0]) for m in tables}
    finally:
        con.close()


def breakdown(steps: list[list]) -> dict[str, float]:
    out = {name: 0.0 for name, _ in STEPS}
    for label, seconds in steps:
        for name, pattern in STEPS:
            if pattern.search(label):
                out[name] += seconds
                break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--source", type=Path, help="a canonical events CSV to use instead of generating one")
    ap.add_argument("--repeat", type=int, default=3, help="appends and full loads, each (default 3)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="fbinc-", dir=args.workdir))
    try:
        source = args.source
        if source is None:
            source = work / "events.csv"
            gen = run_child(funnelboard_cmd("generate", "--events", str(args.events), "--out", str(source)))
            if not gen.ok:
                raise RuntimeError(gen.stderr[-3000:])
        base, week = work / "base.csv", work / "week.csv"
        # in a child: a process's peak memory passes on to the children it starts
        cut = run_child([PYTHON, "-m", "benchmarks.incremental", "split", str(source), str(base), str(week)])
        if not cut.ok:
            raise RuntimeError(cut.stderr[-3000:])
        counts = json.loads(cut.stdout.strip().splitlines()[-1])
        print(f"{counts['events']:,} events: {counts['base_events']:,} loaded first, {counts['week_events']:,} in the batch "
              f"({counts['week_leads']:,} leads)", flush=True)
        first_db = work / "base.duckdb"
        first, first_out = load(first_db, [base])
        appends, fulls = [], []
        for _ in range(args.repeat):
            app_db, full_db = work / "append.duckdb", work / "full.duckdb"
            for p in (app_db, full_db):
                p.unlink(missing_ok=True)
            shutil.copyfile(first_db, app_db)
            os.sync()  # the copy's pages written out before the clock starts
            appends.append(load(app_db, [week]))
            fulls.append(load(full_db, [base, week]))
            os.sync()
        same = fingerprints(app_db) == fingerprints(full_db)
        size_mb = {"base": first_db.stat().st_size / 1e6, "after append": app_db.stat().st_size / 1e6,
                   "full": full_db.stat().st_size / 1e6}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    append_s = median([r.seconds for r, _ in appends])
    full_s = median([r.seconds for r, _ in fulls])
    steps = [breakdown(out["steps"]) for _, out in appends]
    parts = {name: median([s[name] for s in steps]) for name, _ in STEPS}
    in_load = median([out["seconds"] for _, out in appends])
    result = {
        "machine": machine(), **counts, "repeat": args.repeat,
        "first_load": {"seconds": first.seconds, "peak_mb": first.peak_mb, "build": first_out["build"]},
        "append": {"seconds": append_s, "runs": [r.seconds for r, _ in appends], "peak_mb": max(r.peak_mb for r, _ in appends),
                   "build": appends[0][1]["build"], "in_process": in_load, "steps": parts},
        "full": {"seconds": full_s, "runs": [r.seconds for r, _ in fulls], "peak_mb": max(r.peak_mb for r, _ in fulls),
                 "build": fulls[0][1]["build"]},
        "ratio": append_s / full_s,
        "same_rows": same,
        "size_mb": size_mb,
    }
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0 if same else 1


def report(r: dict) -> str:
    lines = [
        f"{r['events']:,} events; the batch: the latest {r['week_events']:,} by entered_at, {r['week_leads']:,} leads; "
        f"medians of {r['repeat']} run(s), each load a child process",
        "",
        md_table(["load", "seconds", "peak MB", "models"], [
            ["the first 99 % (new warehouse)", r["first_load"]["seconds"], r["first_load"]["peak_mb"], r["first_load"]["build"]],
            ["append the batch", r["append"]["seconds"], r["append"]["peak_mb"], r["append"]["build"]],
            ["all 100 % (new warehouse)", r["full"]["seconds"], r["full"]["peak_mb"], r["full"]["build"]],
        ]),
        "",
        f"append / full: {r['ratio']:.1%}; every model table equal: {r['same_rows']}; "
        f"file {r['size_mb']['base']:,.0f} MB -> {r['size_mb']['after append']:,.0f} MB after the append "
        f"({r['size_mb']['full']:,.0f} MB built in full)",
        "",
        "Where the append's time goes (median seconds; the rest is starting Python, checking the file, parsing the models):",
        "",
        md_table(["step", "seconds"], [[k, v] for k, v in r["append"]["steps"].items()]
                 + [["other", r["append"]["seconds"] - sum(r["append"]["steps"].values())]]),
    ]
    return "\n".join(lines)


# ---- child side ---------------------------------------------------------------------------


def _child_load(db: str, *files: str) -> None:
    """Load the files with the CLI's default config, recording each timed step of the progress output."""
    import io

    from funnelboard.core.config import load_config
    from funnelboard.core.progress import Progress
    from funnelboard.warehouse.pipeline import load_files

    done = re.compile(r"^\s*(.+): done in ([0-9.]+)s$")
    steps: list[list] = []

    class Recorder(Progress):
        def execute(self, con, label, sql, params=None):
            t = time.perf_counter()
            con.execute(sql, params or {})
            steps.append([label, time.perf_counter() - t])

        def note(self, text: str) -> None:
            m = done.match(text)
            if m:
                steps.append([m.group(1), float(m.group(2))])

    t0 = time.perf_counter()
    report = load_files(Path(db), [Path(f) for f in files], load_config(None), progress=Recorder(io.StringIO(), enabled=True))
    print(json.dumps({"seconds": time.perf_counter() - t0, "build": report.build, "steps": steps}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        _child_load(*sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "split":
        print(json.dumps(split(*map(Path, sys.argv[2:5]))))
    else:
        sys.exit(main())
