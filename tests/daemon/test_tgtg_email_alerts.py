"""TGTG alerts by e-mail: the daemon's own services (build_services: outbox, dispatcher, the
SMTP provider) send each rising edge as one e-mail, text and HTML, to a real SMTP server
(aiosmtpd on 127.0.0.1); opted-out subscribers and those without a valid address get none."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from daemon.app.services import Services, build_services
from daemon.config import Settings
from daemon.runtime.clock import SystemClock, utc_iso
from daemon.runtime.http_client import SharedHttp
from daemon.services.tgtg.rule import alert_text
from providers.tgtg.client import Observation
from storage import subscribers
from storage.database import Database
from storage.models import Message
from tests.helpers import TIMEOUT_SECONDS, free_port, wait_until_async

FINAL = {"sent", "delivered", "failed", "cancelled", "undelivered"}
ITEM = "774625"
URL = f"https://share.toogoodtogo.com/item/{ITEM}"


class Mailbox:
    """An aiosmtpd handler that keeps every e-mail it accepts, parsed."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [mail for mail in self.received if mail["To"] == address]


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
async def services(
    db: Database, tmp_path: Path, smtp: tuple[Mailbox, int]
) -> AsyncIterator[Services]:
    """The daemon's services as `shopbell run` builds them, with [smtp] at aiosmtpd and the
    console as the SMS chain; the dispatcher running."""
    settings = Settings.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "data")},
            "shop": {"name": "Corner Shop", "timezone": "Europe/Berlin"},
            "outbox": {"backoff_base_seconds": 0.3, "backoff_max_seconds": 1.0},
            "smtp": {
                "host": "127.0.0.1",
                "port": smtp[1],
                "starttls": False,
                "from_address": "shop@example.com",
                "timeout_seconds": 5.0,
            },
        }
    )
    http = SharedHttp()
    built = build_services(settings, db, http, SystemClock())
    await built.dispatcher.start()
    try:
        yield built
    finally:
        await built.dispatcher.stop(5)
        await built.router.close()
        await http.aclose()


@dataclass(frozen=True)
class People:
    email_only: int
    sms_and_email: int
    opted_out: int
    no_address: int
    bad_address: int

    def ids(self) -> list[int]:
        return [
            self.email_only,
            self.sms_and_email,
            self.opted_out,
            self.no_address,
            self.bad_address,
        ]


async def add_people(db: Database) -> People:
    now = utc_iso(datetime.now(UTC))
    rows: list[dict[str, Any]] = [
        {"email": "ada@example.com", "channels": ["email"]},
        {"email": "bo@example.com", "phone": "+4915112345678", "channels": ["sms", "email"]},
        {"email": "cy@example.com", "channels": ["email"], "opted_out_at": now},
        {"channels": ["email"]},
        {"email": "not an address", "channels": ["email"]},
    ]

    def write(conn: Any) -> list[int]:
        return [subscribers.create(conn, row, now).id for row in rows]

    return People(*await db.write(write))


def seen(count: int) -> Observation:
    return Observation(
        item_id=ITEM,
        store_name="Café <Blue> & Co",
        display_name="Café Blue (Magic Bag)",
        items_available=count,
        pickup_start=datetime(2026, 11, 22, 17, 0, tzinfo=UTC),
        pickup_end=datetime(2026, 11, 22, 17, 30, tzinfo=UTC),
        price_minor=399,
        price_decimals=2,
        currency="EUR",
        store_time_zone=None,  # the shop's zone, Europe/Berlin, is used
        sharing_url=URL,
    )


async def messages(db: Database) -> list[Message]:
    found = await db.execute(lambda c: list(c.query("SELECT * FROM messages ORDER BY id")))
    return [Message.from_row(row) for row in found]


async def settled(db: Database, count: int) -> list[Message]:
    """The messages once there are `count` and every one is final."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        found = await messages(db)
        if len(found) == count and {m.status for m in found} <= FINAL:
            return found
        assert time.monotonic() < deadline, [(m.channel, m.status, m.last_error) for m in found]
        await asyncio.sleep(0.02)


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


async def test_each_rising_edge_is_one_email_with_text_and_html(
    services: Services, db: Database, smtp: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    mailbox, _ = smtp
    people = await add_people(db)
    alerts = services.tgtg.alerts
    # Each subscriber's favourite, first seen sold out (a first sighting: no alert).
    for subscriber_id in people.ids():
        await alerts.observe(subscriber_id, [seen(0)])
    caplog.set_level(logging.INFO, logger="daemon.services.tgtg.alerts")

    await alerts.observe(people.email_only, [seen(3)])  # edge 1
    await alerts.observe(people.email_only, [seen(3)])  # the same: no edge
    await wait_until_async(lambda: len(mailbox.received) >= 2, "the first two e-mails")

    await alerts.observe(people.email_only, [seen(0)])
    await alerts.observe(people.email_only, [seen(2)])  # edge 2
    # Two edges: an e-mail each per edge to the two with an address, and the SMS too to the
    # one who also has the sms channel.
    await wait_until_async(
        lambda: len(mailbox.received) >= 4, lambda: f"four e-mails; got {len(mailbox.received)}"
    )

    sent = await settled(db, 6)
    assert all(m.status == "sent" for m in sent), [(m.id, m.status, m.last_error) for m in sent]
    assert len(mailbox.received) == 4
    assert sorted((m.channel, m.subscriber_id) for m in sent) == sorted(
        [("email", people.email_only)] * 2
        + [("email", people.sms_and_email)] * 2
        + [("sms", people.sms_and_email)] * 2
    )
    # Keys are unique per message: the SMS and the e-mail of one edge each have their own.
    keys = [m.idempotency_key for m in sent]
    assert None not in keys and len(set(keys)) == 6
    sms = [m.body for m in sent if m.channel == "sms"]
    assert sms == [alert_text(seen(3), "Europe/Berlin"), alert_text(seen(2), "Europe/Berlin")]

    for address in ("ada@example.com", "bo@example.com"):
        mails = mailbox.to(address)
        assert [m["Subject"] for m in mails] == ["Café Blue (Magic Bag): bags available"] * 2
        assert mails[0]["From"] == "shop@example.com"
        for mail, bags in zip(mails, (3, 2), strict=True):
            text, html = parts(mail)
            assert text.splitlines() == [
                f"Café Blue (Magic Bag): {bags} bags available",
                "",
                "Store: Café <Blue> & Co",
                f"Bags: {bags}",
                "Price: 3.99 EUR",
                "Pick-up: 22/11 18:00-18:30 (Europe/Berlin)",
                f"Link: {URL}",
            ]
            assert f"<h2>Café Blue (Magic Bag): {bags} bags available</h2>" in html
            assert "<td>Café &lt;Blue&gt; &amp; Co</td>" in html
            assert f"<td>{bags}</td>" in html and "<td>3.99 EUR</td>" in html
            assert "<td>22/11 18:00-18:30 (Europe/Berlin)</td>" in html
            assert f'<a href="{URL}">{URL}</a>' in html

    assert mailbox.to("cy@example.com") == [] and mailbox.to("not an address") == []
    said = caplog.text
    assert f"no e-mail alert to subscriber {people.no_address}: they have no address" in said
    assert f"no e-mail alert to subscriber {people.bad_address}: recipient: must be an e-mail" in (
        said
    )
    # The opted-out subscriber: nothing queued (above), nothing tried, nothing to say.
    assert f"subscriber {people.opted_out}" not in said
