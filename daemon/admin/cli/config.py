"""`shopbell init`, `config check` and `token`: set up and read the config and the API token."""

from __future__ import annotations

import os
from pathlib import Path

import click

from daemon.admin.cli.base import CONTEXT, fail, load
from daemon.app.lifecycle import EXIT_BAD_CONFIG
from daemon.config import (
    ENV_CONFIG,
    ConfigError,
    default_config_path,
    effective_toml,
    load_config,
    reference_config_text,
)
from daemon.runtime.paths import PathError, ensure_api_token, ensure_private_dir, write_private_file


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented config file and generate the API token.

    The config goes to --config, else $SHOPBELL_CONFIG, else the user config folder. An
    existing config is never overwritten without --force; an existing token is kept.
    """

    target: Path = ctx.obj["config"] or Path(os.environ.get(ENV_CONFIG) or default_config_path())
    if target.exists() and not force:
        fail(f"{target} already exists; use `shopbell init --force` to overwrite it")
    try:
        ensure_private_dir(target.parent, purpose="config folder")
        write_private_file(target, reference_config_text(), overwrite=force)
    except PathError as exc:
        fail(str(exc))
    click.echo(f"wrote {target}")
    try:
        settings = load_config(target).settings
    except ConfigError as exc:
        fail(str(exc), EXIT_BAD_CONFIG)
    if settings.api.token.get_secret_value():
        click.echo("API token: set in the config; not generating one")
    else:
        try:
            ensure_api_token(settings.token_path)
        except PathError as exc:
            fail(str(exc))
        click.echo(f"API token: {settings.token_path} (`shopbell token` prints it)")
    click.echo(f"database: {settings.database_path} (created by `shopbell run`)")


@click.group(context_settings=CONTEXT)
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config and print the effective settings, secrets masked."""
    loaded = load(ctx)
    settings = loaded.settings
    click.echo(f"# config: {loaded.source_label} is valid")
    if loaded.env_keys:
        click.echo(f"# from the environment: {', '.join(loaded.env_keys)}")
    click.echo(f"# data folder: {settings.data_dir}")
    click.echo(f"# database: {settings.database_path}")
    click.echo(effective_toml(settings).rstrip())


@click.command()
@click.pass_context
def token(ctx: click.Context) -> None:
    """Print the API token (for scripts and curl), generating it if there is none yet."""
    settings = load(ctx).settings
    configured = settings.api.token.get_secret_value()
    if configured:
        click.echo(configured)
        return
    try:
        click.echo(ensure_api_token(settings.token_path))
    except PathError as exc:
        fail(str(exc))
