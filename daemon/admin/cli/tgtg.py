"""`shopbell tgtg`: Too Good To Go logins and watched favourites, through the running daemon."""

from __future__ import annotations

import time

import click

from daemon.admin.cli.base import CONTEXT, daemon_client, fail
from daemon.admin.client import ClientError, DaemonClient


@click.group(context_settings=CONTEXT)
def tgtg() -> None:
    """Too Good To Go logins and watched favourites, through the running daemon."""


def _subscriber_for(client: DaemonClient, email: str) -> int:
    after = 0
    while True:
        page = client.request("GET", "/api/v1/subscribers", params={"after": after, "limit": 500})
        for subscriber in page["subscribers"]:
            if (subscriber["email"] or "").lower() == email.lower():
                return int(subscriber["id"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    created = client.request("POST", "/api/v1/subscribers", json={"email": email})
    click.echo(f"new subscriber {created['subscriber']['id']} for {email}")
    return int(created["subscriber"]["id"])


@tgtg.command("login")
@click.argument("email")
@click.option(
    "--wait",
    type=click.IntRange(5, 600),
    default=120,
    show_default=True,
    help="Seconds to wait for the link in the e-mail to be clicked.",
)
@click.pass_context
def tgtg_login(ctx: click.Context, email: str, wait: int) -> None:
    """Log EMAIL's subscriber in to TGTG: asks for the PIN TGTG mails (or waits for the link)."""
    client = daemon_client(ctx)
    try:
        sid = _subscriber_for(client, email)
        client.request("POST", f"/api/v1/subscribers/{sid}/tgtg/login", json={"email": email})
        pin = click.prompt(
            "TGTG sent an e-mail: type its PIN (or press Enter once you clicked its link)",
            default="",
            show_default=False,
        ).strip()
        if pin:
            body = client.request("POST", f"/api/v1/subscribers/{sid}/tgtg/pin", json={"pin": pin})
        else:
            deadline = time.monotonic() + wait
            while True:
                body = client.request("GET", f"/api/v1/subscribers/{sid}/tgtg")
                if body["account"]["state"] != "pending" or time.monotonic() > deadline:
                    break
                time.sleep(2)
    except ClientError as exc:
        fail(str(exc))
    state = body["account"]["state"]
    if state != "active":
        fail(f"subscriber {sid}: TGTG login {state} ({body['account']['state_detail'] or '-'})")
    click.echo(f"subscriber {sid}: logged in to TGTG as {email}; its favourites are watched")


@tgtg.command("favorites")
@click.argument("subscriber", type=int, required=False)
@click.pass_context
def tgtg_favorites(ctx: click.Context, subscriber: int | None) -> None:
    """The watched items (of SUBSCRIBER, or everyone's) with their last counts."""
    params = {"subscriber_id": subscriber} if subscriber is not None else {}
    try:
        body = daemon_client(ctx).request("GET", "/api/v1/tgtg/favorites", params=params)
    except ClientError as exc:
        fail(str(exc))
    if not body["favorites"]:
        click.echo("no watched items yet")
        return
    for item in body["favorites"]:
        name = item["display_name"] or item["store_name"] or "-"
        click.echo(
            f"{item['subscriber_id']:>5}  {item['item_id']:<10} {item['items_available']:>3} bags"
            f"  {name[:40]:<40}  {(item['updated_at'] or '')[:19]}"
        )
