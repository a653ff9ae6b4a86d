"""Alerts (`[[alerts]]`, `funnelboard alerts check`; docs/report.md, Alerts): each alert's figure in
the last complete weeks of the data, whether it fires, and whether it is news.

A weekly KPI is read from `weekly_kpis` for the weeks up to the last complete one (the report's
default week), under the alert's filters; the alert fires when every one of its `weeks` weeks is
below (or above) the threshold; a week without the figure (no leads) never fires, nor does a key
rate whose cohort is still converting (it will rise: the trend leaves such weeks out too). A stall count
(stalled, newly_stalled, sla_breaches: past a stage SLA) is the count at the data's as-of.

An alert that fires is news once: the state file (`<warehouse>.alerts.json`) keeps the alerts
firing and since which week; a run finds the ones that started firing since the last run (`new`), and
an alert that stops firing leaves the file, so it is news again the next time it fires.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from funnelboard.core import saved_views
from funnelboard.core.config import STALL_ALERTS, Alert
from funnelboard.core.errors import UserError
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.metrics import Context, MetricRequest, run_metric
from funnelboard.warehouse.metrics.weekly import last_complete_week


@dataclass(frozen=True)
class Reading:
    """One alert evaluated: its figures (newest first), whether it fires, and whether that is news."""

    alert: Alert
    week: date  # the Monday of the last complete week
    values: tuple[float | None, ...]
    fired: bool
    new: bool = False

    def sentence(self, labels: dict[str, str]) -> str:
        a = self.alert
        what = labels.get(a.metric, a.metric.replace("_", " "))
        scope = f" ({', '.join(f'{k} = {v}' for k, v in a.filters)})" if a.filters else ""
        shown = " · ".join(_fmt(a.metric, v) for v in self.values)
        when = "at the data's as-of date" if a.metric in STALL_ALERTS else (
            f"in the week of {self.week:%d %b %Y}" if a.weeks == 1 else f"in the {a.weeks} weeks to {self.week + timedelta(days=6):%d %b %Y}, newest first")
        verdict = "fires" if self.fired else "does not fire"
        return f"{a.name} [{a.severity}] {verdict}: {what}{scope} {shown} {when}; the alert is {a.condition()}."


STILL_CONVERTING = "still converting"


def _fmt(metric: str, value) -> str:
    if value is None:
        return "— (no data)"
    if value == STILL_CONVERTING:
        return f"— ({STILL_CONVERTING})"
    if metric in ("key_rate", "win_rate"):
        return f"{value:.1%}"
    if metric == "median_days_to_target":
        return f"{value:.1f} days"
    return f"{value:,.0f}"


def evaluate(g: Gateway, alerts: tuple[Alert, ...]) -> list[Reading]:
    """Every alert's reading on the warehouse (not yet compared with the state)."""
    if not alerts:
        return []
    monday = last_complete_week(Context(g))
    tz = ZoneInfo(g.config().timezone)
    end = datetime.combine(monday + timedelta(days=7), time.min, tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)
    out = []
    for alert in alerts:
        if alert.metric in STALL_ALERTS:
            filters = alert.filters + ((("over", "sla"),) if alert.metric == "sla_breaches" else ())
            (summary,) = run_metric(g, "stalled_summary", MetricRequest(filters=filters))
            values: tuple[float | None, ...] = (float(summary["newly_stalled" if alert.metric == "newly_stalled" else "stalled"]),)
        else:
            rows = run_metric(g, "weekly_kpis", MetricRequest(end=end, filters=alert.filters))
            by_week = {r["week"]: r["value"] for r in rows if r["kpi"] == alert.metric}
            # a key rate whose cohort is still converting will rise: not a figure to alert on
            converting = {r["week"] for r in rows if r["kpi"] == "immature" and r["value"]} if alert.metric == "key_rate" else set()
            values = tuple(STILL_CONVERTING if monday - timedelta(weeks=k) in converting else by_week.get(monday - timedelta(weeks=k))
                           for k in range(alert.weeks))
        fired = all(isinstance(v, float | int) and (v < alert.threshold if alert.below else v > alert.threshold) for v in values)
        out.append(Reading(alert, monday, values, fired))
    return out


def state_path(db: Path) -> Path:
    return Path(f"{db}.alerts.json")


def with_news(readings: list[Reading], path: Path) -> list[Reading]:
    """The readings with `new` set for alerts that fire now and did not at the last run, and the
    state file written (atomically) with the alerts firing now."""
    try:
        before = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        raise UserError(f"the alert state file '{path}' is not readable JSON; remove it to start afresh.") from None
    out, after = [], {}
    for r in readings:
        key = r.alert.name
        same = isinstance(before.get(key), dict) and before[key].get("rule") == _rule(r.alert)
        if r.fired:
            after[key] = before[key] if same else {"since": r.week.isoformat(), "rule": _rule(r.alert)}
        out.append(replace(r, new=r.fired and not same))
    saved_views.write_json(path, after, prefix=".alerts-")
    return out


def _rule(alert: Alert) -> str:
    """What makes an alert the same alert: editing its rule makes its firing news again."""
    return f"{alert.metric} {alert.condition()} {alert.weeks} {alert.filters}"
