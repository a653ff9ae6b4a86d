"""Getting started: `init` writes a funnel.toml, `generate` a demo pipeline, `demo` does it all and serves."""

from __future__ import annotations

from pathlib import Path

import click

from funnelboard.cli.loading import print_load_report
from funnelboard.cli.serve import serve_app
from funnelboard.core.config import default_config_text, load_config
from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress


@click.command()
@click.option("--out", type=click.Path(dir_okay=False), default="funnel.toml", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(out: str, force: bool) -> None:
    """Write the built-in funnel.toml for editing."""
    path = Path(out)
    if path.exists() and not force:
        raise UserError(f"'{path}' already exists: pass --force to overwrite it.")
    path.write_text(default_config_text(), encoding="utf-8")
    click.echo(f"wrote {path}: edit the stages, label map and segments, then load with --config {path}")


@click.command()
@click.option("--events", "n_events", type=click.IntRange(min=1), help="Exactly this many events.")
@click.option("--leads", "n_leads", type=click.IntRange(min=1), help="Exactly this many leads.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="File to write.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--dirty", is_flag=True, help="Add the mess real exports carry (duplicates, bad dates, unknown labels...).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "jsonl"]), default=None, help="Default: from the file name, else csv.")
def generate(n_events: int | None, n_leads: int | None, out: str, seed: int, dirty: bool, fmt: str | None) -> None:
    """Generate a realistic demo BPO pipeline (canonical events)."""
    from funnelboard.etl.generate import generate as run_generate

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


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="funnelboard-demo", show_default=True, help="Where the demo data and warehouse go.")
@click.option("--leads", "n_leads", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-serve", is_flag=True, help="Load only; do not start the dashboard.")
def demo(directory: str, n_leads: int, seed: int, port: int, no_serve: bool) -> None:
    """Generate the demo BPO pipeline, load it and serve the dashboard on http://127.0.0.1:8050."""
    from funnelboard.etl.generate import generate as run_generate
    from funnelboard.warehouse.pipeline import load_files

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    events = folder / "events.csv"
    db = folder / "funnelboard.duckdb"
    config = load_config(None)
    summary = run_generate(out=events, fmt="csv", n_leads=n_leads, seed=seed, dirty=True)
    click.echo(f"generated {events}: {summary.rows:,} rows for {summary.leads:,} leads (with realistic export dirt)")
    report = load_files(db, [events], config, progress=Progress())
    print_load_report(report)
    click.echo("")
    click.echo(f"Also try: funnelboard query sql_rate --db {db}   (funnelboard query --list names every metric)")
    if not no_serve:
        serve_app(db, "127.0.0.1", port, False, {})
