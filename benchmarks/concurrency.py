"""Many users at once: clients replaying the dashboard's callbacks over HTTP while a load is published,
on Flask's development server and on the production server (waitress), side by side in one run.

    python -m benchmarks.concurrency [--events 1000000] [--clients 50] [--requests 3000] [--think-ms 0]
                                     [--servers development,production] [--workdir DIR] [--json FILE] [--out FILE]

1. `funnelboard generate --events N` and `funnelboard load` it into a warehouse; a further file of
   new leads (--further-events, 1 % of N by default) to publish mid-run.
2. The request mix, recorded once: benchmarks/latency.py's replay of the browser (`Client.visit`)
   opens every page and a lead's page with each filter of its mix (none, a channel, an owner, two
   weeks) on a production server, and every callback POST it sends (page-load callbacks and the
   grids' first blocks; no CSV clicks or downloads: files, not callbacks) is kept with its body.
   The plan is --requests of them, the mix repeated and shuffled with a fixed seed.
3. For each server, two runs, each on a fresh copy of the warehouse and a fresh server, timed once
   GET /healthz says its warm-up is done: one client sending the plan's requests one after
   another, then --clients clients (threads, a keep-alive session each) sharing the same plan,
   each sending its next request as soon as it has the answer (or after a think time, exponential
   with mean --think-ms, when given). In both, `funnelboard load` of the further file starts with
   the first request and publishes mid-run: from then on the server's cached answers and warm
   views are of an older file, and the requests compute again.
   Each request is timed from its client; a request that fails (not the answer the renderer
   expects, a connection error, a timeout) is an error and not a timing. The server's peak
   memory is VmHWM of its /proc status at the end of the run.

The report: errors, p50 / p95 / max latency, throughput and peak memory per run, and per server
the ratio p95 with --clients clients / p95 with one (the budget in docs/performance.md: at most 3).
Timings are never asserted in tests; tests/test_benchmarks.py runs it small.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.compute as pc
import requests

from benchmarks import load_bench as lb
from benchmarks.common import machine, run_child
from benchmarks.latency import Client, Fire, Server, _discover, _pages, _pct, filter_mix

SERVERS = ("development", "production")
BUDGET_RATIO = 3.0
REQUEST_TIMEOUT = 120  # seconds; a request slower than this is an error


class Recorder(Client):
    """benchmarks.latency's browser replay, keeping every callback it sends with its filter label."""

    def __init__(self, base: str, server: Server | None = None):
        super().__init__(base, server)
        self.fired: list[tuple[Fire, str]] = []

    def post(self, fire: Fire, filters: str, timeout: float = 300):
        sample, payload = super().post(fire, filters, timeout)
        if not sample.ok:
            raise RuntimeError(f"recording the mix: {fire.page} {fire.callback} [{filters}]: {sample.error}")
        self.fired.append((fire, filters))
        return sample, payload


def record_mix(db: Path, env: dict) -> list[tuple[Fire, str]]:
    """Every callback POST of a visit to each page (and a lead's) with each filter of the mix."""
    with Server(db, wait_warm=True, env=env) as server:
        recorder = Recorder(server.base)
        owner, lead, last = _discover(recorder)
        recorder.fired.clear()  # the discovery visits are the unfiltered /leads and /stalled again
        for pathname in _pages(recorder.shell) + [f"/lead/{lead}"]:
            for name, search in filter_mix(owner, last):
                recorder.visit(pathname, search, name, clicks=False)
    return recorder.fired


def make_plan(mix: list[tuple[Fire, str]], n: int, seed: int = 0) -> list[tuple[Fire, str]]:
    plan = [mix[i % len(mix)] for i in range(n)]
    random.Random(seed).shuffle(plan)
    return plan


def further_file(n_events: int, out: Path) -> Path:
    """Events of leads the warehouse has not seen: the generator's history with its lead ids renamed."""
    from funnelboard.etl.generate import generate_events, write_events

    table = generate_events(n_events=n_events, seed=8)
    column = table.schema.get_field_index("lead_id")
    table = table.set_column(column, "lead_id", pc.replace_substring_regex(table["lead_id"], "^L", "N"))
    write_events(table, out, "csv")
    return out


def replay(base: str, plan: list[tuple[Fire, str]], clients: int, at_start, think_ms: float = 0) -> dict:
    """Send the plan from `clients` threads, each request once; `at_start()` with the first."""
    sessions = [Client(base) for _ in range(clients)]  # each its own keep-alive session, as each browser has
    lock = threading.Lock()
    taken = [0]
    times: list[float] = []
    errors: list[str] = []

    def work(k: int, client: Client) -> None:
        pause = random.Random(k)
        sent = 0
        while True:
            if think_ms and sent:
                time.sleep(pause.expovariate(1000 / think_ms))  # a user reading the page, not synchronisation
            with lock:
                i = taken[0]
                taken[0] += 1
            if i >= len(plan):
                return
            if i == 0:
                at_start()
            sent += 1
            fire, filters = plan[i]
            try:
                sample, _payload = client.post(fire, filters, timeout=REQUEST_TIMEOUT)
            except requests.RequestException as exc:
                with lock:
                    errors.append(f"{fire.page} {fire.callback} [{filters}]: {type(exc).__name__}: {exc}")
                continue
            with lock:
                if sample.ok:
                    times.append(sample.ms)
                else:
                    errors.append(f"{fire.page} {fire.callback} [{filters}]: {sample.error}")

    threads = [threading.Thread(target=work, args=(k, c), name=f"client-{k}") for k, c in enumerate(sessions)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    times.sort()
    return {
        "requests": len(plan),
        "answered": len(times),
        "errors": len(errors),
        "error_examples": errors[:10],
        "p50_ms": _pct(times, 50),
        "p95_ms": _pct(times, 95),
        "max_ms": times[-1] if times else None,
        "mean_ms": sum(times) / len(times) if times else None,
        "wall_s": wall,
        "per_s": len(times) / wall if wall else None,
        "started": started,
    }


def run_one(kind: str, base_db: Path, work: Path, plan: list, clients: int, further: Path, env: dict, think_ms: float = 0) -> dict:
    """One server, one client count: a fresh warehouse copy and server, the plan, a load published mid-run."""
    db = work / f"{kind}-{clients}.duckdb"
    shutil.copyfile(base_db, db)
    load: dict = {}

    def publish() -> None:
        started = time.perf_counter()
        child = run_child(lb.funnelboard_cmd("load", "--quiet", "--db", str(db), str(further)), cwd=work)
        load.update(ok=child.ok, seconds=child.seconds, started=started, ended=time.perf_counter(),
                    error=None if child.ok else (child.stderr.strip().splitlines() or ["?"])[-1])

    loader: list[threading.Thread] = []

    def at_start() -> None:
        loader.append(threading.Thread(target=publish, name="mid-run-load"))
        loader[0].start()

    with Server(db, wait_warm=True, args=("--server", kind), env=env) as server:
        result = replay(server.base, plan, clients, at_start, think_ms)
        for t in loader:
            t.join()
        result["peak_mb"] = server.peak_mb()
        result["warm_seconds"] = server.warm_seconds
    started = result.pop("started")
    result["load"] = {
        "ok": load.get("ok", False),
        "seconds": load.get("seconds"),
        "started_at_s": load["started"] - started if load else None,
        "published_at_s": load["ended"] - started if load else None,
        "published_during_run": bool(load) and load["ended"] - started < result["wall_s"],
        "error": load.get("error"),
    }
    if not result["load"]["ok"]:
        result["errors"] += 1
        result["error_examples"].append(f"the mid-run load failed: {result['load']['error']}")
    result.update(server=kind, clients=clients, think_ms=think_ms)
    return result


def run(events: int, clients: int, requests_total: int, servers: list[str], workdir: Path | None, further_events: int | None = None,
        think_ms: float = 0, log=lambda msg: None) -> dict:
    res: dict = {"machine": machine(), "events": events, "clients": clients, "requests": requests_total, "servers": servers,
                 "think_ms": think_ms,
                 "loadavg_start": os.getloadavg()[0]}
    tmp = Path(tempfile.mkdtemp(prefix="fbconc-", dir=workdir))
    env = {"TMPDIR": str(tmp / "tmp")}  # the servers' spill directories, removed with the rest
    (tmp / "tmp").mkdir()
    try:
        log(f"generating {events:,} events and loading them")
        gen = lb.generate(events, tmp / "events.csv")
        first = lb.load(tmp / "events.csv", tmp / "base.duckdb")
        n_further = further_events or max(1_000, events // 100)
        further_file(n_further, tmp / "further.csv")
        res["setup"] = {"generate_s": gen.seconds, "load_s": first.seconds, "further_events": n_further}
        log("recording the request mix")
        mix = record_mix(tmp / "base.duckdb", env)
        plan = make_plan(mix, requests_total)
        res["mix"] = {"distinct_requests": len(mix), "pages": sorted({f.page for f, _ in mix}),
                      "filters": sorted({flt for _, flt in mix}), "callbacks": len({(f.page, f.callback) for f, _ in mix})}
        res["runs"] = {}
        for kind in servers:
            single = run_one(kind, tmp / "base.duckdb", tmp, plan, 1, tmp / "further.csv", env)
            log(f"{kind}, 1 client: {single['errors']} errors, p95 {single['p95_ms']:.0f} ms")
            many = run_one(kind, tmp / "base.duckdb", tmp, plan, clients, tmp / "further.csv", env, think_ms)
            log(f"{kind}, {clients} clients: {many['errors']} errors, p95 {many['p95_ms']:.0f} ms")
            ratio = many["p95_ms"] / single["p95_ms"] if many["p95_ms"] and single["p95_ms"] else None
            res["runs"][kind] = {"single": single, "concurrent": many, "ratio_p95": ratio}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["loadavg_end"] = os.getloadavg()[0]
    return res


def markdown(res: dict, command: str) -> str:
    m = res["machine"]

    def fmt(v, spec: str = ".0f") -> str:
        return "—" if v is None else format(v, spec)

    lines = [
        (f"Command: `{command}`. Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, Python {m['python']}, "
        f"duckdb {m['duckdb']}; {m['date']}. 1-minute load average at start / end: {res['loadavg_start']:.2f} / "
        f"{res['loadavg_end']:.2f} (the clients run on the same cores as the server)."),
        "",
        (f"{res['events']:,} events; a load of a further {res['setup']['further_events']:,} events of new leads starts with "
        f"the first request and publishes mid-run. The mix: {res['mix']['distinct_requests']} distinct callback requests "
        f"({res['mix']['callbacks']} callbacks of {len(res['mix']['pages'])} pages, filters {', '.join(res['mix']['filters'])}), "
        f"{res['requests']:,} requests per run; "
        + (f"the {res['clients']} clients pause between requests (exponential, mean {res['think_ms']:.0f} ms)."
           if res["think_ms"] else f"each of the {res['clients']} clients sends its next request as soon as it has an answer.")),
        "",
        "| server | clients | requests | errors | p50 ms | p95 ms | max ms | requests/s | peak MB | mid-run load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind, runs in res["runs"].items():
        for r in (runs["single"], runs["concurrent"]):
            ld = r["load"]
            when = (f"{ld['seconds']:.1f} s, published at {ld['published_at_s']:.1f} s of the run's {r['wall_s']:.1f} s"
                    if ld["ok"] else f"failed: {ld['error']}")
            lines.append(f"| {kind} | {r['clients']} | {r['requests']:,} | {r['errors']} | {fmt(r['p50_ms'])} | {fmt(r['p95_ms'])} | "
                         f"{fmt(r['max_ms'])} | {fmt(r['per_s'], '.1f')} | {fmt(r['peak_mb'])} | {when} |")
    lines += ["", "| server | p95, 1 client | p95, many clients | ratio | budget (<= 3x, 0 errors) |", "|---|---:|---:|---:|---|"]
    for kind, runs in res["runs"].items():
        s, c, ratio = runs["single"], runs["concurrent"], runs["ratio_p95"]
        met = ratio is not None and ratio <= BUDGET_RATIO and s["errors"] == 0 and c["errors"] == 0
        lines.append(f"| {kind} | {fmt(s['p95_ms'])} ms | {fmt(c['p95_ms'])} ms ({c['clients']} clients) | "
                     f"{fmt(ratio, '.2f')}x | {'met' if met else '**missed**'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.concurrency", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1,000,000)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--requests", type=int, default=3_000, help="callback requests per run (default 3,000)")
    ap.add_argument("--further-events", type=int, help="events of the file loaded mid-run (default 1 %% of --events, at least 1,000)")
    ap.add_argument("--think-ms", type=float, default=0, help="mean pause of each concurrent client between requests (default 0: none)")
    ap.add_argument("--servers", default=",".join(SERVERS), help="which servers, in order (default development,production)")
    ap.add_argument("--workdir", type=Path, help="where the temporary data goes (removed after)")
    ap.add_argument("--json", type=Path, help="also write the raw figures as JSON")
    ap.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = ap.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not servers or set(servers) - set(SERVERS):
        ap.error(f"--servers takes {' and '.join(SERVERS)}")
    command = "python -m benchmarks.concurrency " + " ".join(sys.argv[1:] if argv is None else argv)

    def log(msg: str) -> None:
        print(f"[concurrency {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    res = run(args.events, args.clients, args.requests, servers, args.workdir, args.further_events, args.think_ms, log)
    res["command"] = command.strip()
    text = markdown(res, res["command"])
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    errors = sum(r["errors"] for runs in res["runs"].values() for r in (runs["single"], runs["concurrent"]))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
