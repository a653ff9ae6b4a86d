"""`funnelboard pull hubspot`: changed deals and contacts with their whole property history.

A private app's token (`FUNNELBOARD_HUBSPOT_TOKEN`, or a file named by `..._TOKEN_FILE`) is sent as
a Bearer header. A pull asks HubSpot's CRM API for:

* the deal pipelines (GET /crm/v3/pipelines/deals), written as they came: the stage id -> label map;
* the records changed at or after the object's mark (POST /crm/v3/objects/<object>/search, oldest
  change first). Each page starts the search again at the last change time seen (keyset paging), so
  a record edited during the pull moves behind the cursor instead of shifting the pages, and no query
  nears the search API's 10,000-result cap; `after` pages only through records changed at one instant;
* for each changed record, its associations and, through them, every deal and contact whose journey
  the adapter's translation ties to it (a deal continues its first associated contact's journey, a
  contact takes its earliest deal): POST /crm/v4/associations/<from>/<to>/batch/read; and the records
  earlier pulls tied it to (`PullRequest.tied`: a deal under its contact's journey, a contact whose buyer
  values a journey takes), even when HubSpot no longer associates them, so a deal that leaves its
  contact is written as a journey of its own and the contact's journey without it;
* the whole history of every property the adapter reads (POST /crm/v3/objects/<object>/batch/read with
  propertiesWithHistory): the stage, reason and money properties and the configured attributes, and
  the date-entered/exited properties of every stage under both names HubSpot has used
  (hs_v2_date_entered_<id> and the older hs_date_entered_<id>), kept as they came.

Deletions: the search never returns archived (deleted) records, so a pull also lists each object's archived
records (GET /crm/v3/objects/<object>?archived=true, with their associations) and removes the journeys of those
archived at or after the mark (`archivedAt`); the records whose journeys held them are re-fetched and written
without them. A merge leaves the survivor's `hs_merged_object_ids`: the merged-away ids' journeys are removed.

The files are the JSON the HubSpot adapter reads (etl/sources/hubspot.py): the pipelines, the deals
and contacts as batch read returned them, the deal-to-contact associations as the v4 batch read
returned them. A page's records and everything tied to them are kept only once all of it arrived, so
a daily quota stopping the pull leaves whole records and a mark at the last whole page.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from funnelboard.core.errors import UserError
from funnelboard.etl.pull.base import Pulled, PullRequest, QuotaReached, iso_utc, parse_instant
from funnelboard.etl.pull.http import Api
from funnelboard.etl.pull.secrets import secret, setting
from funnelboard.etl.sources.hubspot import (
    BUYING_ROLE_PROPERTY,
    CONTACT_PROPERTIES,
    DEAL_PROPERTIES,
    DEFAULT_ATTRIBUTES,
    DEFAULT_PROPERTIES,
    DEFAULT_REASONS,
    DEFAULT_RESPONSE_PROPERTIES,
    MONEY_PROPERTIES,
    TITLE_PROPERTY,
)

CRM = "hubspot"
BASE_URL = "https://api.hubapi.com"
OBJECTS = ("deals", "contacts")
OTHER = {"deals": "contacts", "contacts": "deals"}
# The property holding each object's last change: what the search filters and sorts on.
MODIFIED = {"deals": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}
SCOPES = {"deals": "crm.objects.deals.read", "contacts": "crm.objects.contacts.read"}
SEARCH_LIMIT = 100  # records per search page
LIST_LIMIT = 100  # archived records per list page
MERGED = "hs_merged_object_ids"  # the survivor of a merge lists the merged-away ids, separated by semicolons
SEARCH_CAP = 10_000  # results one search query can page through
READ_BATCH = 50  # records per batch read with propertiesWithHistory
LINK_BATCH = 100  # records per associations batch read
FILE_RECORDS = 5_000  # records per written file
# The search index trails the records by seconds: a mark never passes the pull's start less this,
# so a change the index had not seen yet is searched again next time (re-fetched records are exact
# duplicates the loader collapses).
INDEX_LAG = timedelta(minutes=1)
_NAME = re.compile(r"[a-z0-9_]+")  # HubSpot internal names are lower case; the adapter's options also allow UI labels


def fetch(request: PullRequest) -> Pulled:
    """Fetch the deals and contacts changed since their marks, write them as HubSpot JSON exports."""
    token = secret(CRM, "token", what="private app access token")
    objects = _objects_setting()
    api = Api(
        "HubSpot",
        setting(CRM, "url", BASE_URL),
        headers={"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"},
        secrets=[token],
        scope=_missing_scope,
        quota=_daily_quota,
        progress=request.progress,
    )
    pull = _Pull(api, request, objects)
    stopped = None
    try:
        pull.run()
    except QuotaReached as exc:
        stopped = str(exc)
    return Pulled(pull.write(request.out), pull.final_marks(), pull.counts(), stopped=stopped, removed=pull.removed())


def _objects_setting() -> tuple[str, ...]:
    text = setting(CRM, "objects", ",".join(OBJECTS)) or ""
    chosen = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    if "deals" not in chosen or set(chosen) - set(OBJECTS):
        raise UserError(f"FUNNELBOARD_HUBSPOT_OBJECTS is '{text}': expected 'deals' or 'deals,contacts'.")
    return tuple(o for o in OBJECTS if o in chosen)


def _missing_scope(status: int, path: str) -> str:
    """The sentence a 401/403 ends with: what to fix, naming the private app's scope the path needs."""
    if status == 401:
        return ("the private app access token is invalid, expired or rotated: set FUNNELBOARD_HUBSPOT_TOKEN (or "
                "FUNNELBOARD_HUBSPOT_TOKEN_FILE) to the app's current token.")
    if "/associations/" in path:
        needed = [SCOPES["deals"], SCOPES["contacts"]]
    elif "/contacts" in path:
        needed = [SCOPES["contacts"]]
    else:  # deals, and the deal pipelines
        needed = [SCOPES["deals"]]
    return (f"the private app lacks the {' and '.join(needed)} scope{'s' if len(needed) > 1 else ''}: add "
            f"{'them' if len(needed) > 1 else 'it'} to the private app's scopes in HubSpot and pull again.")


def _daily_quota(response) -> str | None:
    """A sentence when a 429 is the daily limit (policyName DAILY, or no daily calls left), else None (a burst)."""
    if response.status_code != 429:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    policy = str(body.get("policyName") or "").upper() if isinstance(body, dict) else ""
    remaining = (response.headers.get("X-HubSpot-RateLimit-Daily-Remaining") or "").strip()
    if policy != "DAILY" and remaining != "0":
        return None
    limit = (response.headers.get("X-HubSpot-RateLimit-Daily") or "").strip()
    size = f" of {int(limit):,} calls" if limit.isdigit() else ""
    return f"HubSpot's daily API limit{size} is used up; it resets at midnight in the HubSpot account's time zone."


def _names(options: dict, key: str, default: tuple[str, ...]) -> list[str]:
    value = options.get(key, list(default))
    values = [value] if isinstance(value, str) else value if isinstance(value, (list, tuple)) else []
    return [v.strip() for v in values if isinstance(v, str) and _NAME.fullmatch(v.strip())]


def _wanted(options: dict) -> dict[str, list[str]]:
    """Object -> the properties whose history the adapter reads (with [source.hubspot] applied)."""
    stages = _names(options, "properties", DEFAULT_PROPERTIES)
    reasons = _names(options, "reason_properties", DEFAULT_REASONS)
    attributes = options.get("attributes", DEFAULT_ATTRIBUTES)
    attrs: list[str] = []
    if isinstance(attributes, dict):
        for candidates in attributes.values():
            attrs += _names({"a": candidates}, "a", ())
    read = list(dict.fromkeys([*stages, *reasons, *attrs]))
    deals = ["dealstage", *[p for p in read if p not in CONTACT_PROPERTIES], *MONEY_PROPERTIES]
    contacts = ["lifecyclestage", *[p for p in read if p not in DEAL_PROPERTIES]]
    return {"deals": list(dict.fromkeys(deals)), "contacts": list(dict.fromkeys(contacts))}


def _after(page: dict) -> str | None:
    after = ((page.get("paging") or {}).get("next") or {}).get("after") if isinstance(page, dict) else None
    return None if after in (None, "") else str(after)


class _Pull:
    """One pull's state: what is complete (records, associations), the marks, the pipelines."""

    def __init__(self, api: Api, request: PullRequest, objects: tuple[str, ...]):
        self.api = api
        self.request = request
        self.objects = objects
        self.note = request.progress.note
        self.started = datetime.now(timezone.utc)
        self.history = _wanted(request.options)
        buyer = [*_names(request.options, "first_response_properties", DEFAULT_RESPONSE_PROPERTIES),
                 TITLE_PROPERTY, BUYING_ROLE_PROPERTY]
        self.plain = {"deals": [], "contacts": list(dict.fromkeys(buyer))}
        self.pipelines: dict | None = None
        self.records: dict[str, dict[str, dict]] = {o: {} for o in OBJECTS}  # object -> id -> record as read
        self.changed_at: dict[str, dict[str, datetime]] = {o: {} for o in OBJECTS}  # its change time as read
        self.links: dict[str, dict[str, list]] = {o: {} for o in OBJECTS}  # object -> id -> v4 `to` entries
        self.marks: dict[str, datetime] = {}
        self.archived: set[str] = set()  # journey ids (deal:<id>, contact:<id>) of records archived since the marks

    # -- the pull -----------------------------------------------------------------------------------

    def run(self) -> None:
        self.pipelines = self.api.get("/crm/v3/pipelines/deals")
        stage_ids = [str(s.get("id")) for p in (self.pipelines or {}).get("results") or [] for s in p.get("stages") or []
                     if isinstance(s, dict) and s.get("id") is not None]
        self.note(f"hubspot: {len(stage_ids)} deal stage(s) in {len((self.pipelines or {}).get('results') or [])} pipeline(s)")
        dated = [f"{prefix}{kind}_{sid}" for sid in stage_ids for prefix in ("hs_v2_date_", "hs_date_") for kind in ("entered", "exited")]
        self.plain["deals"] = [*self.history["deals"], *dated]
        self.plain["contacts"] = list(dict.fromkeys([*self.history["contacts"], *self.plain["contacts"], MERGED]))
        self.plain["deals"].append(MERGED)
        for obj in self.objects:
            self.changes(obj)
        for obj in self.objects:
            self.deleted(obj)

    def deleted(self, obj: str) -> None:
        """The records of `obj` archived at or after its start: their journeys go; the live records associated with
        them (as the archived list still shows) are re-fetched, so a contact's journey drops an archived deal."""
        start = self.request.start(obj)
        bound = parse_instant(start) if start else None
        after: str | None = None
        tied: list[str] = []
        while True:
            params = {"archived": "true", "limit": str(LIST_LIMIT), "properties": MODIFIED[obj]}
            if "contacts" in self.objects:
                params["associations"] = OTHER[obj]
            if after is not None:
                params["after"] = after
            page = self.api.get(f"/crm/v3/objects/{obj}", params=params)
            for record in page.get("results") or []:
                if not isinstance(record, dict) or record.get("id") is None:
                    continue
                when = record.get("archivedAt")
                if bound is not None and when and parse_instant(str(when)) < bound:
                    continue
                self.archived.add(f"{obj[:-1]}:{record['id']}")
                links = ((record.get("associations") or {}).get(OTHER[obj]) or {}).get("results") or []
                tied += [str(link["id"]) for link in links if isinstance(link, dict) and link.get("id") is not None]
            after = _after(page)
            if after is None:
                break
        other = OTHER[obj]
        again = [i for i in dict.fromkeys(tied) if f"{other[:-1]}:{i}" not in self.archived]
        if again and other in self.objects:
            self.note(f"hubspot: {len(again)} {other} tied to archived {obj}: re-reading them")
            self.complete(other, [(i, self.started) for i in again], mark=False)

    def changes(self, obj: str) -> None:
        """Page through the records of `obj` changed at or after its start, oldest change first."""
        start = self.request.start(obj)
        cursor = parse_instant(start) if start else None
        seen: dict[str, datetime] = {}  # id -> the change time it was fetched at in this search
        after: str | None = None
        pages = found = 0
        while True:
            page = self.api.post(f"/crm/v3/objects/{obj}/search", json=self._search_body(obj, cursor, after))
            pages += 1
            results = [r for r in page.get("results") or [] if isinstance(r, dict) and r.get("id") is not None]
            stamped = [(str(r["id"]), self._changed(obj, r)) for r in results]
            fresh = [(i, at) for i, at in stamped if seen.get(i) != at]
            self.complete(obj, fresh)
            for i, at in fresh:
                seen[i] = at
            found += len(fresh)
            self.note(f"hubspot: {obj} search page {pages}: {len(fresh)} changed record(s), {found} so far")
            following = _after(page)
            if following is None or not stamped:
                break
            last = max(at for _, at in stamped)
            if cursor is None or last > cursor:
                cursor, after = last, None  # start again at the last change seen: nothing shifts under the cursor
            else:  # a whole page changed at one instant: page on through that instant
                if int(following) >= SEARCH_CAP:
                    raise UserError(
                        f"more than {SEARCH_CAP:,} HubSpot {obj} changed at the same instant ({iso_utc(cursor)}), more than "
                        "one search can page through: pull again with --since after that instant, or export them by hand."
                    )
                after = following

    def complete(self, obj: str, fresh: list[tuple[str, datetime]], *, mark: bool = True) -> None:
        """Fetch a page's changed records and every record tied to them; keep them only when all arrived."""
        want = {o: [] for o in OBJECTS}
        want[obj] = [i for i, at in fresh if self.changed_at[obj].get(i, datetime.min.replace(tzinfo=timezone.utc)) < at]
        records: dict[str, dict[str, dict]] = {o: {} for o in OBJECTS}
        links: dict[str, dict[str, list]] = {o: {} for o in OBJECTS}
        while any(want.values()):
            for o in OBJECTS:
                if want[o]:
                    if "contacts" in self.objects:
                        links[o].update(self._associations(o, want[o]))
                    records[o].update(self._read(o, want[o]))
            following = {o: [] for o in OBJECTS}
            for o in OBJECTS:
                other = OTHER[o]
                for i in want[o]:
                    for j in (str(to.get("toObjectId")) for to in links[o].get(i, [])):
                        if j not in self.records[other] and j not in records[other] and j not in following[other]:
                            following[other].append(j)
            for kind, j in self.tied(want):
                if kind in self.objects and j not in self.records[kind] and j not in records[kind] and j not in following[kind]:
                    following[kind].append(j)
            want = following
        for o in OBJECTS:
            for i, record in records[o].items():
                self.records[o].pop(i, None)  # a newer copy goes to the end: the order records were read in
                self.records[o][i] = record
                self.changed_at[o][i] = self._changed(o, record)
            self.links[o].update(links[o])
        if fresh and mark:
            top = max(at for _, at in fresh)
            self.marks[obj] = max(self.marks.get(obj, top), top)
        related = {o: len(records[o]) for o in OBJECTS}
        if any(related.values()):
            self.note(f"hubspot: read {related['deals']} deal(s), {related['contacts']} contact(s) with their history")

    def tied(self, want: dict[str, list[str]]) -> list[tuple[str, str]]:
        """(object, id) of the records an earlier pull tied to those in `want` (PullRequest.tied: a deal under its
        contact's journey, a contact whose values a journey takes): fetched with them even when HubSpot no longer
        associates them, so the journey each one leaves is rewritten without it."""
        asked = {f"{o[:-1]}:{i}" for o in OBJECTS for i in want[o]}  # deal:<id>, contact:<id>
        found = []
        for pair in self.request.tied(sorted(asked)):
            for oid in pair:
                kind, _, rid = oid.partition(":")
                if oid not in asked and f"{kind}s" in OBJECTS:
                    found.append((f"{kind}s", rid))
        return found

    # -- requests ----------------------------------------------------------------------------------

    def _search_body(self, obj: str, cursor: datetime | None, after: str | None) -> dict:
        prop = MODIFIED[obj]
        limit = min(SEARCH_LIMIT, SEARCH_CAP - int(after or 0))  # a query never asks past the cap
        body: dict = {"sorts": [{"propertyName": prop, "direction": "ASCENDING"}], "properties": [prop], "limit": limit}
        if cursor is not None:
            millis = str(int(cursor.timestamp() * 1000))
            body["filterGroups"] = [{"filters": [{"propertyName": prop, "operator": "GTE", "value": millis}]}]
        if after is not None:
            body["after"] = after
        return body

    def _read(self, obj: str, ids: list[str]) -> dict[str, dict]:
        """id -> the record with the history of every property the adapter reads (deleted ids are absent)."""
        found: dict[str, dict] = {}
        for chunk in _chunks(ids, READ_BATCH):
            page = self.api.post(f"/crm/v3/objects/{obj}/batch/read", json={
                "inputs": [{"id": i} for i in chunk],
                "properties": [MODIFIED[obj], *self.plain[obj]],
                "propertiesWithHistory": self.history[obj],
            })
            by_id = {str(r["id"]): r for r in page.get("results") or [] if isinstance(r, dict) and r.get("id") is not None}
            found.update({i: by_id[i] for i in chunk if i in by_id})
        return found

    def _associations(self, obj: str, ids: list[str]) -> dict[str, list]:
        """id -> the v4 `to` entries of its associations with the other object, in HubSpot's order, every page."""
        path = f"/crm/v4/associations/{obj}/{OTHER[obj]}/batch/read"
        found: dict[str, list] = {i: [] for i in ids}
        for chunk in _chunks(ids, LINK_BATCH):
            inputs = [{"id": i} for i in chunk]
            while inputs:
                page = self.api.post(path, json={"inputs": inputs})
                inputs = []
                for item in page.get("results") or []:
                    start = str(((item or {}).get("from") or {}).get("id"))
                    if start not in found:
                        continue
                    found[start] += [to for to in item.get("to") or [] if isinstance(to, dict) and to.get("toObjectId") is not None]
                    if (more := _after(item)) is not None:
                        inputs.append({"id": start, "after": more})
        return found

    def _changed(self, obj: str, record: dict) -> datetime:
        value = (record.get("properties") or {}).get(MODIFIED[obj]) or record.get("updatedAt")
        if not value:
            raise UserError(f"HubSpot answered a {obj[:-1]} ({record.get('id')}) without {MODIFIED[obj]} or updatedAt.")
        text = str(value).strip()
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
        return parse_instant(text)

    # -- results -----------------------------------------------------------------------------------

    def final_marks(self) -> dict[str, str]:
        ceiling = self.started - INDEX_LAG
        return {obj: iso_utc(min(at, ceiling)) for obj, at in self.marks.items()}

    def removed(self) -> list[str]:
        """Journey ids gone from HubSpot: archived records, and those merged into a record read (never one read)."""
        gone = set(self.archived)
        for obj in OBJECTS:
            for rid, record in self.records[obj].items():
                merged = str((record.get("properties") or {}).get(MERGED) or "")
                gone.update(f"{obj[:-1]}:{i.strip()}" for i in merged.split(";") if i.strip() and i.strip() != rid)
        kept = {f"{obj[:-1]}:{rid}" for obj in OBJECTS for rid in self.records[obj]}
        return sorted(gone - kept)

    def counts(self) -> dict[str, int]:
        return {o: len(self.records[o]) for o in self.objects}

    def write(self, out: Path) -> list[Path]:
        """The pipelines, the records and the deal-to-contact associations, as the adapter reads them."""
        if not any(self.records.values()) or self.pipelines is None:
            return []
        files = [_write(out / "hubspot-pipelines.json", self.pipelines)]
        for obj in OBJECTS:
            records = list(self.records[obj].values())
            for n, chunk in enumerate(_chunks(records, FILE_RECORDS), 1):
                files.append(_write(out / f"hubspot-{obj}-{n:03d}.json", {"status": "COMPLETE", "results": chunk}))
        items = [{"from": {"id": deal}, "to": to} for deal, to in self.links["deals"].items() if to and deal in self.records["deals"]]
        for n, chunk in enumerate(_chunks(items, FILE_RECORDS), 1):
            files.append(_write(out / f"hubspot-deal-contacts-{n:03d}.json", {"status": "COMPLETE", "results": chunk}))
        return files


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
