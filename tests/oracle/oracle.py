"""The metrics of docs/metrics.md computed again, in plain Python, from the raw events.

This module is the project's second source of truth. It is written from docs/metrics.md alone
(no SQL, no look at queries/ or warehouse/), with small functions and obvious loops, so that a
reader can check any number against the doc by eye. Tests compare it with the SQL models: counts
exactly, rates and durations to 1e-9.

Conventions of this module: every datetime is naive UTC; a period is half-open ``[start, end)``;
``window_days=None`` means ``config.conversion_window_days``; ``filters`` is
``{attribute_column: value}`` matched (all of them) against the lead attributes; every metric
returns ``list[dict]`` whose keys are the documented column names. Durations are computed in
integer microseconds and divided once into (fractional) days, so equal durations are exactly equal.

Readings of the contract
------------------------
Where docs/metrics.md leaves room, this oracle reads it as follows.

R1  Events are sorted by ``(entered_at, stage rank, file_id, source_line)``; stage rank is the
    funnel position 1..n, then outcomes n+1.. in ``[funnel] outcomes`` order. A stage that is not
    in the config is an error.
R2  A reason is "empty" when it is None or only whitespace. The normalised reason is computed for
    every spell, funnel stages included (``(no reason recorded)`` when none); unmapped text is
    returned exactly as stored (the loader already trimmed it).
R3  A terminal spell that is not the lead's last spell has ``exited_at`` = the next spell's
    ``entered_at`` like any other; only a *last* spell is open or closed-without-exit.
R4  Lead attributes use *all* loaded events, including events after as_of ("current values");
    "the latest leads row" is the one with the largest ``(file_id, source_line)`` among rows
    with a non-empty value for that attribute; the latest event is the last in event order (R1).
    ``created_at`` follows the same rule (latest leads row with a non-null created_at, else the
    lead's first event in event order).
R5  A lead whose ``created_at`` is after as_of has not been created yet (ignored by new_leads
    and score_bands). Leads that appear only in the leads file (no events) count in new_leads and
    score_bands when created in the period; they never reach any stage.
R6  Filters: a lead matches ``{col: value}`` when its attribute equals ``value`` exactly (a
    value of None matches leads without the attribute). Unknown columns match nothing but None.
R7  Conversion is literal: converted needs ``reached_at(T)`` not null and, when W > 0,
    ``reached_at(T) - reached_at(S) <= W days`` — a negative difference (possible under
    ``strict`` after a backward move) counts. The same window W applies to lead -> sql in
    ``sql_rate``, to ``segment_conversion``, ``mix_vs_rate`` and the weekly ``sql_rate``.
    ``period_from`` always equals ``cohort``.
R8  ``funnel`` under ``strict``: the cohort uses reached_at(first stage) under the rule too, so a
    lead that started in mql is not in it; step rates may then exceed 1 (or be NULL when the
    previous stage has 0).
R9  ``time_in_stage`` without a segment has one row per funnel stage before the last, even when
    empty (counts 0, quantiles NULL), like ``stage_accounting``. With a segment, only the
    (stage, value) groups that have at least one spell, ordered by stage then value. The segment
    column of the output is named after the attribute (e.g. ``channel``), missing = ``(none)``;
    the same holds for ``segment_conversion`` (one column per segment column), ``disqualifiers``
    ``by`` a segment and ``stalled``. Only ``mix_vs_rate`` has a column literally named
    ``segment``, as documented.
R10 ``time_in_stage_by_lead`` covers the funnel stages before the last (the stages whose spells
    always have a duration), every spell at as_of (no period), one row per (lead, stage) with at
    least one spell, ordered by lead_id then stage order. ``cumulative_days`` is the exact sum.
R11 ``time_to_convert`` columns: ``from_stage, to_stage, entered, mature, reached_within, share_within, reached, median_days``
    (share_within NULL when mature = 0). ``median_days`` may be negative under ``strict``.
R12 ``segment_conversion``: rows ordered by the group values; ``significant`` is False (not NULL)
    when the group has no p-value; the Wilson bounds are clamped to [0, 1] (only float noise).
R13 ``mix_vs_rate``: values ordered ascending, then the total row. A period with an empty MQL
    cohort has total share 0 and total rate 0 (extending "absent = share 0, rate 0"), so that
    mix_effect + rate_effect == rate_after_total - rate_before_total always. The total row has
    n = cohort size, share 1 (0 when empty), rate = cohort rate, and the sums of the effects.
R14 ``disqualifiers``: ``stage_left`` is the stage of the latest *funnel-stage* spell before the
    outcome spell (an outcome spell in between, e.g. nurture -> disqualified, is skipped);
    ``(none)`` when there is none. When grouped, ``share`` and ``cumulative_share`` are taken
    within each group (each group is its own Pareto, summing to 1); ungrouped, of all outcome
    spells in the period. Columns: ``[group,] outcome, reason, exits, share, cumulative_share``;
    outcome and reason order as text (ascending). Groups order: stage_left by funnel order
    with ``(none)`` first, week by date, a segment by value. ``week`` is a ``datetime.date``.
R15 ``stalled``: thresholds (p90 of completed durations, calendar days) are computed over *all*
    leads; ``filters`` only select which stalled leads are listed/counted, so a filtered list is
    a subset of the unfiltered one. A segment value (``(none)`` included) with at least
    ``min_sample`` completed spells of the stage uses its own p90. A stage without completed
    spells and without SLA has no threshold: nothing stalls there. Stalled means
    ``age_days > threshold_days`` (strict). A spell is open at ``as_of - 7 days`` when it was
    entered at or before then and exited after then (or not at all).
    SLAs (``config.stage_slas``): the SLA of the lead's value of ``[sla] by`` for the stage comes
    first (``'sla segment'``), then the stage's own (``'sla'``); an SLA on the business clock
    holds the business hours of [entered_at, as_of] (Monday to Friday inside ``[response]
    business_hours``, local wall clock) against its hours (strict), and its ``threshold_days`` is
    None. ``breached_at``: entered_at + threshold_days (floored to a microsecond), or the moment
    the business hours since entry reach the SLA (walking the days), as naive UTC.
    Columns: ``lead_id, stage, entered_at, age_days, threshold_days, threshold_source,
    sla_hours, clock, breached_at, newly_stalled, owner``, then every ``[segments]`` column except owner (config order), then
    the chosen segment if not already there, then ``amount`` (the ``amount_column`` attribute as
    a float, NULL when missing or not a number). Attribute values are raw (NULL, not
    ``(none)``). Rows ordered by age_days descending, then lead_id.
R16 ``weekly_kpis``: weeks run from the week of ``start`` (default: 12 weeks before as_of's week)
    to the week of ``min(as_of, end - 1 microsecond)`` (``end`` None = as_of). The maturity flag
    is its own KPI ``immature`` (1 when any member of the week's MQL cohort is immature, else 0).
    KPI order per week: ``new_leads, reached_<stage>..., exits, sql_rate, immature,
    median_days_lead_to_sql``. ``previous`` and the 4 weeks of ``mean_4w`` must lie inside the
    listed range (the first week has no previous). ``median_days_lead_to_sql`` skips leads with
    no reached_at(first stage) (possible under strict).
R17 ``score_bands``: a score is numeric when ``float()`` parses it to a finite number; scores
    outside [0, 100] have no band and are left out; band = floor(score / 10), 100 joins 90-100.
    Only bands with at least one lead, in band order; ``sql_rate`` NULL when mqls = 0 (and may
    exceed 1 under strict).
R18 Leads with no event at or before as_of are outside every cohort (they reach nothing).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

from funnelboard.core.config import FunnelConfig, normalise_label

NO_REASON = "(no reason recorded)"
NONE_VALUE = "(none)"
TOTAL = "(total)"
Z95 = 1.959963984540054
KM_EPSILON = 1e-12
US = timedelta(microseconds=1)
US_PER_DAY = 86_400_000_000
EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Threshold:
    """A spell's stall threshold (R15): calendar days, or an SLA's hours on the business clock."""

    days: float | None
    source: str
    clock: str = "calendar"
    sla_hours: float | None = None
BUSINESS_EPOCH = datetime(1970, 1, 5)  # a Monday
RAW_EVENT_CORE = ("file_id", "source_line", "lead_id", "stage", "stage_label", "entered_at", "reason")
RAW_LEAD_CORE = ("file_id", "source_line", "lead_id", "created_at")


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One loaded row of raw_events (stage already canonical)."""

    lead_id: str
    stage: str
    entered_at: datetime
    reason: str | None = None
    file_id: int = 1
    source_line: int = 0
    attrs: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LeadRow:
    """One loaded row of raw_leads."""

    lead_id: str
    created_at: datetime | None = None
    file_id: int = 100
    source_line: int = 0
    attrs: Mapping[str, str | None] = field(default_factory=dict)


def events_from_warehouse(db_path) -> tuple[list[Event], list[LeadRow]]:
    """Read raw_events and raw_leads of a warehouse file (reading only; no computing in SQL)."""
    import duckdb

    con = duckdb.connect(str(Path(db_path)), read_only=True)
    try:
        events = [
            Event(
                lead_id=r["lead_id"], stage=r["stage"], entered_at=r["entered_at"], reason=r["reason"],
                file_id=int(r["file_id"]), source_line=int(r["source_line"]),
                attrs={k: v for k, v in r.items() if k not in RAW_EVENT_CORE},
            )
            for r in _table_rows(con, "raw_events")
        ]
        leads = [
            LeadRow(
                lead_id=r["lead_id"], created_at=r["created_at"], file_id=int(r["file_id"]),
                source_line=int(r["source_line"]),
                attrs={k: v for k, v in r.items() if k not in RAW_LEAD_CORE},
            )
            for r in _table_rows(con, "raw_leads")
        ]
    finally:
        con.close()
    return events, leads


def _table_rows(con, table: str) -> list[dict]:
    exists = con.execute(
        "select count(*) from information_schema.tables where table_name = $t and table_schema = 'main'",
        {"t": table},
    ).fetchone()[0]
    if not exists:
        return []
    cursor = con.execute(f'select * from "{table}"')
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


# ---------------------------------------------------------------------------------------------
# Statistics, straight from the doc
# ---------------------------------------------------------------------------------------------


def quantile(values: Iterable[float], p: float) -> float | None:
    """Linear interpolation between closest ranks: position (n - 1) * p of the sorted list."""
    xs = sorted(values)
    if not xs:
        return None
    position = (len(xs) - 1) * p
    lo = math.floor(position)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (position - lo)


def km_quantile(durations: Iterable[tuple[int, bool]], p: float) -> int | None:
    """Kaplan-Meier p-quantile of (duration, completed) pairs; the duration key is returned as given.

    S(t) = prod over completed durations t_i <= t of (1 - d_i / n_i), with d_i the spells completed
    at exactly t_i and n_i the spells (completed or censored) with duration >= t_i. The quantile is
    the smallest completed duration t with S(t) <= 1 - p + 1e-12, None when S never falls that low.
    """
    items = list(durations)
    all_durations = sorted(d for d, _ in items)
    deaths = Counter(d for d, completed in items if completed)
    survival = 1.0
    for t in sorted(deaths):
        at_risk = len(all_durations) - bisect_left(all_durations, t)
        survival *= 1 - deaths[t] / at_risk
        if survival <= 1 - p + KM_EPSILON:
            return t
    return None


def wilson_interval(converted: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of converted / n."""
    if n == 0:
        return None, None
    p = converted / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # the exact ends: no conversion has its interval start at 0, all converted end at 1 (not 5e-17 off)
    return (0.0 if converted == 0 else max(0.0, centre - half)), (1.0 if converted == n else min(1.0, centre + half))


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided pooled two-proportion z-test; None when a side is empty or the pooled rate is 0 or 1."""
    if n1 == 0 or n2 == 0:
        return None
    if x1 + x2 == 0 or x1 + x2 == n1 + n2:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def benjamini_hochberg(p_values: list[float | None]) -> list[float | None]:
    """q_(i) = min over j >= i of p_(j) * m / j, at most 1, over the p-values that are not None."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(ranked)
    q_values: list[float | None] = [None] * len(p_values)
    running = 1.0
    for j in range(m, 0, -1):
        p, index = ranked[j - 1]
        running = min(running, p * m / j)
        q_values[index] = running
    return q_values


def _ratio(num: int | float, den: int | float) -> float | None:
    return None if den == 0 else num / den


def _days(us: int) -> float:
    return us / US_PER_DAY


def _timestamp(text: str | None) -> datetime | None:
    """A plain ISO date or date-time as DuckDB's TRY_CAST(... AS TIMESTAMP) reads it; None otherwise."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        return None
    return value if value.tzinfo is None else None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _in_period(t: datetime | None, start: datetime, end: datetime) -> bool:
    return t is not None and start <= t < end


def _non_empty(text: str | None) -> bool:
    return text is not None and str(text).strip() != ""


# ---------------------------------------------------------------------------------------------
# Spells
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spell:
    lead_id: str
    spell_no: int
    stage: str
    entered_at: datetime
    exited_at: datetime | None
    is_open: bool
    reason: str
    next_stage: str | None
    previous_funnel_stage: str | None

    def as_row(self) -> dict:
        return {
            "lead_id": self.lead_id, "spell_no": self.spell_no, "stage": self.stage,
            "entered_at": self.entered_at, "exited_at": self.exited_at, "is_open": self.is_open,
            "reason": self.reason,
        }


class Oracle:
    """All metrics of docs/metrics.md over one event log, one config and one as_of."""

    def __init__(self, events, config: FunnelConfig, leads=(), *, as_of: datetime | None = None):
        self.config = config
        self.all_events = list(events)
        self.lead_rows = list(leads)
        if as_of is None:
            if not self.all_events:
                raise ValueError("as_of is needed when there are no events")
            as_of = max(e.entered_at for e in self.all_events)
        self.as_of = as_of
        self.tz = ZoneInfo(config.timezone)
        self.stages = tuple(config.stages)
        self.outcomes = tuple(config.outcomes)
        self.rank = {s: i + 1 for i, s in enumerate(config.all_stages)}
        self.reason_map = config.reason_map()
        for e in self.all_events:
            if e.stage not in self.rank:
                raise ValueError(f"event of lead {e.lead_id} has stage {e.stage!r}, not in the config")
        self._spells = self._build_spells()
        self._attributes, self._attribute_columns = self._build_attributes()
        self._created = self._build_created_at()
        self._reached_cache: dict[tuple[str, str, str], datetime | None] = {}
        self._week_cache: dict[datetime, date] = {}

    # -- event order and spells ------------------------------------------------------------------

    def _event_key(self, e: Event):
        return (e.entered_at, self.rank[e.stage], e.file_id, e.source_line)

    def _events_by_lead(self, events: Iterable[Event]) -> dict[str, list[Event]]:
        by_lead: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            by_lead[e.lead_id].append(e)
        for evs in by_lead.values():
            evs.sort(key=self._event_key)
        return by_lead

    def _normalised_reason(self, reasons: Iterable[str | None]) -> str:
        for text in reasons:
            if _non_empty(text):
                return self.reason_map.get(normalise_label(text), text)
        return NO_REASON

    def _build_spells(self) -> dict[str, list[Spell]]:
        visible = [e for e in self.all_events if e.entered_at <= self.as_of]
        spells: dict[str, list[Spell]] = {}
        for lead_id, evs in sorted(self._events_by_lead(visible).items()):
            groups: list[list[Event]] = []
            for e in evs:
                if groups and groups[-1][0].stage == e.stage:
                    groups[-1].append(e)
                else:
                    groups.append([e])
            lead_spells = []
            previous_funnel = None
            for i, group in enumerate(groups):
                stage = group[0].stage
                following = groups[i + 1][0] if i + 1 < len(groups) else None
                lead_spells.append(Spell(
                    lead_id=lead_id,
                    spell_no=i + 1,
                    stage=stage,
                    entered_at=group[0].entered_at,
                    exited_at=following.entered_at if following else None,
                    is_open=following is None and stage not in self.config.terminal_stages,
                    reason=self._normalised_reason(e.reason for e in group),
                    next_stage=following.stage if following else None,
                    previous_funnel_stage=previous_funnel,
                ))
                if stage in self.stages:
                    previous_funnel = stage
            spells[lead_id] = lead_spells
        return spells

    def spells(self) -> list[dict]:
        """Columns: lead_id, spell_no, stage, entered_at, exited_at, is_open, reason."""
        return [s.as_row() for lead_id in sorted(self._spells) for s in self._spells[lead_id]]

    def _all_spells(self, leads: Iterable[str]) -> list[Spell]:
        return [s for lead_id in leads for s in self._spells.get(lead_id, [])]

    # -- reached ---------------------------------------------------------------------------------

    def reached(self, lead_id: str, stage: str, rule: str | None = None) -> datetime | None:
        """reached_at(stage) of a lead: rule 'count' (default: the config's) or 'strict'."""
        rule = rule or self.config.skipped_stages
        if stage not in self.stages:
            raise ValueError(f"reached_at is defined for funnel stages, not {stage!r}")
        key = (lead_id, stage, rule)
        if key not in self._reached_cache:
            if rule == "strict":
                eligible = {stage}
            elif rule == "count":
                eligible = set(self.stages[self.stages.index(stage):])
            else:
                raise ValueError(f"unknown skipped-stage rule {rule!r}")
            times = [s.entered_at for s in self._spells.get(lead_id, []) if s.stage in eligible]
            self._reached_cache[key] = min(times) if times else None
        return self._reached_cache[key]

    # -- lead attributes, created_at, filters ----------------------------------------------------

    def _build_attributes(self):
        columns: list[str] = []
        for row in [*self.all_events, *self.lead_rows]:
            for col in row.attrs:
                if col not in columns:
                    columns.append(col)
        events_by_lead = self._events_by_lead(self.all_events)
        rows_by_lead: dict[str, list[LeadRow]] = defaultdict(list)
        for row in self.lead_rows:
            rows_by_lead[row.lead_id].append(row)
        for rows in rows_by_lead.values():
            rows.sort(key=lambda r: (r.file_id, r.source_line))
        attributes = {}
        for lead_id in sorted(set(events_by_lead) | set(rows_by_lead)):
            values = {}
            for col in columns:
                value = None
                for e in events_by_lead.get(lead_id, []):
                    if _non_empty(e.attrs.get(col)):
                        value = e.attrs[col]
                for r in rows_by_lead.get(lead_id, []):
                    if _non_empty(r.attrs.get(col)):
                        value = r.attrs[col]
                values[col] = value
            attributes[lead_id] = values
        return attributes, columns

    def _build_created_at(self) -> dict[str, datetime | None]:
        created: dict[str, datetime | None] = {}
        for lead_id, evs in self._events_by_lead(self.all_events).items():
            created[lead_id] = evs[0].entered_at
        for row in sorted(self.lead_rows, key=lambda r: (r.file_id, r.source_line)):
            created.setdefault(row.lead_id, None)
        latest_row: dict[str, LeadRow] = {}
        for row in sorted(self.lead_rows, key=lambda r: (r.file_id, r.source_line)):
            if row.created_at is not None:
                latest_row[row.lead_id] = row
        for lead_id, row in latest_row.items():
            created[lead_id] = row.created_at
        return created

    def lead_attributes(self) -> dict[str, dict[str, str | None]]:
        """lead_id -> {attribute column: current value or None}, for every lead loaded."""
        return {lead_id: dict(values) for lead_id, values in self._attributes.items()}

    def created_at(self, lead_id: str) -> datetime | None:
        return self._created.get(lead_id)

    def _attribute(self, lead_id: str, column: str) -> str | None:
        return self._attributes.get(lead_id, {}).get(column)

    def _segment_value(self, lead_id: str, column: str) -> str:
        value = self._attribute(lead_id, column)
        return NONE_VALUE if value is None else value

    def _matches(self, lead_id: str, filters: Mapping[str, str | None] | None) -> bool:
        return all(self._attribute(lead_id, col) == value for col, value in (filters or {}).items())

    def _leads(self, filters=None) -> list[str]:
        """Leads with at least one spell (an event at or before as_of) that match the filters."""
        return [lead_id for lead_id in sorted(self._spells) if self._matches(lead_id, filters)]

    # -- shared pieces ---------------------------------------------------------------------------

    def _window(self, window_days: int | None) -> int:
        return self.config.conversion_window_days if window_days is None else window_days

    def _local(self, t: datetime) -> datetime:
        return t.replace(tzinfo=timezone.utc).astimezone(self.tz).replace(tzinfo=None)

    def _utc_monday(self, week: date) -> datetime:
        """The UTC instant of a local Monday's midnight."""
        return datetime.combine(week, datetime.min.time(), tzinfo=self.tz).astimezone(timezone.utc).replace(tzinfo=None)

    def week_of(self, t: datetime) -> date:
        """The Monday (a local date in the configured time zone) of the ISO week holding t."""
        if t not in self._week_cache:
            d = self._local(t).date()
            self._week_cache[t] = d - timedelta(days=d.weekday())
        return self._week_cache[t]

    def _business_us(self, t: datetime) -> int:
        """bd(t) in microseconds: 5*floor(d/7) + min(d - 7*floor(d/7), 5) with d local days since 1970-01-05."""
        us = (self._local(t) - BUSINESS_EPOCH) // US
        weeks, rest = divmod(us, 7 * US_PER_DAY)
        return 5 * US_PER_DAY * weeks + min(rest, 5 * US_PER_DAY)

    def _duration_us(self, start: datetime, end: datetime, business_days: bool = False) -> int:
        if business_days:
            return self._business_us(end) - self._business_us(start)
        return (end - start) // US

    def _spell_duration_us(self, spell: Spell, business_days: bool = False) -> tuple[int, bool]:
        """(duration, completed): completed spells to exited_at, open ones so far (censored)."""
        if spell.exited_at is not None:
            return self._duration_us(spell.entered_at, spell.exited_at, business_days), True
        return self._duration_us(spell.entered_at, self.as_of, business_days), False

    @property
    def key(self) -> tuple[str, str]:
        """The key rate's stages: [review] key_rate, else mql -> sql when both exist, else the first step."""
        rate = self.config.key_rate
        if rate is not None:
            return rate.from_stage, rate.to_stage
        if "mql" in self.stages and "sql" in self.stages and self.stages.index("mql") < self.stages.index("sql"):
            return "mql", "sql"
        return self.stages[0], self.stages[1]

    def maturity(self, from_stage: str, to_stage: str, window: int) -> float:
        """The maturity horizon in days: the window, else the p90 of reached_at(T) - reached_at(S) over
        every lead (no filter) that reached S no later than T, both by as_of; 0 when none did."""
        if window > 0:
            return float(window)
        times = []
        for lead_id in self._spells:
            s, t = self.reached(lead_id, from_stage), self.reached(lead_id, to_stage)
            if s is not None and t is not None and s <= t:
                times.append(_days((t - s) // US))
        return quantile(times, 0.9) or 0.0

    def _immature(self, reached_from: datetime, maturity: float, moment: datetime | None = None) -> bool:
        """A member younger than the maturity horizon at the moment (as_of by default)."""
        return maturity > 0 and ((moment or self.as_of) - reached_from) // US < maturity * US_PER_DAY

    def _cohort(self, from_stage, to_stage, start, end, window: int, leads: Iterable[str], maturity: float | None = None):
        """(lead_id, converted, immature) of every lead with reached_at(from_stage) in the period."""
        if maturity is None:
            maturity = self.maturity(from_stage, to_stage, window)
        members = []
        for lead_id in leads:
            reached_from = self.reached(lead_id, from_stage)
            if not _in_period(reached_from, start, end):
                continue
            reached_to = self.reached(lead_id, to_stage)
            converted = reached_to is not None and (
                window <= 0 or reached_to - reached_from <= timedelta(days=window)
            )
            members.append((lead_id, converted, self._immature(reached_from, maturity)))
        return members

    # -- conversion ------------------------------------------------------------------------------

    def conversion(self, from_stage, to_stage, start, end, *, window_days=None, filters=None) -> list[dict]:
        window = self._window(window_days)
        leads = self._leads(filters)
        members = self._cohort(from_stage, to_stage, start, end, window, leads)
        cohort = len(members)
        converted = sum(1 for _, c, _ in members if c)
        immature = sum(1 for _, _, i in members if i)
        mature_cohort = cohort - immature
        mature_converted = sum(1 for _, c, i in members if c and not i)
        return [{
            "from_stage": from_stage,
            "to_stage": to_stage,
            "cohort": cohort,
            "converted": converted,
            "rate": _ratio(converted, cohort),
            "immature": immature,
            "mature_cohort": mature_cohort,
            "mature_converted": mature_converted,
            "rate_mature": _ratio(mature_converted, mature_cohort),
            "period_from": sum(1 for l in leads if _in_period(self.reached(l, from_stage), start, end)),
            "period_to": sum(1 for l in leads if _in_period(self.reached(l, to_stage), start, end)),
            "window_days": window,
            "maturity_days": self.maturity(from_stage, to_stage, window),
        }]

    def key_rate(self, start, end, *, window_days=None, segment=None, filters=None) -> list[dict]:
        """The key rate of its cohort with the interval and maturity, the first stage -> T beside it."""
        f, to = self.key
        named = {"rate_name": self.config.review_rate.name, "from_stage": f, "to_stage": to}
        if segment is not None:
            rows = self.segment_conversion(segment, start, end, window_days=window_days, filters=filters)
            return [{**named, **{("cohort" if k == "n" else k): v for k, v in row.items()}} for row in rows]
        row = self.conversion(f, to, start, end, window_days=window_days, filters=filters)[0]
        first = self.conversion(self.stages[0], to, start, end, window_days=window_days, filters=filters)[0]
        low, high = wilson_interval(row["converted"], row["cohort"])
        return [{
            **named,
            "cohort": row["cohort"], "converted": row["converted"], "rate": row["rate"],
            "wilson_low": low, "wilson_high": high,
            "immature": row["immature"], "rate_mature": row["rate_mature"],
            "window_days": row["window_days"], "maturity_days": row["maturity_days"],
            "first_stage": self.stages[0], "leads": first["cohort"], "lead_converted": first["converted"], "lead_rate": first["rate"],
        }]

    def funnel(self, start, end, *, filters=None) -> list[dict]:
        leads = self._leads(filters)
        cohort = [l for l in leads if _in_period(self.reached(l, self.stages[0]), start, end)]
        rows = []
        previous = None
        for stage in self.stages:
            reached = sum(1 for l in cohort if self.reached(l, stage) is not None)
            rows.append({
                "stage": stage,
                "reached": reached,
                "step_rate": None if previous is None else _ratio(reached, previous),
                "cumulative_rate": _ratio(reached, len(cohort)),
                "period_reached": sum(1 for l in leads if _in_period(self.reached(l, stage), start, end)),
            })
            previous = reached
        return rows

    # -- stage accounting and time in stage ------------------------------------------------------

    def stage_accounting(self, start, end, *, filters=None) -> list[dict]:
        spells = self._all_spells(self._leads(filters))
        rows = []
        for stage in self.stages[:-1]:
            row = {"stage": stage, "entered": 0, "advanced": 0, "exited": 0, "regressed": 0, "open": 0}
            row.update({f"exited_{o}": 0 for o in self.outcomes})
            for s in spells:
                if s.stage != stage or not _in_period(s.entered_at, start, end):
                    continue
                row["entered"] += 1
                if s.next_stage is None:
                    row["open"] += 1
                elif s.next_stage in self.outcomes:
                    row["exited"] += 1
                    row[f"exited_{s.next_stage}"] += 1
                elif self.rank[s.next_stage] > self.rank[stage]:
                    row["advanced"] += 1
                else:
                    row["regressed"] += 1
            rows.append(row)
        return rows

    def _time_row(self, items: list[tuple[int, bool]]) -> dict:
        completed = [_days(d) for d, c in items if c]
        row = {
            "n_completed": len(completed),
            "n_open": sum(1 for _, c in items if not c),
            "p50": quantile(completed, 0.5),
            "p75": quantile(completed, 0.75),
            "p90": quantile(completed, 0.9),
        }
        for name, p in (("km_p50", 0.5), ("km_p75", 0.75), ("km_p90", 0.9)):
            t = km_quantile(items, p)
            row[name] = None if t is None else _days(t)
        return row

    def time_in_stage(self, start, end, *, segment=None, business_days=False, filters=None) -> list[dict]:
        spells = [s for s in self._all_spells(self._leads(filters)) if _in_period(s.entered_at, start, end)]
        rows = []
        for stage in self.stages[:-1]:
            of_stage = [s for s in spells if s.stage == stage]
            if segment is None:
                items = [self._spell_duration_us(s, business_days) for s in of_stage]
                rows.append({"stage": stage, **self._time_row(items)})
                continue
            groups: dict[str, list[tuple[int, bool]]] = defaultdict(list)
            for s in of_stage:
                groups[self._segment_value(s.lead_id, segment)].append(self._spell_duration_us(s, business_days))
            for value in sorted(groups):
                rows.append({"stage": stage, segment: value, **self._time_row(groups[value])})
        return rows

    def time_in_stage_by_lead(self, *, business_days=False, filters=None) -> list[dict]:
        rows = []
        for lead_id in self._leads(filters):
            for stage in self.stages[:-1]:
                of_stage = [s for s in self._spells[lead_id] if s.stage == stage]
                if not of_stage:
                    continue
                durations = [self._spell_duration_us(s, business_days)[0] for s in of_stage]
                rows.append({
                    "lead_id": lead_id,
                    "stage": stage,
                    "spells": len(of_stage),
                    "latest_days": _days(durations[-1]),
                    "cumulative_days": _days(sum(durations)),
                    "latest_open": of_stage[-1].is_open,
                })
        return rows

    # -- time to convert -------------------------------------------------------------------------

    def time_to_convert(self, start, end, *, within_days=30, filters=None) -> list[dict]:
        n_days = timedelta(days=within_days)
        f, to = self.key
        cohort = [l for l in self._leads(filters) if _in_period(self.reached(l, f), start, end)]
        mature = [l for l in cohort if self.as_of - self.reached(l, f) >= n_days]
        within = [
            l for l in mature
            if self.reached(l, to) is not None and self.reached(l, to) - self.reached(l, f) <= n_days
        ]
        gaps = [
            _days(self._duration_us(self.reached(l, f), self.reached(l, to)))
            for l in cohort if self.reached(l, to) is not None
        ]
        return [{
            "from_stage": f,
            "to_stage": to,
            "entered": len(cohort),
            "mature": len(mature),
            "reached_within": len(within),
            "share_within": _ratio(len(within), len(mature)),
            "reached": len(gaps),
            "median_days": quantile(gaps, 0.5),
        }]

    # -- segments --------------------------------------------------------------------------------

    def segment_conversion(self, segments, start, end, *, from_stage=None, to_stage=None,
                           window_days=None, filters=None) -> list[dict]:
        from_stage, to_stage = from_stage or self.key[0], to_stage or self.key[1]
        segments = [segments] if isinstance(segments, str) else list(segments)
        if not 1 <= len(segments) <= 2 or len(set(segments)) != len(segments):
            raise ValueError("segment_conversion takes one segment column or two different ones")
        window = self._window(window_days)
        members = self._cohort(from_stage, to_stage, start, end, window, self._leads(filters))
        counts: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for lead_id, converted, immature in members:
            key = tuple(self._segment_value(lead_id, col) for col in segments)
            counts[key][0] += 1
            counts[key][1] += int(converted)
            counts[key][2] += int(immature)
            counts[key][3] += int(converted and not immature)
        total_n = len(members)
        total_x = sum(int(c) for _, c, _ in members)
        rows = []
        for key in sorted(counts):
            n, x, immature, mature_x = counts[key]
            low, high = wilson_interval(x, n)
            row = dict(zip(segments, key))
            row.update({
                "n": n,
                "converted": x,
                "rate": _ratio(x, n),
                "wilson_low": low,
                "wilson_high": high,
                "too_few": n < self.config.min_sample,
                "p_value": two_proportion_p_value(x, n, total_x - x, total_n - n),
                "immature": immature,
                "rate_mature": _ratio(mature_x, n - immature),
                "window_days": window,
            })
            rows.append(row)
        q_values = benjamini_hochberg([r["p_value"] for r in rows])
        for row, q in zip(rows, q_values):
            row["q_value"] = q
            row["significant"] = q is not None and q < 0.05
        order = [*segments, "n", "converted", "rate", "wilson_low", "wilson_high", "too_few", "p_value", "q_value", "significant",
                 "immature", "rate_mature", "window_days"]
        return [{k: row[k] for k in order} for row in rows]

    # -- disqualifiers ---------------------------------------------------------------------------

    def disqualifiers(self, start, end, *, by: str | None = None, filters=None) -> list[dict]:
        spells = [
            s for s in self._all_spells(self._leads(filters))
            if s.stage in self.outcomes and _in_period(s.entered_at, start, end)
        ]
        groups: dict[object, list[Spell]] = defaultdict(list)
        for s in spells:
            groups[self._disqualifier_group(s, by)].append(s)
        rows = []
        for group in sorted(groups, key=lambda g: self._group_order(g, by)):
            counts: dict[tuple[str, str], int] = defaultdict(int)
            for s in groups[group]:
                counts[(s.stage, s.reason)] += 1
            total = len(groups[group])
            cumulative = 0
            for (outcome, reason), exits in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1])):
                cumulative += exits
                row = {} if by is None else {by: group}
                row.update({
                    "outcome": outcome, "reason": reason, "exits": exits,
                    "share": exits / total, "cumulative_share": cumulative / total,
                })
                rows.append(row)
        return rows

    def _disqualifier_group(self, spell: Spell, by: str | None):
        if by is None:
            return None
        if by == "stage_left":
            return spell.previous_funnel_stage or NONE_VALUE
        if by == "week":
            return self.week_of(spell.entered_at)
        return self._segment_value(spell.lead_id, by)

    def _group_order(self, group, by):
        if by == "stage_left":
            return self.rank.get(group, 0)
        return group if group is not None else 0

    # -- stalled ---------------------------------------------------------------------------------

    def _thresholds(self, segment: str | None):
        """(stage, lead) -> Threshold, over all leads (R15)."""
        completed: dict[str, list[float]] = defaultdict(list)
        completed_by_value: dict[tuple[str, str], list[float]] = defaultdict(list)
        for s in self._all_spells(sorted(self._spells)):
            if s.stage in self.stages[:-1] and s.exited_at is not None:
                days = _days(self._duration_us(s.entered_at, s.exited_at))
                completed[s.stage].append(days)
                if segment is not None:
                    completed_by_value[(s.stage, self._segment_value(s.lead_id, segment))].append(days)
        slas = {(x.stage, x.value): x for x in self.config.stage_slas}

        def threshold(stage: str, lead_id: str) -> Threshold:
            by = self.config.sla_by
            value = self._attribute(lead_id, by) if by else None
            for key, source in (((stage, value), "sla segment"), ((stage, None), "sla")):
                if key[1] is None and source == "sla segment":
                    continue
                sla = slas.get(key)
                if sla is not None:
                    if sla.clock == "business":
                        return Threshold(None, source, "business", sla.hours)
                    days = sla.days if sla.days is not None else sla.hours / 24
                    return Threshold(days, source, "calendar", sla.hours)
            if segment is not None:
                own = completed_by_value.get((stage, self._segment_value(lead_id, segment)), [])
                if len(own) >= self.config.min_sample:
                    return Threshold(quantile(own, 0.9), "p90 segment")
            return Threshold(quantile(completed[stage], 0.9), "p90 stage")

        return threshold

    def _business_hours(self, a: datetime, b: datetime) -> float:
        from tests.oracle.oracle_response import business_hours_between

        r = self.config.response
        return business_hours_between(a, b, self.config.timezone, r.open_hour, r.close_hour)

    def _over(self, t: "Threshold", entered_at: datetime, at: datetime) -> bool:
        """Past its threshold at `at` (strict), on the threshold's clock."""
        if t.clock == "business":
            return at > entered_at and self._business_hours(entered_at, at) > t.sla_hours
        return t.days is not None and _days(self._duration_us(entered_at, at)) > t.days

    def breached_at(self, t: "Threshold", entered_at: datetime) -> datetime | None:
        """When a spell entered at `entered_at` goes over its threshold, naive UTC."""
        if t.clock != "business":
            if t.days is None:
                return None
            return EPOCH + timedelta(microseconds=math.floor((entered_at - EPOCH) / US + t.days * US_PER_DAY))
        zone, r = ZoneInfo(self.config.timezone), self.config.response
        local = entered_at.replace(tzinfo=timezone.utc).astimezone(zone).replace(tzinfo=None)
        left, day = t.sla_hours, local.date()
        while True:  # day by day: the hours of each weekday's opening after entry, until the SLA is used up
            if day.weekday() < 5:
                opens = datetime.combine(day, datetime.min.time()) + timedelta(hours=r.open_hour)
                closes = datetime.combine(day, datetime.min.time()) + timedelta(hours=r.close_hour)
                start = max(opens, local)
                if closes > start:
                    have = (closes - start) / timedelta(hours=1)
                    if have > left:
                        due = start + timedelta(hours=left)
                        break
                    left -= have
            day += timedelta(days=1)
        return due.replace(tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)

    def _stall_states(self, segment: str | None, filters):
        """Per funnel-stage spell (before the last): its threshold and whether it is stalled now / a week ago."""
        threshold = self._thresholds(segment)
        week_ago = self.as_of - timedelta(days=7)
        states = []
        for s in self._all_spells(self._leads(filters)):
            if s.stage not in self.stages[:-1]:
                continue
            t = threshold(s.stage, s.lead_id)
            open_now = s.exited_at is None
            open_week_ago = s.entered_at <= week_ago and (s.exited_at is None or s.exited_at > week_ago)
            age_days = _days(self._duration_us(s.entered_at, self.as_of))
            stalled_now = open_now and self._over(t, s.entered_at, self.as_of)
            stalled_week_ago = open_week_ago and self._over(t, s.entered_at, week_ago)
            states.append((s, t, age_days, stalled_now, stalled_week_ago))
        return states

    def stalled(self, *, segment=None, filters=None) -> list[dict]:
        extra = ["owner"] + [c for c in self.config.segments if c != "owner"]
        if segment is not None and segment not in extra:
            extra.append(segment)
        rows = []
        for s, t, age_days, stalled_now, stalled_week_ago in self._stall_states(segment, filters):
            if not stalled_now:
                continue
            row = {
                "lead_id": s.lead_id, "stage": s.stage, "entered_at": s.entered_at, "age_days": age_days,
                "threshold_days": t.days, "threshold_source": t.source, "sla_hours": t.sla_hours, "clock": t.clock,
                "breached_at": self.breached_at(t, s.entered_at), "newly_stalled": not stalled_week_ago,
            }
            row.update({col: self._attribute(s.lead_id, col) for col in extra})
            amount_col = self.config.amount_column
            row["amount"] = _number(self._attribute(s.lead_id, amount_col)) if amount_col else None
            if self.config.deal_currency_column:
                row["amount_currency"] = self._attribute(s.lead_id, self.config.deal_currency_column)
            if self.config.last_activity_column:  # when the lead was last worked, and days since at as_of
                last = _timestamp(self._attribute(s.lead_id, self.config.last_activity_column))
                row["last_activity_at"] = last
                row["days_since_activity"] = None if last is None else (self.as_of - last) / timedelta(days=1)
            if self.config.close_date_column:  # how often the deal's close date slipped (tests/oracle/oracle_money.py)
                from tests.oracle import oracle_money

                row.update(oracle_money.slips(self, s.lead_id))
            rows.append(row)
        rows.sort(key=lambda r: (not r["newly_stalled"], -r["age_days"], r["lead_id"]))
        return rows

    def stalled_summary(self, *, segment=None, filters=None) -> list[dict]:
        states = self._stall_states(segment, filters)
        return [{
            "stalled": sum(1 for st in states if st[3]),
            "newly_stalled": sum(1 for st in states if st[3] and not st[4]),
            "recovered": sum(1 for st in states if st[4] and st[0].exited_at is not None),
        }]

    # -- score bands -----------------------------------------------------------------------------

    def score_bands(self, start, end, *, filters=None) -> list[dict]:
        column = self.config.score_column
        if column is None:
            return []
        bands: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        for lead_id in sorted(self._attributes):
            created = self._created.get(lead_id)
            if not self._matches(lead_id, filters) or not _in_period(created, start, end) or created > self.as_of:
                continue
            score = _number(self._attribute(lead_id, column))
            if score is None or not 0 <= score <= 100:
                continue
            band = min(int(score // 10), 9)
            bands[band][0] += 1
            bands[band][1] += int(self.reached(lead_id, self.key[0]) is not None)
            bands[band][2] += int(self.reached(lead_id, self.key[1]) is not None)
        rows = []
        for band in sorted(bands):
            leads, reached_from, reached_to = bands[band]
            rows.append({
                "band": band_label(band),
                "from_stage": self.key[0],
                "to_stage": self.key[1],
                "leads": leads,
                "reached_from": reached_from,
                "reached_to": reached_to,
                "from_rate": _ratio(reached_from, leads),
                "key_rate": _ratio(reached_to, reached_from),
            })
        return rows


def band_label(band: int) -> str:
    return "90-100" if band == 9 else f"{10 * band}-{10 * band + 9}"
