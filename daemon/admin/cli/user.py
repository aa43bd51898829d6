"""`shopbell user`: back-office accounts, created on the database file."""

from __future__ import annotations

import asyncio
import sys

import click

from daemon.admin.cli.base import CONTEXT, fail, load
from daemon.runtime.paths import PathError
from daemon.services.backoffice.accounts import AccountError
from daemon.services.backoffice.admin import add_user
from daemon.services.backoffice.roles import ROLES
from storage.errors import StorageError


@click.group(context_settings=CONTEXT)
def user() -> None:
    """Back-office accounts: customers and staff who log in."""


@user.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(ROLES), default="customer", show_default=True, help="Its role."
)
@click.option("--email", default=None, help="E-mail address (also works as the login).")
@click.option("--phone", default=None, help="Phone number.")
@click.option("--name", "full_name", default=None, help="Full name.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin instead of a prompt."
)
@click.pass_context
def user_add(
    ctx: click.Context,
    username: str,
    role: str,
    email: str | None,
    phone: str | None,
    full_name: str | None,
    password_stdin: bool,
) -> None:
    """Create an account on the database file (the first owner: --role owner).

    Works on a fresh install and whether or not the daemon runs; the password is asked
    for twice (or read from stdin), never taken from the command line.
    """
    settings = load(ctx).settings
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        account = asyncio.run(
            add_user(
                settings,
                username=username,
                password=password,
                role=role,  # type: ignore[arg-type]
                email=email,
                phone=phone,
                full_name=full_name,
            )
        )
    except AccountError as exc:
        fail(exc.message)
    except (StorageError, PathError) as exc:
        fail(str(exc))
    click.echo(f"account {account.id}: {account.username} ({account.role})")
