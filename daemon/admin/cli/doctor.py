"""`shopbell doctor`: check the whole installation and say what to fix."""

from __future__ import annotations

import asyncio
import sys

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, for machines.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check config, database, daemon, providers, modem, TGTG accounts, clock, disk, backups.

    One line per check: OK, WARN or FAIL, what was found and what to do. Providers get a live
    probe that sends nothing; nothing is changed. Exits 1 when anything FAILs.
    """
    from daemon.admin import doctor as checks  # its probes' imports are needed by no other command

    report = asyncio.run(checks.diagnose(ctx.obj["config"]))
    click.echo(checks.as_json(report) if as_json else checks.as_text(report))
    sys.exit(0 if report.ok else 1)
