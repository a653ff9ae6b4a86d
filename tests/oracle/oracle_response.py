"""Speed to lead (docs/metrics.md, `speed_to_lead` and `response_bands`) computed again from an Oracle.

Written from the doc. Readings:

S1  The cohort: leads whose reached_at(`[response] from`, default the key rate's first stage) lies in
    [start, end) and is at or before as_of; filters pick leads by their attributes.
S2  The first response is the lead's `[attributes] first_response` attribute (R4: the latest non-empty
    value) read as entered_at is: with an offset converted to UTC, without one as wall-clock time in
    the funnel's zone; counted only when at or before as_of. Before the clock's start it
    counts as 0 hours.
S3  Business hours: the part of [start, response] inside [open, close) of each Monday to Friday, on
    the wall clock of the funnel's time zone; here by walking the days one by one.
S4  The SLA of a lead: sla_hours_by[its sla_by value] else sla_hours. A lead is judged once answered
    or once its SLA has run out by as_of (on the SLA's clock); within: answered and waited <= SLA.
S5  Converted: reached_at(key rate's second stage) at or before as_of.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.oracle.oracle import Oracle, quantile, wilson_interval

BANDS = (("< 1 h", 1.0), ("1-4 h", 4.0), ("4-24 h", 24.0), ("1-3 d", 72.0), ("> 3 d", None))


def business_hours_between(a: datetime, b: datetime, tz: str, open_hour: float, close_hour: float) -> float:
    """Hours of [a, b] (naive UTC) inside the weekday opening hours, day by day on the local wall clock."""
    zone = ZoneInfo(tz)
    la = a.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None)
    lb = b.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None)
    total = 0.0
    day = la.date()
    while day <= lb.date():
        if day.weekday() < 5:
            opens = datetime.combine(day, datetime.min.time()) + timedelta(hours=open_hour)
            closes = datetime.combine(day, datetime.min.time()) + timedelta(hours=close_hour)
            lo, hi = max(opens, la), min(closes, lb)
            if hi > lo:
                total += (hi - lo).total_seconds() / 3600
        day += timedelta(days=1)
    return total


def _response_at(o: Oracle, lead: str) -> datetime | None:
    """S2: the attribute as naive UTC; text without an offset is wall-clock time in the funnel's zone."""
    text = o._attribute(lead, o.config.first_response_column)
    if not text or not text.strip():
        return None
    text = text.strip()
    if len(text) > 10 and any(c in text[10:] for c in "Zz+-"):
        try:
            return datetime.fromisoformat(text).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
        except ValueError:
            return None
    local = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(o.config.timezone))
    return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _cohort(o: Oracle, start, end, filters=None):
    cfg = o.config
    clock_from = cfg.response.from_stage or cfg.review_rate.from_stage
    out = []
    for lead in o._leads(filters):
        began = o.reached(lead, clock_from)
        if began is None or not (start <= began < end) or began > o.as_of:
            continue
        answered = _response_at(o, lead)
        if answered is not None and answered > o.as_of:
            answered = None
        hours = business = None
        if answered is not None:
            answered = max(answered, began)
            hours = (answered - began).total_seconds() / 3600
            business = business_hours_between(began, answered, cfg.timezone, cfg.response.open_hour, cfg.response.close_hour)
        sla_value = o._attribute(lead, cfg.response.sla_by) if cfg.response.sla_by else None
        sla = cfg.response.sla_hours_by.get(sla_value, cfg.response.sla_hours) if sla_value is not None else cfg.response.sla_hours
        reached_to = o.reached(lead, cfg.review_rate.to_stage)
        out.append({"lead": lead, "began": began, "hours": hours, "business": business, "sla": sla,
                    "converted": reached_to is not None and reached_to <= o.as_of})
    return out


def _judged(o: Oracle, x: dict) -> bool:
    if x["hours"] is not None:
        return True
    if x["sla"] is None:
        return False
    r = o.config.response
    if r.business:
        waited = business_hours_between(x["began"], o.as_of, o.config.timezone, r.open_hour, r.close_hour)
    else:
        waited = (o.as_of - x["began"]).total_seconds() / 3600
    return waited >= x["sla"]


def speed_to_lead(o: Oracle, start, end, *, segment=None, filters=None) -> list[dict]:
    cohort = _cohort(o, start, end, filters)
    groups: dict[str, list[dict]] = {} if segment else {"(all)": []}  # one row without a segment, of no leads too
    for x in cohort:
        groups.setdefault(o._segment_value(x["lead"], segment) if segment else "(all)", []).append(x)
    rows = []
    business = o.config.response.business
    for value in sorted(groups, key=lambda v: (v == "(none)", v)):
        xs = groups[value]
        hours = [x["hours"] for x in xs if x["hours"] is not None]
        working = [x["business"] for x in xs if x["business"] is not None]
        judged = [x for x in xs if x["sla"] is not None and _judged(o, x)]
        within = [x for x in judged if x["hours"] is not None and (x["business"] if business else x["hours"]) <= x["sla"]]
        row = {segment: value} if segment else {}
        row.update({"leads": len(xs), "answered": len(hours), "p50_hours": quantile(hours, 0.5), "p90_hours": quantile(hours, 0.9),
                    "p50_business_hours": quantile(working, 0.5), "p90_business_hours": quantile(working, 0.9),
                    "judged": len(judged), "within_sla": len(within)})
        rows.append(row)
    return rows


def response_bands(o: Oracle, start, end, *, filters=None) -> list[dict]:
    cohort = _cohort(o, start, end, filters)
    rows = []
    for name, upper in (*BANDS, ("never", None)):
        lower = next((u for n, u in reversed(BANDS) if u is not None and BANDS.index((n, u)) < BANDS.index((name, upper))), 0.0) \
            if name != "never" else None
        if name == "never":
            xs = [x for x in cohort if x["hours"] is None]
        else:
            xs = [x for x in cohort if x["hours"] is not None and x["hours"] >= lower and (upper is None or x["hours"] < upper)]
        converted = sum(x["converted"] for x in xs)
        low, high = wilson_interval(converted, len(xs)) if xs else (None, None)
        rows.append({"band": name, "leads": len(xs), "converted": converted, "wilson_low": low, "wilson_high": high})
    return rows
