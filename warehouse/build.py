"""Build the models into a warehouse connection: config seeds, then every model in dependency order."""

from __future__ import annotations

import functools

import duckdb
from sqlglot import exp

from funnelboard.core.config import FunnelConfig
from funnelboard.core.progress import Progress
from funnelboard.etl import raw_schema
from funnelboard.warehouse.models import Expansion, Model, ModelError, build_order, expand, load_models, models_fingerprint


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
    for model, sql in compiled_models(fingerprint, lists):
        kind = "view" if model.materialized == "view" else "table"
        existing = con.execute(
            "select table_type from information_schema.tables where table_schema = 'main' and table_name = $n",
            {"n": model.name},
        ).fetchall()
        if existing and (existing[0][0] == "VIEW") != (kind == "view"):
            con.execute(f"drop {'view' if existing[0][0] == 'VIEW' else 'table'} {exp.to_identifier(model.name).sql('duckdb')}")
        try:
            progress.execute(con, f"building {model.layer}/{model.name}", f"create or replace {kind} {model.name} as {sql}")
        except duckdb.Error as exc:
            raise ModelError(f"model {model.name} failed to build: {str(exc).splitlines()[0]}") from None
        _check_columns(con, model, lists)
        _run_tests(con, model)
        built.append(model.name)
    raw_schema.set_meta(con, "models_fingerprint", fingerprint)
    return built


@functools.lru_cache(maxsize=16)
def compiled_models(fingerprint: str, lists: Expansion) -> tuple[tuple[Model, str], ...]:
    """Every model in build order with its DuckDB SQL for one configuration's lists: parsed and
    expanded once per process for the same model files (their fingerprint) and lists, not on every load."""
    return tuple((model, expand(model.tree, lists).sql(dialect="duckdb")) for model in build_order(load_models()))


def _check_columns(con: duckdb.DuckDBPyConnection, model: Model, lists: Expansion) -> None:
    actual = [r[0] for r in con.execute(f"describe {model.name}").fetchall()]
    expected = expected_columns(model, lists)
    if actual != expected:
        extra = [c for c in actual if c not in expected]
        missing = [c for c in expected if c not in actual]
        raise ModelError(
            f"model {model.name} builds columns that differ from its metadata (extra: {', '.join(extra) or 'none'}; "
            f"missing: {', '.join(missing) or 'none'}; or in another order)."
        )


def _run_tests(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    tests = model.meta.get("tests", {})
    checks: list[tuple[str, str]] = []
    for cols in tests.get("unique", []):
        key = ", ".join(exp.to_identifier(c, quoted=True).sql("duckdb") for c in cols)
        # Equal keys have equal hashes: when no 64-bit hash repeats (the usual case), the key is
        # unique, and grouping millions of rows on one integer is cheaper than on the key itself.
        repeats = con.execute(
            f"select count(*) from (select hash({key}) as h from {model.name} group by h having count(*) > 1)"
        ).fetchall()[0][0]
        if repeats:
            checks.append((f"unique({', '.join(cols)})", f"select count(*) from (select {key} from {model.name} group by {key} having count(*) > 1)"))
    for col in tests.get("not_null", []):
        ident = exp.to_identifier(col, quoted=True).sql("duckdb")
        checks.append((f"not_null({col})", f"select count(*) from {model.name} where {ident} is null"))
    for expression in tests.get("expression", []):
        checks.append((expression, f"select count(*) from {model.name} where not coalesce(({expression}), false)"))
    for label, sql in checks:
        bad = con.execute(sql).fetchall()[0][0]
        if bad:
            raise ModelError(f"model {model.name} fails its data test {label} on {bad:,} row(s).")

