"""`serve`: the dashboard over HTTP, on loopback unless credentials are set."""

from __future__ import annotations

from pathlib import Path

import click

from funnelboard.cli.common import db_option
from funnelboard.core.errors import UserError

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


@click.command()
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
        from funnelboard.warehouse.marts_dir import catalog

        db = str(catalog(Path(marts)))
    serve_app(Path(db), host, port, debug, credentials)


def serve_app(db: Path, host: str, port: int, debug: bool, credentials: dict) -> None:
    from funnelboard.dashboard.app import create_app, keep_warm

    app = create_app(db)
    if app.server.config["FUNNELBOARD_GATEWAY"].cache_rows:
        keep_warm(app)  # the default views computed before the first visitor asks
    if credentials:
        import dash_auth

        dash_auth.BasicAuth(app, credentials)
    click.echo(f"serving {db} on http://{'[' + host + ']' if ':' in host else host}:{port} (Ctrl+C to stop)")
    app.run(host=host, port=port, debug=debug)
