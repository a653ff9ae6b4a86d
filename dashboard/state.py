"""The filter state of every view lives in the URL query string; this module reads and writes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from funnelboard.core import periods
from funnelboard.core.config import FunnelConfig
from funnelboard.core.days import parse_day
from funnelboard.core.errors import UserError
from funnelboard.warehouse.metrics import MetricRequest
from funnelboard.warehouse.metrics.changes import CARD_KINDS, KINDS
from funnelboard.warehouse.metrics.pipeline import CLOSING
from funnelboard.warehouse.metrics.pipeline import KINDS as PIPELINE_BARS
from funnelboard.warehouse.metrics.spells import KEYS as SPELL_KEYS
from funnelboard.warehouse.metrics.spells import check as check_spell_filter
from funnelboard.warehouse.metrics.stalled import OVER_VALUES

KEYS = ("from", "to", "as_of", "period", "owner", "segment", "segment2", "from_stage", "to_stage", "which", "window", "cohorts", "compare", "stage", "over", "change", "outcome", "reason", "bar", "closing", *SPELL_KEYS)
GLOBAL_KEYS = ("from", "to", "as_of", "period")  # with the segment filters: what the filter bar sets and every page keeps
WHICH = ("all", "converted", "not_converted")
CHANGES = KINDS + CARD_KINDS  # the kinds of change /changes lists
COHORTS = ("mature", "all")  # rates of mature cohorts only (the default), or of every cohort
MAX_WINDOW_DAYS = 36_500  # a conversion window of a century is already no window


@dataclass(frozen=True)
class ViewState:
    """What a view is filtered by: a period (local dates), as-of date, segment filters, segment choice."""

    start: date | None = None
    end: date | None = None
    as_of: date | None = None
    filters: tuple[tuple[str, str], ...] = ()
    segment: str | None = None
    segment2: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    which: str | None = None
    window_days: int | None = None
    business_days: bool = False
    cohorts: str | None = None
    stages: tuple[str, ...] = ()  # ?stage= (repeatable) on /stalled: the leads stalled in any of these stages
    over: str | None = None  # ?over=sla / p90 on /stalled: the leads past an SLA / past their stage's p90
    period: str | None = None  # a preset (core/periods.py); start and end hold its dates, an explicit date winning
    compare: str | None = None  # "previous": the segment rates against the period of the same length before
    change: str | None = None  # /changes: the kind of change listed (docs/metrics.md, Changes), with stage, or outcome and reason for exits
    outcome: str | None = None
    reason: str | None = None
    bar: str | None = None  # /pipeline: the waterfall bar whose deals are listed (warehouse/metrics/pipeline.py KINDS)
    closing: str | None = None  # /pipeline: the close window (warehouse/metrics/pipeline.py CLOSING; None: every deal)
    spell_filters: tuple[tuple[str, str], ...] = ()  # /spells: a spell mark's next, left_to, stage_left, week, min_days, ... (warehouse/metrics/spells.py)
    problems: tuple[str, ...] = ()

    def previous(self) -> "ViewState | None":
        """The same view over the period of the same length just before this one (None without a whole period)."""
        if self.start is None or self.end is None or self.end < self.start:
            return None
        start, end = periods.previous(self.start, self.end)
        return ViewState(**{**self.__dict__, "start": start, "end": end, "period": None, "compare": None})

    def request(self, config: FunnelConfig, **extra) -> MetricRequest:
        """The metric request these filters mean, dates turned into UTC instants in the configured zone."""
        tz = ZoneInfo(config.timezone)

        def utc(day: date | None, plus: int = 0) -> datetime | None:
            if day is None:
                return None
            local = datetime.combine(day + timedelta(days=plus), time.min, tzinfo=tz)
            return local.astimezone(timezone.utc).replace(tzinfo=None)

        as_of = utc(self.as_of, 1)
        return MetricRequest(
            start=utc(self.start),
            end=utc(self.end, 1),
            as_of=None if as_of is None else as_of - timedelta(microseconds=1),
            filters=self.filters,
            segment=self.segment,
            segment2=self.segment2,
            from_stage=self.from_stage,
            to_stage=self.to_stage,
            which=self.which or "all",
            window_days=self.window_days,
            business_days=self.business_days,
            mature_only=None if self.cohorts is None else self.cohorts == "mature",
            closing=self.closing,
            **extra,
        )


def latest_day(config: FunnelConfig) -> date | None:
    """The local day of the latest event of the warehouse the current request reads (None outside a request)."""
    from flask import has_app_context

    from funnelboard.dashboard.runtime import gateway

    if not has_app_context():
        return None
    try:
        return periods.as_of_day(gateway().facts()["last_event"], config.timezone)
    except UserError:  # no warehouse yet: the page says how to load one
        return None


# Address keys whose value is one of a fixed list: key -> (ViewState field, allowed values, stored value).
_CHOICES: dict[str, tuple[str, tuple[str, ...], Callable[[str], object]]] = {
    "which": ("which", WHICH, str),
    "cohorts": ("cohorts", COHORTS, str),
    "period": ("period", tuple(periods.PRESETS), lambda v: None if v == "custom" else v),
    "compare": ("compare", periods.COMPARE, str),
    "over": ("over", tuple(OVER_VALUES), str),
    "change": ("change", tuple(CHANGES), str),
    "bar": ("bar", tuple(PIPELINE_BARS), str),
    "closing": ("closing", CLOSING, lambda v: None if v == "all" else v),
    "days": ("business_days", ("calendar", "business"), lambda v: v == "business"),
}
_DAYS = {"from": "start", "to": "end", "as_of": "as_of"}


def parse(search: str | None, config: FunnelConfig, *, latest: date | None = None) -> ViewState:
    """Read `?from=...&channel=referral` into a ViewState; names not in the allow-lists are dropped and reported.

    `?period=` is resolved against the as-of day (`?as_of`, else `latest`, else the latest event of
    the warehouse the current request reads); an explicit from/to wins over the preset's date.
    """
    values: dict = {}
    filters: list[tuple[str, str]] = []
    problems: list[str] = []
    for key, value in parse_qsl((search or "").lstrip("?"), keep_blank_values=False):
        try:
            if not _read_key(key, value, config, values):
                if key not in config.segments:
                    raise UserError(f"'{key}' is not a filter of this funnel.")
                filters.append((key, value))
        except UserError as exc:
            problems.append(str(exc))
    _check_pair(values, config, problems)
    if values.get("period"):
        as_of = values.get("as_of") or latest or latest_day(config)
        values["start"], values["end"] = periods.apply(values["period"], values.get("start"), values.get("end"), as_of)
    return ViewState(filters=tuple(filters), problems=tuple(problems), **values)


def _read_key(key: str, value: str, config: FunnelConfig, values: dict) -> bool:
    """Store one address value in `values` under its ViewState field (UserError naming what it may be);
    False for a key that is not a view setting (a segment filter, or nothing of this funnel)."""
    if key in _DAYS:
        values[_DAYS[key]] = parse_day(value, key)
    elif key in _CHOICES:
        field, allowed, stored = _CHOICES[key]
        if value not in allowed:
            raise UserError(f"{key} '{value}' is not one of {', '.join(allowed)}.")
        values[field] = stored(value)
    elif key in ("segment", "segment2"):
        if value not in config.segments:
            raise UserError(f"{key} '{value}' is not a segment column of this funnel ({', '.join(config.segments) or 'it has none'}).")
        values[key] = value
    elif key in ("from_stage", "to_stage", "stage"):
        if value not in config.stages:
            raise UserError(f"{key} '{value}' is not a stage of this funnel (its stages: {', '.join(config.stages)}).")
        if key == "stage":
            values["stages"] = (*values.get("stages", ()), value)
        else:
            values[key] = value
    elif key == "window":
        # ASCII digits only: '²'.isdigit() is true, and int() refuses it
        if not (value.isascii() and value.isdigit() and int(value) <= MAX_WINDOW_DAYS):
            raise UserError(f"window '{value}' is not a whole number of days from 0 to {MAX_WINDOW_DAYS}.")
        values["window_days"] = int(value)
    elif key == "outcome":
        if value not in config.outcomes:
            raise UserError(f"outcome '{value}' is not an outcome of this funnel (its outcomes: {', '.join(config.outcomes)}).")
        values["outcome"] = value
    elif key == "reason":
        values["reason"] = value[:200]  # a value compared with a bound parameter; a reason is a short text
    elif key in SPELL_KEYS:
        checked = check_spell_filter(key, value, config)
        # one value a key: the last wins, as in a form
        values["spell_filters"] = (*((k, v) for k, v in values.get("spell_filters", ()) if k != key), (key, checked))
    else:
        return False
    return True


def _check_pair(values: dict, config: FunnelConfig, problems: list[str]) -> None:
    """Drop a from/to stage pair that runs backwards (a "conversion" to an earlier stage counts every
    lead), saying so; the key rate's pair is used instead."""
    pair = (values.get("from_stage") or config.review_rate.from_stage, values.get("to_stage") or config.review_rate.to_stage)
    if ("from_stage" in values or "to_stage" in values) and config.stages.index(pair[1]) < config.stages.index(pair[0]):
        problems.append(f"to_stage '{pair[1]}' comes before from_stage '{pair[0]}' in the funnel ({', '.join(config.stages)}).")
        values.pop("from_stage", None)
        values.pop("to_stage", None)


def problem_line(problems: tuple[str, ...], *, refused: bool = False) -> str:
    """The one line that names every bad value of an address: a page ignores them and shows this under
    the filter bar; an export refuses (a 400 with this line) rather than send a list its filters did not narrow."""
    lead = "Nothing exported, the address has bad values" if refused else "Ignored in the address"
    return f"{lead}: " + " ".join(p[0].upper() + p[1:] for p in problems)


def to_search(state: ViewState) -> str:
    """The query string of a state (empty values left out), for links and the address bar."""
    pairs: list[tuple[str, str]] = []
    for key, value in (("from", state.start), ("to", state.end), ("as_of", state.as_of)):
        if value is not None:
            pairs.append((key, value.isoformat()))
    if state.period:
        pairs.append(("period", state.period))
    pairs += list(state.filters)
    pairs += [("stage", s) for s in state.stages]
    pairs += list(state.spell_filters)
    for key in ("segment", "segment2", "from_stage", "to_stage", "which", "compare", "change", "outcome", "reason", "over", "bar", "closing"):
        value = getattr(state, key)
        if value:
            pairs.append((key, value))
    if state.window_days is not None:
        pairs.append(("window", str(state.window_days)))
    if state.business_days:
        pairs.append(("days", "business"))
    if state.cohorts:
        pairs.append(("cohorts", state.cohorts))
    return "?" + urlencode(pairs) if pairs else ""


def global_part(state: ViewState) -> ViewState:
    """The part of a state every page keeps when the user moves to another: period, as-of and filters."""
    return ViewState(start=state.start, end=state.end, as_of=state.as_of, filters=state.filters, period=state.period)


def replace_keys(search: str | None, changes: dict[str, str | None]) -> str:
    """The query string with `changes` applied: each key's old value dropped, its new one (if any) added."""
    pairs = [(k, v) for k, v in parse_qsl((search or "").lstrip("?")) if k not in changes]
    pairs += [(k, v) for k, v in changes.items() if v]
    return "?" + urlencode(pairs) if pairs else ""


def keep_global(search: str | None, segments: tuple[str, ...] | None = None) -> str:
    """The query string reduced to the keys every page shares: period, as-of and segment filters.

    Without `segments`, every key that is not page-specific is kept (a filter is any other key).
    """
    page_keys = set(KEYS) - set(GLOBAL_KEYS) - {"owner"} | {"days"}
    pairs = [
        (k, v) for k, v in parse_qsl((search or "").lstrip("?"))
        if (k in GLOBAL_KEYS or (k in segments if segments is not None else k not in page_keys))
    ]
    return "?" + urlencode(pairs) if pairs else ""
