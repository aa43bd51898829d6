"""Inbound SMS rows, deduplicated per provider message id, and the replies sent straight back.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`).
"""

from __future__ import annotations

import sqlite_utils

from storage.messages import PRIORITY, NewMessage, add_event, insert_message
from storage.models import InboundMessage
from storage.optouts import subscriber_id_for


def record_inbound(
    db: sqlite_utils.Database,
    *,
    source: str,
    sender: str,
    recipient: str | None,
    body: str,
    provider_message_id: str | None,
    received_at: str,
    keyword: str | None,
) -> tuple[InboundMessage, bool]:
    """Write one received SMS; returns the row and whether it was new.

    Twilio retries a webhook it got no answer to, and the modem's stored messages are read
    again at start, so the same (source, provider_message_id) returns the first row instead of
    a second one. A message without a provider id is always new. The row is linked to the
    subscriber with the sender's number, when there is one.
    """
    if provider_message_id is not None:
        existing = _by_provider_id(db, source, provider_message_id)
        if existing is not None:
            return existing, False
    cursor = db.execute(
        "INSERT INTO inbound_messages (source, sender, recipient, body, provider_message_id, "
        "received_at, keyword, subscriber_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            source,
            sender,
            recipient,
            body,
            provider_message_id,
            received_at,
            keyword,
            subscriber_id_for(db, sender),
        ],
    )
    inbound = get_inbound(db, int(cursor.lastrowid or 0))
    assert inbound is not None
    return inbound, True


def get_inbound(db: sqlite_utils.Database, inbound_id: int) -> InboundMessage | None:
    rows = list(db.query("SELECT * FROM inbound_messages WHERE id = ?", [inbound_id]))
    return InboundMessage.from_row(rows[0]) if rows else None


def _by_provider_id(
    db: sqlite_utils.Database, source: str, provider_message_id: str
) -> InboundMessage | None:
    rows = list(
        db.query(
            "SELECT * FROM inbound_messages WHERE source = ? AND provider_message_id = ?",
            [source, provider_message_id],
        )
    )
    return InboundMessage.from_row(rows[0]) if rows else None


def mark_handled(
    db: sqlite_utils.Database, inbound_id: int, now: str, *, subscriber_id: int | None = None
) -> None:
    """Record that the message's keyword (if any) was applied.

    `subscriber_id` links the row to a subscriber created while handling it (a STOP from an
    unknown number); a link made at insert time is kept when it is None.
    """
    cursor = db.execute(
        "UPDATE inbound_messages SET handled_at = ?, subscriber_id = coalesce(?, subscriber_id) "
        "WHERE id = ?",
        [now, subscriber_id, inbound_id],
    )
    if not cursor.rowcount:
        raise LookupError(f"no inbound message {inbound_id}")


def log_direct_reply(
    db: sqlite_utils.Database,
    *,
    recipient: str,
    body: str,
    provider: str,
    now: str,
    subscriber_id: int | None = None,
    encoding: str | None = None,
    segments: int | None = None,
) -> int:
    """Write down a reply that went out in the webhook's own answer (TwiML), not the outbox.

    Nothing is sent without being written down, even a reply the provider sends for us: the
    row is kind 'reply', already 'sent', with its events queued -> sent. Returns its id.
    """
    message, _ = insert_message(
        db,
        NewMessage(
            channel="sms",
            recipient=recipient,
            body=body,
            kind="reply",
            priority=PRIORITY["reply"],
            subscriber_id=subscriber_id,
            encoding=encoding,
            segments=segments,
        ),
        now,
    )
    db.execute(
        "UPDATE messages SET status = 'sent', provider = ?, sent_at = ?, updated_at = ? "
        "WHERE id = ?",
        [provider, now, now, message.id],
    )
    add_event(
        db,
        message.id,
        "sent",
        now,
        provider=provider,
        detail="sent in the answer to an inbound message",
    )
    return message.id
