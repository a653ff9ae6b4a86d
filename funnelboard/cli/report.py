"""`report`: the weekly review as one self-contained HTML file (docs/report.md)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import click

from funnelboard.cli.common import check_delivery, db_option, require_warehouse
from funnelboard.cli.query import _filters
from funnelboard.core import saved_views
from funnelboard.core.errors import UserError


@click.command()
@db_option
@click.option("--week", default=None, metavar="2026-W47", help="ISO week, or a date in it (default: the last complete week of the data).")
@click.option("--filter", "filters", multiple=True, help="COLUMN=VALUE on lead attributes; repeatable.")
@click.option("--view", "view", default=None, metavar="NAME", help="A saved view of the dashboard: its filters (the week is --week's).")
@click.option("--user", default="", metavar="NAME", help="Whose saved view (--view); without it, the shared list.")
@click.option("--by", default=None, metavar="COLUMN",
              help="The segment column of the rates by segment and the mix split (default: the saved view's, else channel, else the first).")
@click.option("--out", default=None, metavar="FILE", help="Where to write (default: review-<week>.html here).")
@click.option("--base-url", default="http://127.0.0.1:8050", show_default=True, help="The dashboard the pack's links open.")
@click.option("--email", "emails", multiple=True, metavar="ADDRESS", help="Send it to this address (repeatable), through --smtp.")
@click.option("--smtp", default=None, metavar="HOST[:PORT]", help="The SMTP server for --email (login and STARTTLS from the environment).")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="html", show_default=True,
              help="pdf: also print the pack to PDF through Debian's chromium (beside the HTML).")
@click.option("--webhook", is_flag=True, help="Post the headline to the chat webhook at $FUNNELBOARD_WEBHOOK_URL (Slack, Teams).")
def report(db: str, week: str | None, filters: tuple[str, ...], view: str | None, user: str, by: str | None, out: str | None, base_url: str,
           emails: tuple[str, ...], smtp: str | None, webhook: bool, fmt: str) -> None:
    """Write the weekly review of one week as one HTML file that opens with no network, and send it."""
    from funnelboard.core.deliver import Review, post_webhook, send_email
    from funnelboard.dashboard.app import create_app
    from funnelboard.dashboard.report import chromium_binary, parse_week, print_pdf, render

    check_delivery(emails, smtp)
    if fmt == "pdf":
        chromium_binary()  # said before the work when it is missing
    path = require_warehouse(Path(db))
    pairs = _filters(filters)
    if view is not None:
        found = dict(saved_views.views_of(saved_views.views_path(path), user))
        if view not in found:
            whose = f"user '{user}'" if user else "the shared list"
            raise UserError(f"no saved view '{view}' in {whose}; `funnelboard views list --db {db}` names them.")
        pairs = tuple(parse_qsl(urlsplit(found[view]).query)) + pairs
        by = by or dict(pairs).get("segment")
        # the week decides the dates, --by the split
        pairs = tuple((k, v) for k, v in pairs if k not in ("from", "to", "as_of", "period", "segment", "segment2"))
    pack = render(create_app(path), parse_week(week) if week else None, pairs, base_url, by)
    year, number, _ = pack.monday.isocalendar()
    target = Path(out) if out else Path(f"review-{year}-W{number:02d}.html")
    target.write_text(pack.html, "utf-8")
    click.echo(f"wrote {target}: the weekly review of {year}-W{number:02d} ({len(pack.html) / 1e6:.1f} MB, opens with no network)")
    if fmt == "pdf":
        pdf = target.with_suffix(".pdf")
        print_pdf(target, pdf)
        click.echo(f"printed {pdf}")
    review = Review(pack.title, pack.lines, pack.html, f"review-{year}-W{number:02d}.html", pack.link)
    if emails:
        send_email(review, emails, smtp)
        click.echo(f"sent it to {', '.join(emails)} through {smtp}")
    if webhook:
        post_webhook(review, None)
        click.echo("posted its headline to the chat webhook")
