"""`funnelboard serve` runs on waitress, and SIGTERM drains: requests in flight are answered to the
last byte, new connections are refused, the process exits 0 and its atexit handlers remove the
gateway's spill directory. Real processes, real HTTP on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from benchmarks.latency import Client
from funnelboard.cli.production import DRAIN_SECONDS
from funnelboard.core.config import load_config
from funnelboard.etl.generate import generate
from funnelboard.warehouse.pipeline import load_files
from tests.conftest import NOW

pytestmark = pytest.mark.slow  # a generated warehouse and served processes, seconds each

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """60,000 leads: the lead list's CSV (~6 MB) outgrows what loopback sockets buffer, so a
    reader that stops reading leaves most of it in the server."""
    folder = tmp_path_factory.mktemp("production")
    events = generate(out=folder / "events.csv", n_leads=60_000, seed=4).path
    db = folder / "wh.duckdb"
    load_files(db, [events], load_config(None), now=NOW)
    return db


@pytest.fixture(scope="module")
def cli_csv(warehouse):
    """What `funnelboard query NAME --format csv` prints: the bytes its download must send."""
    def run(name: str) -> bytes:
        return subprocess.run([sys.executable, "-m", "funnelboard", "query", name, "--format", "csv", "--db", str(warehouse)],
                              cwd=ROOT, capture_output=True, check=True).stdout

    return {name: run(name) for name in ("leads", "stalled")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`funnelboard serve` in a child process with its own TMPDIR, output to files in `folder`."""

    def __init__(self, db: Path, folder: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp = folder / "tmp"
        self.tmp.mkdir()
        self.out, self.err = folder / "serve.out", folder / "serve.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "funnelboard", "serve", "--db", str(db), "--port", str(self.port)],
                                         cwd=ROOT, stdout=out, stderr=err, env={**os.environ, "TMPDIR": str(self.tmp)})

    def await_warm(self, timeout: float = 120) -> None:
        """Poll /healthz until the default views are computed (the first queries made the spill dir)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.err.read_text()
            try:
                if requests.get(f"{self.base}/healthz", timeout=5).json()["warm"]:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)  # polling a condition, with a deadline
        raise AssertionError(f"not warm within {timeout} s: {self.err.read_text()[-2000:]}")

    def spill_dirs(self) -> list[Path]:
        return sorted(self.tmp.glob("funnelboard-spill-*"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def served(warehouse, tmp_path):
    server = Served(warehouse, tmp_path)
    yield server
    server.stop()


def _http10(port: int, request: bytes, *, rcvbuf: int | None = None) -> socket.socket:
    """A connection with one HTTP/1.0 request sent: the answer ends when the server closes it."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: it sets the window
    sock.settimeout(60)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    return sock


def _read_all(sock: socket.socket, start: bytes = b"") -> tuple[bytes, bytes]:
    """Read to the end; (status line and headers, body)."""
    data = bytearray(start)
    while chunk := sock.recv(1 << 16):
        data += chunk
    sock.close()
    head, _sep, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_serve_runs_on_waitress_and_answers_dash_callbacks(served):
    served.await_warm()
    health = requests.get(f"{served.base}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["published"]
    assert health.headers["Server"] == "waitress"

    client = Client(served.base)  # replays the renderer's callback POSTs (benchmarks/latency.py)
    samples = client.visit("/funnel", "", "none", clicks=False)
    assert [s.error for s in samples if not s.ok] == []
    figure = [s for s in samples if s.callback.startswith("funnel-graph.figure")]
    assert figure and figure[0].status == 200
    answer = client.session.post(f"{served.base}/_dash-update-component", json={}, timeout=10)
    assert "Werkzeug" not in answer.headers.get("Server", "") and answer.headers["Server"] == "waitress"

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=DRAIN_SECONDS + 10) == 0
    assert served.spill_dirs() == []


def test_sigterm_answers_the_requests_in_flight_then_exits_and_removes_its_spill_dir(served, cli_csv):
    served.await_warm()
    assert len(served.spill_dirs()) == 1, "the warm-up's queries make the spill directory: nothing to check without it"

    # A slow reader: its download has started, and most of it waits in the server for the reader.
    slow = _http10(served.port, b"GET /export/leads.csv HTTP/1.0\r\nHost: x\r\n\r\n", rcvbuf=64 * 1024)
    first = slow.recv(4096)
    assert first.startswith(b"HTTP/1.0 200"), first[:200]
    # A request sent just before the signal: the server has not answered it yet.
    late = _http10(served.port, b"GET /export/stalled.csv HTTP/1.0\r\nHost: x\r\n\r\n")
    served.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    deadline = signalled + 10
    while not _refused(served.port):  # new connections are refused from now on
        assert time.monotonic() < deadline, "still accepting connections 10 s after SIGTERM"
        time.sleep(0.05)  # polling a condition, with a deadline
    assert served.proc.poll() is None, "exited before the slow reader had its download"

    late_head, late_body = _read_all(late)
    slow_head, slow_body = _read_all(slow, first)
    assert served.proc.wait(timeout=DRAIN_SECONDS + 10) == 0
    assert time.monotonic() - signalled < DRAIN_SECONDS

    assert late_head.startswith(b"HTTP/1.0 200") and late_body == cli_csv["stalled"]
    assert slow_head.startswith(b"HTTP/1.0 200") and len(slow_body) == len(cli_csv["leads"]) and slow_body == cli_csv["leads"]
    err = served.err.read_text()
    in_flight = re.search(r"stopping: (\d+) connection\(s\) in flight", err)
    assert in_flight and int(in_flight.group(1)) >= 1, err
    assert "stopped: every response was written" in err, err
    assert served.spill_dirs() == [], "atexit did not run: the spill directory is left behind"


def test_exit_waits_for_a_read_inside_duckdb_instead_of_aborting(warehouse, tmp_path):
    """SIGTERM during the warm-up (seconds after a start or a publish): the warm-up's daemon thread is
    inside DuckDB when the interpreter finalizes, and leaving through DuckDB's C++ frames aborted the
    process (status 134, after the drain had gone well). Exit now waits for the read."""
    script = textwrap.dedent("""
        import sys, threading
        from pathlib import Path
        from funnelboard.warehouse.gateway import Gateway

        gateway = Gateway(Path(sys.argv[1]))
        gateway.query("select 1")
        inside = threading.Event()

        def warm():
            inside.set()
            gateway.query("select sum(i) from range(1000000000) t(i)")  # about 2 s inside DuckDB

        threading.Thread(target=warm, daemon=True).start()
        inside.wait()  # the main thread ends here: exit starts while the read runs
    """)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run([sys.executable, "-c", script, str(warehouse)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp.glob("funnelboard-spill-*")) == []
