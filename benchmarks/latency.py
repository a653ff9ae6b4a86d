"""Dashboard latency through HTTP: every callback of every page, fired the way the browser fires it.

The real app is started as a subprocess (`python -m funnelboard serve`) on a free loopback port.
For each page and each filter of a realistic mix, this module replays what Dash's renderer does
when a user opens that address (checked against request bodies captured from headless Chromium's
performance log):

1. the shell layout mounts and its `dcc.Location`s report pathname / search: every callback with
   one of those as input fires (data-quality badge, filter bar, the pages router, the nav links),
   with `changedPropIds` naming the location props;
2. each layout chunk a callback returns (the filter bar, the page from the router) is inserted and
   the callbacks it triggers fire: those whose outputs are in the chunk (unless
   prevent_initial_call), and those with an input in the chunk whose outputs were already there
   (the renderer fires these even with prevent_initial_call: the drill-down and URL writers);
   `changedPropIds` names the inputs inside the chunk;
3. a click on each table's CSV export button (a user action, reported as its own callback).

Each request is `POST /_dash-update-component` with the renderer's body (output id string,
outputs, inputs and state with their values, changedPropIds), timed from the client on a
keep-alive session, one at a time (the browser sends a page's callbacks concurrently; sequential
requests measure each callback alone). Callbacks that only write the URL (`url.href`) answer
204 (no_update) on page load by design, as they do in the browser; any other callback must answer
200 with a `response` payload, and anything else is reported as an error, not a timing.
The server's peak RSS is VmHWM of its /proc status at the end.

    python -m benchmarks.latency --db PATH [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parent.parent
LOCATIONS = ("url", "_pages_location")
LOCATION_PROPS = ("pathname", "search", "href")
BUDGET_MS = 150.0


class LatencyResult(list):
    """Rows (one per page and callback) plus the server's peak memory and the errors seen."""

    server_peak_mb: float | None = None
    warm_seconds: float | None = None
    errors: list[str]
    fired: dict

    def __init__(self, rows=()):
        super().__init__(rows)
        self.errors = []
        self.fired = {}
        self.peak_raised_by: list[str] = []


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    db: Path
    cache: bool = True  # False: FUNNELBOARD_CACHE_ROWS=0, every request computes its answer
    wait_warm: bool = False  # wait until /healthz says the default views are computed
    args: tuple[str, ...] = ()  # more `funnelboard serve` options (benchmarks/concurrency.py: --server development)
    env: dict = field(default_factory=dict)  # more environment for the server (TMPDIR for its spill directory)
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None
    warm_seconds: float | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        fd, log = tempfile.mkstemp(prefix="funnelboard-latency-", suffix=".log")
        self.log = Path(log)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "funnelboard", "serve", "--db", str(self.db), "--port", str(self.port), *self.args],
            stdout=fd, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, **({} if self.cache else {"FUNNELBOARD_CACHE_ROWS": "0"}), **self.env},
        )
        os.close(fd)  # the child has its own copy
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("the server did not listen within 120 s")
                time.sleep(0.1)  # polling a condition, with a deadline
        if self.wait_warm:
            self._await_warm()
        return self

    def _await_warm(self, timeout: float = 900) -> None:
        """Poll GET /healthz until the server has computed its default views (serve's warm-up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = requests.get(f"{self.base}/healthz", timeout=10).json()
            if state["warm"]:
                self.warm_seconds = state["warm_seconds"]
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.5)  # polling a condition, with a deadline
        self.__exit__()
        raise RuntimeError(f"the server did not finish warming its default views within {timeout:.0f} s")

    def peak_mb(self) -> float | None:
        """VmHWM of the server process (and of any child it started, e.g. a reloader), in MB."""
        peak = None
        pids = [self.proc.pid]
        try:
            pids += [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        except OSError:
            pass
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        peak = max(peak or 0, kb / 1024)
            except OSError:
                pass
        return peak

    def __exit__(self, *exc) -> None:
        """Stop the server (SIGTERM: the production server drains and exits); its log is removed
        after a run that succeeded and kept, for the error message, after one that did not."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        succeeded = bool(exc) and exc[0] is None  # `with` passes (None, None, None); a direct call on failure passes nothing
        if succeeded and self.log:
            self.log.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the renderer


def _id_key(cid) -> str:
    """A component id as Dash writes it in prop ids: strings as-is, dicts as sorted compact JSON."""
    return json.dumps(cid, sort_keys=True, separators=(",", ":")) if isinstance(cid, dict) else cid


def _walk(node, found: dict) -> None:
    """Every component with an id in a layout (JSON as Dash serialises it): id key -> (id, props)."""
    if isinstance(node, list):
        for child in node:
            _walk(child, found)
    elif isinstance(node, dict):
        if "props" in node and "type" in node and isinstance(node["props"], dict):
            props = node["props"]
            if "id" in props:
                found[_id_key(props["id"])] = (props["id"], props)
            for value in props.values():
                _walk(value, found)
        else:
            for value in node.values():
                _walk(value, found)


def _parse_dep_id(text: str):
    return json.loads(text) if text.startswith("{") else text


def _split_output(output: str) -> list[tuple[str, str]]:
    """`..a.x...b.y..` or `a.x` -> [(id text, property)]; the property may carry `@hash`."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [tuple(p.rsplit(".", 1)) for p in parts]


def _matches(pattern: dict, cid) -> bool:
    if not isinstance(cid, dict) or set(cid) != set(pattern):
        return False
    return all(isinstance(v, list) or cid[k] == v for k, v in pattern.items())


def _wildcard(pattern) -> str | None:
    if isinstance(pattern, dict):
        for v in pattern.values():
            if isinstance(v, list):
                return v[0]
    return None


class Page:
    """The components the browser holds for one address: shell, filter bar and page content."""

    def __init__(self, shell_layout: dict, pathname: str, search: str):
        self.pathname, self.search = pathname, search
        self.components: dict = {}
        _walk(shell_layout, self.components)
        for loc in LOCATIONS:
            if loc in self.components:
                cid, props = self.components[loc]
                self.components[loc] = (cid, {**props, "pathname": pathname, "search": search, "href": f"http://x{pathname}{search}"})

    def insert(self, chunk) -> set[str]:
        """Add a layout chunk; returns the id keys it brought."""
        new: dict = {}
        _walk(chunk, new)
        self.components.update(new)
        return set(new)

    def expand(self, dep_id: str) -> list:
        """Concrete ids for a dependency id (several for ALL / MATCH)."""
        pattern = _parse_dep_id(dep_id)
        if _wildcard(pattern) is None:
            return [pattern] if _id_key(pattern) in self.components else []
        return [cid for cid, _props in self.components.values() if _matches(pattern, cid)]

    def value(self, cid, prop: str) -> dict:
        entry = {"id": cid, "property": prop}
        _cid, props = self.components.get(_id_key(cid), (cid, {}))
        if prop == "id":
            entry["value"] = cid
        elif prop in props:
            entry["value"] = props[prop]
        return entry


@dataclass
class Fire:
    page: str
    callback: str
    body: dict
    expect_update: bool


def _bodies(dep: dict, page: Page, chunk: set[str] | None, label: str) -> list[Fire]:
    """The request(s) the renderer sends for one callback, or [] when it would not fire it."""
    if dep.get("clientside_function"):
        return []
    outputs = _split_output(dep["output"])
    inputs, states = dep["inputs"], dep["state"]
    match_values = [None]
    all_deps = [d["id"] for d in inputs] + [o[0] for o in outputs]
    if any(_wildcard(_parse_dep_id(i)) == "MATCH" for i in all_deps):
        pattern = next(_parse_dep_id(i["id"]) for i in inputs if _wildcard(_parse_dep_id(i["id"])) == "MATCH")
        key = next(k for k, v in pattern.items() if isinstance(v, list))
        match_values = [cid[key] for cid in page.expand(_id_key(pattern))]

    fires = []
    for mv in match_values:
        def concrete(dep_id: str):
            pattern = _parse_dep_id(dep_id)
            if _wildcard(pattern) == "MATCH":
                return [cid for cid in page.expand(dep_id) if any(cid[k] == mv for k, v in pattern.items() if isinstance(v, list))]
            return page.expand(dep_id)

        out_ids = [(concrete(oid), oid, prop) for oid, prop in outputs]
        if any(not ids for ids, _oid, _prop in out_ids):
            continue  # an output is not on the page
        in_ids = [(concrete(d["id"]), d) for d in inputs]
        if not any(ids for ids, _d in in_ids):
            continue
        in_keys = {_id_key(cid) for ids, _d in in_ids for cid in ids}
        out_keys = {_id_key(cid) for ids, _oid, _prop in out_ids for cid in ids}
        if chunk is None:  # the locations mounted: callbacks with a location prop as input
            changed = [f"{d['id']}.{d['property']}" for d in inputs if d["id"] in LOCATIONS and d["property"] in LOCATION_PROPS]
            if not changed:
                continue
        else:
            touches_in, touches_out = bool(in_keys & chunk), bool(out_keys & chunk)
            if not (touches_in or touches_out):
                continue
            if dep.get("prevent_initial_call") and out_keys <= chunk:
                continue
            changed = [f"{_id_key(cid)}.{d['property']}" for ids, d in in_ids for cid in ids if _id_key(cid) in chunk]

        def values(ids, d, pattern_text):
            entries = [page.value(cid, d["property"]) for cid in ids]
            return entries if _wildcard(_parse_dep_id(pattern_text)) in ("ALL", "ALLSMALLER") else (entries[0] if entries else None)

        def outs(ids, oid, prop):
            entries = [{"id": cid, "property": prop} for cid in ids]
            return entries if _wildcard(_parse_dep_id(oid)) in ("ALL", "ALLSMALLER") else entries[0]

        out_list = [outs(ids, oid, prop) for ids, oid, prop in out_ids]
        body = {
            "output": dep["output"],
            "outputs": out_list if dep["output"].startswith("..") else out_list[0],
            "inputs": [values(ids, d, d["id"]) for ids, d in in_ids],
            "changedPropIds": changed,
            "parsedChangedPropsIds": [_parse_dep_id(c.rsplit(".", 1)[0]) if c.startswith("{") else c for c in changed],
        }
        if states:
            body["state"] = [values(concrete(s["id"]), s, s["id"]) for s in states]
        if any(x is None for x in body["inputs"]):
            continue
        name = _callback_name(dep["output"], mv)
        url_writer = all(prop.startswith("href") and oid == "url" for oid, prop in outputs)
        if url_writer:  # several callbacks write the URL: name each by what triggers it
            name += " <- " + ", ".join(_callback_name(f"{d['id']}.{d['property']}") for d in inputs)
        fires.append(Fire(label, name, body, expect_update=not url_writer))
    return fires


def _callback_name(output: str, match_value=None) -> str:
    names = []
    for oid, prop in _split_output(output):
        cid = _parse_dep_id(oid)
        if isinstance(cid, dict):
            cid = "/".join(str(match_value if isinstance(v, list) and v[0] == "MATCH" else ("*" if isinstance(v, list) else v)) for k, v in sorted(cid.items()) if k != "type") + f"[{cid.get('type')}]"
        names.append(f"{cid}.{prop.split('@')[0]}")
    return names[0] if len(names) < 4 else f"{names[0]} (+{len(names) - 1} outputs)"


def _export_clicks(deps: list[dict], page: Page, label: str) -> list[Fire]:
    """A click on each table's CSV button: the export callback with n_clicks=1."""
    fires = []
    for dep in deps:
        if "fb-export" not in json.dumps([i["id"] for i in dep["inputs"]]):
            continue
        pattern = _parse_dep_id(dep["inputs"][0]["id"])
        for cid in page.expand(dep["inputs"][0]["id"]):
            key = next(k for k, v in pattern.items() if isinstance(v, list))
            (oid, prop), = _split_output(dep["output"])
            out_id = {**_parse_dep_id(oid), key: cid[key]}
            changed = f"{_id_key(cid)}.n_clicks"
            fires.append(Fire(label, _callback_name(dep["output"], cid[key]) + " (CSV click)", {
                "output": dep["output"],
                "outputs": {"id": out_id, "property": prop},
                "inputs": [{"id": cid, "property": "n_clicks", "value": 1}],
                "changedPropIds": [changed],
                "parsedChangedPropsIds": [cid],
                "state": [page.value(_parse_dep_id(s["id"]), s["property"]) for s in dep["state"]],
            }, expect_update=True))
    return fires


def _grid_requests(deps: list[dict], page: Page, label: str) -> list[Fire]:
    """What a paged grid (AG Grid's infinite row model) asks once drawn: its first block of rows,
    in its default order. The grid's JavaScript sends it, not the renderer's initial calls."""
    fires = []
    grids = [cid for cid, props in page.components.values() if props.get("rowModelType") == "infinite"]
    for dep in deps:
        if not any(i["property"] == "getRowsRequest" for i in dep["inputs"]):
            continue
        pattern = _parse_dep_id(dep["inputs"][0]["id"])
        for cid in (g for g in grids if _matches(pattern, g)):
            request = {"startRow": 0, "endRow": 100, "sortModel": [], "filterModel": {}}
            outputs = []
            for oid, prop in _split_output(dep["output"]):
                out = _parse_dep_id(oid)
                out = {k: (cid[k] if isinstance(v, list) else v) for k, v in out.items()}
                outputs.append({"id": out, "property": prop.split("@")[0]})
            fires.append(Fire(label, _callback_name(dep["output"], cid.get("table")) + " (first block)", {
                "output": dep["output"],
                "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": [{"id": cid, "property": "getRowsRequest", "value": request}],
                "changedPropIds": [f"{_id_key(cid)}.getRowsRequest"],
                "parsedChangedPropsIds": [cid],
                "state": [page.value(_parse_dep_id(s["id"]), s["property"]) for s in dep["state"]],
            }, expect_update=True))
    return fires


# --------------------------------------------------------------------------- a page visit


@dataclass
class Sample:
    page: str
    callback: str
    filters: str
    ms: float
    status: int
    ok: bool
    error: str | None = None
    hwm_mb: float | None = None  # the server's VmHWM right after this request


class Client:
    def __init__(self, base: str, server: "Server | None" = None, session=None):
        """`session` answers get/post like a requests.Session (the default); tests pass one over the WSGI app."""
        self.base = base
        self.server = server
        self.session = session or requests.Session()
        self.deps = self.session.get(f"{base}/_dash-dependencies", timeout=60).json()
        self.shell = self.session.get(f"{base}/_dash-layout", timeout=60).json()

    def post(self, fire: Fire, filters: str, timeout: float = 300) -> tuple[Sample, dict | None]:
        t0 = time.perf_counter()
        r = self.session.post(f"{self.base}/_dash-update-component", json=fire.body, timeout=timeout,
                              headers={"Accept": "application/json", "Content-Type": "application/json"})
        content = r.content
        ms = (time.perf_counter() - t0) * 1000
        payload, error = None, None
        if r.status_code == 200:
            try:
                payload = json.loads(content)
            except ValueError:
                error = "200 without JSON"
            if payload is not None and "response" not in payload:
                error, payload = "200 without a response payload", None
        elif r.status_code == 204 and not fire.expect_update:
            pass  # a URL writer with nothing to write: the browser gets the same
        else:
            error = f"HTTP {r.status_code}: {content[:300]!r}"
        hwm = self.server.peak_mb() if self.server else None
        return Sample(fire.page, fire.callback, filters, ms, r.status_code, error is None, error, hwm), payload

    def downloads(self, page: Page, label: str, filters: str) -> list[Sample]:
        """A click on each download link (the long lists' CSV): GET it and read it to the last byte."""
        out = []
        for cid, props in list(page.components.values()):
            if not (isinstance(cid, dict) and cid.get("type") == "fb-export-link"):
                continue
            href = f"/export/{cid['table']}.csv{page.search}"
            t0 = time.perf_counter()
            r = self.session.get(f"{self.base}{href}", stream=True, timeout=600)
            size = sum(len(chunk) for chunk in r.iter_content(1 << 16))
            ms = (time.perf_counter() - t0) * 1000
            ok = r.status_code == 200 and size > 0
            hwm = self.server.peak_mb() if self.server else None
            out.append(Sample(label, f"GET /export/{cid['table']}.csv (download)", filters, ms, r.status_code, ok,
                              None if ok else f"HTTP {r.status_code}, {size} bytes", hwm))
        return out

    def visit(self, pathname: str, search: str, filters: str, *, clicks: bool = True) -> list[Sample]:
        """Open one address the way the browser does; every request timed."""
        page = Page(self.shell, pathname, search)
        label = _page_label(pathname)
        samples: list[Sample] = []
        chunks: list = []
        self.last_payloads: list[dict] = []

        def run(fires: list[Fire]) -> None:
            for fire in fires:
                sample, payload = self.post(fire, filters)
                samples.append(sample)
                if payload is None:
                    continue
                self.last_payloads.append(payload)
                for cid, props in payload["response"].items():
                    for prop, value in props.items():
                        if prop == "children" and (cid in ("filter-bar", "_pages_content") or '"fb-body"' in cid):
                            chunks.append(value)

        run([f for dep in self.deps for f in _bodies(dep, page, None, label)])
        while chunks:
            new = page.insert(chunks.pop(0))
            run([f for dep in self.deps for f in _bodies(dep, page, new, label)])
        run(_grid_requests(self.deps, page, label))
        if clicks:
            run(_export_clicks(self.deps, page, label))
            samples += self.downloads(page, label, filters)
        self.last_page = page
        return samples


def _page_label(pathname: str) -> str:
    return "/lead/<id>" if pathname.startswith("/lead/") else pathname


def _pages(shell: dict) -> list[str]:
    found: dict = {}
    _walk(shell, found)
    return [cid["path"] for cid, _p in found.values() if isinstance(cid, dict) and cid.get("type") == "fb-nav"]


def _discover(client: Client) -> tuple[str, str, date]:
    """The busiest owner, the last event date and a lead id, read from the app as the browser sees it."""
    owner = last = lead = None
    client.discovery_samples = []
    for pathname in ("/leads", "/stalled"):
        samples = client.visit(pathname, "", "discover", clicks=False)
        client.discovery_samples += samples
        bad = [s for s in samples if not s.ok]
        if bad:
            raise RuntimeError(f"{pathname} failed: {bad[0].error}")
        for cid, props in client.last_page.components.values():
            if isinstance(cid, dict) and cid.get("type") == "fb-choice" and cid.get("key") == "owner" and props.get("options"):
                owner = owner or props["options"][0]["value"]  # the drop-down lists the most leads first
            if isinstance(cid, dict) and cid.get("type") == "fb-date" and props.get("max_date_allowed"):
                last = last or date.fromisoformat(str(props["max_date_allowed"])[:10])
        for payload in client.last_payloads:  # a grid's rows come in its callback's response
            for props in payload["response"].values():
                rows = props.get("rowData") or (props.get("getRowsResponse") or {}).get("rowData")
                if rows and "lead_id" in rows[0]:
                    lead = lead or rows[0]["lead_id"]
        if owner and last and lead:
            return owner, lead, last
    raise RuntimeError(f"could not read an owner / the last date / a lead from the app: {owner}, {last}, {lead}")


def filter_mix(owner: str, last: date) -> list[tuple[str, str]]:
    start = last - timedelta(days=28)
    return [
        ("none", ""),
        ("channel", "?" + urlencode({"channel": "referral"})),
        ("owner", "?" + urlencode({"owner": owner})),
        ("2 weeks", "?" + urlencode({"from": start.isoformat(), "to": (start + timedelta(days=13)).isoformat()})),
    ]


CROSSED = ("segment x segment2", "?segment=channel&segment2=region")


def run_latency(db_path: Path, *, repeats: int = 5, warmup: bool = True, clicks: bool = True, progress: bool = False,
                only: set[str] | None = None, cache: bool = False, served: bool = False) -> LatencyResult:
    """Every callback of every page, fired through HTTP on the real server; rows per page and callback.

    cache=False (the default) starts the server with its result cache off, so every request
    computes its answer: the time of a view nobody opened yet. cache=True measures repeat visits.
    served=True measures the server as `funnelboard serve` runs it: cache on, timed once its
    warm-up has computed the default (unfiltered) views, each page and filter visited once, no
    untimed pass: a filtered view is a first visit and computes its answer, the unfiltered one
    comes from the warm-up."""
    if served:
        cache, warmup, repeats = True, False, 1
    result = LatencyResult()
    samples: list[Sample] = []
    with Server(Path(db_path), cache=cache, wait_warm=served) as server:
        result.warm_seconds = server.warm_seconds
        client = Client(server.base, server)
        owner, lead, last = _discover(client)
        pages = [p for p in _pages(client.shell) + [f"/lead/{lead}"] if only is None or _page_label(p) in only]
        mix = filter_mix(owner, last)
        plan = [(p, name, search) for p in pages for name, search in mix]
        if only is None or "/segments" in only:
            plan.append(("/segments", *CROSSED))
        if warmup:  # one untimed pass: the first touch of each mart pages the file in
            for pathname, name, search in plan:
                client.visit(pathname, search, name, clicks=clicks)
        for i in range(repeats):
            for pathname, name, search in plan:
                got = client.visit(pathname, search, name, clicks=clicks)
                samples += got
                if progress:
                    worst = max(got, key=lambda s: s.ms)
                    print(f"[{i + 1}/{repeats}] {pathname}{search}: {len(got)} requests, {sum(s.ms for s in got) / 1000:.1f} s, "
                          f"slowest {worst.callback} {worst.ms:.0f} ms", file=sys.stderr, flush=True)
        result.server_peak_mb = server.peak_mb()
        first_touch = client.discovery_samples
        log = server.log.read_text() if server.log else ""
        server.log.unlink(missing_ok=True) if server.log else None

    # Which request first pushed the server's high-water mark to (near) its peak.
    timeline = first_touch + samples  # the discovery visits (/leads, /stalled unfiltered) come first
    rises = [(b.hwm_mb - (a.hwm_mb or 0), b) for a, b in zip(timeline, timeline[1:]) if b.hwm_mb and a.hwm_mb]
    result.peak_raised_by = [f"{b.page} {b.callback} [{b.filters}]: +{d:.0f} MB to {b.hwm_mb:.0f} MB" for d, b in sorted(rises, key=lambda x: -x[0])[:3] if d > 1]
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.page, s.callback), []).append(s)
        if not s.ok:
            result.errors.append(f"{s.page} {s.callback} [{s.filters}]: {s.error}")
    for (page, cb), group in groups.items():
        times = sorted(s.ms for s in group if s.ok)
        by_filter: dict[str, list[float]] = {}
        for s in group:
            by_filter.setdefault(s.filters, []).append(s.ms)
        worst = max(by_filter, key=lambda f: _pct(sorted(by_filter[f]), 95))
        result.append({
            "page": page,
            "callback": cb,
            "filters": ", ".join(by_filter),
            "n": len(times),
            "p50_ms": _pct(times, 50),
            "p95_ms": _pct(times, 95),
            "max_ms": times[-1] if times else None,
            "worst_filter": worst,
            "statuses": sorted({s.status for s in group}),
            "errors": sum(not s.ok for s in group),
        })
    result.fired = {page: sorted({cb for (p, cb) in groups if p == page}) for page, _cb in groups}
    if result.errors and log:
        result.errors.append("server log tail:\n" + log[-3000:])
    return result


def _pct(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (p95 of 20 samples is the 19th)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def is_download(callback: str) -> bool:
    """A CSV export link: a GET of a whole list, timed to its last byte; the callback budget is not for it."""
    return callback.startswith("GET ")


def markdown(rows: list[dict], peak_mb: float | None = None) -> str:
    lines = [
        "| page | callback | n | p50 ms | p95 ms | max ms | worst filter | budget |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -(r["p95_ms"] or 0)):
        fmt = lambda v: "—" if v is None else f"{v:.0f}"  # noqa: E731
        if is_download(r["callback"]):
            verdict = "download (a file, not a callback)"
        else:
            verdict = "ok" if r["p95_ms"] is not None and r["p95_ms"] <= BUDGET_MS else "**miss**"
        lines.append(f"| {r['page']} | `{r['callback']}` | {r['n']} | {fmt(r['p50_ms'])} | {fmt(r['p95_ms'])} | {fmt(r['max_ms'])} | {r['worst_filter']} | {verdict} |")
    if peak_mb is not None:
        lines.append("")
        lines.append(f"Server peak RSS (VmHWM): {peak_mb:.0f} MB (budget 1024 MB).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first pass over every page")
    parser.add_argument("--no-clicks", action="store_true", help="leave out the CSV export clicks")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--page", action="append", help="only this page (e.g. /stalled, /lead/<id>); repeatable")
    parser.add_argument("--cache", action="store_true", help="keep the server's result cache on (repeat visits)")
    parser.add_argument("--served", action="store_true",
                        help="as `funnelboard serve` runs: cache on, timed after its warm-up, each view visited once")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated run stops its server too
    result = run_latency(args.db, repeats=args.repeats, warmup=not args.no_warmup, clicks=not args.no_clicks, progress=True,
                         only=set(args.page) if args.page else None, cache=args.cache, served=args.served)
    if result.warm_seconds is not None:
        print(f"The server's warm-up computed its default views in {result.warm_seconds:.1f} s before the timed requests.")
    print(markdown(result, result.server_peak_mb))
    if result.peak_raised_by:
        print("Largest rises of the server's peak: " + "; ".join(result.peak_raised_by) + ".")
    if args.json:
        args.json.write_text(json.dumps({"rows": list(result), "server_peak_mb": result.server_peak_mb, "peak_raised_by": result.peak_raised_by, "errors": result.errors}, indent=1, default=str))
    if result.errors:
        print(f"\n{len(result.errors)} errors:", file=sys.stderr)
        for e in result.errors[:30]:
            print("  " + e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
