"""A real HTTP server on 127.0.0.1 that answers as a CRM's API does, for `funnelboard pull` tests.

`Loopback(app)` runs a ThreadingHTTPServer on a free port; `app(request) -> Reply` is the fake
API (each CRM's test module writes one from the API's documented response shapes). Tests add:

* `faults(path_prefix, [Reply, ...])`: answers served first, in order, to requests under the
  path (a 429 with Retry-After, a 503, a 401), before the app answers again;
* `hang(path_prefix, times)`: the next `times` requests there get no answer until the client
  gives up (its timeout), so a timeout is real, not simulated;
* `gate(path_prefix)`: requests there wait until the test opens the gate; `reached` is set when
  the first one arrives, so a test can kill a pull at a known point without sleeping.

Every request is recorded (`requests`) with its method, path, query, headers and body, so a
test can check paging parameters and that the secret travelled only in the auth header.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: object = None  # JSON-able, or bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        return json.dumps(self.body).encode(), "application/json"


class Gate:
    def __init__(self):
        self.reached = threading.Event()
        self.opened = threading.Event()

    def open(self) -> None:
        self.opened.set()


class Loopback:
    def __init__(self, app, *, tls_context=None):
        self.app = app
        self.requests: list[Request] = []
        self._faults: dict[str, deque[Reply]] = {}
        self._hangs: dict[str, int] = {}
        self._gates: dict[str, Gate] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall per answer

            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                reply = outer._answer(request)
                if reply is None:  # hung: hold the connection until the test ends, answering nothing
                    outer._release.wait(60)
                    self.close_connection = True
                    return
                data, ctype = reply.payload()
                if "Date" in reply.headers:  # the fake's own clock, instead of the time the answer is sent
                    self.log_request(reply.status)
                    self.send_response_only(reply.status)
                    self.send_header("Server", self.version_string())
                else:
                    self.send_response(reply.status)
                headers = {"Content-Type": ctype, **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        for gate in self._gates.values():
            gate.open()
        self.server.shutdown()
        self.server.server_close()

    def faults(self, prefix: str, replies: list[Reply]) -> None:
        with self._lock:
            self._faults.setdefault(prefix, deque()).extend(replies)

    def hang(self, prefix: str, times: int = 1) -> None:
        with self._lock:
            self._hangs[prefix] = self._hangs.get(prefix, 0) + times

    def gate(self, prefix: str) -> Gate:
        gate = Gate()
        with self._lock:
            self._gates[prefix] = gate
        return gate

    def seen(self, prefix: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def _answer(self, request: Request) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            hung = next((p for p, n in self._hangs.items() if n > 0 and request.path.startswith(p)), None)
            if hung is not None:
                self._hangs[hung] -= 1
                return None
            fault = next((q for p, q in self._faults.items() if q and request.path.startswith(p)), None)
            if fault is not None:
                return fault.popleft()
            gate = next((g for p, g in self._gates.items() if request.path.startswith(p)), None)
        if gate is not None:
            gate.reached.set()
            gate.opened.wait(60)
        return self.app(request)
