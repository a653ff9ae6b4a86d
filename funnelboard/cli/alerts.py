"""`alerts check`: evaluate funnel.toml's [[alerts]] on the warehouse (docs/report.md, Alerts)."""

from __future__ import annotations

import html
import json
import sys

import click

from funnelboard.cli.common import check_delivery, config_option, db_option, make_settings, require_warehouse
from funnelboard.core.errors import UserError


@click.group()
def alerts() -> None:
    """Alerts on the weekly numbers: check them (for cron)."""


@alerts.command("check")
@db_option
@config_option
@click.option("--email", "emails", multiple=True, metavar="ADDRESS", help="Send the alerts that started firing to this address (repeatable).")
@click.option("--smtp", default=None, metavar="HOST[:PORT]", help="The SMTP server for --email (login and STARTTLS from the environment).")
@click.option("--webhook", is_flag=True, help="Post the alerts that started firing to the chat webhook at $FUNNELBOARD_WEBHOOK_URL.")
@click.option("--base-url", default="http://127.0.0.1:8050", show_default=True, help="The dashboard the messages link to.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def check(db: str, config: str | None, emails: tuple[str, ...], smtp: str | None, webhook: bool, base_url: str, fmt: str) -> None:
    """Print every alert's figure and whether it fires; exit 1 when any fires. An alert that starts
    firing is sent once (--email, --webhook): the state is kept beside the warehouse."""
    from funnelboard.core.deliver import Review, post_webhook, send_email
    from funnelboard.dashboard.figures.common import kpi_label, kpi_names
    from funnelboard.warehouse.alerts import evaluate, state_path, with_news
    from funnelboard.warehouse.gateway import Gateway

    check_delivery(emails, smtp)
    settings = make_settings(db, config)
    if not settings.config.alerts:
        raise UserError("the config has no [[alerts]]; add one, e.g. name = \"SQL rate low\", metric = \"key_rate\", below = 0.15, weeks = 2.")
    g = Gateway(require_warehouse(settings.db))
    names = kpi_names(g.config())
    labels = {m: kpi_label(m, names) for m in ("key_rate", "new_leads", "exits", "lost", "win_rate", "median_days_to_target",
                                              *(f"reached_{s}" for s in g.config().stages))}
    labels.update({"stalled": "leads stalled", "newly_stalled": "leads newly stalled", "sla_breaches": "leads past a stage SLA"})
    readings = with_news(evaluate(g, settings.config.alerts), state_path(settings.db))
    if fmt == "json":
        click.echo(json.dumps([{"name": r.alert.name, "metric": r.alert.metric, "severity": r.alert.severity,
                                "condition": r.alert.condition(), "weeks": r.alert.weeks, "week": r.week.isoformat(),
                                "values": list(r.values), "fired": r.fired, "new": r.new,
                                "filters": dict(r.alert.filters)} for r in readings], indent=1))
    else:
        for r in readings:
            click.echo(("FIRES  " if r.fired else "ok     ") + ("(new) " if r.new else "") + r.sentence(labels))
    news = [r for r in readings if r.new]
    if news and (emails or webhook):
        subject = f"funnelboard: {len(news)} alert{'s' if len(news) > 1 else ''} started firing"
        lines = tuple(r.sentence(labels) for r in news)
        message = Review(subject, lines, "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>",
                         "alerts.html", base_url.rstrip("/") + "/")
        if emails:
            send_email(message, emails, smtp)
            click.echo(f"sent {len(news)} new alert(s) to {', '.join(emails)}", err=True)
        if webhook:
            post_webhook(message, None)
            click.echo(f"posted {len(news)} new alert(s) to the chat webhook", err=True)
    if any(r.fired for r in readings):
        sys.exit(1)

