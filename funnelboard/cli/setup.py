"""Getting started: `init` writes (or drafts) a funnel.toml, `check-config` checks one, `generate` a demo pipeline,
`demo` does it all and serves."""

from __future__ import annotations

from pathlib import Path

import click

from funnelboard.cli.common import plural
from funnelboard.cli.loading import print_load_report
from funnelboard.cli.serve import serve_app
from funnelboard.core.config import check_config, default_config_text, load_config
from funnelboard.core.draft_toml import ROLE_KINDS, Draft, top_values, write_draft
from funnelboard.core.errors import UserError
from funnelboard.core.progress import Progress


@click.command()
@click.argument("more", nargs=-1, metavar="[EXPORT]...")
@click.option("--from", "exports", multiple=True, metavar="EXPORT",
              help="Draft funnel.toml from your own export(s) instead: its labels, columns and guesses to check.")
@click.option("--source", default=None, help="What the exports are: canonical (default), wide, salesforce, hubspot, pipedrive.")
@click.option("--out", type=click.Path(dir_okay=False), default="funnel.toml", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(more: tuple[str, ...], exports: tuple[str, ...], source: str | None, out: str, force: bool) -> None:
    """Write the built-in funnel.toml for editing, or draft one from your export (--from FILE...)."""
    path = Path(out)
    files = [Path(f) for f in (*exports, *more)]
    if more and not exports:
        raise UserError(f"give the exports to draft from with --from: `funnelboard init --from {more[0]}`.")
    if source is not None and not files:
        raise UserError("--source says what the exports are: give them with --from FILE.")
    if path.exists() and not force:
        raise UserError(f"'{path}' already exists: pass --force to overwrite it.")
    if not path.parent.is_dir():
        raise UserError(f"cannot write '{path}': the folder '{path.parent}' does not exist.")
    if not files:
        path.write_text(default_config_text(), encoding="utf-8")
        click.echo(f"wrote {path}: edit the stages, label map and segments, then load with --config {path}")
        return
    from funnelboard.etl.draft import draft_config

    draft = draft_config(files, source or "canonical")
    write_draft(draft, path)
    print_draft(draft)
    load = " ".join(str(f) for f in files) + (f" --source {draft.source}" if draft.source != "canonical" else "")
    click.echo(f"wrote the draft {path}: check every line marked '# CHECK:', then")
    click.echo(f"  funnelboard check-config --config {path}")
    click.echo(f"  funnelboard load {load} --config {path}")


def print_draft(draft: Draft) -> None:
    """What a draft found: the stage labels in journey order with their counts, then the columns by kind."""
    click.echo(f"read {', '.join(draft.inputs)}" + (f" (--source {draft.source})" if draft.source != "canonical" else "")
               + (f", delimiter {draft.delimiter!r} ({draft.delimiter_note})" if draft.delimiter else ""))
    click.echo(f"stage labels, in the order journeys take them ({plural(len(draft.stages), 'stage')}, "
               f"{plural(len(draft.outcomes), 'outcome')}):")
    width = max(len(lab.label) for lab in draft.labels) + 2
    for lab in draft.labels:
        role = "outcome, a guess" if lab.outcome else ("the win" if lab.name == draft.stages[-1] else "stage")
        click.echo(f"  {repr(lab.label).ljust(width)} {plural(lab.rows, 'row'):>10} {plural(lab.leads, 'lead'):>11}  -> {lab.name} ({role})")
    click.echo("columns:")
    for c in draft.columns:
        what = ROLE_KINDS.get(c.kind) or {"segment": "segment candidate", "numeric": "numeric", "date": "date",
                                          "constant": "one value", "empty": "empty", "text": "text"}[c.kind]
        extra = top_values(c) if c.kind == "segment" else c.detail
        click.echo(f"  {c.header[:40]:<40} {what}" + (f": {extra}" if extra else ""))
    for note in (*draft.stage_notes, *draft.notes):
        click.echo(f"note: {note}")


@click.command("check-config")
@click.option("--config", type=click.Path(dir_okay=False), default=None, help="funnel.toml to check (default: ./funnel.toml).")
def check_config_command(config: str | None) -> None:
    """Check a funnel.toml and print every problem, one per line (exit code 2 when there is any)."""
    path = Path(config) if config else Path("funnel.toml")
    if config is None and not path.is_file():
        raise UserError("there is no funnel.toml in this folder: pass --config FILE, or write one with `funnelboard init`.")
    checked, problems = check_config(path)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise click.exceptions.Exit(2)
    rate = checked.review_rate
    click.echo(f"ok: {len(checked.stages)} stages ({', '.join(checked.stages)}), key rate {rate.from_stage} → {rate.to_stage} "
               f"(\"{rate.name}\"), {len(checked.segments)} segments")
    if unnamed := checked.unnamed_losses():
        click.echo(f"warning: the win rate weighs no loss: {unnamed}.")


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
    db = folder / "funnelboard.duckdb"
    fresh_demo_folder(folder, db)
    events = folder / "events.csv"
    config = load_config(None)
    summary = run_generate(out=events, fmt="csv", n_leads=n_leads, seed=seed, dirty=True)
    click.echo(f"generated {events}: {summary.rows:,} rows for {summary.leads:,} leads")
    planted = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in summary.dirty.items())
    click.echo(f"  with mess planted on purpose, as real CRM exports carry it: {planted}.")
    click.echo("  The quarantine and duplicate counts below are that mess, caught: nothing is wrong with your setup.")
    report = load_files(db, [events], config, progress=Progress())
    print_load_report(report)
    click.echo("")
    click.echo(f"Also try: funnelboard query key_rate --db {db}   (funnelboard query --list names every metric)")
    if not no_serve:
        serve_app(db, "127.0.0.1", port, False, {})


DEMO_MARK = ".funnelboard-demo"


def fresh_demo_folder(folder: Path, db: Path) -> None:
    """Make `folder` ready for a new demo: a rerun replaces the demo's own warehouse (never adds to
    it); a warehouse the demo did not make is left alone, with one sentence."""
    mark = folder / DEMO_MARK
    if db.exists() and not mark.exists() and not _only_demo_events(db, folder / "events.csv"):
        raise UserError(f"'{db}' is a warehouse the demo did not make: give the demo another --dir, or move that file.")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    mark.write_text("This folder holds `funnelboard demo` data; a rerun replaces it.\n", "utf-8")


def _only_demo_events(db: Path, events: Path) -> bool:
    """Whether every file ever loaded into db is the demo's events file (a demo folder made before the mark)."""
    import duckdb

    from funnelboard.warehouse.publish import open_read_only

    try:
        con = open_read_only(db)
    except UserError:
        return False
    try:
        files = {r[0] for r in con.execute("select distinct source_file from load_ledger").fetchall()}
    except duckdb.Error:  # a DuckDB file that is not a warehouse of ours
        return False
    finally:
        con.close()
    return files == {str(events.resolve())}
