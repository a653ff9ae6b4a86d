"""Compile the DuckDB models and metric queries for another engine: sqlglot, plus our corrections.

sqlglot transpiles most of the DuckDB SQL in queries/ faithfully. Where its output is wrong
for a target or the target rejects it, a correction below rewrites the DuckDB syntax tree
before sqlglot generates the target's SQL. Every correction names what sqlglot emits and why
that is wrong; the Spark ones were each proved on Spark 4 (tests/spark, docs/spark.md).

Engines without named parameters get `$param` placeholders bound as typed literals
(`bind_literals`); values never become SQL text by string formatting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlglot
from sqlglot import exp

from funnelboard.core.errors import UserError

DIALECTS = ("spark", "trino", "bigquery", "snowflake", "postgres", "duckdb")
VERIFIED = ("spark", "duckdb")  # dialects whose compiled SQL the tests run


class UnsupportedSQL(UserError):
    """A construct of the DuckDB SQL that has no faithful form in the target dialect."""


@dataclass(frozen=True)
class Correction:
    """One rewrite of the DuckDB tree for some targets, with what sqlglot gets wrong."""

    name: str
    dialects: tuple[str, ...]
    duckdb: str  # the DuckDB form
    target: str  # what we emit instead (Spark wording)
    why: str  # what sqlglot emits and why that is wrong
    apply: Callable[[exp.Expression, str], exp.Expression]


def check_dialect(dialect: str) -> str:
    name = (dialect or "").strip().lower()
    if name not in DIALECTS:
        raise UserError(f"unknown SQL dialect '{dialect}'; expected one of {', '.join(DIALECTS)}.")
    return name


# --- literals ---------------------------------------------------------------------------------


def literal(value) -> exp.Expression:
    """A Python value as a typed SQL literal in the DuckDB tree (sqlglot renders it per dialect)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        # A bound Python float is a DOUBLE; `0.5` as SQL text would be a DECIMAL in DuckDB and Spark.
        text = repr(value) if math.isfinite(value) else ("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity"))
        return exp.cast(exp.Literal.string(text) if not math.isfinite(value) else exp.Literal.number(text), "double")
    if isinstance(value, Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError("bind naive UTC datetimes: the warehouse stores naive UTC timestamps")
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "timestamp")
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "date")
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[literal(v) for v in value])
    raise TypeError(f"cannot bind a {type(value).__name__} as a SQL literal")


def bind_literals(tree: exp.Expression, params: dict) -> exp.Expression:
    """Replace every `$name` placeholder by its value as a typed literal (for engines without named parameters)."""
    tree = tree.copy()
    for node in list(tree.find_all(exp.Placeholder)):
        name = node.name
        if not name:
            raise ValueError("positional placeholders cannot be bound by name")
        if name not in params:
            raise KeyError(f"no value for parameter ${name}")
        node.replace(literal(params[name]))
    return tree


# --- the corrections ----------------------------------------------------------------------------


def _fn(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _quantiles(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB quantile_cont(x, q) / quantile_disc(x, q) parse as PercentileCont / PercentileDisc.
    # sqlglot writes PERCENTILE_CONT(x, 0.9) for Spark, which Spark 4 rejects
    # ([WRONG_NUM_ARGS] `percentile_cont` requires 1 parameters), and turns the standard
    # PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x) into PERCENTILE_APPROX: approximate, so wrong.
    # Spark's exact forms are percentile_cont(q) / percentile_disc(q) WITHIN GROUP (ORDER BY x);
    # they are emitted as plain function calls so no generator rule can make them approximate.
    for node in list(tree.find_all(exp.PercentileCont, exp.PercentileDisc)):
        name = "percentile_cont" if isinstance(node, exp.PercentileCont) else "percentile_disc"
        if isinstance(node.parent, exp.WithinGroup):  # already the standard form
            group = node.parent
            group.set("this", _fn(name, node.this.copy()))
            continue
        value, q = node.this, node.expression
        if q is None:
            raise UnsupportedSQL(f"{name} without a fraction cannot be compiled for {dialect}.")
        if isinstance(q, exp.Array):
            raise UnsupportedSQL(f"{name} over a list of fractions cannot be compiled for {dialect}; ask for one fraction per call.")
        order = exp.Order(expressions=[exp.Ordered(this=value.copy(), nulls_first=False)])
        node.replace(exp.WithinGroup(this=_fn(name, q.copy()), expression=order))
    return tree


def _product(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB's product() aggregate (the Kaplan-Meier running product). sqlglot passes PRODUCT(...)
    # through, which no target has ([UNRESOLVED_ROUTINE] Cannot resolve routine `PRODUCT` on
    # Spark). Rewritten as exp(sum(ln|x|)) with the sign and zeros counted apart, so a factor
    # of 0 gives exactly 0 (ln(0) is NULL on Spark) and all-NULL input stays NULL. Relative
    # error about n * 1e-16 for n factors: far inside the 1e-9 the parity tests ask for.
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() != "product":
            continue
        if len(node.expressions) != 1:
            raise UnsupportedSQL(f"product() takes one argument; found {len(node.expressions)}.")
        x = node.expressions[0]
        holder: exp.Expression = node
        where = None
        if isinstance(holder.parent, exp.Filter):
            holder = holder.parent
            where = holder.expression
        window = holder.parent if isinstance(holder.parent, exp.Window) else None
        if window is not None:
            holder = window

        def agg(inner: exp.Expression, where=where, window=window) -> exp.Expression:
            out: exp.Expression = exp.Sum(this=inner)
            if where is not None:
                out = exp.Filter(this=out, expression=where.copy())
            if window is not None:
                over = window.copy()
                over.set("this", out)
                out = over
            return out

        def flag(cond: exp.Expression) -> exp.Expression:
            return exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.number(1))], default=exp.Literal.number(0))

        zeros = agg(flag(exp.EQ(this=x.copy(), expression=exp.Literal.number(0))))
        negatives = agg(flag(exp.LT(this=x.copy(), expression=exp.Literal.number(0))))
        magnitude = exp.Exp(this=agg(exp.Ln(this=exp.Abs(this=exp.Nullif(this=x.copy(), expression=exp.Literal.number(0))))))
        sign = exp.Case(
            ifs=[exp.If(this=exp.EQ(this=exp.Mod(this=negatives, expression=exp.Literal.number(2)), expression=exp.Literal.number(1)),
                        true=exp.Literal.number(-1))],
            default=exp.Literal.number(1),
        )
        product = exp.Case(
            ifs=[exp.If(this=exp.GT(this=zeros, expression=exp.Literal.number(0)), true=exp.cast(exp.Literal.number(0), "double"))],
            default=exp.Mul(this=exp.Paren(this=sign), expression=magnitude),
        )
        holder.replace(exp.Paren(this=product))
    return tree


def _generator_casts(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB cast(unnest(list) as T). sqlglot writes CAST(EXPLODE(list) AS T), which Spark
    # rejects ([UNSUPPORTED_GENERATOR.NESTED_IN_EXPRESSIONS]); the cast moves inside, onto the
    # list: EXPLODE(CAST(list AS ARRAY<T>)).
    for node in list(tree.find_all(exp.Cast)):
        if isinstance(node.this, (exp.Explode, exp.Unnest)) and not isinstance(node, exp.TryCast):
            gen = node.this
            inner = gen.this if isinstance(gen, exp.Explode) else (gen.expressions[0] if gen.expressions else None)
            if inner is None:
                continue
            to = exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[node.to.copy()], nested=True)
            node.replace(exp.Explode(this=exp.Cast(this=inner.copy(), to=to)))
    return tree


def _zip_unnests(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB unnests several lists in one SELECT in parallel (row i takes element i of each).
    # sqlglot writes one EXPLODE per list, and Spark 4 then returns their cross product
    # (2 lists of 3 give 9 rows, not 3): silently wrong. One generator zips them instead:
    # INLINE(ARRAYS_ZIP(a, b)) AS (x, y), which pads the shorter list with NULL as DuckDB does.
    for select in list(tree.find_all(exp.Select)):
        positions = [i for i, p in enumerate(select.expressions) if isinstance(p.unalias(), exp.Explode)]
        if len(positions) < 2:
            continue
        if positions != list(range(positions[0], positions[0] + len(positions))):
            raise UnsupportedSQL("several unnest() in one SELECT must be adjacent projections to compile for " + dialect + ".")
        names, lists = [], []
        for i in positions:
            projection = select.expressions[i]
            if not isinstance(projection, exp.Alias):
                raise UnsupportedSQL("each of several unnest() in one SELECT needs an alias to compile for " + dialect + ".")
            names.append(exp.to_identifier(projection.alias))
            lists.append(projection.unalias().this.copy())
        zipped = exp.Aliases(this=_fn("inline", _fn("arrays_zip", *lists)), expressions=names)
        projections = list(select.expressions)
        projections[positions[0]: positions[-1] + 1] = [zipped]
        select.set("expressions", projections)
    return tree


def _named_windows(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB (and the SQL standard) let a window refine a named one: OVER (by_time ROWS BETWEEN
    # ...) with WINDOW by_time AS (PARTITION BY ... ORDER BY ...). sqlglot writes it as is, and
    # Spark's parser refuses it ([PARSE_SYNTAX_ERROR] Syntax error at or near 'rows'); a bare
    # OVER by_time is fine. The named window's partition and order are copied into the OVER.
    for window in list(tree.find_all(exp.Window)):
        name = window.args.get("alias")
        refines = any(window.args.get(k) for k in ("partition_by", "order", "spec"))
        if name is None or not refines or window.args.get("over") is None:
            continue
        select = window.find_ancestor(exp.Select)
        while select is not None and not any(w.this.name == name.name for w in select.args.get("windows") or []):
            select = select.find_ancestor(exp.Select)
        if select is None:
            raise UnsupportedSQL(f"window '{name.name}' is used but not defined; cannot compile it for {dialect}.")
        base = next(w for w in select.args["windows"] if w.this.name == name.name)
        if base.args.get("alias") is not None:
            raise UnsupportedSQL(f"window '{name.name}' refines another named window; cannot compile it for {dialect}.")
        if base.args.get("order") is not None and window.args.get("order") is not None:
            raise UnsupportedSQL(f"a window refining '{name.name}' may not order it again.")
        if base.args.get("spec") is not None and window.args.get("spec") is not None:
            raise UnsupportedSQL(f"a window refining '{name.name}' may not frame it again.")
        window.set("partition_by", [p.copy() for p in base.args.get("partition_by") or []] or None)
        if window.args.get("order") is None and base.args.get("order") is not None:
            window.set("order", base.args["order"].copy())
        if window.args.get("spec") is None and base.args.get("spec") is not None:
            window.set("spec", base.args["spec"].copy())
        window.set("alias", None)
    return tree


EPOCH = {"epoch_us": exp.UnixMicros, "epoch_ms": exp.UnixMillis}


def _epochs(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB epoch_us(ts) / epoch_ms(ts): sqlglot does not know them and passes EPOCH_US(...)
    # through, which Spark does not have ([UNRESOLVED_ROUTINE] `EPOCH_US`). They become
    # sqlglot's UnixMicros / UnixMillis, which each generator spells (Spark: UNIX_MICROS,
    # which reads a TIMESTAMP_NTZ as UTC whatever the session time zone).
    for node in list(tree.find_all(exp.Anonymous)):
        kind = EPOCH.get(node.name.lower())
        if kind is not None and len(node.expressions) == 1:
            node.replace(kind(this=node.expressions[0].copy()))
    return tree


def _timezones(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB timezone(A, timezone(B, ts)) reads a naive ts as wall time in zone B and gives
    # the wall time in zone A (our models: UTC -> the configured zone). sqlglot passes
    # TIMEZONE(...) through; Spark has no such function ([UNRESOLVED_ROUTINE] `TIMEZONE`).
    # The pair becomes ConvertTimezone(B, A, ts): Spark CONVERT_TIMEZONE, which maps
    # TIMESTAMP_NTZ to TIMESTAMP_NTZ independently of the session time zone. A lone
    # timezone() (a TIMESTAMPTZ result) has no counterpart and is refused.
    def is_tz(node: exp.Expression | None) -> bool:
        return isinstance(node, exp.Anonymous) and node.name.lower() == "timezone" and len(node.expressions) == 2

    def innermost_pair(node: exp.Expression) -> bool:  # timezone(A, timezone(B, ts)), ts no timezone() itself
        return is_tz(node) and is_tz(node.expressions[1]) and not is_tz(node.expressions[1].expressions[1])

    while True:
        pair = next((n for n in tree.find_all(exp.Anonymous) if innermost_pair(n)), None)
        if pair is None:
            break
        outer_zone, inner = pair.expressions
        inner_zone, value = inner.expressions
        converted = exp.ConvertTimezone(source_tz=inner_zone.copy(), target_tz=outer_zone.copy(), timestamp=value.copy())
        if pair is tree:
            return converted
        pair.replace(converted)
    leftover = [n for n in tree.find_all(exp.Anonymous) if is_tz(n)]
    if leftover:
        raise UnsupportedSQL(
            f"timezone() is only compiled for {dialect} as a pair, timezone(A, timezone(B, ts)) on a naive timestamp; "
            f"found '{leftover[0].sql('duckdb')}'."
        )
    return tree


def _arg_max_nulls(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB arg_max(x, key) / arg_min skip rows where x is NULL; Spark max_by / min_by (what
    # sqlglot emits) return the x of the extreme key even when it is NULL (proved: over
    # (NULL, 2), ('a', 1) DuckDB gives 'a', Spark NULL). Adding FILTER (WHERE x IS NOT NULL)
    # says DuckDB's rule out loud; a tuple key becomes a Spark struct, compared field by field.
    for node in list(tree.find_all(exp.ArgMax, exp.ArgMin)):
        not_null = exp.Not(this=exp.Is(this=node.this.copy(), expression=exp.Null()))
        parent = node.parent
        if isinstance(parent, exp.Filter):
            cond = parent.expression.this
            if cond.sql("duckdb") != not_null.sql("duckdb"):
                parent.expression.set("this", exp.and_(exp.Paren(this=cond.copy()), not_null))
        else:
            node.replace(exp.Filter(this=node.copy(), expression=exp.Where(this=not_null)))
    return tree


def _decimal_division(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB `/` always gives a DOUBLE: (epoch_us(b) - epoch_us(a)) / 86400000000.0 is a
    # DOUBLE there. sqlglot keeps the literal, which Spark types DECIMAL(12,1), and bigint /
    # decimal is then DECIMAL(34,13) on Spark: a different type and rounded to 13 digits.
    # A decimal literal on either side of a division becomes a DOUBLE.
    for div in list(tree.find_all(exp.Div)):
        for key in ("this", "expression"):
            side = div.args.get(key)
            if isinstance(side, exp.Literal) and not side.is_string and ("." in side.this) and "e" not in side.this.lower():
                div.set(key, exp.cast(side.copy(), "double"))
    return tree


def _regexp_flags(tree: exp.Expression, dialect: str) -> exp.Expression:
    # DuckDB regexp_replace(s, p, r, 'g') replaces every match; without 'g' only the first.
    # sqlglot drops the options for Spark, BigQuery and Snowflake whatever they say ('i' for
    # case-insensitive is lost), and keeps them for Trino, whose regexp_replace has no such
    # argument. Spark, Trino and BigQuery always replace every match and take flags inline:
    # 'g' is dropped, 'i' becomes a (?i) prefix; first-match-only has no form there.
    for node in list(tree.find_all(exp.RegexpReplace)):
        flags = node.args.get("modifiers")
        text = flags.name if isinstance(flags, exp.Literal) and flags.is_string else None
        if flags is not None and text is None:
            raise UnsupportedSQL(f"regexp_replace options must be a literal to compile for {dialect}.")
        options = set(text or "")
        unknown = options - {"g", "i", "c"}
        if unknown:
            raise UnsupportedSQL(f"regexp_replace option '{sorted(unknown)[0]}' cannot be compiled for {dialect}.")
        if "g" not in options:
            raise UnsupportedSQL(f"regexp_replace without the 'g' option (first match only) cannot be compiled for {dialect}.")
        node.set("modifiers", None)
        if "i" in options:
            pattern = node.expression
            if not (isinstance(pattern, exp.Literal) and pattern.is_string):
                raise UnsupportedSQL(f"a case-insensitive regexp_replace needs a literal pattern to compile for {dialect}.")
            if dialect == "snowflake":
                raise UnsupportedSQL("a case-insensitive regexp_replace cannot be compiled for snowflake.")
            node.set("expression", exp.Literal.string("(?i)" + pattern.name))
    return tree


NOT_DUCKDB = ("spark", "trino", "bigquery", "snowflake", "postgres")
CORRECTIONS: tuple[Correction, ...] = (
    Correction("quantile", ("spark",), "quantile_cont(x, 0.9) / quantile_disc(x, 0.99)",
               "percentile_cont(0.9) WITHIN GROUP (ORDER BY x)",
               "sqlglot emits PERCENTILE_CONT(x, 0.9), rejected by Spark 4 (WRONG_NUM_ARGS), and the WITHIN GROUP form as PERCENTILE_APPROX, which is approximate",
               _quantiles),
    Correction("product", NOT_DUCKDB, "product(1 - d / n) over (...)",
               "exp(sum(ln(abs(nullif(x, 0))))) over (...) with zeros and signs counted apart",
               "sqlglot passes PRODUCT through; Spark has no such SQL function (UNRESOLVED_ROUTINE)",
               _product),
    Correction("generator-cast", ("spark",), "cast(unnest(list) as date)", "explode(cast(list as array<date>))",
               "sqlglot emits CAST(EXPLODE(list) AS DATE), rejected by Spark (UNSUPPORTED_GENERATOR.NESTED_IN_EXPRESSIONS)",
               _generator_casts),
    Correction("parallel-unnest", ("spark",), "select unnest(a) as x, unnest(b) as y", "select inline(arrays_zip(a, b)) as (x, y)",
               "sqlglot emits two EXPLODEs, which Spark 4 accepts and cross-joins (3 x 3 = 9 rows instead of 3)",
               _zip_unnests),
    Correction("named-window", ("spark",), "over (by_time rows between unbounded preceding and current row)",
               "over (partition by ... order by ... rows between unbounded preceding and current row)",
               "sqlglot keeps the reference to the named window, which Spark's parser refuses (PARSE_SYNTAX_ERROR at 'rows')",
               _named_windows),
    Correction("epoch", NOT_DUCKDB, "epoch_us(ts)", "unix_micros(ts)",
               "sqlglot passes EPOCH_US through; Spark has no such function (UNRESOLVED_ROUTINE)",
               _epochs),
    Correction("timezone", NOT_DUCKDB, "timezone(tz, timezone('UTC', ts))", "convert_timezone('UTC', tz, ts)",
               "sqlglot passes TIMEZONE through; Spark has no such function (UNRESOLVED_ROUTINE)",
               _timezones),
    Correction("arg-max-nulls", NOT_DUCKDB, "arg_max(x, key)", "max_by(x, key) FILTER (WHERE x IS NOT NULL)",
               "DuckDB skips rows whose x is NULL; max_by (sqlglot's output) returns NULL when the top key's x is NULL",
               _arg_max_nulls),
    Correction("decimal-division", NOT_DUCKDB, "micros / 86400000000.0", "micros / CAST(86400000000.0 AS DOUBLE)",
               "DuckDB divides to DOUBLE; Spark types the literal DECIMAL(12,1) and the quotient DECIMAL(34,13), rounded",
               _decimal_division),
    Correction("regexp-flags", ("spark", "trino", "bigquery", "snowflake"), "regexp_replace(s, p, r, 'g')", "regexp_replace(s, p, r)",
               "sqlglot drops every option for Spark (so 'i' is lost silently) and keeps them for Trino, which has no options argument",
               _regexp_flags),
)


# --- compiling ----------------------------------------------------------------------------------


def compile_tree(tree: exp.Expression, dialect: str, *, skip: frozenset[str] = frozenset()) -> exp.Expression:
    """A copy of a DuckDB-dialect tree with every correction for the target applied
    (`skip` names corrections to leave out: the tests show what goes wrong without each)."""
    dialect = check_dialect(dialect)
    tree = tree.copy()
    for correction in CORRECTIONS:
        if dialect in correction.dialects and correction.name not in skip:
            tree = correction.apply(tree, dialect)
    return tree


def to_sql(tree: exp.Expression, dialect: str, *, pretty: bool = False, skip: frozenset[str] = frozenset()) -> str:
    """The tree compiled for the target dialect, as SQL text."""
    dialect = check_dialect(dialect)
    return compile_tree(tree, dialect, skip=skip).sql(dialect=dialect, pretty=pretty, unsupported_level=sqlglot.ErrorLevel.RAISE)


def compile_query(sql: str, dialect: str, params: dict | None = None, *, pretty: bool = False, skip: frozenset[str] = frozenset()) -> str:
    """DuckDB SQL text (with `$name` placeholders) as SQL for the target, values bound as literals."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    if params is not None:
        tree = bind_literals(tree, params)
    return to_sql(tree, dialect, pretty=pretty, skip=skip)


# --- printing every model for a dialect (`funnelboard sql`) -------------------------------------

# Constructs the compiled SQL still carries that the target is known not to have. Only Spark
# and DuckDB are run by the tests; for the others these are the gaps we know of, printed as
# warnings above the model rather than hidden.
KNOWN_GAPS: dict[str, tuple[tuple[type, str], ...]] = {
    "trino": ((exp.PercentileCont, "exact quantiles: Trino has no exact percentile aggregate (sqlglot writes PERCENTILE_CONT(x, q), which Trino lacks)"),
              (exp.PercentileDisc, "exact quantiles: Trino has no exact percentile aggregate (sqlglot writes PERCENTILE_DISC(x, q), which Trino lacks)")),
    "bigquery": ((exp.PercentileCont, "exact quantiles: BigQuery's PERCENTILE_CONT is an analytic (window) function, not an aggregate"),
                 (exp.PercentileDisc, "exact quantiles: BigQuery's PERCENTILE_DISC is an analytic (window) function, not an aggregate")),
    "postgres": ((exp.UnixMicros, "epoch_us: PostgreSQL has no UNIX_MICROS; use extract(epoch from ts) * 1000000"),),
}


@dataclass(frozen=True)
class Compiled:
    """One model or metric query compiled for a dialect; sql is empty when it could not be."""

    name: str
    layer: str
    sql: str
    warnings: tuple[str, ...] = ()


def compile_named(name: str, layer: str, tree: exp.Expression, dialect: str, *, pretty: bool = True) -> Compiled:
    """Compile one expanded tree. Spark and DuckDB must compile cleanly (an error is raised);
    for the unverified dialects sqlglot's complaints and our known gaps become warnings."""
    dialect = check_dialect(dialect)
    if dialect in VERIFIED:
        return Compiled(name, layer, to_sql(tree, dialect, pretty=pretty))
    try:
        compiled = compile_tree(tree, dialect)
        generator = sqlglot.Dialect.get_or_raise(dialect).generator(unsupported_level=sqlglot.ErrorLevel.IGNORE, pretty=pretty)
        sql = generator.generate(compiled)
    except UnsupportedSQL as exc:
        return Compiled(name, layer, "", (f"not compiled: {exc}",))
    except Exception as exc:  # noqa: BLE001 - sqlglot's own failure for an unverified target
        return Compiled(name, layer, "", (f"sqlglot cannot compile it for {dialect}: {type(exc).__name__}: {exc}",))
    notes = list(dict.fromkeys(" ".join(m.split()) for m in generator.unsupported_messages))
    for kind, message in KNOWN_GAPS.get(dialect, ()):
        if any(True for _ in compiled.find_all(kind)) and message not in notes:
            notes.append(message)
    return Compiled(name, layer, sql, tuple(f"{dialect}: {n}" for n in notes))


def compile_all(config, dialect: str, only: str | None = None) -> list[Compiled]:
    """Every model in build order, then every metric query, compiled for the dialect (or just `only`)."""
    from funnelboard.warehouse.build import expansion
    from funnelboard.warehouse.models import build_order, expand, load_models, parse_model, queries_root

    dialect = check_dialect(dialect)
    lists = expansion(config)
    models = build_order(load_models())
    metrics = [parse_model(p, "metrics") for p in sorted((queries_root() / "metrics").glob("*.sql"))]
    chosen = [m for m in models + metrics if only is None or m.name == only]
    if not chosen:
        names = ", ".join(m.name for m in models + metrics)
        raise UserError(f"no model or metric query named '{only}'; expected one of {names}.")
    return [compile_named(m.name, m.layer, expand(m.tree, lists), dialect) for m in chosen]
