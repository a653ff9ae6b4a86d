"""What every command shares: the settings built from flags, the --db/--config options, and the
group that turns a UserError into one line and exit code 2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from funnelboard.core.config import FunnelConfig, load_config
from funnelboard.core.errors import UserError

DEFAULT_DB = "funnelboard.duckdb"


@dataclass(frozen=True)
class Settings:
    """What every command needs, built once from flags (and FUNNELBOARD_DB) at the entry point."""

    db: Path
    config: FunnelConfig
    quiet: bool = False


def make_settings(db: str, config: str | None, quiet: bool = False) -> Settings:
    path = Path(config) if config else (Path("funnel.toml") if Path("funnel.toml").is_file() else None)
    return Settings(db=Path(db), config=load_config(path), quiet=quiet)


class Group(click.Group):
    """Turns UserError into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            from funnelboard.warehouse.publish import NoWarehouse, no_warehouse_message

            message = no_warehouse_message(exc.path) if isinstance(exc, NoWarehouse) else str(exc)
            click.echo(f"error: {message}", err=True)
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


# load, pull and build into an existing warehouse keep its own config when none is named (cli/loading.py).
warehouse_config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="funnel.toml to use (default: ./funnel.toml if present, else the config the warehouse was loaded with, else the built-in demo config).",
)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def check_delivery(emails: tuple[str, ...], smtp: str | None) -> None:
    """--email needs --smtp, and --smtp a HOST[:PORT]: said before any work is done."""
    from funnelboard.core.deliver import smtp_address

    if emails and not smtp:
        raise UserError("--email needs --smtp HOST[:PORT], the server to send through.")
    if smtp:
        smtp_address(smtp)


def require_warehouse(db: Path) -> Path:
    """The warehouse file, or the one-sentence error that names the warehouses nearby."""
    from funnelboard.warehouse.publish import no_warehouse_message

    if not db.is_file():
        raise UserError(no_warehouse_message(db))
    return db
