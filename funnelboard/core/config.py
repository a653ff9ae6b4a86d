"""The funnel configuration (funnel.toml): stages, outcomes, label and reason maps, segments."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from funnelboard.core.errors import UserError

REQUIRED_EVENT_COLUMNS = ("lead_id", "stage", "entered_at")
OPTIONAL_EVENT_COLUMNS = ("reason",)
TERMINAL_OUTCOMES = ("lost", "disqualified", "rerouted")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def normalise_label(text: str) -> str:
    """The key a stage label or reason is matched on: lower case, whitespace collapsed."""
    return " ".join(text.split()).lower()


def default_config_text() -> str:
    """The built-in funnel.toml, comments included (what `funnelboard init` writes)."""
    return resources.files("funnelboard.core").joinpath("default_funnel.toml").read_text("utf-8")


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
    amount_column: str | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    sla_days: dict[str, float] = field(default_factory=dict)
    source: str = "built-in default"
    # [source.<name>] tables: options for `funnelboard load --source <name>`, passed to the
    # adapter as written (each adapter checks its own keys; see etl/sources/base.py).
    sources: dict[str, dict] = field(default_factory=dict)

    @property
    def all_stages(self) -> tuple[str, ...]:
        """Funnel stages then outcomes: every canonical stage a row may map to."""
        return self.stages + self.outcomes

    @property
    def terminal_stages(self) -> tuple[str, ...]:
        """Stages whose spell never stays open: the win and the final exits."""
        return (self.stages[-1],) + tuple(o for o in self.outcomes if o in TERMINAL_OUTCOMES)

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
        return cls(**data)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def load_config(path: Path | None = None) -> FunnelConfig:
    """Read funnel.toml (or the built-in default when path is None) and check it."""
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


def _build(defaults: dict, user: dict, source: str) -> FunnelConfig:
    known = {"funnel", "input", "columns", "labels", "segments", "attributes", "reasons", "sla_days", "source"}
    unknown = sorted(set(user) - known)
    if unknown:
        raise UserError(
            f"config '{source}' has unknown section [{unknown[0]}]; expected one of {', '.join(sorted(known))}."
        )

    def section(name: str) -> dict:
        # A section the user wrote replaces the default one key by key for scalar
        # sections and whole for maps, so removing a label really removes it.
        if name in ("funnel", "input", "attributes"):
            return {**defaults.get(name, {}), **user.get(name, {})}
        return dict(user[name]) if name in user else dict(defaults.get(name, {}))

    funnel, inp, attrs = section("funnel"), section("input"), section("attributes")
    stages = tuple(_ident(s, "stage", source) for s in funnel["stages"])
    outcomes = tuple(_ident(s, "outcome", source) for s in funnel["outcomes"])
    if len(stages) < 3:
        raise UserError(
            f"config '{source}' must list at least three funnel stages in [funnel] stages: the SQL rate "
            f"is the conversion from the second (MQL) to the third (SQL); found {len(stages)}."
        )
    clash = set(stages) & set(outcomes)
    if len(set(stages)) != len(stages) or len(set(outcomes)) != len(outcomes) or clash:
        raise UserError(f"config '{source}' names a stage twice across [funnel] stages and outcomes.")
    everything = set(stages) | set(outcomes)
    labels = {str(k): str(v) for k, v in section("labels").items()}
    for label, target in labels.items():
        if target not in everything:
            raise UserError(
                f"config '{source}' maps label '{label}' to '{target}', which is not a stage or outcome "
                f"(expected one of {', '.join(stages + outcomes)})."
            )
    tz = str(funnel["timezone"])
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"config '{source}' has unknown time zone '{tz}'; expected an IANA name such as 'Europe/Berlin'.") from None
    rule = str(funnel["skipped_stages"])
    if rule not in ("count", "strict"):
        raise UserError(f"config '{source}' has skipped_stages = '{rule}'; expected 'count' or 'strict'.")
    sla = {str(k): float(v) for k, v in section("sla_days").items()}
    for stage, days in sla.items():
        if stage not in stages or days <= 0:
            raise UserError(f"config '{source}' has [sla_days] {stage} = {days}; expected a funnel stage and a positive number of days.")
    segments = {_ident(str(k), "segment column", source): str(v) for k, v in section("segments").items()}
    columns = {str(k): str(v) for k, v in section("columns").items()}
    for key in columns:
        if key not in REQUIRED_EVENT_COLUMNS + OPTIONAL_EVENT_COLUMNS + ("created_at",):
            raise UserError(f"config '{source}' renames column '{key}' in [columns]; expected lead_id, stage, entered_at, reason or created_at.")
    try:
        date.fromisoformat(str(inp["min_date"]))
    except ValueError:
        raise UserError(f"config '{source}' has min_date = '{inp['min_date']}'; expected a date like 1990-01-01.") from None
    for key in ("delimiter", "quote"):
        if len(str(inp[key])) != 1:
            raise UserError(f"config '{source}' has [input] {key} = '{inp[key]}'; expected a single character.")
    sources = user.get("source", {})
    if not isinstance(sources, dict):
        raise UserError(f"config '{source}' has source = {sources!r}; expected tables such as [source.wide].")
    for name, options in sources.items():
        if not isinstance(options, dict):
            raise UserError(f"config '{source}' has source = {options!r}; expected a table such as [source.{name}].")
    return FunnelConfig(
        stages=stages,
        outcomes=outcomes,
        timezone=tz,
        skipped_stages=rule,
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
        numeric_attributes=tuple(_ident(str(c), "numeric attribute", source) for c in attrs.get("numeric", [])),
        score_column=attrs.get("score") or None,
        amount_column=attrs.get("amount") or None,
        reasons={str(k): str(v) for k, v in section("reasons").items()},
        sla_days=sla,
        source=source,
        sources={str(k): dict(v) for k, v in sources.items()},
    )


def _ident(name: str, what: str, source: str) -> str:
    if not _IDENTIFIER.match(name):
        raise UserError(
            f"config '{source}' has {what} '{name}'; expected lower-case letters, digits and underscores."
        )
    return name
