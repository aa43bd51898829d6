"""Owner alerts reach the fake Twilio and a real SMTP server once per key, across restarts,
within the hourly limit; a provider down past N minutes, or a locked SIM, alerts the owner."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from daemon.app.lifecycle import Daemon
from daemon.app.services import build_owner_alerts
from daemon.config import LoadedConfig, Settings
from daemon.runtime.clock import ManualClock, utc_iso
from daemon.services.care.provider_watch import ProviderWatch
from daemon.services.outbox.service import EnqueueRequest, Outbox
from providers.base import ProviderHealth
from storage.database import Database
from storage.errors import StorageError
from tests.helpers import free_port, wait_until_async
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, TwilioPeer

OWNER_PHONE = "+33612345678"
OWNER_EMAIL = "owner@example.com"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Mailbox:
    """An aiosmtpd handler that keeps every e-mail it accepts."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


def settings_for(tmp_path: Path, twilio: TwilioPeer, smtp_port: int, **owner: Any) -> Settings:
    return Settings.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "data")},
            "shop": {"name": "Corner Shop"},
            "api": {"port": free_port()},
            "sms": {"chain": ["twilio"]},
            "twilio": {
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "from_number": "+15005550006",
                "base_url": twilio.base_url,
            },
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "starttls": False,
                "from_address": "shop@example.com",
            },
            "outbox": {"backoff_base_seconds": 0.2, "backoff_max_seconds": 0.5},
            "owner": {"phone": OWNER_PHONE, "email": OWNER_EMAIL, **owner},
        }
    )


def texts(twilio: TwilioPeer) -> list[str]:
    return [r.form["Body"] for r in twilio.sent]


async def test_an_alert_reaches_phone_and_mail_once_per_key_across_a_restart(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    settings = settings_for(tmp_path, twilio, port)
    clock = ManualClock(START)
    first = Daemon(LoadedConfig(settings, None, ()), clock=clock)
    try:
        await first._start()
        assert first.services is not None
        assert await first.services.owner.alert("disk-low", "shopbell: the disk is filling") is True
        assert (
            await first.services.owner.alert("disk-low", "shopbell: the disk is filling") is False
        )
        await wait_until_async(lambda: twilio.sent and mailbox.received, "the SMS and the e-mail")
    finally:
        await first._shutdown()
    [sms] = twilio.sent
    assert sms.form["To"] == OWNER_PHONE
    assert sms.form["Body"] == "shopbell: the disk is filling"
    [mail] = mailbox.received
    assert mail["To"] == OWNER_EMAIL
    assert mail["Subject"] == "Corner Shop: needs you: disk-low"

    # The same condition seen again after a restart: nothing new goes out for it.
    second = Daemon(LoadedConfig(settings, None, ()), clock=clock)
    try:
        await second._start()
        assert second.services is not None
        owner = second.services.owner
        assert await owner.alert("disk-low", "shopbell: the disk is filling") is False
        assert await owner.alert("backup-failing", "shopbell: backups failing") is True
        await wait_until_async(
            lambda: len(twilio.sent) == 2 and len(mailbox.received) == 2, "alert 2"
        )
        assert texts(twilio) == ["shopbell: the disk is filling", "shopbell: backups failing"]

        # Over, then back: the owner hears of the recovery, and of the next time.
        await owner.clear("disk-low", "shopbell: disk space is back")
        assert await owner.alert("disk-low", "shopbell: the disk is filling again") is True
        await wait_until_async(lambda: len(twilio.sent) == 4, "the recovery and the new alert")
        assert texts(twilio)[2:] == [
            "shopbell: disk space is back",
            "shopbell: the disk is filling again",
        ]
        await wait_until_async(lambda: len(mailbox.received) == 4, "their e-mails")
        assert mailbox.received[2]["Subject"] == "Corner Shop: resolved: disk-low"
    finally:
        await second._shutdown()


async def test_no_more_than_max_per_hour_alerts_go_out(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    settings = settings_for(tmp_path, twilio, smtp[1], max_per_hour=2, email="")
    clock = ManualClock(START)
    db = Database(settings.database_path)
    settings.data_dir.mkdir(parents=True)
    await db.open()
    try:
        owner = build_owner_alerts(settings, db, clock, Outbox(db, clock))
        assert await owner.alert("a", "first") is True
        assert await owner.alert("b", "second") is True
        assert await owner.alert("c", "third") is False
        # A clear does not give back a slot in the hour: flapping cannot buy more messages.
        await owner.clear("a")
        assert await owner.alert("a", "first again") is False
        clock.advance(3601)
        assert await owner.alert("c", "third") is True
        bodies = await db.execute(
            lambda c: [r[0] for r in c.execute("SELECT body FROM messages ORDER BY id")]
        )
        assert bodies == ["first", "second", "third"]
    finally:
        await db.close()


async def test_an_alert_a_crash_left_unqueued_goes_out_at_the_next_start_once(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    settings = settings_for(tmp_path, twilio, smtp[1])
    clock = ManualClock(START)
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.database_path)
    await db.open()
    try:
        # What a crash between writing the alert and queueing its messages leaves behind.
        await db.write(
            lambda c: c.execute(
                "INSERT INTO owner_alerts (key, text, raised_at) VALUES ('sim-locked:modem', "
                "'shopbell: the SIM is locked', '2026-03-01T08:59:00.000000+00:00')"
            )
        )
        owner = build_owner_alerts(settings, db, clock, Outbox(db, clock))
        assert await owner.resume() == 1
        assert await owner.resume() == 0
        assert await owner.alert("sim-locked:modem", "shopbell: the SIM is locked") is False
        rows = await db.execute(
            lambda c: c.execute("SELECT channel, body FROM messages ORDER BY id").fetchall()
        )
        assert [tuple(r) for r in rows] == [
            ("sms", "shopbell: the SIM is locked"),
            ("email", "shopbell: the SIM is locked\n\n-- shopbell on Corner Shop\n"),
        ]
    finally:
        await db.close()


async def test_with_nobody_to_tell_nothing_is_queued(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    settings = settings_for(tmp_path, twilio, smtp[1], phone="", email="")
    assert settings.owner_phone == ""
    clock = ManualClock(START)
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.database_path)
    await db.open()
    try:
        owner = build_owner_alerts(settings, db, clock, Outbox(db, clock))
        assert await owner.alert("disk-low", "the disk is filling") is False
        assert (
            await db.execute(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0])
            == 0
        )
    finally:
        await db.close()


def test_the_owner_phone_falls_back_to_the_older_owner_phones() -> None:
    tgtg = Settings.model_validate({"tgtg": {"owner_phone": "+33611111111"}})
    assert tgtg.owner_phone == "+33611111111"
    reports = Settings.model_validate({"reports": {"owner_phone": "+33622222222"}})
    assert reports.owner_phone == "+33622222222"
    both = Settings.model_validate(
        {"owner": {"phone": "+33 6 33 33 33 33"}, "tgtg": {"owner_phone": "+33611111111"}}
    )
    assert both.owner_phone == "+33633333333"


@pytest.mark.parametrize(
    ("owner", "words"),
    [
        ({"phone": "0612345678"}, "owner.phone: '0612345678' has no country code"),
        ({"phone": "+1234"}, "owner.phone: '+1234' is not"),
        ({"email": "owner at example"}, "owner.email: 'owner at example' is not an e-mail"),
    ],
)
def test_bad_owner_addresses_are_refused_with_the_key(
    write_config: Callable[..., Path], owner: dict[str, str], words: str
) -> None:
    from daemon.config import ConfigError, load_config

    body = "\n".join(f'{key} = "{value}"' for key, value in owner.items())
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(f"[owner]\n{body}\n"))
    assert words in str(caught.value)


async def owner_rows(db: Database) -> list[str]:
    return await db.execute(
        lambda c: [
            r[0]
            for r in c.execute(
                "SELECT body FROM messages WHERE channel = 'sms' ORDER BY id"
            ).fetchall()
        ]
    )


async def test_a_provider_down_past_the_limit_alerts_once_and_its_recovery_clears(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    settings = settings_for(tmp_path, twilio, smtp[1], email="")
    clock = ManualClock(START)
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.database_path)
    await db.open()
    try:
        owner = build_owner_alerts(settings, db, clock, Outbox(db, clock))
        watch = ProviderWatch(owner, clock, down_minutes=15)
        down = {"fast2sms": ProviderHealth("down", "bad API key"), "console": ProviderHealth("ok")}

        await watch.observe(down)
        clock.advance(10 * 60)
        await watch.observe({"fast2sms": ProviderHealth("degraded", "timeouts")})
        assert await owner_rows(db) == []
        clock.advance(5 * 60)
        await watch.observe(down)
        clock.advance(5 * 60)
        await watch.observe(down)
        assert await owner_rows(db) == ["shopbell: fast2sms has been down for 15 min: bad API key"]

        await watch.observe({"fast2sms": ProviderHealth("ok", "sending")})
        await watch.observe({"fast2sms": ProviderHealth("ok", "sending")})
        assert (await owner_rows(db))[1:] == ["shopbell: fast2sms works again (sending)."]
        # Down again: the wait starts from the new outage.
        await watch.observe(down)
        assert len(await owner_rows(db)) == 2
    finally:
        await db.close()


async def test_a_locked_sim_alerts_at_once_and_only_once(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    settings = settings_for(tmp_path, twilio, smtp[1], email="")
    clock = ManualClock(START)
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.database_path)
    await db.open()
    try:
        owner = build_owner_alerts(settings, db, clock, Outbox(db, clock))
        watch = ProviderWatch(owner, clock, down_minutes=15)
        locked = ProviderHealth("down", "sim locked: PIN rejected, not retried (+CME ERROR: 16)")
        await watch.observe({"modem": locked})
        clock.advance(16 * 60)
        await watch.observe({"modem": locked})
        assert await owner_rows(db) == [
            "shopbell: the modem's SIM is locked: sim locked: PIN rejected, not retried "
            "(+CME ERROR: 16)"
        ]
    finally:
        await db.close()


async def test_the_daemon_tells_the_owner_when_twilio_stays_down(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    """The daemon's own provider-health job, with the owner alerts it builds at start."""
    mailbox, port = smtp
    settings = settings_for(tmp_path, twilio, port, provider_down_minutes=15)
    clock = ManualClock(START)
    twilio.account_status = "suspended"
    daemon = Daemon(LoadedConfig(settings, None, ()), clock=clock)
    try:
        await daemon._start()
        assert daemon.services is not None and daemon.services.owner.phone == OWNER_PHONE
        assert daemon.scheduler is not None
        assert {"backup", "retention", "disk-check"} <= set(daemon.scheduler.job_ids)
        assert await daemon.scheduler.run_job("provider-health") == "ok"
        clock.advance(16 * 60)
        assert await daemon.scheduler.run_job("provider-health") == "ok"
        await wait_until_async(lambda: mailbox.received, "the owner's e-mail")
        [mail] = mailbox.received
        assert mail["Subject"] == "shopbell: twilio is down"
        assert "twilio has been down for 16 min: the Twilio account is suspended" in (
            mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        )
        [alert] = await daemon.services.owner.open_alerts()
        assert alert.key == "provider-down:twilio"
    finally:
        await daemon._shutdown()


async def test_open_alerts_show_in_the_health_until_cleared(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    settings = settings_for(tmp_path, twilio, smtp[1], email="")
    clock = ManualClock(START)
    daemon = Daemon(LoadedConfig(settings, None, ()), clock=clock)
    try:
        await daemon._start()
        assert daemon.services is not None
        token = {"Authorization": f"Bearer {daemon.api_token}"}
        async with httpx.AsyncClient(base_url=daemon.api_url, headers=token) as api:

            async def owner_health() -> tuple[str, dict[str, Any]]:
                # The alerts' detail is for the owner: the health answer with the token.
                body = (await api.get("/api/health")).json()
                return body["status"], body["components"]["owner"]

            status, owner = await owner_health()
            assert owner["state"] == "ok" and owner["open_alerts"] == []
            assert owner["reachable"] is True

            await daemon.services.owner.alert(
                "tgtg-blocked:7",
                "shopbell: TGTG blocked the watcher (account 7, ana@example.com).",
                subject="shopbell: TGTG blocked the watcher",
            )
            clock.advance(60)
            await daemon.services.owner.alert("disk-low", "shopbell: the disk is filling")
            status, owner = await owner_health()
            assert status == "degraded" and owner["state"] == "degraded"
            assert owner["detail"] == "2 open: tgtg-blocked:7, disk-low"
            assert [(a["key"], a["subject"], a["raised_at"]) for a in owner["open_alerts"]] == [
                ("tgtg-blocked:7", "shopbell: TGTG blocked the watcher", utc_iso(START)),
                (
                    "disk-low",
                    "Corner Shop: needs you: disk-low",
                    utc_iso(START + timedelta(seconds=60)),
                ),
            ]
            assert all(a["queued_at"] for a in owner["open_alerts"])
            # Health is public: an alert's text (it may name a customer) is not in it.
            assert "ana@example.com" not in json.dumps(owner)

            await daemon.services.owner.clear("tgtg-blocked:7", "TGTG watching works again")
            await daemon.services.owner.clear("disk-low")
            status, owner = await owner_health()
            assert owner["state"] == "ok" and owner["open_alerts"] == []
    finally:
        await daemon._shutdown()


async def test_a_deleted_database_reaches_the_owner_by_sms_and_mail_with_nothing_written(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    settings = settings_for(tmp_path, twilio, port)
    daemon = Daemon(LoadedConfig(settings, None, ()), clock=ManualClock(START))
    try:
        await daemon._start()
        assert daemon.services is not None
        outbox = daemon.services.outbox
        settings.database_path.unlink()  # a cleanup script, a user in the wrong folder
        # The next write finds it gone: refused, and the owner told the ways that need no
        # database (the outbox cannot take their alert).
        with pytest.raises(StorageError):
            await outbox.enqueue(
                EnqueueRequest(channel="sms", recipient="+33611111111", body="hello")
            )
        await wait_until_async(lambda: twilio.sent and mailbox.received, "the SMS and the e-mail")
        # A second refusal tells nobody again.
        with pytest.raises(StorageError):
            await outbox.enqueue(
                EnqueueRequest(channel="sms", recipient="+33611111111", body="again")
            )
    finally:
        await daemon._shutdown()
    [sms] = twilio.sent
    assert sms.form["To"] == OWNER_PHONE
    body = sms.form["Body"]
    assert body.startswith("shopbell on Corner Shop has stopped taking messages: ")
    assert f"{settings.database_path} was deleted" in body and "shopbell db restore" in body
    [mail] = mailbox.received
    assert mail["To"] == OWNER_EMAIL
    assert mail["Subject"] == "Corner Shop: shopbell's database is gone"
    assert not settings.database_path.exists(), "nothing was written in its place"


async def test_a_full_disk_reaches_the_owner_directly_once_an_hour_while_nothing_is_written(
    tmp_path: Path, twilio: TwilioPeer, smtp: tuple[Mailbox, int]
) -> None:
    port = smtp[1]
    settings = settings_for(tmp_path, twilio, port, email="")
    clock = ManualClock(START)
    daemon = Daemon(LoadedConfig(settings, None, ()), clock=clock)
    try:
        await daemon._start()
        assert daemon.services is not None
        db, outbox = daemon.services.db, daemon.services.outbox

        # SQLite's size limit answers exactly as a full disk does (SQLITE_FULL).
        async def fill() -> None:
            """Cap the file at its size now and queue until a message does not fit."""
            pages = await db.execute(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
            await db.execute(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"))
            with pytest.raises(StorageError, match="is full, so this was not written"):
                for n in range(500):
                    body = f"{n} " + "x" * 1500
                    await outbox.enqueue(
                        EnqueueRequest(channel="sms", recipient="+33611111111", body=body)
                    )

        async def room() -> None:
            await db.execute(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
            await outbox.enqueue(EnqueueRequest(channel="sms", recipient="+33611111111", body="ok"))

        await fill()
        await wait_until_async(lambda: twilio.sent, "the owner's SMS")
        # Room again, then full again within the hour: nothing new.
        await room()
        await fill()
        # An hour later, full once more: told again.
        clock.advance(3601)
        await room()
        await fill()
        await wait_until_async(
            lambda: len([r for r in twilio.sent if r.form["To"] == OWNER_PHONE]) == 2,
            "the second alert",
        )
        await room()  # for the database's closing checkpoint
    finally:
        await daemon._shutdown()
    told = [r.form["Body"] for r in twilio.sent if r.form["To"] == OWNER_PHONE]
    assert len(told) == 2
    assert told[0].startswith("shopbell on Corner Shop cannot write down new messages: ")
    assert "is full" in told[0] and "Free some space" in told[0]
