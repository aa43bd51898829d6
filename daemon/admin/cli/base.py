"""What every `shopbell` command shares: its context settings, loading the config, failing."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from daemon.admin.client import ClientError, DaemonClient
from daemon.app.lifecycle import EXIT_BAD_CONFIG
from daemon.config import ConfigError, LoadedConfig, load_config

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: MESSAGE` on stderr and exit with CODE."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load(ctx: click.Context) -> LoadedConfig:
    """The config the top-level --config names; a bad one exits with EXIT_BAD_CONFIG."""
    try:
        return load_config(ctx.obj["config"])
    except ConfigError as exc:
        fail(str(exc), EXIT_BAD_CONFIG)


def daemon_client(ctx: click.Context) -> DaemonClient:
    """A client of the running daemon that the config points at."""
    try:
        return DaemonClient(load(ctx).settings)
    except ClientError as exc:
        fail(str(exc))
