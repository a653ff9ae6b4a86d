"""Serving is safe by default: loopback, debug off, no open port beyond this machine without a password."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from funnelboard.cli import check_bind, main, read_credentials
from funnelboard.core.errors import UserError
from tests.conftest import write


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_nothing(host):
    check_bind(host, {}, False)


def test_any_other_host_needs_credentials_or_an_explicit_risk():
    with pytest.raises(UserError, match="refusing to serve on 0.0.0.0 without authentication"):
        check_bind("0.0.0.0", {}, False)
    check_bind("0.0.0.0", {"ops": "s3cret"}, False)
    check_bind("0.0.0.0", {}, True)


def test_credentials_come_from_a_file_or_the_environment(tmp_path):
    path = write(tmp_path / "auth", "ops:s3cret\nlead:pa:ss\n\n")
    assert read_credentials(str(path), {}) == {"ops": "s3cret", "lead": "pa:ss"}
    assert read_credentials(None, {"FUNNELBOARD_AUTH": "a:b"}) == {"a": "b"}
    assert read_credentials(None, {}) == {}
    with pytest.raises(UserError, match="user:password"):
        read_credentials(str(write(tmp_path / "bad", "nopassword\n")), {})
    with pytest.raises(UserError, match="cannot read --auth-file"):
        read_credentials(str(tmp_path / "missing"), {})


def test_the_command_refuses_before_starting_anything(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--db", str(tmp_path / "x.duckdb")], env={"FUNNELBOARD_AUTH": ""})
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0" in result.output and "Traceback" not in result.output
