"""`funnelboard pull hubspot` against a fake HubSpot on loopback: events, paging, faults, increments, quotas, kills."""

from __future__ import annotations

import fcntl
import glob
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from funnelboard.core.config import load_config
from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress
from funnelboard.etl.pull import hubspot
from funnelboard.etl.pull.base import PullRequest, parse_instant
from funnelboard.etl.sources.hubspot import translate
from tests.etl.pull import harness
from tests.etl.pull.fake_hubspot import LEAD_STATUS, LIFECYCLE, TOKEN, FakeHubSpot, change, sample
from tests.etl.pull.loopback import Loopback, Reply

LABELS = {
    "Subscriber": "lead", "Lead": "lead", "New": "lead", "Marketing Qualified Lead": "mql", "Sales Qualified Lead": "sql",
    "Opportunity": "opportunity", "Customer": "won", "Unqualified": "disqualified",
    "Appointment Scheduled": "sql", "Qualified To Buy": "opportunity", "Presentation Scheduled": "opportunity",
    "Contract Sent": "proposal", "Closed Won": "won", "Closed Lost": "lost", "Discovery": "sql", "Scoping": "opportunity",
}
OUTCOMES = {"lost", "disqualified"}
MONEY = ("amount", "closedate", "deal_currency_code", "hs_manual_forecast_category")
REASON = {"deals": "closed_lost_reason", "contacts": "hs_lead_disqualification_reason"}


# -- an independent reading of the fake's records ---------------------------------------------------


def expected_events(fake: FakeHubSpot) -> list[tuple]:
    """(lead_id, stage, stage_label, entered_at, reason): every stage entry of every record, and a row per money
    change between moves (docs/sources.md), under the journey the deal continues. Read from the fake's records."""
    def entries(record) -> list[tuple[datetime, str]]:
        if record.kind == "deals":
            return sorted((t, fake.label_of(v)) for t, v in record.history.get("dealstage", []))
        found = [(t, LIFECYCLE[v]) for t, v in record.history.get("lifecyclestage", []) if v]
        found += [(t, LEAD_STATUS[v]) for t, v in record.history.get("hs_lead_status", []) if v]
        return sorted(found)

    def reason(record, label: str, end: datetime | None) -> str | None:
        if LABELS[label] not in OUTCOMES:
            return None
        held = [v for t, v in sorted(record.history.get(REASON[record.kind], [])) if end is None or t < end]
        return (held[-1] or None) if held else None

    staged = {c for c, r in fake.records["contacts"].items() if entries(r)}
    journey: dict[str, str] = {}
    taken: set[str] = set()
    for deal in sorted(fake.records["deals"], key=lambda d: (entries(fake.records["deals"][d])[0][0], d)):
        first = next((c for c in fake.links.get(deal, []) if c in staged), None)
        if first is not None and first not in taken:
            journey[deal] = f"contact:{first}"
            taken.add(first)
    rows = []
    for kind, records in fake.records.items():
        for rid, record in records.items():
            lead = journey.get(rid, f"{kind[:-1]}:{rid}")
            moves = entries(record)
            for n, (when, label) in enumerate(moves):
                end = moves[n + 1][0] if n + 1 < len(moves) else None
                rows.append((lead, LABELS[label], label, when, reason(record, label, end)))
            if kind != "deals":
                continue
            changes = sorted((t, p, v) for p in MONEY for t, v in record.history.get(p, []))
            in_force: dict[str, str] = {}
            for when in sorted({t for t, _, _ in changes}):
                new = {p: v for t, p, v in changes if t == when and in_force.get(p) != v}
                in_force.update(new)
                before = [(n, m) for n, m in enumerate(moves) if m[0] < when]
                if new and before and all(m[0] != when for m in moves):
                    n, (_, label) = before[-1]
                    end = moves[n + 1][0] if n + 1 < len(moves) else None
                    rows.append((lead, LABELS[label], label, when, reason(record, label, end)))
    return sorted((lead, stage, label, when.replace(tzinfo=None), why) for lead, stage, label, when, why in rows)


# -- helpers ------------------------------------------------------------------------------------------


@pytest.fixture
def funnel_toml(tmp_path: Path) -> Path:
    path = tmp_path / "funnel.toml"
    path.write_text("[labels]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in LABELS.items()), encoding="utf-8")
    return path


def env_for(server: Loopback, token: str = TOKEN) -> dict[str, str]:
    return {"FUNNELBOARD_HUBSPOT_TOKEN": token, "FUNNELBOARD_HUBSPOT_URL": server.url}


def pull(server, db: Path, config: Path, *more: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    return harness.run_pull("hubspot", db, env_for(server, token), "--config", str(config), *more)


def pull_dirs(db: Path) -> list[Path]:
    return sorted((db.parent / "pulls" / "hubspot").glob("*"))


def clean_pull(fake: FakeHubSpot, tmp_path: Path, config: Path, name: str = "clean") -> list[tuple]:
    """The events a full pull of the fake's current data loads into a fresh warehouse."""
    db = tmp_path / name / "w.duckdb"
    db.parent.mkdir()
    fake.daily_remaining = None
    with Loopback(fake.app) as server:
        done = pull(server, db, config)
    assert done.returncode == 0, done.stderr
    return harness.events(db)


def fetch_in_process(fake: FakeHubSpot, out: Path, monkeypatch, marks: dict | None = None, **request) -> tuple:
    """The connector's fetch alone (no load): what it returns and the requests it made."""
    out.mkdir(parents=True, exist_ok=True)
    with Loopback(fake.app) as server:
        monkeypatch.setenv("FUNNELBOARD_HUBSPOT_TOKEN", TOKEN)
        monkeypatch.setenv("FUNNELBOARD_HUBSPOT_URL", server.url)
        monkeypatch.setenv("FUNNELBOARD_PULL_BACKOFF", "0.01")
        pulled = hubspot.fetch(PullRequest("hubspot", marks or {}, None, out, **request))
        return pulled, list(server.requests)


def adapter_events(files: list[Path], config_path: Path) -> list[tuple]:
    """What the HubSpot adapter makes of the pulled files (lead, canonical stage, label, instant, reason)."""
    config = load_config(config_path)
    t = translate(files, config, {})
    label_map = config.label_map()
    return sorted((r["lead_id"], label_map[r["stage"].lower()], r["stage"], parse_instant(r["entered_at"]).replace(tzinfo=None),
                   r["reason"]) for r in t.events.to_pylist())


def searches(requests, obj: str) -> list[dict]:
    return [r.json() for r in requests if r.path == f"/crm/v3/objects/{obj}/search"]


def filter_value(body: dict) -> str | None:
    groups = body.get("filterGroups") or []
    return groups[0]["filters"][0]["value"] if groups else None


def millis(mark: str) -> str:
    return str(int(parse_instant(mark).timestamp() * 1000))


# -- in process: the connector alone --------------------------------------------------------------------


def test_a_first_fetch_pages_every_object_and_gives_the_adapter_every_stage_entry(tmp_path, monkeypatch, funnel_toml):
    fake = sample()
    pulled, requests = fetch_in_process(fake, tmp_path / "out", monkeypatch)
    assert pulled.stopped is None
    assert pulled.counts == {"deals": 10, "contacts": 9}
    assert adapter_events(pulled.files, funnel_toml) == expected_events(fake)
    # several search pages per object, the first without a filter, each next one starting at the last change seen
    for obj in ("deals", "contacts"):
        bodies = searches(requests, obj)
        assert len(bodies) >= 3
        assert filter_value(bodies[0]) is None
        assert all(b["sorts"] == [{"propertyName": hubspot.MODIFIED[obj], "direction": "ASCENDING"}] for b in bodies)
        assert [int(filter_value(b)) for b in bodies[1:]] == sorted(int(filter_value(b)) for b in bodies[1:])
    # every record's history was read once, in batches; every deal's contacts through the v4 associations
    assert sorted(i["id"] for r in requests if r.path == "/crm/v3/objects/deals/batch/read" for i in r.json()["inputs"]) == \
        sorted(fake.records["deals"])
    assert pulled.marks == {"deals": "2025-02-20T12:00:00.000Z", "contacts": "2025-02-06T10:00:00.000Z"}
    assert json.loads((tmp_path / "out" / "hubspot-pipelines.json").read_text())["results"][1]["label"] == "Partner Deals"


def test_the_batch_read_asks_for_the_history_of_every_property_the_adapter_reads(tmp_path, monkeypatch):
    fake = sample()
    options = {"properties": ["dealstage", "lifecyclestage"], "attributes": {"region": ["hs_region", "Region"]},
               "first_response_properties": ["first_reply_at"]}
    fetch_in_process(fake, tmp_path / "out", monkeypatch, options=options)
    deals = next(b for b in fake.read_bodies if "amount" in b["propertiesWithHistory"])
    contacts = next(b for b in fake.read_bodies if "amount" not in b["propertiesWithHistory"])
    assert {"dealstage", "closed_lost_reason", "amount", "closedate", "deal_currency_code", "hs_manual_forecast_category",
            "hs_region"} <= set(deals["propertiesWithHistory"])
    assert "hs_lead_status" not in deals["propertiesWithHistory"] and "Region" not in deals["propertiesWithHistory"]
    assert {"lifecyclestage", "hs_lead_disqualification_reason", "hs_region"} <= set(contacts["propertiesWithHistory"])
    assert "amount" not in contacts["propertiesWithHistory"]  # a contact with a deal property would read as a deal
    assert {"first_reply_at", "jobtitle", "hs_buying_role"} <= set(contacts["properties"])
    # both names HubSpot has given the date-entered properties, for every stage of every pipeline
    for stage in ("appointmentscheduled", "152118304"):
        assert {f"hs_v2_date_entered_{stage}", f"hs_date_entered_{stage}", f"hs_v2_date_exited_{stage}",
                f"hs_date_exited_{stage}"} <= set(deals["properties"])


def test_by_default_the_batch_read_asks_for_the_adapters_default_attributes(tmp_path, monkeypatch):
    fake = sample()
    fetch_in_process(fake, tmp_path / "out", monkeypatch)
    deals = next(b for b in fake.read_bodies if "amount" in b["propertiesWithHistory"])
    contacts = next(b for b in fake.read_bodies if "amount" not in b["propertiesWithHistory"])
    assert {"hubspot_owner_id", "dealtype", "pipeline", "hs_analytics_source", "hs_forecast_category"} <= set(deals["propertiesWithHistory"])
    assert {"hubspot_owner_id", "hs_analytics_source", "hs_lead_status"} <= set(contacts["propertiesWithHistory"])
    assert {"hs_first_outreach_date", "hs_sa_first_engagement_date", "jobtitle", "hs_buying_role"} <= set(contacts["properties"])


def test_records_served_with_the_older_date_entered_names_are_written_as_they_came(tmp_path, monkeypatch, funnel_toml):
    fake = sample()
    pulled, _ = fetch_in_process(fake, tmp_path / "out", monkeypatch)
    deals = {d["id"]: d["properties"] for d in json.loads((tmp_path / "out" / "hubspot-deals-001.json").read_text())["results"]}
    assert deals["9005"]["hs_date_entered_qualifiedtobuy"] == "2025-02-20T12:00:00.000Z"
    assert deals["9005"]["hs_v2_date_entered_qualifiedtobuy"] is None
    assert deals["9001"]["hs_v2_date_entered_contractsent"] == "2025-01-25T16:00:00.000Z"
    assert deals["9001"]["hs_date_entered_contractsent"] is None
    assert deals["9008"]["hs_date_exited_152118301"] == "2025-02-20T12:00:00.000Z"
    # the stage history, not the date properties, makes the events: the same either way
    assert adapter_events(pulled.files, funnel_toml) == expected_events(fake)


def test_records_changed_at_one_instant_page_on_with_after(tmp_path, monkeypatch, funnel_toml):
    fake = sample()
    for n in range(7):  # seven more deals changed at one instant: more than two pages of ties
        fake.deal(f"93{n:02d}", [("2025-02-21T08:00", "appointmentscheduled")])
    pulled, requests = fetch_in_process(fake, tmp_path / "out", monkeypatch)
    bodies = searches(requests, "deals")
    tied = [b for b in bodies if filter_value(b) == millis("2025-02-21T08:00:00Z")]
    assert [b.get("after") for b in tied] == [None, "3", "6"]
    assert pulled.counts["deals"] == 17
    assert adapter_events(pulled.files, funnel_toml) == expected_events(fake)


def test_more_ties_than_one_search_can_page_through_is_one_sentence(tmp_path, monkeypatch):
    fake = sample()
    fake.search_cap = 6
    monkeypatch.setattr(hubspot, "SEARCH_CAP", 6)
    for n in range(8):
        fake.deal(f"93{n:02d}", [("2025-02-21T08:00", "appointmentscheduled")])
    with pytest.raises(UserError, match=r"more than 6 HubSpot deals changed at the same instant \(2025-02-21T08:00:00.000Z\)"):
        fetch_in_process(fake, tmp_path / "out", monkeypatch)


def test_a_changed_deal_brings_every_record_its_journey_depends_on(tmp_path, monkeypatch, funnel_toml):
    fake = sample()
    first, _ = fetch_in_process(fake, tmp_path / "first", monkeypatch)
    fake.deal("9012", [("2025-03-06T09:00", "appointmentscheduled")], contacts=("501",))
    pulled, requests = fetch_in_process(fake, tmp_path / "second", monkeypatch, marks=first.marks)
    deals = {d["id"] for d in json.loads((tmp_path / "second" / "hubspot-deals-001.json").read_text())["results"]}
    # 9012's contact 501 is continued by 9001, which 9010 also lists: the deals of 501 decide who continues it
    assert {"9012", "9001", "9003", "9010"} <= deals
    assert filter_value(searches(requests, "deals")[0]) == millis(first.marks["deals"])
    events = adapter_events(pulled.files, funnel_toml)
    assert {e[0] for e in events if e[3] == datetime(2025, 3, 6, 9)} == {"deal:9012"}
    assert set(events) <= set(expected_events(fake))


def test_a_daily_quota_keeps_whole_pages_and_marks_the_last_one(tmp_path, monkeypatch, funnel_toml):
    fake = sample()
    fake.daily_remaining = 14  # the pipelines, two pages of deals with what they tie to; the third page's reads are refused
    pulled, requests = fetch_in_process(fake, tmp_path / "out", monkeypatch)
    assert pulled.stopped == "HubSpot's daily API limit of 250,000 calls is used up; it resets at midnight in the HubSpot account's time zone."
    assert len(requests) == 15 and len(searches(requests, "deals")) == 3 and requests[-1].path.endswith("/batch/read")
    assert pulled.marks == {"deals": "2025-02-06T10:00:00.000Z"}
    written = {d["id"] for f in pulled.files if "deals" in f.name for d in json.loads(f.read_text())["results"]}
    assert pulled.counts["deals"] == len(written) < 10
    # the mark is the last change of the last whole page; every deal changed before it is in the files, none after
    mark = parse_instant(pulled.marks["deals"])
    assert {d for d, r in fake.records["deals"].items() if r.modified <= mark} <= written
    assert "contacts" not in pulled.marks
    events = adapter_events(pulled.files, funnel_toml)
    assert events and set(events) <= set(expected_events(fake))


@pytest.mark.slow
def test_a_quota_between_pages_of_one_instant_resumes_at_that_instant(tmp_path, monkeypatch, funnel_toml):
    fake = sample()
    fake.daily_remaining = 22  # deals 9005-9007 (changed at 2025-02-20T12:00) are read; the page holding 9008 is refused
    first, requests = fetch_in_process(fake, tmp_path / "first", monkeypatch)
    assert first.stopped and searches(requests, "deals")[-1].get("after") == "3"
    assert first.marks == {"deals": "2025-02-20T12:00:00.000Z"}
    assert "9008" not in {d["id"] for f in first.files if "deals" in f.name for d in json.loads(f.read_text())["results"]}
    fake.daily_remaining = None
    second, _ = fetch_in_process(fake, tmp_path / "second", monkeypatch, marks=first.marks)
    assert second.stopped is None
    # the second pull starts at the mark itself (not after it): 9008, changed at that instant, is fetched
    assert set(adapter_events(first.files, funnel_toml)) | set(adapter_events(second.files, funnel_toml)) == set(expected_events(fake))


def test_403_names_the_missing_scope_in_one_sentence(tmp_path, monkeypatch):
    fake = sample()
    fake.scopes = {"crm.objects.deals.read"}
    with pytest.raises(UserError) as err:
        fetch_in_process(fake, tmp_path / "out", monkeypatch)
    assert str(err.value).startswith("HubSpot refused /crm/v4/associations/deals/contacts/batch/read (HTTP 403): the private "
                                     "app lacks the crm.objects.deals.read and crm.objects.contacts.read scopes")
    assert "\n" not in str(err.value) and TOKEN not in str(err.value)


def test_deals_alone_when_the_token_has_no_contact_scope(tmp_path, monkeypatch, funnel_toml):
    fake = sample()
    fake.scopes = {"crm.objects.deals.read"}
    monkeypatch.setenv("FUNNELBOARD_HUBSPOT_OBJECTS", "deals")
    pulled, requests = fetch_in_process(fake, tmp_path / "out", monkeypatch)
    assert pulled.counts == {"deals": 10} and set(pulled.marks) == {"deals"}
    assert not [r for r in requests if "contacts" in r.path]
    assert {e[0] for e in adapter_events(pulled.files, funnel_toml)} == {f"deal:{d}" for d in fake.records["deals"]}
    monkeypatch.setenv("FUNNELBOARD_HUBSPOT_OBJECTS", "contacts")
    with pytest.raises(UserError, match="expected 'deals' or 'deals,contacts'"):
        fetch_in_process(fake, tmp_path / "again", monkeypatch)


def test_the_token_travels_only_in_the_authorization_header(tmp_path, monkeypatch):
    pulled, requests = fetch_in_process(sample(), tmp_path / "out", monkeypatch, progress=Progress(enabled=False))
    assert requests and all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in requests)
    assert all(TOKEN not in r.path and TOKEN not in str(r.query) and TOKEN.encode() not in r.body for r in requests)


# -- end to end: `funnelboard pull hubspot` in a subprocess ----------------------------------------------


@pytest.mark.slow
def test_a_first_pull_loads_every_stage_entry_and_replays_offline(tmp_path, funnel_toml):
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        done = pull(server, db, funnel_toml)
    assert done.returncode == 0, done.stderr
    assert harness.events(db) == expected_events(fake)
    assert harness.marks(db, "hubspot") == {"deals": "2025-02-20T12:00:00.000Z", "contacts": "2025-02-06T10:00:00.000Z"}
    assert "pulled from hubspot: 10 deals, 9 contacts" in done.stdout
    assert "hubspot: deals search page 4" in done.stderr  # progress per page
    (folder,) = pull_dirs(db)
    manifest = json.loads((folder / ".pull.json").read_text())
    assert manifest["stopped"] is None and manifest["counts"] == {"deals": 10, "contacts": 9}
    files = sorted(glob.glob(str(folder / "*")))  # as a shell expands DIR/*: the manifest is hidden
    assert files == sorted(str(folder / name) for name in manifest["files"])
    replay = tmp_path / "replay.duckdb"
    loaded = subprocess.run([sys.executable, "-m", "funnelboard", "load", *files, "--source", "hubspot", "--db", str(replay),
                             "--config", str(funnel_toml)], env=harness.pull_env({}), capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert harness.events(replay) == harness.events(db)
    harness.assert_secret_nowhere(TOKEN, outputs=[done.stdout, done.stderr], db=db, dirs=[tmp_path],
                                  argv=harness.pull_args("hubspot", db, "--config", str(funnel_toml)))


@pytest.mark.slow
def test_a_burst_limit_a_5xx_and_a_timeout_are_waited_out(tmp_path, funnel_toml):
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        burst = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT",
                 "correlationId": "4f5e1c1e-0000-4000-8000-000000000001", "policyName": "TEN_SECONDLY_ROLLING"}
        server.faults("/crm/v3/objects/deals/search", [Reply(429, burst, {"Retry-After": "1"}), Reply(503, {"status": "error"})])
        server.faults("/crm/v3/objects/contacts/batch/read", [Reply(502, "<html>Bad gateway</html>")])
        server.hang("/crm/v3/objects/contacts/search", 1)
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
        assert "HTTP 429, rate limited; waiting 1.0 s" in done.stderr  # Retry-After honoured
        assert "HTTP 503" in done.stderr and "HTTP 502" in done.stderr and "Timeout" in done.stderr
        pages = {obj: done.stderr.count(f"hubspot: {obj} search page ") for obj in ("deals", "contacts")}
        assert len(server.seen("/crm/v3/objects/deals/search")) == pages["deals"] + 2  # the 429 and the 503 asked again
        assert len(server.seen("/crm/v3/objects/contacts/search")) == pages["contacts"] + 1  # the one that timed out
    assert harness.events(db) == expected_events(fake)


@pytest.mark.slow
@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_one_sentence_exit_2_and_load_nothing(tmp_path, funnel_toml, status):
    fake = sample()
    if status == 403:
        fake.scopes = {"crm.objects.contacts.read"}
    db = tmp_path / "w.duckdb"
    token = TOKEN if status == 403 else "pat-na1-0ld-rotated-token-0000"
    with Loopback(fake.app) as server:
        done = pull(server, db, funnel_toml, token=token)
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    if status == 401:
        assert line == ("error: HubSpot refused /crm/v3/pipelines/deals (HTTP 401): the private app access token is invalid, "
                        "expired or rotated: set FUNNELBOARD_HUBSPOT_TOKEN (or FUNNELBOARD_HUBSPOT_TOKEN_FILE) to the app's current token.")
    else:
        assert line.startswith("error: HubSpot refused /crm/v3/pipelines/deals (HTTP 403): the private app lacks the "
                               "crm.objects.deals.read scope: add it")
    assert "Traceback" not in done.stderr
    assert not db.exists()
    harness.assert_secret_nowhere(token, outputs=[done.stdout, done.stderr], db=db, dirs=[tmp_path],
                                  argv=harness.pull_args("hubspot", db, "--config", str(funnel_toml)))


@pytest.mark.slow
def test_a_5xx_that_never_ends_gives_up_in_one_sentence_without_the_secret(tmp_path, funnel_toml):
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        before = harness.events(db)
        fake.set("deals", "9002", "dealstage", "2025-03-01T09:00", "appointmentscheduled")
        server.faults("/crm/v3/objects/deals/batch/read", [Reply(500, {"status": "error", "message": f"echo {TOKEN}"})] * 5)
        done = pull(server, db, funnel_toml)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: HubSpot did not answer after 5 tries (last: HTTP 500 at /crm/v3/objects/deals/batch/read); nothing from this "
        "pull was loaded and the marks are unchanged: run the pull again later.")
    assert harness.events(db) == before
    assert harness.marks(db, "hubspot")["deals"] == "2025-02-20T12:00:00.000Z"
    harness.assert_secret_nowhere(TOKEN, outputs=[done.stdout, done.stderr], db=db, dirs=[tmp_path])


@pytest.mark.slow
def test_an_incremental_pull_asks_only_for_changes_since_the_marks_and_ends_as_a_full_pull(tmp_path, funnel_toml):
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        marks = harness.marks(db, "hubspot")
        change(fake)
        first_requests = len(server.requests)
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
        later = server.requests[first_requests:]
    for obj in ("deals", "contacts"):
        assert filter_value(searches(later, obj)[0]) == millis(marks[obj])
    def read(obj: str) -> set[str]:
        return {i["id"] for r in later if r.path == f"/crm/v3/objects/{obj}/batch/read" for i in r.json()["inputs"]}

    # the changed deals, those changed at the mark itself (9005-9008) and those their journeys tie to; 9009 and its
    # contact 504 changed before the marks and are tied to nothing that changed: not fetched again
    assert {"9001", "9003", "9004", "9011", "9012", "9005"} <= read("deals") and "9009" not in read("deals")
    assert {"501", "502", "510"} <= read("contacts") and "504" not in read("contacts")
    events = harness.events(db)
    assert len(events) == len(set(events))
    assert events == expected_events(fake) == clean_pull(fake, tmp_path, funnel_toml)
    assert harness.marks(db, "hubspot") == {"deals": "2025-03-10T10:00:00.000Z", "contacts": "2025-03-09T09:00:00.000Z"}  # the owner change


@pytest.mark.slow
def test_a_pull_where_nothing_changed_publishes_nothing_and_the_next_change_does(tmp_path, funnel_toml):
    """A pull fetches again the records changed at its marks; when they are stored as they are, the
    warehouse is not published again (the dashboard keeps its file and its warm caches)."""
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        before, marks, published = harness.events(db), harness.marks(db, "hubspot"), os.stat(db)
        loads = harness.loads(db)
        same = pull(server, db, funnel_toml)
        assert same.returncode == 0, same.stderr
        assert "nothing changed in hubspot since the last pull, unchanged" in same.stdout
        assert (os.stat(db).st_ino, os.stat(db).st_mtime_ns) == (published.st_ino, published.st_mtime_ns)
        assert (harness.events(db), harness.marks(db, "hubspot"), harness.loads(db)) == (before, marks, loads)
        change(fake)
        moved = pull(server, db, funnel_toml)
        assert moved.returncode == 0, moved.stderr
    assert os.stat(db).st_ino != published.st_ino and harness.loads(db) == loads + 1
    assert harness.events(db) == expected_events(fake) == clean_pull(fake, tmp_path, funnel_toml)


@pytest.mark.slow
def test_a_deal_that_joins_a_contact_after_a_pull_leaves_no_journey_of_its_own(tmp_path, funnel_toml):
    """9004 (no contact) is its own journey after the first pull; then it is associated with 508, so its
    stages continue 508's journey: the next pull must replace the rows stored under deal:9004, not keep
    them beside the contact's (that would count the deal twice)."""
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        assert any(e[0] == "deal:9004" for e in harness.events(db))
        fake.link("9004", "508", "2025-03-11T09:00")
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
    events = harness.events(db)
    assert not any(e[0] == "deal:9004" for e in events)
    assert events == expected_events(fake) == clean_pull(fake, tmp_path, funnel_toml)


@pytest.mark.slow
def test_a_fetched_again_record_s_rejected_versions_are_replaced_not_piled_up(tmp_path, funnel_toml):
    """A dealstage version whose stage id no pipeline has is rejected by the adapter under its deal: 9001 continues
    contact 501's journey, 9004 is its own, and both are fetched again after change(); 9009 is not and keeps its
    row. After any number of pulls the quarantine holds what one pull of the CRM as it is now would, once each."""
    fake = sample()
    for deal, when in (("9001", "2025-01-26T09:00"), ("9004", "2025-01-29T09:00"), ("9009", "2025-02-15T09:00")):
        fake.set("deals", deal, "dealstage", when, "retiredstage")
    db, clean = tmp_path / "w.duckdb", tmp_path / "clean.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        first = harness.quarantined(db)
        change(fake)
        for _ in range(2):
            done = pull(server, db, funnel_toml)
            assert done.returncode == 0, done.stderr
        assert pull(server, clean, funnel_toml).returncode == 0
    now = harness.quarantined(db)
    assert now == harness.quarantined(clean) == first
    assert max(now.values()) == 1
    assert {(lead, reason) for lead, reason, _raw in now} == {(f"deal:{d}", "unknown_stage_id") for d in ("9001", "9004", "9009")}


@pytest.mark.slow
@pytest.mark.parametrize("changed", [("deals",), ("contacts",), ("deals", "contacts")], ids=["deal-changed", "contact-changed", "both"])
def test_a_deal_no_longer_associated_with_its_contact_leaves_the_contact_s_journey(tmp_path, funnel_toml, changed):
    """9009 continues contact 504's journey; neither changes after the first pull's marks. Once HubSpot no longer
    associates them, the deal is a journey of its own and 504's journey holds its own stages only: whichever of
    the two the search finds changed, the pull fetches the other (the journeys stored by earlier pulls say which),
    so the deal is never counted twice, nor lost."""
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        assert "deal:9009" not in harness.journeys(db)
        fake.unlink("9009", "504", "2025-03-12T09:00", changed=changed)
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
    events = harness.events(db)
    assert {e[0] for e in events if e[2] == "Appointment Scheduled" and e[3] == datetime(2025, 2, 5, 10, 0)} == {"deal:9009"}
    assert events == expected_events(fake) == clean_pull(fake, tmp_path, funnel_toml)
    harness.assert_refresh_equals_full_build(db, load_config(funnel_toml), tmp_path)


@pytest.mark.slow
def test_a_contact_no_longer_associated_leaves_the_values_of_a_deal_that_did_not_change(tmp_path, funnel_toml):
    """9003 is a journey of its own (501 is 9001's), yet it takes 501's buyer role and decision maker. HubSpot then
    no longer associates them and finds only 501 changed: the pull fetches 9003 too (an earlier pull tied them), so
    9003's events lose 501's values, as a clean pull of the CRM as it is now has them."""
    def buyer_values(db: Path) -> list[tuple]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute("select distinct buyer_role, decision_makers from raw_events where lead_id = 'deal:9003'").fetchall()
        finally:
            con.close()

    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        before = buyer_values(db)
        assert before == [("operations lead", "1")]
        fake.unlink("9003", "501", "2025-03-12T09:00", changed=("contacts",))
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
    assert harness.events(db) == clean_pull(fake, tmp_path, funnel_toml)
    assert buyer_values(db) == buyer_values(tmp_path / "clean" / "w.duckdb") != before


@pytest.mark.slow
def test_archived_and_merged_records_leave_the_warehouse_and_the_pull_ends_as_a_full_pull(tmp_path, funnel_toml):
    """9001 continued contact 501's journey: archiving it re-writes 501 (now continued by 9003), not removes it;
    archiving contact 504 leaves its deal 9009 a journey of its own; 9004 (no contact) goes whole; 502 is merged into 505."""
    fake = sample()
    db, config = tmp_path / "w.duckdb", load_config(funnel_toml)
    untouched = {"deal:9008", "contact:507", "contact:506"}
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        before = harness.lead_facts(db, untouched)
        assert {"deal:9004", "contact:504", "contact:502"} <= harness.journeys(db)
        fake.archive("deals", "9001", "2025-03-12T09:00")
        fake.archive("contacts", "504", "2025-03-12T10:00")
        fake.archive("deals", "9004", "2025-03-12T11:00")
        fake.merge("contacts", "502", "505", "2025-03-12T12:00")
        first_requests = len(server.requests)
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
        listed = [r for r in server.requests[first_requests:] if r.method == "GET" and r.path.startswith("/crm/v3/objects/")]
    assert {r.path for r in listed} == {"/crm/v3/objects/deals", "/crm/v3/objects/contacts"}
    assert all(r.arg("archived") == "true" for r in listed)
    assert "removed 3 journey(s) from the warehouse" in done.stdout  # deal:9004, contact:504, contact:502
    journeys = harness.journeys(db)
    assert not {"deal:9004", "contact:504", "contact:502", "deal:9001"} & journeys
    assert {"contact:501", "deal:9009", "contact:505"} <= journeys
    events = harness.events(db)
    assert events == expected_events(fake) == clean_pull(fake, tmp_path, funnel_toml)
    assert harness.lead_facts(db, untouched) == before
    harness.assert_refresh_equals_full_build(db, config, tmp_path)


@pytest.mark.slow
def test_a_daily_quota_stops_with_75_loads_what_completed_and_the_next_pull_catches_up(tmp_path, funnel_toml):
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        fake.daily_remaining = 16  # the third page of deals is refused halfway through what it ties to
        stopped = pull(server, db, funnel_toml)
        assert stopped.returncode == 75, stopped.stderr
        assert ("stopped early: HubSpot's daily API limit of 250,000 calls is used up; it resets at midnight in the HubSpot "
                "account's time zone. Run `funnelboard pull hubspot` again later") in stopped.stderr
        partial = harness.events(db)
        assert partial and set(partial) < set(expected_events(fake))
        marks = harness.marks(db, "hubspot")
        assert "contacts" not in marks and marks["deals"] < "2025-02-20T12:00:00.000Z"
        fake.daily_remaining = None  # midnight
        before = len(server.requests)
        again = pull(server, db, funnel_toml)
        assert again.returncode == 0, again.stderr
        resumed = server.requests[before:]
        assert filter_value(searches(resumed, "deals")[0]) == millis(marks["deals"])  # resumes at the last whole page
        assert filter_value(searches(resumed, "contacts")[0]) is None  # never reached: from the beginning
    events = harness.events(db)
    assert events == sorted(set(events)) == expected_events(fake)


@pytest.mark.slow
def test_a_pull_killed_while_paging_then_run_again_ends_as_a_full_pull(tmp_path, funnel_toml):
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        change(fake)
        gate = server.gate("/crm/v3/objects/contacts/search")  # the deals are fetched, the contacts not yet
        process = harness.start_pull("hubspot", db, env_for(server), "--config", str(funnel_toml))
        harness.kill_when(process, gate.reached)
        gate.open()
        assert harness.marks(db, "hubspot")["deals"] == "2025-02-20T12:00:00.000Z"  # nothing of the killed pull published
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
    events = harness.events(db)
    assert events == sorted(set(events)) == expected_events(fake)


@pytest.mark.slow
def test_a_pull_killed_while_loading_then_run_again_ends_as_a_full_pull(tmp_path, funnel_toml):
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        published = db.read_bytes()
        change(fake)
        process = harness.start_pull("hubspot", db, env_for(server), "--config", str(funnel_toml))
        harness.kill_while_loading(process)
        assert db.read_bytes() == published  # the killed load left the published warehouse as it was
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
    events = harness.events(db)
    assert events == sorted(set(events)) == expected_events(fake)


@pytest.mark.slow
def test_a_pull_while_another_load_holds_the_warehouse_fails_cleanly_and_runs_later(tmp_path, funnel_toml):
    fake = sample()
    db = tmp_path / "w.duckdb"
    with Loopback(fake.app) as server:
        assert pull(server, db, funnel_toml).returncode == 0
        change(fake)
        with open(db.with_name(f".{db.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            busy = pull(server, db, funnel_toml)
        assert busy.returncode == 2
        assert busy.stderr.strip().splitlines()[-1] == (
            f"error: another load into '{db}' is running: wait for it to finish, then try again.")
        assert harness.marks(db, "hubspot")["deals"] == "2025-02-20T12:00:00.000Z"
        done = pull(server, db, funnel_toml)
        assert done.returncode == 0, done.stderr
    assert harness.events(db) == expected_events(fake)
