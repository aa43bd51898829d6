"""Retention: delete old, finished rows in bounded batches, one short transaction each.

Each function deletes at most `limit` rows of its table (plus their child rows) older than
`before` and returns the counts, so the caller loops until a batch comes back short and the
database thread is never held for long. Nothing in progress is touched: messages only in a
final state, job runs only once finished, owner alerts only once cleared. OTP codes are not
here: the otp-sweep job deletes them as soon as they are dead and out of the send-limit window.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

# A message reaches one of these and never moves again (only a hand retry starts it anew).
FINAL_STATES = ("sent", "delivered", "undelivered", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Deleted:
    """Rows one batch deleted, by table."""

    counts: dict[str, int]

    @property
    def primary(self) -> int:
        """Rows of the batch's own table (the one its limit applies to)."""
        return next(iter(self.counts.values()), 0)


def delete_old_messages(db: sqlite_utils.Database, before: str, limit: int) -> Deleted:
    """Up to `limit` final messages created and last changed before `before`, with their
    events and parts; OTP codes pointing at them keep their row (the link is emptied)."""
    placeholders = ", ".join("?" for _ in FINAL_STATES)
    # Oldest first on the created_at index: left to itself, the planner reads every final
    # message by status and sorts them all for one batch.
    ids = [
        row[0]
        for row in db.execute(
            "SELECT id FROM messages INDEXED BY idx_messages_created_at "  # noqa: S608
            "WHERE created_at < ? AND updated_at < ? "
            f"AND status IN ({placeholders}) ORDER BY created_at, id LIMIT ?",
            [before, before, *FINAL_STATES, limit],
        ).fetchall()
    ]
    if not ids:
        return Deleted({"messages": 0, "message_events": 0, "message_parts": 0})
    chosen = ", ".join("?" for _ in ids)
    # Children first and by hand, rather than by ON DELETE CASCADE, so the counts are known.
    events = db.execute(
        f"DELETE FROM message_events WHERE message_id IN ({chosen})",  # noqa: S608
        ids,
    ).rowcount
    parts = db.execute(
        f"DELETE FROM message_parts WHERE message_id IN ({chosen})",  # noqa: S608
        ids,
    ).rowcount
    messages = db.execute(
        f"DELETE FROM messages WHERE id IN ({chosen})",  # noqa: S608
        ids,
    ).rowcount
    return Deleted({"messages": messages, "message_events": events, "message_parts": parts})


def delete_old_notifications(db: sqlite_utils.Database, before: str, limit: int) -> Deleted:
    """Up to `limit` notifications made before `before` that no message refers to any more."""
    cursor = db.execute(
        "DELETE FROM notifications WHERE id IN (SELECT n.id FROM notifications n "
        "WHERE n.created_at < ? AND NOT EXISTS "
        "(SELECT 1 FROM messages m WHERE m.notification_id = n.id) LIMIT ?)",
        [before, limit],
    )
    return Deleted({"notifications": cursor.rowcount})


def delete_old_inbound(db: sqlite_utils.Database, before: str, limit: int) -> Deleted:
    """Up to `limit` inbound messages received before `before`."""
    cursor = db.execute(
        "DELETE FROM inbound_messages WHERE id IN "
        "(SELECT id FROM inbound_messages WHERE received_at < ? ORDER BY received_at LIMIT ?)",
        [before, limit],
    )
    return Deleted({"inbound_messages": cursor.rowcount})


def delete_old_job_runs(db: sqlite_utils.Database, before: str, limit: int) -> Deleted:
    """Up to `limit` finished job runs started before `before`."""
    cursor = db.execute(
        "DELETE FROM job_runs WHERE id IN (SELECT id FROM job_runs "
        "WHERE started_at < ? AND outcome <> 'running' ORDER BY started_at LIMIT ?)",
        [before, limit],
    )
    return Deleted({"job_runs": cursor.rowcount})


def delete_old_owner_alerts(db: sqlite_utils.Database, before: str, limit: int) -> Deleted:
    """Up to `limit` owner alerts cleared before `before` (open ones always stay)."""
    cursor = db.execute(
        "DELETE FROM owner_alerts WHERE id IN (SELECT id FROM owner_alerts "
        "WHERE cleared_at IS NOT NULL AND cleared_at < ? ORDER BY cleared_at LIMIT ?)",
        [before, limit],
    )
    return Deleted({"owner_alerts": cursor.rowcount})


# In the order they run: messages before notifications, which must have lost their messages.
STEPS = (
    delete_old_messages,
    delete_old_notifications,
    delete_old_inbound,
    delete_old_job_runs,
    delete_old_owner_alerts,
)
