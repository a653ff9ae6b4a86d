"""A fake HubSpot CRM API for `funnelboard pull hubspot` tests, served by tests/etl/pull/loopback.py.

It answers the endpoints a pull uses in the shapes HubSpot documents: the deal pipelines, the CRM
search (filterGroups, sorts, `after` offsets in paging.next, the 10,000-result cap per query), the
batch read with propertiesWithHistory (versions newest first, a 207 with errors for unknown ids), the
v4 associations batch read (per-record paging, 207 for records without associations), and the error
bodies: 401 INVALID_AUTHENTICATION, 403 MISSING_SCOPES with the required scopes, 429 RATE_LIMIT with
policyName DAILY or TEN_SECONDLY_ROLLING and the X-HubSpot-RateLimit-* headers.

Pages are small (`page_max` search results, `link_page` associations per record) so every object
pages several times. Tests change the dataset between pulls with `deal`, `contact`, `set`, `link`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tests.etl.pull.loopback import Reply

TOKEN = "pat-na1-7f3c2e1a-5ecr-e7t0-ken0-hubspot0001"
MODIFIED = {"deals": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}
TYPE_ID = {("deals", "contacts"): 3, ("contacts", "deals"): 4}  # HUBSPOT_DEFINED association types
SCOPE = {"deals": "crm.objects.deals.read", "contacts": "crm.objects.contacts.read"}
LIFECYCLE = {"subscriber": "Subscriber", "lead": "Lead", "marketingqualifiedlead": "Marketing Qualified Lead",
             "salesqualifiedlead": "Sales Qualified Lead", "opportunity": "Opportunity", "customer": "Customer"}
LEAD_STATUS = {"NEW": "New", "OPEN": "Open", "UNQUALIFIED": "Unqualified"}

PIPELINES = [
    {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "stages": [
        ("appointmentscheduled", "Appointment Scheduled"), ("qualifiedtobuy", "Qualified To Buy"),
        ("presentationscheduled", "Presentation Scheduled"), ("contractsent", "Contract Sent"),
        ("closedwon", "Closed Won"), ("closedlost", "Closed Lost")]},
    {"id": "2847561", "label": "Partner Deals", "displayOrder": 1, "stages": [
        ("152118301", "Discovery"), ("152118302", "Scoping"), ("152118303", "Closed Won"), ("152118304", "Closed Lost")]},
]


def at(text: str) -> datetime:
    """An instant of the dataset: '2025-03-01T10:00' (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _instant(value: str) -> datetime:
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Record:
    kind: str
    id: str
    created: datetime
    history: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)  # property -> (instant, value), oldest first
    plain: dict[str, str] = field(default_factory=dict)  # properties kept without history (buyer properties)
    touched: datetime | None = None  # the last change that is no property value (an association)

    @property
    def modified(self) -> datetime:
        times = [self.created, *(t for versions in self.history.values() for t, _ in versions)]
        return max(times + ([self.touched] if self.touched else []))

    def current(self, prop: str) -> str | None:
        versions = self.history.get(prop)
        return versions[-1][1] if versions else self.plain.get(prop)


class FakeHubSpot:
    """The in-memory CRM and its API; `app` is what Loopback serves."""

    def __init__(self, *, page_max: int = 3, link_page: int = 2, search_cap: int = 10_000, token: str = TOKEN,
                 scopes: set[str] | None = None, legacy_dates: set[str] = frozenset()):
        self.page_max = page_max
        self.link_page = link_page
        self.search_cap = search_cap
        self.token = token
        self.scopes = set(SCOPE.values()) if scopes is None else set(scopes)
        self.legacy_dates = set(legacy_dates)  # deal ids served with hs_date_entered_* (the older names)
        self.records: dict[str, dict[str, Record]] = {"deals": {}, "contacts": {}}
        self.links: dict[str, list[str]] = {}  # deal id -> contact ids, in association order
        self.daily_limit = 250_000
        self.daily_remaining: int | None = None  # None: no daily limit in play
        self.read_bodies: list[dict] = []  # batch read bodies, to check the properties asked for
        # archived (deleted) records: kind -> id -> (record, archivedAt, the other kind's ids it was associated with)
        self.archived: dict[str, dict[str, tuple[Record, datetime, list[str]]]] = {"deals": {}, "contacts": {}}

    # -- the dataset --------------------------------------------------------------------------------

    def deal(self, deal_id: str, moves: list[tuple[str, str]], *, pipeline: str = "default", contacts: tuple[str, ...] = (),
             **history: list[tuple[str, str]]) -> Record:
        """A deal with its dealstage moves [(instant, stage id)] and other property histories."""
        first = at(moves[0][0])
        record = Record("deals", deal_id, first, {"dealstage": [(at(t), v) for t, v in moves],
                                                  "pipeline": [(first, pipeline)], "hubspot_owner_id": [(first, "7001")]})
        for prop, versions in history.items():
            record.history[prop] = [(at(t), v) for t, v in versions]
        self.records["deals"][deal_id] = record
        for contact in contacts:
            self.link(deal_id, contact, moves[0][0])
        return record

    def contact(self, contact_id: str, lifecycle: list[tuple[str, str]], *, plain: dict[str, str] | None = None,
                **history: list[tuple[str, str]]) -> Record:
        """A contact with its lifecyclestage history [(instant, internal value)] and other histories."""
        created = at(lifecycle[0][0]) if lifecycle else at(min(t for v in history.values() for t, _ in v))
        record = Record("contacts", contact_id, created, {"lifecyclestage": [(at(t), v) for t, v in lifecycle]} if lifecycle else {},
                        dict(plain or {}))
        for prop, versions in history.items():
            record.history[prop] = [(at(t), v) for t, v in versions]
        self.records["contacts"][contact_id] = record
        return record

    def set(self, kind: str, record_id: str, prop: str, when: str, value: str) -> None:
        """A new value of a property at `when` (a stage move, a money change, a reason)."""
        self.records[kind][record_id].history.setdefault(prop, []).append((at(when), value))

    def link(self, deal_id: str, contact_id: str, when: str) -> None:
        """Associate a deal with a contact at `when` (both records count as changed then)."""
        self.links.setdefault(deal_id, [])
        if contact_id not in self.links[deal_id]:
            self.links[deal_id].append(contact_id)
        for kind, rid in (("deals", deal_id), ("contacts", contact_id)):
            record = self.records[kind].get(rid)
            if record is not None:
                record.touched = max([t for t in (record.touched, at(when)) if t])

    def unlink(self, deal_id: str, contact_id: str, when: str, *, changed: tuple[str, ...] = ("deals", "contacts")) -> None:
        """Remove a deal's association with a contact at `when`; `changed` says which of the two records count as
        changed then (a search filter on the last change finds them)."""
        self.links[deal_id].remove(contact_id)
        for kind, rid in (("deals", deal_id), ("contacts", contact_id)):
            record = self.records[kind].get(rid)
            if record is not None and kind in changed:
                record.touched = max([t for t in (record.touched, at(when)) if t])

    def archive(self, kind: str, record_id: str, when: str) -> None:
        """Delete a record (to the recycling bin): search and batch read no longer see it, nor its associations; the
        archived list shows it with archivedAt and the associations it had. Its associated records are not changed."""
        record = self.records[kind].pop(record_id)
        other = self.associated(kind, record_id)
        if kind == "deals":
            self.links.pop(record_id, None)
        else:
            for contacts in self.links.values():
                if record_id in contacts:
                    contacts.remove(record_id)
        self.archived[kind][record_id] = (record, at(when), other)

    def merge(self, kind: str, loser: str, survivor: str, when: str) -> None:
        """Merge `loser` into `survivor`: the loser is gone (not archived), its associations move to the survivor, which
        lists the loser in hs_merged_object_ids and counts as changed then."""
        gone = self.records[kind].pop(loser)
        keep = self.records[kind][survivor]
        for other in self.associated(kind, loser):
            deal, contact = (loser, other) if kind == "deals" else (other, loser)
            if kind == "deals":
                self.links.pop(loser, None)
                self.link(survivor, contact, when)
            else:
                self.links[deal].remove(loser)
                self.link(deal, survivor, when)
        merged = [i for i in (keep.plain.get("hs_merged_object_ids") or "").split(";") if i] + [loser]
        merged += [i for i in (gone.plain.get("hs_merged_object_ids") or "").split(";") if i]
        keep.plain["hs_merged_object_ids"] = ";".join(merged)
        keep.touched = max([t for t in (keep.touched, at(when)) if t])

    def associated(self, kind: str, record_id: str) -> list[str]:
        if kind == "deals":
            return list(self.links.get(record_id, []))
        return [d for d, contacts in self.links.items() if record_id in contacts]

    def label_of(self, stage_id: str) -> str:
        return next(label for p in PIPELINES for sid, label in p["stages"] if sid == stage_id)

    # -- the API ----------------------------------------------------------------------------------

    def app(self, request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 "
                               "authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
        if self.daily_remaining is not None:
            if self.daily_remaining <= 0:
                return Reply(429, {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
                                   "correlationId": str(uuid.uuid4()), "policyName": "DAILY", "requestId": uuid.uuid4().hex},
                             self._limits())
            self.daily_remaining -= 1
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and parts == ["crm", "v3", "pipelines", "deals"]:
            return self._scoped(["deals"]) or Reply(200, self._pipelines(), self._limits())
        if request.method == "GET" and len(parts) == 4 and parts[:3] == ["crm", "v3", "objects"] and parts[3] in MODIFIED:
            return self._scoped([parts[3]]) or self._list(parts[3], request)
        if request.method == "POST" and len(parts) == 5 and parts[:3] == ["crm", "v3", "objects"] and parts[3] in MODIFIED:
            kind = parts[3]
            if parts[4] == "search":
                return self._scoped([kind]) or self._search(kind, request.json())
        if (request.method == "POST" and len(parts) == 6 and parts[:3] == ["crm", "v3", "objects"] and parts[3] in MODIFIED
                and parts[4:] == ["batch", "read"]):
            return self._scoped([parts[3]]) or self._batch_read(parts[3], request.json())
        if (request.method == "POST" and len(parts) == 7 and parts[:3] == ["crm", "v4", "associations"]
                and (parts[3], parts[4]) in TYPE_ID and parts[5:] == ["batch", "read"]):
            return self._scoped([parts[3], parts[4]]) or self._associations(parts[3], parts[4], request.json())
        return self._error(404, "OBJECT_NOT_FOUND", f"No route for {request.method} {request.path}")

    def _limits(self) -> dict[str, str]:
        headers = {"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "189",
                   "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
        if self.daily_remaining is not None:
            headers.update({"X-HubSpot-RateLimit-Daily": str(self.daily_limit),
                            "X-HubSpot-RateLimit-Daily-Remaining": str(max(self.daily_remaining, 0))})
        return headers

    def _error(self, status: int, category: str, message: str, **more) -> Reply:
        return Reply(status, {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **more},
                     self._limits())

    def _scoped(self, kinds: list[str]) -> Reply | None:
        missing = [SCOPE[k] for k in kinds if SCOPE[k] not in self.scopes]
        if not missing:
            return None
        return self._error(403, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call. "
                           "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                           errors=[{"message": "One or more of the following scopes are required.",
                                    "context": {"requiredGranularScopes": missing}}],
                           links={"scopes": "https://developers.hubspot.com/scopes"})

    def _pipelines(self) -> dict:
        stamp = "2024-01-02T09:00:00.000Z"
        return {"results": [
            {"id": p["id"], "label": p["label"], "displayOrder": p["displayOrder"], "archived": False, "createdAt": stamp,
             "updatedAt": stamp, "stages": [
                 {"id": sid, "label": label, "displayOrder": n, "archived": False, "createdAt": stamp, "updatedAt": stamp,
                  "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                  "metadata": {"isClosed": str(label.startswith("Closed")).lower(),
                               "probability": "1.0" if label == "Closed Won" else "0.0" if label == "Closed Lost" else "0.5"}}
                 for n, (sid, label) in enumerate(p["stages"])]}
            for p in PIPELINES]}

    def _search(self, kind: str, body: dict) -> Reply:
        limit = int(body.get("limit") or 10)
        offset = int(body.get("after") or 0)
        if limit > 200:
            return self._error(400, "VALIDATION_ERROR", "limit must be at most 200")
        if offset + min(limit, self.page_max) > self.search_cap:
            return self._error(400, "VALIDATION_ERROR", f"There was a problem with the request: the search cannot page past "
                               f"{self.search_cap} results.")
        records = list(self.records[kind].values())
        for group in body.get("filterGroups") or []:  # one group in these tests; several would be OR-ed
            for f in group.get("filters") or []:
                if f.get("propertyName") != MODIFIED[kind] or f.get("operator") not in ("GTE", "GT"):
                    return self._error(400, "VALIDATION_ERROR", f"the fake filters only on {MODIFIED[kind]} GTE/GT")
                bound = _instant(f["value"])
                records = [r for r in records if (r.modified >= bound if f["operator"] == "GTE" else r.modified > bound)]
        sorts = body.get("sorts") or []
        descending = bool(sorts) and sorts[0].get("direction") == "DESCENDING"
        records.sort(key=lambda r: (r.modified, r.id), reverse=descending)
        page = records[offset:offset + min(limit, self.page_max)]
        wanted = [p for p in body.get("properties") or [] if p != MODIFIED[kind]]
        results = [{"id": r.id, "properties": {"createdate": iso(r.created), "hs_object_id": r.id, MODIFIED[kind]: iso(r.modified),
                                               **{p: r.current(p) for p in wanted}},
                    "createdAt": iso(r.created), "updatedAt": iso(r.modified), "archived": False} for r in page]
        answer: dict = {"total": len(records), "results": results}
        if offset + len(page) < len(records):
            nxt = str(offset + len(page))
            answer["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return Reply(200, answer, self._limits())

    def _list(self, kind: str, request) -> Reply:
        """GET /crm/v3/objects/<kind>: only the archived list is served (archived=true), `after` paging, associations."""
        if request.arg("archived") != "true":
            return self._error(400, "VALIDATION_ERROR", "the fake lists archived records only")
        limit = min(int(request.arg("limit") or 10), self.page_max)
        offset = int(request.arg("after") or 0)
        wanted = request.arg("associations")
        archived = sorted(self.archived[kind].items(), key=lambda item: (item[1][1], item[0]))
        results = []
        for rid, (record, when, other) in archived[offset:offset + limit]:
            item = {"id": rid, "properties": {"createdate": iso(record.created), "hs_object_id": rid,
                                              MODIFIED[kind]: iso(max(record.modified, when))},
                    "createdAt": iso(record.created), "updatedAt": iso(max(record.modified, when)), "archived": True,
                    "archivedAt": iso(when)}
            if wanted and other:
                item["associations"] = {wanted: {"results": [{"id": o, "type": f"{kind[:-1]}_to_{wanted[:-1]}"} for o in other]}}
            results.append(item)
        answer: dict = {"results": results}
        if offset + limit < len(archived):
            answer["paging"] = {"next": {"after": str(offset + limit), "link": f"?after={offset + limit}"}}
        return Reply(200, answer, self._limits())

    def _dates(self, record: Record) -> dict[str, str]:
        """hs_v2_date_entered/exited_<stage> (or the older hs_date_* for legacy records): the last entry into each stage."""
        prefix = "hs_date_" if record.id in self.legacy_dates else "hs_v2_date_"
        moves = record.history.get("dealstage", [])
        dates: dict[str, str] = {}
        for n, (when, stage) in enumerate(moves):
            dates[f"{prefix}entered_{stage}"] = iso(when)
            if n + 1 < len(moves):
                dates[f"{prefix}exited_{stage}"] = iso(moves[n + 1][0])
        return dates

    def _batch_read(self, kind: str, body: dict) -> Reply:
        self.read_bodies.append(body)
        inputs = body.get("inputs") or []
        if len(inputs) > 100:
            return self._error(400, "VALIDATION_ERROR", "at most 100 inputs per batch")
        if body.get("propertiesWithHistory") and len(inputs) > 50:
            return self._error(400, "VALIDATION_ERROR", "at most 50 inputs per batch with propertiesWithHistory")
        results, missing = [], []
        for item in inputs:
            record = self.records[kind].get(str(item.get("id")))
            if record is None:
                missing.append(str(item.get("id")))
                continue
            dates = self._dates(record) if kind == "deals" else {}
            values = {p: dates.get(p, record.current(p)) for p in body.get("properties") or []}  # unset: null
            values.update({"createdate": iso(record.created), "hs_object_id": record.id, MODIFIED[kind]: iso(record.modified)})
            obj = {"id": record.id, "properties": values, "createdAt": iso(record.created), "updatedAt": iso(record.modified),
                   "archived": False}
            history = {p: [{"value": v, "timestamp": iso(t), "sourceType": "CRM_UI", "sourceId": "userId:7001", "updatedByUserId": 7001}
                           for t, v in reversed(record.history[p])]
                       for p in body.get("propertiesWithHistory") or [] if record.history.get(p)}
            if body.get("propertiesWithHistory"):
                obj["propertiesWithHistory"] = history
            results.append(obj)
        answer = {"status": "COMPLETE", "results": results, "startedAt": "2025-06-01T00:00:00.000Z",
                  "completedAt": "2025-06-01T00:00:00.100Z"}
        if missing:
            answer.update(numErrors=1, errors=[{"status": "error", "category": "OBJECT_NOT_FOUND", "message":
                          f"Could not get some {kind[:-1].upper()} objects, they may be deleted or not exist.",
                          "context": {"ids": missing}}])
            return Reply(207, answer, self._limits())
        return Reply(200, answer, self._limits())

    def _associations(self, start: str, other: str, body: dict) -> Reply:
        results, lonely = [], []
        for item in body.get("inputs") or []:
            rid = str(item.get("id"))
            linked = self.associated(start, rid)
            if not linked:
                lonely.append(rid)
                continue
            offset = int(item.get("after") or 0)
            chunk = linked[offset:offset + self.link_page]
            entry: dict = {"from": {"id": rid}, "to": [
                {"toObjectId": int(o), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": TYPE_ID[(start, other)], "label": None}]}
                for o in chunk]}
            if offset + len(chunk) < len(linked):
                entry["paging"] = {"next": {"after": str(offset + len(chunk)), "link": None}}
            results.append(entry)
        answer: dict = {"status": "COMPLETE", "results": results, "startedAt": "2025-06-01T00:00:00.000Z",
                        "completedAt": "2025-06-01T00:00:00.100Z"}
        if lonely:
            answer.update(numErrors=len(lonely), errors=[
                {"status": "error", "category": "VALIDATION_ERROR", "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                 "context": {"fromObjectId": [rid]}, "message": f"No {other} is associated with {start[:-1]} {rid}."} for rid in lonely])
            return Reply(207, answer, self._limits())
        return Reply(200, answer, self._limits())


def sample() -> FakeHubSpot:
    """The dataset the tests start from: two pipelines, ten deals, nine contacts, money and reason histories.

    Deals 9001 and 9003 share contact 501 (the earlier deal, 9001, continues its journey); 9002 lists
    503 before 502, and 503 has no stage history; 9004 has no contact; 9005 and 9008 are served with the
    older hs_date_entered_* names; 9006-9008 are in the partner pipeline; several deals share one change
    instant (2025-02-20T12:00) so a search page holds only ties.
    """
    fake = FakeHubSpot(legacy_dates={"9005", "9008"})
    fake.contact("501", [("2025-01-02T09:00", "lead"), ("2025-01-05T10:00", "marketingqualifiedlead"),
                         ("2025-01-09T11:00", "salesqualifiedlead")],
                 plain={"jobtitle": "Head of Operations", "hs_buying_role": "DECISION_MAKER"})
    fake.contact("502", [("2025-01-03T09:00", "subscriber"), ("2025-01-08T15:30", "lead")])
    fake.contact("503", [], hubspot_owner_id=[("2025-01-03T09:30", "7002")])
    fake.contact("504", [("2025-01-04T08:00", "lead")], hs_lead_status=[("2025-01-06T08:00", "NEW"), ("2025-01-12T08:00", "UNQUALIFIED")],
                 hs_lead_disqualification_reason=[("2025-01-12T08:00", "No budget")])
    fake.contact("505", [("2025-01-06T12:00", "lead"), ("2025-01-10T12:00", "marketingqualifiedlead")])
    fake.contact("506", [("2025-01-07T12:00", "subscriber")])
    fake.contact("507", [("2025-01-11T12:00", "lead"), ("2025-01-14T12:00", "salesqualifiedlead"), ("2025-01-30T12:00", "customer")])
    fake.contact("508", [("2025-01-13T12:00", "lead")])
    fake.contact("509", [("2025-01-15T12:00", "lead")])

    fake.deal("9001", [("2025-01-10T09:00", "appointmentscheduled"), ("2025-01-15T10:00", "qualifiedtobuy"),
                       ("2025-01-25T16:00", "contractsent")], contacts=("501",),
              amount=[("2025-01-10T09:00", "12000"), ("2025-01-20T09:00", "15000")],
              closedate=[("2025-01-10T09:00", "2025-03-31T00:00:00.000Z")], deal_currency_code=[("2025-01-10T09:00", "EUR")])
    fake.deal("9002", [("2025-01-12T09:00", "appointmentscheduled"), ("2025-01-18T09:00", "closedlost")], contacts=("503", "502"),
              closed_lost_reason=[("2025-01-18T09:00", "Chose a competitor")], amount=[("2025-01-12T09:00", "8000")])
    fake.deal("9003", [("2025-02-01T09:00", "appointmentscheduled"), ("2025-02-03T09:00", "presentationscheduled")], contacts=("501",))
    fake.deal("9004", [("2025-01-20T10:00", "appointmentscheduled"), ("2025-01-22T10:00", "qualifiedtobuy"),
                       ("2025-01-28T10:00", "closedwon")],
              amount=[("2025-01-20T10:00", "5000"), ("2025-01-26T10:00", "5500")],
              hs_manual_forecast_category=[("2025-01-20T10:00", "PIPELINE"), ("2025-01-26T10:00", "COMMIT")])
    fake.deal("9005", [("2025-01-21T10:00", "appointmentscheduled"), ("2025-02-20T12:00", "qualifiedtobuy")], contacts=("505",))
    fake.deal("9006", [("2025-01-22T10:00", "152118301"), ("2025-02-20T12:00", "152118302")], pipeline="2847561", contacts=("507",))
    fake.deal("9007", [("2025-01-23T10:00", "152118301"), ("2025-02-20T12:00", "152118304")], pipeline="2847561",
              contacts=("506", "508"), closed_lost_reason=[("2025-02-20T12:00", "Timing")])
    fake.deal("9008", [("2025-01-24T10:00", "152118301"), ("2025-02-20T12:00", "152118303")], pipeline="2847561")
    fake.deal("9009", [("2025-02-05T10:00", "appointmentscheduled"), ("2025-02-10T10:00", "closedlost"),
                       ("2025-02-14T10:00", "appointmentscheduled")], contacts=("504",),
              closed_lost_reason=[("2025-02-10T10:00", "No budget"), ("2025-02-14T10:00", "")])
    fake.deal("9010", [("2025-02-06T10:00", "appointmentscheduled")], contacts=("509", "501"))
    return fake


def change(fake: FakeHubSpot) -> None:
    """What happens in the CRM between two pulls: new records, stage moves, money changes, a new association."""
    fake.contact("510", [("2025-03-02T09:00", "lead"), ("2025-03-04T09:00", "marketingqualifiedlead")])
    fake.deal("9011", [("2025-03-05T09:00", "appointmentscheduled")], contacts=("510",), amount=[("2025-03-05T09:00", "7000")])
    fake.deal("9012", [("2025-03-06T09:00", "appointmentscheduled")], contacts=("501",))  # 501 already continues 9001
    fake.set("deals", "9004", "dealstage", "2025-03-07T10:00", "closedlost")  # won, then lost
    fake.set("deals", "9004", "closed_lost_reason", "2025-03-07T10:00", "Churned")
    fake.set("deals", "9001", "amount", "2025-03-08T09:00", "16000")  # money after the last move
    fake.set("deals", "9001", "deal_currency_code", "2025-03-08T09:00", "USD")
    fake.set("contacts", "502", "lifecyclestage", "2025-03-09T09:00", "customer")
    fake.set("deals", "9003", "dealstage", "2025-03-10T09:00", "closedwon")
    fake.set("deals", "9004", "hubspot_owner_id", "2025-03-10T10:00", "7002")  # a new owner: an attribute of all its events
