"""The `funnelboard` command line: thin wrappers that build settings and call the packages."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from funnelboard.config import FunnelConfig, default_config_text, load_config
from funnelboard.errors import UserError
from funnelboard.export import plain, rows_to_csv
from funnelboard.progress import Progress

DEFAULT_DB = "funnelboard.duckdb"


@dataclass(frozen=True)
class Settings:
    """What every command needs, built once from flags (and FUNNELBOARD_DB) at the entry point."""

    db: Path
    config: FunnelConfig
    quiet: bool = False


def _settings(db: str, config: str | None, quiet: bool = False) -> Settings:
    path = Path(config) if config else (Path("funnel.toml") if Path("funnel.toml").is_file() else None)
    return Settings(db=Path(db), config=load_config(path), quiet=quiet)


class _Group(click.Group):
    """Turns UserError into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


db_option = click.option(
    "--db",
    default=DEFAULT_DB,
    envvar="FUNNELBOARD_DB",
    show_default=True,
    help="The warehouse file (env FUNNELBOARD_DB).",
)
config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="funnel.toml to use (default: ./funnel.toml if present, else the built-in demo config).",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="funnelboard")
def main() -> None:
    """funnelboard: sales-funnel analytics for BPO providers."""


@main.command()
@click.option("--out", type=click.Path(dir_okay=False), default="funnel.toml", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(out: str, force: bool) -> None:
    """Write the built-in funnel.toml for editing."""
    path = Path(out)
    if path.exists() and not force:
        raise UserError(f"'{path}' already exists: pass --force to overwrite it.")
    path.write_text(default_config_text(), encoding="utf-8")
    click.echo(f"wrote {path}: edit the stages, label map and segments, then load with --config {path}")


@main.command()
@click.option("--events", "n_events", type=click.IntRange(min=1), help="Exactly this many events.")
@click.option("--leads", "n_leads", type=click.IntRange(min=1), help="Exactly this many leads.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="File to write.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--dirty", is_flag=True, help="Add the mess real exports carry (duplicates, bad dates, unknown labels...).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "jsonl"]), default=None, help="Default: from the file name, else csv.")
def generate(n_events: int | None, n_leads: int | None, out: str, seed: int, dirty: bool, fmt: str | None) -> None:
    """Generate a realistic demo BPO pipeline (canonical events)."""
    from etl.generate import generate as run_generate

    if (n_events is None) == (n_leads is None):
        raise UserError("give exactly one of --events N or --leads N.")
    path = Path(out)
    fmt = fmt or _format_from_name(path)
    summary = run_generate(out=path, fmt=fmt, n_events=n_events, n_leads=n_leads, seed=seed, dirty=dirty)
    click.echo(f"wrote {summary.path}: {summary.rows:,} rows, {summary.leads:,} leads ({summary.format}, seed {summary.seed})")
    if summary.dirty:
        click.echo("  dirt added: " + ", ".join(f"{k} {v}" for k, v in summary.dirty.items()))


def _format_from_name(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    return "csv"


@main.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--leads", "leads", multiple=True, type=click.Path(dir_okay=False), help="A leads file (one row per lead); repeatable.")
@click.option("--replace", is_flag=True, help="Load files again even if already loaded, replacing their earlier rows.")
@click.option(
    "--source",
    default="canonical",
    show_default=True,
    help="What the FILES are: canonical, wide, salesforce, hubspot or pipedrive (docs/sources.md); "
    "options come from [source.NAME] in funnel.toml.",
)
@click.option("--quiet", is_flag=True, help="No progress output.")
@config_option
@db_option
def load(files: tuple[str, ...], leads: tuple[str, ...], replace: bool, source: str, quiet: bool, config: str | None, db: str) -> None:
    """Load event files (CSV, CSV.gz, Parquet, JSON Lines) or CRM exports (--source) into the warehouse."""
    from etl.load import load_files

    settings = _settings(db, config, quiet)
    progress = Progress(enabled=not quiet)
    progress.note(f"config: {settings.config.source}")
    report = load_files(
        settings.db,
        [Path(f) for f in files],
        settings.config,
        leads=[Path(f) for f in leads],
        replace=replace,
        progress=progress,
        source=source,
    )
    _print_load_report(report)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _print_load_report(report) -> None:
    notes: list[str] = []
    for f in report.files:
        if f.status == "skipped":
            click.echo(f"skipped {f.path}: {f.note}")
            continue
        if f.source != "canonical":
            # An adapter's records: events (or lead rows) made from the export, then the export's rows.
            noun = "events" if f.role == "events" else "lead rows"
            click.echo(
                f"loaded {f.role} {f.path} (--source {f.source}): {f.rows_read:,} {noun} read = {f.rows_loaded:,} loaded + "
                f"{f.rows_quarantined:,} quarantined + {_n(f.rows_duplicate, 'duplicate')}"
                + (f" ({f.rows_replaced:,} earlier rows replaced)" if f.rows_replaced else "")
            )
            if f.source_rows is not None:
                click.echo(
                    f"  export rows: {f.source_rows:,} = {f.source_rows - f.rows_ignored:,} used + {f.rows_ignored:,} ignored"
                    + (" (" + ", ".join(f"{k} {v:,}" for k, v in f.ignored.items()) + ")" if f.ignored else "")
                )
            notes += [n for n in f.notes if n not in notes]
        else:
            click.echo(
                f"loaded {f.role} {f.path}: {f.rows_read:,} rows read = {f.rows_loaded:,} loaded + "
                f"{f.rows_quarantined:,} quarantined + {_n(f.rows_duplicate, 'duplicate')}"
                + (f" ({f.rows_replaced:,} earlier rows replaced)" if f.rows_replaced else "")
            )
        if f.reasons:
            click.echo("  quarantined: " + ", ".join(f"{k} {v:,}" for k, v in f.reasons.items()))
        if f.unknown_labels:
            labels = ", ".join(f'"{k}" ({_n(v, "row")})' for k, v in list(f.unknown_labels.items())[:10])
            click.echo(f"  unknown stage labels (map them under [labels] in funnel.toml, then load with --replace): {labels}")
    for note in notes:
        click.echo(f"note: {note}")
    if report.published:
        click.echo(f"warehouse {report.db}: published load {report.load_id} in {report.seconds:.1f}s")
    else:
        click.echo(f"warehouse {report.db}: nothing new to load, unchanged")


@main.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(db: str, fmt: str) -> None:
    """Show what is loaded: loads, rows, quarantine reasons, date range, as-of."""
    from etl.status import warehouse_status

    info = warehouse_status(Path(db))
    if fmt == "json":
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo(f"warehouse {info['db']}")
    click.echo(f"  events {info['events']:,} from {info['leads']:,} leads; quarantined {info['quarantined']:,}; duplicates collapsed {info['duplicates']:,}")
    click.echo(f"  events dated {info['first_event']} .. {info['last_event']}; as-of {info['as_of']}")
    click.echo(f"  config: {info['config_source']}")
    click.echo("  loads:")
    for row in info["files"]:
        flag = f"  (replaced by load {row['superseded_by']})" if row["superseded_by"] else ""
        click.echo(
            f"    load {row['load_id']} {row['loaded_at']} {row['role']} {row['source_file']}: "
            f"{row['rows_read']:,} read = {row['rows_loaded']:,} + {row['rows_quarantined']:,} quarantined + {row['rows_duplicate']:,} duplicates{flag}"
        )
    if info["quarantine_reasons"]:
        click.echo("  quarantine reasons:")
        for reason, count in info["quarantine_reasons"].items():
            click.echo(f"    {reason}: {count:,}")
    if info["unknown_labels"]:
        click.echo("  unknown stage labels: " + ", ".join(f'"{k}" ({v:,})' for k, v in info["unknown_labels"].items()))


def _period(config: FunnelConfig, start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """--from/--to dates (inclusive, local to the configured zone) as a UTC half-open period."""
    tz = ZoneInfo(config.timezone)

    def utc_midnight(text: str, days: int = 0) -> datetime:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise UserError(f"'{text}' is not a date: expected YYYY-MM-DD.") from None
        local = datetime.combine(day + timedelta(days=days), time.min, tzinfo=tz)
        return local.astimezone(timezone.utc).replace(tzinfo=None)

    return (utc_midnight(start) if start else None, utc_midnight(end, 1) if end else None)


def _as_of(text: str | None, config: FunnelConfig) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of '{text}' is not a date or timestamp: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM.") from None
    if moment.tzinfo is None:
        if len(text) == 10:  # a date means the end of that day
            moment = moment + timedelta(days=1) - timedelta(microseconds=1)
        moment = moment.replace(tzinfo=ZoneInfo(config.timezone))
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _filters(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in values:
        if "=" not in item:
            raise UserError(f"--filter '{item}' is not COLUMN=VALUE.")
        col, value = item.split("=", 1)
        out.append((col.strip(), value))
    return tuple(out)


def _emit(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=plain))
        return
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        click.echo(rows_to_csv(rows), nl=False)
        return
    if not rows:
        click.echo("(no rows)")
        return
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        click.echo("  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths)))




def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("-", "", 1).isdigit()


@main.command()
@click.argument("metric", required=False)
@click.option("--list", "list_metrics", is_flag=True, help="Name every metric with a one-line description.")
@click.option("--from", "start", help="Period start date (inclusive), YYYY-MM-DD.")
@click.option("--to", "end", help="Period end date (inclusive), YYYY-MM-DD.")
@click.option("--as-of", "as_of", help="Analysis time (default: the latest event).")
@click.option("--segment", help="Segment column to break down by.")
@click.option("--segment2", help="A second segment column, crossed with the first.")
@click.option("--filter", "filters", multiple=True, help="COLUMN=VALUE on lead attributes; repeatable.")
@click.option("--from-stage", help="Conversion start stage.")
@click.option("--to-stage", help="Conversion end stage.")
@click.option("--window", "window_days", type=int, help="Conversion window in days (0 = none; default from config).")
@click.option("--business-days", is_flag=True, help="Durations in business days.")
@click.option("--within-days", type=click.IntRange(min=1), default=30, show_default=True, help="time_to_sql: the N in 'reached SQL within N days'.")
@click.option("--by", help="disqualifiers: group by stage_left, week or a segment column.")
@click.option("--before", help="mix_vs_rate: the earlier period as FROM:TO dates (default: the 28 days before --after).")
@click.option("--after", help="mix_vs_rate: the later period as FROM:TO dates (default: the 28 days ending at as-of).")
@click.option("--which", type=click.Choice(["all", "converted", "not_converted"]), default="all", show_default=True, help="leads: which cohort members.")
@click.option("--lead-id", help="lead_history: the lead.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@db_option
def query(metric, list_metrics, start, end, as_of, segment, segment2, filters, from_stage, to_stage, window_days, business_days, within_days, by, before, after, which, lead_id, fmt, db) -> None:
    """Print a metric from the warehouse, with the same filters the dashboard uses."""
    from warehouse.gateway import Gateway
    from warehouse.metrics import REGISTRY, MetricRequest, run_metric

    if list_metrics or not metric:
        for m in REGISTRY.values():
            click.echo(f"{m.name:22} {m.description}")
        return
    gateway = Gateway(Path(db))
    config = gateway.config()
    period = _period(config, start, end)
    req = MetricRequest(
        start=period[0],
        end=period[1],
        as_of=_as_of(as_of, config),
        filters=_filters(filters),
        segment=segment,
        segment2=segment2,
        from_stage=from_stage,
        to_stage=to_stage,
        window_days=window_days,
        business_days=business_days,
        within_days=within_days,
        by=by,
        before=_span(config, before, "--before"),
        after=_span(config, after, "--after"),
        which=which,
        lead_id=lead_id,
    )
    _emit(run_metric(gateway, metric, req), fmt)


def _span(config: FunnelConfig, text: str | None, flag: str) -> tuple[datetime, datetime] | None:
    if not text:
        return None
    if ":" not in text:
        raise UserError(f"{flag} '{text}' is not FROM:TO, e.g. 2026-10-01:2026-10-28.")
    first, last = text.split(":", 1)
    start, end = _period(config, first, last)
    return start, end


SPARK_ONLY = ("events", "leads_file", "out", "master")


@main.command()
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="duckdb: rebuild the models of --db. spark: load --events on Apache Spark and write Parquet marts to --out.")
@click.option("--events", type=click.Path(dir_okay=False), help="spark: the canonical events file (CSV or Parquet).")
@click.option("--leads", "leads_file", type=click.Path(dir_okay=False), help="spark: a leads file (one row per lead).")
@click.option("--out", type=click.Path(file_okay=False), help="spark: the directory the Parquet marts are written to.")
@click.option("--master", envvar="FUNNELBOARD_SPARK_MASTER", help="spark: the Spark master URL (env FUNNELBOARD_SPARK_MASTER; default local[*]).")
@config_option
@db_option
@click.pass_context
def build(ctx: click.Context, engine: str, events: str | None, leads_file: str | None, out: str | None, master: str | None,
          config: str | None, db: str) -> None:
    """Rebuild the models of the warehouse (after editing queries/ or funnel.toml) and publish; or build them on Spark."""
    from etl import raw_schema
    from warehouse.build import build_models
    from warehouse.publish import building, load_lock

    if engine == "spark":
        if ctx.get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE:
            raise UserError("--db is for --engine duckdb: a Spark build writes Parquet marts to --out DIR.")
        _build_spark(events, leads_file, out, master, config)
        return
    given = [f"--{name.replace('_file', '').replace('_', '-')}" for name in SPARK_ONLY
             if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if given:
        raise UserError(f"{given[0]} is for --engine spark; load files into a DuckDB warehouse with `funnelboard load`.")
    settings = _settings(db, config)
    if not settings.db.is_file():
        raise UserError(f"no warehouse at '{settings.db}': load one with `funnelboard load EVENTS.csv --db {settings.db}`.")
    with load_lock(settings.db), building(settings.db) as con:
        built = build_models(con, settings.config, Progress())
        raw_schema.set_meta(con, "config", settings.config.to_json())
        raw_schema.set_meta(con, "config_source", settings.config.source)
    click.echo(f"built {len(built)} models into {settings.db}: {', '.join(built)}")


def _build_spark(events: str | None, leads: str | None, out: str | None, master: str | None, config: str | None) -> None:
    from warehouse.spark import build as spark_build

    if not events or not out:
        raise UserError("--engine spark needs --events FILE (CSV or Parquet) and --out DIR for the Parquet marts.")
    settings = _settings(DEFAULT_DB, config)
    progress = Progress()
    progress.note(f"config: {settings.config.source}")
    result = spark_build(Path(events), Path(out), settings.config, leads=Path(leads) if leads else None, master=master, progress=progress)
    for f in result.files:
        click.echo(
            f"loaded {f.role} {f.path} on Spark: {f.rows_read:,} rows read = {f.rows_loaded:,} loaded + "
            f"{f.rows_quarantined:,} quarantined + {_n(f.rows_duplicate, 'duplicate')}"
        )
        if f.reasons:
            click.echo("  quarantined: " + ", ".join(f"{k} {v:,}" for k, v in f.reasons.items()))
        if f.unknown_labels:
            labels = ", ".join(f'"{k}" ({_n(v, "row")})' for k, v in list(f.unknown_labels.items())[:10])
            click.echo(f"  unknown stage labels (map them under [labels] in funnel.toml): {labels}")
    marts = ", ".join(f"{name} {result.tables[name]:,} rows" for name in ("fct_leads", "fct_spells"))
    click.echo(
        f"built {len(result.models)} models on Spark {result.spark_version} ({result.master}) into {result.out} "
        f"in {result.seconds:.1f}s: {marts}"
    )
    click.echo(f"serve them with: funnelboard serve --marts {result.out}")


@main.command("sql")
@click.option("--dialect", required=True, help="spark, trino, bigquery, snowflake, postgres or duckdb.")
@click.option("--model", "model_name", help="Only this model or metric query (default: every model in build order, then the metric queries).")
@config_option
def sql_command(dialect: str, model_name: str | None, config: str | None) -> None:
    """Print the SQL models and metric queries compiled for another engine (sqlglot plus our corrections)."""
    from warehouse.dialects import compile_all

    settings = _settings(DEFAULT_DB, config)
    for item in compile_all(settings.config, dialect, model_name):
        click.echo(f"-- {item.name}")
        for warning in item.warnings:
            click.echo(f"-- warning: {warning}")
        if item.sql:
            click.echo(item.sql + ";")
        click.echo("")


@main.group()
def models() -> None:
    """The SQL models: list, render, build."""


@models.command("list")
def models_list() -> None:
    """Every model in build order with its layer and description."""
    from warehouse.models import build_order, load_models

    for m in build_order(load_models()):
        click.echo(f"{m.layer + '/' + m.name:36} {m.description}")


@models.command("render")
@click.argument("name")
@config_option
@click.option("--dialect", default="duckdb", show_default=True, help="Any sqlglot dialect (spark, trino, postgres, ...).")
def models_render(name: str, config: str | None, dialect: str) -> None:
    """Print one model (or metric query) as compiled SQL, configured lists expanded."""
    from warehouse.build import expansion
    from warehouse.models import LAYERS, load_models, parse_model, queries_root, render

    settings = _settings(DEFAULT_DB, config)
    found = load_models()
    if name in found:
        model = found[name]
    elif (queries_root() / "metrics" / f"{name}.sql").is_file():
        model = parse_model(queries_root() / "metrics" / f"{name}.sql", "metrics")
    else:
        raise UserError(f"no model named '{name}'; `funnelboard models list` names them ({', '.join(LAYERS)}).")
    click.echo(render(model, expansion(settings.config), dialect))


@models.command("build")
@config_option
@db_option
@click.pass_context
def models_build(ctx: click.Context, config: str | None, db: str) -> None:
    """Same as `funnelboard build`."""
    ctx.invoke(build, config=config, db=db)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def read_credentials(auth_file: str | None, env: dict) -> dict[str, str]:
    """user -> password pairs from --auth-file (user:password lines) or FUNNELBOARD_AUTH (user:password)."""
    lines: list[str] = []
    if auth_file:
        try:
            lines = Path(auth_file).read_text("utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"cannot read --auth-file '{auth_file}': {exc.strerror}.") from None
    elif env.get("FUNNELBOARD_AUTH"):
        lines = [env["FUNNELBOARD_AUTH"]]
    pairs = {}
    for line in lines:
        if line.strip():
            user, sep, password = line.strip().partition(":")
            if not sep or not user or not password:
                raise UserError("credentials must be user:password, one pair per line.")
            pairs[user] = password
    return pairs


def check_bind(host: str, credentials: dict, insecure_no_auth: bool) -> None:
    """Refuse to serve beyond this machine without a password, unless told so explicitly."""
    if host not in LOOPBACK and not credentials and not insecure_no_auth:
        raise UserError(
            f"refusing to serve on {host} without authentication: set FUNNELBOARD_AUTH=user:password or "
            "--auth-file FILE, or pass --insecure-no-auth to accept the risk."
        )


@main.command()
@db_option
@click.option("--marts", type=click.Path(file_okay=False), help="Serve a Spark build's Parquet marts (the --out DIR of `build --engine spark`) instead of --db.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but loopback needs credentials.")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535))
@click.option("--debug", is_flag=True, help="Dash debug mode (never on a shared network).")
@click.option("--auth-file", type=click.Path(dir_okay=False), help="user:password lines for HTTP basic auth.")
@click.option("--insecure-no-auth", is_flag=True, help="Serve beyond loopback with no password.")
@click.pass_context
def serve(ctx: click.Context, db: str, marts: str | None, host: str, port: int, debug: bool, auth_file: str | None, insecure_no_auth: bool) -> None:
    """Serve the dashboard (http://127.0.0.1:8050 by default)."""
    import os

    if marts and ctx.get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE:
        raise UserError("give --db or --marts, not both: --db serves a DuckDB warehouse, --marts a Spark build's Parquet marts.")
    credentials = read_credentials(auth_file, dict(os.environ))
    check_bind(host, credentials, insecure_no_auth)
    if marts:
        from warehouse.marts_dir import catalog

        db = str(catalog(Path(marts)))
    _serve(Path(db), host, port, debug, credentials)


def _serve(db: Path, host: str, port: int, debug: bool, credentials: dict) -> None:
    from dashboard.app import create_app, keep_warm

    app = create_app(db)
    if app.server.config["FUNNELBOARD_GATEWAY"].cache_rows:
        keep_warm(app)  # the default views computed before the first visitor asks
    if credentials:
        import dash_auth

        dash_auth.BasicAuth(app, credentials)
    click.echo(f"serving {db} on http://{'[' + host + ']' if ':' in host else host}:{port} (Ctrl+C to stop)")
    app.run(host=host, port=port, debug=debug)


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="funnelboard-demo", show_default=True, help="Where the demo data and warehouse go.")
@click.option("--leads", "n_leads", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Load only; do not start the dashboard.")
def demo(directory: str, n_leads: int, seed: int, port: int, no_serve: bool) -> None:
    """Generate the demo BPO pipeline, load it and serve the dashboard on http://127.0.0.1:8050."""
    from etl.generate import generate as run_generate
    from etl.load import load_files

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    events = folder / "events.csv"
    db = folder / "funnelboard.duckdb"
    config = load_config(None)
    summary = run_generate(out=events, fmt="csv", n_leads=n_leads, seed=seed, dirty=True)
    click.echo(f"generated {events}: {summary.rows:,} rows for {summary.leads:,} leads (with realistic export dirt)")
    report = load_files(db, [events], config, progress=Progress())
    _print_load_report(report)
    click.echo("")
    click.echo(f"Also try: funnelboard query sql_rate --db {db}   (funnelboard query --list names every metric)")
    if not no_serve:
        _serve(db, "127.0.0.1", port, False, {})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
