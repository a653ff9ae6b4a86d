"""`funnelboard pull pipedrive`: the deals changed since the marks, each one's whole flow, and the stages.

Deals come from the v2 deals lists (`GET /api/v2/deals` and `/api/v2/deals/archived`, each an object
with its own mark), sorted by `update_time` ascending from `updated_since` = the mark, cursor-paged.
For every deal listed, its whole flow (`GET /v1/deals/{id}/flow`, start/limit paging, only the
`dealChange` and `activity` items the adapter reads) is fetched, so its history is complete in every
pull. The files are what etl/sources/pipedrive.py reads from hand exports:

* `stages.json`: the stages (`GET /api/v2/stages`, every page in one response), each with its
  `pipeline_name` from `GET /api/v2/pipelines` as v1 `GET /stages` gave it;
* `deal_flow.json`: a list of flow responses, every page of every deal fetched completely;
* `deals.parquet`: one deals-export row per deal (`Deal - ID`, `Deal - Stage`, ...): the stage a
  deal that never moved was created in, and its current owner, value, currency and close date.
  Parquet, so the `[input]` CSV dialect of funnel.toml cannot misread it.

Changed activities: an activity changed (marked done, moved to another deal) need not change its deals' `update_time`,
so the deal lists may not show it. Activities changed since their own mark are listed (`GET /api/v2/activities`, the
same paging) and each brings, whole, the deal it belongs to now (`GET /api/v2/deals/{id}`, then its flow) and the deal
an earlier pull counted it in as a first response (`PullRequest.tied`, the `activity:<id>` records the adapter ties).
A first pull fetches every deal anyway: it lists no activity and takes the latest activity change, read before any
deal, as the mark.

Deleted deals: the lists leave them out unless asked for `status=deleted`, which answers the deals deleted in
the last 30 days (Pipedrive erases them for good after that). Each list is asked again that way, with its own
mark (`deleted_deals`, `deleted_archived_deals`), and the journeys of the deals listed are removed from the
warehouse (`Pulled.removed`; a Pipedrive journey is its deal id). An archived deal is not deleted: it keeps
counting, as it does in Pipedrive's reports of archived deals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from funnelboard.core.errors import UserError
from funnelboard.etl.pull.base import Pulled, PullRequest, QuotaReached, iso_utc
from funnelboard.etl.pull.http import Api
from funnelboard.etl.pull.secrets import secret, setting

NAME = "pipedrive"
DEFAULT_URL = "https://api.pipedrive.com"
# object (its mark's name) -> the v2 list it comes from; archived deals are not in the plain list.
OBJECTS = {"deals": "/api/v2/deals", "archived_deals": "/api/v2/deals/archived"}
ACTIVITIES = "/api/v2/activities"  # its mark is "activities"
ACTIVITY_RECORD = "activity:"  # an activity's record id in the ties (etl/sources/pipedrive.py), apart from deal ids
LIST_LIMIT = 500  # the v2 lists' maximum page
FLOW_LIMIT = 500
FLOW_ITEMS = "dealChange,activity"  # the adapter reads only these; notes, files and mails are left out
DAILY_LEFT = "x-daily-ratelimit-token-remaining"

COLUMNS = (
    "Deal - ID", "Deal - Owner", "Deal - Value", "Deal - Currency of Value", "Deal - Pipeline", "Deal - Stage",
    "Deal - Status", "Deal - Deal created", "Deal - Last stage change", "Deal - Expected close date",
    "Deal - Won time", "Deal - Lost time", "Deal - Lost reason",
)


def fetch(request: PullRequest) -> Pulled:
    """Fetch every deal changed at or after its object's mark with its whole flow; write them as exports."""
    api = _api(request)
    note = request.progress.note
    done: dict[int, tuple[dict, list[dict]]] = {}  # deal id -> (the deal as listed, its flow pages)
    marks: dict[str, str] = {}
    counts: dict[str, int] = {}
    removed: set[str] = set()  # journey ids (deal ids) of deals deleted since the marks
    stopped = None
    try:
        stages = _stages(api)
        note(f"{NAME}: {len(stages)} stage(s)")
        activities_from = request.start("activities")
        if activities_from is None:  # every deal is fetched whole below: later activity changes start from now
            latest = _latest_activity(api)
            if latest is not None:
                marks["activities"] = latest
        for obj, path in OBJECTS.items():
            counts[obj] = 0
            for deal in _changed(api, path, request.start(obj), obj, note):
                done[deal["id"]] = (deal, _flow(api, deal["id"]))
                marks[obj] = max(marks.get(obj, ""), _changed_at(deal))
                counts[obj] += 1
            note(f"{NAME}: {obj}: {counts[obj]} deal(s) with their flow")
        if activities_from is not None:
            counts["activities"] = 0
            for page in _changed_pages(api, ACTIVITIES, activities_from, "activities", note):
                for deal_id in _activity_deals(page, request) - set(done):
                    deal = _deal(api, deal_id)
                    if deal is not None:
                        done[deal_id] = (deal, _flow(api, deal_id))
                marks["activities"] = max(_changed_at(a, "activity") for a in page)
                counts["activities"] += len(page)
            note(f"{NAME}: activities: {counts['activities']} changed")
        for obj, path in OBJECTS.items():
            gone = f"deleted_{obj}"
            counts[gone] = 0
            for deal in _changed(api, path, request.start(gone), gone, note, status="deleted"):
                removed.add(str(deal["id"]))
                done.pop(deal["id"], None)  # deleted while the pull ran: its journey goes
                marks[gone] = max(marks.get(gone, ""), _changed_at(deal))
                counts[gone] += 1
    except QuotaReached as exc:
        stopped = str(exc)
        note(f"{NAME}: stopped after {len(done)} complete deal(s): {stopped}")
    counts = {k: v for k, v in counts.items() if v or not (k.startswith("deleted_") or k == "activities")}
    if not done:
        return Pulled([], marks, counts, stopped=stopped, removed=sorted(removed))
    files = [
        _write_json(request.out / "stages.json", {"success": True, "data": stages, "additional_data": {"next_cursor": None}}),
        _write_json(request.out / "deal_flow.json", [page for _, pages in done.values() for page in pages]),
        _write_rows(request.out / "deals.parquet", [_row(deal, stages) for deal, _ in done.values()]),
    ]
    return Pulled(files, marks, counts, stopped=stopped, removed=sorted(removed))


def _api(request: PullRequest) -> Api:
    base = setting(NAME, "url", DEFAULT_URL)
    if not base.startswith(("https://", "http://")):
        raise UserError(f"FUNNELBOARD_PIPEDRIVE_URL must be your company's address, such as https://yourcompany.pipedrive.com, "
                        f"not '{base}'.")
    token = secret(NAME, "token", required=False)
    if token is not None:
        headers, key = {"x-api-token": token.reveal()}, token
    else:
        key = secret(NAME, "access_token", required=False)
        if key is None:  # neither: the sentence names the API token, the usual way in
            secret(NAME, "token", what="Pipedrive API token (Personal preferences > API)")
        headers = {"Authorization": f"Bearer {key.reveal()}"}
    return Api("Pipedrive", base, headers={"Accept": "application/json", **headers}, secrets=[key], scope=_scope, quota=_quota,
               progress=request.progress)


def _scope(status: int, path: str) -> str:
    """What a 401 or 403 lacks, in words an admin can act on."""
    if status == 401:
        return ("the API token is not valid (revoked, regenerated, or of another company): set FUNNELBOARD_PIPEDRIVE_TOKEN to the "
                "token under Personal preferences > API of a user who sees every deal.")
    if path.startswith(ACTIVITIES):
        return ("the token's user may not read activities: give that user visibility of every deal, and an OAuth app the "
                "activities:read scope.")
    if path.endswith("/flow"):
        return ("the token's user may not see this deal's updates: give that user visibility of every deal (a visibility group "
                "that sees all deals, or admin rights), and an OAuth app the recents:read scope.")
    return ("the token's user may not read deals, stages or pipelines: give that user visibility of every deal, and an OAuth "
            "app the deals:read scope.")


def _quota(response) -> str | None:
    """A sentence when an answer means the day's budget is gone (or the firewall blocks the token for a while)."""
    if response.status_code == 429:
        left = (response.headers.get(DAILY_LEFT) or "").strip()
        try:
            exhausted = left != "" and float(left) <= 0
        except ValueError:
            exhausted = False
        if exhausted:
            return (f"Pipedrive's daily API token budget is used up ({DAILY_LEFT}: {left}); it comes back at midnight in "
                    "Pipedrive's server time zone.")
    if response.status_code == 403 and "cloudflare" in (response.text or "").lower():
        return "Pipedrive's firewall is refusing this token for a while after too many rate-limited requests."
    return None


def _pages(api: Api, path: str, params: dict) -> Iterator[dict]:
    """Every page of a v2 list, following `additional_data.next_cursor`."""
    cursor = None
    while True:
        page = api.get(path, {**params, **({"cursor": cursor} if cursor else {})})
        yield page
        cursor = (page.get("additional_data") or {}).get("next_cursor")
        if not cursor:
            return


def _stages(api: Api) -> list[dict]:
    """Every stage, with its pipeline's name added as `pipeline_name` (the adapter qualifies labels with it)."""
    pipelines = {p["id"]: p.get("name") for page in _pages(api, "/api/v2/pipelines", {"limit": LIST_LIMIT})
                 for p in _data(page, "/api/v2/pipelines")}
    stages = [s for page in _pages(api, "/api/v2/stages", {"limit": LIST_LIMIT}) for s in _data(page, "/api/v2/stages")]
    for s in stages:
        if pipelines.get(s.get("pipeline_id")):
            s["pipeline_name"] = pipelines[s["pipeline_id"]]
    return stages


def _changed(api: Api, path: str, start: str | None, obj: str, note, status: str | None = None) -> Iterator[dict]:
    """The deals of one list changed at or after `start`, oldest change first (only the deleted ones with `status`)."""
    for page in _changed_pages(api, path, start, obj, note, status):
        yield from page


def _changed_pages(api: Api, path: str, start: str | None, obj: str, note, status: str | None = None) -> Iterator[list[dict]]:
    """The pages of a v2 list of the records changed at or after `start`, oldest change first."""
    params = {"sort_by": "update_time", "sort_direction": "asc", "limit": LIST_LIMIT}
    if status:
        params["status"] = status
    if start:
        params["updated_since"] = _rfc3339(start)
    for number, page in enumerate(_pages(api, path, params), 1):
        records = _data(page, path)
        note(f"{NAME}: {obj} page {number}: {len(records)} changed")
        if records:
            yield records


def _latest_activity(api: Api) -> str | None:
    """The latest `update_time` of any activity (a first pull's activities mark), None when there is none."""
    page = api.get(ACTIVITIES, {"sort_by": "update_time", "sort_direction": "desc", "limit": 1})
    newest = _data(page, ACTIVITIES)[:1]
    return _changed_at(newest[0], "activity") if newest else None


def _activity_deals(page: list[dict], request: PullRequest) -> set[int]:
    """The deals changed activities concern: the one each belongs to now, and the one an earlier pull counted it in."""
    deals = {a.get("deal_id") for a in page}
    records = [f"{ACTIVITY_RECORD}{a['id']}" for a in page if a.get("id") is not None]
    asked = set(records)
    deals |= {journey for record, journey in request.tied(records) if record in asked}
    return {int(d) for d in deals if d is not None and str(d).strip().isdigit()}


def _deal(api: Api, deal_id: int) -> dict | None:
    """One deal as the lists give it (`GET /api/v2/deals/{id}`), None when it is gone (deleted, or erased)."""
    path = f"/api/v2/deals/{int(deal_id)}"
    response = api.get(path, {}, raw=True, accept=(404,))
    if response.status_code == 404:
        return None
    page = api.body(response)
    deal = page.get("data") if isinstance(page, dict) and page.get("success") is not False else None
    if not isinstance(deal, dict):
        raise UserError(f"Pipedrive answered {path} with an error: {(page or {}).get('error') or 'no deal'}.")
    return None if deal.get("is_deleted") or deal.get("status") == "deleted" else deal


def _flow(api: Api, deal_id: int) -> list[dict]:
    """Every page of one deal's flow, as the API answers them (without `related_objects`: names and e-mails the adapter never reads)."""
    path = f"/v1/deals/{int(deal_id)}/flow"
    pages, start = [], 0
    while True:
        page = api.get(path, {"start": start, "limit": FLOW_LIMIT, "items": FLOW_ITEMS})
        items = _data(page, path)
        page.pop("related_objects", None)
        pages.append(page)
        more = (page.get("additional_data") or {})
        more = more.get("pagination", more)  # the flow nests its paging under `pagination`
        if not more.get("more_items_in_collection") or not items:
            return pages
        start = int(more.get("next_start") or start + len(items))


def _data(page: object, path: str) -> list[dict]:
    if not isinstance(page, dict) or page.get("success") is False:
        error = page.get("error") if isinstance(page, dict) else None
        raise UserError(f"Pipedrive answered {path} with an error: {error or 'no data'}.")
    data = page.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise UserError(f"Pipedrive answered {path} with something that is not a list (data is {type(data).__name__}).")
    return data


def _changed_at(record: dict, what: str = "deal") -> str:
    """A deal's (or activity's) `update_time` as a mark."""
    text = str(record.get("update_time") or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"Pipedrive listed {what} {record.get('id')} with update_time '{text}', not an RFC 3339 instant.") from None
    return iso_utc(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def _rfc3339(mark: str) -> str:
    """A mark as `updated_since` takes it: whole seconds, rounded down (update_time has no fraction), with a Z."""
    moment = datetime.fromisoformat(mark.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: object) -> str:
    """A value as the flow writes it: 84000, not 84000.0."""
    if value is None or value == "":
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _row(deal: dict, stages: list[dict]) -> dict[str, str]:
    """One deal as a deals-export row; times stay UTC with their Z, ids stand for owners as they do in the flow."""
    names = {s.get("id"): s.get("name") for s in stages}
    pipelines = {s.get("pipeline_id"): s.get("pipeline_name") for s in stages if s.get("pipeline_name")}
    values = {
        "Deal - ID": deal.get("id"),
        "Deal - Owner": deal.get("owner_id"),
        "Deal - Value": _number(deal.get("value")),
        "Deal - Currency of Value": deal.get("currency"),
        "Deal - Pipeline": pipelines.get(deal.get("pipeline_id")) or deal.get("pipeline_id"),
        "Deal - Stage": names.get(deal.get("stage_id")),
        "Deal - Status": deal.get("status"),
        "Deal - Deal created": deal.get("add_time"),
        "Deal - Last stage change": deal.get("stage_change_time"),
        "Deal - Expected close date": deal.get("expected_close_date"),
        "Deal - Won time": deal.get("won_time"),
        "Deal - Lost time": deal.get("lost_time"),
        "Deal - Lost reason": deal.get("lost_reason"),
    }
    return {k: "" if v is None else str(v) for k, v in values.items()}


def _write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def _write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS}), path)
    return path
