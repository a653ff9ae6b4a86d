"""`funnelboard pull salesforce`: what changed in a Salesforce org, as the exports the adapter reads.

Every request goes through the core `Api` (etl/pull/http.py): SOQL through the REST `query` and
`queryAll` resources with `nextRecordsUrl` paging, the OAuth token endpoint for the login.
simple-salesforce only quotes SOQL literals (`format_soql`); its own HTTP session would bypass
the core's retries, quota stop, 401/403 sentences and redaction.

What is fetched
===============
Leads, Opportunities, Tasks, Events and OpportunityContactRoles changed at or after their mark
(`SystemModstamp`, ascending, a page at a time). Each page is completed into whole journeys
before it counts: the opportunities its leads were converted into and every lead converted into
those opportunities (the adapter joins them), then the whole status history of each lead
(LeadHistory, Field = Status), the whole OpportunityHistory (stage and money) of each
opportunity, and every task, event and contact role of those journeys. A changed task, event or
contact role pulls in the journey it belongs to, and the one an earlier pull counted it in
(`PullRequest.tied`: a first response moved to another lead leaves its old journey too). So the
adapter writes the same events for a record whether it comes in a small pull or a full one; events
already stored are exact duplicates the loader collapses. A page's mark counts only once the page is complete: a quota
stop (HTTP 403 REQUEST_LIMIT_EXCEEDED) keeps the pages done and the next pull resumes there.

Leads and Opportunities are read with queryAll: those deleted (or merged away) since the mark come back with
IsDeleted = true while in the recycle bin, and their journeys are removed (`Pulled.removed`); the leads a deleted
opportunity continued, and the opportunity of a deleted lead, are completed again without it. A deleted contact
role skips the recycle bin: the delete log (sObject Get Deleted, about 15 days) names it, and the journey an earlier
pull counted it in is completed again without it (its window has its own mark). A session that
expires mid-pull (401 INVALID_SESSION_ID) logs in again once per request; a ready access token cannot.

Bulk API 2.0
============
When more records changed than FUNNELBOARD_SALESFORCE_BULK_THRESHOLD (COUNT() queries; or always /
never, FUNNELBOARD_SALESFORCE_BULK), the pull reads every object whole through Bulk API 2.0 query
jobs (etl/pull/salesforce_bulk.py) and keeps the rows the REST path would write: the same files,
events and marks. A history read only from a mark would not be whole, so the marks decide only
whether to use Bulk. A Bulk pull counts only whole: a quota stop removes its files and keeps the marks.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from simple_salesforce.format import format_soql

from funnelboard.core.errors import UserError
from funnelboard.etl.pull.base import Pulled, PullRequest, QuotaReached, iso_utc, parse_instant
from funnelboard.etl.pull.http import Api
from funnelboard.etl.pull.salesforce_bulk import BulkQuery, BulkSettings
from funnelboard.etl.pull.secrets import Secret, env_name, secret, setting
from funnelboard.etl.sources.salesforce import canonical_id

CRM = "salesforce"
LOGIN_URL = "https://login.salesforce.com"
API_VERSION = "62.0"
BATCH_SIZE = 2000  # Sforce-Query-Options batchSize: 200..2000; Salesforce may answer smaller pages
IN_CHUNK = 200  # ids per IN (...) list: 200 18-character ids keep a query's URL near 5 KB

# Objects whose changes start a pull's work, in this order; each has its own mark.
MARKED = ("Lead", "Opportunity", "Task", "Event", "OpportunityContactRole")
# Objects that only add to a journey (first responses, buyer roles): skipped, with a note, when unreadable.
OPTIONAL = ("Task", "Event", "OpportunityContactRole")
ACTIVITIES = ("Task", "Event")  # read with queryAll: archived activities (older than a year) are left out of query
# Read with queryAll too: a lead or opportunity deleted (or merged away) since its mark comes back with IsDeleted = true
# while it is in the recycle bin (about 15 days), and its journey is removed from the warehouse (Pulled.removed).
DELETABLE = ("Lead", "Opportunity")
# A deleted contact role skips the recycle bin, so no query shows it; the delete log (sObject Get Deleted) names it for
# about 15 days. Its window has its own mark.
ROLES = "OpportunityContactRole"
DELETED_ROLES = f"deleted_{ROLES}"
DELETE_LOG_DAYS = 15
WRITE_ORDER = ("Lead", "LeadHistory", "Opportunity", "OpportunityHistory", "Task", "Event", "OpportunityContactRole")

# object -> (fields it must have, fields read when the org has them): the columns of docs/sources.md "Salesforce".
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Lead": (("Id", "Status", "CreatedDate", "SystemModstamp", "IsConverted", "ConvertedOpportunityId"),
             ("ConvertedContactId", "ConvertedDate", "IsDeleted", "Company", "LeadSource", "Industry", "Title",
              "Owner.Name")),
    "LeadHistory": (("Id", "LeadId", "CreatedDate", "Field", "NewValue"), ("OldValue", "IsDeleted")),
    "Opportunity": (("Id", "StageName", "CreatedDate", "SystemModstamp"),
                    ("IsWon", "IsClosed", "IsDeleted", "LeadSource", "Amount", "CloseDate", "ForecastCategory",
                     "CurrencyIsoCode", "Account.Industry", "Owner.Name", "Loss_Reason__c")),
    "OpportunityHistory": (("Id", "OpportunityId", "StageName", "CreatedDate"),
                           ("Amount", "CloseDate", "ForecastCategory", "CurrencyIsoCode", "IsDeleted")),
    "Task": (("Id", "WhoId", "CreatedDate", "SystemModstamp"),
             ("WhatId", "Status", "IsClosed", "CompletedDateTime", "TaskSubtype", "IsDeleted")),
    "Event": (("Id", "WhoId", "StartDateTime", "SystemModstamp"), ("WhatId", "IsDeleted")),
    "OpportunityContactRole": (("Id", "OpportunityId", "ContactId", "Role", "SystemModstamp"),
                               ("IsPrimary", "Contact.Title", "IsDeleted")),
}
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
_VERSION = re.compile(r"\d{2,3}\.0")
# Key prefixes of the ids a Task or Event points at (WhoId: lead or contact; WhatId: opportunity, among others).
LEAD_PREFIX, CONTACT_PREFIX, OPPORTUNITY_PREFIX = "00Q", "003", "006"
PERMISSIONS = ('grant the user "API Enabled" and Read on Lead, Opportunity, Task, Event and OpportunityContactRole '
               '(or "View All Data")')


BULK_MODES = ("auto", "always", "never")
BULK_THRESHOLD = 50000  # changed records above which `auto` reads the org through the Bulk API 2.0
# The order a bulk pull reads the objects in: the leads and opportunities first, so the rows of the
# other objects can be kept to those of their journeys (what the REST path writes).
BULK_ORDER = ("Lead", "Opportunity", "LeadHistory", "OpportunityHistory", "Task", "Event", "OpportunityContactRole")


@dataclass(frozen=True)
class BulkChoice:
    """FUNNELBOARD_SALESFORCE_BULK and its companions: when to use the Bulk API 2.0, and how to wait for its jobs."""

    mode: str = "auto"
    threshold: int = BULK_THRESHOLD
    jobs: BulkSettings = BulkSettings()

    @classmethod
    def from_env(cls) -> BulkChoice:
        mode = (setting(CRM, "bulk", "auto") or "auto").lower()
        if mode not in BULK_MODES:
            raise UserError(f"FUNNELBOARD_SALESFORCE_BULK is '{mode}'; expected auto, always or never.")

        def number(name: str, default: float, integer: bool) -> float:
            text = setting(CRM, name, "")
            try:
                value = (int(text) if integer else float(text)) if text else default
            except ValueError:
                value = -1
            if value < 0 or (name == "bulk_page_size" and value < 1):
                kind = "a whole number" if integer else "a number of seconds"
                raise UserError(f"{env_name(CRM, name)} is '{text}'; expected {kind}"
                                f"{' from 1' if name == 'bulk_page_size' else ', 0 or more'}.")
            return value

        return cls(mode, int(number("bulk_threshold", BULK_THRESHOLD, True)), BulkSettings(
            poll=number("bulk_poll", BulkSettings.poll, False), max_wait=number("bulk_max_wait", BulkSettings.max_wait, False),
            page_size=int(number("bulk_page_size", BulkSettings.page_size, True))))


def fetch(request: PullRequest) -> Pulled:
    """Fetch the org's changes since `request`'s marks into Salesforce export CSVs in `request.out`."""
    bulk = BulkChoice.from_env()
    org = Org.connect(request)
    return Puller(org, request, bulk).run()


# -- the connection ----------------------------------------------------------------------------------


@dataclass
class Described:
    """What describe says of one object: its fields and relationship names (lower case -> as spelled)."""

    fields: dict[str, str]
    relationships: dict[str, str]

    def has(self, path: str) -> bool:
        head, _, rest = path.partition(".")
        return (head.lower() in self.relationships) if rest else (head.lower() in self.fields)


class Org:
    """One logged-in org: SOQL pages and describes through the core Api."""

    def __init__(self, version: str, batch_size: int):
        self.api: Api | None = None
        self.version = version
        self.batch_size = batch_size
        self.reading = "the org"  # what the current request reads, for the 403 sentence

    @classmethod
    def connect(cls, request: PullRequest) -> Org:
        version = setting(CRM, "api_version", API_VERSION)
        if not _VERSION.fullmatch(version):
            raise UserError(f"FUNNELBOARD_SALESFORCE_API_VERSION is '{version}'; expected a REST API version such as {API_VERSION}.")
        batch_text = setting(CRM, "batch_size", str(BATCH_SIZE))
        if not batch_text.isdigit() or not 200 <= int(batch_text) <= 2000:
            raise UserError(f"FUNNELBOARD_SALESFORCE_BATCH_SIZE is '{batch_text}'; expected a number of records from 200 to 2000.")
        instance, token, known = _login(request)
        org = cls(version, int(batch_text))
        org.api = Api("Salesforce", instance, headers={"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"},
                      secrets=[token, *known], scope=lambda status, path: org.scope(status), quota=_quota,
                      progress=request.progress, renew=lambda response: org.renew(request, response))
        return org

    def renew(self, request: PullRequest, response) -> bool:
        """On a 401 INVALID_SESSION_ID after the session worked (it outlived the org's session timeout): log in again
        with the JWT bearer or username-password flow and go on; a ready access token cannot be renewed: one sentence."""
        if "INVALID_SESSION_ID" not in _error_codes(response) or not self.api.answered:
            return False  # refused from the first request: a wrong token or a missing scope, as `scope` says
        if secret(CRM, "access_token", required=False) is not None:
            raise UserError("the Salesforce access token in FUNNELBOARD_SALESFORCE_ACCESS_TOKEN expired during the pull "
                            "(INVALID_SESSION_ID) and a ready token cannot be renewed: give a login instead (the JWT bearer "
                            "flow's _CONSUMER_KEY, _USERNAME and _PRIVATE_KEY_FILE, docs/sources.md) so a long pull logs in "
                            "again; nothing from this pull was loaded and the marks are unchanged.")
        self.api.progress.note(f"{CRM}: the session expired (INVALID_SESSION_ID): logging in again")
        _, token, _ = _login(request)
        self.api.secrets.append(token)
        self.api.headers["Authorization"] = f"Bearer {token.reveal()}"
        return True

    def scope(self, status: int) -> str:
        if status == 401:
            return ("the access token is invalid or expired, or its connected app lacks the OAuth scope 'api' (Manage user "
                    "data via APIs): log in again or set a fresh FUNNELBOARD_SALESFORCE_ACCESS_TOKEN.")
        return f'the user lacks the "API Enabled" permission or read access to {self.reading}: {PERMISSIONS}.'

    def path(self, resource: str) -> str:
        return f"/services/data/v{self.version}/{resource}"

    def readable(self) -> dict[str, bool]:
        """Object name -> queryable, for the objects the user can see (describeGlobal)."""
        self.reading = "the list of objects"
        answer = self.api.get(self.path("sobjects"))
        return {o.get("name", ""): bool(o.get("queryable")) for o in answer.get("sobjects", [])}

    def describe(self, obj: str) -> Described:
        self.reading = obj
        answer = self.api.get(self.path(f"sobjects/{obj}/describe"))
        fields, relationships = {}, {}
        for f in answer.get("fields", []):
            fields[f["name"].lower()] = f["name"]
            if f.get("relationshipName"):
                relationships[f["relationshipName"].lower()] = f["relationshipName"]
        return Described(fields, relationships)

    def pages(self, obj: str, soql: str, *, all_rows: bool = False) -> Iterator[list[dict]]:
        """The records a SOQL query selects, a page (query locator batch) at a time."""
        headers = {"Sforce-Query-Options": f"batchSize={self.batch_size}"}
        self.reading = obj
        answer = self.api.get(self.path("queryAll" if all_rows else "query"), params={"q": soql}, headers=headers)
        while True:
            yield list(answer.get("records") or [])
            following = answer.get("nextRecordsUrl")
            if answer.get("done", True) or not following:
                return
            self.reading = obj
            answer = self.api.get(following, headers=headers)


def _quota(response) -> str | None:
    """A sentence when Salesforce says the org's daily API request limit is used up (403 REQUEST_LIMIT_EXCEEDED)."""
    if response.status_code != 403 or "REQUEST_LIMIT_EXCEEDED" not in _error_codes(response):
        return None
    usage = response.headers.get("Sforce-Limit-Info", "")
    seen = f" ({usage.strip()})" if usage.strip() else ""
    return f"Salesforce's API request limit for this org is used up for now (REQUEST_LIMIT_EXCEEDED{seen})."


def _error_codes(response) -> set[str]:
    try:
        body = response.json()
    except ValueError:
        return set()
    items = body if isinstance(body, list) else [body]
    return {str(i.get("errorCode") or i.get("error") or "") for i in items if isinstance(i, dict)}


def _checked_url(name: str, url: str) -> str:
    """An https URL (http only to this machine, for tests and local proxies), without a trailing slash."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if parts.scheme != "https" and not (parts.scheme == "http" and local) or not host:
        raise UserError(f"{name} is '{url}'; expected an https:// URL such as {LOGIN_URL} (a token is sent there).")
    return url.rstrip("/")


def _login(request: PullRequest) -> tuple[str, Secret, list[Secret]]:
    """The instance URL and access token: a ready token, else the OAuth JWT bearer flow, else the username-password flow."""
    token = secret(CRM, "access_token", required=False)
    if token is not None:
        instance = setting(CRM, "instance_url")
        if not instance:
            raise UserError("FUNNELBOARD_SALESFORCE_ACCESS_TOKEN is set without FUNNELBOARD_SALESFORCE_INSTANCE_URL: set it "
                            "to the org's URL (https://MyDomain.my.salesforce.com).")
        return _checked_url("FUNNELBOARD_SALESFORCE_INSTANCE_URL", instance), token, []
    login_url = _checked_url("FUNNELBOARD_SALESFORCE_LOGIN_URL", setting(CRM, "login_url", LOGIN_URL))
    key = secret(CRM, "private_key", required=False)
    password = secret(CRM, "password", required=False) if key is None else None
    if key is None and password is None:
        raise UserError(
            "no Salesforce credentials: set FUNNELBOARD_SALESFORCE_CONSUMER_KEY, _USERNAME and _PRIVATE_KEY_FILE (JWT bearer "
            "flow), or _CONSUMER_KEY, _CONSUMER_SECRET, _USERNAME, _PASSWORD and _SECURITY_TOKEN (username-password flow), "
            "or _ACCESS_TOKEN and _INSTANCE_URL (docs/sources.md, pull)."
        )
    username = setting(CRM, "username")
    consumer_key = setting(CRM, "consumer_key")
    for name, value in (("USERNAME", username), ("CONSUMER_KEY", consumer_key)):
        if not value:
            raise UserError(f"set FUNNELBOARD_SALESFORCE_{name} (the {'user to log in as' if name == 'USERNAME' else 'connected app consumer key'}) "
                            f"for the {'JWT bearer' if key else 'username-password'} flow.")
    known: list[Secret] = [s for s in (key, password) if s is not None]
    if key is not None:
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": _assertion(key, consumer_key, username, setting(CRM, "audience", login_url))}
        hint = "check the consumer key, the username, that the certificate of the private key is on the connected app, and that the user is pre-authorized"
    else:
        consumer_secret = secret(CRM, "consumer_secret", what="connected app consumer secret")
        token_part = secret(CRM, "security_token", required=False)
        known += [s for s in (consumer_secret, token_part) if s is not None]
        form = {"grant_type": "password", "client_id": consumer_key, "client_secret": consumer_secret.reveal(),
                "username": username, "password": password.reveal() + (token_part.reveal() if token_part else "")}
        hint = ("check the username, password and security token, and that the connected app allows the "
                "username-password flow")
    login = Api("Salesforce", login_url, secrets=known, progress=request.progress,
                scope=lambda status, path: f"the login was refused: {hint}.")
    try:
        answer = login.post("/services/oauth2/token", data=form, headers={"Accept": "application/json"})
    except UserError as exc:
        text = str(exc)
        if "answered HTTP 4" not in text:
            raise
        code = re.search(r'"error"\s*:\s*"([^"]*)"', text)
        why = re.search(r'"error_description"\s*:\s*"([^"]*)"', text)
        detail = ": ".join(m.group(1) for m in (code, why) if m) or "no reason given"
        raise UserError(login.redact(f"Salesforce refused the login at {login_url} ({detail}): {hint}.")) from None
    access = answer.get("access_token") if isinstance(answer, dict) else None
    instance = answer.get("instance_url") if isinstance(answer, dict) else None
    if not access or not instance:
        raise UserError(f"Salesforce's token endpoint at {login_url} answered without an access token and instance URL.")
    return _checked_url("the instance_url Salesforce returned", instance), Secret("access token", access), known


def _assertion(key: Secret, consumer_key: str, username: str, audience: str) -> str:
    """The signed JWT of the OAuth 2.0 JWT bearer flow (RS256, valid three minutes)."""
    import jwt  # pyjwt, with the simple-salesforce of the pull extra; RS256 needs the cryptography package

    claims = {"iss": consumer_key, "sub": username, "aud": audience, "exp": int(time.time()) + 180}
    try:
        return jwt.encode(claims, key.reveal(), algorithm="RS256")
    except NotImplementedError:
        raise UserError("the JWT bearer flow signs with RS256, which needs the cryptography package: pip install cryptography.") from None
    except (ValueError, TypeError, jwt.PyJWTError):
        raise UserError(f"{key.name} does not hold a PEM RSA private key (-----BEGIN PRIVATE KEY----- ...).") from None


# -- the pull ------------------------------------------------------------------------------------------


@dataclass
class _Unit:
    """The records of one page's journeys, written only once all of them are fetched."""

    rows: dict[str, list[dict]] = field(default_factory=lambda: {o: [] for o in WRITE_ORDER})


class Puller:
    def __init__(self, org: Org, request: PullRequest, bulk: BulkChoice | None = None):
        self.org = org
        self.request = request
        self.bulk = bulk or BulkChoice()
        self.note = request.progress.note
        self.select: dict[str, list[str]] = {}
        self.skipped: set[str] = set()
        self.written: dict[str, dict[str, str]] = {o: {} for o in WRITE_ORDER}  # object -> Id -> SystemModstamp ("" for rows)
        self.files: dict[str, tuple[Any, Any, Path]] = {}
        self.counts: dict[str, int] = {o: 0 for o in WRITE_ORDER}
        self.removed: set[str] = set()  # journey ids (the adapter's canonical 18-character ids) of deleted leads and opportunities

    def run(self) -> Pulled:
        marks: dict[str, str] = {}
        stopped = None
        bulk = False
        try:
            self.plan()
            started = self.org.api.server_now()  # the org's clock as the pull begins (before any record is read)
            bulk = self.bulk_chosen()
            if bulk:
                self.whole(marks)
                if ROLES not in self.skipped:  # every role was read whole after `started`: deletions count from then
                    marks[DELETED_ROLES] = iso_utc(started)
            else:
                for obj in MARKED:
                    if obj in self.skipped:
                        continue
                    self.changed(obj, marks)
                if ROLES not in self.skipped:
                    self.deleted_roles(marks, started)
        except QuotaReached as exc:
            stopped = str(exc)
            self.note(f"{CRM}: stopped: {stopped}")
        finally:
            for handle, _, _ in self.files.values():
                handle.close()
        if bulk and stopped:  # journeys are whole only once every object is read: nothing of a bulk pull counts
            for _, _, path in self.files.values():
                path.unlink(missing_ok=True)
            return Pulled(files=[], marks={}, counts={}, stopped=stopped + " A Bulk API pull counts only once whole, so "
                          "nothing was loaded and the next pull starts again from the same marks.")
        files = [self.files[o][2] for o in WRITE_ORDER if o in self.files]
        if not any(o in self.files for o in ("Lead", "LeadHistory", "Opportunity", "OpportunityHistory")):
            files = []  # activities or roles of no lead or opportunity: nothing the adapter can put in a journey
        counts = {o: n for o, n in self.counts.items() if n}
        return Pulled(files=files, marks=marks, counts=counts, stopped=stopped, removed=sorted(self.removed))

    # which columns to ask for

    def plan(self) -> None:
        """Choose each object's columns: what the adapter reads, among the fields the user can see."""
        readable = self.org.readable()
        options = self.request.options or {}
        wanted = _option_fields(options)
        for obj, (needed, optional) in FIELDS.items():
            if not readable.get(obj):
                if obj in OPTIONAL:
                    self.skipped.add(obj)
                    self.note(f"{CRM}: skipping {obj}: the user cannot read it (no first responses or buyer roles from it)")
                    continue
                raise UserError(f"the Salesforce user cannot read {obj}: {PERMISSIONS}.")
            described = self.org.describe(obj)
            missing = [f for f in needed if not described.has(f)]
            if missing:
                raise UserError(f"the Salesforce user cannot see {obj}.{missing[0]} (field-level security): grant Read on "
                                f"{', '.join(obj + '.' + m for m in missing)} to the user's profile or a permission set.")
            columns = [described.fields.get(f.lower(), f) if "." not in f else f for f in needed]
            extra = list(optional) + wanted.get(obj, [])
            for name in extra:
                if described.has(name) and name.lower() not in {c.lower() for c in columns}:
                    columns.append(name)
            for name in _required_options(options).get(obj, []):
                if not described.has(name):
                    raise UserError(f"[source.salesforce] names '{name}', which {obj} does not have (or the user cannot see).")
            self.select[obj] = columns

    # REST or Bulk API 2.0

    def bulk_chosen(self) -> bool:
        """always / never, or for auto: more records changed since the marks than the threshold (COUNT() queries)."""
        if self.bulk.mode != "auto":
            return self.bulk.mode == "always"
        changed = 0
        for obj in MARKED:
            if obj in self.skipped:
                continue
            start = self.request.start(obj)
            where = format_soql(" WHERE SystemModstamp >= {}", parse_instant(start)) if start else ""
            self.org.reading = obj
            answer = self.org.api.get(self.org.path("queryAll" if obj in ACTIVITIES + DELETABLE else "query"),
                                      params={"q": f"SELECT COUNT() FROM {obj}{where}"})
            changed += int(answer.get("totalSize") or 0) if isinstance(answer, dict) else 0
            if changed > self.bulk.threshold:
                self.note(f"{CRM}: more than {self.bulk.threshold:,} records changed: reading the org through the Bulk API 2.0")
                return True
        self.note(f"{CRM}: {changed:,} records changed (threshold {self.bulk.threshold:,}): reading them through the REST API")
        return False

    def whole(self, marks: dict[str, str]) -> None:
        """Read every object whole through Bulk API 2.0 query jobs, keeping the rows of the journeys the REST path
        writes (histories, activities and roles of the leads and opportunities read), and mark each object at the
        greatest SystemModstamp read. A history re-read only from a mark would not be whole, so the marks only
        decide whether to use bulk, never what it reads."""
        jobs = BulkQuery(self.org.api, self.org.version, self.bulk.jobs)
        leads: set[str] = set()
        contacts: set[str] = set()
        opps: set[str] = set()
        keep = {
            "Lead": lambda r: True,
            "Opportunity": lambda r: True,
            "LeadHistory": lambda r: r["LeadId"] in leads,
            "OpportunityHistory": lambda r: r["OpportunityId"] in opps,
            "Task": lambda r: r["WhoId"] in leads or r["WhoId"] in contacts or r.get("WhatId") in opps,
            "Event": lambda r: r["WhoId"] in leads or r["WhoId"] in contacts or r.get("WhatId") in opps,
            "OpportunityContactRole": lambda r: r["OpportunityId"] in opps,
        }
        for obj in BULK_ORDER:
            if obj in self.skipped:
                continue
            columns = self.select[obj]
            where = " WHERE Field = 'Status'" if obj == "LeadHistory" else ""
            soql = f"SELECT {', '.join(columns)} FROM {obj}{where}"
            latest, total = None, 0
            self.org.reading = obj
            for number, page in enumerate(jobs.pages(obj, soql, all_rows=obj in ACTIVITIES + DELETABLE), 1):
                self.org.reading = obj
                for row in page:
                    record = _in_columns(obj, row, columns)
                    if obj in MARKED and record.get("SystemModstamp"):  # a deletion moves the mark too
                        moment = parse_instant(record["SystemModstamp"])
                        latest = moment if latest is None or moment > latest else latest
                    if obj in DELETABLE and _is_true(record.get("IsDeleted")):  # in the recycle bin: its journey goes
                        self.removed.add(canonical_id(record["Id"]))
                        continue
                    if obj == "Lead":
                        leads.add(record["Id"])
                        if record.get("ConvertedContactId"):
                            contacts.add(record["ConvertedContactId"])
                    elif obj == "Opportunity":
                        opps.add(record["Id"])
                    if keep[obj](record):
                        self.writer(obj).writerow([record[c] for c in columns])
                        self.counts[obj] += 1
                total += len(page)
                self.note(f"{CRM}: {obj} (Bulk API) page {number}: {len(page)} records ({total} so far)")
            if latest is not None:
                marks[obj] = iso_utc(latest)
        for handle, _, _ in self.files.values():
            handle.flush()

    # the changed records of one object, a page at a time

    def changed(self, obj: str, marks: dict[str, str]) -> None:
        start = self.request.start(obj)
        where = format_soql(" WHERE SystemModstamp >= {}", parse_instant(start)) if start else ""
        soql = f"SELECT {', '.join(self.select[obj])} FROM {obj}{where} ORDER BY SystemModstamp ASC, Id ASC"
        total = 0
        for number, page in enumerate(self.org.pages(obj, soql, all_rows=obj in ACTIVITIES + DELETABLE), 1):
            if not page:
                continue
            unit = _Unit()
            live = [r for r in page if not _is_true(r.get("IsDeleted"))]
            gone = [r for r in page if _is_true(r.get("IsDeleted"))]
            if obj == "Lead":
                # a deleted converted lead's opportunity lives on: under another lead converted into it, or its own id
                opps = self.by_ids("Opportunity", "Id", {r.get("ConvertedOpportunityId") for r in gone} - {None, ""})
                self.complete(unit, {r["Id"]: r for r in live}, {r["Id"]: r for r in opps})
            elif obj == "Opportunity":
                # the leads converted into a deleted opportunity live on: re-written without it
                leads = self.by_ids("Lead", "ConvertedOpportunityId", {r["Id"] for r in gone})
                self.complete(unit, {r["Id"]: r for r in leads}, {r["Id"]: r for r in live})
            else:
                leads, opps = self.journeys_of(obj, page)
                self.complete(unit, leads, opps)
            fetched = self.commit(unit)
            self.removed.update(canonical_id(r["Id"]) for r in gone)
            total += len(page)
            marks[obj] = iso_utc(max(parse_instant(r["SystemModstamp"]) for r in page))
            self.note(f"{CRM}: {obj} page {number}: {len(page)} changed ({total} so far), {fetched} records with their "
                      f"journeys; mark {marks[obj]}")

    def deleted_roles(self, marks: dict[str, str], started: datetime) -> None:
        """Contact roles deleted since the last pull: the delete log names them, and the journeys an earlier pull
        counted them in (PullRequest.tied) are fetched again, whole, without them.

        The mark is the latest deletion seen (read again next time, like every mark's second), so a pull that finds
        nothing new keeps it and publishes nothing; it moves to the end of the window read once it is older than half
        the log's days, so the log still reaches it. A first pull reads every journey whole: later deletions count
        from when it began."""
        start = self.request.start(DELETED_ROLES)
        if start is None:
            marks[DELETED_ROLES] = iso_utc(started)
            return
        end = self.org.api.server_now()  # the org's clock: the log's window is counted from its days
        answer = self.delete_log(parse_instant(start), end)
        if answer is None:  # the window starts before what the log keeps
            oldest = end - timedelta(days=DELETE_LOG_DAYS) + timedelta(minutes=1)
            self.note(f"{CRM}: contact roles deleted before {iso_utc(oldest)} are no longer in Salesforce's delete log: "
                      "the journeys they were counted in keep them until their opportunity changes")
            answer = self.delete_log(oldest, end)
        records = [r for r in answer.get("deletedRecords") or [] if isinstance(r, dict) and r.get("id")]
        ids = {canonical_id(r["id"]) for r in records}
        leads, opps = self.tied_journeys(ids)
        if leads or opps:
            unit = _Unit()
            self.complete(unit, {r["Id"]: r for r in self.by_ids("Lead", "Id", leads)},
                          {r["Id"]: r for r in self.by_ids("Opportunity", "Id", opps)})
            fetched = self.commit(unit)
            self.note(f"{CRM}: {len(ids)} contact role(s) deleted: {len(leads) + len(opps)} journey(s) read again "
                      f"({fetched} records)")
        self.counts[DELETED_ROLES] = len(ids)
        mark = max((parse_instant(str(r["deletedDate"])) for r in records if r.get("deletedDate")), default=None)
        if end - (mark or parse_instant(start)) > timedelta(days=DELETE_LOG_DAYS / 2) and answer.get("latestDateCovered"):
            mark = parse_instant(str(answer["latestDateCovered"]))
        if mark is not None:
            marks[DELETED_ROLES] = iso_utc(mark)

    def delete_log(self, start: datetime, end: datetime) -> dict | None:
        """The contact roles deleted between `start` and `end` (sObject Get Deleted), None when `start` is older
        than the log keeps (INVALID_REPLICATION_DATE)."""
        self.org.reading = ROLES
        window = {"start": start.isoformat(timespec="seconds"), "end": end.isoformat(timespec="seconds")}
        response = self.org.api.get(self.org.path(f"sobjects/{ROLES}/deleted/"), params=window, raw=True, accept=(400,))
        answer = self.org.api.body(response)
        if response.status_code == 400:
            errors = answer if isinstance(answer, list) else [answer]
            if any(isinstance(e, dict) and e.get("errorCode") == "INVALID_REPLICATION_DATE" for e in errors):
                return None
            message = next((e.get("message") for e in errors if isinstance(e, dict) and e.get("message")), "no message")
            raise UserError(f"Salesforce refused to read the {ROLES} delete log: {message}")
        if not isinstance(answer, dict):
            raise UserError(f"Salesforce answered the {ROLES} delete log with something that is not an object.")
        return answer

    def journeys_of(self, obj: str, page: list[dict]) -> tuple[dict, dict]:
        """The leads and opportunities whose journeys changed tasks, events or contact roles belong to."""
        contact_ids = set()
        # the journeys an earlier pull counted them in (a first response): a record may have left its journey
        lead_ids, opp_ids = self.tied_journeys({canonical_id(r.get("Id") or "") for r in page} - {""})
        for r in page:
            if obj == "OpportunityContactRole":
                opp_ids.add(r.get("OpportunityId") or "")
                continue
            who, what = r.get("WhoId") or "", r.get("WhatId") or ""
            (lead_ids if who.startswith(LEAD_PREFIX) else contact_ids if who.startswith(CONTACT_PREFIX) else set()).add(who)
            if what.startswith(OPPORTUNITY_PREFIX):
                opp_ids.add(what)
        leads = self.by_ids("Lead", "Id", lead_ids) + self.by_ids("Lead", "ConvertedContactId", contact_ids)
        opps = self.by_ids("Opportunity", "Id", opp_ids)
        return {r["Id"]: r for r in leads}, {r["Id"]: r for r in opps}

    def tied_journeys(self, ids: set[str]) -> tuple[set[str], set[str]]:
        """The lead and opportunity journeys an earlier pull wrote the records `ids` into (PullRequest.tied)."""
        leads, opps = set(), set()
        for record, journey in self.request.tied(sorted(ids)):
            if record in ids:
                (leads if journey.startswith(LEAD_PREFIX) else opps if journey.startswith(OPPORTUNITY_PREFIX) else set()).add(journey)
        return leads, opps

    def complete(self, unit: _Unit, leads: dict[str, dict], opps: dict[str, dict]) -> None:
        """Add to `unit` the whole journeys of `leads` and `opps`: conversions both ways, histories, activities, roles."""
        converted = {r.get("ConvertedOpportunityId") for r in leads.values()} - {None, ""} - set(opps)
        opps.update({r["Id"]: r for r in self.by_ids("Opportunity", "Id", converted)})
        for r in self.by_ids("Lead", "ConvertedOpportunityId", set(opps)):
            leads.setdefault(r["Id"], r)
        leads = {i: r for i, r in leads.items() if self.written["Lead"].get(i) != r.get("SystemModstamp")}
        opps = {i: r for i, r in opps.items() if self.written["Opportunity"].get(i) != r.get("SystemModstamp")}
        unit.rows["Lead"] += leads.values()
        unit.rows["Opportunity"] += opps.values()
        unit.rows["LeadHistory"] += self.by_ids("LeadHistory", "LeadId", set(leads), "Field = 'Status'")
        unit.rows["OpportunityHistory"] += self.by_ids("OpportunityHistory", "OpportunityId", set(opps))
        who = set(leads) | {r.get("ConvertedContactId") for r in leads.values()} - {None, ""}
        for activity in ACTIVITIES:
            unit.rows[activity] += self.by_ids(activity, "WhoId", who) + self.by_ids(activity, "WhatId", set(opps))
        unit.rows["OpportunityContactRole"] += self.by_ids("OpportunityContactRole", "OpportunityId", set(opps))

    def by_ids(self, obj: str, column: str, ids: Iterable[str], condition: str = "") -> list[dict]:
        """Every record of `obj` whose `column` is one of `ids` (IN lists of IN_CHUNK ids)."""
        ids = sorted(i for i in ids if i)
        if obj in self.skipped or not ids:
            return []
        found = []
        for k in range(0, len(ids), IN_CHUNK):
            soql = format_soql(f"SELECT {', '.join(self.select[obj])} FROM {obj} WHERE {column} IN {{}}", ids[k:k + IN_CHUNK])
            soql += f" AND {condition}" if condition else ""
            for page in self.org.pages(obj, soql, all_rows=obj in ACTIVITIES):
                found += page
        return found

    # files

    def commit(self, unit: _Unit) -> int:
        """Write a completed unit's rows (each record once per pull, unless it changed since) and flush them."""
        written = 0
        for obj in WRITE_ORDER:
            for record in unit.rows[obj]:
                rid = record.get("Id") or ""
                stamp = (record.get("SystemModstamp") or "") if obj in ("Lead", "Opportunity") else ""
                if rid in self.written[obj] and self.written[obj][rid] == stamp:
                    continue
                self.written[obj][rid] = stamp
                self.writer(obj).writerow([_cell(_value(record, c)) for c in self.select[obj]])
                self.counts[obj] += 1
                written += 1
        for handle, _, _ in self.files.values():
            handle.flush()
        return written

    def writer(self, obj: str):
        if obj not in self.files:
            path = Path(self.request.out) / f"{obj}.csv"
            handle = path.open("w", encoding="utf-8", newline="")
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(self.select[obj])
            self.files[obj] = (handle, out, path)
        return self.files[obj][1]


def _option_fields(options: dict) -> dict[str, list[str]]:
    """Columns [source.salesforce] names (attributes, reason fields), by the object they may be on."""
    names: list[str] = []
    for value in (options.get("attributes") or {}).values():
        names += [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
    lead = [n for n in names + [options.get("lead_reason_field"), options.get("first_response_field")] if isinstance(n, str)]
    opp = [n for n in names + [options.get("reason_field")] if isinstance(n, str)]
    return {"Lead": [n for n in lead if _FIELD.fullmatch(n)], "Opportunity": [n for n in opp if _FIELD.fullmatch(n)]}


def _required_options(options: dict) -> dict[str, list[str]]:
    """Fields whose absence the adapter refuses (a reason field set explicitly): better said before fetching."""
    lead = [options[k] for k in ("lead_reason_field", "first_response_field") if isinstance(options.get(k), str)]
    opp = [options["reason_field"]] if isinstance(options.get("reason_field"), str) else []
    return {"Lead": lead, "Opportunity": opp}


def _in_columns(obj: str, row: dict[str, str], columns: list[str]) -> dict[str, str]:
    """A Bulk API CSV row under the column names the query asked for (the header spells them as the API does)."""
    spelled = {k.lower(): k for k in row}
    missing = [c for c in columns if c.lower() not in spelled]
    if missing:
        raise UserError(f"Salesforce's Bulk API 2.0 results for {obj} lack the column {missing[0]}: pull through the REST API "
                        "with FUNNELBOARD_SALESFORCE_BULK=never.")
    return {c: row[spelled[c.lower()]] for c in columns}


def _is_true(value: Any) -> bool:
    """IsDeleted as the REST API (a JSON boolean) or the Bulk API (the text true) gives it."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _value(record: dict, path: str) -> Any:
    """A field of a query record; `Owner.Name` walks the relationship (None when it is empty)."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        key = part if part in value else next((k for k in value if k.lower() == part.lower()), None)
        value = value.get(key) if key else None
    return value


def _cell(value: Any) -> str:
    """A value as the Bulk API writes it in CSV: empty for null, true/false, numbers and text as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
