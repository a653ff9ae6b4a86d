"""The `funnelboard` command line: thin wrappers that build settings and call the packages."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from funnelboard.config import FunnelConfig, default_config_text, load_config
from funnelboard.errors import UserError
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
@click.option("--quiet", is_flag=True, help="No progress output.")
@config_option
@db_option
def load(files: tuple[str, ...], leads: tuple[str, ...], replace: bool, quiet: bool, config: str | None, db: str) -> None:
    """Load event files (CSV, CSV.gz, Parquet, JSON Lines) into the warehouse."""
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
    )
    _print_load_report(report)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _print_load_report(report) -> None:
    for f in report.files:
        if f.status == "skipped":
            click.echo(f"skipped {f.path}: {f.note}")
            continue
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


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="funnelboard-demo", show_default=True, help="Where the demo data and warehouse go.")
@click.option("--leads", "n_leads", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(directory: str, n_leads: int, seed: int) -> None:
    """Generate the demo BPO pipeline, load it and show how to look at it."""
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
    click.echo("Look at it:")
    click.echo(f"  funnelboard status --db {db}")
    click.echo(f"  python -c \"import duckdb; print(duckdb.connect('{db}', read_only=True).sql('select stage, count(*) from raw_events group by 1 order by 2 desc'))\"")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
