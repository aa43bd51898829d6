"""Inbound rows: one per provider message id, linked to their subscriber; direct replies logged."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from storage.inbound import get_inbound, log_direct_reply, mark_handled, record_inbound
from storage.messages import PRIORITY, get_events, get_message
from storage.models import InboundMessage
from tests.storage import factories as f

PHONE = "+447700900123"
SHOP = "+447700900999"


def record(db: sqlite_utils.Database, **over: Any) -> tuple[InboundMessage, bool]:
    fields: dict[str, Any] = {
        "source": "twilio",
        "sender": PHONE,
        "recipient": SHOP,
        "body": "STOP",
        "provider_message_id": "SM0001",
        "received_at": f.NOW,
        "keyword": "STOP",
    } | over
    return record_inbound(db, **fields)


def count(db: sqlite_utils.Database, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_record_inbound_writes_the_row(sync_db: sqlite_utils.Database) -> None:
    inbound, created = record(sync_db)

    assert created is True
    stored = get_inbound(sync_db, inbound.id)
    assert stored == inbound
    assert stored is not None
    assert (stored.source, stored.sender, stored.recipient, stored.body) == (
        "twilio",
        PHONE,
        SHOP,
        "STOP",
    )
    assert stored.keyword == "STOP"
    assert stored.handled_at is None


def test_same_provider_id_is_one_row(sync_db: sqlite_utils.Database) -> None:
    first, created_first = record(sync_db)
    again, created_again = record(sync_db, body="changed on retry?")

    assert (created_first, created_again) == (True, False)
    assert again == first
    assert count(sync_db, "inbound_messages") == 1


def test_same_provider_id_from_another_source_is_another_message(
    sync_db: sqlite_utils.Database,
) -> None:
    record(sync_db, source="twilio")
    _, created = record(sync_db, source="modem")
    assert created is True
    assert count(sync_db, "inbound_messages") == 2


def test_messages_without_provider_id_are_never_merged(sync_db: sqlite_utils.Database) -> None:
    _, first = record(sync_db, provider_message_id=None)
    _, second = record(sync_db, provider_message_id=None)
    assert (first, second) == (True, True)
    assert count(sync_db, "inbound_messages") == 2


def test_known_sender_is_linked_to_their_subscriber(sync_db: sqlite_utils.Database) -> None:
    subscriber_id = f.insert(sync_db, "subscribers", f.subscriber(phone=PHONE))
    inbound, _ = record(sync_db)
    assert inbound.subscriber_id == subscriber_id

    stranger, _ = record(sync_db, sender="+447700900777", provider_message_id="SM0002")
    assert stranger.subscriber_id is None


def test_mark_handled_sets_time_and_link(sync_db: sqlite_utils.Database) -> None:
    inbound, _ = record(sync_db)
    subscriber_id = f.insert(sync_db, "subscribers", f.subscriber(phone=PHONE))

    mark_handled(sync_db, inbound.id, f.LATER, subscriber_id=subscriber_id)

    stored = get_inbound(sync_db, inbound.id)
    assert stored is not None
    assert stored.handled_at is not None and stored.subscriber_id == subscriber_id


def test_mark_handled_without_subscriber_keeps_the_link(sync_db: sqlite_utils.Database) -> None:
    subscriber_id = f.insert(sync_db, "subscribers", f.subscriber(phone=PHONE))
    inbound, _ = record(sync_db)

    mark_handled(sync_db, inbound.id, f.LATER)

    stored = get_inbound(sync_db, inbound.id)
    assert stored is not None and stored.subscriber_id == subscriber_id


def test_log_direct_reply_is_a_sent_reply_with_its_history(
    sync_db: sqlite_utils.Database,
) -> None:
    subscriber_id = f.insert(sync_db, "subscribers", f.subscriber(phone=PHONE))

    message_id = log_direct_reply(
        sync_db,
        recipient=PHONE,
        body="Reply STOP to stop.",
        provider="twilio",
        now=f.NOW,
        subscriber_id=subscriber_id,
        encoding="gsm7",
        segments=1,
    )

    message = get_message(sync_db, message_id)
    assert message is not None
    assert (message.channel, message.recipient, message.body) == (
        "sms",
        PHONE,
        "Reply STOP to stop.",
    )
    assert message.kind == "reply"
    assert message.priority == PRIORITY["reply"]
    assert message.status == "sent"
    assert message.provider == "twilio"
    assert message.sent_at is not None
    assert message.subscriber_id == subscriber_id
    assert (message.encoding, message.segments) == ("gsm7", 1)
    events = get_events(sync_db, message_id)
    assert [event.state for event in events] == ["queued", "sent"]
    assert events[-1].provider == "twilio"
