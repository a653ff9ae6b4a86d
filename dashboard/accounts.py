"""Sign-in for a served dashboard: HTTP basic auth against the users file's hashes, on every route.

`require_accounts(server, users)` checks each request's credentials before Flask routes it (pages,
callbacks, assets, downloads; only GET /healthz is public, and says nothing of the data), and
puts the user in `flask.g`, where `runtime.current_scope()` finds the scope every page's request
carries. A malformed Authorization header is a 401 like a wrong password, never a 500.

Checking a scrypt hash takes ~50 ms by design; a page fires a dozen callbacks, each with the same
header. A header that passed is remembered for the process by its keyed digest (HMAC with a random
per-process key: neither the password nor a plain hash of it stays in memory), at most MEMO entries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading

from flask import Response, g, request
from werkzeug.security import check_password_hash, generate_password_hash

from funnelboard.core.accounts import User

PUBLIC = ("/healthz",)
MEMO = 1024
REALM = 'Basic realm="funnelboard", charset="UTF-8"'


def require_accounts(server, users: dict[str, User]) -> None:
    key = os.urandom(32)
    passed: dict[bytes, str] = {}
    lock = threading.Lock()
    # an unknown name costs a hash check too, so a name's existence does not show in the timing
    decoy = generate_password_hash(os.urandom(16).hex(), method="scrypt")

    def signed_in(header: str | None) -> User | None:
        if not header:
            return None
        digest = hmac.new(key, header.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
        name = passed.get(digest)
        if name is not None and name in users:
            return users[name]
        credentials = _basic(header)
        if credentials is None:
            return None
        name, password = credentials
        user = users.get(name)
        if not check_password_hash(user.password_hash if user else decoy, password) or user is None:
            return None
        with lock:
            if len(passed) >= MEMO:
                passed.clear()
            passed[digest] = name
        return user

    @server.before_request
    def authenticate():
        if request.path in PUBLIC:
            return None
        user = signed_in(request.headers.get("Authorization"))
        if user is None:
            return Response("Sign in to see this funnelboard.\n", 401, {"WWW-Authenticate": REALM}, mimetype="text/plain")
        g.funnelboard_user = user
        return None


def _basic(header: str) -> tuple[str, str] | None:
    """(name, password) of a `Basic base64(name:password)` header, or None for anything else."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep and name else None
