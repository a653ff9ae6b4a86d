"""funnelboard's benchmark: load vs the bare-read floor, the pandas peer, scaling, dashboard latency.

    python -m benchmarks.run --events 10000000 [--repeat R] [--out benchmarks/RESULTS.md]
                             [--skip-latency] [--scaling] [--peer-timeout S] [--json FILE]

Every step runs in its own child process, so each peak memory is that child's alone.
Writes a Markdown report to --out and prints it. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import load_bench as lb
from benchmarks.common import PYTHON, machine, md_table, median, run_child

BUDGET_RATIO = 1.5
BUDGET_PEAK_MB = 2048
BUDGET_PEER = 10.0
BUDGET_P95_MS = 150
BUDGET_SERVER_MB = 1024


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bench_load(work: Path, n: int, repeat: int, formats: tuple[str, ...] = ("csv", "parquet")) -> dict:
    """Generate N events (CSV, and Parquet unless left out), then funnelboard load vs the bare read of each."""
    csv, parquet = work / "events.csv", work / "events.parquet"
    log(f"generating {n:,} events (CSV)")
    gen_csv = lb.generate(n, csv)
    gen_pq = None
    if "parquet" in formats:
        log(f"generated in {gen_csv.seconds:.1f}s; Parquet copy")
        gen_pq = lb.generate(n, parquet)
    out = {"n": n, "generate_csv_s": gen_csv.seconds, "generate_parquet_s": gen_pq.seconds if gen_pq else None, "inputs": {}}
    for src in (csv, parquet) if gen_pq else (csv,):
        fmt = src.suffix.lstrip(".")
        db = work / f"fb_{fmt}.duckdb"
        log(f"{fmt}: funnelboard load x{repeat}")
        fb = lb.repeat(lambda: lb.load(src, db), repeat)
        log(f"{fmt}: load {fb['seconds']:.1f}s peak {fb['peak_mb']:.0f} MB; bare read x{repeat}")
        bare = lb.repeat(lambda: lb.floor(src, work / f"floor_{fmt}.duckdb"), repeat)
        log(f"{fmt}: bare {bare['seconds']:.1f}s peak {bare['peak_mb']:.0f} MB")
        out["inputs"][fmt] = {
            "file_mb": src.stat().st_size / 1e6,
            "load": fb,
            "bare": bare,
            "ratio": fb["seconds"] / bare["seconds"],
            "db": str(db),
            "db_mb": db.stat().st_size / 1e6,
        }
    out["csv"], out["warehouse"] = str(csv), out["inputs"]["csv"]["db"]
    return out


def bench_peer(csv: Path, db: Path, repeat: int, timeout: float) -> dict:
    log(f"metric set on the warm warehouse x{repeat}")
    lb.metric_set(db)  # warm the OS cache and DuckDB file once, untimed
    fb_runs = [lb.metric_set(db) for _ in range(repeat)]
    fb = {
        "seconds": median([info["seconds"] for _, info in fb_runs]),
        "wall_seconds": median([r.seconds for r, _ in fb_runs]),
        "peak_mb": max(r.peak_mb for r, _ in fb_runs),
        "per_metric": {k: median([info["per_metric"][k] for _, info in fb_runs]) for k in fb_runs[0][1]["per_metric"]},
        "lists_as_dicts": {k: median([info["lists_as_dicts"][k] for _, info in fb_runs]) for k in fb_runs[0][1].get("lists_as_dicts", {})},
        "rows": fb_runs[0][1]["rows"],
    }
    log(f"funnelboard metric set {fb['seconds']:.2f}s; pandas peer (timeout {timeout:.0f}s)")
    try:
        import pandas  # noqa: F401
    except ImportError:
        return {"funnelboard": fb, "pandas": {"status": "pandas not installed (pip install -e .[bench])"}}
    runs = []
    for _ in range(repeat):
        r = run_child([PYTHON, "-m", "benchmarks.peer_pandas", str(csv), "--quiet"], timeout=timeout)
        if r.timed_out:
            return {"funnelboard": fb, "pandas": {"status": f"timed out after {timeout:.0f}s", "seconds": r.seconds, "peak_mb": r.peak_mb}}
        if not r.ok:
            return {"funnelboard": fb, "pandas": {"status": f"failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}", "peak_mb": r.peak_mb}}
        runs.append((r, json.loads(r.stdout.strip().splitlines()[-1])))
    pd_res = {
        "status": "ok",
        "seconds": median([i["seconds"] for _, i in runs]),
        "read_seconds": median([i["read_seconds"] for _, i in runs]),
        "compute_seconds": median([i["compute_seconds"] for _, i in runs]),
        "wall_seconds": median([r.seconds for r, _ in runs]),
        "peak_mb": max(r.peak_mb for r, _ in runs),
        "rows": runs[0][1]["rows"],
    }
    log(f"pandas {pd_res['seconds']:.1f}s peak {pd_res['peak_mb']:.0f} MB")
    return {"funnelboard": fb, "pandas": pd_res, "ratio": pd_res["seconds"] / fb["seconds"],
            "ratio_compute_only": pd_res["compute_seconds"] / fb["seconds"]}


def bench_append(work: Path, csv: Path, repeat: int) -> dict:
    """Section 5 (benchmarks/incremental.py): the latest 1 % of the CSV appended to a warehouse of the rest."""
    log("append: the latest 1 % of the events to a warehouse of the other 99 %, vs one full load")
    out = work / "append.json"
    r = run_child([PYTHON, "-m", "benchmarks.incremental", "--source", str(csv), "--repeat", str(repeat),
                   "--workdir", str(work), "--json", str(out)])
    if not out.exists():
        return {"status": f"failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}"}
    return {"status": "ok", **json.loads(out.read_text())}


ADAPTER_BENCHES = (("salesforce", "benchmarks.adapter_salesforce"), ("hubspot", "benchmarks.adapter_hubspot"))


def bench_adapters(work: Path, rows: int, repeat: int) -> dict:
    """Section 6: each CRM adapter's translation of an export of `rows` rows, rows per second."""
    found = {}
    for name, module in ADAPTER_BENCHES:
        log(f"adapter {name}: {rows:,} rows")
        out = work / f"adapter_{name}.json"
        r = run_child([PYTHON, "-m", module, "--rows", str(rows), "--repeat", str(repeat), "--json", str(out)])
        found[name] = ({"status": "ok", **json.loads(out.read_text())} if out.exists()
                       else {"status": f"failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}"})
    return found


def bench_scaling(work: Path, sizes: list[int], known: dict[int, dict]) -> list[dict]:
    rows = []
    for n in sizes:
        if n in known:
            rows.append(known[n])
            continue
        d = work / f"scale_{n}"
        d.mkdir()
        log(f"scaling: N={n:,}")
        gen = lb.generate(n, d / "events.csv")
        load = lb.load(d / "events.csv", d / "fb.duckdb")
        lb.metric_set(d / "fb.duckdb")  # warm
        _, info = lb.metric_set(d / "fb.duckdb")
        rows.append({"n": n, "generate_s": gen.seconds, "load_s": load.seconds, "metrics_s": info["seconds"]})
        shutil.rmtree(d)
    return rows


def bench_latency(db: str, n: int) -> dict:
    """Both ways a callback can be answered: `served` (the server as `funnelboard serve` runs it,
    timed after its warm-up, each view once) and `cold` (result cache off: every request computes)."""
    try:
        mod = importlib.import_module("benchmarks.latency")
    except ImportError:
        return {"status": "benchmarks/latency.py not present"}
    out = {"status": "ok"}
    big = n >= 10_000_000
    for mode, kwargs in (("served", {"served": True}), ("cold", {"repeats": 1 if big else 3, "cache": False})):
        log(f"dashboard latency, {mode} (benchmarks/latency.py)")
        try:
            rows = mod.run_latency(Path(db), **kwargs)
        except Exception as e:  # report, don't lose the other figures
            out[mode] = {"status": f"failed: {type(e).__name__}: {e}"}
            continue
        out[mode] = {"status": "ok", "rows": [dict(r) for r in rows], "server_peak_mb": rows.server_peak_mb,
                     "warm_seconds": rows.warm_seconds, "errors": list(rows.errors),
                     "markdown": mod.markdown(list(rows), rows.server_peak_mb)}
    return out


def bench_first_page(db: str) -> dict:
    from benchmarks.first_page import run_first_page

    log("first page in headless Chromium (benchmarks/first_page.py)")
    try:
        return {"status": "ok", **run_first_page(Path(db), repeats=3)}
    except Exception as e:  # report, don't lose the other figures
        return {"status": f"failed: {type(e).__name__}: {e}"}


# ---- report -------------------------------------------------------------------------------


def _find(row: dict, *needles: str) -> float | None:
    """The first numeric value whose key contains every needle (case-insensitive)."""
    for k, v in row.items():
        if all(n in k.lower() for n in needles) and isinstance(v, (int, float)):
            return float(v)
    return None


def report(res: dict) -> str:
    m, ld, peer = res["machine"], res["load"], res["peer"]
    n = ld["n"]
    parts = [
        f"# funnelboard benchmark: {n:,} events",
        "",
        f"Command: `{res['command']}`. Repeats: {res['repeat']} (times are medians, peaks the maximum).",
        "",
        "## Machine",
        "",
        md_table(["date", "cpu", "cores", "memory", "OS", "Python", "duckdb", "pyarrow", "numpy", "pandas", "funnelboard"],
                 [[m["date"], m["cpu"], m["cores"], f"{m['memory_gb']} GB", m["os"], m["python"], m["duckdb"],
                   m["pyarrow"], m["numpy"], m["pandas"], m["funnelboard"]]]),
        "",
        f"1-minute load average at start / end: {res['loadavg_start']:.2f} / {res['loadavg_end']:.2f} "
        f"(above 0 means other work shared the {m['cores']} cores with the measured children).",
        "",
        "## 1. Load + build vs the bare read",
        "",
        f"Generate: CSV {ld['generate_csv_s']:.1f} s, "
        + (f"Parquet {ld['generate_parquet_s']:.1f} s " if ld.get("generate_parquet_s") is not None else "Parquet not run (`--formats csv`) ")
        + f"(`funnelboard generate --events {n}`). `funnelboard load` = the whole CLI child (Python start, "
        "reading and checking, quarantine, de-duplication, storing, building every model, publishing) into a fresh "
        "warehouse file. Bare read = a Python child running `CREATE TABLE t AS SELECT * FROM read_csv(file)` "
        "(or `read_parquet`) into a fresh DuckDB file: the floor. Wall seconds of each child; peak = the child's max RSS.",
        "",
        md_table(["input", "file MB", "funnelboard load s", "load peak MB", "bare read s", "bare peak MB", "ratio load / bare", "warehouse MB"],
                 [[fmt, v["file_mb"], v["load"]["seconds"], v["load"]["peak_mb"], v["bare"]["seconds"], v["bare"]["peak_mb"],
                   f"{v['ratio']:.2f}x", v["db_mb"]] for fmt, v in ld["inputs"].items()]),
        "",
        "## 2. Dashboard latency",
        "",
    ]
    lat = res["latency"]
    if lat["status"] != "ok":
        parts += [f"Not measured: {lat['status']}.", ""]
    for mode, title, text in (
        ("served", "### Served (the budget line)",
         "`funnelboard serve` as it runs: the result cache on, timed once GET /healthz says the server's warm-up has "
         "computed every page's unfiltered view (it does so at start and after each publish: {warm}). No untimed pass "
         "and each page and filter visited once, so a filtered view is a first visit and computes its answer; only "
         "the unfiltered one comes from the warm-up. Per-file facts (stall thresholds, a segment column's values) are "
         "computed once per published file, by whichever request needs them first."),
        ("cold", "### Cold (result cache off)",
         "The server with FUNNELBOARD_CACHE_ROWS=0 after one untimed pass over every page (it pages the file in): every "
         "request computes its answer, unfiltered views included, as right after a publish before the warm-up ends."),
    ):
        got = lat.get(mode) or {}
        if not got:
            continue
        parts += [title, ""]
        if got.get("status") != "ok":
            parts += [f"Not measured: {got.get('status')}.", ""]
            continue
        warm = f"{got['warm_seconds']:.1f} s here" if got.get("warm_seconds") is not None else "n/a"
        parts += [text.format(warm=warm), "", got["markdown"], ""]
        if got.get("errors"):
            parts += [f"Errors seen: {len(got['errors'])} (first: {got['errors'][0]}).", ""]

    parts += [*first_page_section(res.get("first_page"))]
    if peer.get("funnelboard") is None:
        parts += ["## 3. The peer: the same metric set in pandas", "", f"Not run: {peer['pandas']['status']}.", ""]
    else:
        parts += peer_section(peer)

    parts += ["## 4. Scaling", ""]
    sc = res.get("scaling")
    if sc:
        parts += ["Seconds per million events (generate = CSV; load = `funnelboard load` of the CSV; metrics = the metric set above, warm).", "",
                  md_table(["events", "generate s", "load s", "metrics s", "generate s/M", "load s/M", "metrics s/M"],
                           [[f"{r['n']:,}", r["generate_s"], r["load_s"], r["metrics_s"], r["generate_s"] / r["n"] * 1e6,
                             r["load_s"] / r["n"] * 1e6, r["metrics_s"] / r["n"] * 1e6] for r in sc]), ""]
    else:
        parts += ["Not run (pass `--scaling`).", ""]

    parts += append_section(res.get("append"))
    parts += adapters_section(res.get("adapters"))
    parts += ["## Budget (docs/performance.md)", "", md_table(["what", "budget", "measured", "verdict"], budget_lines(res)), "",
              "What the misses cost and where the floor is: [LOAD_PROFILE.md](LOAD_PROFILE.md) (load + build) and "
              "[LATENCY_PROFILE.md](LATENCY_PROFILE.md) (callbacks).", ""]
    return "\n".join(parts)



def peer_section(peer: dict) -> list[str]:
    parts: list[str] = []
    fb = peer["funnelboard"]
    pdr = peer["pandas"]
    parts += [
        "## 3. The peer: the same metric set in pandas",
        "",
        "funnelboard: one child process opens the warm warehouse and calls `run_metric` for "
        + ", ".join(f"`{k}`" + (f" by {s}" if s else "") for k, s in lb.METRIC_SET)
        + " (defaults: whole period, as of the latest event); the stalled list, a million rows, comes as columns "
        "(`list_table`, a pyarrow Table) as the peer's is a DataFrame. Time inside the child, after imports "
        f"(child wall time incl. Python start and imports: {fb['wall_seconds']:.2f} s).",
        "",
        "pandas (`benchmarks/peer_pandas.py`): reads the raw CSV, maps labels with the default label map, "
        "sorts by lead and time, derives next events with `groupby().shift(-1)`; SQL rate by channel "
        "(ever reached MQL -> ever reached SQL, skips count, no window), completed-spell p50/p90 by stage "
        "(no Kaplan-Meier), stage accounting by the next event, top 10 (outcome, raw reason) exits, "
        "stalled = open spells older than the stage's completed p90. Simpler than funnelboard's definitions "
        "(no quarantine, de-duplication, reason normalisation, conversion window or censoring).",
        "",
    ]
    rows = [["funnelboard (warm warehouse)", fb["seconds"], "-", "-", fb["peak_mb"]]]
    if pdr.get("status") == "ok":
        rows.append(["pandas from the CSV", pdr["seconds"], pdr["read_seconds"], pdr["compute_seconds"], pdr["peak_mb"]])
    else:
        rows.append([f"pandas: {pdr['status']}", pdr.get("seconds", float("nan")), "-", "-", pdr.get("peak_mb", float("nan"))])
    parts += [md_table(["who", "seconds", "of which read_csv", "of which compute", "peak MB"], rows), ""]
    if "ratio" in peer:
        parts += [f"**funnelboard is {peer['ratio']:.1f}x faster** than the pandas script "
                  f"({peer['ratio_compute_only']:.1f}x against pandas' compute alone, CSV already in memory).", ""]
        if fb.get("lists_as_dicts"):
            dicts = fb["seconds"] + sum(fb["lists_as_dicts"].values()) - sum(fb["per_metric"][k] for k in fb["lists_as_dicts"])
            parts += [f"With the stalled list as `run_metric` returns it, a Python dict per row "
                      f"({', '.join(f'{k} {v:.2f} s' for k, v in fb['lists_as_dicts'].items())}), the set takes {dicts:.2f} s: "
                      f"{pdr['seconds'] / dicts:.1f}x faster than pandas." if pdr.get("status") == "ok" else "", ""]
    parts += ["Per metric (funnelboard, seconds):", "",
              md_table(list(fb["per_metric"]), [list(fb["per_metric"].values())]), ""]

    return parts


def append_section(app: dict | None) -> list[str]:
    parts = ["## 5. Appending a week: incremental refresh", ""]
    if not app:
        return parts + ["Not run (pass `--append`).", ""]
    if app.get("status") != "ok":
        return parts + [f"Not measured: {app['status']}.", ""]
    from benchmarks.incremental import report as append_report

    return parts + [
        "`python -m benchmarks.incremental --source <the CSV above>`: the latest 1 % of the events by `entered_at` held "
        "back as this week's batch; the other 99 % loaded into a warehouse; then, side by side, appending the batch "
        "to a copy of it (the models refreshed for the leads it touches) and one load of both files into a new "
        "warehouse (every model built whole). Each load is a child process.",
        "",
        append_report(app),
        "",
    ]


def adapters_section(ad: dict | None) -> list[str]:
    parts = ["## 6. CRM adapters on large exports", ""]
    if not ad:
        return parts + ["Not run (pass `--adapter-rows N`).", ""]
    rows = []
    for name, got in ad.items():
        if got.get("status") != "ok":
            rows.append([name, got.get("status"), "-", "-", "-"])
            continue
        for shape, fig in got["shapes"].items():
            rows.append([name, shape, f"{fig['rows']:,}", fig["seconds"], f"{fig['rows'] / fig['seconds']:,.0f}"])
    return parts + [
        "Each adapter's translation (`benchmarks/adapter_salesforce.py`, `benchmarks/adapter_hubspot.py`: a deterministic "
        "export written to a temp dir, then the adapter's `translate` timed in one process, median of the repeats). "
        "Before/after figures of the rewrite in DuckDB: [LOAD_PROFILE.md](LOAD_PROFILE.md).",
        "",
        md_table(["adapter", "export", "rows", "seconds", "rows/s"], rows),
        "",
    ]


def first_page_section(fp: dict | None) -> list[str]:
    if not fp:
        return []
    head = ["### First page in a browser", ""]
    if fp["status"] != "ok":
        return head + [f"Not measured: {fp['status']}.", ""]
    secs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    return head + [
        "`benchmarks/first_page.py`: headless Chromium, a fresh profile each time, opens `/` until every KPI card, "
        "the trend chart and the top movers are drawn.",
        "",
        f"- served (cache on, after the server's {fp['warm_up_s']:.1f} s warm-up): median {fp['warm_s']:.2f} s ({secs(fp['warm_all_s'])})",
        f"- cold (cache off, every callback computes): median {fp['cold_s']:.2f} s ({secs(fp['cold_all_s'])})",
        "",
    ]


def budget_lines(res: dict) -> list[list]:
    ld, peer, lat, sc = res["load"], res["peer"], res["latency"], res.get("scaling")
    csv = ld["inputs"]["csv"]
    n = ld["n"]
    at = "" if n == 10_000_000 else f" (at {n:,} events, not the 10M of the budget)"
    v = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    rows = [
        ["load + build, CSV in", f"<= {BUDGET_RATIO} x bare read_csv", f"{csv['ratio']:.2f}x ({csv['load']['seconds']:.1f} s vs {csv['bare']['seconds']:.1f} s){at}", v(csv["ratio"] <= BUDGET_RATIO)],
        ["peak memory of load + build", "<= 2 GB", ", ".join(f"{x['load']['peak_mb']:.0f} MB {fmt.upper() if fmt == 'csv' else fmt.title()}"
                                                            for fmt, x in ld["inputs"].items()) + at,
         v(max(x["load"]["peak_mb"] for x in ld["inputs"].values()) <= BUDGET_PEAK_MB)],
    ]
    def callback_p95s(mode: str) -> list[float]:
        from benchmarks.latency import is_download

        rows = (lat.get(mode) or {}).get("rows") or []
        return [x for x in (_find(r, "p95") for r in rows if not is_download(str(r.get("callback", "")))) if x is not None]

    served, cold = callback_p95s("served"), callback_p95s("cold")
    if served:
        over = sum(1 for x in served if x > BUDGET_P95_MS)
        cold_text = (f"; cold (cache off): worst {max(cold):.0f} ms, {sum(1 for x in cold if x > BUDGET_P95_MS)} over"
                     if cold else "")
        rows.append(["every dashboard callback p95", "<= 150 ms",
                     f"served: worst p95 {max(served):.0f} ms, {over} of {len(served)} callbacks over 150 ms{cold_text}",
                     v(max(served) <= BUDGET_P95_MS) + " served" + (f", {v(max(cold) <= BUDGET_P95_MS)} cold" if cold else "")])
    else:
        rows.append(["every dashboard callback p95", "<= 150 ms", "not measured in this run", "-"])
    mems = [m for m in ((lat.get(k) or {}).get("server_peak_mb") for k in ("served", "cold")) if m is not None]
    rows.append(["server memory", "<= 1 GB", (f"{max(mems):.0f} MB (served {lat['served']['server_peak_mb']:.0f}, cold "
                 f"{lat['cold']['server_peak_mb']:.0f})" if len(mems) == 2 else f"{max(mems):.0f} MB") if mems else "not measured",
                 v(max(mems) <= BUDGET_SERVER_MB) if mems else "-"])
    fp = res.get("first_page") or {"status": "not measured"}
    if fp["status"] == "ok":
        rows.append(["first page drawn in a browser", "<= 2 s",
                     f"weekly review: {fp['warm_s']:.2f} s served, {fp['cold_s']:.2f} s cold (cache off)",
                     f"{v(fp['warm_s'] <= 2)} served, {v(fp['cold_s'] <= 2)} cold"])
    else:
        rows.append(["first page drawn in a browser", "<= 2 s", fp["status"], "-"])
    if "ratio" in peer:
        rows.append(["metric set vs pandas", ">= 10 x faster", f"{peer['ratio']:.1f}x ({peer['funnelboard']['seconds']:.2f} s vs {peer['pandas']['seconds']:.1f} s){at}", v(peer["ratio"] >= BUDGET_PEER)])
    else:
        rows.append(["metric set vs pandas", ">= 10 x faster", f"pandas: {peer['pandas']['status']}", "-"])
    app = res.get("append") or {}
    if app.get("status") == "ok":
        rows.append(["appending a 1 % batch", "<= 10 % of a full load (issue goal)",
                     f"{app['ratio']:.1%} ({app['append']['seconds']:.1f} s vs {app['full']['seconds']:.1f} s, "
                     f"{app['week_events']:,} events of {app['week_leads']:,} leads)", v(app["ratio"] <= 0.10)])
    big = {r["n"]: r for r in sc or []}
    if 1_000_000 in big and 10_000_000 in big:
        a, b = big[1_000_000], big[10_000_000]
        growth = {k: (b[k] / b["n"]) / (a[k] / a["n"]) for k in ("load_s", "metrics_s")}
        rows.append(["1M -> 10M events", "no faster than linear",
                     f"per-event time at 10M / at 1M: load {growth['load_s']:.2f}, metrics {growth['metrics_s']:.2f}",
                     v(max(growth.values()) <= 1.1)])
    else:
        rows.append(["1M -> 10M events", "no faster than linear", "needs `--scaling` with `--events 10000000`", "-"])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000, help="events to generate (default 100,000)")
    ap.add_argument("--repeat", type=int, help="runs per timing, median reported (default 1 at >= 10M, else 3)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    ap.add_argument("--skip-latency", action="store_true", help="skip the dashboard latency part")
    ap.add_argument("--scaling", action="store_true", help="also run N = 100k, 1M (and 10M when --events 10000000)")
    ap.add_argument("--peer-timeout", type=float, default=1200, help="seconds before the pandas peer is stopped")
    ap.add_argument("--json", type=Path, help="also write the raw figures as JSON")
    ap.add_argument("--workdir", type=Path, help="where to generate (default: a temp dir, removed after)")
    ap.add_argument("--report-from", type=Path, help="write the report of an earlier run's --json file, measuring nothing")
    ap.add_argument("--formats", default="csv,parquet", help="inputs of section 1: csv,parquet (default) or csv")
    ap.add_argument("--skip-peer", action="store_true", help="skip the pandas peer (section 3)")
    ap.add_argument("--append", action="store_true", help="section 5: append the latest 1 %% of the events to the other 99 %% vs one full load")
    ap.add_argument("--adapter-rows", type=int, default=0, help="section 6: the Salesforce and HubSpot adapters on exports of N rows (0: skip)")
    args = ap.parse_args(argv)
    if args.report_from:
        text = report(json.loads(args.report_from.read_text()))
        args.out.write_text(text + "\n")
        print(text)
        return 0
    repeat = args.repeat or (1 if args.events >= 10_000_000 else 3)
    command = "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)

    res: dict = {"machine": machine(), "repeat": repeat, "command": command.strip(), "loadavg_start": os.getloadavg()[0]}
    tmp = tempfile.mkdtemp(prefix="fbbench-", dir=args.workdir)
    work = Path(tmp)
    try:
        res["load"] = bench_load(work, args.events, repeat, tuple(f.strip() for f in args.formats.split(",")))
        res["peer"] = ({"funnelboard": None, "pandas": {"status": "skipped (--skip-peer)"}} if args.skip_peer
                       else bench_peer(Path(res["load"]["csv"]), Path(res["load"]["warehouse"]), repeat, args.peer_timeout))
        res["latency"] = {"status": "skipped (--skip-latency)"} if args.skip_latency else bench_latency(res["load"]["warehouse"], res["load"]["n"])
        res["first_page"] = {"status": "skipped (--skip-latency)"} if args.skip_latency else bench_first_page(res["load"]["warehouse"])
        if args.append:
            res["append"] = bench_append(work, Path(res["load"]["csv"]), repeat)
        if args.adapter_rows:
            res["adapters"] = bench_adapters(work, args.adapter_rows, repeat)
        if args.scaling:
            sizes = [100_000, 1_000_000] + ([10_000_000] if args.events == 10_000_000 else [])
            known = {args.events: {"n": args.events, "generate_s": res["load"]["generate_csv_s"],
                                   "load_s": res["load"]["inputs"]["csv"]["load"]["seconds"],
                                   "metrics_s": (res["peer"]["funnelboard"] or {}).get("seconds", float("nan"))}}
            res["scaling"] = bench_scaling(work, sizes, known)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["loadavg_end"] = os.getloadavg()[0]
    text = report(res)
    args.out.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
