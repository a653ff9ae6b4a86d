"""A small Salesforce org behind the REST API, for `funnelboard pull salesforce` tests (served by loopback.Loopback).

It answers as the documented API does: the OAuth token endpoint (username-password and JWT bearer
flows, `{"error": ..., "error_description": ...}` on failure), `sobjects` (describeGlobal) and
`sobjects/<object>/describe`, SOQL through `query` and `queryAll` with query locators
(`done`, `totalSize`, `nextRecordsUrl`, records with `attributes` and nested relationship
fields), errors as `[{"message": ..., "errorCode": ...}]` (INVALID_SESSION_ID 401,
REQUEST_LIMIT_EXCEEDED 403, MALFORMED_QUERY / INVALID_FIELD / INVALID_TYPE 400) and the
`Sforce-Limit-Info: api-usage=N/M` header. Pages are `page_size` records (Salesforce may answer
fewer than the batchSize asked for), so every object pages several times. `SELECT COUNT() FROM ...`
answers `totalSize` with no records.

The Bulk API 2.0 query resources too, from the same records: `POST jobs/query` creates a job
(`bulk_polls` answers InProgress before JobComplete; `bulk_failures[object]` makes it Failed with
that errorMessage), `GET jobs/query/<id>` its state, `PATCH` aborts it, `DELETE` deletes an ended one, and `GET jobs/query/<id>/results`
answers CSV pages of at most `maxRecords` (and `bulk_page_size`) records, every value quoted, a header
row naming the columns as the query spells them (`Owner.Name`), with `Sforce-Locator` (an opaque
string; "null" after the last page) and `Sforce-NumberOfRecords`.

The dataset changes as an org's does: each edit advances the org's clock, stamps the record's
SystemModstamp and writes the history rows Salesforce would write (LeadHistory for Status,
OpportunityHistory for stage, amount, close date and forecast category). `delete` sends a lead or
opportunity to the recycle bin (queryAll shows it, IsDeleted = true). `session_left` makes the session
time out after that many API calls: the token is refused (401 INVALID_SESSION_ID) and a login gets a new one.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import parse_qs

from tests.etl.pull.loopback import Reply, Request

API = re.compile(r"/services/data/v(\d+\.\d)/(.*)")
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
PREFIX = {"Lead": "00Q", "Opportunity": "006", "Contact": "003", "Task": "00T", "Event": "00U", "LeadHistory": "017",
          "OpportunityHistory": "008", "OpportunityContactRole": "00K", "Account": "001", "User": "005"}

# object -> {field: relationship name or None}; what describe lists and SOQL may select.
SCHEMA: dict[str, dict[str, str | None]] = {
    "Lead": dict.fromkeys(("Id", "Status", "CreatedDate", "SystemModstamp", "IsConverted", "ConvertedOpportunityId",
                           "ConvertedContactId", "ConvertedDate", "IsDeleted", "Company", "LeadSource", "Industry",
                           "Title", "Disqualification_Reason__c", "LastName"), None) | {"OwnerId": "Owner"},
    "LeadHistory": dict.fromkeys(("Id", "LeadId", "CreatedDate", "Field", "OldValue", "NewValue", "IsDeleted"), None),
    "Opportunity": dict.fromkeys(("Id", "Name", "StageName", "CreatedDate", "SystemModstamp", "IsWon", "IsClosed",
                                  "IsDeleted", "LeadSource", "Amount", "CloseDate", "ForecastCategory", "Loss_Reason__c",
                                  "CurrencyIsoCode"), None) | {"AccountId": "Account", "OwnerId": "Owner"},
    "OpportunityHistory": dict.fromkeys(("Id", "OpportunityId", "StageName", "CreatedDate", "SystemModstamp", "Amount",
                                         "CloseDate", "ForecastCategory", "Probability", "CurrencyIsoCode", "IsDeleted"), None),
    "Task": dict.fromkeys(("Id", "WhoId", "WhatId", "Subject", "Status", "IsClosed", "CreatedDate", "CompletedDateTime",
                           "TaskSubtype", "IsDeleted", "SystemModstamp"), None),
    "Event": dict.fromkeys(("Id", "WhoId", "WhatId", "StartDateTime", "IsDeleted", "SystemModstamp"), None),
    "OpportunityContactRole": dict.fromkeys(("Id", "OpportunityId", "Role", "IsPrimary", "IsDeleted", "SystemModstamp"),
                                            None) | {"ContactId": "Contact"},
}
RELATED = {"Owner": ("User", "Name"), "Account": ("Account", "Industry"), "Contact": ("Contact", "Title")}
STAGE_FORECAST = {"Prospecting": "Pipeline", "Qualification": "Pipeline", "Proposal/Price Quote": "BestCase",
                  "Negotiation/Review": "Commit", "Closed Won": "Closed", "Closed Lost": "Omitted"}


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character id: 15 characters with mixed case, then the case-checksum suffix Salesforce computes."""
    head = f"{prefix}Ab{number:07d}xYz"[:15]
    bits = [sum(1 << i for i, c in enumerate(head[k:k + 5]) if c.isupper()) for k in (0, 5, 10)]
    return head + "".join(_SUFFIX[b] for b in bits)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class SoqlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class FakeSalesforce:
    """The org, its users and its API; `app` is the Loopback handler."""

    def __init__(self, *, page_size: int = 3, multi_currency: bool = True):
        self.page_size = page_size
        self.multi_currency = multi_currency
        self.url = ""  # the server's base URL, set once the Loopback runs: the instance_url the token endpoint returns
        self.clock = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
        self.rows: dict[str, list[dict]] = {obj: [] for obj in SCHEMA}
        self.related: dict[str, dict] = {}  # Account / User / Contact id -> fields
        self.numbers: dict[str, int] = {}
        self.cursors: dict[str, list[dict]] = {}
        self.queries: list[tuple[str, str]] = []  # (query locator, SOQL) of every query answered
        self.lock = threading.RLock()
        self.hidden: set[str] = set()  # objects the API user cannot read
        self.api_disabled = False  # the user's profile lacks "API Enabled": every REST call is refused (403)
        self.daily_limit = 15000
        self.used = 0
        self.limit_left: int | None = None  # REST calls left before REQUEST_LIMIT_EXCEEDED (None: no limit)
        # the integration user and its connected app
        self.username = "integration@acme.example"
        self.password = "pa55-Word"
        self.security_token = "tok3nXYZ"
        self.consumer_key = "3MVG9fake.consumer.key"
        self.consumer_secret = "c0nsumer-s3cret"
        self.public_key: bytes | None = None  # PEM, for the JWT bearer flow
        self.audience = "https://login.salesforce.com"
        self.access_token = "00Dfake!AQ0AQ.access-token-value"
        self.session_left: int | None = None  # API calls before the session times out (its token is refused from then on)
        self.sessions = 1  # access tokens issued: a login after a timeout gets a new one
        self.logins = 0
        # Bulk API 2.0 query jobs
        self.bulk_polls = 0  # InProgress answers before a job is JobComplete
        self.bulk_failures: dict[str, str] = {}  # object -> errorMessage of a Failed job
        self.bulk_page_size = 4  # records of a results page at most (and at most the maxRecords asked)
        self.jobs: dict[str, dict] = {}
        self.bulk_queries: list[tuple[str, str, str]] = []  # (job id, operation, SOQL) of every job created
        self.deleted: list[tuple[str, str, datetime]] = []  # the delete log: (object, id, when) of records gone for good
        self.delete_log_days = 15  # how far back the delete log answers

    # -- the dataset ------------------------------------------------------------------------------

    def tick(self, minutes: int = 37) -> str:
        self.clock += timedelta(minutes=minutes)
        return stamp(self.clock)

    def new_id(self, obj: str) -> str:
        self.numbers[obj] = self.numbers.get(obj, 0) + 1
        return salesforce_id(PREFIX[obj], self.numbers[obj])

    def get(self, obj: str, rid: str) -> dict:
        return next(r for r in self.rows[obj] if r["Id"] == rid)

    def _user(self, name: str) -> str:
        uid = next((k for k, v in self.related.items() if v.get("Name") == name), None) or self.new_id("User")
        self.related[uid] = {"type": "User", "Name": name}
        return uid

    def add_lead(self, status: str = "Open - Not Contacted", *, source: str = "Web", industry: str = "Logistics",
                 owner: str = "Ana Silva", title: str = "Operations Manager") -> str:
        now = self.tick()
        lead = {"Id": self.new_id("Lead"), "LastName": "Lead", "Company": "Acme", "Status": status, "CreatedDate": now,
                "SystemModstamp": now, "IsConverted": False, "ConvertedOpportunityId": None, "ConvertedContactId": None,
                "ConvertedDate": None, "IsDeleted": False, "LeadSource": source, "Industry": industry, "Title": title,
                "Disqualification_Reason__c": None, "OwnerId": self._user(owner)}
        self.rows["Lead"].append(lead)
        self._history("LeadHistory", {"LeadId": lead["Id"], "Field": "created", "OldValue": None, "NewValue": None}, now)
        return lead["Id"]

    def set_status(self, lead_id: str, status: str, *, reason: str | None = None, advance: bool = True) -> None:
        """A status change; `advance=False` stamps it at the org's current instant (two saves in one second)."""
        lead = self.get("Lead", lead_id)
        now = self.tick() if advance else stamp(self.clock)
        self._history("LeadHistory", {"LeadId": lead_id, "Field": "Status", "OldValue": lead["Status"], "NewValue": status}, now)
        lead.update(Status=status, SystemModstamp=now)
        if reason:
            self._history("LeadHistory", {"LeadId": lead_id, "Field": "Disqualification_Reason__c", "OldValue": None,
                                          "NewValue": reason}, now)
            lead["Disqualification_Reason__c"] = reason

    def set_owner(self, lead_id: str, owner: str) -> None:
        """An edit that changes no status: LeadHistory gets an Owner row, the Lead a new SystemModstamp."""
        lead = self.get("Lead", lead_id)
        now = self.tick()
        self._history("LeadHistory", {"LeadId": lead_id, "Field": "Owner", "OldValue": None, "NewValue": owner}, now)
        lead.update(OwnerId=self._user(owner), SystemModstamp=now)

    def convert(self, lead_id: str, *, amount: float = 25000.0, close: str = "2026-06-30", currency: str = "EUR",
                into: str | None = None) -> str:
        """Convert a lead: a contact, a new opportunity (or `into` an existing one), the lead Closed - Converted."""
        lead = self.get("Lead", lead_id)
        now = self.tick()
        contact = self.new_id("Contact")
        self.related[contact] = {"type": "Contact", "Title": lead["Title"]}
        opp_id = into or self._opportunity(now, amount, close, currency, lead["LeadSource"])
        self._history("LeadHistory", {"LeadId": lead_id, "Field": "Status", "OldValue": lead["Status"],
                                      "NewValue": "Closed - Converted"}, now)
        lead.update(Status="Closed - Converted", IsConverted=True, ConvertedOpportunityId=opp_id, ConvertedContactId=contact,
                    ConvertedDate=now[:10], SystemModstamp=now)
        return opp_id

    def add_opportunity(self, *, amount: float = 40000.0, close: str = "2026-07-31", currency: str = "USD") -> str:
        return self._opportunity(self.tick(), amount, close, currency, "Partner")

    def _opportunity(self, now: str, amount: float, close: str, currency: str, source: str) -> str:
        account = self.new_id("Account")
        self.related[account] = {"type": "Account", "Industry": "Retail"}
        opp = {"Id": self.new_id("Opportunity"), "Name": "Deal", "StageName": "Prospecting", "CreatedDate": now,
               "SystemModstamp": now, "IsWon": False, "IsClosed": False, "IsDeleted": False, "LeadSource": source,
               "Amount": amount, "CloseDate": close, "ForecastCategory": "Pipeline", "Loss_Reason__c": None,
               "CurrencyIsoCode": currency, "AccountId": account, "OwnerId": self._user("Bo Chen")}
        self.rows["Opportunity"].append(opp)
        self._opportunity_row(opp, now)
        return opp["Id"]

    def move(self, opp_id: str, stage: str, *, loss_reason: str | None = None) -> None:
        opp = self.get("Opportunity", opp_id)
        now = self.tick()
        opp.update(StageName=stage, ForecastCategory=STAGE_FORECAST.get(stage, "Pipeline"), SystemModstamp=now,
                   IsClosed=stage.startswith("Closed"), IsWon=stage == "Closed Won")
        if loss_reason:
            opp["Loss_Reason__c"] = loss_reason
        self._opportunity_row(opp, now)

    def change_money(self, opp_id: str, *, amount: float | None = None, close: str | None = None,
                     forecast: str | None = None, currency: str | None = None) -> None:
        opp = self.get("Opportunity", opp_id)
        now = self.tick()
        for name, value in (("Amount", amount), ("CloseDate", close), ("ForecastCategory", forecast), ("CurrencyIsoCode", currency)):
            if value is not None:
                opp[name] = value
        opp["SystemModstamp"] = now
        self._opportunity_row(opp, now)

    def _opportunity_row(self, opp: dict, now: str) -> None:
        self._history("OpportunityHistory", {"OpportunityId": opp["Id"], "StageName": opp["StageName"], "Amount": opp["Amount"],
                                             "CloseDate": opp["CloseDate"], "ForecastCategory": opp["ForecastCategory"],
                                             "Probability": 10, "CurrencyIsoCode": opp["CurrencyIsoCode"]}, now)

    def _history(self, obj: str, values: dict, now: str) -> None:
        self.rows[obj].append({"Id": self.new_id(obj), "CreatedDate": now, "SystemModstamp": now, "IsDeleted": False, **values})

    def add_task(self, *, who: str | None = None, what: str | None = None, closed: bool = True) -> str:
        now = self.tick(11)
        task = {"Id": self.new_id("Task"), "WhoId": who, "WhatId": what, "Subject": "Call", "Status": "Completed" if closed else "Open",
                "IsClosed": closed, "CreatedDate": now, "CompletedDateTime": now if closed else None, "TaskSubtype": "Call",
                "IsDeleted": False, "SystemModstamp": now}
        self.rows["Task"].append(task)
        return task["Id"]

    def close_task(self, task_id: str) -> None:
        task = self.get("Task", task_id)
        now = self.tick(5)
        task.update(Status="Completed", IsClosed=True, CompletedDateTime=now, SystemModstamp=now)

    def delete(self, obj: str, rid: str, *, master: str | None = None) -> None:
        """A lead or opportunity to the recycle bin (a merged-away lead: `master`, the survivor, is stamped too):
        query leaves it out, queryAll shows it with IsDeleted = true and a new SystemModstamp."""
        record = self.get(obj, rid)
        record.update(IsDeleted=True, SystemModstamp=self.tick(5))
        if master:
            self.get(obj, master)["SystemModstamp"] = stamp(self.clock)

    def delete_task(self, task_id: str) -> None:
        """To the recycle bin: query leaves it out, queryAll shows it with IsDeleted = true."""
        task = self.get("Task", task_id)
        task.update(IsDeleted=True, SystemModstamp=self.tick(3))

    def add_event(self, *, who: str | None = None, what: str | None = None) -> str:
        now = self.tick(13)
        event = {"Id": self.new_id("Event"), "WhoId": who, "WhatId": what, "StartDateTime": now, "IsDeleted": False,
                 "SystemModstamp": now}
        self.rows["Event"].append(event)
        return event["Id"]

    def add_role(self, opp_id: str, role: str, *, title: str = "CFO", primary: bool = False) -> str:
        now = self.tick(3)
        contact = self.new_id("Contact")
        self.related[contact] = {"type": "Contact", "Title": title}
        row = {"Id": self.new_id("OpportunityContactRole"), "OpportunityId": opp_id, "ContactId": contact, "Role": role,
               "IsPrimary": primary, "IsDeleted": False, "SystemModstamp": now}
        self.rows["OpportunityContactRole"].append(row)
        return row["Id"]

    def delete_role(self, role_id: str) -> None:
        """A contact role deleted: it skips the recycle bin (neither query nor queryAll shows it again) and its opportunity
        keeps its SystemModstamp; only the delete log (sObject Get Deleted) names it."""
        row = self.get("OpportunityContactRole", role_id)
        self.rows["OpportunityContactRole"].remove(row)
        self.tick(2)
        self.deleted.append(("OpportunityContactRole", role_id, self.clock))

    def contact_of(self, lead_id: str) -> str:
        return self.get("Lead", lead_id)["ConvertedContactId"]

    # -- the API ----------------------------------------------------------------------------------

    def app(self, request: Request) -> Reply:
        with self.lock:
            if request.path == "/services/oauth2/token" and request.method == "POST":
                return self._token(request)
            match = API.fullmatch(request.path)
            if not match:
                return Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
            if request.headers.get("authorization") != f"Bearer {self.access_token}":
                return Reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
            if self.session_left is not None:
                if self.session_left <= 0:  # the session times out: this token is dead, a new login gets another
                    self.sessions += 1
                    self.access_token = f"00Dfake!AQ0AQ.session-{self.sessions}-token"
                    self.session_left = None
                    return Reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
                self.session_left -= 1
            if self.api_disabled:
                return Reply(403, [{"message": "API is disabled for this User", "errorCode": "API_CURRENTLY_DISABLED"}])
            if self.limit_left is not None:
                if self.limit_left <= 0:
                    return self._limited(Reply(403, [{"message": "TotalRequests Limit exceeded.",
                                                      "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))
                self.limit_left -= 1
            self.used += 1
            version, resource = match.groups()
            try:
                return self._limited(self._resource(version, resource, request))
            except SoqlError as exc:
                return self._limited(Reply(400, [{"message": str(exc), "errorCode": exc.code}]))

    def _limited(self, reply: Reply) -> Reply:
        reply.headers["Sforce-Limit-Info"] = f"api-usage={self.used}/{self.daily_limit}"
        reply.headers["Date"] = format_datetime(self.clock, usegmt=True)  # the org's time, as every answer says it
        return reply

    def _resource(self, version: str, resource: str, request: Request) -> Reply:
        parts = resource.strip("/").split("/")
        if parts == ["sobjects"]:
            return Reply(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
                {"name": obj, "queryable": True, "urls": {"sobject": f"/services/data/v{version}/sobjects/{obj}"}}
                for obj in SCHEMA if obj not in self.hidden]})
        if len(parts) == 3 and parts[0] == "sobjects" and parts[2] == "describe":
            obj = parts[1]
            if obj not in SCHEMA or obj in self.hidden:
                return Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
            return Reply(200, {"name": obj, "queryable": True, "fields": [
                {"name": f, "relationshipName": rel, "type": "reference" if rel or f.endswith("Id") and f != "Id" else "string"}
                for f, rel in self._fields(obj).items()]})
        if len(parts) == 3 and parts[0] == "sobjects" and parts[2] == "deleted":
            return self._deleted(parts[1], request)
        if parts[:2] == ["jobs", "query"]:
            return self._bulk(version, parts[2:], request)
        if parts[0] in ("query", "queryAll") and len(parts) == 1:
            soql = request.arg("q")
            if not soql:
                raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
            counted = re.fullmatch(r"SELECT COUNT\(\) (FROM .*)", soql)
            if counted:
                found = self.run(f"SELECT Id {counted.group(1)}", all_rows=parts[0] == "queryAll", version=version)
                return Reply(200, {"totalSize": len(found), "done": True, "records": []})
            size = self.page_size
            options = request.headers.get("sforce-query-options", "")
            asked = re.search(r"batchSize=(\d+)", options)
            if asked:
                size = min(size, int(asked.group(1)))
            records = self.run(soql, all_rows=parts[0] == "queryAll", version=version)
            locator = f"01gFAKE{len(self.cursors):06d}"
            self.cursors[locator] = records
            self.queries.append((locator, soql))
            return Reply(200, self._page(version, parts[0], locator, 0, size))
        if parts[0] in ("query", "queryAll") and len(parts) == 2:
            locator, _, offset = parts[1].rpartition("-")
            if locator not in self.cursors or not offset.isdigit():
                return Reply(400, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}])
            return Reply(200, self._page(version, parts[0], locator, int(offset), self.page_size))
        return Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

    def _deleted(self, obj: str, request: Request) -> Reply:
        """sObject Get Deleted: the ids of `obj` deleted in [start, end] (seconds ignored), within the log's days."""
        window = []
        for name in ("start", "end"):
            try:
                moment = datetime.fromisoformat(request.arg(name) or "")
            except ValueError:
                return Reply(400, [{"errorCode": "MALFORMED_QUERY", "message": f"{name}: not an ISO 8601 date and time"}])
            if moment.tzinfo is None:
                return Reply(400, [{"errorCode": "MALFORMED_QUERY", "message": f"{name}: a time zone is required"}])
            window.append(moment.astimezone(timezone.utc).replace(second=0, microsecond=0))
        start, end = window
        earliest = self.clock - timedelta(days=self.delete_log_days)
        if start < earliest or end < start:
            return Reply(400, [{"errorCode": "INVALID_REPLICATION_DATE",
                                "message": "startDate must chronologically precede endDate and be within the delete log"}])
        covered = min(end, self.clock.replace(second=0, microsecond=0))
        return Reply(200, {"deletedRecords": [{"id": rid, "deletedDate": stamp(at)} for o, rid, at in self.deleted
                                              if o == obj and start <= at <= covered + timedelta(seconds=59)],
                           "earliestDateAvailable": stamp(earliest), "latestDateCovered": stamp(covered)})

    def _bulk(self, version: str, rest: list[str], request: Request) -> Reply:
        if not rest and request.method == "POST":
            job = request.json() or {}
            operation, soql = job.get("operation"), job.get("query") or ""
            if operation not in ("query", "queryAll") or job.get("contentType", "CSV") != "CSV":
                return Reply(400, [{"errorCode": "INVALIDJOB", "message": "InvalidJob : operation or contentType"}])
            if re.search(r"COUNT\(", soql, re.IGNORECASE):
                return Reply(400, [{"errorCode": "API_ERROR", "message": "Aggregate Relationships not supported in Bulk Query"}])
            query = parse_soql(soql)
            records = self.run(soql, all_rows=operation == "queryAll", version=version)
            rows = [[_csv_value(_nested(r, path)) for path in query["select"]] for r in records]
            job_id = f"750FAKE{len(self.jobs):011d}"[:18]
            self.jobs[job_id] = {"id": job_id, "object": query["from"], "operation": operation, "header": query["select"],
                                 "rows": rows, "polls": self.bulk_polls, "state": "UploadComplete",
                                 "error": self.bulk_failures.get(query["from"])}
            self.bulk_queries.append((job_id, operation, soql))
            return Reply(200, self._job_info(job_id, version))
        job = self.jobs.get(rest[0]) if rest else None
        if job is None or job.get("deleted"):
            return Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        if len(rest) == 1 and request.method == "DELETE":  # only a job that has ended
            if job["state"] not in ("JobComplete", "Aborted", "Failed"):
                return Reply(400, [{"errorCode": "INVALIDJOB", "message": f"Job {job['id']} is {job['state']}"}])
            job["deleted"] = True
            return Reply(204, b"")
        if len(rest) == 1 and request.method == "PATCH":
            job["state"] = "Aborted"
            return Reply(200, self._job_info(job["id"], version))
        if len(rest) == 1:
            if job["state"] in ("UploadComplete", "InProgress"):
                if job["polls"] > 0:
                    job["polls"] -= 1
                    job["state"] = "InProgress"
                else:
                    job["state"] = "Failed" if job["error"] else "JobComplete"
            return Reply(200, self._job_info(job["id"], version))
        if rest[1:] == ["results"]:
            if job["state"] != "JobComplete":
                return Reply(400, [{"errorCode": "INVALIDJOB", "message": f"Job {job['id']} is not complete: {job['state']}"}])
            size = min(int(request.arg("maxRecords") or self.bulk_page_size), self.bulk_page_size)
            locator = request.arg("locator")
            offset = int(base64.b64decode(locator).decode()) if locator else 0
            page = job["rows"][offset:offset + size]
            out = io.StringIO()
            writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow(job["header"])
            writer.writerows(page)
            following = offset + size
            after = base64.b64encode(str(following).encode()).decode() if following < len(job["rows"]) else "null"
            return Reply(200, out.getvalue().encode("utf-8"), {"Content-Type": "text/csv", "Sforce-Locator": after,
                                                               "Sforce-NumberOfRecords": str(len(page))})
        return Reply(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])

    def _job_info(self, job_id: str, version: str) -> dict:
        job = self.jobs[job_id]
        info = {"id": job_id, "operation": job["operation"], "object": job["object"], "createdById": salesforce_id("005", 1),
                "createdDate": stamp(self.clock), "systemModstamp": stamp(self.clock), "state": job["state"],
                "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(version), "lineEnding": "LF",
                "columnDelimiter": "COMMA"}
        if job["state"] == "JobComplete":
            info["numberRecordsProcessed"] = len(job["rows"])
        if job["state"] == "Failed":
            info["errorMessage"] = job["error"]
        return info

    def _page(self, version: str, kind: str, locator: str, offset: int, size: int) -> dict:
        records = self.cursors[locator]
        end = offset + size
        page = {"totalSize": len(records), "done": end >= len(records), "records": records[offset:end]}
        if end < len(records):
            page["nextRecordsUrl"] = f"/services/data/v{version}/{kind}/{locator}-{end}"
        return page

    def _fields(self, obj: str) -> dict[str, str | None]:
        fields = dict(SCHEMA[obj])
        if not self.multi_currency:
            fields.pop("CurrencyIsoCode", None)
        return fields

    def _token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        refused = Reply(400, {"error": "invalid_grant", "error_description": "authentication failure"})
        if form.get("grant_type") == "password":
            if (form.get("client_id"), form.get("client_secret")) != (self.consumer_key, self.consumer_secret):
                return Reply(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
            if (form.get("username"), form.get("password")) != (self.username, self.password + self.security_token):
                return refused
        elif form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            import jwt

            try:
                claims = jwt.decode(form.get("assertion", ""), self.public_key, algorithms=["RS256"], audience=self.audience,
                                    options={"require": ["exp", "iss", "sub", "aud"]})
            except jwt.PyJWTError:
                return Reply(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
            if claims["iss"] != self.consumer_key or claims["sub"] != self.username:
                return Reply(400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"})
        else:
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        self.logins += 1
        return Reply(200, {"access_token": self.access_token, "instance_url": self.url, "token_type": "Bearer",
                           "id": f"https://login.salesforce.com/id/00D000000000001/{salesforce_id('005', 1)}",
                           "issued_at": "1767603600000", "signature": "c2lnbmF0dXJl"})

    # -- SOQL -------------------------------------------------------------------------------------

    def run(self, soql: str, *, all_rows: bool, version: str) -> list[dict]:
        query = parse_soql(soql)
        obj = query["from"]
        if obj not in SCHEMA or obj in self.hidden:
            raise SoqlError("INVALID_TYPE", f"sObject type '{obj}' is not supported.")
        fields = self._fields(obj)
        for path in query["select"] + [c[1] for c in _columns(query["where"])] + [o[0] for o in query["order"]]:
            self._check_field(obj, fields, path)
        rows = [r for r in self.rows[obj] if (all_rows or not r.get("IsDeleted")) and _matches(query["where"], r, fields)]
        for name, descending in reversed(query["order"]):
            rows.sort(key=lambda r: _sort_key(_lookup(r, name)), reverse=descending)
        if query["limit"] is not None:
            rows = rows[:query["limit"]]
        return [self._record(obj, r, query["select"], version) for r in rows]

    def _check_field(self, obj: str, fields: dict, path: str) -> None:
        head, _, rest = path.partition(".")
        if rest:
            rel = next((r for r in fields.values() if r and r.lower() == head.lower()), None)
            if rel is None or rest.lower() != RELATED[rel][1].lower():
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{head}' in field path.")
        elif head.lower() not in {f.lower() for f in fields}:
            raise SoqlError("INVALID_FIELD", f"No such column '{head}' on entity '{obj}'.")

    def _record(self, obj: str, row: dict, select: list[str], version: str) -> dict:
        out: dict = {"attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{row['Id']}"}}
        fields = self._fields(obj)
        for path in select:
            head, _, rest = path.partition(".")
            if not rest:
                name = next(f for f in fields if f.lower() == head.lower())
                out[name] = row.get(name)
                continue
            field_name = next(f for f, r in fields.items() if r and r.lower() == head.lower())
            rel = fields[field_name]
            target = self.related.get(row.get(field_name) or "")
            if target is None:
                out[rel] = None
                continue
            entry = out.get(rel) or {"attributes": {"type": target["type"],
                                                    "url": f"/services/data/v{version}/sobjects/{target['type']}/{row[field_name]}"}}
            entry[RELATED[rel][1]] = target.get(RELATED[rel][1])
            out[rel] = entry
        return out


def _nested(record: dict, path: str):
    value = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value


def _csv_value(value) -> str:
    """A value as Bulk API CSV holds it: empty for null, true/false, numbers and text as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


# -- a small SOQL reader: SELECT ... FROM ... [WHERE ...] [ORDER BY ...] [LIMIT n] -----------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))
  | (?P<date>\d{4}-\d\d-\d\d)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>>=|<=|!=|=|<|>|\(|\)|,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
)""", re.VERBOSE)
_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "order", "by", "asc", "desc", "limit", "true", "false",
             "null", "nulls", "first", "last"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token at position {pos}: {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, kind: str | None = None, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        k, v = self.tokens[self.i]
        return (kind is None or k == kind) and (value is None or v == value)

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        if not self.peek(kind, value):
            got = self.tokens[self.i][1] if self.i < len(self.tokens) else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"expected {value or kind}, found {got!r}")
        self.i += 1
        return self.tokens[self.i - 1][1]

    def query(self) -> dict:
        self.take("kw", "select")
        select = [self.take("word")]
        while self.peek("op", ","):
            self.take()
            select.append(self.take("word"))
        self.take("kw", "from")
        obj = self.take("word")
        where = None
        if self.peek("kw", "where"):
            self.take()
            where = self.disjunction()
        order = []
        if self.peek("kw", "order"):
            self.take()
            self.take("kw", "by")
            while True:
                name = self.take("word")
                descending = False
                if self.peek("kw", "asc") or self.peek("kw", "desc"):
                    descending = self.take() == "desc"
                order.append((name, descending))
                if not self.peek("op", ","):
                    break
                self.take()
        limit = None
        if self.peek("kw", "limit"):
            self.take()
            limit = int(self.take("number"))
        if self.i != len(self.tokens):
            raise SoqlError("MALFORMED_QUERY", f"unexpected {self.tokens[self.i][1]!r}")
        return {"select": select, "from": obj, "where": where, "order": order, "limit": limit}

    def disjunction(self):
        terms = [self.conjunction()]
        while self.peek("kw", "or"):
            self.take()
            terms.append(self.conjunction())
        return ("or", terms) if len(terms) > 1 else terms[0]

    def conjunction(self):
        terms = [self.factor()]
        while self.peek("kw", "and"):
            self.take()
            terms.append(self.factor())
        return ("and", terms) if len(terms) > 1 else terms[0]

    def factor(self):
        if self.peek("kw", "not"):
            self.take()
            return ("not", self.factor())
        if self.peek("op", "("):
            self.take()
            inner = self.disjunction()
            self.take("op", ")")
            return inner
        name = self.take("word")
        if self.peek("kw", "in") or self.peek("kw", "not"):
            negate = self.take() == "not"
            if negate:
                self.take("kw", "in")
            self.take("op", "(")
            values = [self.literal()]
            while self.peek("op", ","):
                self.take()
                values.append(self.literal())
            self.take("op", ")")
            return ("not", ("in", name, values)) if negate else ("in", name, values)
        op = self.take("op")
        if op not in ("=", "!=", "<", "<=", ">", ">="):
            raise SoqlError("MALFORMED_QUERY", f"unexpected {op!r} after {name}")
        return ("cmp", name, op, self.literal())

    def literal(self):
        kind, value = self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")
        self.i += 1
        if kind == "string":
            return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), value[1:-1])
        if kind == "datetime":
            return _instant(value)
        if kind in ("date", "number"):
            return value if kind == "date" else float(value)
        if kind == "kw" and value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[value]
        raise SoqlError("MALFORMED_QUERY", f"expected a value, found {value!r}")


def parse_soql(text: str) -> dict:
    return _Parser(text).query()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _columns(node) -> list[tuple]:
    if node is None:
        return []
    if node[0] in ("and", "or"):
        return [c for t in node[1] for c in _columns(t)]
    if node[0] == "not":
        return _columns(node[1])
    return [node]


def _lookup(row: dict, name: str):
    return next((v for k, v in row.items() if k.lower() == name.lower()), None)


def _comparable(value, literal):
    if isinstance(literal, datetime) and isinstance(value, str):
        return _instant(value.replace("+0000", "+00:00"))
    return value


def _matches(node, row: dict, fields: dict) -> bool:
    if node is None:
        return True
    kind = node[0]
    if kind == "and":
        return all(_matches(t, row, fields) for t in node[1])
    if kind == "or":
        return any(_matches(t, row, fields) for t in node[1])
    if kind == "not":
        return not _matches(node[1], row, fields)
    if kind == "in":
        value = _lookup(row, node[1])
        return value in node[2]
    _, name, op, literal = node
    value = _comparable(_lookup(row, name), literal)
    if op == "=":
        return value == literal
    if op == "!=":
        return value != literal
    if value is None or literal is None:
        return False
    return {"<": value < literal, "<=": value <= literal, ">": value > literal, ">=": value >= literal}[op]


def _sort_key(value):
    return (value is None, str(value) if value is not None else "")
