"""Build the models into a warehouse connection: config seeds, then every model in dependency order;
or refresh them for the leads a load touched (incremental refresh, docs/loading.md)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from funnelboard import __version__
from funnelboard.core.config import FunnelConfig
from funnelboard.core.progress import Progress
from funnelboard.etl import raw_schema
from funnelboard.warehouse.models import (
    LEAD_SOURCES,
    Expansion,
    Model,
    ModelError,
    build_order,
    expand,
    load_models,
    models_fingerprint,
    window_parts,
)

# A refresh holds the touched leads' rows of each lead-split table in a temporary table of this
# prefix and the table's name: raw_events, raw_leads and every by_lead model.
DELTA = "_delta_"


def attribute_columns(config: FunnelConfig) -> tuple[str, ...]:
    """The attribute columns the models carry: segments, numeric attributes, score, amount, last activity and first response."""
    names = list(config.segments) + list(config.numeric_attributes)
    names += [c for c in (config.score_column, config.amount_column, config.last_activity_column, config.first_response_column,
                          config.close_date_column, config.deal_currency_column, config.forecast_column) if c]
    return tuple(dict.fromkeys(names))


def expansion(config: FunnelConfig) -> Expansion:
    return Expansion(
        attributes=attribute_columns(config),
        stages=config.stages,
        outcomes=config.outcomes,
        score=config.score_column,
        amount=config.amount_column,
        close_date=config.close_date_column,
        deal_currency=config.deal_currency_column,
        forecast=config.forecast_column,
        sla_by=config.sla_by,
    )


def sla_rows(config: FunnelConfig) -> list[tuple]:
    """cfg_sla's rows: per stage SLA (sla_value NULL: every lead's; else the [sla] by value's), its
    clock, its calendar days (NULL on the business clock) and its hours."""
    return [(s.stage, s.value, s.clock, s.threshold_days, s.hours) for s in config.stage_slas]


def settings_row(config: FunnelConfig) -> tuple:
    """cfg_settings' one row: timezone, skipped_stages, window_days, min_sample, open_hour, close_hour,
    pipeline_from_order (the order of [pipeline] from_stage, 1 without one)."""
    return (config.timezone, config.skipped_stages, config.conversion_window_days, config.min_sample,
            config.response.open_hour, config.response.close_hour,
            config.stages.index(config.pipeline_from) + 1 if config.pipeline_from else 1)


def write_seeds(con: duckdb.DuckDBPyConnection, config: FunnelConfig) -> None:
    """The configuration as small tables the models join (stage order, reason map, SLAs, settings)."""
    n = len(config.stages)
    con.execute(
        "create or replace table cfg_stages (stage varchar, stage_order integer, stage_rank integer, "
        "kind varchar, is_terminal boolean, is_last boolean)"
    )
    rows = [(s, i, i, "funnel", s in config.terminal_stages, i == n) for i, s in enumerate(config.stages, start=1)]
    rows += [(o, None, n + i, "outcome", o in config.terminal_stages, False) for i, o in enumerate(config.outcomes, start=1)]
    con.executemany("insert into cfg_stages values (?, ?, ?, ?, ?, ?)", rows)
    con.execute("create or replace table cfg_reasons (reason_key varchar, reason varchar)")
    if config.reasons:
        con.executemany("insert into cfg_reasons values (?, ?)", sorted(config.reason_map().items()))
    con.execute("create or replace table cfg_sla (stage varchar, sla_value varchar, clock varchar, sla_days double, sla_hours double)")
    if config.stage_slas:
        con.executemany("insert into cfg_sla values (?, ?, ?, ?, ?)", sla_rows(config))
    con.execute(
        "create or replace table cfg_settings as select $tz::varchar as timezone, $rule::varchar as skipped_stages, "
        "$window::integer as window_days, $min::integer as min_sample, $open::double as open_hour, $close::double as close_hour, "
        "$pipeline_from::integer as pipeline_from_order",
        dict(zip(("tz", "rule", "window", "min", "open", "close", "pipeline_from"), settings_row(config))),
    )


def expected_columns(model: Model, lists: Expansion) -> list[str]:
    out: list[str] = []
    for name in model.meta["columns"]:
        if "__attr__" in name:
            out += [name.replace("__attr__", a) for a in lists.attributes]
        elif "__stage__" in name:
            out += [name.replace("__stage__", s) for s in lists.stages]
        elif "__outcome__" in name:
            out += [name.replace("__outcome__", o) for o in lists.outcomes]
        else:
            out.append(name)
    return out


def build_models(con: duckdb.DuckDBPyConnection, config: FunnelConfig, progress: Progress | None = None) -> list[str]:
    """Create every model as a table or view, check its columns and data tests; return the names built."""
    progress = progress or Progress(enabled=False)
    raw_schema.ensure_schema(con)
    lists = expansion(config)
    raw_schema.add_attribute_columns(con, "raw_events", lists.attributes)
    raw_schema.add_attribute_columns(con, "raw_leads", lists.attributes)
    write_seeds(con, config)
    fingerprint = models_fingerprint()
    built = []
    compiled = compiled_models(fingerprint, lists)
    try:
        for model, sql in compiled:
            _build_one(con, model, sql, lists, progress)
            built.append(model.name)
    finally:
        _drop_temporary(con, [model for model, _sql in compiled])
    raw_schema.set_meta(con, "models_fingerprint", fingerprint)
    return built


def _build_one(con: duckdb.DuckDBPyConnection, model: Model, sql: str, lists: Expansion, progress: Progress) -> None:
    """Create (or replace) one model whole, check its columns and run its data tests. A temporary
    model is a temporary table of this connection: whatever the warehouse holds under its name (an
    older build's table) is dropped."""
    kind = {"view": "view", "temporary": "temp table"}.get(model.materialized, "table")
    existing = con.execute(
        "select table_type from information_schema.tables "
        "where table_catalog = current_database() and table_schema = 'main' and table_name = $n",
        {"n": model.name},
    ).fetchall()
    if existing and (kind == "temp table" or (existing[0][0] == "VIEW") != (kind == "view")):
        con.execute(f"drop {'view' if existing[0][0] == 'VIEW' else 'table'} {_ident(model.name)}")
    try:
        progress.execute(con, f"building {model.layer}/{model.name}", f"create or replace {kind} {_ident(model.name)} as {sql}")
    except duckdb.Error as exc:
        raise ModelError(f"model {model.name} failed to build: {str(exc).splitlines()[0]}") from None
    _check_columns(con, model, lists)
    _run_tests(con, model)


def _drop_temporary(con: duckdb.DuckDBPyConnection, models: list[Model]) -> None:
    """Drop the temporary models' tables once the models that read them are built."""
    for model in models:
        if model.materialized == "temporary":
            con.execute(f"drop table if exists temp.main.{_ident(model.name)}")


def _model_config(config_json: str) -> dict:
    """A configuration as the models see it: everything but where it was read from."""
    data = json.loads(config_json)
    data.pop("source", None)
    return data


def refresh_blocker(con: duckdb.DuckDBPyConnection, config: FunnelConfig) -> str | None:
    """Why the models of this warehouse cannot be refreshed lead by lead (None: they can). A refresh
    is exact only on models built by the same model files, funnelboard and configuration."""
    meta = dict(con.execute("select key, value from meta").fetchall())
    if "models_fingerprint" not in meta:
        return "no models built yet"
    if meta["models_fingerprint"] != models_fingerprint():
        return "the model files changed since the last build"
    if meta.get("funnelboard_version") != __version__:
        return "the models were built by another version of funnelboard"
    if "config" not in meta or _model_config(meta["config"]) != _model_config(config.to_json()):
        return "the configuration changed since the last build"
    lists = expansion(config)
    for table in sorted(LEAD_SOURCES):
        if not set(lists.attributes) <= set(raw_schema.table_columns(con, table)):
            return f"{table} lacks an attribute column"
    kinds = dict(con.execute(
        "select table_name, table_type from information_schema.tables where table_catalog = current_database() and table_schema = 'main'"
    ).fetchall())
    for model, _tree in _expanded(models_fingerprint(), lists):
        if model.materialized == "temporary":
            continue
        if kinds.get(model.name) != ("VIEW" if model.materialized == "view" else "BASE TABLE"):
            return f"model {model.name} is missing or not a {model.materialized}"
        if raw_schema.table_columns(con, model.name) != expected_columns(model, lists):
            return f"model {model.name} has other columns than its metadata"
    return None


class NotRefreshable(Exception):
    """A refresh found the models' stored column types differ from what their SQL makes now: build in full."""


def refresh_models(con: duckdb.DuckDBPyConnection, config: FunnelConfig, touched: str, progress: Progress | None = None) -> list[str]:
    """Bring the models up to date for the leads in the table `touched` (a lead_id column) after
    their raw rows changed: each by_lead model's rows of those leads are computed from their raw
    rows, checked, tested and put in place of the old ones; each window model is refreshed in place
    by its globals (`_refresh_window`); each full model is rebuilt whole. Only for a warehouse
    `refresh_blocker` passes; returns the models refreshed, in build order. Raises NotRefreshable,
    before any model is changed, when a model's column types differ."""
    progress = progress or Progress(enabled=False)
    lists = expansion(config)
    write_seeds(con, config)
    fingerprint = models_fingerprint()
    leads = f"(select lead_id from {_ident(touched)})"
    for source in sorted(LEAD_SOURCES):
        progress.execute(con, f"reading the touched leads' rows of {source}",
                         f"create or replace temp table {_ident(DELTA + source)} as select * from {_ident(source)} where lead_id in {leads}")
    plan = _expanded(fingerprint, lists)
    deltas = delta_sqls(fingerprint, lists)
    # 1. the touched leads' rows of every by_lead model, each computed from its inputs' deltas
    for model, _tree in plan:
        if model.name not in deltas:
            continue
        delta = DELTA + model.name
        try:
            progress.execute(con, f"refreshing {model.layer}/{model.name}", f"create or replace temp table {_ident(delta)} as {deltas[model.name]}")
        except duckdb.Error as exc:
            raise ModelError(f"model {model.name} failed to build: {str(exc).splitlines()[0]}") from None
        _check_columns(con, model, lists, relation=delta)
        _run_tests(con, model, relation=delta)
    stored = {model.name for model, _tree in plan if model.name in deltas and model.materialized == "table"}
    # 2. nothing is changed unless every table takes its new rows as they are
    for model, _tree in plan:
        if model.name in stored:
            if _described(con, model.name) != _described(con, DELTA + model.name):
                raise NotRefreshable(f"model {model.name} was built with other column types")
    # 3. put them in place of the old rows (a view reads its inputs' new rows by itself; a temporary
    # model is not stored: its touched rows were read by the models that read it)
    for model, _tree in plan:
        if model.name in stored:
            table = _ident(model.name)
            progress.execute(
                con,
                f"replacing the touched leads' rows of {model.layer}/{model.name}",
                f"delete from {table} where lead_id in {leads}; insert into {table} select * from {_ident(DELTA + model.name)}",
            )
    for model, _tree in plan:
        if model.name in stored:
            _run_wide_tests(con, model)
    # 4. the models that read other leads' rows: a window model by its globals, the others whole
    windows = window_plans(fingerprint, lists)
    for model, tree in plan:
        if model.name in deltas:
            continue
        if model.name not in windows or not _refresh_window(con, model, windows[model.name], leads, progress):
            _build_one(con, model, tree.sql(dialect="duckdb"), lists, progress)
    for name in [*sorted(LEAD_SOURCES), *deltas]:
        con.execute(f"drop table if exists {_ident(DELTA + name)}")
    return [model.name for model, _tree in plan]


@dataclass(frozen=True)
class WindowPlan:
    """The SQL of a window model's refresh (models.Window): its global CTEs computed alone; its SQL
    reading them from temporary tables, as the keys of every row and as the rows of the touched
    leads; and which columns are bare columns of a global (output column, global table, its column)."""

    globals: tuple[tuple[str, str], ...]  # (temporary table, SQL)
    keys: str
    touched_rows: str
    key: tuple[str, ...]
    global_columns: tuple[tuple[str, str, str], ...]


@functools.lru_cache(maxsize=16)
def window_plans(fingerprint: str, lists: Expansion) -> dict[str, WindowPlan]:
    models = {model.name: model for model, _tree in _expanded(fingerprint, lists)}
    plans = {}
    for model, tree in _expanded(fingerprint, lists):
        if model.refresh != "window":
            continue
        parts = window_parts(model, models)
        temp = {name: f"_global_{model.name}_{name}" for name in parts.globals}
        globals_ = []
        for name in parts.globals:
            alone = exp.select("*").from_(exp.to_identifier(name))
            alone.set("with_", tree.args["with_"].copy())
            globals_.append((temp[name], alone.sql(dialect="duckdb")))
        fixed = tree.copy()
        for cte in fixed.ctes:
            if cte.alias_or_name in temp:
                cte.set("this", exp.select("*").from_(exp.to_identifier(temp[cte.alias_or_name])))
        aliases = {t.alias_or_name: temp[t.name] for t in fixed.args["from_"].find_all(exp.Table) if t.name in temp}
        for join in fixed.args.get("joins") or []:
            aliases.update({t.alias_or_name: temp[t.name] for t in join.find_all(exp.Table) if t.name in temp})
        columns = []
        for projection in fixed.expressions:
            bare = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(bare, exp.Column) and bare.table in aliases:
                columns.append((projection.alias_or_name, aliases[bare.table], bare.name))
        key = ", ".join(_ident(c) for c in parts.key)
        plans[model.name] = WindowPlan(
            globals=tuple(globals_),
            keys=f"select {key} from ({fixed.sql(dialect='duckdb')}) as m",
            touched_rows=_read_deltas(fixed, {parts.input}).sql(dialect="duckdb"),
            key=parts.key,
            global_columns=tuple(columns),
        )
    return plans


def _refresh_window(con: duckdb.DuckDBPyConnection, model: Model, plan: WindowPlan, leads: str, progress: Progress) -> bool:
    """Refresh a window model in place: its globals computed again over every lead, the keys of the
    rows it holds now (a scan of the few columns its filter reads), the rows no longer kept and the
    touched leads' rows deleted, the global columns set, the touched leads' rows inserted. False,
    with nothing changed, when an untouched lead gains a row (a global moved back): build it whole."""
    table = _ident(model.name)
    same = " and ".join(f"{table}.{_ident(c)} is not distinct from k.{_ident(c)}" for c in plan.key)
    try:
        for temp, sql in plan.globals:
            con.execute(f"create or replace temp table {_ident(temp)} as {sql}")
        progress.execute(con, f"refreshing {model.layer}/{model.name} (window)", f"create or replace temp table _window_keys as {plan.keys}")
        entering = con.execute(
            f"select count(*) from _window_keys as k where k.lead_id not in {leads} and not exists (select 1 from {table} where {same})"
        ).fetchall()[0][0]
        if entering:
            return False
        values = [(_ident(column), f"(select {_ident(c)} from {_ident(temp)})") for column, temp, c in plan.global_columns]
        update = ""
        if values:
            update = (f" update {table} set {', '.join(f'{c} = {v}' for c, v in values)}"
                      f" where {' or '.join(f'{c} is distinct from {v}' for c, v in values)};")
        progress.execute(
            con,
            f"replacing the touched leads' rows of {model.layer}/{model.name}",
            f"delete from {table} where lead_id in {leads} or not exists (select 1 from _window_keys as k where {same});"
            f"{update} insert into {table} {plan.touched_rows}",
        )
    finally:
        for temp, _sql in plan.globals:
            con.execute(f"drop table if exists {_ident(temp)}")
        con.execute("drop table if exists _window_keys")
    _run_tests(con, model)
    return True


@functools.lru_cache(maxsize=16)
def delta_sqls(fingerprint: str, lists: Expansion) -> dict[str, str]:
    """For each by_lead model, its SQL reading the touched leads' rows only: every lead-split table it
    reads (raw_events, raw_leads, by_lead models) renamed to that table's delta, the cfg_* seeds whole."""
    plan = _expanded(fingerprint, lists)
    split = {model.name for model, _tree in plan if model.refresh == "by_lead"} | LEAD_SOURCES
    return {model.name: _read_deltas(tree, split).sql(dialect="duckdb") for model, tree in plan if model.refresh == "by_lead"}


def _read_deltas(tree: exp.Query, names: set[str]) -> exp.Query:
    """The query with every table of `names` it reads (not a CTE of its own) read from its delta
    instead, under its own name or alias, so that the query's column references still resolve."""
    tree = tree.copy()
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if table.name in names and table.name not in ctes and not table.db:
            alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
            table.replace(exp.Table(this=exp.to_identifier(DELTA + table.name), alias=alias.copy()))
    return tree


def _described(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"describe {_ident(relation)}").fetchall()]


def _ident(name: str) -> str:
    return exp.to_identifier(name).sql("duckdb")


@functools.lru_cache(maxsize=16)
def compiled_models(fingerprint: str, lists: Expansion) -> tuple[tuple[Model, str], ...]:
    """Every model in build order with its DuckDB SQL for one configuration's lists: parsed and
    expanded once per process for the same model files (their fingerprint) and lists, not on every load."""
    return tuple((model, tree.sql(dialect="duckdb")) for model, tree in _expanded(fingerprint, lists))


@functools.lru_cache(maxsize=16)
def _expanded(fingerprint: str, lists: Expansion) -> tuple[tuple[Model, exp.Query], ...]:
    return tuple((model, expand(model.tree, lists)) for model in build_order(load_models()))


def _check_columns(con: duckdb.DuckDBPyConnection, model: Model, lists: Expansion, relation: str | None = None) -> None:
    actual = [r[0] for r in con.execute(f"describe {_ident(relation or model.name)}").fetchall()]
    expected = expected_columns(model, lists)
    if actual != expected:
        extra = [c for c in actual if c not in expected]
        missing = [c for c in expected if c not in actual]
        raise ModelError(
            f"model {model.name} builds columns that differ from its metadata (extra: {', '.join(extra) or 'none'}; "
            f"missing: {', '.join(missing) or 'none'}; or in another order)."
        )


def _run_tests(con: duckdb.DuckDBPyConnection, model: Model, relation: str | None = None) -> None:
    """The model's data tests on its table; or, given `relation`, a refresh's rows of the touched
    leads, on those: a row's tests (not_null, expression) hold for the table when they hold for its
    new rows, and so does a unique key that includes lead_id (the other leads' rows are as they
    were). A unique key without lead_id needs the whole table: `_run_wide_tests` once they are in."""
    unique = model.meta.get("tests", {}).get("unique", [])
    keys = unique if relation is None else [cols for cols in unique if "lead_id" in cols]
    _check(con, model, relation or model.name, keys, rows=True)


def _run_wide_tests(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """After a refresh: the unique keys without lead_id, on the whole table."""
    unique = model.meta.get("tests", {}).get("unique", [])
    _check(con, model, model.name, [cols for cols in unique if "lead_id" not in cols], rows=False)


def _check(con: duckdb.DuckDBPyConnection, model: Model, relation: str, keys: list[list[str]], *, rows: bool) -> None:
    """Run the unique `keys`, and with `rows` the not_null and expression tests, on `relation`."""
    tests = model.meta.get("tests", {})
    where = _ident(relation)
    checks: list[tuple[str, str]] = []
    for cols in keys:
        key = ", ".join(exp.to_identifier(c, quoted=True).sql("duckdb") for c in cols)
        # Equal keys have equal hashes: when no 64-bit hash repeats (the usual case), the key is
        # unique, and grouping millions of rows on one integer is cheaper than on the key itself.
        repeats = con.execute(
            f"select count(*) from (select hash({key}) as h from {where} group by h having count(*) > 1)"
        ).fetchall()[0][0]
        if repeats:
            checks.append((f"unique({', '.join(cols)})", f"select count(*) from (select {key} from {where} group by {key} having count(*) > 1)"))
    if rows:
        for col in tests.get("not_null", []):
            ident = exp.to_identifier(col, quoted=True).sql("duckdb")
            checks.append((f"not_null({col})", f"select count(*) from {where} where {ident} is null"))
        for expression in tests.get("expression", []):
            checks.append((expression, f"select count(*) from {where} where not coalesce(({expression}), false)"))
    for label, sql in checks:
        bad = con.execute(sql).fetchall()[0][0]
        if bad:
            raise ModelError(f"model {model.name} fails its data test {label} on {bad:,} row(s).")

