"""What every metric module shares: the request, the context that compiles and runs a metric's
query, and the small helpers of the definitions (reached columns, periods, weeks, ratios).

Every metric the dashboard shows and `funnelboard query` prints is computed from one
`MetricRequest`: values are bound as `$parameters`; columns the user picks (segments,
stages) are checked against the configured allow-lists and bound as quoted identifiers by
sqlglot; filters become `"column" = $f0` conditions added to the mart reads.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlglot import exp

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.warehouse.build import expansion
from funnelboard.warehouse.gateway import Gateway
from funnelboard.warehouse.models import (
    Expansion,
    Model,
    bind_identifiers,
    expand,
    models_fingerprint,
    parse_model,
    queries_root,
)

MARTS = ("fct_leads", "fct_spells", "fct_open_spells", "fct_pipeline_moves")


METRIC_ROW_CAP = 2_000_000


OWNER = "owner"


@dataclass(frozen=True)
class MetricRequest:
    """Everything a metric may be asked for; each metric reads the fields it needs."""

    start: datetime | None = None  # UTC, inclusive
    end: datetime | None = None  # UTC, exclusive
    as_of: datetime | None = None  # UTC; default: the latest event
    filters: tuple[tuple[str, str], ...] = ()
    # a signed-in user's fixed filters (docs/serving.md): column -> the values allowed; applied wherever
    # filters are, so a scoped view is the view of those leads only
    scope: tuple[tuple[str, tuple[str, ...]], ...] = ()
    segment: str | None = None
    segment2: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    window_days: int | None = None  # None: the configured window
    business_days: bool = False
    within_days: int = 30
    by: str | None = None
    before: tuple[datetime, datetime] | None = None
    after: tuple[datetime, datetime] | None = None
    mature_only: bool | None = None  # mix_vs_rate, the weekly trend: None = the metric's default
    which: str = "all"  # leads: all, converted or not_converted cohort members
    lead_id: str | None = None  # lead_history
    # change_leads: the kind of change (docs/metrics.md, Changes), the stage it is counted at, an exit's outcome and reason
    change: str | None = None
    stage: str | None = None
    outcome: str | None = None
    reason: str | None = None
    # pipeline value: the close window (all, month, quarter, year or FROM:TO dates; None: all)
    closing: str | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    run: Callable[["Context", MetricRequest], list[dict]]
    splits: bool = False  # takes --segment (one row or group per segment value)

    @classmethod
    def of(cls, name: str, run: Callable[["Context", MetricRequest], list[dict]], *, splits: bool = False) -> "Metric":
        """A metric described by its function's docstring (its first paragraph, on one line)."""
        doc = (run.__doc__ or "").strip().split("\n\n")[0]
        if not doc:
            raise RuntimeError(f"metric {name}: {run.__qualname__} has no docstring to describe it")
        return cls(name, " ".join(doc.split()), run, splits)


@dataclass
class Context:
    """A gateway plus the warehouse's configuration and resolved defaults."""

    gateway: Gateway
    config: FunnelConfig = field(init=False)

    def __post_init__(self) -> None:
        facts = self.gateway.facts()
        self.config = facts["config"]
        if facts["models_fingerprint"] != models_fingerprint():
            raise UserError(
                f"the models in '{self.gateway.db}' were built by another version of funnelboard: "
                f"rebuild them with `funnelboard build --db {self.gateway.db}`."
            )

    def per_file(self, key: tuple, compute):
        """A fact of the published file, computed once per file where the gateway keeps such facts
        (Gateway.per_file), else each time (the Spark gateway)."""
        keep = getattr(self.gateway, "per_file", None)
        return keep(key, compute) if keep else compute()

    def latest_event(self) -> datetime | None:
        return self.gateway.facts()["last_event"]

    def earliest_event(self) -> datetime | None:
        return self.gateway.facts()["first_event"]

    def resolve(self, req: MetricRequest) -> MetricRequest:
        """Fill defaults (as_of, period, window) and check every user-chosen name against the allow-lists."""
        cfg = self.config
        as_of = req.as_of or self.latest_event() or datetime(1970, 1, 1)
        start = req.start or min(self.earliest_event() or as_of, as_of)
        end = req.end or as_of + timedelta(microseconds=1)
        for col in (req.segment, req.segment2, *(c for c, _ in req.filters), *(c for c, _ in req.scope)):
            if col is not None and col not in cfg.segments:
                raise UserError(f"unknown segment column '{col}'; expected one of {', '.join(cfg.segments)}.")
        for stage in (req.from_stage, req.to_stage):
            if stage is not None and stage not in cfg.stages:
                raise UserError(f"unknown stage '{stage}'; expected one of {', '.join(cfg.stages)}.")
        if start >= end:
            raise UserError("the period is empty: --from must be before --to.")
        window = cfg.conversion_window_days if req.window_days is None else req.window_days
        if window < 0:
            raise UserError("the conversion window must be 0 (none) or a positive number of days.")
        return replace(req, as_of=as_of, start=start, end=end, window_days=window)

    def compile(self, name: str, req: MetricRequest, params: dict, identifiers: dict[str, str | None]) -> tuple[exp.Query, dict]:
        """queries/metrics/<name>.sql with markers bound and filters added, and the parameters it uses.
        The tree is the caller's to change (a copy of the compiled one)."""
        compiled, bound = self._compiled(name, req, params, identifiers)
        return compiled.tree.copy(), bound

    def _compiled(self, name: str, req: MetricRequest, params: dict, identifiers: dict[str, str | None]) -> tuple["Compiled", dict]:
        model = _metric_model(name)
        compiled = _compile(
            name, expansion(self.config), tuple(sorted(identifiers.items())), tuple(c for c, _ in req.filters), tuple(c for c, _ in req.scope)
        )
        bound = {k: v for k, v in params.items() if k in model.params}
        missing = set(model.params) - set(bound)
        if missing:
            raise RuntimeError(f"metric {name} needs parameters {sorted(missing)}")
        return compiled, {**bound, **_filter_params(req)}

    def run_tree(self, name: str, tree: exp.Query, params: dict) -> list[dict]:
        """Run a compiled tree, binding only the parameters it still uses."""
        return self._run(name, *rendered(tree, params))

    def run_sql(self, name: str, req: MetricRequest, params: dict, identifiers: dict[str, str | None]) -> list[dict]:
        """Run queries/metrics/<name>.sql with markers bound, filters added and params bound."""
        compiled, bound = self._compiled(name, req, params, identifiers)
        return self._run(name, compiled.sql, {k: v for k, v in bound.items() if k in compiled.placeholders})

    def _run(self, name: str, sql: str, params: dict) -> list[dict]:
        result = self.gateway.query(sql, params, row_cap=METRIC_ROW_CAP)
        if result.truncated:
            raise UserError(
                f"metric {name} has more than {METRIC_ROW_CAP:,} rows; narrow it with --from/--to or --filter."
            )
        return result.dicts()


@dataclass(frozen=True)
class Compiled:
    """A metric query with its markers bound and filters added: the tree, its SQL and its placeholders."""

    tree: exp.Query
    sql: str
    placeholders: frozenset[str]


@functools.lru_cache(maxsize=1024)
def _compile(name: str, lists: "Expansion", identifiers: tuple, filter_columns: tuple[str, ...], scope_columns: tuple[str, ...] = ()) -> Compiled:
    """The compiled query of one metric for one configuration, chosen columns and filtered columns
    (the values are parameters): compiled once, not per request. Copying and rewriting the syntax
    tree took 30-40 ms of every query; a weekly review's heatmap runs six."""
    tree = expand(_metric_model(name).tree, lists)
    tree = _bind(tree, dict(identifiers))
    tree = _add_filters(tree, filter_columns, scope_columns)
    return Compiled(tree, tree.sql(dialect="duckdb"), frozenset(p.name for p in tree.find_all(exp.Placeholder)))


_MODELS: dict[str, Model] = {}


_MODELS_LOCK = threading.Lock()


def _metric_model(name: str) -> Model:
    """The parsed metric query, parsed once. Under a lock: the dashboard's callbacks run in
    threads, and two parses of one file at once have been seen to lose a $parameter."""
    with _MODELS_LOCK:
        if name not in _MODELS:
            _MODELS[name] = parse_model(queries_root() / "metrics" / f"{name}.sql", "metrics")
        return _MODELS[name]


def _bind(tree: exp.Query, identifiers: dict[str, str | None]) -> exp.Query:
    """Bind marker columns: a name becomes a quoted identifier, None the literal '(all)'."""
    names = {k: v for k, v in identifiers.items() if v is not None}
    tree = bind_identifiers(tree, names)
    for column in list(tree.find_all(exp.Column)):
        if column.name in identifiers and identifiers[column.name] is None:
            column.replace(exp.Literal.string("(all)"))
    return tree


def _filter_params(req: MetricRequest) -> dict:
    """The values of the request's filters and scope as the parameters `_add_filters` names
    ($f0, $f1, ... one value each; $s0, $s1, ... a list each)."""
    return {f"f{i}": value for i, (_, value) in enumerate(req.filters)} | {f"s{i}": list(values) for i, (_, values) in enumerate(req.scope)}


def rendered(tree: exp.Query, params: dict) -> tuple[str, dict]:
    """A tree's DuckDB SQL and, of `params`, the ones its placeholders use."""
    used = {p.name for p in tree.find_all(exp.Placeholder)}
    return tree.sql(dialect="duckdb"), {k: v for k, v in params.items() if k in used}


NONE = "(none)"  # the label of a missing segment value in every metric (coalesce(..., '(none)'))


def _add_filters(tree: exp.Query, columns: tuple[str, ...], scope: tuple[str, ...] = ()) -> exp.Query:
    """Add `"col" = $fN` (or, for $fN = '(none)', `"col" is null`: the N-th filtered column) and `list_contains($sN, "col")` (the N-th scoped
    column) to every SELECT that reads a mart directly. A NULL never matches a scope."""
    for select in tree.find_all(exp.Select):
        source = select.args.get("from_") or select.args.get("from")
        table = source.this if source else None
        if not isinstance(table, exp.Table) or table.name not in MARTS:
            continue
        qualifier = table.alias_or_name
        for i, col in enumerate(columns):
            # '(none)' is how every metric labels a missing value, so filtering on it means the missing ones
            column, value = exp.column(col, table=qualifier, quoted=True), exp.Placeholder(this=f"f{i}")
            missing = exp.and_(column.copy().is_(exp.null()), value.copy().eq(exp.Literal.string(NONE)))
            select.where(exp.or_(column.eq(value), missing, wrap=True), append=True, copy=False)
        for i, col in enumerate(scope):
            allowed = exp.Anonymous(this="list_contains", expressions=[exp.Placeholder(this=f"s{i}"), exp.column(col, table=qualifier, quoted=True)])
            select.where(exp.func("coalesce", allowed, exp.false()), append=True, copy=False)
    return tree


def scoped(sql: str, req: MetricRequest) -> tuple[str, dict]:
    """A query of the marts written by hand (a lead's row, a column's values) with the request's scope
    added as every metric has it, and the scope's parameters."""
    import sqlglot

    tree = _add_filters(sqlglot.parse_one(sql, dialect="duckdb"), (), tuple(c for c, _ in req.scope))
    return tree.sql(dialect="duckdb"), {f"s{i}": list(values) for i, (_, values) in enumerate(req.scope)}


def period_params(req: MetricRequest) -> dict:
    return {"start": req.start, "end": req.end, "as_of": req.as_of, "window_days": req.window_days, "start_week": start_week(req.start)}


def start_week(start: datetime) -> date:
    """A Monday on or before the local week of `start` in any time zone (offsets are under a day).
    A lead that counts in a period starting at `start` has fct_leads.last_week on or after it, so
    `last_week >= start_week` lets a scan of fct_leads (stored in last_week order) skip older leads."""
    day = (start - timedelta(days=1)).date()
    return day - timedelta(days=day.weekday())


def reached(stage: str) -> str:
    return f"reached_{stage}"


def week_of(stage: str) -> str:
    """fct_leads' column with the local week of reached_<stage>."""
    return f"week_{stage}"


def ratio(num: float | None, den: float | None) -> float | None:
    return None if not den or num is None else num / den


EPOCH_MONDAY = date(1970, 1, 5)


def utc_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant (naive) at which local day `day` begins in `tz`."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)


def local_time(moment: datetime, tz: ZoneInfo) -> datetime:
    """A naive UTC instant on the wall clock of `tz` (naive)."""
    return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz).replace(tzinfo=None)


def business_clock(moment: datetime, open_hour: float, close_hour: float) -> float:
    """Business hours from Monday 5 January 1970 00:00 to `moment` (a wall-clock time): whole weekdays
    of (close - open) hours, then today's part of [open, close) on a weekday."""
    weeks, weekday = divmod((moment.date() - EPOCH_MONDAY).days, 7)
    length = close_hour - open_hour
    hour = (moment - datetime.combine(moment.date(), datetime.min.time())) / timedelta(hours=1)
    today = min(max(hour - open_hour, 0.0), length) if weekday < 5 else 0.0
    return (weeks * 5 + min(weekday, 5)) * length + today


def business_day_clock(moment: datetime, tz: str) -> float:
    """The business-day clock of docs/metrics.md at a UTC instant (the SQL twin is in fct_spells)."""
    local = local_time(moment, ZoneInfo(tz))
    d = (local - datetime(1970, 1, 5)) / timedelta(days=1)
    weeks = math.floor(d / 7)
    return 5 * weeks + min(d - 7 * weeks, 5)


def rename_key(row: dict, old: str, new: str) -> dict:
    return {(new if k == old else k): v for k, v in row.items()}


def segment_column(rows: list[dict], segment: str | None) -> list[dict]:
    """Rows' `segment` column named after the attribute (--segment), or dropped without one."""
    if segment is not None:
        return [rename_key(r, "segment", segment) for r in rows]
    return [{k: v for k, v in r.items() if k != "segment"} for r in rows]


def conversion_stages(ctx: Context, req: MetricRequest) -> tuple[str, str]:
    """S and T of a conversion: the request's, else the key rate's ([review] key_rate, docs/metrics.md)."""
    key = ctx.config.review_rate
    return req.from_stage or key.from_stage, req.to_stage or key.to_stage


def maturity_days(ctx: Context, from_stage: str, to_stage: str, as_of: datetime, window_days: int) -> float:
    """How old a member of an S cohort must be before its conversion to T counts as settled: the
    window when one is set, else the 90th percentile of the S -> T conversion times of every lead
    that reached both by as_of (the whole warehouse, whatever the filters; 0 when none did)."""
    if window_days > 0:
        return float(window_days)
    return conversion_horizon(ctx, from_stage, to_stage, as_of, window_days)["horizon_days"] or 0.0


def conversion_horizon(ctx: Context, from_stage: str, to_stage: str, as_of: datetime, window_days: int) -> dict:
    """conversion_horizon.sql for one pair and as_of: the p90 conversion time, the conversions and how
    many of them a window leaves out; once per published file."""

    def compute() -> dict:
        req = MetricRequest(as_of=as_of)
        ids = {"__from__": reached(from_stage), "__to__": reached(to_stage)}
        return ctx.run_sql("conversion_horizon", req, {"as_of": as_of, "window_days": window_days}, ids)[0]

    return ctx.per_file(("conversion_horizon", from_stage, to_stage, as_of, window_days), compute)


def conversion_identifiers(ctx: Context, req: MetricRequest) -> dict[str, str | None]:
    from_stage, to_stage = conversion_stages(ctx, req)
    return {"__from__": reached(from_stage), "__to__": reached(to_stage)}


def at_latest_event(ctx: Context, as_of: datetime) -> bool:
    """Whether as_of is at or after the latest spell start (fct_open_spells' open_at): every spell has
    begun, so the marts' "as of the latest event" columns and fct_open_spells answer for it."""

    def open_at():
        rows = ctx.gateway.query("select max(open_at) from fct_open_spells").rows
        return rows[0][0] if rows else None

    since = ctx.per_file(("open_at",), open_at)
    return since is not None and as_of >= since


def local_monday(moment: datetime, tz: str) -> date:
    """Monday of the local ISO week (time zone tz) of a UTC instant."""
    local = moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).date()
    return local - timedelta(days=local.weekday())


def amount_columns(ctx: Context, table: str) -> dict[str, "exp.Expression"]:
    """A lead list's money columns over `table`'s rows: the amount (amount_value, in the deal's own
    currency) and, with [pipeline] deal_currency, that currency as amount_currency."""
    columns = {"amount": exp.column("amount_value", table=table)}
    if ctx.config.deal_currency_column:
        columns["amount_currency"] = exp.column(ctx.config.deal_currency_column, table=table, quoted=True)
    return columns
