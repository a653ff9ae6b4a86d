"""`funnelboard pull salesforce` against a fake org on loopback: what a pull loads, paging, retries, auth,
incremental marks, the daily quota, SIGKILL at any point, and where the secrets are not."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.pull import salesforce
from funnelboard.etl.pull.base import PullRequest, parse_instant
from funnelboard.warehouse.publish import load_lock
from funnelboard.warehouse.pull import pull
from tests.etl.pull import harness
from tests.etl.pull.fake_salesforce import FakeSalesforce
from tests.etl.pull.loopback import Loopback, Reply

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "examples" / "salesforce" / "funnel.toml"
QUERY = "/services/data/v62.0/query"


def build(org: FakeSalesforce) -> dict[str, str]:
    """A small org: leads in every state, conversions (two leads into one deal), money changes, activities, roles."""
    ids: dict[str, str] = {}
    ids["open"] = org.add_lead()
    ids["working"] = org.add_lead(source="Referral")
    org.set_status(ids["working"], "Working - Contacted")
    org.add_task(who=ids["working"])
    ids["converted"] = org.add_lead(industry="Retail")
    org.set_status(ids["converted"], "Working - Contacted")
    org.add_task(who=ids["converted"], closed=False)
    ids["deal"] = org.convert(ids["converted"], amount=25000.0, currency="EUR")
    org.add_task(who=org.contact_of(ids["converted"]))
    org.move(ids["deal"], "Qualification")
    org.change_money(ids["deal"], amount=30000.0)
    org.move(ids["deal"], "Proposal/Price Quote")
    org.change_money(ids["deal"], close="2026-08-31", forecast="Commit")
    org.add_role(ids["deal"], "Economic Buyer", title="Chief Financial Officer", primary=True)
    org.add_role(ids["deal"], "Evaluator", title="IT Manager")
    ids["second"] = org.add_lead()
    org.convert(ids["second"], into=ids["deal"])  # a second lead converted into the same deal: the first lead keeps it
    ids["lost"] = org.add_lead()
    org.set_status(ids["lost"], "Closed - Not Converted", reason="No budget")
    ids["standalone"] = org.add_opportunity(amount=40000.0, currency="USD")
    org.add_event(what=ids["standalone"])
    org.move(ids["standalone"], "Negotiation/Review")
    org.move(ids["standalone"], "Closed Lost", loss_reason="Price")
    for n in range(3):
        ids[f"opp{n}"] = org.add_opportunity(amount=10000.0 * (n + 1))
        org.move(ids[f"opp{n}"], "Qualification")
        org.add_role(ids[f"opp{n}"], "Influencer", title="Head of Operations")
        org.add_event(what=ids[f"opp{n}"])
        org.add_task(what=ids[f"opp{n}"])
    for n in range(4):
        ids[f"new{n}"] = org.add_lead(source="Web" if n % 2 else "Event")
    org.set_status(ids["new0"], "Working - Contacted")
    org.add_event(who=ids["new1"])
    org.set_status(ids["new2"], "Working - Contacted")  # the last edit is a lead's: the Lead mark is the org's clock
    return ids


def expected_events(org: FakeSalesforce) -> list[tuple[str, str, datetime]]:
    """Every stage entry of the org, read from its records as docs/sources.md says (not through the adapter):
    each lead's first status at its creation, then each Status change; each opportunity's first history row,
    every row changing the stage and every row changing the money, under the first lead converted into it."""
    def at(text: str) -> datetime:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.000+0000")

    out = set()
    leads = [lead for lead in org.rows["Lead"] if not lead["IsDeleted"]]
    for lead in leads:
        changes = sorted((h for h in org.rows["LeadHistory"] if h["LeadId"] == lead["Id"] and h["Field"] == "Status"),
                         key=lambda h: h["CreatedDate"])
        out.add((lead["Id"], changes[0]["OldValue"] if changes else lead["Status"], at(lead["CreatedDate"])))
        out.update((lead["Id"], h["NewValue"], at(h["CreatedDate"])) for h in changes)
    owner: dict[str, str] = {}
    for lead in sorted(leads, key=lambda lead: (lead["ConvertedDate"] or "", lead["CreatedDate"], lead["Id"])):
        if lead["ConvertedOpportunityId"]:
            owner.setdefault(lead["ConvertedOpportunityId"], lead["Id"])
    for opp in (o for o in org.rows["Opportunity"] if not o["IsDeleted"]):
        previous = None
        for h in sorted((h for h in org.rows["OpportunityHistory"] if h["OpportunityId"] == opp["Id"]), key=lambda h: h["CreatedDate"]):
            now = (h["StageName"], h["Amount"], h["CloseDate"], h["ForecastCategory"], h["CurrencyIsoCode"])
            if now != previous:
                out.add((owner.get(opp["Id"], opp["Id"]), h["StageName"], at(h["CreatedDate"])))
            previous = now
    return sorted(out)


def stage_entries(db: Path) -> list[tuple[str, str, datetime]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select lead_id, stage_label, entered_at from raw_events order by all").fetchall()
    finally:
        con.close()


def state(db: Path) -> tuple[list[tuple], list[tuple]]:
    """What two warehouses are compared on: every stored event (all columns but where it was read), and each lead's
    latest value of every attribute (what int_lead_attributes takes), both sorted; columns by name, since a raw
    table grows its attribute columns in the order loads first bring them."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        def columns(table: str, *besides: str) -> list[str]:
            names = [r[0] for r in con.execute(f"describe {table}").fetchall()]
            return sorted(n for n in names if n not in ("file_id", "source_line", *besides))

        events = con.execute(f"select {', '.join(columns('raw_events'))} from raw_events order by all").fetchall()
        lead_cols = columns("raw_leads", "lead_id")
        latest = ", ".join(f'arg_max("{c}", (file_id, source_line)) filter (where "{c}" is not null)' for c in lead_cols)
        leads = con.execute(f"select lead_id, {latest} from raw_leads group by lead_id order by all").fetchall()
        return events, leads
    finally:
        con.close()


def credentials(org: FakeSalesforce, server: Loopback) -> dict[str, str]:
    """The username-password flow's settings and secrets, as a scheduler's environment holds them."""
    return {
        "FUNNELBOARD_SALESFORCE_LOGIN_URL": server.url,
        "FUNNELBOARD_SALESFORCE_USERNAME": org.username,
        "FUNNELBOARD_SALESFORCE_CONSUMER_KEY": org.consumer_key,
        "FUNNELBOARD_SALESFORCE_CONSUMER_SECRET": org.consumer_secret,
        "FUNNELBOARD_SALESFORCE_PASSWORD": org.password,
        "FUNNELBOARD_SALESFORCE_SECURITY_TOKEN": org.security_token,
    }


def secrets_of(org: FakeSalesforce) -> list[str]:
    return [org.password, org.security_token, org.consumer_secret, org.access_token]


def run(db: Path, env: dict, out: Path, *more: str) -> subprocess.CompletedProcess:
    return harness.run_pull("salesforce", db, env, "--config", str(CONFIG), "--out", str(out), *more)


def full_pull_state(org: FakeSalesforce, server: Loopback, tmp: Path, monkeypatch) -> tuple[list, list]:
    """A clean full pull of the org as it is now, in-process, into a new warehouse: what every other path must equal."""
    with monkeypatch.context() as m:
        for name, value in {**credentials(org, server), "FUNNELBOARD_PULL_BACKOFF": "0.01"}.items():
            m.setenv(name, value)
        pull(tmp / "reference.duckdb", "salesforce", load_config(CONFIG), out=tmp / "reference")
    return state(tmp / "reference.duckdb")


def pages_asked(org: FakeSalesforce, server: Loopback, obj: str) -> list[int]:
    """For each query of `obj`'s changed records, how many pages the client asked for (the first + nextRecordsUrl)."""
    counts = []
    for locator, soql in org.queries:
        if re.search(rf"FROM {obj} (WHERE SystemModstamp >= \S+ )?ORDER BY SystemModstamp", soql):
            counts.append(1 + len(server.seen(f"{QUERY}/{locator}-") + server.seen(f"{QUERY}All/{locator}-")))
    return counts


def changed_since(requests) -> dict[str, str]:
    """Object -> the SystemModstamp literal of the changed-records queries among `requests`."""
    found = {}
    for request in requests:
        m = re.search(r"FROM (\w+) WHERE SystemModstamp >= (\S+) ORDER BY", request.arg("q") or "")
        if m:
            found[m.group(1)] = m.group(2)
    return found


@pytest.fixture
def org() -> FakeSalesforce:
    org = FakeSalesforce(page_size=2)
    org.ids = build(org)
    return org


def serve(org: FakeSalesforce) -> Loopback:
    server = Loopback(org.app)
    # answer headers and body without waiting for the client's delayed ACK (Nagle): ~40 ms less per request
    server.server.RequestHandlerClass.disable_nagle_algorithm = True
    org.url = server.url
    return server


@pytest.fixture
def server(org):
    with serve(org) as running:
        yield running


@pytest.fixture
def env(org, server, monkeypatch) -> dict[str, str]:
    return set_env(org, server, monkeypatch)


def use_ready_token(org: FakeSalesforce, server: Loopback, monkeypatch) -> None:
    """Log in with a ready access token instead of the username-password flow (no way to log in again)."""
    for name in ("PASSWORD", "SECURITY_TOKEN", "CONSUMER_SECRET"):
        monkeypatch.delenv(f"FUNNELBOARD_SALESFORCE_{name}")
    monkeypatch.setenv("FUNNELBOARD_SALESFORCE_ACCESS_TOKEN", org.access_token)
    monkeypatch.setenv("FUNNELBOARD_SALESFORCE_INSTANCE_URL", server.url)


def set_env(org: FakeSalesforce, server: Loopback, monkeypatch, **more: str) -> dict[str, str]:
    """The org's credentials (and `more` settings) in this process's environment; returned for child runs."""
    values = {**credentials(org, server), **more}
    for name, value in {**values, "FUNNELBOARD_PULL_BACKOFF": "0.01", "FUNNELBOARD_PULL_TIMEOUT": "2"}.items():
        monkeypatch.setenv(name, value)
    return values


# -- end to end, as a scheduler runs it -------------------------------------------------------------


@pytest.mark.slow
def test_first_pull_loads_every_stage_entry_pages_every_object_and_replays(org, server, env, tmp_path):
    db = tmp_path / "w.duckdb"
    result = run(db, env, tmp_path / "p1")
    assert result.returncode == 0, result.stderr
    assert stage_entries(db) == expected_events(org)
    for obj in ("Lead", "Opportunity", "Task", "Event", "OpportunityContactRole"):
        assert pages_asked(org, server, obj) and min(pages_asked(org, server, obj)) >= 3, obj
    assert re.search(r"Lead page 3: 2 changed \(6 so far\)", result.stderr)

    files = sorted(map(Path, glob.glob(str(tmp_path / "p1" / "*"))))  # as a shell expands p1/*: the manifest is hidden
    assert {p.name for p in files} == {"Lead.csv", "LeadHistory.csv", "Opportunity.csv", "OpportunityHistory.csv",
                                       "Task.csv", "Event.csv", "OpportunityContactRole.csv"}
    replay = tmp_path / "replay.duckdb"
    loaded = subprocess.run([sys.executable, "-m", "funnelboard", "load", *map(str, files), "--source", "salesforce",
                             "--config", str(CONFIG), "--db", str(replay)], env=harness.pull_env({}), capture_output=True,
                            text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert state(replay) == state(db)

    # first responses and contact roles: the converted lead's only closed task was logged on the contact it became, and
    # its deal has one Economic Buyer among two roles (its buyer role is its own Title's: docs/sources.md)
    converted = org.get("Lead", org.ids["converted"])
    done = [t["CompletedDateTime"] for t in org.rows["Task"] if t["IsClosed"] and t["WhoId"] == converted["ConvertedContactId"]]
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("select first_response_at, decision_makers, buyer_role from raw_leads where lead_id = $id and "
                       "(first_response_at is not null or decision_makers is not null)", {"id": org.ids["converted"]}).fetchall()
    con.close()
    assert {r[0] for r in rows} == {min(done)} and {r[1] for r in rows} == {"1"} and {r[2] for r in rows} == {"operations lead"}


@pytest.mark.slow
def test_429_with_retry_after_5xx_and_a_timeout_are_retried(org, server, env, tmp_path):
    server.faults(QUERY, [Reply(429, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}],
                                {"Retry-After": "1"}),
                          Reply(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "try again"}])])
    server.hang(f"{QUERY}/", 1)  # the first nextRecordsUrl gets no answer: the client's 2 s timeout, then a retry
    result = run(tmp_path / "w.duckdb", env, tmp_path / "p1")
    assert result.returncode == 0, result.stderr
    assert "HTTP 429, rate limited; waiting 1.0 s" in result.stderr
    assert "HTTP 503" in result.stderr and "ReadTimeout" in result.stderr
    hung = server.seen(f"{QUERY}/")[0]
    assert [r.path for r in server.seen(f"{QUERY}/")].count(hung.path) == 2
    assert stage_entries(tmp_path / "w.duckdb") == expected_events(org)


@pytest.mark.slow
def test_401_and_403_are_one_sentence_naming_the_permission_and_load_nothing(org, server, env, tmp_path):
    db = tmp_path / "w.duckdb"
    expired = {"FUNNELBOARD_SALESFORCE_ACCESS_TOKEN": "00Dexpired!token", "FUNNELBOARD_SALESFORCE_INSTANCE_URL": server.url}
    result = run(db, expired, tmp_path / "p1")
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert "HTTP 401" in error and "OAuth scope 'api'" in error and error.count(". ") == 0, error
    assert "Traceback" not in result.stderr and not db.exists()

    org.api_disabled = True
    result = run(db, env, tmp_path / "p2")
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert "HTTP 403" in error and '"API Enabled"' in error and '"View All Data"' in error, error
    assert "Traceback" not in result.stderr and not db.exists()


@pytest.mark.slow
def test_incremental_pull_asks_only_for_changes_and_ends_equal_to_a_full_pull(org, server, env, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    marks = harness.marks(db, "salesforce")
    assert set(marks) == {"Lead", "Opportunity", "Task", "Event", "OpportunityContactRole", "deleted_OpportunityContactRole"}
    log_mark = marks.pop("deleted_OpportunityContactRole")  # the delete log's window: not a query
    first_requests = len(server.requests)

    ids = org.ids
    org.set_status(ids["new3"], "Working - Contacted", advance=False)  # saved in the same second as the Lead mark
    org.set_status(ids["new0"], "Closed - Not Converted", reason="Went silent")
    deal = org.convert(ids["working"], amount=12000.0, currency="GBP")
    org.move(deal, "Qualification")
    org.change_money(ids["deal"], amount=32000.0)  # a money change on a deal whose leads did not change
    org.move(ids["deal"], "Closed Won")
    org.add_task(who=ids["open"])  # a first response on a lead that itself did not change
    org.add_role(ids["standalone"], "Decision Maker", title="COO", primary=True)
    fresh = org.add_lead(source="Partner")
    org.set_status(fresh, "Working - Contacted")

    result = run(db, env, tmp_path / "p2")
    assert result.returncode == 0, result.stderr
    asked = changed_since(server.requests[first_requests:])
    for obj, mark in marks.items():
        assert parse_instant(asked[obj]) == parse_instant(mark).replace(microsecond=0), obj
    log = [r for r in server.requests[first_requests:] if r.path.endswith("/sobjects/OpportunityContactRole/deleted/")]
    assert [parse_instant(r.arg("start")) for r in log] == [parse_instant(log_mark).replace(microsecond=0)]
    locator = next(loc for loc, soql in reversed(org.queries) if re.search(r"FROM Lead WHERE SystemModstamp >= ", soql))
    # the changed leads, and the one saved at the mark itself (at or after: a save in the mark's second is not lost)
    assert {r["Id"] for r in org.cursors[locator]} == {ids["new2"], ids["new3"], ids["new0"], ids["working"], fresh}
    assert json.loads((tmp_path / "p2" / ".pull.json").read_text())["marks"]["Lead"] > marks["Lead"]

    events, leads = state(db)
    assert len(events) == len(set(events))
    assert stage_entries(db) == expected_events(org)
    assert (events, leads) == full_pull_state(org, server, tmp_path, monkeypatch)


@pytest.mark.slow
def test_a_fetched_again_journey_s_rejected_history_rows_are_replaced_not_piled_up(org, server, env, tmp_path):
    """History rows without a stage are rejected by the adapter under their journey: a status change of new0 (fetched
    again when it changes), one of the lost lead (not fetched again, it keeps its row), and a stage row of the
    deal (the converted lead's journey, fetched again when the deal changes). After any number of pulls the
    quarantine holds what one pull of the org as it is now would, once each."""
    ids = org.ids
    for lead in (ids["new0"], ids["lost"]):
        org._history("LeadHistory", {"LeadId": lead, "Field": "Status", "OldValue": "Open - Not Contacted", "NewValue": None}, org.tick())
    deal = org.get("Opportunity", ids["deal"])
    org._history("OpportunityHistory", {"OpportunityId": ids["deal"], "StageName": None, "Amount": deal["Amount"],
                                        "CloseDate": deal["CloseDate"], "ForecastCategory": deal["ForecastCategory"],
                                        "Probability": 10, "CurrencyIsoCode": deal["CurrencyIsoCode"]}, org.tick())
    db, clean = tmp_path / "w.duckdb", tmp_path / "clean.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    first = harness.quarantined(db)
    org.set_status(ids["new0"], "Closed - Not Converted", reason="Went silent")
    org.change_money(ids["deal"], amount=32000.0)
    for n in (2, 3):
        done = run(db, env, tmp_path / f"p{n}")
        assert done.returncode == 0, done.stderr
    assert run(clean, env, tmp_path / "clean").returncode == 0
    now = harness.quarantined(db)
    assert now == harness.quarantined(clean) == first
    assert max(now.values()) == 1
    assert {(lead, reason) for lead, reason, _raw in now} == {(i, "missing_stage") for i in (ids["new0"], ids["lost"], ids["converted"])}


@pytest.mark.slow
def test_a_task_moved_to_another_lead_takes_its_first_response_with_it(org, server, env, tmp_path, monkeypatch):
    """The working lead's first response is its closed task. Moved to the lost lead, the task is the lost lead's
    first response, and the working lead has none: the pull fetches the journey the task was counted in (the
    warehouse keeps it) as well as the one it names now, though the working lead itself did not change."""
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    task = next(t for t in org.rows["Task"] if t["WhoId"] == org.ids["working"] and t["IsClosed"])
    task.update(WhoId=org.ids["lost"], SystemModstamp=org.tick())
    done = run(db, env, tmp_path / "p2")
    assert done.returncode == 0, done.stderr
    assert state(db) == full_pull_state(org, server, tmp_path, monkeypatch)
    con = duckdb.connect(str(db), read_only=True)
    try:  # each lead's latest first response, as int_lead_attributes takes it
        responses = dict(con.execute(
            "select lead_id, arg_max(first_response_at, (file_id, source_line)) filter (where first_response_at is not null) "
            "from raw_leads where list_contains($ids, lead_id) group by lead_id", {"ids": [org.ids["working"], org.ids["lost"]]}
        ).fetchall())
    finally:
        con.close()
    assert responses == {org.ids["working"]: None, org.ids["lost"]: task["CompletedDateTime"]}


def buyer_values(db: Path, journey: str) -> tuple:
    """A journey's latest buyer role and decision makers, as int_lead_attributes takes them."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select arg_max(buyer_role, (file_id, source_line)) filter (where buyer_role is not null), "
            "arg_max(decision_makers, (file_id, source_line)) filter (where decision_makers is not null) "
            "from raw_leads where lead_id = $j", {"j": journey}).fetchall()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_a_deleted_contact_role_leaves_the_journey_it_was_counted_in(org, server, env, tmp_path, monkeypatch):
    """A deleted contact role skips the recycle bin and its opportunity does not change: no query shows either. The
    pull reads the delete log, finds the journey an earlier pull counted the role in (the warehouse keeps that tie)
    and reads it again without the role: the deal has no decision maker any more, as in a clean pull."""
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    # later deletions count from the org's time (its Date header) as the first pull began
    assert harness.marks(db, "salesforce")["deleted_OpportunityContactRole"] == org.clock.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    journey = org.ids["converted"]  # the deal continues the lead converted into it
    assert buyer_values(db, journey) == ("operations lead", "1")  # the lead's own role; one economic buyer
    buyer = next(r for r in org.rows["OpportunityContactRole"] if r["Role"] == "Economic Buyer")
    org.delete_role(buyer["Id"])
    seen = len(server.requests)
    done = run(db, env, tmp_path / "p2")
    assert done.returncode == 0, done.stderr
    assert buyer_values(db, journey) == ("operations lead", "0")
    assert state(db) == full_pull_state(org, server, tmp_path, monkeypatch)
    log = [r for r in server.requests[seen:] if r.path.endswith("/sobjects/OpportunityContactRole/deleted/")]
    assert len(log) == 1 and log[0].arg("start").startswith("2026-")
    assert "1 contact role(s) deleted: 1 journey(s) read again" in done.stderr
    assert harness.marks(db, "salesforce")["deleted_OpportunityContactRole"] == org.deleted[-1][2].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    again = run(db, env, tmp_path / "p3")  # the deletion, read again at its mark, changes nothing
    assert again.returncode == 0 and "nothing changed in salesforce since the last pull, unchanged" in again.stdout


@pytest.mark.slow
def test_a_delete_log_refused_or_not_json_is_one_sentence_and_loads_nothing(org, server, env, tmp_path):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    before, marks = state(db), harness.marks(db, "salesforce")
    log = "/services/data/v62.0/sobjects/OpportunityContactRole/deleted/"
    for n, reply in enumerate([Reply(400, [{"errorCode": "INVALID_TYPE", "message": "sObject type 'X' is not supported."}]),
                               Reply(200, b"<html>down for maintenance</html>", {"Content-Type": "text/html"})]):
        server.faults(log, [reply])
        done = run(db, env, tmp_path / f"bad{n}")
        assert done.returncode == 2 and "Traceback" not in done.stderr
        error = done.stderr.strip().splitlines()[-1]
        assert error in ("error: Salesforce refused to read the OpportunityContactRole delete log: sObject type 'X' is not supported.",
                         f"error: Salesforce answered {log} with something that is not JSON (HTTP 200).")
    assert (state(db), harness.marks(db, "salesforce")) == (before, marks)


@pytest.mark.slow
def test_the_delete_log_mark_moves_only_with_a_deletion_or_past_half_the_log(org, server, env, tmp_path):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    first = harness.marks(db, "salesforce")["deleted_OpportunityContactRole"]
    org.tick(60 * 24 * 7)  # a week: the log still reaches the mark, which stays
    assert run(db, env, tmp_path / "p2").returncode == 0
    assert harness.marks(db, "salesforce")["deleted_OpportunityContactRole"] == first
    org.tick(60 * 24 * 2)  # nine days: past half the log's 15, the mark moves to the end of the window read
    assert run(db, env, tmp_path / "p3").returncode == 0
    assert harness.marks(db, "salesforce")["deleted_OpportunityContactRole"] == org.clock.strftime("%Y-%m-%dT%H:%M:00.000Z")
    # a deletion seen is the mark, until it too is older than half the log (a role of no stored journey: nothing read)
    org.delete_role(org.add_role(org.add_opportunity(), "Influencer"))
    deleted_at = org.clock.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert run(db, env, tmp_path / "p4").returncode == 0
    assert harness.marks(db, "salesforce")["deleted_OpportunityContactRole"] == deleted_at
    org.tick(60 * 24 * 8)
    assert run(db, env, tmp_path / "p5").returncode == 0
    assert harness.marks(db, "salesforce")["deleted_OpportunityContactRole"] == org.clock.strftime("%Y-%m-%dT%H:%M:00.000Z")


@pytest.mark.slow
def test_a_delete_log_that_no_longer_reaches_the_mark_is_read_from_its_oldest_day(org, server, env, tmp_path, monkeypatch):
    """A pull after more than the delete log keeps asks for what it still has, says that older deletions cannot be
    seen, and goes on."""
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    org.tick(60 * 24 * 20)  # twenty days later
    buyer = next(r for r in org.rows["OpportunityContactRole"] if r["Role"] == "Economic Buyer")
    org.delete_role(buyer["Id"])
    seen = len(server.requests)
    done = run(db, env, tmp_path / "p2")
    assert done.returncode == 0, done.stderr
    log = [r for r in server.requests[seen:] if r.path.endswith("/sobjects/OpportunityContactRole/deleted/")]
    assert len(log) == 2  # refused (INVALID_REPLICATION_DATE), then asked from the log's oldest day
    assert "are no longer in Salesforce's delete log" in done.stderr
    assert buyer_values(db, org.ids["converted"])[1] == "0"  # deleted inside what the log still keeps


@pytest.mark.slow
def test_a_pull_where_nothing_changed_publishes_nothing_and_the_next_change_does(org, server, env, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    before, marks, published, loads = state(db), harness.marks(db, "salesforce"), os.stat(db), harness.loads(db)
    same = run(db, env, tmp_path / "p2")
    assert same.returncode == 0, same.stderr
    assert "nothing changed in salesforce since the last pull, unchanged" in same.stdout
    assert (os.stat(db).st_ino, os.stat(db).st_mtime_ns) == (published.st_ino, published.st_mtime_ns)
    assert (state(db), harness.marks(db, "salesforce"), harness.loads(db)) == (before, marks, loads)
    org.set_status(org.ids["new0"], "Closed - Not Converted", reason="Went silent")
    assert run(db, env, tmp_path / "p3").returncode == 0
    assert os.stat(db).st_ino != published.st_ino and harness.loads(db) == loads + 1
    assert stage_entries(db) == expected_events(org)
    assert state(db) == full_pull_state(org, server, tmp_path, monkeypatch)


@pytest.mark.slow
def test_daily_quota_stops_with_75_loads_what_completed_and_the_next_pull_catches_up(org, server, env, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    org.limit_left = 8 + 14  # the describes, then a page of leads with its journeys, then the limit mid-way
    result = run(db, env, tmp_path / "p1")
    assert result.returncode == 75, result.stderr
    assert "REQUEST_LIMIT_EXCEEDED" in result.stderr and "api-usage=" in result.stderr
    partial = stage_entries(db)
    assert partial and set(partial) < set(expected_events(org))
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("select bool_or(complete) from pull_marks").fetchall() == [(False,)]
    con.close()
    lead_mark = harness.marks(db, "salesforce")["Lead"]
    assert parse_instant(lead_mark) < max(parse_instant(r["SystemModstamp"]) for r in org.rows["Lead"])

    org.limit_left = None  # the next day
    result = run(db, env, tmp_path / "p2")
    assert result.returncode == 0, result.stderr
    assert stage_entries(db) == expected_events(org)
    assert state(db) == full_pull_state(org, server, tmp_path, monkeypatch)


@pytest.mark.slow
def test_sigkill_mid_paging_then_a_rerun_ends_equal_to_a_full_pull(org, server, env, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    org.set_status(org.ids["new1"], "Working - Contacted")
    org.change_money(org.ids["standalone"], amount=41000.0)
    before = state(db)

    gate = server.gate(f"{QUERY}/")  # any nextRecordsUrl: the pull is paging
    process = harness.start_pull("salesforce", db, env, "--config", str(CONFIG), "--out", str(tmp_path / "p2"))
    harness.kill_when(process, gate.reached)
    gate.open()
    assert state(db) == before

    result = run(db, env, tmp_path / "p3")
    assert result.returncode == 0, result.stderr
    assert state(db) == full_pull_state(org, server, tmp_path, monkeypatch)


@pytest.mark.slow
def test_sigkill_during_the_load_then_a_rerun_ends_equal_to_a_full_pull(org, server, env, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    org.set_status(org.ids["new1"], "Working - Contacted")
    org.move(org.ids["deal"], "Closed Won")
    before = state(db)

    process = harness.start_pull("salesforce", db, env, "--config", str(CONFIG), "--out", str(tmp_path / "p2"))
    harness.kill_while_loading(process)
    assert state(db) == before  # the published warehouse is the first pull's, whole

    result = run(db, env, tmp_path / "p3")
    assert result.returncode == 0, result.stderr
    assert state(db) == full_pull_state(org, server, tmp_path, monkeypatch)


@pytest.mark.slow
def test_a_pull_while_another_load_runs_fails_cleanly_and_keeps_the_marks(org, server, env, tmp_path):
    db = tmp_path / "w.duckdb"
    config = load_config(CONFIG)
    pull(db, "salesforce", config, out=tmp_path / "p1")
    marks = harness.marks(db, "salesforce")
    org.set_status(org.ids["new1"], "Working - Contacted")
    with load_lock(db), pytest.raises(UserError, match="another load into"):
        pull(db, "salesforce", config, out=tmp_path / "p2")
    assert harness.marks(db, "salesforce") == marks
    pull(db, "salesforce", config, out=tmp_path / "p3")
    assert stage_entries(db) == expected_events(org)


@pytest.mark.slow
def test_no_secret_in_outputs_files_or_warehouse_after_a_pull_an_auth_error_and_a_5xx_give_up(org, server, env, tmp_path):
    db = tmp_path / "w.duckdb"
    runs = [run(db, env, tmp_path / "p1")]
    assert runs[-1].returncode == 0
    runs.append(run(db, {**env, "FUNNELBOARD_SALESFORCE_PASSWORD": org.password + "x"}, tmp_path / "p2"))
    assert runs[-1].returncode == 2 and "Salesforce refused the login" in runs[-1].stderr
    server.faults(QUERY, [Reply(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": f"token {org.access_token}"}])] * 5)
    runs.append(run(db, env, tmp_path / "p3"))
    assert runs[-1].returncode == 2 and "Salesforce did not answer after 5 tries" in runs[-1].stderr
    argv = harness.pull_args("salesforce", db, "--config", str(CONFIG), "--out", str(tmp_path / "p1"))
    for value in secrets_of(org):
        harness.assert_secret_nowhere(value, outputs=[r.stdout + r.stderr for r in runs], db=db, dirs=[tmp_path], argv=argv)
    token_requests = [r for r in server.requests if r.path == "/services/oauth2/token"]
    assert token_requests and all(org.password not in (r.path + str(r.query)) for r in token_requests)
    assert all(org.access_token not in str(r.query) for r in server.requests)


def delete_some(org: FakeSalesforce) -> tuple[set[str], set[str]]:
    """Deletions of every kind: a lead of its own, a standalone opportunity, the deal that continued a converted lead's
    journey (the lead stays, without it), a lead merged into another. Returns the journeys gone and those that stay."""
    ids = org.ids
    org.delete("Lead", ids["lost"])
    org.delete("Opportunity", ids["standalone"])
    org.delete("Opportunity", ids["deal"])
    org.delete("Lead", ids["new1"], master=ids["new0"])
    return {ids["lost"], ids["standalone"], ids["new1"]}, {ids["converted"], ids["second"], ids["new0"], ids["open"], ids["opp0"]}


@pytest.mark.slow
def test_a_lead_converted_into_a_standalone_deal_takes_its_journey_and_leaves_no_copy(org, server, env, tmp_path, monkeypatch):
    """The standalone opportunity is a journey of its own (its Id) after the first pull; then a lead is
    converted into it, so its stages continue the lead's journey: the next pull must replace the rows
    stored under the opportunity's Id, not keep them beside the lead's (the deal would count twice)."""
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    standalone = org.ids["standalone"]
    assert standalone in harness.journeys(db)
    org.convert(org.ids["open"], into=standalone)
    result = run(db, env, tmp_path / "p2")
    assert result.returncode == 0, result.stderr
    assert standalone not in harness.journeys(db)
    assert stage_entries(db) == expected_events(org)
    assert state(db) == full_pull_state(org, server, tmp_path, monkeypatch)


@pytest.mark.slow
def test_records_deleted_in_the_org_leave_the_warehouse_and_the_pull_ends_as_a_full_pull(org, server, env, tmp_path, monkeypatch):
    db, config = tmp_path / "w.duckdb", load_config(CONFIG)
    pull(db, "salesforce", config, out=tmp_path / "p1")
    untouched = {org.ids["open"], org.ids["opp0"], org.ids["new2"]}
    before = harness.lead_facts(db, untouched)
    gone, stay = delete_some(org)
    assert gone <= harness.journeys(db)

    report = pull(db, "salesforce", config, out=tmp_path / "p2")
    assert gone <= set(report.pulled.removed) and org.ids["deal"] in report.pulled.removed
    assert report.load.journeys_removed == len(gone) and report.load.build.startswith("incremental")
    assert not gone & harness.journeys(db) and stay <= harness.journeys(db)
    assert stage_entries(db) == expected_events(org)  # the converted lead's journey no longer holds its deleted deal
    assert state(db) == full_pull_state(org, server, tmp_path, monkeypatch)
    assert harness.lead_facts(db, untouched) == before
    harness.assert_refresh_equals_full_build(db, config, tmp_path)


@pytest.mark.slow
def test_a_pull_that_sees_only_deletions_loads_them_and_says_how_many_journeys_went(org, server, env, tmp_path):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    org.delete("Lead", org.ids["lost"])
    result = run(db, env, tmp_path / "p2")
    assert result.returncode == 0, result.stderr
    assert "removed 1 journey(s) from the warehouse: 1 record(s) deleted or merged away in salesforce" in result.stdout
    assert org.ids["lost"] not in harness.journeys(db)
    assert harness.marks(db, "salesforce")["Lead"] == json.loads((tmp_path / "p2" / ".pull.json").read_text())["marks"]["Lead"]
    assert stage_entries(db) == expected_events(org)
    again = run(db, env, tmp_path / "p3")  # the deleted lead is listed again (at the mark): it is gone already
    assert again.returncode == 0, again.stderr
    assert "removed 0 journey(s) from the warehouse: 1 record(s) deleted" in again.stdout
    assert stage_entries(db) == expected_events(org)


@pytest.mark.slow
def test_a_session_that_expires_mid_pull_logs_in_again_and_the_pull_goes_on(org, server, env, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    org.session_left = 20  # the describes, then some pages: the session times out mid-way
    report = pull(db, "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    assert org.logins == 2 and org.sessions == 2 and report.pulled.stopped is None
    expired = [r for r in server.requests if r.path.startswith("/services/data/")][20]
    assert expired.headers["authorization"] == "Bearer 00Dfake!AQ0AQ.access-token-value"
    assert stage_entries(db) == expected_events(org)


def test_a_ready_access_token_that_expires_mid_pull_is_one_sentence_asking_for_a_login(org, server, env, tmp_path, monkeypatch):
    use_ready_token(org, server, monkeypatch)
    org.session_left = 20
    db = tmp_path / "w.duckdb"
    with pytest.raises(UserError) as caught:
        pull(db, "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    message = str(caught.value)
    assert message.startswith("the Salesforce access token in FUNNELBOARD_SALESFORCE_ACCESS_TOKEN expired during the pull")
    assert "give a login instead" in message and org.access_token not in message and "00Dfake" not in message
    assert org.logins == 0 and not db.exists()


# -- in-process: the connector alone --------------------------------------------------------------


def fetch(tmp_path: Path, name: str = "out", **request) -> salesforce.Pulled:
    out = tmp_path / name
    out.mkdir()
    return salesforce.fetch(PullRequest(crm="salesforce", marks=request.get("marks", {}), since=None, out=out,
                                        options=load_config(CONFIG).sources.get("salesforce", {})))


def test_jwt_bearer_login_signs_with_the_private_key(org, server, env, tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    org.public_key = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    org.audience = server.url
    (tmp_path / "key.pem").write_bytes(pem)
    monkeypatch.delenv("FUNNELBOARD_SALESFORCE_PASSWORD")
    monkeypatch.setenv("FUNNELBOARD_SALESFORCE_PRIVATE_KEY_FILE", str(tmp_path / "key.pem"))
    pulled = fetch(tmp_path)
    assert pulled.counts["Lead"] == len(org.rows["Lead"]) and pulled.stopped is None

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "key.pem").write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    with pytest.raises(UserError, match=r"^Salesforce refused the login at .* \(invalid_grant: invalid assertion\)"):
        fetch(tmp_path, "again")


def test_a_pull_without_credentials_says_which_settings_to_give(env, tmp_path, monkeypatch):
    for name in ("PASSWORD", "SECURITY_TOKEN"):
        monkeypatch.delenv(f"FUNNELBOARD_SALESFORCE_{name}")
    with pytest.raises(UserError, match="_PRIVATE_KEY_FILE .*_ACCESS_TOKEN and _INSTANCE_URL"):
        fetch(tmp_path)
    monkeypatch.setenv("FUNNELBOARD_SALESFORCE_ACCESS_TOKEN", "token")
    monkeypatch.setenv("FUNNELBOARD_SALESFORCE_INSTANCE_URL", "http://acme.my.salesforce.com")
    with pytest.raises(UserError, match="expected an https:// URL"):
        fetch(tmp_path, "again")


def test_an_object_the_user_cannot_read_is_named_and_optional_ones_are_skipped(org, server, env, tmp_path):
    org.hidden = {"Event", "OpportunityContactRole"}
    pulled = fetch(tmp_path)
    assert "Event" not in pulled.counts and pulled.counts["Task"] > 0
    assert not any(r.arg("q", "").find("FROM Event") >= 0 for r in server.seen(QUERY))
    org.hidden = {"OpportunityHistory"}
    with pytest.raises(UserError, match=r'cannot read OpportunityHistory: grant the user "API Enabled" and Read'):
        fetch(tmp_path, "again")


def test_a_reason_field_the_org_lacks_is_refused_before_fetching(org, server, env, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UserError, match="names 'Why_Lost__c', which Opportunity does not have"):
        salesforce.fetch(PullRequest(crm="salesforce", marks={}, since=None, out=out, options={"reason_field": "Why_Lost__c"}))
    assert not any(r.arg("q") for r in server.requests)


def test_a_single_currency_org_is_pulled_without_currency_columns(org, server, env, tmp_path):
    org.multi_currency = False
    pulled = fetch(tmp_path)
    header = (tmp_path / "out" / "OpportunityHistory.csv").read_text().splitlines()[0].split(",")
    assert "CurrencyIsoCode" not in header and {"Amount", "CloseDate", "ForecastCategory"} <= set(header)
    assert pulled.counts["OpportunityHistory"] == len(org.rows["OpportunityHistory"])


def test_a_changed_deal_brings_its_converted_leads_and_their_whole_history(org, server, env, tmp_path):
    """A pull that starts after everything but one money change still writes that deal's journey whole."""
    last = max(r["SystemModstamp"] for obj in ("Lead", "Task", "Event", "OpportunityContactRole") for r in org.rows[obj])
    org.change_money(org.ids["deal"], forecast="BestCase")
    mark = (parse_instant(last) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")  # after every other change
    marks = {obj: mark for obj in ("Lead", "Task", "Event", "OpportunityContactRole")}
    marks["Opportunity"] = parse_instant(org.get("Opportunity", org.ids["deal"])["SystemModstamp"]).isoformat()
    pulled = fetch(tmp_path, marks=marks)
    leads = (tmp_path / "out" / "Lead.csv").read_text()
    assert org.ids["converted"] in leads and org.ids["second"] in leads and org.ids["open"] not in leads
    history = (tmp_path / "out" / "LeadHistory.csv").read_text().splitlines()
    assert len(history) - 1 == sum(1 for h in org.rows["LeadHistory"] if h["Field"] == "Status"
                                   and h["LeadId"] in (org.ids["converted"], org.ids["second"]))
    assert pulled.counts["OpportunityHistory"] == sum(1 for h in org.rows["OpportunityHistory"] if h["OpportunityId"] == org.ids["deal"])
    assert pulled.counts["OpportunityContactRole"] == 2
