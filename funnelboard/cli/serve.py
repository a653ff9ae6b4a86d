"""`serve`: the dashboard over HTTP, on loopback unless credentials are set."""

from __future__ import annotations

from pathlib import Path

import click

from funnelboard.cli.common import db_option
from funnelboard.core.accounts import ENV, User, check_scopes, read_users, users_from_env
from funnelboard.core.errors import UserError
from funnelboard.warehouse.publish import NoWarehouse

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def read_accounts(users_file: str | None, env: dict) -> dict[str, User]:
    """The accounts to serve with: --users FILE (TOML of hashes, `funnelboard users add` writes it),
    else FUNNELBOARD_AUTH=NAME:HASH, else none. A plain-text password anywhere is refused."""
    if users_file:
        return read_users(Path(users_file))
    if env.get(ENV):
        return users_from_env(env[ENV])
    return {}


def check_bind(host: str, users: dict, insecure_no_auth: bool, debug: bool = False) -> None:
    """Refuse to serve beyond this machine without accounts (unless told so explicitly), and debug
    mode beyond it at all."""
    if debug and host not in LOOPBACK:
        raise UserError(f"refusing --debug on {host}: debug mode serves on this machine only (127.0.0.1, localhost or ::1).")
    if host not in LOOPBACK and not users and not insecure_no_auth:
        raise UserError(
            f"refusing to serve on {host} without accounts: give --users FILE (`funnelboard users add NAME --users FILE` "
            "writes one) or pass --insecure-no-auth to accept the risk."
        )


@click.command()
@db_option
@click.option("--marts", type=click.Path(file_okay=False), help="Serve a Spark build's Parquet marts (the --out DIR of `build --engine spark`) instead of --db.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but loopback needs credentials.")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Requests served at once by the production server (waitress); more wait in its queue.")
# Benchmarking only (docs/performance.md): `development` serves on Flask's development server as --debug does, without debug.
@click.option("--server", "server_kind", type=click.Choice(["production", "development"]), default="production", hidden=True)
@click.option("--debug", is_flag=True, help="Dash's development tools and reloader; loopback only, no Werkzeug console.")
@click.option("--users", "users_file", type=click.Path(dir_okay=False), envvar="FUNNELBOARD_USERS",
              help="Users file (password hashes, optional scopes) for sign-in; see `funnelboard users`.")
@click.option("--auth-file", "users_file", type=click.Path(dir_okay=False), hidden=True)
@click.option("--insecure-no-auth", is_flag=True, help="Serve beyond loopback with no password.")
@click.pass_context
def serve(ctx: click.Context, db: str, marts: str | None, host: str, port: int, threads: int, server_kind: str, debug: bool,
          users_file: str | None, insecure_no_auth: bool) -> None:
    """Serve the dashboard (http://127.0.0.1:8050 by default)."""
    import os

    if marts and ctx.get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE:
        raise UserError("give --db or --marts, not both: --db serves a DuckDB warehouse, --marts a Spark build's Parquet marts.")
    users = read_accounts(users_file, dict(os.environ))
    check_bind(host, users, insecure_no_auth, debug)
    if marts:
        from funnelboard.warehouse.marts_dir import catalog

        db = str(catalog(Path(marts)))
    serve_app(Path(db), host, port, debug, users, threads=threads, server_kind=server_kind)


def serve_app(db: Path, host: str, port: int, debug: bool, users: dict[str, User], *, threads: int = 8,
              server_kind: str = "production") -> None:
    from funnelboard.dashboard.wsgi import build_app

    app = build_app(db)
    if users:
        from funnelboard.dashboard.accounts import require_accounts

        try:
            check_scopes(users, app.server.config["FUNNELBOARD_GATEWAY"].config().segments)
        except NoWarehouse:
            pass  # nothing to check yet: a scope that cannot apply is refused per request (fails closed)
        require_accounts(app.server, users)
    click.echo(f"serving {db} on http://{'[' + host + ']' if ':' in host else host}:{port} (Ctrl+C to stop)")
    if debug or server_kind == "development":
        # debug: Dash's dev tools and reloader, never Werkzeug's debugger (its /console answers before sign-in)
        app.run(host=host, port=port, debug=debug, use_debugger=False)
    else:
        from funnelboard.cli.production import run_production

        run_production(app.server, host, port, threads)  # SIGTERM and Ctrl+C finish the requests in flight
        if (warmer := app.server.config.get("FUNNELBOARD_WARMER")) is not None:
            warmer.stop()
        app.server.config["FUNNELBOARD_GATEWAY"].shutdown()
        exit_without_finalizing()


def exit_without_finalizing() -> None:
    """Run the exit handlers (the spill directory's removal), flush, and end the process with status 0
    without the interpreter's finalization. In it, a thread still alive that re-enters Python is
    ended from inside DuckDB's C++ frames, which aborts the process (seen in about 1 stop in 6 even
    with every thread joined and DuckDB closed); after a drained stop there is nothing left to finalize."""
    import atexit
    import os
    import sys

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)
