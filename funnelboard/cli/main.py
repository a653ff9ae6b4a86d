"""The `funnelboard` command line: thin wrappers that build settings and call the packages."""

from __future__ import annotations

import sys

import click

from funnelboard.cli.alerts import alerts
from funnelboard.cli.common import Group
from funnelboard.cli.loading import build, load, status
from funnelboard.cli.notes import notes
from funnelboard.cli.pull import pull
from funnelboard.cli.query import models, query, sql_command
from funnelboard.cli.report import report
from funnelboard.cli.serve import serve
from funnelboard.cli.setup import check_config_command, demo, generate, init
from funnelboard.cli.users import users
from funnelboard.cli.views import views


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="funnelboard")
def main() -> None:
    """funnelboard: sales-funnel analytics for BPO providers."""


for command in (init, check_config_command, generate, load, pull, status, query, report, alerts, notes, build, sql_command, models, serve, users, views, demo):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
