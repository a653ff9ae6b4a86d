"""Getting data in: `load` files or CRM exports, `status` of the warehouse, `build` its models again."""

from __future__ import annotations

import json
from pathlib import Path

import click

from funnelboard.cli.common import (
    DEFAULT_DB,
    db_option,
    make_settings,
    plural,
    warehouse_config_option,
)
from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress
from funnelboard.etl.sources.registry import ADAPTERS


@click.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--leads", "leads", multiple=True, type=click.Path(dir_okay=False), help="A leads file (one row per lead); repeatable.")
@click.option("--replace", is_flag=True, help="Load files again even if already loaded, replacing their earlier rows.")
@click.option(
    "--source",
    default="canonical",
    show_default=True,
    help=f"What the FILES are: {', '.join(ADAPTERS)} (docs/sources.md); options come from [source.NAME] in funnel.toml.",
)
@click.option("--quiet", is_flag=True, help="No progress output.")
@warehouse_config_option
@db_option
def load(files: tuple[str, ...], leads: tuple[str, ...], replace: bool, source: str, quiet: bool, config: str | None, db: str) -> None:
    """Load event files (CSV, CSV.gz, Parquet, JSON Lines) or CRM exports (--source) into the warehouse."""
    from funnelboard.warehouse.pipeline import load_files

    settings = make_settings(db, config, quiet)
    chosen = warehouse_config(settings, config)
    progress = Progress(enabled=not quiet)
    progress.note(f"config: {chosen.source}")
    report = load_files(
        settings.db,
        [Path(f) for f in files],
        chosen,
        leads=[Path(f) for f in leads],
        replace=replace,
        progress=progress,
        source=source,
    )
    print_load_report(report)


def print_load_report(report) -> None:
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
                f"{f.rows_quarantined:,} quarantined + {plural(f.rows_duplicate, 'duplicate')}"
                + (f" ({f.rows_replaced:,} earlier rows replaced)" if f.rows_replaced else "")
            )
            if f.source_rows is not None:
                click.echo(
                    f"  export rows: {f.source_rows:,} = {f.source_rows - f.rows_ignored:,} used + {f.rows_ignored:,} ignored"
                    + (" (" + ", ".join(f"{k} {v:,}" for k, v in f.ignored.items()) + ")" if f.ignored else "")
                )
        else:
            click.echo(
                f"loaded {f.role} {f.path}: {f.rows_read:,} rows read = {f.rows_loaded:,} loaded + "
                f"{f.rows_quarantined:,} quarantined + {plural(f.rows_duplicate, 'duplicate')}"
                + (f" ({f.rows_replaced:,} earlier rows replaced)" if f.rows_replaced else "")
            )
        notes += [n for n in f.notes if n not in notes]
        if f.reasons:
            click.echo("  quarantined: " + ", ".join(f"{k} {v:,}" for k, v in f.reasons.items()))
        if f.unknown_labels:
            labels = ", ".join(f'"{k}" ({plural(v, "row")})' for k, v in list(f.unknown_labels.items())[:10])
            click.echo(f"  unknown stage labels (map them under [labels] in funnel.toml, then load with --replace): {labels}")
    for note in notes:
        click.echo(f"note: {note}")
    if report.published:
        click.echo(f"warehouse {report.db}: published load {report.load_id} in {report.seconds:.1f}s")
        note = window_note(report.db)
        if note:
            click.echo(f"note: {note}")
    else:
        click.echo(f"warehouse {report.db}: nothing new to load, unchanged")


@click.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(db: str, fmt: str) -> None:
    """Show what is loaded: loads, rows, quarantine reasons, date range, as-of."""
    from funnelboard.warehouse.status import warehouse_status

    info = warehouse_status(Path(db))
    if fmt == "json":
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo(f"warehouse {info['db']}")
    click.echo(f"  events {info['events']:,} from {info['leads']:,} leads; quarantined {info['quarantined']:,}; duplicates collapsed {info['duplicates']:,}")
    if info["first_event"] is None:
        click.echo("  no events yet: every row loaded so far is in the quarantine (reasons below)")
    else:
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
    note = window_note(Path(db))
    if note:
        click.echo(f"  {note}")


def window_note(db: Path) -> str | None:
    """A sentence when the conversion window leaves key-rate conversions out (None when it does not)."""
    from funnelboard.core.config import stage_label
    from funnelboard.warehouse.gateway import Gateway
    from funnelboard.warehouse.metrics.conversion import window_left_out

    gateway = Gateway(db)
    try:
        left = window_left_out(gateway)
    finally:
        gateway.close()
    if left is None:
        return None
    pair = f"{stage_label(left['from_stage'])} → {stage_label(left['to_stage'])}"
    return (
        f"the {left['window_days']}-day conversion window leaves out {left['left_out']:,} of {left['conversions']:,} "
        f"{pair} conversions ({left['left_out'] / left['conversions']:.0%}) from {left['rate_name']}; "
        "set [funnel] conversion_window_days = 0 to count every conversion."
    )


SPARK_ONLY = ("events", "leads_file", "out", "master")


@click.command()
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="duckdb: rebuild the models of --db. spark: load --events on Apache Spark and write Parquet marts to --out.")
@click.option("--events", type=click.Path(dir_okay=False), help="spark: the canonical events file (CSV or Parquet).")
@click.option("--leads", "leads_file", type=click.Path(dir_okay=False), help="spark: a leads file (one row per lead).")
@click.option("--out", type=click.Path(file_okay=False), help="spark: the directory the Parquet marts are written to.")
@click.option("--master", envvar="FUNNELBOARD_SPARK_MASTER", help="spark: the Spark master URL (env FUNNELBOARD_SPARK_MASTER; default local[*]).")
@click.option("--full", is_flag=True, help="duckdb: rebuild every model from the raw tables even when they are up to date.")
@warehouse_config_option
@db_option
@click.pass_context
def build(ctx: click.Context, engine: str, events: str | None, leads_file: str | None, out: str | None, master: str | None,
          full: bool, config: str | None, db: str) -> None:
    """Rebuild the models of the warehouse (after editing queries/ or funnel.toml) and publish; or build them on Spark."""
    from funnelboard.warehouse.pipeline import rebuild

    if engine == "spark":
        if ctx.get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE:
            raise UserError("--db is for --engine duckdb: a Spark build writes Parquet marts to --out DIR.")
        if full:
            raise UserError("--full is for --engine duckdb: a Spark build always builds every mart.")
        _build_spark(events, leads_file, out, master, config)
        return
    given = [f"--{name.replace('_file', '').replace('_', '-')}" for name in SPARK_ONLY
             if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if given:
        raise UserError(f"{given[0]} is for --engine spark; load files into a DuckDB warehouse with `funnelboard load`.")
    settings = make_settings(db, config)
    chosen = warehouse_config(settings, config)
    report = rebuild(settings.db, chosen, Progress(), full=full)
    if report.how is None:
        click.echo(f"the models of {settings.db} are up to date: built from these model files with config {chosen.source}; "
                   "nothing rebuilt (--full rebuilds them anyway).")
        return
    click.echo(f"built {len(report.models)} models into {settings.db} with config {chosen.source}: {', '.join(report.models)}")


def warehouse_config(settings, config: str | None):
    """The config to rebuild or pull with: --config or ./funnel.toml when given, else the warehouse's own
    (not the demo's: a rebuild after editing queries/, or a pull, keeps the funnel it was loaded with)."""
    if config is None and not Path("funnel.toml").is_file() and settings.db.is_file():
        from funnelboard.warehouse.gateway import Gateway

        gateway = Gateway(settings.db)
        try:
            return gateway.config()
        finally:
            gateway.close()
    return settings.config


def _build_spark(events: str | None, leads: str | None, out: str | None, master: str | None, config: str | None) -> None:
    from funnelboard.warehouse.spark import build as spark_build

    if not events or not out:
        raise UserError("--engine spark needs --events FILE (CSV or Parquet) and --out DIR for the Parquet marts.")
    settings = make_settings(DEFAULT_DB, config)
    progress = Progress()
    progress.note(f"config: {settings.config.source}")
    result = spark_build(Path(events), Path(out), settings.config, leads=Path(leads) if leads else None, master=master, progress=progress)
    for f in result.files:
        click.echo(
            f"loaded {f.role} {f.path} on Spark: {f.rows_read:,} rows read = {f.rows_loaded:,} loaded + "
            f"{f.rows_quarantined:,} quarantined + {plural(f.rows_duplicate, 'duplicate')}"
        )
        if f.reasons:
            click.echo("  quarantined: " + ", ".join(f"{k} {v:,}" for k, v in f.reasons.items()))
        if f.unknown_labels:
            labels = ", ".join(f'"{k}" ({plural(v, "row")})' for k, v in list(f.unknown_labels.items())[:10])
            click.echo(f"  unknown stage labels (map them under [labels] in funnel.toml): {labels}")
    marts = ", ".join(f"{name} {result.tables[name]:,} rows" for name in ("fct_leads", "fct_spells"))
    click.echo(
        f"built {len(result.models)} models on Spark {result.spark_version} ({result.master}) into {result.out} "
        f"in {result.seconds:.1f}s: {marts}"
    )
    click.echo(f"serve them with: funnelboard serve --marts {result.out}")
