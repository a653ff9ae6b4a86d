"""`funnelboard pull CRM`: fresh data from Salesforce, HubSpot or Pipedrive without hand exports."""

from __future__ import annotations

from pathlib import Path

import click

from funnelboard.cli.common import db_option, make_settings, warehouse_config_option
from funnelboard.cli.loading import print_load_report, warehouse_config
from funnelboard.core.progress import Progress

# A pull a daily quota stopped early: loaded what it completed; run again later (sysexits' EX_TEMPFAIL).
EXIT_STOPPED = 75


@click.command()
@click.argument("crm", type=click.Choice(["salesforce", "hubspot", "pipedrive"]))
@click.option("--since", help="Fetch changes from this date or instant (ISO-8601, UTC) instead of the stored marks.")
@click.option("--out", type=click.Path(file_okay=False), help="Where the fetched files go (default: pulls/CRM/<instant>/ beside the warehouse).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@warehouse_config_option
@db_option
def pull(crm: str, since: str | None, out: str | None, quiet: bool, config: str | None, db: str) -> None:
    """Fetch what changed in a CRM since the last pull and load it (credentials from the environment: docs/sources.md)."""
    from funnelboard.warehouse.pull import pull as run_pull

    settings = make_settings(db, config, quiet)
    chosen = warehouse_config(settings, config)
    progress = Progress(enabled=not quiet)
    progress.note(f"config: {chosen.source}")
    report = run_pull(settings.db, crm, chosen, since=since, out=Path(out) if out else None, progress=progress)
    fetched = ", ".join(f"{n:,} {name}" for name, n in report.pulled.counts.items()) or "nothing"
    click.echo(f"pulled from {crm}: {fetched}; files in {report.out}")
    if report.load is None:
        click.echo(f"warehouse {settings.db}: nothing changed in {crm} since the last pull, unchanged")
    else:
        print_load_report(report.load)
    if report.pulled.removed:
        gone = report.load.journeys_removed if report.load else 0
        click.echo(f"removed {gone:,} journey(s) from the warehouse: {len(report.pulled.removed):,} record(s) deleted or merged "
                   f"away in {crm} since the marks")
    for obj, mark in sorted(report.pulled.marks.items()):
        click.echo(f"  mark {obj}: {mark}")
    if report.pulled.stopped:
        click.echo(f"stopped early: {report.pulled.stopped} Run `funnelboard pull {crm}` again later to continue from the marks above.", err=True)
        raise SystemExit(EXIT_STOPPED)
