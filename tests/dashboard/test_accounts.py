"""Accounts: hashed passwords only, sign-in on every route, and a user's scope on every row they can reach,
whatever the URL, a hand-made callback POST or an export asks."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import stat

import pytest
from click.testing import CliRunner

from funnelboard.cli import main
from funnelboard.core.accounts import User, hash_password, read_users, users_from_env, write_users
from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import Gateway
from tests.conftest import write
from tests.dashboard.replay import replay_client

LEAD = re.compile(r"\bL\d{7}\b")  # the demo's lead ids
PASSWORD = "correct horse battery"


def basic(name: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


# --------------------------------------------------------------------------- the users file


def test_a_plain_text_password_is_refused_wherever_it_is_written(tmp_path):
    plain_toml = write(tmp_path / "a.toml", '[users.ops]\npassword = "s3cret-pass"\n')
    with pytest.raises(UserError, match="user 'ops' .* has a plain-text password"):
        read_users(plain_toml)
    with pytest.raises(UserError, match="holds user:password lines, passwords in plain text"):
        read_users(write(tmp_path / "b", "ops:s3cret\nlead:pa:ss\n"))
    with pytest.raises(UserError, match="FUNNELBOARD_AUTH holds a plain-text password"):
        users_from_env("ops:s3cret")
    assert users_from_env("ops:" + hash_password(PASSWORD))["ops"].scope == ()
    for args, env in [(["serve", "--users", str(plain_toml)], {}), (["serve"], {"FUNNELBOARD_AUTH": "ops:s3cret"})]:
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 2 and "plain-text password" in result.output and "Traceback" not in result.output
        assert "s3cret" not in result.output


def test_users_add_asks_for_the_password_and_writes_only_its_hash(tmp_path):
    users = tmp_path / "users.toml"
    run = CliRunner().invoke(main, ["users", "add", "maya", "--users", str(users), "--scope", "owner=Maya Patel",
                                    "--scope", "owner=Grace Liu", "--password-stdin"], input=PASSWORD + "\n")
    assert run.exit_code == 0, run.output
    assert run.output == f"added maya: owner in (Grace Liu, Maya Patel) in {users}\n"
    assert PASSWORD not in users.read_text() and stat.S_IMODE(users.stat().st_mode) == 0o600
    (maya,) = read_users(users).values()
    assert maya.scope == (("owner", ("Grace Liu", "Maya Patel")),)
    again = CliRunner().invoke(main, ["users", "add", "ops", "--users", str(users)], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert again.exit_code == 0 and PASSWORD not in again.output
    listed = CliRunner().invoke(main, ["users", "list", "--users", str(users)])
    assert listed.output == "maya: owner in (Grace Liu, Maya Patel)\nops: every lead\n"
    short = CliRunner().invoke(main, ["users", "add", "x", "--users", str(users), "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 8 characters" in short.output
    bad = CliRunner().invoke(main, ["users", "add", "x", "--users", str(users), "--scope", "Owner=1", "--password-stdin"], input=PASSWORD + "\n")
    assert bad.exit_code == 2 and "is not a column name" in bad.output
    assert CliRunner().invoke(main, ["users", "remove", "ops", "--users", str(users)]).exit_code == 0
    assert set(read_users(users)) == {"maya"}


@pytest.mark.slow
def test_a_scope_on_a_column_the_warehouse_lacks_refuses_to_serve(db, tmp_path):
    users = tmp_path / "users.toml"
    write_users(users, {"x": User("x", hash_password(PASSWORD), (("region_code", ("EMEA",)),))})
    result = CliRunner().invoke(main, ["serve", "--db", str(db), "--users", str(users)])
    assert result.exit_code == 2 and "scope on 'region_code', which is not a segment column" in result.output


def test_debug_serves_on_loopback_only(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--debug", "--host", "0.0.0.0", "--insecure-no-auth", "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2 and "refusing --debug on 0.0.0.0" in result.output


# --------------------------------------------------------------------------- sign-in


@pytest.fixture(scope="module")
def owners(db) -> list[str]:
    return [o for (o,) in Gateway(db).query("select owner from fct_leads group by 1 order by count(*) desc").rows]


@pytest.fixture(scope="module")
def scoped_app(db, owners):
    """The demo dashboard with two accounts: `ops` sees every lead, `maya` only her own."""
    from funnelboard.dashboard.accounts import require_accounts
    from funnelboard.dashboard.app import create_app

    app = create_app(db)
    require_accounts(app.server, {
        "ops": User("ops", hash_password(PASSWORD)),
        "maya": User("maya", hash_password(PASSWORD), (("owner", (owners[0],)),)),
    })
    return app


@pytest.mark.slow
@pytest.mark.parametrize("header", [
    None, "Bearer abc", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "Basic " + base64.b64encode(b"ops:wrong").decode(),
    "Basic " + base64.b64encode(f"nobody:{PASSWORD}".encode()).decode(), "basic " + "A" * 10_000,
])
def test_every_route_asks_for_a_password_and_a_bad_header_is_a_401_not_a_500(scoped_app, header):
    client = scoped_app.server.test_client()
    headers = {"Authorization": header} if header else {}
    for path in ("/", "/funnel", "/_dash-layout", "/_dash-dependencies", "/export/leads.csv", "/assets/style.css"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, (path, header)
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert client.post("/_dash-update-component", json={}, headers=headers).status_code == 401
    assert client.get("/healthz").status_code in (200, 503), "the health check is public and says nothing of the data"


def test_the_right_password_opens_every_route(scoped_app):
    client = scoped_app.server.test_client()
    assert client.get("/", headers=basic("ops", PASSWORD)).status_code == 200
    assert client.get("/export/leads.csv", headers=basic("ops", PASSWORD)).status_code == 200


# --------------------------------------------------------------------------- scopes


def _visible(app, name: str, lead: str) -> tuple[str, list[str]]:
    """Everything a user's browser receives on every page and on `lead`'s page (callback payloads and
    downloads), as text."""
    from benchmarks.latency import _pages

    client = replay_client(app, basic(name, PASSWORD))
    seen = []
    for path in _pages(client.shell) + [f"/lead/{lead}"]:
        samples = client.visit(path, "", "", clicks=True)
        assert all(s.ok for s in samples), [s.error for s in samples if not s.ok]
        seen += [json.dumps(p) for p in client.last_payloads]
    return "\n".join(seen), _pages(client.shell)


@pytest.mark.slow
def test_a_scoped_user_receives_no_row_of_another_owner_on_any_page(scoped_app, db, owners):
    mine = {lead for (lead,) in Gateway(db).query("select lead_id from fct_leads where owner = $o", {"o": owners[0]}).rows}
    seen, _pages = _visible(scoped_app, "maya", min(mine))
    leaked_leads = set(LEAD.findall(seen)) - mine
    assert not leaked_leads, f"{len(leaked_leads)} leads of other owners reached the browser, e.g. {sorted(leaked_leads)[:3]}"
    assert LEAD.findall(seen), "her own leads are shown"
    leaked_owners = [o for o in owners[1:] if o in seen]
    assert not leaked_owners, f"other owners' names reached the browser: {leaked_owners}"
    everything, _ = _visible(scoped_app, "ops", min(mine))
    assert set(LEAD.findall(everything)) - mine and all(o in everything for o in owners[:3]), "the test can see a leak"


def test_a_scoped_user_cannot_widen_the_scope_by_url_callback_or_export(scoped_app, db, owners):
    client = scoped_app.server.test_client()
    other = owners[1]
    auth = basic("maya", PASSWORD)
    for search in ("", f"?owner={other}", "?owner=", "?segment=owner"):
        response = client.get(f"/export/leads.csv{search}", headers=auth)
        assert response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert {r["owner"] for r in rows} <= {owners[0]}, search
        assert rows or "owner=" in search
    # the leads grid's callback, posted by hand with another owner's filter in its search
    body = {
        "output": '..{"table":["MATCH"],"type":"fb-grid","v":["MATCH"]}.getRowsResponse...{"table":["MATCH"],"type":"fb-count","v":["MATCH"]}.children..',
        "outputs": [{"id": {"table": "leads", "type": "fb-grid", "v": "x"}, "property": "getRowsResponse"},
                    {"id": {"table": "leads", "type": "fb-count", "v": "x"}, "property": "children"}],
        "inputs": [{"id": {"table": "leads", "type": "fb-grid", "v": "x"}, "property": "getRowsRequest",
                    "value": {"startRow": 0, "endRow": 100, "sortModel": [], "filterModel": {}}}],
        "state": [{"id": "url", "property": "search", "value": f"?owner={other}"}],
        "changedPropIds": ['{"table":"leads","type":"fb-grid","v":"x"}.getRowsRequest'],
    }
    crafted = client.post("/_dash-update-component", json=body, headers=auth)
    assert crafted.status_code == 200 and crafted.json["response"]
    assert other not in crafted.get_data(as_text=True) and not LEAD.findall(crafted.get_data(as_text=True))
    as_ops = client.post("/_dash-update-component", json=body, headers=basic("ops", PASSWORD))
    assert LEAD.findall(as_ops.get_data(as_text=True)), "ops sees that owner's leads through the same POST"
    # a lead of another owner does not exist for her
    theirs = Gateway(db).query("select lead_id from fct_leads where owner = $o limit 1", {"o": other}).rows[0][0]
    from funnelboard.dashboard.tables import export_rows

    with scoped_app.server.test_request_context(headers=auth):
        scoped_app.server.preprocess_request()
        with pytest.raises(UserError, match=f"there is no lead '{theirs}'"):
            export_rows("lead-history", f"/lead/{theirs}", "")
    quarantine = client.get("/export/quality-quarantine.csv", headers=auth)
    assert quarantine.status_code in (400, 404)
