"""`shopbell run`: the daemon itself, in the foreground."""

from __future__ import annotations

import sys

import click

from daemon.app.process import run_daemon
from daemon.config import Overrides


@click.command()
@click.option("--host", default=None, help="Address to listen on (overrides [api] host).")
@click.option(
    "--port",
    type=int,
    default=None,
    help="Port to listen on (overrides [api] port).",
)
@click.pass_context
def run(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the daemon until SIGINT or SIGTERM (SIGHUP reloads the config).

    Works on a fresh machine: whatever is missing (data folder, database, API token) is
    created with defaults.
    """
    sys.exit(run_daemon(ctx.obj["config"], Overrides(host=host, port=port)))
