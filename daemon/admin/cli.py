"""The `shopbell` command: run the daemon, set it up, and look after its database file."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import platform
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TextIO
from urllib.parse import quote

import click

from daemon import __version__
from daemon.admin.client import ClientError, DaemonClient
from daemon.app.lifecycle import EXIT_BAD_CONFIG
from daemon.app.process import run_daemon
from daemon.config import (
    ENV_CONFIG,
    ConfigError,
    LoadedConfig,
    Overrides,
    default_config_path,
    effective_toml,
    load_config,
    reference_config_text,
)
from daemon.runtime.lock import AlreadyRunningError, InstanceLock, LockError
from daemon.runtime.paths import PathError, ensure_api_token, ensure_private_dir, write_private_file
from daemon.services.backoffice import catalog_csv
from daemon.services.backoffice.accounts import AccountError
from daemon.services.backoffice.admin import add_user, export_products, import_products, run_report
from daemon.services.backoffice.roles import ROLES
from daemon.services.outbox.service import EnqueueError
from providers.modem.simulator_profiles import PROFILES as SIMULATOR_PROFILES
from storage.admin import backup_file, check_file, migrate_file
from storage.errors import StorageError
from storage.restore import restore_file

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(ctx: click.Context) -> LoadedConfig:
    try:
        return load_config(ctx.obj["config"])
    except ConfigError as exc:
        _fail(str(exc), EXIT_BAD_CONFIG)


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


@cli.command()
@click.option("--host", default=None, help="Address to listen on (overrides [api] host).")
@click.option(
    "--port",
    type=int,
    default=None,
    help="Port to listen on (overrides [api] port).",
)
@click.pass_context
def run(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the daemon until SIGINT or SIGTERM (SIGHUP reloads the config).

    Works on a fresh machine: whatever is missing (data folder, database, API token) is
    created with defaults.
    """
    sys.exit(run_daemon(ctx.obj["config"], Overrides(host=host, port=port)))


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented config file and generate the API token.

    The config goes to --config, else $SHOPBELL_CONFIG, else the user config folder. An
    existing config is never overwritten without --force; an existing token is kept.
    """

    target: Path = ctx.obj["config"] or Path(os.environ.get(ENV_CONFIG) or default_config_path())
    if target.exists() and not force:
        _fail(f"{target} already exists; use `shopbell init --force` to overwrite it")
    try:
        ensure_private_dir(target.parent, purpose="config folder")
        write_private_file(target, reference_config_text(), overwrite=force)
    except PathError as exc:
        _fail(str(exc))
    click.echo(f"wrote {target}")
    try:
        settings = load_config(target).settings
    except ConfigError as exc:
        _fail(str(exc), EXIT_BAD_CONFIG)
    if settings.api.token.get_secret_value():
        click.echo("API token: set in the config; not generating one")
    else:
        try:
            ensure_api_token(settings.token_path)
        except PathError as exc:
            _fail(str(exc))
        click.echo(f"API token: {settings.token_path} (`shopbell token` prints it)")
    click.echo(f"database: {settings.database_path} (created by `shopbell run`)")


@cli.group(context_settings=CONTEXT)
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config and print the effective settings, secrets masked."""
    loaded = _load(ctx)
    settings = loaded.settings
    click.echo(f"# config: {loaded.source_label} is valid")
    if loaded.env_keys:
        click.echo(f"# from the environment: {', '.join(loaded.env_keys)}")
    click.echo(f"# data folder: {settings.data_dir}")
    click.echo(f"# database: {settings.database_path}")
    click.echo(effective_toml(settings).rstrip())


@cli.group(context_settings=CONTEXT)
def db() -> None:
    """Work on the database file (safe whether or not the daemon runs)."""


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Apply any pending schema migrations."""
    path = _load(ctx).settings.database_path
    try:
        ensure_private_dir(path.parent, purpose="database folder")
        applied = migrate_file(path)
    except (StorageError, PathError) as exc:
        _fail(str(exc))
    if applied:
        click.echo(f"{path}: applied {len(applied)} migrations: {', '.join(applied)}")
    else:
        click.echo(f"{path}: schema up to date")


@db.command("backup")
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace DEST if it exists.")
@click.pass_context
def db_backup(ctx: click.Context, dest: Path, overwrite: bool) -> None:
    """Copy the database to DEST with SQLite's online backup (safe while the daemon runs)."""
    path = _load(ctx).settings.database_path
    try:
        result = backup_file(path, dest, overwrite=overwrite)
    except StorageError as exc:
        _fail(str(exc))
    click.echo(f"backed up {path} to {result.path} ({result.size_bytes} bytes)")


@db.command("restore")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def db_restore(ctx: click.Context, source: Path) -> None:
    """Replace the database with the backup SOURCE, after checking it (daemon stopped).

    SOURCE must be a sound SQLite file of this or an older shopbell. The current database
    is kept beside it as <name>.before-restore-<time>; a bad SOURCE changes nothing.
    """
    path = _load(ctx).settings.database_path
    try:
        ensure_private_dir(path.parent, purpose="database folder")
        # Held throughout, so a daemon cannot start on the file while it is being swapped.
        with InstanceLock(path):
            result = restore_file(source, path, now=datetime.now(UTC))
    except AlreadyRunningError as exc:
        _fail(f"{exc}. A restore needs the daemon stopped; nothing was changed.")
    except (LockError, PathError, StorageError) as exc:
        _fail(str(exc))
    click.echo(f"checked {result.source}: integrity ok")
    if result.kept is not None:
        click.echo(f"kept the previous database as {result.kept}")
    click.echo(f"restored {result.database} from {result.source} ({result.size_bytes} bytes)")
    if result.pending:
        click.echo(f"{len(result.pending)} migrations will be applied at the next start")


@db.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """Check the database's integrity and its migrations; exit 1 if anything is wrong."""
    path = _load(ctx).settings.database_path
    try:
        result = check_file(path)
    except StorageError as exc:
        _fail(str(exc))
    status = result.migrations
    integrity_ok = result.integrity == ("ok",)
    click.echo(f"database: {path}")
    click.echo(f"integrity: {'ok' if integrity_ok else 'PROBLEMS'}")
    for line in () if integrity_ok else result.integrity:
        click.echo(f"  {line}")
    if result.foreign_key_violations:
        click.echo(f"foreign keys: {len(result.foreign_key_violations)} rows point nowhere")
        for line in result.foreign_key_violations:
            click.echo(f"  {line}")
    click.echo(f"migrations: {len(status.applied)} applied, {len(status.pending)} pending")
    for name in status.pending:
        click.echo(f"  pending: {name} (run `shopbell db migrate`)")
    for name in status.unknown:
        click.echo(f"  unknown: {name} (written by a newer shopbell)")
    if not result.ok or status.unknown:
        sys.exit(1)


@cli.command()
@click.pass_context
def token(ctx: click.Context) -> None:
    """Print the API token (for scripts and curl), generating it if there is none yet."""
    settings = _load(ctx).settings
    configured = settings.api.token.get_secret_value()
    if configured:
        click.echo(configured)
        return
    try:
        click.echo(ensure_api_token(settings.token_path))
    except PathError as exc:
        _fail(str(exc))


@cli.command()
@click.option("--to", "to", required=True, help="Phone number, e.g. +33612345678.")
@click.option("--key", default=None, help="Idempotency key: the same key never sends twice.")
@click.argument("text")
@click.pass_context
def send(ctx: click.Context, to: str, key: str | None, text: str) -> None:
    """Send TEXT by SMS through the running daemon (it is queued, then sent)."""
    client = _client(ctx)
    try:
        body = client.request(
            "POST", "/api/v1/messages", json={"to": to, "body": text, "idempotency_key": key}
        )
    except ClientError as exc:
        _fail(str(exc))
    message = body["message"]
    state = "queued" if body.get("created") else "already queued earlier with this key"
    click.echo(
        f"message {message['id']} to {message['recipient']}: {state} "
        f"({message['segments']} segment(s), {message['encoding']})"
    )


@cli.command()
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
        body = _client(ctx).request(
            "GET", "/api/v1/messages", params={k: v for k, v in params.items() if v is not None}
        )
    except ClientError as exc:
        _fail(str(exc))
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


@cli.group(context_settings=CONTEXT)
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
        body = _client(ctx).request(
            "POST", "/api/send-otp", json={"phone": phone, "purpose": purpose}
        )
    except ClientError as exc:
        _fail(str(exc))
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
        body = _client(ctx).request(
            "GET", f"/api/otp-status/{quote(phone, safe='+')}", params={"purpose": purpose}
        )
    except ClientError as exc:
        _fail(str(exc))
    if body["pending"]:
        state = (
            f"a code is pending, expires in {body['expires_in']}s, "
            f"{body['attempts_left']} tries left, SMS {body['delivery']}"
        )
    else:
        state = "no code pending"
    wait = f", next in {body['resend_in']}s" if body["resend_in"] else ""
    click.echo(f"{body['phone']} ({purpose}): {state}; {body['sends_left']} sends left{wait}")


@cli.command()
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
        _fail("give --token (one or more) or --topic, not both")
    payload: dict[str, str] = {}
    for pair in data:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--data {pair!r} is not KEY=VALUE")
        payload[key] = value
    request: dict[str, object] = {"title": title or None, "body": body}
    if tokens:
        request["tokens"] = list(tokens)
    else:
        request["topic"] = topic
    if payload:
        request["data"] = payload
    try:
        answer = _client(ctx).request("POST", "/api/v1/notifications", json=request)
    except ClientError as exc:
        _fail(str(exc))
    notification = answer["notification"]
    target = f"topic {notification['topic']}" if notification["topic"] else "tokens"
    queued = notification["by_status"].get("queued", 0)
    skipped = notification["by_status"].get("cancelled", 0)
    line = f"notification {notification['id']} to {target}: {queued} message(s) queued"
    if skipped:
        line += f", {skipped} skipped (token invalid; the app must register it again)"
    click.echo(line)


def _client(ctx: click.Context) -> DaemonClient:
    try:
        return DaemonClient(_load(ctx).settings)
    except ClientError as exc:
        _fail(str(exc))


@cli.group(context_settings=CONTEXT)
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
    import time

    client = _client(ctx)
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
        _fail(str(exc))
    state = body["account"]["state"]
    if state != "active":
        _fail(f"subscriber {sid}: TGTG login {state} ({body['account']['state_detail'] or '-'})")
    click.echo(f"subscriber {sid}: logged in to TGTG as {email}; its favourites are watched")


@tgtg.command("favorites")
@click.argument("subscriber", type=int, required=False)
@click.pass_context
def tgtg_favorites(ctx: click.Context, subscriber: int | None) -> None:
    """The watched items (of SUBSCRIBER, or everyone's) with their last counts."""
    params = {"subscriber_id": subscriber} if subscriber is not None else {}
    try:
        body = _client(ctx).request("GET", "/api/v1/tgtg/favorites", params=params)
    except ClientError as exc:
        _fail(str(exc))
    if not body["favorites"]:
        click.echo("no watched items yet")
        return
    for item in body["favorites"]:
        name = item["display_name"] or item["store_name"] or "-"
        click.echo(
            f"{item['subscriber_id']:>5}  {item['item_id']:<10} {item['items_available']:>3} bags"
            f"  {name[:40]:<40}  {(item['updated_at'] or '')[:19]}"
        )


@cli.group(context_settings=CONTEXT)
def modem() -> None:
    """Work with a GSM/LTE modem: a simulator to try shopbell without one, and a probe."""


@modem.command("simulate")
@click.option(
    "--link",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also make this path a symlink to the simulator (stable across replugs).",
)
@click.option(
    "--profile",
    type=click.Choice(sorted(SIMULATOR_PROFILES)),
    default="generic",
    show_default=True,
    help="Which modem's quirks to imitate.",
)
@click.option(
    "--latency",
    type=click.FloatRange(0, 60),
    default=0.5,
    show_default=True,
    help="Seconds each send takes.",
)
@click.option("--pin", default=None, help="Lock the simulated SIM with this PIN.")
@click.option(
    "--reports",
    type=click.Choice(["delivered", "failed", "none"]),
    default="delivered",
    show_default=True,
    help="Delivery reports the simulated network sends back.",
)
def modem_simulate(
    link: Path | None, profile: str, latency: float, pin: str | None, reports: str
) -> None:
    """Run a simulated modem on a pseudo-terminal until Ctrl+C.

    It prints the device path: set [modem] port to it and run `shopbell run` in another
    terminal to send and receive SMS with no hardware.
    """
    # The modem's modules load only for the commands that use them: `shopbell run` without a
    # modem should not carry them.
    from providers.modem.simulator import ModemSimulator, run_simulator

    sim = ModemSimulator(
        link=link,
        profile=profile,
        pin=pin,
        send_latency=latency,
        status_reports=reports,  # type: ignore[arg-type]
    )

    def show(path: str) -> None:
        click.echo(f"simulated {profile} modem at {path}")
        click.echo(f'set [modem] port = "{path}" in the config (Ctrl+C stops the simulator)')

    async def serve() -> None:
        # Ctrl+C or SIGTERM: stop cleanly, so the pty closes and the --link symlink goes.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run_simulator(sim, print_path=show)

    asyncio.run(serve())


@modem.command("probe")
@click.option("--port", default=None, help="Serial port (default: [modem] port).")
@click.option(
    "--wait",
    type=click.FloatRange(1, 300),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the modem to register on the network.",
)
@click.pass_context
def modem_probe(ctx: click.Context, port: str | None, wait: float) -> None:
    """Open the modem and report identity, SIM, network, signal and SMS centre.

    It needs the port to itself: stop the daemon first (or read /api/health instead).
    """
    conf = _load(ctx).settings.modem
    device = port or conf.port
    if not device:
        _fail("no modem port: give --port or set [modem] port")
    from providers.modem.driver import PARKED_STATES, ModemDriver, ModemInfo, ModemState

    driver = ModemDriver(
        port=device,
        baudrate=conf.baudrate,
        pin=conf.pin.get_secret_value() or None,
        smsc=conf.smsc or None,
        registration_timeout=wait,
    )
    settled = {ModemState.READY, *PARKED_STATES, ModemState.NO_NETWORK}

    async def probe() -> tuple[str, str, ModemInfo]:
        await driver.start()
        try:
            await driver.wait_for_state(*settled, timeout=wait + 10)
            return driver.state.value, driver.detail, driver.info
        finally:
            await driver.close()

    state, detail, info = asyncio.run(probe())
    report = {
        "port": device,
        "state": state,
        "detail": detail,
        "modem": info.name,
        "manufacturer": info.manufacturer,
        "model": info.model,
        "firmware": info.revision,
        "imei": info.imei,
        "operator": info.operator,
        "signal_dbm": info.signal_dbm,
        "smsc": info.smsc,
        "registration": info.registration,
    }
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if state != ModemState.READY.value:
        sys.exit(1)


@cli.group(context_settings=CONTEXT)
def pdu() -> None:
    """Encode and decode SMS PDUs (for debugging a real modem)."""


@pdu.command("decode")
@click.argument("hex_pdu", metavar="HEX")
@click.option(
    "--smsc/--no-smsc",
    "with_smsc",
    default=None,
    help="Whether HEX starts with the SMS centre's address (default: work it out).",
)
def pdu_decode(hex_pdu: str, with_smsc: bool | None) -> None:
    """Decode one PDU (as AT+CMGR or AT+CMGL show it) and print it as JSON."""
    from providers.modem.pdu import PduError
    from providers.modem.pdu import as_json as pdu_json
    from providers.modem.pdu import decode as decode_pdu

    try:
        decoded = decode_pdu(hex_pdu, smsc=with_smsc)
    except PduError as exc:
        _fail(f"not a PDU shopbell can read: {exc}")
    click.echo(json.dumps(pdu_json(decoded), indent=2, ensure_ascii=False))


@pdu.command("encode")
@click.option("--to", "to", required=True, help="Recipient, e.g. +33612345678.")
@click.option("--no-report", is_flag=True, help="Do not ask for a delivery report.")
@click.option("--validity", type=click.IntRange(1), default=None, help="Validity in seconds.")
@click.argument("text")
def pdu_encode(to: str, no_report: bool, validity: int | None, text: str) -> None:
    """Encode TEXT to --to as SMS-SUBMIT PDUs (one per segment) and print them as JSON."""
    from providers.modem.pdu import PduError, encode_submit

    try:
        parts = encode_submit(
            to, text, concat_ref=1, status_report=not no_report, validity_seconds=validity
        )
    except (PduError, ValueError) as exc:
        _fail(str(exc))
    click.echo(
        json.dumps(
            [
                {
                    "pdu": part.pdu,
                    "tpdu_length": part.tpdu_length,
                    "command": f"AT+CMGS={part.tpdu_length}",
                    "text": part.text,
                    "concat": None
                    if part.concat is None
                    else {
                        "ref": part.concat.ref,
                        "total": part.concat.total,
                        "seq": part.concat.seq,
                    },
                }
                for part in parts
            ],
            indent=2,
            ensure_ascii=False,
        )
    )


@cli.group(context_settings=CONTEXT)
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
    settings = _load(ctx).settings
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
        _fail(exc.message)
    except (StorageError, PathError) as exc:
        _fail(str(exc))
    click.echo(f"account {account.id}: {account.username} ({account.role})")


@cli.group("products", context_settings=CONTEXT)
def products_group() -> None:
    """The product catalogue as CSV (sku,name,brand,category,price,stock,active)."""


@products_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.pass_context
def products_import(ctx: click.Context, file: TextIO) -> None:
    """Create or update products by SKU from FILE, all or nothing.

    Every row is checked first; a bad row is reported with its line number and nothing is
    written. Prices are in [shop] currency; a price change is recorded. Works on the
    database file, whether or not the daemon runs.
    """
    settings = _load(ctx).settings
    text = file.read()
    rows: list[catalog_csv.ProductRow] = []
    try:
        with click.progressbar(
            length=max(1, text.count("\n")), label="checking", file=sys.stderr
        ) as bar:
            for row in catalog_csv.parse(io.StringIO(text), settings.shop.currency):
                bar.update(row.line - (rows[-1].line if rows else 1))
                rows.append(row)
    except catalog_csv.CsvError as exc:
        _fail(f"{file.name} {exc}; nothing was imported")
    except csv.Error as exc:
        _fail(f"{file.name}: not a CSV file shopbell can read ({exc}); nothing was imported")
    try:
        created, updated = asyncio.run(import_products(settings, rows))
    except (StorageError, PathError) as exc:
        _fail(str(exc))
    click.echo(f"imported {len(rows)} products: {created} new, {updated} updated")


@products_group.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8"), default="-")
@click.pass_context
def products_export(ctx: click.Context, file: TextIO) -> None:
    """Write every product as CSV to FILE (default: stdout), as `products import` reads it."""
    settings = _load(ctx).settings
    try:
        found = asyncio.run(export_products(settings))
    except (StorageError, PathError) as exc:
        _fail(str(exc))
    count = catalog_csv.write(found, settings.shop.currency, file)
    if getattr(file, "name", "-") not in ("-", "<stdout>"):
        click.echo(f"exported {count} products to {file.name}")


@cli.command()
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
    settings = _load(ctx).settings
    if send and not (settings.reports.recipients or settings.reports.owner_phone):
        _fail("--send: nobody to send it to; set [reports] recipients or owner_phone")
    try:
        shown, stored, queued = asyncio.run(
            run_report(settings, kind, day.date() if day else None, send=send)  # type: ignore[arg-type]
        )
    except (StorageError, PathError) as exc:
        _fail(str(exc))
    except EnqueueError as exc:
        _fail(f"--send: {exc}")
    if as_json:
        click.echo(json.dumps(stored.content, indent=2, ensure_ascii=False))
    else:
        click.echo(shown, nl=False)
    if send:
        click.echo(f"queued {len(queued)} messages: {', '.join(map(str, queued))}", err=True)


@cli.command()
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


@cli.command()
def version() -> None:
    """Print shopbell's version and what it runs on."""
    click.echo(f"shopbell {__version__}")
    click.echo(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}")


@cli.command("tui")
@click.option("--url", default=None, help="The daemon's URL (overrides [tui] url).")
@click.option("--token", default=None, help="Its API token (overrides [tui] token).")
@click.pass_context
def tui_command(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Open the shopkeeper's terminal UI on the daemon (this machine's unless told otherwise).

    When a local daemon is not running, the app says so and offers to start it.
    """
    from daemon.admin.tui_target import TargetError, resolve_target, start_local_daemon

    loaded = _load(ctx)
    try:
        target = resolve_target(loaded.settings, url, token)
    except (TargetError, PathError) as exc:
        _fail(str(exc))
    # The one place the daemon's package reaches the TUI (the composition root).
    from tui.app import ShopbellApp
    from tui.client import ApiClient

    def start() -> str:
        return start_local_daemon(loaded.settings, ctx.obj["config"])

    app = ShopbellApp(
        ApiClient(target.url, target.token),
        local=target.local,
        start_daemon=start if target.local else None,
    )
    app.run()


@cli.group(context_settings=CONTEXT)
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
        _fail(str(exc))


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
        _fail(str(exc))
    for line in found.lines(user_unit):
        click.echo(line)
    sys.exit(0 if found.running else 3)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="shopbell")
