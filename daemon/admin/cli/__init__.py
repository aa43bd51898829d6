"""The `shopbell` command: run the daemon, set it up, and look after its database file."""

from __future__ import annotations

import platform
import sqlite3
from pathlib import Path

import click

from daemon import __version__
from daemon.admin.cli import (
    config,
    db,
    doctor,
    messages,
    modem,
    otp,
    pdu,
    products,
    report,
    run,
    service,
    tgtg,
    tui,
    user,
)
from daemon.admin.cli.base import CONTEXT
from daemon.config import ENV_CONFIG, default_config_path


class _ConfigOption(click.Option):
    """--config, whose help names the user's config file when help is shown, not at import:
    finding that file imports platformdirs, which a daemon started with --config never needs."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = f"Config file to use (else ${ENV_CONFIG}, else {default_config_path()})."
        return super().get_help_record(ctx)


@click.group(context_settings=CONTEXT)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    cls=_ConfigOption,
)
@click.version_option(__version__, "--version", prog_name="shopbell")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """shopbell: the shop's local messaging hub (SMS, push, OTP, TGTG alerts, back office)."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path


# Beside --version, which it extends: it is about the program, not about any one command family.
@cli.command()
def version() -> None:
    """Print shopbell's version and what it runs on."""
    click.echo(f"shopbell {__version__}")
    click.echo(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}")


# Each command or group lives in the module of its family (`shopbell db ...` in db.py); what
# they share is in base.py. Help lists them alphabetically, whatever the order here.
for _command in (
    run.run,
    config.init,
    config.config,
    config.token,
    db.db,
    messages.send,
    messages.messages,
    messages.push,
    otp.otp,
    tgtg.tgtg,
    modem.modem,
    pdu.pdu,
    user.user,
    products.products_group,
    report.report,
    doctor.doctor,
    tui.tui_command,
    service.service,
):
    cli.add_command(_command)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="shopbell")
