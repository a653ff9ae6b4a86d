"""Build the marts on Apache Spark: the same model files, transpiled by warehouse/dialects.py.

`funnelboard build --engine spark --events PATH --out DIR` reads a canonical events file
(CSV or Parquet, as `funnelboard generate` writes them) and an optional leads file, checks
every row as the DuckDB load does (label map, lead id, ISO timestamps, date bounds, exact
duplicates), runs every staging, intermediate and mart model in build order as Spark SQL,
and writes the marts, the config seeds, the loaded events, the quarantine and a manifest as
Parquet under DIR. `warehouse/marts_dir.py` serves DIR through DuckDB.

A build writes into DIR/<build id>/ and publishes by replacing DIR/manifest.json; a failed
build leaves the last published one as it was. The previous build is kept for readers that
still have it open; older ones are removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from funnelboard.core.config import FunnelConfig
from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress
from funnelboard.etl.raw_schema import SCHEMA_VERSION, UNKNOWN_STAGE_DETAIL
from funnelboard.etl.readers import InputFile, inspect
from funnelboard.etl.sources.base import ISO_TIMESTAMP
from funnelboard.warehouse.build import expansion, expected_columns, settings_row, sla_rows
from funnelboard.warehouse.dialects import compile_query, to_sql
from funnelboard.warehouse.models import Model, ModelError, build_order, expand, load_models, models_fingerprint

MASTER_ENV = "FUNNELBOARD_SPARK_MASTER"
DEFAULT_MASTER = "local[*]"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
MARTS = ("fct_leads", "fct_spells", "fct_open_spells", "fct_pipeline_moves")
SEEDS = ("cfg_stages", "cfg_reasons", "cfg_sla", "cfg_settings")
# What a build always writes as Parquet: what the dashboard, the metrics and `status` read
# (every model materialised as a table is written too: the intermediate ones, for lineage).
OUTPUTS = MARTS + SEEDS + ("raw_events", "raw_leads", "quarantine")
KEEP_BUILDS = 2  # the published build and the one before it
WHITESPACE = " \t\r\n\f\x0b"  # trimmed from every value, as the DuckDB load does
RE2_SPACE = "[\\t\\n\\f\\r ]+"  # DuckDB's (RE2's) \s; Java's \s also matches \x0b


# --- the session -----------------------------------------------------------------------------


def resolve_master(master: str | None, env: dict | None = None) -> str:
    """--master, else $FUNNELBOARD_SPARK_MASTER, else local[*]."""
    env = os.environ if env is None else env
    return master or env.get(MASTER_ENV) or DEFAULT_MASTER


def require_spark() -> str:
    """The pyspark version; UserError when pyspark or a Java 17+ runtime is missing."""
    try:
        import pyspark
    except ImportError:
        raise UserError("the Spark engine needs pyspark: install it with `pip install 'funnelboard[spark]'`.") from None
    java = _java()
    if java is None:
        raise UserError("the Spark engine needs Java 17 or later, and no `java` was found: install a JRE (e.g. openjdk-17-jre-headless) or set JAVA_HOME.")
    version = _java_major(java)
    if version is not None and version < 17:
        raise UserError(f"the Spark engine needs Java 17 or later, and `{java}` is Java {version}: install a newer JRE or point JAVA_HOME at one.")
    return pyspark.__version__


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def _active_session():
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


def spark_session(master: str | None = None, conf: dict[str, str] | None = None):
    """A SparkSession for builds: UTC session time zone; master from resolve_master."""
    require_spark()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(resolve_master(master)).appName("funnelboard")
    defaults = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",  # our progress notes say the phase
        # Spark makes ./spark-warehouse for catalog tables; the build only uses temporary views.
        "spark.sql.warehouse.dir": str(Path(tempfile.gettempdir()) / "funnelboard-spark-warehouse"),
    }
    for key, value in {**defaults, **(conf or {})}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM failed to start: a setup problem the user can fix
        raise UserError(f"Spark did not start ({_first_line(exc)}): check Java and the master URL '{resolve_master(master)}'.") from None
    # A failing query is reported once, as our own one-sentence error; Spark would also log it
    # at ERROR as a page of JSON.
    session.sparkContext.setLogLevel("FATAL")
    return session


# --- reading and checking the input -----------------------------------------------------------


@dataclass
class FileReport:
    """What happened to one input file (the ledger row of the Spark build)."""

    path: str
    role: str
    format: str
    sha256: str
    size_bytes: int
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    first_entered_at: str | None = None
    last_entered_at: str | None = None

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate


@dataclass
class SparkBuild:
    """The outcome of one Spark build: where it went and what it counted."""

    out: Path
    build_id: str
    files: list[FileReport]
    models: list[str]
    tables: dict[str, int]
    spark_version: str
    master: str
    seconds: float


def _inspect(path: Path, role: str, config: FunnelConfig) -> InputFile:
    import duckdb

    con = duckdb.connect()
    try:
        f = inspect(path, role, config, con)
    finally:
        con.close()
    what = "leads file" if role == "leads" else "events file"
    if f.fmt not in ("csv", "parquet"):
        raise UserError(f"{what} '{path}' is {f.fmt}: the Spark engine reads CSV or Parquet; load it with `funnelboard load` instead.")
    if f.fmt == "csv" and f.encoding.lower().replace("-", "").replace("_", "") not in ("utf8", "ascii"):
        raise UserError(f"{what} '{path}' is read as {f.encoding}: the Spark engine reads UTF-8 CSV; convert it or use `funnelboard load`.")
    return f


def _read_lines(spark, f: InputFile):
    """(_line, c0..cN, _raw, _shape) of a CSV file: each physical line numbered exactly, header = 1.

    Lines are read as text so a line's number and raw text are known whatever happens to its
    fields; a block's lines keep file order, so line = lines in earlier blocks + position."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    text = spark.read.text(str(f.path)).select(
        F.col("value").alias("_raw"),
        F.col("_metadata.file_block_start").alias("_blk"),
        F.monotonically_increasing_id().alias("_mid"),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    blocks = sorted((r["_blk"], r["first"], r["n"]) for r in text.groupBy("_blk").agg(F.min("_mid").alias("first"), F.count("*").alias("n")).collect())
    bases, before = [], 0
    for blk, first, n in blocks:
        bases.append((blk, before - first + 1))
        before += n
    base = spark.createDataFrame(bases, "_blk bigint, _base bigint")
    lines = text.join(F.broadcast(base), "_blk").select((F.col("_mid") + F.col("_base")).alias("_line"), "_raw")
    n = len(f.names)
    schema = ", ".join(f"c{i} string" for i in range(n))
    options = {"sep": f.delimiter, "quote": f.quote, "escape": f.quote}
    quote, delimiter = re.escape(f.quote), re.escape(f.delimiter)
    unquoted = F.regexp_replace("_raw", f"{quote}(?:[^{quote}]|{quote}{quote})*{quote}", "")
    fields = F.size(F.split(unquoted, delimiter, -1))
    shape = (
        F.when(F.col("_raw").contains("\ufffd"), F.lit("invalid_encoding"))
        .when(unquoted.contains(f.quote), F.lit("malformed_csv"))
        .when(fields != n, F.lit("wrong_column_count"))
    )
    shape_detail = (
        F.when(F.col("_raw").contains("\ufffd"), F.lit("the line is not valid UTF-8"))
        .when(unquoted.contains(f.quote), F.lit("unterminated or stray quote (a value may not span lines here)"))
        .when(fields != n, F.concat(F.lit(f"expected {n} columns, found "), fields.cast("string")))
    )
    parsed = F.from_csv("_raw", schema, options)
    return lines.where((F.col("_line") > 1) & (F.col("_raw") != "")).select(
        "_line",
        *[parsed.getField(f"c{i}").alias(f"c{i}") for i in range(n)],
        "_raw",
        shape.alias("_shape"),
        shape_detail.alias("_shape_detail"),
    ), text


def _read_parquet(spark, f: InputFile):
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(f.path))
    positional = [f"c{i}" for i in range(len(df.columns))]
    # Columns by quoted name (a header may hold dots or backticks), then renamed by position.
    quoted = [F.col("`" + name.replace("`", "``") + "`") for name in df.columns]
    df = df.select(F.col("_metadata.row_index").alias("_ri"), *quoted).toDF("_ri", *positional)
    dtypes = dict(df.dtypes)

    def text(c: str):
        if dtypes[c] == "timestamp":  # an instant: keep its offset so it is not re-read as local time
            return F.concat(F.col(c).cast("string"), F.lit("+00:00"))
        return F.col(c).cast("string")

    values = [text(c).alias(c) for c in positional]
    raw = F.to_json(F.struct(*[F.col(c).alias(h) for c, h in zip(positional, f.header)]), {"ignoreNullFields": "false"})
    return df.select(
        (F.col("_ri") + 1).alias("_line"),
        *values,
        raw.alias("_raw"),
        F.lit(None).cast("string").alias("_shape"),
        F.lit(None).cast("string").alias("_shape_detail"),
    ), None


def _timestamp(config: FunnelConfig):
    """The trimmed ISO text in column `_t` as a naive UTC TIMESTAMP_NTZ, NULL when it is no real
    instant: the parse of etl/load.py `_timestamp_sql`, case for case."""
    from pyspark.sql import functions as F

    text = F.col("_t")
    # With an offset: the instant (DuckDB refuses a space before the offset, so does this).
    instant = F.when(text.rlike(" [Zz+-]"), F.lit(None)).otherwise(F.expr("try_cast(_t as timestamp_ltz)").cast("timestamp_ntz"))
    naive = F.expr("try_cast(_t as timestamp_ntz)")
    # DuckDB reads hour 24:00 as the next midnight; Spark refuses it.
    day_end = F.expr("try_cast(substr(_t, 1, 10) as timestamp_ntz)") + F.expr("interval 1 day")
    naive = F.when(text.rlike(r"^\d{4}-\d{2}-\d{2}[T ]24:00(:00(\.0+)?)?$"), day_end).otherwise(naive)
    if config.timezone != "UTC":
        tz = F.lit(config.timezone)
        earlier = F.convert_timezone(tz, F.lit("UTC"), naive)
        later = earlier + F.expr("interval 1 hour")
        # A wall time in the repeated hour of a DST change is two instants: DuckDB takes the later.
        naive = F.when(F.convert_timezone(F.lit("UTC"), tz, later) == naive, later).otherwise(earlier)
    has_offset = (F.length(text) > 10) & F.substring(text, 11, 1 << 20).rlike("[Zz+-]")
    return F.when(has_offset, instant).otherwise(naive)


def _checked(spark, f: InputFile, config: FunnelConfig, now: datetime):
    """The file's rows with their values, the first problem (quarantine reason) and its detail."""
    from pyspark.sql import functions as F

    rows, text = _read_lines(spark, f) if f.fmt == "csv" else _read_parquet(spark, f)
    events = f.role == "events"

    def col(name: str):
        c = f.column(name)
        if c is None:
            return F.lit(None).cast("string")
        trimmed = F.expr(f"trim(BOTH {_sql_string(WHITESPACE)} FROM {c})")
        return F.when(trimmed == "", F.lit(None)).otherwise(trimmed)

    ts_name = "entered_at" if events else "created_at"
    min_ts = datetime.fromisoformat(config.min_date)
    max_ts = now + timedelta(days=config.max_future_days)
    cols = {"_line": F.col("_line"), "_raw": F.col("_raw"), "_shape": F.col("_shape"), "_shape_detail": F.col("_shape_detail"),
            "lead_id": col("lead_id"), "_t": col(ts_name)}
    if events:
        cols["stage_label"] = col("stage")
        cols["reason"] = col("reason")
    for a in f.attributes:
        cols[a] = col(a)
    df = rows.select(*[v.alias(k) for k, v in cols.items()])
    df = df.withColumn("ts", _timestamp(config))
    iso = F.col("_t").rlike(f"^(?:{ISO_TIMESTAMP})$")
    if events:
        labels = spark.createDataFrame(sorted(config.label_map().items()), "_label_key string, stage string")
        key = F.lower(F.regexp_replace(F.col("stage_label"), RE2_SPACE, " "))
        df = df.withColumn("_label_key", key).join(F.broadcast(labels), "_label_key", "left").drop("_label_key")
        problem = (
            F.when(F.col("_shape").isNotNull(), F.col("_shape"))
            .when(F.col("lead_id").isNull(), "missing_lead_id")
            .when(F.col("_t").isNull(), "missing_timestamp")
            .when(~iso, "unparseable_timestamp")
            .when(F.col("ts").isNull(), "impossible_timestamp")
            .when(F.col("ts") < _ntz(min_ts), "timestamp_too_old")
            .when(F.col("ts") > _ntz(max_ts), "timestamp_in_future")
            .when(F.col("stage_label").isNull(), "missing_stage")
            .when(F.col("stage").isNull(), "unknown_stage")
        )
    else:
        problem = (
            F.when(F.col("_shape").isNotNull(), F.col("_shape"))
            .when(F.col("lead_id").isNull(), "missing_lead_id")
            .when(F.col("_t").isNotNull() & ~iso, "unparseable_timestamp")
            .when(F.col("_t").isNotNull() & F.col("ts").isNull(), "impossible_timestamp")
            .when(F.col("ts") < _ntz(min_ts), "timestamp_too_old")
            .when(F.col("ts") > _ntz(max_ts), "timestamp_in_future")
        )
    df = df.withColumn("problem", problem)
    t = F.col("_t")
    detail = (
        F.when(F.col("problem") == "missing_lead_id", "lead_id is empty")
        .when(F.col("problem") == "missing_timestamp", f"{ts_name} is empty")
        .when(F.col("problem") == "unparseable_timestamp", F.concat(F.lit(f'{ts_name} "'), t, F.lit('" is not an ISO-8601 date or timestamp')))
        .when(F.col("problem") == "impossible_timestamp", F.concat(F.lit(f'{ts_name} "'), t, F.lit('" is not a real date or time')))
        .when(F.col("problem") == "timestamp_too_old", F.concat(F.lit(f"{ts_name} "), t, F.lit(f" is before {min_ts:%Y-%m-%d}")))
        .when(F.col("problem") == "timestamp_in_future", F.concat(F.lit(f"{ts_name} "), t, F.lit(" is after the load time")))
    )
    if events:
        detail = detail.when(F.col("problem") == "missing_stage", "stage is empty").when(
            F.col("problem") == "unknown_stage", F.concat(F.lit(UNKNOWN_STAGE_DETAIL[0]), F.col("stage_label"), F.lit(UNKNOWN_STAGE_DETAIL[1]))
        )
    detail = detail.otherwise(F.col("_shape_detail"))
    return df.withColumn("detail", F.when(F.col("problem").isNotNull(), detail)), text


def _ntz(moment: datetime):
    """A naive UTC datetime as a TIMESTAMP_NTZ literal (F.lit would read it in the local zone)."""
    from pyspark.sql import functions as F

    return F.lit(moment.isoformat(sep=" ")).cast("timestamp_ntz")


def _sql_string(value: str) -> str:
    """A constant of ours as a Spark SQL string literal (sqlglot escapes it)."""
    from sqlglot import exp

    return exp.Literal.string(value).sql("spark")


def _load_file(spark, f: InputFile, file_id: int, config: FunnelConfig, now: datetime, work: Path):
    """Check, de-duplicate and store one file: (the stored rows as a DataFrame, quarantine rows, report)."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    events = f.role == "events"
    checked, text = _checked(spark, f, config, now)
    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
    attrs = list(f.attributes)
    value_cols = (["lead_id", "stage", "stage_label", "ts", "reason"] if events else ["lead_id", "ts"]) + attrs
    target = (["lead_id", "stage", "stage_label", "entered_at", "reason"] if events else ["lead_id", "created_at"]) + attrs
    valid = checked.where(F.col("problem").isNull())
    # Exact duplicates: the first occurrence (by line) of identical values is kept.
    first = Window.partitionBy(*value_cols).orderBy("_line")
    kept = valid.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1)
    stored = kept.select(
        F.lit(file_id).cast("int").alias("file_id"),
        F.col("_line").cast("bigint").alias("source_line"),
        *[F.col(v).alias(t) for v, t in zip(value_cols, target)],
    )
    table = "raw_events" if events else "raw_leads"
    # Every configured attribute is a column of the raw table, NULL where the file lacks it (as in DuckDB).
    _with_attributes(stored, expansion(config).attributes).write.mode("overwrite").parquet(str(work / table))
    quarantine = checked.where(F.col("problem").isNotNull()).select(
        F.lit(file_id).cast("int").alias("file_id"),
        F.col("_line").cast("bigint").alias("line"),
        F.col("problem").alias("reason"),
        F.col("detail"),
        F.col("_raw").alias("raw"),
        # a row with the wrong number of fields has none, as the DuckDB load's CSV reader rejects it: its fields may be shifted
        F.when((F.col("problem") != "wrong_column_count") & (F.trim(F.col("lead_id")) != ""), F.trim(F.col("lead_id"))).alias("lead_id"),
    )
    # One pass for the counts: per problem (NULL = valid), with the valid rows' first and last time.
    by_problem = checked.groupBy("problem").agg(F.count("*").alias("n"), F.min("ts").alias("first"), F.max("ts").alias("last")).collect()
    reasons = {r["problem"]: r["n"] for r in by_problem if r["problem"] is not None}
    stats = next((r for r in by_problem if r["problem"] is None), {"n": 0, "first": None, "last": None})
    unknown = {}
    if events and "unknown_stage" in reasons:
        unknown = {r["stage_label"]: r["n"] for r in checked.where(F.col("problem") == "unknown_stage").groupBy("stage_label").agg(F.count("*").alias("n")).collect()}
    loaded = spark.read.parquet(str(work / table)).count()
    quarantined = sum(reasons.values())
    report = FileReport(
        path=str(f.path),
        role=f.role,
        format=f"{f.fmt}{'+' + f.compression if f.compression else ''} (spark)",
        sha256=f.sha256,
        size_bytes=f.size,
        rows_read=stats["n"] + quarantined,
        rows_loaded=loaded,
        rows_quarantined=quarantined,
        rows_duplicate=stats["n"] - loaded,
        reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        unknown_labels=dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))),
        first_entered_at=stats["first"].isoformat(sep=" ") if stats["first"] else None,
        last_entered_at=stats["last"].isoformat(sep=" ") if stats["last"] else None,
    )
    if not report.balanced:  # a bug, never a user mistake: refuse to publish
        raise RuntimeError(f"row accounting does not balance for {f.path}: {report}")
    return quarantine, report, [checked] + ([text] if text is not None else [])


# --- building -------------------------------------------------------------------------------------


def _seeds(spark, config: FunnelConfig) -> dict:
    """The cfg_* tables of warehouse/build.py write_seeds, same columns and types, with their row counts."""
    n = len(config.stages)
    stages = [(s, i, i, "funnel", s in config.terminal_stages, i == n) for i, s in enumerate(config.stages, start=1)]
    stages += [(o, None, n + i, "outcome", o in config.terminal_stages, False) for i, o in enumerate(config.outcomes, start=1)]
    rows = {
        "cfg_stages": (stages, "stage string, stage_order int, stage_rank int, kind string, is_terminal boolean, is_last boolean"),
        "cfg_reasons": (sorted(config.reason_map().items()) if config.reasons else [], "reason_key string, reason string"),
        "cfg_sla": (sla_rows(config), "stage string, sla_value string, clock string, sla_days double, sla_hours double"),
        "cfg_settings": (
            [settings_row(config)],
            "timezone string, skipped_stages string, window_days int, min_sample int, open_hour double, close_hour double, "
            "pipeline_from_order int",
        ),
    }
    return {name: (spark.createDataFrame(data, schema), len(data)) for name, (data, schema) in rows.items()}


def _with_attributes(df, attributes: tuple[str, ...]):
    """A raw table with a (NULL) string column for every configured attribute the file lacks."""
    from pyspark.sql import functions as F

    for name in attributes:
        if name not in df.columns:
            df = df.withColumn(name, F.lit(None).cast("string"))
    return df


def _empty_leads(spark, attributes: tuple[str, ...]):
    schema = "file_id int, source_line bigint, lead_id string, created_at timestamp_ntz"
    return _with_attributes(spark.createDataFrame([], schema), attributes)


def _run_models(spark, config: FunnelConfig, build_dir: Path, progress: Progress) -> tuple[list[str], dict[str, int]]:
    """Every model in build order: views stay views, tables are written as Parquet and read back
    (what later models read is what was written); columns and data tests checked. Returns the
    models built and the row count of each table written."""
    lists = expansion(config)
    built, written = [], {}
    for model in build_order(load_models()):
        progress.note(f"building {model.layer}/{model.name} on Spark")
        sql = to_sql(expand(model.tree, lists), "spark")
        try:
            df = spark.sql(sql)
            if model.materialized == "view":
                df.createOrReplaceTempView(model.name)
            else:
                df.write.mode("overwrite").parquet(str(build_dir / model.name))
                spark.read.parquet(str(build_dir / model.name)).createOrReplaceTempView(model.name)
        except Exception as exc:
            if exc.__class__.__module__.startswith(("pyspark", "py4j")):
                raise ModelError(f"model {model.name} failed to build on Spark: {_first_line(exc)}") from None
            raise
        _check_columns(spark, model, lists)
        rows = _run_tests(spark, model)
        if model.materialized != "view":
            written[model.name] = rows
        built.append(model.name)
    return built, written


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_columns(spark, model: Model, lists) -> None:
    actual = spark.table(model.name).columns
    expected = expected_columns(model, lists)
    if actual != expected:
        extra = [c for c in actual if c not in expected]
        missing = [c for c in expected if c not in actual]
        raise ModelError(
            f"model {model.name} builds columns on Spark that differ from its metadata (extra: {', '.join(extra) or 'none'}; "
            f"missing: {', '.join(missing) or 'none'}; or in another order)."
        )


def _run_tests(spark, model: Model) -> int:
    """The data tests of the model's metadata, as warehouse/build.py runs them, compiled for Spark;
    returns the model's row count (counted in the same job)."""
    from sqlglot import exp

    tests = model.meta.get("tests", {})
    checks: list[tuple[str, str]] = []
    table = exp.to_identifier(model.name).sql("duckdb")
    for cols in tests.get("unique", []):
        key = ", ".join(exp.to_identifier(c, quoted=True).sql("duckdb") for c in cols)
        checks.append((f"unique({', '.join(cols)})", f"select count(*) from (select {key} from {table} group by {key} having count(*) > 1)"))
    for col in tests.get("not_null", []):
        ident = exp.to_identifier(col, quoted=True).sql("duckdb")
        checks.append((f"not_null({col})", f"select count(*) from {table} where {ident} is null"))
    for expression in tests.get("expression", []):
        checks.append((expression, f"select count(*) from {table} where not coalesce(({expression}), false)"))
    checks.append(("rows", f"select count(*) from {table}"))
    # One Spark job for all of a model's tests: their counts, unioned, each with its position.
    union = " union all ".join(f"select {i} as k, ({sql}) as bad" for i, (_, sql) in enumerate(checks))
    counts = dict(tuple(r) for r in spark.sql(compile_query(union, "spark")).collect())
    for i, (label, _) in enumerate(checks[:-1]):
        if counts[i]:
            raise ModelError(f"model {model.name} fails its data test {label} on Spark on {counts[i]:,} row(s).")
    return counts[len(checks) - 1]


def build(
    events: Path,
    out: Path,
    config: FunnelConfig,
    *,
    leads: Path | None = None,
    master: str | None = None,
    spark=None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SparkBuild:
    """Load one events file (and a leads file) on Spark, build every model, publish the Parquet marts in `out`."""
    from funnelboard.warehouse.publish import load_lock

    started = time.monotonic()
    progress = progress or Progress(enabled=False)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    files = [_inspect(Path(events), "events", config)]
    if leads is not None:
        files.append(_inspect(Path(leads), "leads", config))
    version = require_spark()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file: expected a directory for the Parquet marts.")
    out.mkdir(parents=True, exist_ok=True)
    own_session = spark is None and _active_session() is None
    spark = spark or spark_session(master)
    master_url = spark.sparkContext.master
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # naive timestamps are UTC, as in DuckDB
    build_id = f"build-{now:%Y%m%dT%H%M%S}-{os.getpid()}-{time.time_ns() % 1_000_000:06d}"
    build_dir = out / build_id
    cached: list = []
    with load_lock(out / MANIFEST):
        try:
            lists = expansion(config)
            reports, quarantines = [], []
            for file_id, f in enumerate(files, start=1):
                progress.note(f"reading and checking {f.role} {f.path.name} on Spark")
                quarantine, report, held = _load_file(spark, f, file_id, config, now, build_dir)
                cached += held
                quarantines.append(quarantine)
                reports.append(report)
            spark.read.parquet(str(build_dir / "raw_events")).createOrReplaceTempView("raw_events")
            if leads is not None:
                raw_leads = spark.read.parquet(str(build_dir / "raw_leads"))
            else:
                raw_leads = _empty_leads(spark, lists.attributes)
                raw_leads.write.mode("overwrite").parquet(str(build_dir / "raw_leads"))
            raw_leads.createOrReplaceTempView("raw_leads")
            quarantine = quarantines[0]
            for q in quarantines[1:]:
                quarantine = quarantine.unionByName(q)
            quarantine.write.mode("overwrite").parquet(str(build_dir / "quarantine"))
            tables = {
                "raw_events": sum(r.rows_loaded for r in reports if r.role == "events"),
                "raw_leads": sum(r.rows_loaded for r in reports if r.role == "leads"),
                "quarantine": sum(r.rows_quarantined for r in reports),
            }
            for name, (df, n) in _seeds(spark, config).items():
                df.write.mode("overwrite").parquet(str(build_dir / name))
                spark.read.parquet(str(build_dir / name)).createOrReplaceTempView(name)
                tables[name] = n
            built, written = _run_models(spark, config, build_dir, progress)
            tables.update(written)
            tables = {name: tables[name] for name in list(OUTPUTS) + [n for n in written if n not in OUTPUTS]}
            manifest = _manifest(build_id, config, reports, built, tables, version, master_url, now, time.monotonic() - started)
            _publish(out, manifest)
        except BaseException:
            shutil.rmtree(build_dir, ignore_errors=True)
            raise
        finally:
            for df in cached:
                df.unpersist()
            if own_session:
                spark.stop()
    progress.note(f"published Spark build {build_id} in {out}")
    return SparkBuild(out, build_id, reports, built, tables, version, master_url, time.monotonic() - started)


def _manifest(build_id, config, reports, built, tables, version, master, now, seconds) -> dict:
    from funnelboard import __version__

    return {
        "format": MANIFEST_FORMAT,
        "engine": "spark",
        "build": build_id,
        "built_at": now.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "spark_version": version,
        "master": master,
        "funnelboard_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "config": config.to_json(),
        "config_source": config.source,
        "config_fingerprint": config.fingerprint(),
        "models_fingerprint": models_fingerprint(),
        "models": built,
        "tables": {name: {"path": f"{build_id}/{name}", "rows": n} for name, n in tables.items()},
        "files": [asdict(r) for r in reports],
    }


def _publish(out: Path, manifest: dict) -> None:
    """Replace the manifest atomically (the publish), then drop builds older than the previous one."""
    tmp = out / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2), "utf-8")
    os.replace(tmp, out / MANIFEST)
    builds = sorted((p for p in out.glob("build-*") if p.is_dir()), key=lambda p: p.stat().st_mtime_ns)
    keep = {manifest["build"]}
    others = [p for p in builds if p.name not in keep]
    for stale in others[: max(len(others) - (KEEP_BUILDS - 1), 0)]:
        shutil.rmtree(stale, ignore_errors=True)


def read_manifest(out: Path) -> dict:
    """The published manifest of a marts directory; UserError when there is none."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise UserError(f"no Spark build in '{out}': build one with `funnelboard build --engine spark --events FILE --out {out}`.")
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"'{path}' is not a funnelboard manifest: {exc}.") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise UserError(f"'{path}' has manifest format {manifest.get('format')}; this funnelboard reads format {MANIFEST_FORMAT}: rebuild it.")
    return manifest


# --- running metric queries on Spark ------------------------------------------------------------


class SparkGateway:
    """A Gateway look-alike over a Spark build: metric SQL is compiled for Spark and runs there.

    `warehouse.metrics.run_metric(SparkGateway(spark, DIR), name, request)` computes a metric
    on the cluster; the Python shaping around the SQL is the same as for DuckDB."""

    def __init__(self, spark, out: Path, *, row_cap: int = 100_000):
        self.db = Path(out)
        self.row_cap = row_cap
        self.spark = spark
        self.manifest = read_manifest(self.db)
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        for name, table in self.manifest["tables"].items():
            spark.read.parquet(str(self.db / table["path"])).createOrReplaceTempView(name)
        self._facts = None

    def query(self, sql: str, params: dict | None = None, *, row_cap: int | None = None):
        from funnelboard.warehouse.gateway import Result

        cap = self.row_cap if row_cap is None else row_cap
        df = self.spark.sql(compile_query(sql, "spark", params or {}))
        rows = [tuple(r) for r in df.limit(cap + 1).collect()]
        return Result(list(df.columns), rows[:cap], len(rows) > cap)

    def facts(self) -> dict:
        if self._facts is None:
            first, last = self.query("select min(entered_at), max(entered_at) from raw_events").rows[0]
            self._facts = {
                "config": FunnelConfig.from_json(self.manifest["config"]),
                "models_fingerprint": self.manifest["models_fingerprint"],
                "first_event": first,
                "last_event": last,
                "published_at": datetime.fromisoformat(self.manifest["built_at"]) if self.manifest.get("built_at") else None,
            }
        return self._facts

    def config(self) -> FunnelConfig:
        return self.facts()["config"]

    def close(self) -> None:
        pass
