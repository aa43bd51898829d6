"""Reservations by reply: the alerts that offered "reply R", and the orders they became.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`). A row moves offered -> reserving -> reserved | failed, and
reserved -> cancelled; `claim` is the one step from offered (or failed) to reserving, so two
replies to one alert cannot both reach TGTG.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from storage.models import Reservation


@dataclass(frozen=True, slots=True)
class Offer:
    """What an alert offered: one bag of `item_id`, until `pickup_end` (UTC ISO text)."""

    subscriber_id: int
    item_id: str
    item_name: str
    alert_key: str
    pickup_end: str | None


def offer(db: sqlite_utils.Database, offered: Offer, now: str) -> None:
    """Write the offer down; the same alert again (a retried enqueue) changes nothing."""
    db.execute(
        "INSERT INTO reservations (subscriber_id, item_id, item_name, alert_key, pickup_end, "
        "offered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_key) DO NOTHING",
        [
            offered.subscriber_id,
            offered.item_id,
            offered.item_name,
            offered.alert_key,
            offered.pickup_end,
            now,
            now,
        ],
    )


def get(db: sqlite_utils.Database, reservation_id: int) -> Reservation | None:
    rows = list(db.query("SELECT * FROM reservations WHERE id = ?", [reservation_id]))
    return Reservation.from_row(rows[0]) if rows else None


def latest_offer(db: sqlite_utils.Database, subscriber_id: int) -> Reservation | None:
    """The subscriber's newest alert that offered a reservation, whatever became of it."""
    rows = list(
        db.query(
            "SELECT * FROM reservations WHERE subscriber_id = ? ORDER BY offered_at DESC, id DESC "
            "LIMIT 1",
            [subscriber_id],
        )
    )
    return Reservation.from_row(rows[0]) if rows else None


def latest_reserved(db: sqlite_utils.Database, subscriber_id: int) -> Reservation | None:
    """The subscriber's newest reservation TGTG made and nobody cancelled."""
    rows = list(
        db.query(
            # reserved_at is set on a reserved row; saying so lets the (subscriber_id,
            # reserved_at) index serve the order instead of a sort of every offer.
            "SELECT * FROM reservations WHERE subscriber_id = ? AND state = 'reserved' "
            "AND reserved_at IS NOT NULL ORDER BY reserved_at DESC, id DESC LIMIT 1",
            [subscriber_id],
        )
    )
    return Reservation.from_row(rows[0]) if rows else None


def reserved_since(db: sqlite_utils.Database, subscriber_id: int, since: str) -> int:
    """How many reservations TGTG made for the subscriber since `since` (cancelled ones too:
    the limit counts what reached TGTG, so reserve-and-cancel cannot go round it)."""
    row = db.execute(
        "SELECT count(*) FROM reservations WHERE subscriber_id = ? AND reserved_at >= ?",
        [subscriber_id, since],
    ).fetchone()
    return int(row[0])


def claim(db: sqlite_utils.Database, reservation_id: int, now: str) -> bool:
    """offered (or failed: TGTG said no before, the subscriber tries again) -> reserving;
    False when another reply got there first or the order exists."""
    cursor = db.execute(
        "UPDATE reservations SET state = 'reserving', detail = NULL, updated_at = ? "
        "WHERE id = ? AND state IN ('offered', 'failed')",
        [now, reservation_id],
    )
    return cursor.rowcount == 1


def reserved(
    db: sqlite_utils.Database, reservation_id: int, order_id: str, hold_until: str, now: str
) -> None:
    db.execute(
        "UPDATE reservations SET state = 'reserved', order_id = ?, reserved_at = ?, "
        "hold_until = ?, detail = NULL, updated_at = ? WHERE id = ?",
        [order_id, now, hold_until, now, reservation_id],
    )


def failed(db: sqlite_utils.Database, reservation_id: int, detail: str, now: str) -> None:
    db.execute(
        "UPDATE reservations SET state = 'failed', detail = ?, updated_at = ? WHERE id = ?",
        [detail, now, reservation_id],
    )


def cancelled(db: sqlite_utils.Database, reservation_id: int, detail: str | None, now: str) -> None:
    """The order is given up (by "C", or TGTG had already let it go: `detail` says which)."""
    db.execute(
        "UPDATE reservations SET state = 'cancelled', cancelled_at = ?, detail = ?, "
        "updated_at = ? WHERE id = ? AND state = 'reserved'",
        [now, detail, now, reservation_id],
    )
