"""The funnel configuration (funnel.toml): stages, outcomes, label and reason maps, segments, the review's rates.

A user's funnel.toml that names its own stages replaces the built-in demo funnel as a whole: its
label map, reasons, SLAs, segments, attributes and review rates are what the file says (or
nothing), never the demo's. Scalar settings (time zone, window, CSV dialect, ...) default key by key.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from funnelboard.core.errors import UserError
from funnelboard.core.money import CURRENCIES, FORECAST_CATEGORIES, forecast_category

REQUIRED_EVENT_COLUMNS = ("lead_id", "stage", "entered_at")
OPTIONAL_EVENT_COLUMNS = ("reason",)
TERMINAL_OUTCOMES = ("lost", "disqualified", "rerouted")
# The one rule for every name funnel.toml gives a stage, outcome or column: it reaches SQL as an
# identifier (always quoted by the compiler), so it is lower-case letters, digits and underscores.
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Sections that make up the funnel itself: a file that names its own stages takes none of them
# from the built-in demo funnel.
FUNNEL_SECTIONS = ("labels", "reasons", "sla_days", "sla", "segments", "attributes", "review", "response", "pipeline")
SECTIONS = ("funnel", "input", "columns", *FUNNEL_SECTIONS, "source", "criteria_health", "alerts")
_ACRONYMS = {"mql", "sql", "sal", "pql"}


# The one rule for spaces in labels, reasons and values, shared by the Python (normalise_label) and
# the loader's SQL (etl/load.py): Unicode's White_Space characters, so a no-break space (U+00A0),
# a figure space (U+2007) or a narrow no-break space (U+202F) is a space like a tab or a line break.
# Not Python's str.split(), which also splits on the information separators U+001C-U+001F.
SPACES = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
# A run of SPACES, as a regular expression both Python's re and DuckDB's RE2 read the same way.
SPACE_RUN = "[" + SPACES + "]+"
_SPACE_RUN = re.compile(SPACE_RUN)


def normalise_label(text: str) -> str:
    """The key a stage label or reason is matched on: SPACES trimmed and collapsed to one space, lower case."""
    return _lower(_SPACE_RUN.sub(" ", text).strip(" "))


def _lower(text: str) -> str:
    """Lower case as DuckDB's lower() makes it, so the loader's SQL finds the same key: character by
    character (Python lowers a final capital sigma to ς, DuckDB to σ), and the dotted capital I
    (U+0130) to a plain i (Python makes it two characters)."""
    if text.isascii():
        return text.lower()
    return "".join("i" if c == "\u0130" else c.lower() for c in text)


def stage_label(stage: str) -> str:
    """How a stage is named to people: acronyms upper-cased ('MQL'), others capitalised ('Proposal')."""
    if stage.lower() in _ACRONYMS:
        return stage.upper()
    text = stage.replace("_", " ")
    return text[:1].upper() + text[1:]


def default_config_text() -> str:
    """The built-in funnel.toml, comments included (what `funnelboard init` writes)."""
    return resources.files("funnelboard.core").joinpath("default_funnel.toml").read_text("utf-8")


@dataclass(frozen=True)
class Response:
    """[response]: speed to lead. The clock starts when a lead reaches `from_stage` (None: the review
    rate's first stage) and stops at its first response ([attributes] first_response); the SLA is
    `sla_hours` (per value of the `sla_by` segment when `sla_hours_by` names it), counted in business
    hours (Monday to Friday, `open_hour` to `close_hour` local time) when `business`."""

    from_stage: str | None = None
    sla_hours: float | None = None
    business: bool = False
    open_hour: float = 9.0
    close_hour: float = 17.0
    sla_by: str | None = None
    sla_hours_by: dict[str, float] = field(default_factory=dict)

    def sla_for(self, value: str | None) -> float | None:
        """The SLA in hours of a lead whose `sla_by` segment value is `value`."""
        return self.sla_hours_by.get(value, self.sla_hours) if value is not None else self.sla_hours


@dataclass(frozen=True)
class StageSla:
    """One stage SLA (docs/metrics.md, Stalled): how long a lead may sit in `stage` before it breaches,
    `hours` on `clock` ('calendar' or 'business'), for every lead (`value` None) or the leads whose
    [sla] `by` segment has `value`; `days` is the [sla_days] figure as written (calendar only)."""

    stage: str
    value: str | None
    clock: str
    hours: float
    days: float | None = None

    @property
    def threshold_days(self) -> float | None:
        """The SLA in calendar days; None on the business clock, whose days are not calendar days."""
        if self.clock != "calendar":
            return None
        return self.days if self.days is not None else self.hours / 24


ALERT_SEVERITIES = ("info", "warning", "critical")
STALL_ALERTS = ("stalled", "newly_stalled", "sla_breaches")  # read at the latest as_of, not per week


@dataclass(frozen=True)
class Alert:
    """One [[alerts]] entry (docs/report.md, Alerts): `metric` (a weekly KPI such as key_rate,
    new_leads, reached_<stage>, exits, lost, win_rate, median_days_to_target; or stalled,
    newly_stalled, sla_breaches) below or above `threshold` for `weeks` complete weeks in a row,
    under `filters`."""

    name: str
    metric: str
    threshold: float
    below: bool
    weeks: int = 1
    filters: tuple[tuple[str, str], ...] = ()
    severity: str = "warning"

    def condition(self) -> str:
        return f"{'below' if self.below else 'above'} {self.threshold:g}"


@dataclass(frozen=True)
class KeyRate:
    """The review's headline conversion: from one funnel stage to a later one, and its name."""

    from_stage: str
    to_stage: str
    name: str


# [criteria_health]: the playbook's checks on the qualification criteria, each with its default
# stages (or segment) and threshold (docs/metrics.md, Criteria health). A default stage is a role
# in the funnel's key rate F -> T (criteria_defaults): "key_from" F, "key_to" T, "key_to_open" T
# unless it is the win, "before_win" the stage before the win when it comes after T. A role the
# funnel cannot fill leaves the check not applicable; a stage the file names must be a funnel stage.
CRITERIA_CHECKS = {
    "too_broad": {"from": "key_from", "to": "key_to", "floor": 0.20},
    "too_loose": {"from": "key_to", "to": "before_win", "ceiling": 0.90},
    "checklist_gap": {"stage": "key_to_open", "ceiling": 0.30},
    "targeting": {"segment": "channel", "from": "key_from", "to": "key_to", "ceiling": 0.85},
}
STAGE_KEYS = ("from", "to", "stage")


def criteria_defaults(name: str, stages: tuple[str, ...], key: "KeyRate") -> dict:
    """A check's default keys on this funnel, its stage roles filled from the key rate (None: no such stage)."""
    win, before_win = stages[-1], stages[-2]
    qualifies = key.to_stage != win  # a key rate that ends at the win is a close rate: the floors are for a qualification step
    roles = {
        "key_from": key.from_stage if qualifies else None,
        "key_to": key.to_stage if qualifies else None,
        "key_to_open": key.to_stage if key.to_stage != win else None,
        "before_win": before_win if stages.index(before_win) > stages.index(key.to_stage) else None,
    }
    return {k: roles[v] if k in STAGE_KEYS else v for k, v in CRITERIA_CHECKS[name].items()}


@dataclass(frozen=True)
class HealthCheck:
    """One criteria-health check: its name (a key of CRITERIA_CHECKS), its threshold, its stages
    (checklist_gap: from_stage only) and, for targeting, the segment column; a stage or segment is
    None when the funnel lacks the default one (the check does not apply)."""

    name: str
    threshold: float
    from_stage: str | None = None
    to_stage: str | None = None
    segment: str | None = None


def default_health_checks(stages: tuple[str, ...], segments, key: KeyRate) -> tuple[HealthCheck, ...]:
    """The checks with every default, on the key rate's stages: a stage pair only when the funnel has one."""
    return tuple(_health_check(name, {}, stages, segments, key, None) for name in CRITERIA_CHECKS)


def default_key_rate(stages: tuple[str, ...]) -> KeyRate:
    """MQL -> SQL, named "SQL rate", when the funnel has both; else its first step, named by its stages."""
    if "mql" in stages and "sql" in stages and stages.index("mql") < stages.index("sql"):
        return KeyRate("mql", "sql", "SQL rate")
    first, second = stages[0], stages[1]
    return KeyRate(first, second, f"{stage_label(first)} → {stage_label(second)} rate")


@dataclass(frozen=True)
class FunnelConfig:
    """Everything the loader and the models need to know about a funnel."""

    stages: tuple[str, ...]
    outcomes: tuple[str, ...]
    timezone: str = "UTC"
    skipped_stages: str = "count"
    conversion_window_days: int = 0
    min_sample: int = 30
    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    max_future_days: int = 1
    min_date: str = "1990-01-01"
    columns: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    segments: dict[str, str] = field(default_factory=dict)
    numeric_attributes: tuple[str, ...] = ()
    score_column: str | None = None
    score_threshold: float | None = None  # [attributes] score_threshold: the lowest lead score that makes an MQL
    amount_column: str | None = None
    last_activity_column: str | None = None  # [attributes] last_activity: when the lead was last worked (a timestamp)
    currency: str | None = None  # [attributes] currency: the ISO 4217 code the amounts are in, shown with each
    first_response_column: str | None = None  # [attributes] first_response: a lead's first response (a timestamp)
    response: Response = field(default_factory=Response)
    reasons: dict[str, str] = field(default_factory=dict)
    sla_days: dict[str, float] = field(default_factory=dict)
    # [sla_days] and [sla] together: every stage SLA, per stage and per value of [sla] by
    stage_slas: tuple[StageSla, ...] = ()
    sla_by: str | None = None  # [sla] by: the segment column whose values may have their own SLA
    source: str = "built-in default"
    # [source.<name>] tables: options for `funnelboard load --source <name>`, passed to the
    # adapter as written (each adapter checks its own keys; see etl/sources/base.py).
    sources: dict[str, dict] = field(default_factory=dict)
    # [review]: the headline rate and the outcomes that are a lost deal (None: derived, see below)
    key_rate: KeyRate | None = None
    lost_outcomes: tuple[str, ...] | None = None
    # [review] handoff quality (docs/metrics.md, Handoff): the outcomes a handoff is sent back to (None:
    # "nurture" when the funnel has it) and the days after a handoff that count
    sent_back_outcomes: tuple[str, ...] | None = None
    handoff_days: int = 14
    # [criteria_health]: the checks, resolved against the stages (None: the defaults, see health_checks)
    criteria_health: tuple[HealthCheck, ...] | None = None
    alerts: tuple[Alert, ...] = ()  # [[alerts]]: `funnelboard alerts check`
    # [pipeline] (docs/metrics.md, Pipeline value): the first funnel stage whose deals count as pipeline
    # (None: every open funnel stage before the win), and each stage's win probability for weighted value
    pipeline_from: str | None = None
    stage_probability: dict[str, float] = field(default_factory=dict)
    # the deal's expected close date, currency and forecast category columns (each read like the
    # amount: its latest non-empty value), forecast categories by stage, and exchange rates to the
    # reporting currency ([attributes] currency): fixed per currency, or per month from a rates file
    close_date_column: str | None = None
    deal_currency_column: str | None = None
    forecast_column: str | None = None
    forecast_by_stage: dict[str, str] = field(default_factory=dict)
    fixed_rates: dict[str, float] = field(default_factory=dict)
    monthly_rates: tuple[tuple[str, str, float], ...] = ()  # (currency, "YYYY-MM", rate), sorted
    rates_file: str | None = None

    @property
    def health_checks(self) -> tuple[HealthCheck, ...]:
        """The criteria-health checks: [criteria_health] as resolved at load, else the defaults."""
        if self.criteria_health is not None:
            return self.criteria_health
        return default_health_checks(self.stages, self.segments, self.review_rate)

    @property
    def all_stages(self) -> tuple[str, ...]:
        """Funnel stages then outcomes: every canonical stage a row may map to."""
        return self.stages + self.outcomes

    @property
    def terminal_stages(self) -> tuple[str, ...]:
        """Stages whose spell never stays open: the win and the final exits."""
        return (self.stages[-1],) + tuple(o for o in self.outcomes if o in TERMINAL_OUTCOMES)

    @property
    def review_rate(self) -> KeyRate:
        """The review's headline rate: [review] key_rate, else derived from the stages."""
        return self.key_rate or default_key_rate(self.stages)

    @property
    def sent_back(self) -> tuple[str, ...]:
        """Outcomes a handoff is sent back to: [review] sent_back, else the outcome 'nurture' if there is one."""
        if self.sent_back_outcomes is not None:
            return self.sent_back_outcomes
        return ("nurture",) if "nurture" in self.outcomes else ()

    @property
    def won_stage(self) -> str:
        """The win: the last funnel stage."""
        return self.stages[-1]

    @property
    def lost(self) -> tuple[str, ...]:
        """Outcomes that are a lost deal in the win rate: [review] lost, else the outcome 'lost' if there is one."""
        if self.lost_outcomes is not None:
            return self.lost_outcomes
        return ("lost",) if "lost" in self.outcomes else ()

    def unnamed_losses(self) -> str | None:
        """Why the win rate weighs no loss when the funnel has outcomes but names none a lost deal
        ([review] lost; the losses may well be in the data), else None."""
        if self.lost or not self.outcomes:
            return None
        return f"no outcome is named a loss; name the lost ones in [review] lost = [...] (outcomes: {', '.join(self.outcomes)})"

    def label_map(self) -> dict[str, str]:
        """Normalised CRM label -> canonical stage, canonical names included."""
        mapping = {normalise_label(s): s for s in self.all_stages}
        mapping.update({normalise_label(k): v for k, v in self.labels.items()})
        return mapping

    def reason_map(self) -> dict[str, str]:
        """Normalised free-text reason -> normalised reason."""
        return {normalise_label(k): v for k, v in self.reasons.items()}

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)  # key order kept: segment order is the display order

    @classmethod
    def from_json(cls, text: str) -> "FunnelConfig":
        data = json.loads(text)
        for key in ("stages", "outcomes", "numeric_attributes"):
            data[key] = tuple(data[key])
        if data.get("key_rate"):
            data["key_rate"] = KeyRate(**data["key_rate"])
        if data.get("lost_outcomes") is not None:
            data["lost_outcomes"] = tuple(data["lost_outcomes"])
        if data.get("sent_back_outcomes") is not None:
            data["sent_back_outcomes"] = tuple(data["sent_back_outcomes"])
        if data.get("response"):
            data["response"] = Response(**data["response"])
        if data.get("criteria_health") is not None:
            data["criteria_health"] = tuple(HealthCheck(**c) for c in data["criteria_health"])
        if "stage_slas" in data:
            data["stage_slas"] = tuple(StageSla(**s) for s in data["stage_slas"])
        else:  # kept by a version before [sla]: its [sla_days] are the stage SLAs
            data["stage_slas"] = tuple(StageSla(k, None, "calendar", v * 24, v) for k, v in sorted(data.get("sla_days", {}).items()))
        data["monthly_rates"] = tuple(tuple(r) for r in data.get("monthly_rates", ()))
        data["alerts"] = tuple(Alert(**{**a, "filters": tuple(tuple(f) for f in a["filters"])}) for a in data.get("alerts", ()))
        return cls(**data)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def load_config(path: Path | None = None) -> FunnelConfig:
    """Read funnel.toml (or the built-in default when path is None) and check it; the first
    problem found is a UserError of one sentence (`check_config` lists them all)."""
    config, problems = _read(path)
    if problems:
        raise UserError(problems[0])
    return config


def check_config(path: Path) -> tuple[FunnelConfig | None, list[str]]:
    """Every problem of a funnel.toml, one sentence each, and the config when there is none."""
    try:
        config, problems = _read(path)
    except UserError as exc:
        return None, [str(exc)]
    return (None if problems else config), problems


def _read(path: Path | None) -> tuple[FunnelConfig | None, list[str]]:
    defaults = tomllib.loads(default_config_text())
    if path is None:
        return _build(defaults, {}, "built-in default")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file '{path}' does not exist; write one with `funnelboard init`.")
    try:
        user = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"config file '{path}' is not valid TOML: {exc}.") from None
    return _build(defaults, user, str(path))


def sections(defaults: dict, user: dict) -> dict[str, dict]:
    """The sections a config is built from: scalar sections key by key over the defaults; the funnel's
    own sections whole, from the user's file when it names its own stages (or has the section)."""
    own_funnel = "stages" in user.get("funnel", {}) or "outcomes" in user.get("funnel", {})
    own_sla = "sla" in user or "sla_days" in user  # the stage SLAs are one family: written together or inherited together
    out = {}
    for name in SECTIONS:
        if name in ("funnel", "input"):
            out[name] = {**defaults.get(name, {}), **user.get(name, {})}
        elif name in user:
            out[name] = dict(user[name]) if isinstance(user[name], dict) else user[name]
        elif name == "source" or (own_funnel and name in FUNNEL_SECTIONS) or (own_sla and name in ("sla", "sla_days")):
            out[name] = {}
        else:
            out[name] = dict(defaults.get(name, {}))
    if "pipeline" not in user and out["attributes"].get("currency") != defaults.get("attributes", {}).get("currency"):
        # the demo's deal currencies and rates are to its reporting currency: a file that reports in
        # another (or none) has no money conversion until it names its own
        out["pipeline"] = {k: v for k, v in out["pipeline"].items() if k not in ("deal_currency", "rates", "rates_file")}
    return out


def _check_response(section: dict, stages: tuple, segments: dict, problems: "_Problems") -> Response:
    """[response]: each key checked, one sentence per problem."""
    known = {"from", "sla_hours", "clock", "business_hours", "sla_by", "sla_hours_by"}
    for key in sorted(set(section) - known):
        problems.add(f"has [response] {key}; expected one of {', '.join(sorted(known))}.")

    def hours(value, where: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            problems.add(f"has {where} = {value!r}; expected a positive number of hours.")
            return None
        return float(value)

    start = section.get("from")
    if start is not None and start not in stages:
        problems.add(f"has [response] from = {start!r}, which is not a funnel stage ({', '.join(stages)}).")
        start = None
    sla = hours(section["sla_hours"], "[response] sla_hours") if "sla_hours" in section else None
    clock = section.get("clock", "calendar")
    if clock not in ("calendar", "business"):
        problems.add(f"has [response] clock = {clock!r}; expected 'calendar' or 'business'.")
    opening = section.get("business_hours", "09:00-17:00")
    match = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", opening) if isinstance(opening, str) else None
    open_hour = close_hour = None
    if match:
        open_hour, close_hour = int(match[1]) + int(match[2]) / 60, int(match[3]) + int(match[4]) / 60
    if not match or not 0 <= open_hour < close_hour <= 24:
        problems.add(f"has [response] business_hours = {opening!r}; expected opening and closing times like \"09:00-17:00\".")
        open_hour, close_hour = 9.0, 17.0
    by = section.get("sla_by")
    if by is not None and by not in segments:
        problems.add(f"has [response] sla_by = {by!r}, which is not a [segments] column ({', '.join(segments) or 'none'}).")
        by = None
    table = section.get("sla_hours_by", {})
    if not isinstance(table, dict) or (table and by is None):
        problems.add("has [response] sla_hours_by without sla_by naming the segment column its keys are values of.")
        table = {}
    per_value = {str(k): h for k, v in table.items() if (h := hours(v, f"[response] sla_hours_by {k}")) is not None}
    return Response(from_stage=start, sla_hours=sla, business=clock == "business", open_hour=open_hour,
                    close_hour=close_hour, sla_by=by, sla_hours_by=per_value)


def _check_currency(value, problems: "_Problems") -> str | None:
    """[attributes] currency: three capital letters (an ISO 4217 code such as USD or EUR), or unset."""
    if value is None:
        return None
    if not (isinstance(value, str) and value in CURRENCIES):
        problems.add(f"sets [attributes] currency to {value!r}; expected a three-letter ISO 4217 code such as \"USD\" or \"EUR\".")
        return None
    return value


def _check_score_threshold(value, score: str | None, problems: "_Problems") -> float | None:
    """[attributes] score_threshold: a number on the scale of the [attributes] score column, or unset."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.add(f"sets [attributes] score_threshold to {value!r}; expected a number, the lowest lead score that makes a lead an MQL, such as 60.")
        return None
    if score is None:
        problems.add("sets [attributes] score_threshold without [attributes] score; name the lead-score column the threshold applies to.")
        return None
    return float(value)


class _Problems(list):
    """The sentences a config check collects, each naming the file."""

    def __init__(self, source: str):
        super().__init__()
        self.source = source

    def add(self, text: str) -> None:
        self.append(f"config '{self.source}' {text}")


def _build(defaults: dict, user: dict, source: str) -> tuple[FunnelConfig | None, list[str]]:
    problems = _Problems(source)
    unknown = sorted(set(user) - set(SECTIONS))
    for name in unknown:
        problems.add(f"has unknown section [{name}]; expected one of {', '.join(sorted(SECTIONS))}.")
    s = sections(defaults, user)
    funnel, inp, attrs = s["funnel"], s["input"], s["attributes"]
    stages, outcomes = _check_stages(funnel, problems)
    labels = _check_labels(s["labels"], stages, outcomes, problems)
    tz = _check_scalars(funnel, inp, problems)
    sla = _check_sla(s["sla_days"], stages, problems)
    segments = {_ident(str(k), "segment column", problems): str(v) for k, v in s["segments"].items()}
    for k, v in s["segments"].items():
        if not isinstance(v, str) or not v.strip():
            problems.add(f"has [segments] {k} = {v!r}; expected the column's display name in quotes ({k} = \"{str(k).capitalize()}\").")
    columns = {str(k): str(v) for k, v in s["columns"].items()}
    for key in columns:
        if key not in REQUIRED_EVENT_COLUMNS + OPTIONAL_EVENT_COLUMNS + ("created_at",):
            problems.add(f"renames column '{key}' in [columns]; expected lead_id, stage, entered_at, reason or created_at.")
    numeric = tuple(_ident(str(c), "numeric attribute", problems) for c in attrs.get("numeric", []))
    score = _optional_ident(attrs.get("score"), "[attributes] score", problems)
    score_threshold = _check_score_threshold(attrs.get("score_threshold"), score, problems)
    amount = _optional_ident(attrs.get("amount"), "[attributes] amount", problems)
    last_activity = _optional_ident(attrs.get("last_activity"), "[attributes] last_activity", problems)
    currency = _check_currency(attrs.get("currency"), problems)
    first_response = _optional_ident(attrs.get("first_response"), "[attributes] first_response", problems)
    response = _check_response(s["response"], stages, segments, problems)
    stage_slas, sla_by = _check_stage_sla(s["sla"], sla, stages, segments, problems)
    key_rate, lost = _check_review(s["review"], stages, outcomes, problems)
    sent_back, handoff_days = _check_handoff(s["review"], outcomes, problems)
    health = (_check_criteria_health(s["criteria_health"], stages, segments, key_rate or default_key_rate(stages), problems)
              if len(stages) >= 2 else ())  # too few stages is a problem already, and has no key rate
    sources = _check_sources(s["source"], problems)
    alerts = _check_alerts(s["alerts"], stages, segments, problems)
    pipeline_from, probability = _check_pipeline(s["pipeline"], stages, problems)
    money = _check_money(s["pipeline"], stages, currency, source, problems)
    if problems:
        return None, list(problems)
    return FunnelConfig(
        stages=stages,
        outcomes=outcomes,
        timezone=tz,
        skipped_stages=str(funnel["skipped_stages"]),
        conversion_window_days=int(funnel.get("conversion_window_days", 0)),
        min_sample=int(funnel.get("min_sample", 30)),
        delimiter=str(inp["delimiter"]),
        quote=str(inp["quote"]),
        encoding=str(inp["encoding"]),
        max_future_days=int(inp["max_future_days"]),
        min_date=str(inp["min_date"]),
        columns=columns,
        labels=labels,
        segments=segments,
        numeric_attributes=numeric,
        score_column=score,
        score_threshold=score_threshold,
        amount_column=amount,
        last_activity_column=last_activity,
        currency=currency,
        first_response_column=first_response,
        response=response,
        reasons={str(k): str(v) for k, v in s["reasons"].items()},
        sla_days=sla,
        stage_slas=stage_slas,
        sla_by=sla_by,
        source=source,
        sources=sources,
        key_rate=key_rate,
        lost_outcomes=lost,
        pipeline_from=pipeline_from,
        stage_probability=probability,
        **money,
        sent_back_outcomes=sent_back,
        handoff_days=handoff_days,
        criteria_health=health,
        alerts=alerts,
    ), []


def _check_stages(funnel: dict, problems: _Problems) -> tuple[tuple[str, ...], tuple[str, ...]]:
    stages = tuple(_ident(str(s), "stage", problems) for s in _list(funnel.get("stages"), "[funnel] stages", problems))
    outcomes = tuple(_ident(str(s), "outcome", problems) for s in _list(funnel.get("outcomes"), "[funnel] outcomes", problems))
    if len(stages) < 2:
        problems.add(f"must list at least two funnel stages in [funnel] stages (where leads enter and the win); found {len(stages)}.")
    if len(set(stages)) != len(stages) or len(set(outcomes)) != len(outcomes) or set(stages) & set(outcomes):
        problems.add("names a stage twice across [funnel] stages and outcomes.")
    return stages, outcomes


def _check_labels(section: dict, stages: tuple, outcomes: tuple, problems: _Problems) -> dict[str, str]:
    labels = {str(k): str(v) for k, v in section.items()}
    for label, target in labels.items():
        if target not in stages + outcomes:
            problems.add(
                f"maps label '{label}' to '{target}', which is not a stage or outcome "
                f"(expected one of {', '.join(stages + outcomes)})."
            )
    return labels


def _check_scalars(funnel: dict, inp: dict, problems: _Problems) -> str:
    tz = str(funnel.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(f"has unknown time zone '{tz}'; expected an IANA name such as 'Europe/Berlin'.")
    rule = str(funnel.get("skipped_stages"))
    if rule not in ("count", "strict"):
        problems.add(f"has skipped_stages = '{rule}'; expected 'count' or 'strict'.")
    for key, low in (("conversion_window_days", 0), ("min_sample", 1)):
        if not isinstance(funnel.get(key), int) or isinstance(funnel.get(key), bool) or funnel[key] < low:
            problems.add(f"has [funnel] {key} = {funnel.get(key)!r}; expected a whole number of at least {low}.")
    value = inp.get("max_future_days")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        problems.add(f"has [input] max_future_days = {value!r}; expected a whole number of days, 0 or more.")
    try:
        date.fromisoformat(str(inp.get("min_date")))
    except ValueError:
        problems.add(f"has min_date = '{inp.get('min_date')}'; expected a date like 1990-01-01.")
    for key in ("delimiter", "quote"):
        if len(str(inp.get(key))) != 1:
            problems.add(f"has [input] {key} = '{inp.get(key)}'; expected a single character.")
    return tz


def _check_sla(section: dict, stages: tuple, problems: _Problems) -> dict[str, float]:
    sla = {}
    for stage, days in section.items():
        if str(stage) not in stages or not isinstance(days, (int, float)) or isinstance(days, bool) or days <= 0:
            problems.add(f"has [sla_days] {stage} = {days!r}; expected a funnel stage and a positive number of days.")
        else:
            sla[str(stage)] = float(days)
    return sla


def _check_stage_sla(section: dict, sla_days: dict[str, float], stages: tuple, segments: dict,
                     problems: _Problems) -> tuple[tuple[StageSla, ...], str | None]:
    """[sla] (hours per stage on one clock, per value of the `by` segment in `hours_by`) with
    [sla_days] (calendar days per stage): every stage SLA, one sentence per problem."""
    known = {"clock", "hours", "by", "hours_by"}
    for key in sorted(set(section) - known):
        problems.add(f"has [sla] {key}; expected one of {', '.join(sorted(known))}.")
    clock = section.get("clock", "calendar")
    if clock not in ("calendar", "business"):
        problems.add(f"has [sla] clock = {clock!r}; expected 'calendar' or 'business'.")
        clock = "calendar"
    slas = [StageSla(stage, None, "calendar", days * 24, days) for stage, days in sorted(sla_days.items())]

    def table(value, where: str) -> dict[str, float]:
        if not isinstance(value, dict):
            problems.add(f"has {where} = {value!r}; expected a table of funnel stage = hours, like {{ mql = 16 }}.")
            return {}
        out = {}
        for stage, hours in value.items():
            if str(stage) not in stages[:-1] or isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 < hours < math.inf:
                problems.add(f"has {where} {stage} = {hours!r}; expected a funnel stage before the last and a positive number of hours.")
            else:
                out[str(stage)] = float(hours)
        return out

    hours = table(section.get("hours", {}), "[sla] hours")
    for stage in sorted(set(hours) & set(sla_days)):
        problems.add(f"sets the SLA of stage '{stage}' in both [sla_days] and [sla] hours; keep one.")
    slas += [StageSla(stage, None, clock, h) for stage, h in sorted(hours.items())]
    by = section.get("by")
    if by is not None and by not in segments:
        problems.add(f"has [sla] by = {by!r}, which is not a [segments] column ({', '.join(segments) or 'none'}).")
        by = None
    per_value = section.get("hours_by", {})
    if per_value and by is None:
        problems.add("has [sla] hours_by without by naming the segment column its keys are values of.")
    elif isinstance(per_value, dict):
        for value, stage_hours in sorted(per_value.items()):
            slas += [StageSla(stage, str(value), clock, h) for stage, h in sorted(table(stage_hours, f"[sla] hours_by {value}").items())]
    else:
        problems.add(f"has [sla] hours_by = {per_value!r}; expected a table of segment value = {{ stage = hours }}.")
    return tuple(slas), by


def alert_metrics(stages: tuple[str, ...]) -> tuple[str, ...]:
    """What an alert may watch: the weekly KPIs of a funnel, then the stall counts."""
    return ("key_rate", "new_leads", *(f"reached_{s}" for s in stages), "exits", "lost", "win_rate", "median_days_to_target",
            *STALL_ALERTS)


def _check_pipeline(section: dict, stages: tuple, problems: "_Problems") -> tuple[str | None, dict[str, float]]:
    """[pipeline] from_stage (a funnel stage before the last) and probability (stage = a share from 0 to 1)."""
    for key in sorted(set(section) - set(PIPELINE_KEYS)):
        problems.add(f"has [pipeline] {key}; expected one of {', '.join(PIPELINE_KEYS)}.")
    open_stages = stages[:-1]
    start = section.get("from_stage")
    if start is not None and start not in open_stages:
        problems.add(f"has [pipeline] from_stage = {start!r}; expected a funnel stage before the last ({', '.join(open_stages)}).")
        start = None
    probability = section.get("probability", {})
    if not isinstance(probability, dict):
        problems.add("has a [pipeline] probability that is not a table like { opportunity = 0.2, proposal = 0.5 }.")
        return start, {}
    out = {}
    for stage, share in probability.items():
        if stage not in open_stages:
            problems.add(f"has [pipeline] probability for '{stage}'; expected funnel stages before the last ({', '.join(open_stages)}).")
        elif isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            problems.add(f"has [pipeline] probability {stage} = {share!r}; expected a share from 0 to 1.")
        else:
            out[str(stage)] = float(share)
    return start, out


PIPELINE_KEYS = ("from_stage", "probability", "close_date", "deal_currency", "forecast_category", "forecast", "rates", "rates_file")


def _check_money(section: dict, stages: tuple, reporting: str | None, source: str, problems: "_Problems") -> dict:
    """[pipeline] close_date, deal_currency, forecast_category (columns), forecast (stage = category),
    rates (currency = reporting-currency units per unit) and rates_file (CSV: currency,month,rate)."""
    columns = {key: _optional_ident(section.get(key), f"[pipeline] {key}", problems) for key in ("close_date", "deal_currency", "forecast_category")}
    forecast = section.get("forecast", {})
    by_stage = {}
    if not isinstance(forecast, dict):
        problems.add('has a [pipeline] forecast that is not a table like { opportunity = "pipeline", proposal = "best case" }.')
        forecast = {}
    for stage, name in forecast.items():
        category = forecast_category(name) if isinstance(name, str) else None
        if stage not in stages[:-1]:
            problems.add(f"has [pipeline] forecast for '{stage}'; expected funnel stages before the last ({', '.join(stages[:-1])}).")
        elif category is None or category == "closed":
            problems.add(f"has [pipeline] forecast {stage} = {name!r}; expected one of {', '.join(FORECAST_CATEGORIES[:-1])}.")
        else:
            by_stage[str(stage)] = category
    rates = section.get("rates", {})
    fixed = {}
    if not isinstance(rates, dict):
        problems.add("has a [pipeline] rates that is not a table like { EUR = 1.08, GBP = 1.27 }.")
        rates = {}
    for code, rate in rates.items():
        if code not in CURRENCIES:
            problems.add(f"has [pipeline] rates for {code!r}; expected ISO 4217 currency codes such as EUR.")
        elif isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (math.isfinite(rate) and rate > 0):
            problems.add(f"has [pipeline] rates {code} = {rate!r}; expected a positive number of {reporting or 'reporting-currency'} units per {code}.")
        else:
            fixed[str(code)] = float(rate)
    rates_file = section.get("rates_file")
    monthly: tuple = ()
    if rates_file is not None:
        if not isinstance(rates_file, str):
            problems.add(f"has [pipeline] rates_file = {rates_file!r}; expected the path of a CSV file with columns currency,month,rate.")
            rates_file = None
        else:
            base = Path(source).parent if source != "built-in default" else Path.cwd()
            monthly = _read_rates(base / rates_file, problems)
    if (fixed or monthly or columns["deal_currency"]) and reporting is None:
        problems.add("sets [pipeline] deal_currency or rates without [attributes] currency; name the reporting currency every amount is converted to.")
    return {"close_date_column": columns["close_date"], "deal_currency_column": columns["deal_currency"],
            "forecast_column": columns["forecast_category"], "forecast_by_stage": by_stage, "fixed_rates": fixed,
            "monthly_rates": monthly, "rates_file": rates_file}


def _read_rates(path: Path, problems: "_Problems") -> tuple[tuple[str, str, float], ...]:
    """A rates file: a header `currency,month,rate`, then one row per currency and month (2026-11),
    the rate in reporting-currency units per unit of the currency."""
    try:
        rows = list(csv.reader(path.read_text("utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(f"names [pipeline] rates_file '{path}', which cannot be read: {exc}.")
        return ()
    if not rows or [c.strip().lower() for c in rows[0]] != ["currency", "month", "rate"]:
        problems.add(f"names [pipeline] rates_file '{path}', whose first line is not the header currency,month,rate.")
        return ()
    out = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        code, month, rate = ([c.strip() for c in row] + ["", "", ""])[:3]
        try:
            value = float(rate)
        except ValueError:
            value = math.nan
        if len(row) != 3 or code not in CURRENCIES or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month) or not (math.isfinite(value) and value > 0):
            problems.add(f"names [pipeline] rates_file '{path}', whose line {line} ({','.join(row)}) is not a currency code, a month like 2026-11 and a positive rate.")
            return ()
        if (code, month) in out:
            problems.add(f"names [pipeline] rates_file '{path}', which gives {code} for {month} twice (line {line}).")
            return ()
        out[(code, month)] = value
    return tuple(sorted((c, m, r) for (c, m), r in out.items()))


def _check_alerts(section, stages: tuple, segments: dict, problems: _Problems) -> tuple[Alert, ...]:
    """[[alerts]]: an array of tables, each checked; one sentence per problem."""
    if section in ({}, None):
        return ()
    if not isinstance(section, list):
        problems.add("has [alerts]; write each alert as its own [[alerts]] table.")
        return ()
    known = {"name", "metric", "below", "above", "weeks", "filter", "severity"}
    metrics = alert_metrics(stages)
    out, names = [], set()
    for i, spec in enumerate(section, start=1):
        where = f"[[alerts]] number {i}"
        for key in sorted(set(spec) - known):
            problems.add(f"has {where} key {key}; expected one of {', '.join(sorted(known))}.")
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip() or name in names:
            problems.add(f"has {where} without a name of its own (name = \"SQL rate low\").")
            continue
        names.add(name)
        where = f"alert '{name}'"
        metric = spec.get("metric")
        if metric not in metrics:
            problems.add(f"has {where} on metric {metric!r}; expected one of {', '.join(metrics)}.")
            continue
        sides = [k for k in ("below", "above") if k in spec]
        value = spec.get(sides[0]) if len(sides) == 1 else None
        if len(sides) != 1 or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.add(f"has {where} without one condition; expected below = NUMBER or above = NUMBER (a rate as 0.15).")
            continue
        weeks = spec.get("weeks", 1)
        if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= 52 or (metric in STALL_ALERTS and weeks != 1):
            problems.add(f"has {where} weeks = {weeks!r}; expected a whole number of weeks from 1 to 52 (1 for {', '.join(STALL_ALERTS)}).")
            continue
        table = spec.get("filter", {})
        if not isinstance(table, dict) or any(k not in segments for k in table):
            problems.add(f"has {where} filter {table!r}; expected a table of [segments] columns, like {{ channel = \"inbound\" }}.")
            continue
        severity = spec.get("severity", "warning")
        if severity not in ALERT_SEVERITIES:
            problems.add(f"has {where} severity {severity!r}; expected one of {', '.join(ALERT_SEVERITIES)}.")
            continue
        out.append(Alert(name, metric, float(value), sides[0] == "below", weeks, tuple((str(k), str(v)) for k, v in table.items()), severity))
    return tuple(out)


def _check_review(section: dict, stages: tuple, outcomes: tuple, problems: _Problems) -> tuple[KeyRate | None, tuple[str, ...] | None]:
    unknown = sorted(set(section) - {"key_rate", "lost", "sent_back", "handoff_days"})
    if unknown:
        problems.add(f"has [review] {unknown[0]}; expected key_rate, lost, sent_back or handoff_days.")
    key_rate = None
    spec = section.get("key_rate")
    if spec is not None:
        if not isinstance(spec, dict) or set(spec) - {"from", "to", "name"} or not {"from", "to"} <= set(spec):
            problems.add('has a [review] key_rate that is not { from = "STAGE", to = "STAGE", name = "..." }.')
        elif spec["from"] not in stages or spec["to"] not in stages or stages.index(spec["from"]) >= stages.index(spec["to"]):
            problems.add(
                f"has [review] key_rate from '{spec['from']}' to '{spec['to']}'; expected two funnel stages, "
                f"the second later ({', '.join(stages)})."
            )
        else:
            name = str(spec.get("name") or default_name(spec["from"], spec["to"]))
            key_rate = KeyRate(spec["from"], spec["to"], name)
    lost = None
    if "lost" in section:
        lost = tuple(str(o) for o in _list(section["lost"], "[review] lost", problems))
        for o in lost:
            if o not in outcomes:
                problems.add(f"has [review] lost = '{o}', which is not an outcome (expected some of {', '.join(outcomes) or 'none'}).")
    return key_rate, lost


def _check_criteria_health(section: dict, stages: tuple, segments: dict, key: KeyRate, problems: _Problems) -> tuple[HealthCheck, ...]:
    """[criteria_health]: a table per check ({ from, to, floor } and the like), each key optional."""
    for name in sorted(set(section) - set(CRITERIA_CHECKS)):
        problems.add(f"has [criteria_health] {name}; expected one of {', '.join(CRITERIA_CHECKS)}.")
    checks = []
    for name in CRITERIA_CHECKS:
        spec = section.get(name, {})
        if not isinstance(spec, dict):
            problems.add(f"has [criteria_health] {name} = {spec!r}; expected a table such as {_spec_example(name, stages, key)}.")
            spec = {}
        checks.append(_health_check(name, spec, stages, segments, key, problems))
    return tuple(checks)


def _spec_example(name: str, stages: tuple, key: KeyRate) -> str:
    defaults = criteria_defaults(name, stages, key)
    return "{ " + ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in defaults.items() if v is not None) + " }"


def _health_check(name: str, spec: dict, stages: tuple, segments, key: KeyRate, problems: _Problems | None) -> HealthCheck:
    """One check from the file's keys over the defaults (criteria_defaults); a default stage or segment
    the funnel lacks becomes None, one the file names is checked (problems is None for the defaults alone)."""
    defaults = criteria_defaults(name, stages, key)
    where = f"[criteria_health] {name}"
    for key in sorted(set(spec) - set(defaults)):
        problems.add(f"has {where} key '{key}'; expected {', '.join(defaults)}.")
    limit = next(k for k in defaults if k in ("floor", "ceiling"))
    threshold = spec.get(limit, defaults[limit])
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        problems.add(f"has {where} {limit} = {threshold!r}; expected a share from 0 to 1, such as {defaults[limit]}.")
        threshold = defaults[limit]
    named = {k: spec.get(k, defaults[k]) for k in ("from", "to", "stage", "segment") if k in defaults}
    for key, value in named.items():
        allowed = segments if key == "segment" else stages
        if value in allowed:
            continue
        if key in spec:
            what = "a [segments] column" if key == "segment" else "a funnel stage"
            problems.add(f"has {where} {key} = {value!r}, which is not {what} ({', '.join(allowed) or 'none'}).")
        named[key] = None
    pair = named.get("from"), named.get("to")
    if "from" in named and (None in pair or stages.index(pair[0]) >= stages.index(pair[1])):
        if None not in pair and ("from" in spec or "to" in spec):
            problems.add(f"has {where} from '{pair[0]}' to '{pair[1]}'; expected two funnel stages, the second later.")
        pair = (None, None)
    first = pair[0] if "from" in named else named["stage"]
    return HealthCheck(name, float(threshold), first, pair[1], named.get("segment"))


def _check_handoff(section: dict, outcomes: tuple, problems: _Problems) -> tuple[tuple[str, ...] | None, int]:
    """[review] sent_back (outcomes of this funnel) and handoff_days (a whole number, 0 or more)."""
    sent_back = None
    if "sent_back" in section:
        sent_back = tuple(str(o) for o in _list(section["sent_back"], "[review] sent_back", problems))
        for o in sent_back:
            if o not in outcomes:
                problems.add(f"has [review] sent_back = '{o}', which is not an outcome (expected some of {', '.join(outcomes) or 'none'}).")
    days = section.get("handoff_days", 14)
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        problems.add(f"has [review] handoff_days = {days!r}; expected a whole number of days, 0 (any time) or more.")
        days = 14
    return sent_back, days


def default_name(from_stage: str, to_stage: str) -> str:
    return f"{stage_label(from_stage)} → {stage_label(to_stage)} rate"


def _check_sources(sources, problems: _Problems) -> dict[str, dict]:
    if not isinstance(sources, dict):
        problems.add(f"has source = {sources!r}; expected tables such as [source.wide].")
        return {}
    for name, options in sources.items():
        if not isinstance(options, dict):
            problems.add(f"has source = {options!r}; expected a table such as [source.{name}].")
    return {str(k): dict(v) for k, v in sources.items() if isinstance(v, dict)}


def _list(value, what: str, problems: _Problems) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(f"has {what} = {value!r}; expected a list such as [\"a\", \"b\"].")
        return []
    return value


def _ident(name: str, what: str, problems: _Problems) -> str:
    if not IDENTIFIER.match(name):
        problems.add(f"has {what} '{name}'; expected lower-case letters, digits and underscores.")
    return name


def _optional_ident(value, what: str, problems: _Problems) -> str | None:
    if value in (None, ""):
        return None
    return _ident(str(value), what, problems)
