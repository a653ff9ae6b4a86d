"""The latency benchmark's renderer replay (every callback of a page, fired as the browser fires it),
run against the WSGI app in this process: a requests-like session over Flask's test client."""

from __future__ import annotations

import json as jsonlib

from benchmarks.latency import Client


class _Response:
    def __init__(self, response):
        self.status_code = response.status_code
        self.content = response.get_data()
        self.headers = response.headers
        response.close()  # a streamed download ends its request context here

    def json(self):
        return jsonlib.loads(self.content)

    def iter_content(self, size: int):
        for start in range(0, len(self.content), size):
            yield self.content[start : start + size]


class WsgiSession:
    """get/post as benchmarks.latency.Client calls them, answered by the app's test client."""

    def __init__(self, server, headers: dict | None = None):
        self.client = server.test_client()
        self.headers = headers or {}

    def get(self, url: str, **_kw) -> _Response:
        return _Response(self.client.get(url, headers=self.headers))

    def post(self, url: str, json=None, headers=None, **_kw) -> _Response:
        return _Response(self.client.post(url, json=json, headers={**self.headers, **(headers or {})}))


def replay_client(app, headers: dict | None = None) -> Client:
    """A replay client of `app` (a Dash app); `headers` go with every request (an Authorization)."""
    return Client("", session=WsgiSession(app.server, headers))
