"""`shopbell send`, `messages` and `push`: SMS and push notifications through the running daemon."""

from __future__ import annotations

import click

from daemon.admin.cli.base import daemon_client, fail
from daemon.admin.client import ClientError


@click.command()
@click.option("--to", "to", required=True, help="Phone number, e.g. +33612345678.")
@click.option("--key", default=None, help="Idempotency key: the same key never sends twice.")
@click.argument("text")
@click.pass_context
def send(ctx: click.Context, to: str, key: str | None, text: str) -> None:
    """Send TEXT by SMS through the running daemon (it is queued, then sent)."""
    client = daemon_client(ctx)
    try:
        body = client.request(
            "POST", "/api/v1/messages", json={"to": to, "body": text, "idempotency_key": key}
        )
    except ClientError as exc:
        fail(str(exc))
    message = body["message"]
    state = "queued" if body.get("created") else "already queued earlier with this key"
    click.echo(
        f"message {message['id']} to {message['recipient']}: {state} "
        f"({message['segments']} segment(s), {message['encoding']})"
    )


@click.command()
@click.option(
    "--status",
    type=click.Choice(
        ["queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled"]
    ),
    default=None,
    help="Only messages in this state.",
)
@click.option("--to", "recipient", default=None, help="Only messages to this number.")
@click.option("--kind", default=None, help="Only this kind (otp, alert, manual, report, reply).")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.pass_context
def messages(
    ctx: click.Context, status: str | None, recipient: str | None, kind: str | None, limit: int
) -> None:
    """List the message log, newest first, through the running daemon."""
    params = {"status": status, "recipient": recipient, "kind": kind, "limit": limit}
    try:
        body = daemon_client(ctx).request(
            "GET", "/api/v1/messages", params={k: v for k, v in params.items() if v is not None}
        )
    except ClientError as exc:
        fail(str(exc))
    rows = body["messages"]
    if not rows:
        click.echo("no messages")
        return
    for row in rows:
        error = f"  ({row['last_error']})" if row["last_error"] and row["status"] != "sent" else ""
        click.echo(
            f"{row['id']:>6}  {row['created_at'][:19]}  {row['status']:<11} {row['kind']:<7} "
            f"{row['recipient']:<16} {row['provider'] or '-':<9} {row['body'][:40]!r}{error}"
        )


@click.command()
@click.option(
    "--token",
    "tokens",
    multiple=True,
    help="A device's FCM registration token (repeat for several devices).",
)
@click.option("--topic", default=None, help="An FCM topic instead of tokens, e.g. news.")
@click.option("--title", default="", help="The notification's title.")
@click.option("--body", required=True, help="The notification's text.")
@click.option(
    "--data",
    "data",
    multiple=True,
    metavar="KEY=VALUE",
    help="A data pair for the app (repeatable).",
)
@click.pass_context
def push(
    ctx: click.Context,
    tokens: tuple[str, ...],
    topic: str | None,
    title: str,
    body: str,
    data: tuple[str, ...],
) -> None:
    """Send a push notification to device tokens or a topic, through the running daemon."""
    if bool(tokens) == bool(topic):
        fail("give --token (one or more) or --topic, not both")
    payload: dict[str, str] = {}
    for pair in data:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--data {pair!r} is not KEY=VALUE")
        payload[key] = value
    request: dict[str, object] = {"title": title or None, "body": body}
    if tokens:
        request["tokens"] = list(tokens)
    else:
        request["topic"] = topic
    if payload:
        request["data"] = payload
    try:
        answer = daemon_client(ctx).request("POST", "/api/v1/notifications", json=request)
    except ClientError as exc:
        fail(str(exc))
    notification = answer["notification"]
    target = f"topic {notification['topic']}" if notification["topic"] else "tokens"
    queued = notification["by_status"].get("queued", 0)
    skipped = notification["by_status"].get("cancelled", 0)
    line = f"notification {notification['id']} to {target}: {queued} message(s) queued"
    if skipped:
        line += f", {skipped} skipped (token invalid; the app must register it again)"
    click.echo(line)
