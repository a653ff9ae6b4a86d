"""Serving is safe by default: loopback, debug off, no open port beyond this machine without a password."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from funnelboard.cli import check_bind, main, read_accounts
from funnelboard.core.accounts import User, hash_password, write_users
from funnelboard.core.errors import UserError
from tests.conftest import write


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_nothing(host):
    check_bind(host, {}, False)


def test_any_other_host_needs_accounts_or_an_explicit_risk():
    with pytest.raises(UserError, match="refusing to serve on 0.0.0.0 without accounts"):
        check_bind("0.0.0.0", {}, False)
    check_bind("0.0.0.0", {"ops": User("ops", hash_password("s3cret-pass"))}, False)
    check_bind("0.0.0.0", {}, True)
    with pytest.raises(UserError, match="refusing --debug on 0.0.0.0"):
        check_bind("0.0.0.0", {"ops": User("ops", hash_password("s3cret-pass"))}, False, debug=True)


def test_accounts_come_from_a_users_file_or_the_environment(tmp_path):
    hashed = hash_password("s3cret-pass")
    path = tmp_path / "users.toml"
    write_users(path, {"ops": User("ops", hashed), "lead": User("lead", hashed, (("region", ("EMEA",)),))})
    assert read_accounts(str(path), {}) == {"ops": User("ops", hashed), "lead": User("lead", hashed, (("region", ("EMEA",)),))}
    assert read_accounts(None, {"FUNNELBOARD_AUTH": f"a:{hashed}"}) == {"a": User("a", hashed)}
    assert read_accounts(None, {}) == {}
    with pytest.raises(UserError, match="needs \\[users.NAME\\] tables"):
        read_accounts(str(write(tmp_path / "bad", "x = 1\n")), {})
    with pytest.raises(UserError, match="cannot read the users file"):
        read_accounts(str(tmp_path / "missing"), {})


def test_the_command_refuses_before_starting_anything(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--db", str(tmp_path / "x.duckdb")], env={"FUNNELBOARD_AUTH": ""})
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_debug_mode_has_no_console_and_asks_for_a_password(tmp_path):
    """--debug runs Dash's dev server without Werkzeug's debugger: /console is the app's, behind sign-in."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import requests

    users = tmp_path / "users.toml"
    write_users(users, {"ops": User("ops", hash_password("s3cret-pass"))})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "funnelboard", "serve", "--debug", "--db", str(tmp_path / "none.duckdb"), "--users", str(users), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/console", timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "the debug server did not start"
                time.sleep(0.1)  # polling a condition, with a deadline
        assert answer.status_code == 401
        assert "Werkzeug" not in answer.text and "console" not in answer.text.lower()
        signed_in = requests.get(f"http://127.0.0.1:{port}/console?__debugger__=yes&cmd=resource&f=style.css", auth=("ops", "s3cret-pass"), timeout=5)
        # no debugger resource: the app's own not-found page answers the path
        assert signed_in.status_code == 404 and 'id="_dash-config"' in signed_in.text and "Werkzeug Debugger" not in signed_in.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
