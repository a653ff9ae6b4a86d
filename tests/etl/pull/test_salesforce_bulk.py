"""`funnelboard pull salesforce` through the Bulk API 2.0 against the fake org: the same warehouse as the REST path,
job polling, result paging, failed jobs, retries, the quota stop, SIGKILL, the auto switch, and the secrets."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.etl.pull.http import Api, Policy
from funnelboard.etl.pull.salesforce_bulk import BulkQuery, BulkSettings
from funnelboard.warehouse.pull import pull
from tests.etl.pull import harness
from tests.etl.pull.fake_salesforce import FakeSalesforce
from tests.etl.pull.loopback import Loopback, Reply
from tests.etl.pull.test_salesforce import (
    CONFIG,
    QUERY,
    build,
    credentials,
    expected_events,
    run,
    secrets_of,
    serve,
    set_env,
    stage_entries,
    state,
    use_ready_token,
)

JOBS = "/services/data/v62.0/jobs/query"
BULK = {"FUNNELBOARD_SALESFORCE_BULK": "always", "FUNNELBOARD_SALESFORCE_BULK_POLL": "0"}


@pytest.fixture
def org() -> FakeSalesforce:
    org = FakeSalesforce(page_size=2)
    org.ids = build(org)
    # values the CSV must carry whole: a non-ASCII owner, a title with a comma, quotes and a line break
    org.ids["odd"] = org.add_lead(owner="José Müller", title='Head of "Ops", EMEA\nand LATAM', source="Partner")
    org.set_status(org.ids["odd"], "Working - Contacted")
    # rows of no journey the REST path writes: a deleted lead's history, a task on a contact no lead became
    gone = org.add_lead()
    org.set_status(gone, "Working - Contacted")
    org.get("Lead", gone).update(IsDeleted=True, SystemModstamp=org.tick())
    org.add_task(who=org.new_id("Contact"))
    org.bulk_page_size = 4
    return org


@pytest.fixture
def server(org):
    with serve(org) as running:
        yield running


@pytest.fixture
def env(org, server, monkeypatch) -> dict[str, str]:
    return set_env(org, server, monkeypatch, **BULK)


def rest_reference(org: FakeSalesforce, server: Loopback, tmp: Path, monkeypatch) -> tuple[tuple, dict]:
    """A clean full pull of the org as it is now through the REST API: its warehouse state and marks."""
    db = tmp / "rest.duckdb"
    with monkeypatch.context() as m:
        for name, value in {**credentials(org, server), "FUNNELBOARD_PULL_BACKOFF": "0.01",
                            "FUNNELBOARD_SALESFORCE_BULK": "never"}.items():
            m.setenv(name, value)
        pull(db, "salesforce", load_config(CONFIG), out=tmp / "rest")
    return state(db), harness.marks(db, "salesforce")


def rows_of(folder: Path) -> dict[str, list[list[str]]]:
    """Each CSV file of a pull: its header, then its rows sorted (the two paths write records in different orders)."""
    out = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            header, *rows = list(csv.reader(handle))
        out[path.name] = [header, *sorted(rows)]
    return out


def jobs_of(org: FakeSalesforce, obj: str) -> list[str]:
    return [job for job, _, soql in org.bulk_queries if re.search(rf"FROM {obj}\b", soql)]


# -- in-process: the connector and the warehouse ---------------------------------------------------


@pytest.mark.slow
def test_bulk_first_pull_equals_the_rest_first_pull_and_the_records(org, server, env, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    report = pull(db, "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    assert report.pulled.stopped is None
    assert not server.seen(QUERY), "an `always` pull asks nothing of the REST query resource"
    assert {o for _, _, soql in org.bulk_queries for o in re.findall(r"FROM (\w+)", soql)} == {
        "Lead", "LeadHistory", "Opportunity", "OpportunityHistory", "Task", "Event", "OpportunityContactRole"}
    assert {op for _, op, soql in org.bulk_queries if re.search(r"FROM (Task|Event)\b", soql)} == {"queryAll"}

    assert stage_entries(db) == expected_events(org)
    reference, rest_marks = rest_reference(org, server, tmp_path, monkeypatch)
    assert state(db) == reference
    assert harness.marks(db, "salesforce") == rest_marks
    assert rows_of(tmp_path / "p1") == rows_of(tmp_path / "rest")  # the same files, row for row

    # the CSV is read as CSV: the quoted title with its line break and the non-ASCII owner arrive whole
    lead = (tmp_path / "p1" / "Lead.csv").read_text(encoding="utf-8")
    assert "José Müller" in lead and 'Head of ""Ops"", EMEA\nand LATAM' in lead


@pytest.mark.slow
def test_a_bulk_pull_removes_the_journeys_of_deleted_leads_and_opportunities(org, server, env, tmp_path, monkeypatch):
    from tests.etl.pull.test_salesforce import delete_some

    db, config = tmp_path / "w.duckdb", load_config(CONFIG)
    pull(db, "salesforce", config, out=tmp_path / "p1")
    untouched = {org.ids["open"], org.ids["opp0"], org.ids["new2"]}
    before = harness.lead_facts(db, untouched)
    gone, stay = delete_some(org)
    report = pull(db, "salesforce", config, out=tmp_path / "p2")
    assert {op for _, op, soql in org.bulk_queries if re.search(r"FROM (Lead|Opportunity)\b", soql)} == {"queryAll"}
    assert gone <= set(report.pulled.removed) and report.load.journeys_removed == len(gone)
    assert not gone & harness.journeys(db) and stay <= harness.journeys(db)
    assert stage_entries(db) == expected_events(org)
    assert state(db) == rest_reference(org, server, tmp_path, monkeypatch)[0]
    assert harness.lead_facts(db, untouched) == before
    harness.assert_refresh_equals_full_build(db, config, tmp_path)


@pytest.mark.slow
def test_a_session_that_expires_between_bulk_requests_logs_in_again(org, server, env, tmp_path):
    org.session_left = 30  # past the describes, among the job creations, polls and result pages
    db = tmp_path / "w.duckdb"
    report = pull(db, "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    assert report.pulled.stopped is None and org.logins == 2
    refused = [r for r in server.requests if r.path.startswith("/services/data/")][30]
    assert refused.path.startswith(JOBS)
    assert stage_entries(db) == expected_events(org)


def test_a_ready_token_that_expires_during_a_bulk_pull_asks_for_a_login(org, server, env, tmp_path, monkeypatch):
    use_ready_token(org, server, monkeypatch)
    org.session_left = 30
    with pytest.raises(UserError, match=r"^the Salesforce access token in FUNNELBOARD_SALESFORCE_ACCESS_TOKEN expired during "
                                        r"the pull .*give a login instead"):
        pull(tmp_path / "w.duckdb", "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    assert org.logins == 0 and not (tmp_path / "w.duckdb").exists()


@pytest.mark.slow
def test_results_are_paged_with_the_locator_until_null(org, server, env, tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELBOARD_SALESFORCE_BULK_PAGE_SIZE", "3")
    pull(tmp_path / "w.duckdb", "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    [job] = jobs_of(org, "Lead")
    asked = server.seen(f"{JOBS}/{job}/results")
    leads = len(org.rows["Lead"])  # queryAll: the deleted lead too, so its journey can be removed
    assert len(asked) == -(-leads // 3) >= 4  # pages of at most maxRecords (3) until the locator is "null"
    assert [r.arg("maxRecords") for r in asked] == ["3"] * len(asked)
    assert asked[0].arg("locator") is None and len({r.arg("locator") for r in asked[1:]}) == len(asked) - 1
    assert all(r.headers.get("accept") == "text/csv" for r in asked)
    assert stage_entries(tmp_path / "w.duckdb") == expected_events(org)


@pytest.mark.slow
def test_jobs_are_polled_until_complete(org, server, env, tmp_path):
    org.bulk_polls = 3
    pull(tmp_path / "w.duckdb", "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    for job, _, _ in org.bulk_queries:
        polls = [r for r in server.seen(f"{JOBS}/{job}") if r.path == f"{JOBS}/{job}" and r.method == "GET"]
        assert len(polls) == 4, job  # three InProgress, then JobComplete; results only after that
        assert org.jobs[job]["state"] == "JobComplete"
        # deleted once its last page is read, so the org keeps no finished job of the pull
        assert org.jobs[job].get("deleted") and server.seen(f"{JOBS}/{job}")[-1].method == "DELETE"
    assert stage_entries(tmp_path / "w.duckdb") == expected_events(org)


def test_polls_back_off_doubling_and_a_job_past_the_wait_is_aborted(org, server, env):
    org.bulk_polls = 100
    waits: list[float] = []
    api = Api("salesforce", server.url, headers={"Authorization": f"Bearer {org.access_token}"}, scope=lambda s, p: "",
              policy=Policy(retries=2, backoff=0.0, max_wait=5, timeout=2), sleep=waits.append)
    bulk = BulkQuery(api, "62.0", BulkSettings(poll=1.0, max_wait=20.0, page_size=10))
    with pytest.raises(UserError, match=r"^Salesforce's Bulk API 2.0 query job \w+ for Lead was still InProgress after "
                                        r"15 s \(FUNNELBOARD_SALESFORCE_BULK_MAX_WAIT\): it was aborted"):
        list(bulk.pages("Lead", "SELECT Id FROM Lead"))
    assert waits == [1.0, 2.0, 4.0, 8.0]
    [job] = bulk.jobs
    assert org.jobs[job]["state"] == "Aborted" and server.seen(f"{JOBS}/{job}")[-1].method == "PATCH"


def test_a_failed_job_is_one_sentence_naming_the_object_and_loads_nothing(org, server, env, tmp_path):
    org.bulk_failures["OpportunityHistory"] = f"INVALIDJOB: Entity 'OpportunityHistory' is not supported (session {org.access_token})"
    db = tmp_path / "w.duckdb"
    with pytest.raises(UserError) as raised:
        pull(db, "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    message = str(raised.value)
    assert re.fullmatch(r"Salesforce's Bulk API 2\.0 query job \w+ for OpportunityHistory ended Failed \(INVALIDJOB: Entity "
                        r"'OpportunityHistory' is not supported \(session \*\*\*\)\): fix that, or pull through the REST "
                        r"API with FUNNELBOARD_SALESFORCE_BULK=never\.", message), message
    assert not db.exists()


@pytest.mark.slow
def test_429_and_5xx_while_reading_results_are_retried(org, server, env, tmp_path, monkeypatch):
    first = "750FAKE00000000000"  # the fake's first job: the Lead query
    server.faults(f"{JOBS}/{first}/results", [Reply(429, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}],
                                                    {"Retry-After": "0"}),
                                              Reply(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "try again"}])])
    db = tmp_path / "w.duckdb"
    pull(db, "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    assert jobs_of(org, "Lead") == [first]
    first_page = [r for r in server.seen(f"{JOBS}/{first}/results") if r.arg("locator") is None]
    assert len(first_page) == 3  # the 429, the 503, then the page
    assert state(db) == rest_reference(org, server, tmp_path, monkeypatch)[0]


@pytest.mark.slow
def test_auto_uses_bulk_above_the_threshold_and_rest_below(org, server, env, tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELBOARD_SALESFORCE_BULK", "auto")
    monkeypatch.setenv("FUNNELBOARD_SALESFORCE_BULK_THRESHOLD", "8")
    db = tmp_path / "w.duckdb"
    pull(db, "salesforce", load_config(CONFIG), out=tmp_path / "p1")
    counts = [r.arg("q") for r in server.seen(QUERY) if r.arg("q", "").startswith("SELECT COUNT()")]
    assert counts == ["SELECT COUNT() FROM Lead"]  # more than 8 leads: the first count decides
    assert len(org.bulk_queries) == 7 and not [r for r in server.seen(QUERY) if "COUNT()" not in r.arg("q", "")]

    seen = len(server.requests)
    org.set_status(org.ids["new1"], "Working - Contacted")
    org.add_task(who=org.ids["open"])
    pull(db, "salesforce", load_config(CONFIG), out=tmp_path / "p2")
    later = server.requests[seen:]
    counts = [r.arg("q") for r in later if r.arg("q", "").startswith("SELECT COUNT()")]
    assert len(counts) == 5 and all("WHERE SystemModstamp >= " in q for q in counts)  # a few changes: REST
    assert not [r for r in later if r.path.startswith(JOBS)] and len(org.bulk_queries) == 7
    assert state(db) == rest_reference(org, server, tmp_path, monkeypatch)[0]


def test_bulk_settings_are_checked(env, tmp_path, monkeypatch):
    from funnelboard.etl.pull import salesforce

    for name, value, says in (("BULK", "sometimes", "expected auto, always or never"),
                              ("BULK_THRESHOLD", "many", "expected a whole number"),
                              ("BULK_POLL", "-1", "expected a number of seconds"),
                              ("BULK_PAGE_SIZE", "0", "expected a whole number from 1")):
        with monkeypatch.context() as m:
            m.setenv(f"FUNNELBOARD_SALESFORCE_{name}", value)
            with pytest.raises(UserError, match=f"FUNNELBOARD_SALESFORCE_{name} is '{value}'; {says}"):
                salesforce.BulkChoice.from_env()


# -- end to end, as a scheduler runs it -------------------------------------------------------------


@pytest.mark.slow
def test_quota_stop_during_a_bulk_pull_keeps_the_old_marks_and_the_next_pull_equals_a_full_pull(org, server, env, tmp_path,
                                                                                                 monkeypatch):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    org.set_status(org.ids["new1"], "Working - Contacted")
    org.change_money(org.ids["standalone"], amount=41000.0)
    before, marks = state(db), harness.marks(db, "salesforce")

    org.limit_left = 8 + 12  # the describes, then the Lead and Opportunity jobs, then the limit mid-way
    result = run(db, env, tmp_path / "p2")
    assert result.returncode == 75, result.stderr
    assert "REQUEST_LIMIT_EXCEEDED" in result.stderr and "counts only once whole" in result.stderr
    assert 0 < len(org.bulk_queries) - 7 < 7  # it stopped among the second pull's jobs
    assert state(db) == before and harness.marks(db, "salesforce") == marks
    assert not list((tmp_path / "p2").glob("*.csv"))  # no half journeys left to replay by hand

    org.limit_left = None  # the next day
    result = run(db, env, tmp_path / "p3")
    assert result.returncode == 0, result.stderr
    reference, rest_marks = rest_reference(org, server, tmp_path, monkeypatch)
    assert state(db) == reference and harness.marks(db, "salesforce") == rest_marks


@pytest.mark.slow
def test_sigkill_while_reading_results_then_a_rerun_equals_a_full_pull(org, server, env, tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    assert run(db, env, tmp_path / "p1").returncode == 0
    org.set_status(org.ids["new2"], "Closed - Not Converted", reason="Went silent")
    org.move(org.ids["deal"], "Closed Won")
    before = state(db)

    gate = server.gate(f"{JOBS}/750FAKE00000000009/results")  # the second pull's third job (LeadHistory), paging
    process = harness.start_pull("salesforce", db, env, "--config", str(CONFIG), "--out", str(tmp_path / "p2"))
    harness.kill_when(process, gate.reached)
    gate.open()
    assert state(db) == before

    result = run(db, env, tmp_path / "p3")
    assert result.returncode == 0, result.stderr
    assert state(db) == rest_reference(org, server, tmp_path, monkeypatch)[0]


@pytest.mark.slow
def test_no_secret_in_outputs_files_or_warehouse_after_bulk_pulls_and_a_failed_job(org, server, env, tmp_path):
    db = tmp_path / "w.duckdb"
    runs = [run(db, env, tmp_path / "p1")]
    assert runs[-1].returncode == 0, runs[-1].stderr
    org.bulk_failures["Task"] = f"internal error near {org.access_token}"
    runs.append(run(db, env, tmp_path / "p2"))
    assert runs[-1].returncode == 2 and "for Task ended Failed" in runs[-1].stderr
    server.faults(JOBS, [Reply(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": f"token {org.access_token}"}])] * 5)
    runs.append(run(db, env, tmp_path / "p3"))
    assert runs[-1].returncode == 2 and "Salesforce did not answer after 5 tries" in runs[-1].stderr
    argv = harness.pull_args("salesforce", db, "--config", str(CONFIG), "--out", str(tmp_path / "p1"))
    for value in secrets_of(org):
        harness.assert_secret_nowhere(value, outputs=[r.stdout + r.stderr for r in runs], db=db, dirs=[tmp_path], argv=argv)
    assert all(org.access_token not in str(r.query) + r.body.decode("utf-8", "replace") for r in server.requests)
