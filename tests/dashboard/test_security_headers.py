"""Every response says what the browser may do with it, and no answer shows the server's paths."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/", "/funnel?from=2026-99-99", "/_dash-layout", "/export/leads.csv", "/export/nope.csv", "/nope/x.js", "/healthz"])
def test_every_response_carries_the_security_headers(app, path):
    with app.server.test_client().get(path) as response:
        assert response.status_code != 500
        headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe" not in policy["script-src"] and policy["script-src"].startswith("'self' 'sha256-")


def test_no_answer_shows_a_path_or_a_version(app, db):
    import funnelboard

    client = app.server.test_client()
    for path in ("/healthz", "/nope", "/export/nope.csv", "/export/leads.csv?from=2026-09-01&to=2026-03-01"):
        with client.get(path) as response:
            text = response.get_data(as_text=True)
        assert str(db.parent) not in text and str(db) not in text, path
        assert "Werkzeug" not in text and "Python/" not in text and getattr(funnelboard, "__version__", "0.1.0") not in text, path
