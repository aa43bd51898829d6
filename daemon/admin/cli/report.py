"""`shopbell report`: build, store, print and optionally send a daily or weekly sales report."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import click

from daemon.admin.cli.base import fail, load
from daemon.runtime.paths import PathError
from daemon.services.backoffice.admin import run_report
from daemon.services.outbox.service import EnqueueError
from storage.errors import StorageError


@click.command()
@click.argument("kind", type=click.Choice(["daily", "weekly"]))
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="A day of the period (YYYY-MM-DD, the shop's time zone); default: yesterday "
    "(weekly: the last whole week).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stored JSON, not the text.")
@click.option(
    "--send",
    is_flag=True,
    help="Also queue it: e-mail to [reports] recipients, one SMS to [reports] owner_phone.",
)
@click.pass_context
def report(ctx: click.Context, kind: str, day: datetime | None, as_json: bool, send: bool) -> None:
    """Build a daily or weekly sales report, store it and print it.

    A week runs Monday to Sunday. Running it again for the same period replaces the stored
    report. Works on the database file, whether or not the daemon runs. With --send, the
    messages go into the outbox of that file: a running daemon sends them within a minute or
    so ([outbox] lease_seconds / 2), a stopped one when it starts; failures retry there.
    """
    settings = load(ctx).settings
    if send and not (settings.reports.recipients or settings.reports.owner_phone):
        fail("--send: nobody to send it to; set [reports] recipients or owner_phone")
    try:
        shown, stored, queued = asyncio.run(
            run_report(settings, kind, day.date() if day else None, send=send)  # type: ignore[arg-type]
        )
    except (StorageError, PathError) as exc:
        fail(str(exc))
    except EnqueueError as exc:
        fail(f"--send: {exc}")
    if as_json:
        click.echo(json.dumps(stored.content, indent=2, ensure_ascii=False))
    else:
        click.echo(shown, nl=False)
    if send:
        click.echo(f"queued {len(queued)} messages: {', '.join(map(str, queued))}", err=True)
