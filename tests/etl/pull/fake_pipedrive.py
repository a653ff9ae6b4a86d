"""A small Pipedrive company on loopback: the v2 deals, stages and pipelines lists and the v1 deal flow.

The answers follow Pipedrive's documented shapes: `{"success": true, "data": [...], "additional_data":
{"next_cursor": ...}}` for the v2 lists (an opaque cursor, `updated_since` >= on `update_time` in RFC
3339, `sort_by`/`sort_direction`), `additional_data.pagination` (`start`, `limit`,
`more_items_in_collection`, `next_start`) for the flow, newest item first; `x-api-token` auth with
`{"success": false, "error": "unauthorized access", "errorCode": 401}`; the burst headers
(`x-ratelimit-*`) and the daily token budget header on every answer, and a 429 with the budget at 0
once it is spent (the request that spends the last tokens is still answered). Pages hold at most `page_max` items whatever `limit` asks, as a server may: the
client must follow the cursors and `more_items_in_collection`, never count.

A test edits the company between pulls (`add_deal`, `move`, `win`, `lose`, `change`, `activity`,
`note`, `archive`); each edit is logged in the deal's flow as Pipedrive logs it and moves the deal's
`update_time`. Activities are also listed by `GET /api/v2/activities` (the v2 list, with their own
`update_time`), and `move_activity` / `mark_done` change one without moving any deal's `update_time`:
the case a pull that watched only the deal lists would miss. `GET /api/v2/deals/{id}` answers one deal.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tests.etl.pull.loopback import Reply, Request

STAGES = {1: "Qualified", 2: "Contact Made", 3: "Demo Scheduled", 4: "Proposal Made", 5: "Negotiations Started"}
PIPELINES = {1: "Sales"}
# Token costs from the API reference (x-token-cost): what each answer takes from the daily budget.
COSTS = {"/api/v2/deals": 10, "/api/v2/stages": 5, "/api/v2/pipelines": 5, "/api/v2/activities": 10, "flow": 40, "deal": 1}


def rfc3339(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def flow_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def number(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass
class Deal:
    id: int
    stage_id: int
    created: datetime
    value: float
    currency: str = "EUR"
    owner_id: int = 7
    expected_close_date: str | None = None
    status: str = "open"
    lost_reason: str | None = None
    won_time: datetime | None = None
    lost_time: datetime | None = None
    stage_change_time: datetime | None = None
    update_time: datetime | None = None
    archived: bool = False
    deleted: bool = False
    created_stage: int = 0
    flow: list[dict] = field(default_factory=list)  # oldest first; served newest first

    def listed(self) -> dict:
        """The deal as GET /api/v2/deals lists it."""
        return {
            "id": self.id, "title": f"Deal {self.id}", "creator_user_id": self.owner_id, "owner_id": self.owner_id,
            "person_id": 900 + self.id, "org_id": 800 + self.id, "pipeline_id": 1, "stage_id": self.stage_id,
            "value": self.value, "currency": self.currency, "add_time": rfc3339(self.created),
            "update_time": rfc3339(self.update_time), "stage_change_time": rfc3339(self.stage_change_time) if self.stage_change_time else None,
            "is_deleted": self.deleted, "is_archived": self.archived, "archive_time": rfc3339(self.update_time) if self.archived else None,
            "status": "deleted" if self.deleted else self.status, "probability": None, "lost_reason": self.lost_reason, "visible_to": 3,
            "close_time": rfc3339(self.won_time or self.lost_time) if (self.won_time or self.lost_time) else None,
            "won_time": rfc3339(self.won_time) if self.won_time else None,
            "lost_time": rfc3339(self.lost_time) if self.lost_time else None,
            "expected_close_date": self.expected_close_date, "label_ids": [], "origin": "ManuallyCreated", "origin_id": None,
            "channel": None, "channel_id": None, "acv": None, "arr": None, "mrr": None, "custom_fields": {},
        }


class FakePipedrive:
    def __init__(self, token: str, page_max: int = 3):
        self.token = token
        self.page_max = page_max
        self.deals: dict[int, Deal] = {}
        self.activities: dict[int, dict] = {}  # id -> the flow item's data, as the deal's flow holds it
        self.activity_times: dict[int, datetime] = {}  # id -> its update_time
        self.budget: int | None = None  # tokens left today; None: no daily limit reached in the test
        self._ids = iter(range(5001, 10**6))
        self._lock = threading.Lock()

    # -- editing the company ----------------------------------------------------------------------

    def _change(self, deal: Deal, at: datetime, key: str, old, new, extra: dict | None = None) -> None:
        deal.flow.append({"object": "dealChange", "timestamp": flow_time(at), "data": {
            "id": next(self._ids), "item_id": deal.id, "user_id": deal.owner_id, "field_key": key,
            "old_value": old, "new_value": new, "is_bulk_update_flag": None, "log_time": flow_time(at),
            "change_source": "app", "change_source_user_agent": None, "additional_data": extra or [],
        }})
        deal.update_time = max(deal.update_time or at, at)

    def add_deal(self, deal_id: int, at: datetime, stage: int, value: float, *, currency: str = "EUR",
                 close_date: str | None = None, owner: int = 7) -> Deal:
        with self._lock:
            deal = Deal(deal_id, stage, at, value, currency, owner, close_date, created_stage=stage, update_time=at)
            self.deals[deal_id] = deal
            self._change(deal, at, "add_time", None, flow_time(at))
            return deal

    def move(self, deal_id: int, at: datetime, stage: int) -> None:
        with self._lock:
            deal = self.deals[deal_id]
            self._change(deal, at, "stage_id", str(deal.stage_id), str(stage),
                         {"old_value_formatted": STAGES[deal.stage_id], "new_value_formatted": STAGES[stage]})
            deal.stage_id, deal.stage_change_time = stage, at

    def win(self, deal_id: int, at: datetime) -> None:
        with self._lock:
            deal = self.deals[deal_id]
            self._change(deal, at, "won_time", None, flow_time(at))
            self._change(deal, at, "status", deal.status, "won")
            deal.status, deal.won_time = "won", at

    def lose(self, deal_id: int, at: datetime, reason: str) -> None:
        with self._lock:
            deal = self.deals[deal_id]
            self._change(deal, at, "lost_reason", deal.lost_reason, reason)
            self._change(deal, at, "status", deal.status, "lost")
            deal.status, deal.lost_time, deal.lost_reason = "lost", at, reason

    def change(self, deal_id: int, at: datetime, key: str, new) -> None:
        """A money field: value, expected_close_date or currency."""
        with self._lock:
            deal = self.deals[deal_id]
            attr = {"value": "value", "expected_close_date": "expected_close_date", "currency": "currency"}[key]
            old = getattr(deal, attr)
            shown = number if key == "value" else (lambda v: v)
            self._change(deal, at, key, None if old is None else shown(old), shown(new))
            setattr(deal, attr, new)

    def activity(self, deal_id: int, at: datetime, kind: str, done: bool = True) -> int:
        with self._lock:
            deal = self.deals[deal_id]
            data = {
                "id": next(self._ids), "company_id": 6191422, "user_id": deal.owner_id, "done": done, "type": kind,
                "due_date": at.strftime("%Y-%m-%d"), "due_time": "", "subject": f"{kind} with deal {deal_id}",
                "deal_id": deal_id, "person_id": 900 + deal_id, "add_time": flow_time(at),
                "marked_as_done_time": flow_time(at) if done else "", "type_name": kind.title(), "owner_name": "Mia Chen",
            }
            deal.flow.append({"object": "activity", "timestamp": flow_time(at), "data": data})
            self.activities[data["id"]], self.activity_times[data["id"]] = data, at
            deal.update_time = max(deal.update_time, at)
            return data["id"]

    def move_activity(self, activity_id: int, deal_id: int, at: datetime) -> None:
        """Give an activity to another deal: it leaves one deal's flow for the other's; no deal's update_time moves."""
        with self._lock:
            data = self.activities[activity_id]
            old = self.deals[data["deal_id"]]
            item = next(i for i in old.flow if i["object"] == "activity" and i["data"]["id"] == activity_id)
            old.flow.remove(item)
            self.deals[deal_id].flow.append(item)
            data["deal_id"], data["person_id"] = deal_id, 900 + deal_id
            self.activity_times[activity_id] = at

    def mark_done(self, activity_id: int, at: datetime) -> None:
        """Mark an open activity done; no deal's update_time moves."""
        with self._lock:
            data = self.activities[activity_id]
            data["done"], data["marked_as_done_time"] = True, flow_time(at)
            self.activity_times[activity_id] = at

    def note(self, deal_id: int, at: datetime, text: str) -> None:
        with self._lock:
            deal = self.deals[deal_id]
            deal.flow.append({"object": "note", "timestamp": flow_time(at), "data": {
                "id": next(self._ids), "user_id": deal.owner_id, "deal_id": deal_id, "content": text,
                "add_time": flow_time(at), "update_time": flow_time(at), "active_flag": True}})

    def archive(self, deal_id: int, at: datetime) -> None:
        with self._lock:
            deal = self.deals[deal_id]
            deal.archived, deal.update_time = True, at

    def delete(self, deal_id: int, at: datetime) -> None:
        """Delete a deal: the lists leave it out unless asked for status=deleted (its flow is not asked for)."""
        with self._lock:
            deal = self.deals[deal_id]
            deal.deleted, deal.update_time = True, at

    # -- answering -------------------------------------------------------------------------------

    def __call__(self, request: Request) -> Reply:
        if request.headers.get("x-api-token") != self.token:
            return Reply(401, {"success": False, "error": "unauthorized access", "errorCode": 401,
                               "error_info": "Please check developers.pipedrive.com"})
        path = request.path.rstrip("/")
        parts = path.split("/")
        flow = len(parts) == 5 and parts[1:3] == ["v1", "deals"] and parts[4] == "flow" and parts[3].isdigit()
        one = len(parts) == 5 and parts[1:4] == ["api", "v2", "deals"] and parts[4].isdigit()
        cost = COSTS["flow"] if flow else COSTS["deal"] if one else COSTS.get(path.removesuffix("/archived"))
        if cost is None:
            return Reply(404, {"success": False, "error": f"Unknown method {request.method} {path}", "errorCode": 404})
        with self._lock:
            if self.budget is not None and self.budget <= 0:  # spent: every request is refused until the reset
                return Reply(429, {"success": False, "error": "Daily API token budget exceeded", "errorCode": 429,
                                   "error_info": "Please check developers.pipedrive.com"},
                             {**self._limits(), "Retry-After": "43200"})
            if self.budget is not None:
                self.budget -= cost
            if flow:
                reply = self._flow(int(parts[3]), request)
            elif one:
                deal = self.deals.get(int(parts[4]))
                reply = (Reply(200, {"success": True, "data": deal.listed()}) if deal is not None
                         else Reply(404, {"success": False, "error": "Deal not found", "errorCode": 404}))
            elif path == "/api/v2/activities":
                reply = self._activities(request)
            elif path == "/api/v2/stages":
                reply = self._list([{"id": i, "order_nr": i, "name": n, "is_deleted": False, "deal_probability": 100,
                                     "pipeline_id": 1, "is_deal_rot_enabled": False, "days_to_rotten": None,
                                     "add_time": "2025-01-02T09:00:00Z", "update_time": "2025-01-02T09:00:00Z"}
                                    for i, n in STAGES.items()], request, "id")
            elif path == "/api/v2/pipelines":
                reply = self._list([{"id": i, "name": n, "order_nr": i, "is_selected": i == 1, "is_deleted": False,
                                     "is_deal_probability_enabled": False, "add_time": "2025-01-02T09:00:00Z",
                                     "update_time": "2025-01-02T09:00:00Z"} for i, n in PIPELINES.items()], request, "id")
            else:
                archived = path.endswith("/archived")
                reply = self._deals(request, archived)
        reply.headers.update(self._limits())
        return reply

    def _limits(self) -> dict[str, str]:
        limits = {"x-ratelimit-limit": "40", "x-ratelimit-remaining": "39", "x-ratelimit-reset": "2"}
        if self.budget is not None:
            limits[DAILY] = str(max(self.budget, 0))
        return limits

    def _deals(self, request: Request, archived: bool) -> Reply:
        status = request.arg("status")
        if status not in (None, "deleted"):
            return Reply(400, {"success": False, "error": f"the fake knows status=deleted only, not {status}", "errorCode": 400})
        deals = [d.listed() for d in self.deals.values() if d.archived == archived and d.deleted == (status == "deleted")]
        since = request.arg("updated_since")
        if since is not None:
            try:
                moment = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            except ValueError:
                return Reply(400, {"success": False, "error": "Validation failed: updated_since: must be a valid RFC3339 date",
                                   "errorCode": 400})
            deals = [d for d in deals if d["update_time"] >= rfc3339(moment)]
        sort = request.arg("sort_by", "id")
        if sort not in ("id", "update_time", "add_time"):
            return Reply(400, {"success": False, "error": f"Validation failed: sort_by: invalid value {sort}", "errorCode": 400})
        return self._list(deals, request, sort)

    def _activities(self, request: Request) -> Reply:
        """GET /api/v2/activities: the v2 shape (RFC 3339 times, `is_deleted`), `updated_since` >= on update_time."""
        items = []
        for i, data in self.activities.items():
            done_at = data["marked_as_done_time"]
            items.append({
                "id": i, "subject": data["subject"], "type": data["type"], "owner_id": data["user_id"], "creator_user_id": data["user_id"],
                "is_deleted": False, "add_time": rfc3339(datetime.fromisoformat(data["add_time"])),
                "update_time": rfc3339(self.activity_times[i]), "deal_id": data["deal_id"], "lead_id": None,
                "person_id": data["person_id"], "org_id": None, "project_id": None, "due_date": data["due_date"], "due_time": None,
                "duration": None, "busy": False, "done": data["done"],
                "marked_as_done_time": rfc3339(datetime.fromisoformat(done_at)) if done_at else None,
                "location": None, "participants": [], "attendees": [], "public_description": None, "priority": None, "note": None,
            })
        since = request.arg("updated_since")
        if since is not None:
            items = [i for i in items if i["update_time"] >= since]
        sort = request.arg("sort_by", "id")
        if sort not in ("id", "update_time", "add_time", "due_date"):
            return Reply(400, {"success": False, "error": f"Validation failed: sort_by: invalid value {sort}", "errorCode": 400})
        return self._list(items, request, sort)

    def _list(self, items: list[dict], request: Request, sort: str) -> Reply:
        """One page of a v2 list, keyset-paged by (sort field, id) behind an opaque cursor."""
        descending = request.arg("sort_direction", "asc") == "desc"
        items = sorted(items, key=lambda i: (i[sort], i["id"]), reverse=descending)
        cursor = request.arg("cursor")
        if cursor:
            after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            key = (after["value"], after["id"])
            items = [i for i in items if ((i[sort], i["id"]) < key if descending else (i[sort], i["id"]) > key)]
        limit = min(int(request.arg("limit", "100")), 500, self.page_max)
        page, rest = items[:limit], items[limit:]
        next_cursor = None
        if rest:
            last = page[-1]
            raw = json.dumps({"field": sort, "value": last[sort], "sortDirection": "desc" if descending else "asc", "id": last["id"]})
            next_cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        return Reply(200, {"success": True, "data": page, "additional_data": {"next_cursor": next_cursor}})

    def _flow(self, deal_id: int, request: Request) -> Reply:
        deal = self.deals.get(deal_id)
        if deal is None:
            return Reply(404, {"success": False, "error": "Deal not found", "errorCode": 404})
        wanted = request.arg("items")
        items = [i for i in reversed(deal.flow) if not wanted or i["object"] in wanted.split(",")]
        items.sort(key=lambda i: i["timestamp"], reverse=True)  # newest first (stable: later-logged first within a second)
        start = int(request.arg("start", "0"))
        limit = min(int(request.arg("limit", "100")), 500, self.page_max)
        page = items[start:start + limit]
        more = start + limit < len(items)
        pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return Reply(200, {"success": True, "data": page, "additional_data": {"pagination": pagination},
                           "related_objects": {"user": {str(deal.owner_id): {"id": deal.owner_id, "name": "Mia Chen",
                                                                           "email": "mia@example.com"}}}})


DAILY = "x-daily-ratelimit-token-remaining"
