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
