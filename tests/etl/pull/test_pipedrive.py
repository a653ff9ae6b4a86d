"""`funnelboard pull pipedrive` against a fake Pipedrive on loopback: every stage entry, paging, retries,
auth errors, incremental marks, the daily budget, kills, and the token kept out of everything written."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from funnelboard.core.config import load_config
from funnelboard.etl.pull.base import PullRequest, parse_instant
from funnelboard.etl.pull.pipedrive import fetch
from tests.etl.pull import harness
from tests.etl.pull.fake_pipedrive import STAGES, FakePipedrive
from tests.etl.pull.loopback import Loopback, Reply

TOKEN = "pd-7e57-api-5ecret-70ken-4242"
CONFIG = harness.ROOT / "examples" / "pipedrive" / "funnel.toml"
T = datetime(2026, 3, 2, 9, 0)
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
# examples/pipedrive/funnel.toml's [labels]: the stage each name is.
CANONICAL = {"Qualified": "qualified", "Contact Made": "contact_made", "Demo Scheduled": "demo",
             "Proposal Made": "proposal", "Negotiations Started": "negotiation", "Won": "won", "Lost": "lost"}


def company() -> FakePipedrive:
    """Ten deals: never moved, moved often (several flow pages), won, lost, money changes, activities, archived."""
    fake = FakePipedrive(TOKEN, page_max=3)
    fake.add_deal(101, T, 1, 12000, close_date="2026-04-30")
    fake.activity(101, T + 5 * HOUR, "call")
    fake.move(101, T + DAY, 2)
    fake.change(101, T + DAY + 3 * HOUR, "value", 15000)
    fake.move(101, T + 3 * DAY, 3)
    fake.note(101, T + 3 * DAY, "wants per-FTE pricing")
    fake.lose(101, T + 4 * DAY, "Pricing too high")
    fake.add_deal(102, T + HOUR, 1, 5000)
    fake.add_deal(103, T + 2 * HOUR, 2, 7000)
    fake.move(103, T + 2 * DAY, 4)
    fake.win(103, T + 5 * DAY)
    fake.add_deal(104, T + 3 * HOUR, 1, 100)
    fake.move(104, T + DAY + 2 * HOUR, 2)
    fake.archive(104, T + 6 * DAY)
    fake.add_deal(105, T + 4 * HOUR, 1, 20000, currency="USD")
    fake.move(105, T + DAY, 2)
    fake.move(105, T + 2 * DAY, 3)
    fake.change(105, T + 2 * DAY + 4 * HOUR, "expected_close_date", "2026-05-15")
    fake.move(105, T + 3 * DAY, 4)
    fake.move(105, T + 4 * DAY + HOUR, 5)
    fake.add_deal(106, T + 5 * HOUR, 3, 9000)
    fake.activity(106, T + 6 * HOUR, "meeting")
    fake.activity(106, T + 7 * HOUR, "call", done=False)
    fake.add_deal(107, T + 6 * HOUR, 1, 3000)
    fake.move(107, T + DAY + HOUR, 2)
    fake.lose(107, T + 2 * DAY, "No budget")
    fake.add_deal(108, T + 7 * HOUR, 2, 4000)
    fake.change(108, T + 8 * HOUR, "currency", "USD")
    fake.add_deal(109, T + 8 * HOUR, 1, 6500)
    fake.move(109, T + 9 * HOUR, 2)
    fake.add_deal(110, T + 9 * HOUR + 30 * MINUTE, 1, 2500)
    return fake


def later(fake: FakePipedrive) -> None:
    """What happens between two pulls: a new deal, moves (one of a deal that never moved), a money change, a loss."""
    fake.move(102, T + 10 * DAY, 2)
    fake.activity(102, T + 10 * DAY + HOUR, "call")  # a first response: an attribute of all of 102's events changes
    fake.change(109, T + 10 * DAY + 2 * HOUR, "value", 8000)
    fake.add_deal(111, T + 10 * DAY + 3 * HOUR, 1, 1200)
    fake.move(109, T + 10 * DAY + 5 * HOUR, 3)
    fake.lose(106, T + 11 * DAY, "Went dark")


def expected(fake: FakePipedrive) -> list[tuple]:
    """Each stage entry of each deal, read from the fake's own records with Pipedrive's meaning: creation in
    the stage it was created in, each stage move, won and lost (with the reason set then), and a money change
    between two moves repeating the stage the deal was in."""
    rows = []
    for deal in (d for d in fake.deals.values() if not d.deleted):
        changes = sorted((i["data"] for i in deal.flow if i["object"] == "dealChange"), key=lambda d: (d["log_time"], d["id"]))
        label, reason, entries, money = STAGES[deal.created_stage], None, [], []
        for c in changes:
            at = datetime.fromisoformat(c["new_value"] if c["field_key"] == "add_time" else c["log_time"])
            if c["field_key"] == "add_time":
                entries.append((label, at, None))
            elif c["field_key"] == "stage_id":
                label = STAGES[int(c["new_value"])]
                entries.append((label, at, None))
            elif c["field_key"] == "lost_reason":
                reason = c["new_value"]
            elif c["field_key"] == "status":
                entries.append(("Won" if c["new_value"] == "won" else "Lost", at, reason if c["new_value"] == "lost" else None))
            elif c["field_key"] in ("value", "expected_close_date", "currency"):
                money.append((label, at, None))
        moments = {at for _, at, _ in entries}
        entries += [m for m in money if m[1] not in moments]
        rows += [(str(deal.id), CANONICAL[name], name, at, why) for name, at, why in entries]
    return sorted(rows)


def env(server: Loopback, token: str = TOKEN) -> dict[str, str]:
    return {"FUNNELBOARD_PIPEDRIVE_URL": server.url, "FUNNELBOARD_PIPEDRIVE_TOKEN": token}


def pull(server: Loopback, db: Path, *more: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    return harness.run_pull("pipedrive", db, env(server, token), "--config", str(CONFIG), *more)


def full_pull(fake: FakePipedrive, folder: Path) -> list[tuple]:
    """The events a first pull of the fake's data as it is now gives, into a fresh warehouse."""
    with Loopback(fake) as server:
        done = pull(server, folder / "clean.duckdb")
    assert done.returncode == 0, done.stderr
    return harness.events(folder / "clean.duckdb")


def deals_requests(server: Loopback) -> list:
    return [r for r in server.seen("/api/v2/deals") if r.path == "/api/v2/deals" and r.arg("status") is None]


# -- in process: the connector alone ------------------------------------------------------------------


@pytest.fixture
def pull_env(monkeypatch):
    for name in [k for k in os.environ if k.startswith("FUNNELBOARD_")]:
        monkeypatch.delenv(name)
    for name, value in harness.pull_env({}).items():
        if name.startswith("FUNNELBOARD_"):
            monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.mark.slow
def test_fetch_pages_every_list_and_flow_and_sends_the_token_only_in_its_header(pull_env, tmp_path):
    fake = company()
    with Loopback(fake) as server:
        for name, value in env(server).items():
            pull_env.setenv(name, value)
        pulled = fetch(PullRequest("pipedrive", {}, None, tmp_path))
    listed = deals_requests(server)
    assert len(listed) == 3  # nine open deals, three a page
    cursors = [r.arg("cursor") for r in listed]
    assert cursors[0] is None and None not in cursors[1:] and len(set(cursors)) == 3
    assert all(r.arg("sort_by") == "update_time" and r.arg("sort_direction") == "asc" for r in listed)
    starts = [r.arg("start") for r in server.seen("/v1/deals/105/flow")]
    assert starts == ["0", "3"]  # six history items and no activity: two pages of three
    assert len(server.seen("/api/v2/stages")) == 2
    for r in server.requests:
        assert r.headers["x-api-token"] == TOKEN
        assert TOKEN not in r.path + json.dumps(r.query)
    assert pulled.counts == {"deals": 9, "archived_deals": 1}  # a first pull lists no activity: every deal is fetched whole
    probe = server.seen("/api/v2/activities")
    assert [(r.arg("sort_by"), r.arg("sort_direction"), r.arg("limit")) for r in probe] == [("update_time", "desc", "1")]
    assert pulled.marks == {"deals": "2026-03-07T09:00:00.000Z", "archived_deals": "2026-03-08T09:00:00.000Z",
                            "activities": "2026-03-02T16:00:00.000Z"}  # the newest activity, read before any deal
    assert pulled.stopped is None
    assert [p.name for p in pulled.files] == ["stages.json", "deal_flow.json", "deals.parquet"]
    flow = json.loads((tmp_path / "deal_flow.json").read_text())
    served = {i["data"]["id"] for d in fake.deals.values() for i in d.flow if i["object"] != "note"}
    assert {i["data"]["id"] for page in flow for i in page["data"]} == served  # every change and activity, no note
    stages = json.loads((tmp_path / "stages.json").read_text())["data"]
    assert {(s["name"], s["pipeline_name"]) for s in stages} == {(n, "Sales") for n in STAGES.values()}


def test_fetch_stopped_by_the_daily_budget_keeps_only_complete_deals_and_marks_the_last(pull_env, tmp_path):
    fake = company()
    # pipelines, two pages of stages, the newest activity (a first pull's activities mark), the first deals page and its
    # three flows, the second page and one flow: then spent
    fake.budget = 5 + 2 * 5 + 10 + 10 + 3 * 40 + 10 + 25
    with Loopback(fake) as server:
        for name, value in env(server).items():
            pull_env.setenv(name, value)
        pulled = fetch(PullRequest("pipedrive", {}, None, tmp_path))
    assert "daily API token budget is used up" in pulled.stopped
    order = sorted((d for d in fake.deals.values() if not d.archived), key=lambda d: (d.update_time, d.id))
    flows = json.loads((tmp_path / "deal_flow.json").read_text())
    complete = {i["data"].get("item_id") or i["data"].get("deal_id") for page in flows for i in page["data"]}
    assert complete == {d.id for d in order[:4]}  # the fifth deal's flow was cut short: it is not written
    newest = max(fake.activity_times.values()).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # read before any deal: kept
    assert pulled.marks == {"deals": order[3].update_time.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "activities": newest}
    assert pulled.counts == {"deals": 4}


def test_a_spent_budget_stops_before_anything_is_written(pull_env, tmp_path):
    fake = company()
    fake.budget = 0
    with Loopback(fake) as server:
        for name, value in env(server).items():
            pull_env.setenv(name, value)
        pulled = fetch(PullRequest("pipedrive", {"deals": "2026-03-04T09:00:00.000Z"}, None, tmp_path))
    assert len(server.requests) == 1  # stopped at the first answer: no waiting, no retry
    assert pulled.stopped.startswith("Pipedrive's daily API token budget is used up")
    assert (pulled.files, pulled.marks) == ([], {}) and not any(tmp_path.iterdir())


def test_the_mark_is_asked_for_to_the_second_rounded_down_so_no_deal_at_it_is_missed(pull_env, tmp_path):
    fake = company()
    with Loopback(fake) as server:
        for name, value in env(server).items():
            pull_env.setenv(name, value)
        pulled = fetch(PullRequest("pipedrive", {"deals": "2026-03-04T09:00:00.500Z", "archived_deals": "2026-03-09T00:00:00.000Z"},
                                   None, tmp_path))
    asked = {r.path: r.arg("updated_since") for r in server.requests if r.path.startswith("/api/v2/deals") and r.arg("status") is None}
    assert asked == {"/api/v2/deals": "2026-03-04T09:00:00Z", "/api/v2/deals/archived": "2026-03-09T00:00:00Z"}
    flows = {r.path.split("/")[3] for r in server.seen("/v1/deals/")}
    assert flows == {"107", "101", "105", "103"}  # 107 changed at 09:00:00 exactly
    assert pulled.counts == {"deals": 4, "archived_deals": 0}
    # no archived deal: that mark stays as it was; no activities mark yet: the newest activity's time becomes it
    assert pulled.marks == {"deals": "2026-03-07T09:00:00.000Z", "activities": "2026-03-02T16:00:00.000Z"}


@pytest.mark.slow
def test_a_deal_translates_the_same_alone_and_among_all(pull_env, tmp_path):
    """The adapter's events for a deal do not depend on which other deals came in the same pull."""
    from funnelboard.core.config import load_config
    from funnelboard.etl.sources import pipedrive as adapter

    config = load_config(CONFIG)
    fake = company()
    with Loopback(fake) as server:
        for name, value in env(server).items():
            pull_env.setenv(name, value)
        (tmp_path / "all").mkdir()
        everything = fetch(PullRequest("pipedrive", {}, None, tmp_path / "all"))
        later(fake)
        (tmp_path / "few").mkdir()
        few = fetch(PullRequest("pipedrive", {"deals": everything.marks["deals"]}, None, tmp_path / "few"))
    assert 0 < few.counts["deals"] < everything.counts["deals"]

    def events(paths):  # an attribute a file lacks is empty, as the loader reads it
        rows = adapter.translate(paths, config, {}).events.to_pylist()
        return {frozenset((k, v) for k, v in row.items() if v is not None and k not in ("_file", "_line")) for row in rows}

    small = events(few.files)
    (tmp_path / "again").mkdir()
    with Loopback(fake) as server:
        for name, value in env(server).items():
            pull_env.setenv(name, value)
        big = events(fetch(PullRequest("pipedrive", {}, None, tmp_path / "again")).files)
    assert small and small <= big


# -- end to end: the CLI in a child process --------------------------------------------------------------


@pytest.mark.slow
def test_first_pull_loads_every_stage_entry_and_replays_offline(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        done = pull(server, db, "--out", str(tmp_path / "pull"))
    assert done.returncode == 0, done.stderr
    want = expected(fake)
    assert harness.events(db) == want
    assert len({e[0] for e in want}) == 10
    assert harness.marks(db, "pipedrive") == {"deals": "2026-03-07T09:00:00.000Z", "archived_deals": "2026-03-08T09:00:00.000Z",
                                              "activities": "2026-03-02T16:00:00.000Z"}
    manifest = json.loads((tmp_path / "pull" / ".pull.json").read_text())
    files = sorted(glob.glob(str(tmp_path / "pull" / "*")))  # as a shell expands pull/*: the manifest is hidden
    assert sorted(str(tmp_path / "pull" / name) for name in manifest["files"]) == files
    replay = tmp_path / "replay.duckdb"
    loaded = subprocess.run(
        [sys.executable, "-m", "funnelboard", "load", *files, "--source", "pipedrive", "--db", str(replay),
         "--config", str(CONFIG)], env=harness.pull_env({}), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert harness.events(replay) == want


@pytest.mark.slow
def test_429_retry_after_5xx_and_a_timeout_are_waited_out(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        server.faults("/api/v2/deals", [Reply(429, {"success": False, "error": "Request over limit"},
                                              {"Retry-After": "1", "x-ratelimit-remaining": "0"})])
        server.faults("/v1/deals/103/flow", [Reply(503, "<html>Service Unavailable</html>"), Reply(502, "bad gateway")])
        server.hang("/v1/deals/105/flow", 1)
        done = pull(server, db)
        assert done.returncode == 0, done.stderr
        assert "HTTP 429, rate limited; waiting 1.0 s" in done.stderr
        assert "HTTP 503" in done.stderr and "HTTP 502" in done.stderr and "Timeout" in done.stderr
        first = deals_requests(server)[:2]
        assert first[0].query == first[1].query  # the page refused with 429 was asked again, not skipped
        assert [r.arg("start") for r in server.seen("/v1/deals/103/flow")] == ["0", "0", "0", "3"]  # 503, 502, two pages
    assert harness.events(db) == expected(fake)


@pytest.mark.slow
@pytest.mark.parametrize("where, reply, names", [
    ("/api/v2/", Reply(401, {"success": False, "error": "unauthorized access", "errorCode": 401}), "FUNNELBOARD_PIPEDRIVE_TOKEN"),
    ("/v1/deals/", Reply(403, {"success": False, "error": "You do not have permissions to do this.",
                               "error_info": "Please check developers.pipedrive.com", "data": None, "additional_data": None}),
     "recents:read"),
    ("/api/v2/stages", Reply(403, {"success": False, "error": "You do not have permissions to do this."}), "deals:read"),
    ("/api/v2/activities", Reply(403, {"success": False, "error": "You do not have permissions to do this."}), "activities:read"),
])
def test_401_and_403_are_one_sentence_naming_what_is_missing_and_load_nothing(tmp_path, where, reply, names):
    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        server.faults(where, [reply])
        done = pull(server, db)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: Pipedrive refused") and names in error and error.count(". ") == 0
    assert "Traceback" not in done.stderr
    assert not db.exists()
    harness.assert_secret_nowhere(TOKEN, outputs=[done.stdout, done.stderr], db=db, dirs=[tmp_path])


@pytest.mark.slow
def test_a_wrong_token_is_refused_and_never_written(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    wrong = "pd-wr0ng-70ken-but-5ecret-too-9999"
    with Loopback(fake) as server:
        done = pull(server, db, token=wrong)
    assert done.returncode == 2 and "FUNNELBOARD_PIPEDRIVE_TOKEN" in done.stderr
    assert not db.exists()
    assert list((tmp_path / "pulls" / "pipedrive").iterdir()) == []  # the failed pull leaves no empty folder
    harness.assert_secret_nowhere(wrong, outputs=[done.stdout, done.stderr], db=db, dirs=[tmp_path],
                                  argv=harness.pull_args("pipedrive", db, "--config", str(CONFIG)))


@pytest.mark.slow
def test_the_token_is_nowhere_after_a_pull_and_after_5xx_give_up(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        done = pull(server, db)
        assert done.returncode == 0, done.stderr
        harness.assert_secret_nowhere(TOKEN, outputs=[done.stdout, done.stderr], db=db, dirs=[tmp_path],
                                      argv=harness.pull_args("pipedrive", db, "--config", str(CONFIG)))
        later(fake)
        server.faults("/v1/deals/", [Reply(500, {"success": False, "error": f"internal error for {TOKEN}"})] * 5)
        before = harness.events(db)
        failed = pull(server, db)
    assert failed.returncode == 2
    assert "Pipedrive did not answer after 5 tries" in failed.stderr and "Traceback" not in failed.stderr
    assert harness.events(db) == before
    harness.assert_secret_nowhere(TOKEN, outputs=[failed.stdout, failed.stderr], db=db, dirs=[tmp_path])


@pytest.mark.slow
def test_an_incremental_pull_asks_only_for_changes_since_the_mark_and_ends_as_a_full_pull(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        assert pull(server, db).returncode == 0
        first = harness.marks(db, "pipedrive")
        later(fake)
        seen = len(server.requests)
        done = pull(server, db)
        assert done.returncode == 0, done.stderr
        second = server.requests[seen:]
    lists = {r.path: r.arg("updated_since") for r in second if r.path.startswith("/api/v2/deals") and r.arg("status") is None}
    assert lists == {"/api/v2/deals": "2026-03-07T09:00:00Z", "/api/v2/deals/archived": "2026-03-08T09:00:00Z"}
    assert first["deals"] == "2026-03-07T09:00:00.000Z"
    flows = {r.path.split("/")[3] for r in second if r.path.endswith("/flow")}
    assert flows == {"102", "103", "104", "106", "109", "111"}  # changed since the mark, or at it (103, 104)
    assert harness.marks(db, "pipedrive")["deals"] == "2026-03-13T09:00:00.000Z"
    events = harness.events(db)
    assert events == expected(fake) == full_pull(fake, tmp_path)
    assert len(events) == len(set(events))


@pytest.mark.slow
def test_a_pull_where_nothing_changed_publishes_nothing_and_the_next_change_does(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        assert pull(server, db).returncode == 0
        before, marks, published, loads = harness.events(db), harness.marks(db, "pipedrive"), os.stat(db), harness.loads(db)
        same = pull(server, db)  # deals 103 and 104, saved at the mark, are fetched again
        assert same.returncode == 0, same.stderr
        assert "pulled from pipedrive: 1 deals" in same.stdout
        assert "nothing changed in pipedrive since the last pull, unchanged" in same.stdout
        assert (os.stat(db).st_ino, os.stat(db).st_mtime_ns) == (published.st_ino, published.st_mtime_ns)
        assert (harness.events(db), harness.marks(db, "pipedrive"), harness.loads(db)) == (before, marks, loads)
        later(fake)
        assert pull(server, db).returncode == 0
        assert os.stat(db).st_ino != published.st_ino and harness.loads(db) == loads + 1
        # nothing changed in the CRM, but the configuration did: the models are rebuilt with it and published
        edited = tmp_path / "funnel.toml"
        edited.write_text(CONFIG.read_text().replace("min_sample = 30", "min_sample = 25"))
        republished = os.stat(db).st_ino
        rebuilt = harness.run_pull("pipedrive", db, env(server), "--config", str(edited))
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "building the models in full: the configuration changed" in rebuilt.stderr
    assert os.stat(db).st_ino != republished and harness.loads(db) == loads + 2
    assert harness.events(db) == expected(fake) == full_pull(fake, tmp_path)


@pytest.mark.slow
def test_a_fetched_again_record_s_quarantined_rows_are_replaced_not_piled_up(tmp_path):
    """A stage the config does not map quarantines its entries. A deal fetched again (it changed) brings
    its whole history, so its rows in the quarantine are replaced like its events: after any number of
    pulls the quarantine holds what one pull of the CRM as it is now would, once each."""
    unmapped = tmp_path / "funnel.toml"
    unmapped.write_text(CONFIG.read_text().replace('"Demo Scheduled" = "demo"\n', ""))

    fake = company()
    db, clean = tmp_path / "w.duckdb", tmp_path / "clean.duckdb"
    with Loopback(fake) as server:
        for _ in range(2):
            assert harness.run_pull("pipedrive", db, env(server), "--config", str(unmapped)).returncode == 0
        first = harness.quarantined(db)
        assert {lead for lead, _reason, _raw in first} == {"101", "105", "106"} and {r for _l, r, _raw in first} == {"unknown_stage"}
        later(fake)  # 106 (in Demo Scheduled once) is lost, 109 moves to it: both are fetched again
        for _ in range(2):
            assert harness.run_pull("pipedrive", db, env(server), "--config", str(unmapped)).returncode == 0
        assert harness.run_pull("pipedrive", clean, env(server), "--config", str(unmapped)).returncode == 0
    now = harness.quarantined(db)
    assert now == harness.quarantined(clean)
    assert {lead for lead, _reason, _raw in now} == {"101", "105", "106", "109"} and max(now.values()) == 1


@pytest.mark.slow
def test_a_fetched_again_deal_s_rejected_flow_items_are_replaced_not_piled_up(tmp_path):
    """A flow item whose time is not a time is rejected by the adapter, not by a check. It names its deal, so
    a pull that fetches the deal again replaces the deal's rejected items too: the quarantine holds what one
    pull of the CRM as it is now would, and a deal not fetched again keeps its row."""
    fake = company()
    for deal in (101, 109):  # 109 is fetched again after later(), 101 is not
        move = next(i for i in fake.deals[deal].flow if i["data"].get("field_key") == "stage_id")
        move["data"]["log_time"] = "2026-02-30 25:00:00"
    db, clean = tmp_path / "w.duckdb", tmp_path / "clean.duckdb"
    with Loopback(fake) as server:
        assert pull(server, db).returncode == 0
        first = harness.quarantined(db)
        later(fake)
        for _ in range(2):
            assert pull(server, db).returncode == 0
        assert pull(server, clean).returncode == 0
    now = harness.quarantined(db)
    assert now == harness.quarantined(clean) == first
    assert max(now.values()) == 1
    assert {(lead, reason) for lead, reason, _raw in now} == {("101", "impossible_timestamp"), ("109", "impossible_timestamp")}


def with_first_response(folder: Path) -> Path:
    """The example's funnel.toml, with each deal's first response kept in fct_leads ([attributes] first_response)."""
    config = folder / "funnel.toml"
    config.write_text(CONFIG.read_text().replace('amount = "amount"\n', 'amount = "amount"\nfirst_response = "first_response_at"\n'))
    assert "first_response =" in config.read_text()
    return config


def first_responses(db: Path, deals: list[str]) -> dict[str, str | None]:
    """Each deal's first response as its fct_leads row has it."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("select lead_id, first_response_at from fct_leads where list_contains($ids, lead_id)", {"ids": deals})
        return {lead: None if at is None else str(at) for lead, at in rows.fetchall()}
    finally:
        con.close()


@pytest.mark.slow
def test_activities_that_change_without_their_deals_reach_the_deals_they_left_and_joined(tmp_path):
    """101's first response is its call. Given to 108, it moves no deal's update_time, so the deal lists do not show
    either deal; nor do they show 110, whose open call is marked done. The pull lists the changed activities and
    fetches, whole, the deal each belongs to now and the deal an earlier pull counted it in (the warehouse keeps that
    tie): 101 has no first response any more, 108 and 110 have theirs, as a clean pull has them."""
    config = with_first_response(tmp_path)
    fake = company()
    call = next(i["data"]["id"] for i in fake.deals[101].flow if i["object"] == "activity")
    opened = fake.activity(110, T + 10 * HOUR, "call", done=False)
    db, clean = tmp_path / "w.duckdb", tmp_path / "clean.duckdb"
    with Loopback(fake) as server:
        assert harness.run_pull("pipedrive", db, env(server), "--config", str(config)).returncode == 0
        before = first_responses(db, ["101", "108", "110"])
        assert before == {"101": "2026-03-02T14:00:00Z", "108": None, "110": None}
        fake.move_activity(call, 108, T + 12 * DAY)
        fake.mark_done(opened, T + 12 * DAY + HOUR)
        seen = len(server.requests)
        done = harness.run_pull("pipedrive", db, env(server), "--config", str(config))
        assert done.returncode == 0, done.stderr
        second = server.requests[seen:]
        assert harness.run_pull("pipedrive", clean, env(server), "--config", str(config)).returncode == 0
    assert first_responses(db, ["101", "108", "110"]) == {"101": None, "108": "2026-03-02T14:00:00Z", "110": "2026-03-14T10:00:00Z"}
    assert harness.events(db) == harness.events(clean) == expected(fake)
    every = sorted(harness.journeys(db))
    assert harness.lead_facts(db, every) == harness.lead_facts(clean, every)
    harness.assert_refresh_equals_full_build(db, load_config(config), tmp_path)
    listed = [r for r in second if r.path == "/api/v2/activities"]
    assert [r.arg("updated_since") for r in listed] == ["2026-03-02T19:00:00Z"]  # the first pull's newest activity
    one_by_one = {r.path.split("/")[4] for r in second if r.path.startswith("/api/v2/deals/") and r.path.split("/")[4].isdigit()}
    assert one_by_one == {"101", "108", "110"}  # 101: the tie; 108, 110: where the activities are now
    assert {"101", "108", "110"} <= {r.path.split("/")[3] for r in second if r.path.endswith("/flow")}
    assert "2 activities" in done.stdout
    assert harness.marks(db, "pipedrive")["activities"] == "2026-03-14T10:00:00.000Z"


@pytest.mark.slow
def test_the_daily_budget_spent_on_a_changed_activity_s_deals_keeps_its_mark_and_the_next_pull_finishes(tmp_path):
    """The budget runs out fetching the deals of a changed activity: the activities mark stays where it was, so the
    next pull lists the activity again and ends as a clean pull."""
    config = with_first_response(tmp_path)
    fake = company()
    call = next(i["data"]["id"] for i in fake.deals[101].flow if i["object"] == "activity")
    db, clean = tmp_path / "w.duckdb", tmp_path / "clean.duckdb"

    def pull(server: Loopback, db: Path) -> subprocess.CompletedProcess:
        return harness.run_pull("pipedrive", db, env(server), "--config", str(config))

    with Loopback(fake) as server:
        assert pull(server, db).returncode == 0
        first = harness.marks(db, "pipedrive")
        facts = harness.lead_facts(db, ["101", "108"])
        fake.move_activity(call, 108, T + 12 * DAY)
        server.faults("/api/v2/deals/1", [Reply(429, {"success": False, "error": "Daily API token budget exceeded", "errorCode": 429},
                                                {"x-daily-ratelimit-token-remaining": "0", "Retry-After": "43200"})])
        stopped = pull(server, db)
        assert stopped.returncode == 75, stopped.stderr
        assert harness.marks(db, "pipedrive")["activities"] == first["activities"]
        assert harness.lead_facts(db, ["101", "108"]) == facts  # neither deal was loaded half-way
        assert pull(server, db).returncode == 0
        assert pull(server, clean).returncode == 0
    assert harness.marks(db, "pipedrive")["activities"] == "2026-03-14T09:00:00.000Z"
    assert harness.events(db) == harness.events(clean) == expected(fake)
    every = sorted(harness.journeys(db))
    assert harness.lead_facts(db, every) == harness.lead_facts(clean, every)
    assert first_responses(db, ["101", "108"]) == {"101": None, "108": "2026-03-02T14:00:00Z"}


@pytest.mark.slow
def test_deleted_deals_leave_the_warehouse_and_the_pull_ends_as_a_full_pull(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    untouched = {"101", "103", "105"}
    with Loopback(fake) as server:
        assert pull(server, db).returncode == 0
        before = harness.lead_facts(db, untouched)
        assert {"107", "104"} <= harness.journeys(db)
        fake.delete(107, T + 12 * DAY)  # a lost deal
        fake.delete(104, T + 12 * DAY + HOUR)  # an archived deal, then deleted
        seen = len(server.requests)
        done = pull(server, db)
        assert done.returncode == 0, done.stderr
        second = server.requests[seen:]
    asked = {(r.path, r.arg("status")) for r in second if r.path in ("/api/v2/deals", "/api/v2/deals/archived")}
    assert asked == {(p, s) for p in ("/api/v2/deals", "/api/v2/deals/archived") for s in (None, "deleted")}
    assert not {r.path.split("/")[3] for r in second if r.path.endswith("/flow")} & {"107", "104"}  # a deleted deal's flow is not read
    assert "removed 2 journey(s) from the warehouse: 2 record(s) deleted" in done.stdout
    assert harness.marks(db, "pipedrive")["deleted_archived_deals"] == "2026-03-14T10:00:00.000Z"
    assert not {"107", "104"} & harness.journeys(db)
    events = harness.events(db)
    assert events == expected(fake) == full_pull(fake, tmp_path)
    assert harness.lead_facts(db, untouched) == before
    harness.assert_refresh_equals_full_build(db, load_config(CONFIG), tmp_path)


@pytest.mark.slow
def test_the_daily_budget_stops_with_75_loads_what_completed_and_the_next_pull_finishes(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    fake.budget = 410
    with Loopback(fake) as server:
        stopped = pull(server, db)
        assert stopped.returncode == 75, stopped.stderr
        assert "daily API token budget is used up" in stopped.stderr and "Traceback" not in stopped.stderr
        partial, mark = harness.events(db), harness.marks(db, "pipedrive")
        assert set(partial) < set(expected(fake)) and partial
        # 410 tokens: 25 for the stages, 10 for the newest activity, 10 a deals page, 40 a flow page: deals 102 to 107
        # complete, 101 cut short
        assert mark == {"deals": "2026-03-04T09:00:00.000Z",  # 107's last change: 101 is fetched again next time
                        "activities": "2026-03-02T16:00:00.000Z"}
        fake.budget = None  # the next day
        seen = len(server.requests)
        assert pull(server, db).returncode == 0
        resumed = next(r for r in server.requests[seen:] if r.path == "/api/v2/deals")
    assert resumed.arg("updated_since") == parse_instant(mark["deals"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert harness.events(db) == expected(fake) == full_pull(fake, tmp_path)


@pytest.mark.slow
def test_a_pull_in_the_second_of_an_interrupted_one_writes_beside_its_files(pull_env, tmp_path):
    """A pull killed after writing, then run again at once: the default folder (the instant, to the second)
    already holds the killed pull's files, so the new one goes to <instant>-2 rather than refusing."""
    from funnelboard.warehouse.pull import pull as pull_in_process

    now = datetime(2026, 12, 7, 11, 3, 54)
    left = tmp_path / "pulls" / "pipedrive" / "20261207T110354Z"
    left.mkdir(parents=True)
    (left / "deals.csv").write_text("left by the killed pull\n")
    with Loopback(company()) as server:
        pull_env.setenv("FUNNELBOARD_PIPEDRIVE_URL", server.url)
        pull_env.setenv("FUNNELBOARD_PIPEDRIVE_TOKEN", TOKEN)
        report = pull_in_process(tmp_path / "w.duckdb", "pipedrive", load_config(CONFIG), now=now)
    assert report.out == left.with_name("20261207T110354Z-2") and report.load is not None
    assert (left / "deals.csv").read_text() == "left by the killed pull\n"


@pytest.mark.slow
def test_killed_while_paging_then_run_again_ends_as_a_full_pull(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        gate = server.gate("/v1/deals/107/flow")
        harness.kill_when(harness.start_pull("pipedrive", db, env(server), "--config", str(CONFIG)), gate.reached)
        gate.open()
        assert not db.exists()  # nothing published: the kill came before the load
        done = pull(server, db)
    assert done.returncode == 0, done.stderr
    assert harness.events(db) == expected(fake) == full_pull(fake, tmp_path)


@pytest.mark.slow
def test_killed_while_loading_then_run_again_ends_as_a_full_pull(tmp_path):
    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        assert pull(server, db).returncode == 0
        before, marks = harness.events(db), harness.marks(db, "pipedrive")
        later(fake)
        process = harness.start_pull("pipedrive", db, env(server), "--config", str(CONFIG))
        harness.kill_while_loading(process)
        assert harness.events(db) == before and harness.marks(db, "pipedrive") == marks  # the published file is untouched
        done = pull(server, db)
    assert done.returncode == 0, done.stderr
    assert harness.events(db) == expected(fake) == full_pull(fake, tmp_path)


@pytest.mark.slow
def test_a_pull_while_another_load_runs_fails_cleanly_and_the_next_one_finishes(tmp_path):
    from funnelboard.warehouse.publish import load_lock

    fake = company()
    db = tmp_path / "w.duckdb"
    with Loopback(fake) as server:
        with load_lock(db):
            busy = pull(server, db)
        assert busy.returncode == 2 and "another load" in busy.stderr and "Traceback" not in busy.stderr
        assert not db.exists()
        done = pull(server, db)
    assert done.returncode == 0, done.stderr
    assert harness.events(db) == expected(fake)
