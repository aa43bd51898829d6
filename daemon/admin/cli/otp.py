"""`shopbell otp`: one-time codes by SMS, through the running daemon."""

from __future__ import annotations

from urllib.parse import quote

import click

from daemon.admin.cli.base import CONTEXT, daemon_client, fail
from daemon.admin.client import ClientError


@click.group(context_settings=CONTEXT)
def otp() -> None:
    """One-time codes by SMS, through the running daemon."""


_PURPOSE = click.option(
    "--purpose",
    type=click.Choice(["login", "signup", "verify-phone"]),
    default="login",
    show_default=True,
    help="What the code is for; a code for one purpose never verifies another.",
)


@otp.command("send")
@click.argument("phone")
@_PURPOSE
@click.pass_context
def otp_send(ctx: click.Context, phone: str, purpose: str) -> None:
    """Send PHONE a new one-time code by SMS (it replaces any code still pending)."""
    try:
        body = daemon_client(ctx).request(
            "POST", "/api/send-otp", json={"phone": phone, "purpose": purpose}
        )
    except ClientError as exc:
        fail(str(exc))
    click.echo(
        f"{purpose} code for {body['phone']}: message {body['message_id']} {body['status']}; "
        f"expires in {body['expires_in']}s; {body['sends_left']} more sends allowed now"
    )


@otp.command("status")
@click.argument("phone")
@_PURPOSE
@click.pass_context
def otp_status(ctx: click.Context, phone: str, purpose: str) -> None:
    """Whether a code is pending for PHONE, its expiry and tries left (never the code)."""
    try:
        body = daemon_client(ctx).request(
            "GET", f"/api/otp-status/{quote(phone, safe='+')}", params={"purpose": purpose}
        )
    except ClientError as exc:
        fail(str(exc))
    if body["pending"]:
        state = (
            f"a code is pending, expires in {body['expires_in']}s, "
            f"{body['attempts_left']} tries left, SMS {body['delivery']}"
        )
    else:
        state = "no code pending"
    wait = f", next in {body['resend_in']}s" if body["resend_in"] else ""
    click.echo(f"{body['phone']} ({purpose}): {state}; {body['sends_left']} sends left{wait}")
