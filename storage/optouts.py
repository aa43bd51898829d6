"""Opt-outs: one flag per phone number, `subscribers.opted_out_at`, set by STOP, cleared by START.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`), so an opt-out and the cancellations it causes are one commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlite_utils

from storage.messages import cancel_queued_to

# The shape the subscribers.phone CHECK accepts. Normalising (national formats, spaces) is the
# daemon's work with phonenumbers; storage only refuses what the schema would refuse anyway,
# with a clearer message than "CHECK constraint failed".
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclass(frozen=True, slots=True)
class OptOutResult:
    """What an opt-out did: whose row, which queued messages it cancelled, whether it was new."""

    subscriber_id: int
    cancelled_message_ids: tuple[int, ...]
    # False when the number was already opted out (a repeated STOP).
    changed: bool


def is_e164(phone: str) -> bool:
    """True when `phone` has the shape +<country><number> that subscribers.phone stores."""
    return _E164.fullmatch(phone) is not None


def subscriber_id_for(db: sqlite_utils.Database, phone: str) -> int | None:
    """The id of the subscriber (or contact) with this phone number, or None."""
    row = db.execute("SELECT id FROM subscribers WHERE phone = ?", [phone]).fetchone()
    return int(row[0]) if row else None


def is_opted_out(db: sqlite_utils.Database, phone: str) -> bool:
    """True when this number asked for no more messages (an unknown number has not)."""
    row = db.execute(
        "SELECT 1 FROM subscribers WHERE phone = ? AND opted_out_at IS NOT NULL", [phone]
    ).fetchone()
    return row is not None


def opt_out(db: sqlite_utils.Database, phone: str, now: str, *, reason: str) -> OptOutResult:
    """Mark `phone` opted out and cancel every SMS still queued to it; idempotent.

    An unknown number gets a subscribers row with no channels: it is a contact who must not be
    messaged, not an alert subscriber. The first opt-out time is kept on a repeated STOP, but
    queued messages are cancelled every time, in case one was enqueued since. `reason` becomes
    each cancelled message's last_error and event detail.
    Raises ValueError when `phone` is not in E.164 form.
    """
    if not is_e164(phone):
        raise ValueError(f"{phone!r} is not an E.164 number (+<country><number>)")
    subscriber_id = subscriber_id_for(db, phone)
    if subscriber_id is None:
        cursor = db.execute(
            "INSERT INTO subscribers (phone, channels, opted_out_at, created_at, updated_at) "
            "VALUES (?, '[]', ?, ?, ?)",
            [phone, now, now, now],
        )
        subscriber_id = int(cursor.lastrowid or 0)
        changed = True
    else:
        cursor = db.execute(
            "UPDATE subscribers SET opted_out_at = ?, updated_at = ? "
            "WHERE id = ? AND opted_out_at IS NULL",
            [now, now, subscriber_id],
        )
        changed = cursor.rowcount > 0
    cancelled = cancel_queued_to(db, "sms", phone, reason, now)
    return OptOutResult(
        subscriber_id=subscriber_id, cancelled_message_ids=tuple(cancelled), changed=changed
    )


def opt_in(db: sqlite_utils.Database, phone: str, now: str) -> bool:
    """Clear the opt-out of `phone`; True when it was opted out, False otherwise (idempotent).

    Cancelled messages stay cancelled: what was meant for the time before is not sent late.
    """
    cursor = db.execute(
        "UPDATE subscribers SET opted_out_at = NULL, updated_at = ? "
        "WHERE phone = ? AND opted_out_at IS NOT NULL",
        [now, phone],
    )
    return cursor.rowcount > 0
