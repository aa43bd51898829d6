"""`shopbell service`: install shopbell as a systemd service and read its state."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from daemon.admin.cli.base import CONTEXT, fail


@click.group(context_settings=CONTEXT)
def service() -> None:
    """Run shopbell as a systemd service: install its unit, read its state."""


@service.command("install")
@click.option("--user", "user_unit", is_flag=True, help="A service of your own user; no root.")
@click.option("--dry-run", is_flag=True, help="Print the unit and the commands; change nothing.")
@click.option(
    "--unit-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write the unit here instead of systemd's folder (packaging, tests).",
)
@click.option("--run-as", default="shopbell", show_default=True, help="The system service's user.")
@click.pass_context
def service_install(
    ctx: click.Context, user_unit: bool, dry_run: bool, unit_dir: Path | None, run_as: str
) -> None:
    """Write the systemd unit for this installation, enable it and start it.

    The system service (root needed) runs as --run-as with --config, else
    /etc/shopbell/config.toml (written with data_dir /var/lib/shopbell when missing); --user
    writes ~/.config/systemd/user/shopbell.service. Re-run it after an upgrade.
    """
    from daemon.admin.service_unit import ServiceError, install

    try:
        install(
            user_unit=user_unit,
            config=ctx.obj["config"],
            unit_dir=unit_dir,
            dry_run=dry_run,
            say=click.echo,
            run_as=run_as,
        )
    except ServiceError as exc:
        fail(str(exc))


@service.command("status")
@click.option("--user", "user_unit", is_flag=True, help="The service of your own user.")
def service_status(user_unit: bool) -> None:
    """Show the service as systemd sees it: state, pid, start time, restarts, status line.

    Exits 0 when it runs, 3 when it does not (as `systemctl status` does).
    """
    from daemon.admin.service_unit import ServiceError, status

    try:
        found = status(user_unit=user_unit, say=click.echo)
    except ServiceError as exc:
        fail(str(exc))
    for line in found.lines(user_unit):
        click.echo(line)
    sys.exit(0 if found.running else 3)
