"""Speed to lead (docs/metrics.md, `speed_to_lead` and `response_bands`): how long a lead waited for its
first response after it came in, against the response SLA, and how the key rate falls as the wait grows.

The clock starts when a lead reaches `[response] from` (default: the key rate's first stage) and stops
at its first response (`[attributes] first_response`, a timestamp per lead). A response recorded before
the clock started counts as 0 hours. Hours are calendar hours, and business hours: the time inside
Monday to Friday, `[response] business_hours` on the wall clock of the funnel's time zone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.warehouse.durations import quantile_cont
from funnelboard.warehouse.metrics.base import NONE, Context, MetricRequest, business_clock, local_time, ratio, reached, start_week
from funnelboard.warehouse.stats import wilson_interval

# Response bands: (name, upper bound in hours, exclusive); the last band of responses is open-ended.
BANDS = (("< 1 h", 1.0), ("1-4 h", 4.0), ("4-24 h", 24.0), ("1-3 d", 72.0), ("> 3 d", None))
NEVER = "never"
HOUR_US = 3_600_000_000


def response_time(text: str | None, tz: ZoneInfo) -> datetime | None:
    """A first response's text as naive UTC, as the loader reads entered_at: with an offset (Z, +02:00)
    converted, without one wall-clock time in the funnel's zone; None when empty or not a time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _waits(ctx: Context, req: MetricRequest) -> tuple[MetricRequest, list[dict]]:
    """The resolved request and, per lead of the cohort: its hours waited (calendar and business,
    None when not answered by as_of), whether it converted, its segment value and its SLA in hours."""
    cfg = ctx.config
    if not cfg.first_response_column:
        raise UserError("speed to lead needs a first-response column: set [attributes] first_response in funnel.toml "
                        "(a timestamp per lead, e.g. first_response_at).")
    req = ctx.resolve(req)
    response = cfg.response
    start_stage = response.from_stage or cfg.review_rate.from_stage
    to_stage = cfg.review_rate.to_stage
    params = {"start": req.start, "end": req.end, "start_week": start_week(req.start), "as_of": req.as_of}
    identifiers = {"__from__": reached(start_stage), "__to__": reached(to_stage), "__response__": cfg.first_response_column,
                   "__segment__": req.segment, "__sla_by__": response.sla_by}
    rows = ctx.run_sql("speed_to_lead", req, params, identifiers)
    tz = ZoneInfo(cfg.timezone)
    out = []
    for r in rows:
        start, answered = r["start_at"], response_time(r["response_text"], tz)
        if answered is not None and answered > req.as_of:
            answered = None  # not answered yet at as_of
        hours = business = None
        recorded = answered
        if answered is not None:
            answered = max(answered, start)  # answered before the clock started: 0 hours
            hours = (answered - start) / timedelta(hours=1)
            business = (business_clock(local_time(answered, tz), response.open_hour, response.close_hour)
                        - business_clock(local_time(start, tz), response.open_hour, response.close_hour))
        out.append({"lead_id": r["lead_id"], "start_at": start, "response_at": recorded, "hours": hours,
                    "business_hours": business, "converted": r["converted_at"] is not None, "segment": r["segment_value"],
                    "sla_value": r["sla_value"], "sla_hours": response.sla_for(r["sla_value"])})
    return req, out


def _waited(lead: dict, business: bool) -> float | None:
    return lead["business_hours"] if business else lead["hours"]


def _due(lead: dict, as_of: datetime, cfg: FunnelConfig) -> bool:
    """Whether the lead's SLA deadline has passed by as_of (or it was answered): only then is it judged."""
    if lead["hours"] is not None:
        return True
    sla = lead["sla_hours"]
    if sla is None:
        return False
    tz, resp = ZoneInfo(cfg.timezone), cfg.response
    if not resp.business:
        return (as_of - lead["start_at"]) / timedelta(hours=1) >= sla
    waited = business_clock(local_time(as_of, tz), resp.open_hour, resp.close_hour) - business_clock(local_time(lead["start_at"], tz), resp.open_hour, resp.close_hour)
    return waited >= sla


def speed_to_lead(ctx: Context, req: MetricRequest) -> list[dict]:
    """Hours from a lead's arrival ([response] from, default the key rate's first stage) to its first
    response, p50 and p90 in calendar and business hours, and the share answered within the response
    SLA; per segment value with --segment."""
    req, leads = _waits(ctx, req)
    cfg = ctx.config
    business = cfg.response.business
    groups: dict[str, list[dict]] = {} if req.segment else {"(all)": []}  # without a segment: one row, of no leads too
    for lead in leads:
        groups.setdefault(lead["segment"], []).append(lead)
    rows = []
    for value in sorted(groups, key=lambda v: (v == NONE, v)) if req.segment else groups:
        members = groups[value]
        calendar = np.sort([x["hours"] for x in members if x["hours"] is not None])
        working = np.sort([x["business_hours"] for x in members if x["business_hours"] is not None])
        statuses = [status_of(x, req.as_of, cfg) for x in members]
        within = statuses.count("within")
        judged = [s for s in statuses if s in ("within", "breach")]
        low, high = wilson_interval(within, len(judged)) if judged else (None, None)
        row = {req.segment: value} if req.segment else {}
        row.update({
            "leads": len(members),
            "answered": len(calendar),
            "unanswered": len(members) - len(calendar),
            "p50_hours": quantile_cont(calendar, 0.5),
            "p90_hours": quantile_cont(calendar, 0.9),
            "p50_business_hours": quantile_cont(working, 0.5),
            "p90_business_hours": quantile_cont(working, 0.9),
            "sla_clock": "business" if business else "calendar",
            "judged": len(judged),
            "within_sla": within,
            "breaches": len(judged) - within,
            "within_sla_share": ratio(within, len(judged)),
            "wilson_low": low,
            "wilson_high": high,
            "too_few": len(judged) < cfg.min_sample,
        })
        rows.append(row)
    return rows


def band_of(hours: float | None) -> str:
    """The response band of a wait in calendar hours (None: never answered by as_of)."""
    if hours is None:
        return NEVER
    for name, upper in BANDS:
        if upper is None or hours < upper:
            return name
    raise AssertionError("unreachable")  # pragma: no cover


def response_bands(ctx: Context, req: MetricRequest) -> list[dict]:
    """The key rate (its first stage -> its second, by as_of) by response band: < 1 h, 1-4 h, 4-24 h,
    1-3 d, > 3 d (calendar hours to the first response) and never, with Wilson intervals; per segment
    value with --segment."""
    req, leads = _waits(ctx, req)
    names = [name for name, _ in BANDS] + [NEVER]
    counts: dict[tuple[str, str], list[int]] = {}
    for lead in leads:
        cell = counts.setdefault((lead["segment"], band_of(lead["hours"])), [0, 0])
        cell[0] += 1
        cell[1] += lead["converted"]
    values = sorted({s for s, _ in counts}, key=lambda v: (v == NONE, v)) if req.segment else ["(all)"]  # every band, even of no leads
    rows = []
    for value in values:
        for band in names:
            n, converted = counts.get((value, band), (0, 0))
            low, high = wilson_interval(converted, n) if n else (None, None)
            row = {req.segment: value} if req.segment else {}
            row.update({"band": band, "leads": n, "converted": converted, "rate": ratio(converted, n),
                        "wilson_low": low, "wilson_high": high, "too_few": n < ctx.config.min_sample})
            rows.append(row)
    return rows


STATUSES = ("within", "breach", "waiting", "no_sla")


def status_of(lead: dict, as_of: datetime, cfg: FunnelConfig) -> str:
    """within / breach (judged against its SLA), waiting (unanswered, its SLA not run out by as_of) or
    no_sla (no SLA applies to it)."""
    if lead["sla_hours"] is None:
        return "no_sla"
    if not _due(lead, as_of, cfg):
        return "waiting"
    waited = _waited(lead, cfg.response.business)
    return "within" if waited is not None and waited <= lead["sla_hours"] else "breach"


def response_leads(ctx: Context, req: MetricRequest) -> list[dict]:
    """The leads behind speed_to_lead and response_bands, one row each with its wait, SLA, status and
    band, newest first; narrowed by --filter status=within|breach|waiting|no_sla and band=NAME."""
    own = {"status": STATUSES, "band": (*(name for name, _ in BANDS), NEVER)}
    chosen: dict[str, str] = {}
    for key, value in req.filters:
        if key in own:
            if value not in own[key]:
                raise UserError(f"{key} '{value}' is not one of {', '.join(own[key])}.")
            chosen[key] = value
    req, leads = _waits(ctx, replace(req, filters=tuple((k, v) for k, v in req.filters if k not in own)))
    cfg = ctx.config
    by = cfg.response.sla_by
    rows = []
    for lead in sorted(leads, key=lambda x: (x["start_at"], x["lead_id"]), reverse=True):
        row = {"lead_id": lead["lead_id"], "started_at": lead["start_at"], "answered_at": lead["response_at"],
               "hours": lead["hours"], "business_hours": lead["business_hours"], "sla_hours": lead["sla_hours"],
               "status": status_of(lead, req.as_of, cfg), "band": band_of(lead["hours"]), "converted": lead["converted"]}
        if by:
            row[by] = lead["sla_value"]
        if all(row[k] == v for k, v in chosen.items()):
            rows.append(row)
    return rows
