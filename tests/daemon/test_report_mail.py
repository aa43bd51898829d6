"""The sales reports by e-mail: a real SMTP server (aiosmtpd on 127.0.0.1) receives them
through the outbox's `email` channel; refusals retry, 550 fails at once; the scheduled jobs
store and queue them; without [smtp] the console "sends" e-mail."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from apscheduler.triggers.cron import CronTrigger
from click.testing import CliRunner

from daemon.admin.cli import cli
from daemon.app.jobs import scheduled_jobs
from daemon.app.services import build_services
from daemon.app.wiring import build_router
from daemon.config import Settings, load_config
from daemon.runtime.clock import ManualClock, SystemClock, utc_iso
from daemon.runtime.http_client import SharedHttp
from daemon.runtime.scheduler import Scheduler
from daemon.services.backoffice import report_mail
from daemon.services.backoffice.service import build_backoffice
from daemon.services.outbox.dispatcher import Dispatcher
from daemon.services.outbox.policy import RetryPolicy
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from providers.console.provider import ConsoleProvider
from providers.smtp.provider import SmtpProvider, split_body
from storage import orders, products
from storage.database import Database
from storage.messages import get_message
from storage.models import Message
from tests.helpers import free_port

SHOP = "Corner Shop"
FINAL = {"sent", "delivered", "failed", "cancelled", "undelivered"}
# 07:00 on Wednesday 2026-01-14 in Kolkata: the daily report is about Tuesday the 13th.
MORNING = datetime(2026, 1, 14, 1, 30, tzinfo=UTC)


class Handler:
    """Keeps what it receives; refuses RCPT or DATA with the codes it is told."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.data_reply: str | None = None
        self.rcpt_reply: str | None = None
        self.tries = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.tries += 1
        if self.data_reply:
            return self.data_reply
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Handler, int]]:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def settings_for(tmp_path: Path, port: int | None, **reports: Any) -> Settings:
    data: dict[str, Any] = {
        "paths": {"data_dir": str(tmp_path / "data")},
        "shop": {"name": SHOP, "timezone": "Asia/Kolkata", "currency": "INR"},
        "reports": {"recipients": ["owner@example.com"], **reports},
        "outbox": {"backoff_base_seconds": 0.3, "backoff_max_seconds": 1.0},
    }
    if port is not None:
        data["smtp"] = {
            "host": "127.0.0.1",
            "port": port,
            "starttls": False,
            "from_address": "shop@example.com",
            "timeout_seconds": 5.0,
        }
    return Settings.model_validate(data)


async def seed(db: Database) -> None:
    """Tuesday 2026-01-13 in Kolkata: 2 Shampoo (600.00) and 3 "Soap <b>&</b>" (45.50) by
    asha: 2 orders, 5 items, 1336.50 INR; Wednesday 00:10 (next day) is not counted."""

    def write(conn: Any) -> None:
        conn.execute(
            "INSERT INTO accounts (username, password_hash, role, created_at, updated_at) "
            "VALUES ('asha', 'x', 'customer', '2026-01-01', '2026-01-01')"
        )
        then = utc_iso(datetime(2026, 1, 1, tzinfo=UTC))
        shampoo = products.insert_product(
            conn, sku="S", name="Shampoo", price_minor=60000, now=then, stock=100
        ).id
        soap = products.insert_product(
            conn, sku="P", name="Soap <b>&</b>", price_minor=4550, now=then, stock=100
        ).id
        for moment, items in (
            (datetime(2026, 1, 12, 18, 45, tzinfo=UTC), [(shampoo, 2)]),  # Tue 00:15
            (datetime(2026, 1, 13, 18, 0, tzinfo=UTC), [(soap, 3)]),  # Tue 23:30
            (datetime(2026, 1, 13, 18, 40, tzinfo=UTC), [(soap, 1)]),  # Wed 00:10
        ):
            orders.place_order(conn, account_id=1, items=items, now=utc_iso(moment))

    await db.write(write)


class Rig:
    def __init__(self, db: Database, settings: Settings, clock: Any) -> None:
        import httpx

        self.db = db
        self.settings = settings
        self.http = httpx.AsyncClient()
        self.router, _ = build_router(settings, lambda: self.http, SystemClock())
        self.dispatcher = Dispatcher(
            db,
            self.router,
            SystemClock(),
            RetryPolicy(attempts_per_provider=5, base_seconds=0.3, max_seconds=1.0),
            lease_seconds=30,
        )
        self.outbox = Outbox(db, SystemClock(), wake=self.dispatcher.wake)
        self.office = build_backoffice(settings, db, clock, key=b"k" * 32)

    async def message(self, message_id: int) -> Message:
        found = await self.db.execute(lambda c: get_message(c, message_id))
        assert found is not None
        return found

    async def settle(self, message_id: int, timeout: float = 15.0) -> Message:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            message = await self.message(message_id)
            if message.status in FINAL:
                return message
            assert time.monotonic() < deadline, (message.status, message.last_error)
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        await self.dispatcher.stop(5)
        await self.router.close()
        await self.http.aclose()


@pytest.fixture
async def make_rig(db: Database, tmp_path: Path) -> AsyncIterator[Any]:
    rigs: list[Rig] = []
    await seed(db)

    async def build(port: int | None, **reports: Any) -> Rig:
        rig = Rig(db, settings_for(tmp_path, port, **reports), ManualClock(MORNING))
        await rig.dispatcher.start()
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        await rig.close()


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


async def test_the_report_arrives_by_email_with_text_and_an_html_table(
    make_rig: Any, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    rig = await make_rig(port)
    done = await report_mail.run(rig.office, rig.outbox, rig.settings, "daily")
    assert len(done.message_ids) == 1
    sent = await rig.settle(done.message_ids[0])
    assert sent.status == "sent", sent.last_error
    assert sent.provider == "smtp"
    (mail,) = handler.received
    assert mail["Subject"] == "Corner Shop: daily sales report, 2026-01-13"
    assert mail["To"] == "owner@example.com"
    assert mail["From"] == "shop@example.com"
    text, html = parts(mail)
    assert "orders: 2" in text
    assert "items sold: 5" in text
    assert "sales: 1336.50 INR" in text
    assert "Shampoo: 2 sold, 1200.00 INR" in text
    assert "Soap <b>&</b>: 3 sold, 136.50 INR" in text
    assert "<table" in html
    assert "<td>2</td><td>5</td><td>1336.50 INR</td>" in html
    assert "<td>Shampoo</td><td>2</td><td>1200.00 INR</td>" in html
    # Product names are escaped, never markup.
    assert "<td>Soap &lt;b&gt;&amp;&lt;/b&gt;</td><td>3</td><td>136.50 INR</td>" in html
    assert "<td>asha</td><td>2026-01-13</td><td>1336.50 INR</td>" in html
    # The stored report holds the same figures.
    assert done.stored.content["total_minor"] == 133650
    assert done.stored.content["items"] == 5


async def test_a_refusing_server_delays_the_email_and_nothing_is_lost(
    make_rig: Any, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    handler.data_reply = "451 4.3.0 try again later"
    rig = await make_rig(port)
    done = await report_mail.run(rig.office, rig.outbox, rig.settings, "daily")
    message_id = done.message_ids[0]
    deadline = time.monotonic() + 10
    while True:
        waiting = await rig.message(message_id)
        if waiting.attempts >= 1 and waiting.status == "queued":
            break
        assert time.monotonic() < deadline, waiting.status
        await asyncio.sleep(0.01)
    assert "451" in (waiting.last_error or "")
    # Queued again with a due time after the failed try, not dropped.
    assert waiting.due_at > waiting.created_at
    handler.data_reply = None
    sent = await rig.settle(message_id)
    assert sent.status == "sent", sent.last_error
    assert sent.attempts >= 2
    assert len(handler.received) == 1


async def test_a_server_that_is_not_there_is_retried(make_rig: Any, tmp_path: Path) -> None:
    rig = await make_rig(free_port())  # nothing listens: connection refused
    done = await report_mail.run(rig.office, rig.outbox, rig.settings, "daily")
    deadline = time.monotonic() + 10
    while True:
        waiting = await rig.message(done.message_ids[0])
        if waiting.attempts >= 1 and waiting.status == "queued":
            break
        assert time.monotonic() < deadline, waiting.status
        await asyncio.sleep(0.01)
    assert "unreachable" in (waiting.last_error or "")


async def test_a_refused_recipient_fails_at_once(make_rig: Any, smtp: tuple[Handler, int]) -> None:
    handler, port = smtp
    handler.rcpt_reply = "550 5.1.1 no such mailbox"
    rig = await make_rig(port)
    done = await report_mail.run(rig.office, rig.outbox, rig.settings, "daily")
    failed = await rig.settle(done.message_ids[0])
    assert failed.status == "failed"
    assert failed.attempts == 1
    assert failed.error_code == "550"


async def test_a_refused_login_is_provider_down() -> None:
    import aiosmtplib

    from providers.base import ProviderDown, RecipientError, TransientError

    provider = SmtpProvider(host="x", port=1, from_address="a@b.c", password="hunter2")
    assert isinstance(
        provider._error_for(aiosmtplib.SMTPAuthenticationError(535, "bad hunter2")), ProviderDown
    )
    assert (await provider.health()).state == "down"
    assert "hunter2" not in (await provider.health()).detail
    refused = aiosmtplib.SMTPRecipientRefused(553, "bad address", "x@y.z")
    assert isinstance(provider._error_for(refused), RecipientError)
    assert isinstance(
        provider._error_for(aiosmtplib.SMTPServerDisconnected("gone")), TransientError
    )
    assert isinstance(provider._error_for(aiosmtplib.SMTPDataError(452, "full")), TransientError)


async def test_the_owner_gets_a_one_segment_sms_summary(make_rig: Any) -> None:
    rig = await make_rig(None, recipients=[], owner_phone="+919876543210")
    done = await report_mail.run(rig.office, rig.outbox, rig.settings, "weekly", date(2026, 1, 13))
    (message_id,) = done.message_ids
    sms = await rig.message(message_id)
    assert sms.channel == "sms"
    assert sms.segments == 1
    assert sms.body == "Corner Shop weekly 2026-01-12 to 2026-01-18: 3 orders, 6 items, 1382.00 INR"
    long = report_mail.sms_summary(done.report, "INR", "A very long shop name " * 10)
    assert len(long) <= 160


async def test_without_smtp_the_console_prints_the_email(
    make_rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await make_rig(None)
    (slot,) = rig.router.chain("email")
    assert isinstance(slot.provider, ConsoleProvider)
    done = await report_mail.run(rig.office, rig.outbox, rig.settings, "daily")
    sent = await rig.settle(done.message_ids[0])
    assert sent.status == "sent"
    assert sent.provider == "console"


async def test_email_recipients_must_be_addresses(db: Database) -> None:
    outbox = Outbox(db, SystemClock())
    with pytest.raises(EnqueueError, match="e-mail address"):
        await outbox.enqueue(EnqueueRequest(channel="email", recipient="not mail", body="hi"))


def test_a_plain_body_gets_an_escaped_html_copy() -> None:
    text, html = split_body("a < b")
    assert text == "a < b"
    assert "a &lt; b" in html
    both = json.dumps({"text": "t", "html": "<p>h</p>"})
    assert split_body(both) == ("t", "<p>h</p>")


async def test_the_scheduled_jobs_store_and_queue_the_report(db: Database, tmp_path: Path) -> None:
    await seed(db)
    settings = settings_for(tmp_path, None, daily_at="07:00", weekly_on="mon")
    clock = ManualClock(MORNING)
    services = build_services(settings, db, SharedHttp(), clock)
    jobs = {spec.id: spec for spec in scheduled_jobs(settings, services)}
    daily, weekly = jobs["report-daily"].trigger, jobs["report-weekly"].trigger
    assert isinstance(daily, CronTrigger) and isinstance(weekly, CronTrigger)
    # 07:00 in Kolkata is 01:30 UTC; the weekly one comes on Monday the 19th.
    after = datetime(2026, 1, 14, 2, 0, tzinfo=UTC)
    assert daily.get_next_fire_time(None, after) == datetime(2026, 1, 15, 1, 30, tzinfo=UTC)
    assert weekly.get_next_fire_time(None, after) == datetime(2026, 1, 19, 1, 30, tzinfo=UTC)

    scheduler = Scheduler(db, clock)
    scheduler.add(jobs["report-daily"])
    assert await scheduler.run_job("report-daily") == "ok"
    stored = await db.execute(lambda c: list(c.query("SELECT * FROM reports")))
    assert [(r["kind"], json.loads(r["content"])["total_minor"]) for r in stored] == [
        ("daily", 133650)
    ]
    queued = await db.execute(lambda c: list(c.query("SELECT * FROM messages")))
    assert [(m["channel"], m["recipient"], m["status"], m["kind"]) for m in queued] == [
        ("email", "owner@example.com", "queued", "report")
    ]
    runs = await db.execute(lambda c: list(c.query("SELECT * FROM job_runs")))
    assert "1 messages queued" in runs[0]["detail"]


def test_report_send_queues_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        '[shop]\nname = "Corner Shop"\ntimezone = "Asia/Kolkata"\n'
        '[reports]\nrecipients = ["owner@example.com", "boss@example.com"]\n'
    )
    (tmp_path / "data").mkdir()
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--config", str(path), "report", "daily", "--date", "2026-01-13", "--send"]
    )
    assert result.exit_code == 0, result.output
    assert "Corner Shop: daily sales report, 2026-01-13" in result.output
    assert "queued 2 messages" in result.output
    import sqlite3

    conn = sqlite3.connect(load_config(path).settings.database_path)
    try:
        rows = conn.execute("SELECT channel, recipient, subject FROM messages").fetchall()
    finally:
        conn.close()
    assert sorted(rows) == [
        ("email", "boss@example.com", "Corner Shop: daily sales report, 2026-01-13"),
        ("email", "owner@example.com", "Corner Shop: daily sales report, 2026-01-13"),
    ]


def test_report_send_needs_someone_to_send_to(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n')
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(cli, ["--config", str(path), "report", "daily", "--send"])
    assert result.exit_code != 0
    assert "nobody to send it to" in result.output


def test_config_toml_documents_every_smtp_and_reports_key() -> None:
    import tomllib

    repo = Path(__file__).resolve().parents[2]
    text = (repo / "config.toml").read_text(encoding="utf-8")
    parsed = tomllib.loads(text)
    for section in ("smtp", "reports"):
        fields = type(getattr(Settings(), section)).model_fields
        assert set(parsed[section]) == set(fields), section
    lines = text.splitlines()
    start = lines.index("[smtp]")
    for number, line in enumerate(lines[start:], start):
        if line and not line.startswith(("#", "[")):
            assert lines[number - 1].startswith("#"), f"no comment above {line!r}"


def test_the_weekly_report_is_about_the_last_whole_week(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None)
    wednesday = build_backoffice(settings, None, ManualClock(MORNING), key=b"k" * 32)  # type: ignore[arg-type]
    assert report_mail.previous_day(wednesday, "weekly") == date(2026, 1, 11)
    assert report_mail.previous_day(wednesday, "daily") == date(2026, 1, 13)
    monday = ManualClock(datetime(2026, 1, 19, 1, 30, tzinfo=UTC))
    office = build_backoffice(settings, None, monday, key=b"k" * 32)  # type: ignore[arg-type]
    assert report_mail.previous_day(office, "weekly") == date(2026, 1, 18)
