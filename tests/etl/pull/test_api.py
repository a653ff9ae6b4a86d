"""The HTTP client every connector uses, against a real server on loopback: retries, 429, quotas, auth, secrets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from funnelboard.core.errors import UserError
from funnelboard.etl import raw_schema
from funnelboard.etl.pull.base import QuotaReached, get_connector, iso_utc, parse_instant
from funnelboard.etl.pull.http import Api, Policy, retry_after
from funnelboard.etl.pull.secrets import Secret, secret, setting
from tests.etl.pull.loopback import Loopback, Reply

TOKEN = "pat-na1-5ecret-70ken-0000"


def app(request):
    if request.path == "/items":
        return Reply(200, {"items": [1, 2, 3], "page": request.arg("page", "1")})
    if request.path == "/echo-error":
        return Reply(400, {"message": f"bad request, your token was {TOKEN}"})
    return Reply(404, {"message": "no such path"})


def make_api(server, waits: list[float], **policy) -> Api:
    return Api(
        "TestCRM",
        server.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        secrets=[Secret("FUNNELBOARD_TEST_TOKEN", TOKEN)],
        scope=lambda status, path: "grant the app the crm.objects.deals.read scope.",
        quota=lambda r: "the daily limit of 250,000 calls is used up." if r.headers.get("X-Daily-Remaining") == "0" else None,
        policy=Policy(**{"retries": 3, "backoff": 0.5, "max_wait": 30, "timeout": 1, **policy}),
        sleep=waits.append,
    )


def test_answers_json_and_sends_the_token_only_in_the_header():
    with Loopback(app) as server:
        api = make_api(server, [])
        assert api.get("/items", {"page": "2"}) == {"items": [1, 2, 3], "page": "2"}
        (req,) = server.seen("/items")
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in str(req.query)


def test_429_waits_what_retry_after_says_then_retries():
    with Loopback(app) as server:
        server.faults("/items", [Reply(429, {"message": "slow down"}, {"Retry-After": "7"}), Reply(429, {}, {})])
        waits: list[float] = []
        assert make_api(server, waits).get("/items")["items"] == [1, 2, 3]
        assert waits == [7.0, 0.5]  # Retry-After's seconds, then the backoff when the answer gives none
        assert len(server.seen("/items")) == 3


def test_retry_after_as_an_http_date():
    now = datetime(2026, 12, 7, 10, 0, 0, tzinfo=timezone.utc)
    assert retry_after("Mon, 07 Dec 2026 10:00:30 GMT", now) == 30.0
    assert retry_after("garbage", now) is None and retry_after(None) is None
    assert retry_after("0") == 0.0


def test_a_wait_longer_than_the_limit_stops_as_a_quota():
    with Loopback(app) as server:
        server.faults("/items", [Reply(429, {}, {"Retry-After": "3600"})])
        with pytest.raises(QuotaReached, match="3,600 s"):
            make_api(server, []).get("/items")


def test_a_daily_quota_answer_stops_at_once():
    with Loopback(app) as server:
        server.faults("/items", [Reply(429, {"policyName": "DAILY"}, {"X-Daily-Remaining": "0", "Retry-After": "1"})])
        waits: list[float] = []
        with pytest.raises(QuotaReached, match="daily limit"):
            make_api(server, waits).get("/items")
        assert waits == []


def test_5xx_is_retried_with_doubling_backoff_then_gives_up_in_one_sentence():
    with Loopback(app) as server:
        server.faults("/items", [Reply(502), Reply(503)])
        waits: list[float] = []
        assert make_api(server, waits).get("/items")["items"] == [1, 2, 3]
        assert waits == [0.5, 1.0]
        server.faults("/items", [Reply(500)] * 3)
        with pytest.raises(UserError) as err:
            make_api(server, []).get("/items")
        assert str(err.value).startswith("TestCRM did not answer after 3 tries (last: HTTP 500 at /items)")
        assert "\n" not in str(err.value)


def test_a_timeout_is_retried():
    with Loopback(app) as server:
        server.hang("/items", 1)
        waits: list[float] = []
        assert make_api(server, waits, timeout=0.3).get("/items")["items"] == [1, 2, 3]
        assert waits == [0.5]


def test_401_and_403_name_the_missing_scope_without_the_secret():
    with Loopback(app) as server:
        for status in (401, 403):
            server.faults("/items", [Reply(status, {"message": f"token {TOKEN} lacks scopes"})])
            with pytest.raises(UserError) as err:
                make_api(server, []).get("/items")
            text = str(err.value)
            assert text == f"TestCRM refused /items (HTTP {status}): grant the app the crm.objects.deals.read scope."
            assert TOKEN not in text


def test_other_client_errors_are_one_redacted_sentence():
    with Loopback(app) as server:
        with pytest.raises(UserError) as err:
            make_api(server, []).get("/echo-error")
        assert "HTTP 400" in str(err.value) and TOKEN not in str(err.value) and "***" in str(err.value)


def test_secrets_come_from_the_environment_or_a_file_and_never_print(monkeypatch, tmp_path):
    monkeypatch.delenv("FUNNELBOARD_HUBSPOT_TOKEN", raising=False)
    monkeypatch.delenv("FUNNELBOARD_HUBSPOT_TOKEN_FILE", raising=False)
    with pytest.raises(UserError, match="set FUNNELBOARD_HUBSPOT_TOKEN .*never takes a secret on the command line"):
        secret("hubspot", "token", what="private app token")
    (tmp_path / "tok").write_text(TOKEN + "\n")
    monkeypatch.setenv("FUNNELBOARD_HUBSPOT_TOKEN_FILE", str(tmp_path / "tok"))
    s = secret("hubspot", "token")
    assert s.reveal() == TOKEN and TOKEN not in repr(s) and TOKEN not in f"{s}"
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("FUNNELBOARD_HUBSPOT_TOKEN_FILE", str(tmp_path / "empty"))
    with pytest.raises(UserError, match="which is empty"):
        secret("hubspot", "token")
    monkeypatch.setenv("FUNNELBOARD_HUBSPOT_TOKEN", "direct")
    assert secret("hubspot", "token").reveal() == "direct"  # the variable wins over the file
    monkeypatch.setenv("FUNNELBOARD_HUBSPOT_URL", " http://127.0.0.1:9 ")
    assert setting("hubspot", "url", "https://api.hubapi.com") == "http://127.0.0.1:9"
    monkeypatch.delenv("FUNNELBOARD_HUBSPOT_URL")
    assert setting("hubspot", "url", "https://api.hubapi.com") == "https://api.hubapi.com"


def test_policy_from_the_environment_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("FUNNELBOARD_PULL_BACKOFF", "soon")
    with pytest.raises(UserError, match="FUNNELBOARD_PULL_BACKOFF must be a number"):
        Policy.from_env()


def test_instants_and_unknown_crms():
    assert iso_utc(parse_instant("2026-01-31")) == "2026-01-31T00:00:00.000Z"
    assert iso_utc(parse_instant("2026-01-31T10:00:00+02:00")) == "2026-01-31T08:00:00.000Z"
    with pytest.raises(UserError, match="not a date"):
        parse_instant("last tuesday")
    with pytest.raises(UserError, match="unknown CRM 'zoho'"):
        get_connector("zoho")


def test_marks_keep_their_history_and_the_latest_wins(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    raw_schema.ensure_schema(con)
    assert raw_schema.current_marks(con, "hubspot") == {}
    now = datetime(2026, 12, 1)
    raw_schema.record_marks(con, "hubspot", {"deals": "2026-11-01T00:00:00.000Z"}, 1, now, True)
    raw_schema.record_marks(con, "hubspot", {"deals": "2026-11-20T00:00:00.000Z"}, 2, now + timedelta(days=1), False)
    raw_schema.record_marks(con, "pipedrive", {"deals": "2026-01-01T00:00:00.000Z"}, 3, now, True)
    assert raw_schema.current_marks(con, "hubspot") == {"deals": "2026-11-20T00:00:00.000Z"}
    assert con.execute("select count(*) from pull_marks").fetchall() == [(3,)]


def test_stored_ties_are_read_per_crm_both_ways_and_a_warehouse_without_them_has_none(tmp_path):
    from funnelboard.warehouse.pull import stored_ties

    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table pull_marks (source varchar, object varchar, mark varchar, load_id integer, pulled_at timestamp, "
                "complete boolean)")  # a warehouse pulled into before pull_journeys existed
    assert raw_schema.tied_journeys(con, "hubspot", ["deal:9"]) == []
    raw_schema.ensure_schema(con)
    con.executemany("insert into pull_journeys values (?, ?, ?)",
                    [("hubspot", "deal:9", "contact:5"), ("hubspot", "deal:7", "contact:5"), ("other", "deal:9", "contact:1")])
    con.close()
    with stored_ties(db, "hubspot") as tied:
        assert tied(["deal:9"]) == [("deal:9", "contact:5")]
        assert tied(["contact:5", "deal:1"]) == [("deal:7", "contact:5"), ("deal:9", "contact:5")]
        assert tied([]) == [] and tied(["contact:1"]) == []
    with stored_ties(tmp_path / "none.duckdb", "hubspot") as tied:
        assert tied(["deal:9"]) == []
