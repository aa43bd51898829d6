"""The outbox's rows: enqueue, claim, record outcomes, recover after a crash, list and inspect.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`), so a state change and its `message_events` row are one commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.models import Message, MessageEvent

# Lower runs first: codes people are waiting for, then alerts, then the rest.
PRIORITY = {"otp": 0, "alert": 10, "reply": 15, "manual": 20, "system": 25, "report": 30}
FINAL_STATES = frozenset({"delivered", "undelivered", "failed", "cancelled"})
# A message in these states may be sent again by hand (`retry`).
RETRYABLE_STATES = frozenset({"failed", "undelivered", "cancelled"})


class StateError(Exception):
    """The message is not in a state that allows the change; the message says which it is in."""


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different message."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to write down before anything is sent."""

    channel: str
    recipient: str
    body: str
    kind: str
    priority: int
    subject: str | None = None
    idempotency_key: str | None = None
    subscriber_id: int | None = None
    notification_id: int | None = None
    encoding: str | None = None
    segments: int | None = None
    validity_seconds: int | None = None
    due_at: str | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """The provider took the message."""

    message_id: int
    provider: str
    provider_message_id: str | None
    segments: int | None = None
    delivered: bool = False
    detail: str = ""
    # Per-segment references (a modem's TP-MR), kept for matching delivery reports.
    parts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again at `due_at`, at `chain_position` with `provider_attempts` already made there."""

    message_id: int
    provider: str | None
    error: str
    code: str | None
    due_at: str
    chain_position: int
    provider_attempts: int


@dataclass(frozen=True, slots=True)
class Failed:
    """No more tries: a recipient error, or every provider exhausted."""

    message_id: int
    provider: str | None
    error: str
    code: str | None = None


Outcome = Sent | Retry | Failed


def add_event(
    db: sqlite_utils.Database,
    message_id: int,
    state: str,
    at: str,
    *,
    provider: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one row to the message's history."""
    db.execute(
        "INSERT INTO message_events (message_id, at, state, provider, detail) "
        "VALUES (?, ?, ?, ?, ?)",
        [message_id, at, state, provider, detail],
    )


def insert_message(db: sqlite_utils.Database, new: NewMessage, now: str) -> tuple[Message, bool]:
    """Write `new` as queued; with an idempotency key seen before, return that message instead.

    Returns the message and whether it was created now.
    """
    if new.idempotency_key is not None:
        existing = by_idempotency_key(db, new.idempotency_key)
        if existing is not None:
            same = (existing.channel, existing.recipient, existing.body) == (
                new.channel,
                new.recipient,
                new.body,
            )
            if not same:
                raise IdempotencyConflict(
                    f"idempotency key {new.idempotency_key!r} was already used for message "
                    f"{existing.id}, with a different recipient or text"
                )
            return existing, False
    cursor = db.execute(
        "INSERT INTO messages (channel, recipient, subject, body, kind, priority, status, "
        "idempotency_key, subscriber_id, notification_id, encoding, segments, "
        "validity_seconds, created_at, due_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            new.channel,
            new.recipient,
            new.subject,
            new.body,
            new.kind,
            new.priority,
            new.idempotency_key,
            new.subscriber_id,
            new.notification_id,
            new.encoding,
            new.segments,
            new.validity_seconds,
            now,
            new.due_at or now,
            now,
        ],
    )
    message_id = int(cursor.lastrowid or 0)
    add_event(db, message_id, "queued", now, detail="enqueued")
    message = get_message(db, message_id)
    assert message is not None
    return message, True


def by_idempotency_key(db: sqlite_utils.Database, key: str) -> Message | None:
    """The message queued under idempotency key `key`, if any."""
    rows = list(db.query("SELECT * FROM messages WHERE idempotency_key = ?", [key]))
    return Message.from_row(rows[0]) if rows else None


def get_message(db: sqlite_utils.Database, message_id: int) -> Message | None:
    rows = list(db.query("SELECT * FROM messages WHERE id = ?", [message_id]))
    return Message.from_row(rows[0]) if rows else None


def get_events(db: sqlite_utils.Database, message_id: int) -> list[MessageEvent]:
    rows = db.query("SELECT * FROM message_events WHERE message_id = ? ORDER BY id", [message_id])
    return [MessageEvent.from_row(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Lane:
    """Queued messages of one channel at chain positions `first`..`last` (None: to the end):
    those one provider would take now, so the dispatcher claims no more than it has room for.

    With `channel` None: every message no other lane covers, i.e. of a channel not in
    `besides` or past the end of its chain (`besides` pairs a channel with its chain length).
    """

    channel: str | None
    first: int = 0
    last: int | None = None
    besides: tuple[tuple[str, int], ...] = ()


def _lane_filter(lane: Lane | None) -> tuple[str, list[Any]]:
    """The lane's extra WHERE terms (starting with " AND"), and their parameters."""
    if lane is None:
        return "", []
    if lane.channel is None:
        if not lane.besides:
            return "", []
        covered = " OR ".join("(channel = ? AND chain_position < ?)" for _ in lane.besides)
        params: list[Any] = [value for pair in lane.besides for value in pair]
        return f" AND NOT ({covered})", params
    sql, params = " AND channel = ? AND chain_position >= ?", [lane.channel, lane.first]
    if lane.last is not None:
        sql += " AND chain_position <= ?"
        params.append(lane.last)
    return sql, params


def claim_due(
    db: sqlite_utils.Database, now: str, lease_until: str, limit: int, lane: Lane | None = None
) -> list[Message]:
    """Move up to `limit` due messages (of `lane`, or any) to `sending`, by (priority, due
    time, id)."""
    if limit <= 0:
        return []
    where, params = _lane_filter(lane)
    # Only fixed SQL text and "?" marks are formatted in; the values go as parameters. The
    # index is named: with statistics (after `PRAGMA optimize`) the planner takes the queued
    # rows' partial index and sorts every due message for a claim of a few.
    rows = list(
        db.query(
            "SELECT * FROM messages INDEXED BY idx_messages_status_priority_due_at_id "  # noqa: S608
            f"WHERE status = 'queued' AND due_at <= ?{where} ORDER BY priority, due_at, id LIMIT ?",
            [now, *params, limit],
        )
    )
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    marks = ",".join("?" * len(ids))
    sql = "UPDATE messages SET status = 'sending', lease_until = ?, attempts = attempts + 1, "
    sql += f"updated_at = ? WHERE id IN ({marks})"
    db.execute(sql, [lease_until, now, *ids])
    db.conn.executemany(
        "INSERT INTO message_events (message_id, at, state, provider, detail) "
        "VALUES (?, ?, 'sending', NULL, ?)",
        [(row["id"], now, f"attempt {row['attempts'] + 1}") for row in rows],
    )
    claimed: list[Message] = []
    for row in rows:
        row = dict(row)
        row.update(status="sending", lease_until=lease_until, updated_at=now)
        row["attempts"] += 1
        claimed.append(Message.from_row(row))
    return claimed


def record_outcomes(db: sqlite_utils.Database, outcomes: Sequence[Outcome], now: str) -> int:
    """Write what the providers said, many messages in one commit; returns rows changed.

    Only a message still in `sending` changes, so a late outcome never overrides what came
    after it (a crash recovery, a delivery receipt).
    """
    changed = 0
    for outcome in outcomes:
        if isinstance(outcome, Sent):
            state = "delivered" if outcome.delivered else "sent"
            cursor = db.execute(
                "UPDATE messages SET status = ?, provider = ?, provider_message_id = ?, "
                "segments = coalesce(?, segments), lease_until = NULL, last_error = NULL, "
                "error_code = NULL, sent_at = ?, delivered_at = ?, updated_at = ? "
                "WHERE id = ? AND status = 'sending'",
                [
                    state,
                    outcome.provider,
                    outcome.provider_message_id,
                    outcome.segments,
                    now,
                    now if outcome.delivered else None,
                    now,
                    outcome.message_id,
                ],
            )
            detail = outcome.detail or (
                f"provider id {outcome.provider_message_id}" if outcome.provider_message_id else ""
            )
            if cursor.rowcount and outcome.parts:
                _insert_parts(db, outcome, now)
        elif isinstance(outcome, Retry):
            state = "queued"
            cursor = db.execute(
                "UPDATE messages SET status = 'queued', provider = ?, lease_until = NULL, "
                "last_error = ?, error_code = ?, due_at = ?, chain_position = ?, "
                "provider_attempts = ?, updated_at = ? WHERE id = ? AND status = 'sending'",
                [
                    outcome.provider,
                    outcome.error,
                    outcome.code,
                    outcome.due_at,
                    outcome.chain_position,
                    outcome.provider_attempts,
                    now,
                    outcome.message_id,
                ],
            )
            detail = f"{outcome.error}; next try at {outcome.due_at}"
        else:
            state = "failed"
            cursor = db.execute(
                "UPDATE messages SET status = 'failed', provider = coalesce(?, provider), "
                "lease_until = NULL, last_error = ?, error_code = ?, updated_at = ? "
                "WHERE id = ? AND status = 'sending'",
                [outcome.provider, outcome.error, outcome.code, now, outcome.message_id],
            )
            detail = outcome.error
        if cursor.rowcount:
            changed += 1
            add_event(
                db,
                outcome.message_id,
                state,
                now,
                provider=outcome.provider,
                detail=detail or None,
            )
    return changed


def _insert_parts(db: sqlite_utils.Database, outcome: Sent, now: str) -> None:
    recipient = db.execute(
        "SELECT recipient FROM messages WHERE id = ?", [outcome.message_id]
    ).fetchone()[0]
    db.conn.executemany(
        "INSERT INTO message_parts (message_id, seq, provider, reference, recipient, sent_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (outcome.message_id, seq, outcome.provider, reference, recipient, now)
            for seq, reference in enumerate(outcome.parts, start=1)
        ],
    )


def recover_sending(db: sqlite_utils.Database, now: str, *, expired_before: str | None) -> int:
    """Queue again messages left in `sending` (all of them at start, or those whose lease ran out).

    The provider may have taken such a message before the crash, so the event says a duplicate
    is possible: at-least-once, at most one duplicate per message per crash.
    """
    where = "status = 'sending'"
    params: list[Any] = []
    if expired_before is not None:
        where += " AND lease_until < ?"
        params.append(expired_before)
    ids = [
        row["id"]
        for row in db.query(f"SELECT id FROM messages WHERE {where}", params)  # noqa: S608
    ]
    for message_id in ids:
        db.execute(
            "UPDATE messages SET status = 'queued', lease_until = NULL, due_at = ?, "
            "updated_at = ? WHERE id = ?",
            [now, now, message_id],
        )
        add_event(
            db,
            message_id,
            "queued",
            now,
            detail="interrupted while sending (restart or stall): sent again, "
            "a duplicate is possible",
        )
    return len(ids)


def next_due_at(db: sqlite_utils.Database, after: str | None = None) -> str | None:
    """When the earliest queued message is due (of those due after `after`, when given), or
    None when there is none."""
    if after is None:
        row = db.execute("SELECT min(due_at) FROM messages WHERE status = 'queued'").fetchone()
    else:
        row = db.execute(
            "SELECT min(due_at) FROM messages WHERE status = 'queued' AND due_at > ?", [after]
        ).fetchone()
    return row[0] if row else None


def cancel_message(db: sqlite_utils.Database, message_id: int, reason: str, now: str) -> Message:
    """Cancel a queued message; any other state is refused with StateError."""
    message = _require(db, message_id)
    if message.status != "queued":
        raise StateError(
            f"message {message_id} is {message.status}; only a queued message can be cancelled"
        )
    db.execute(
        "UPDATE messages SET status = 'cancelled', last_error = ?, updated_at = ? WHERE id = ?",
        [reason, now, message_id],
    )
    add_event(db, message_id, "cancelled", now, detail=reason)
    return _require(db, message_id)


def retry_message(db: sqlite_utils.Database, message_id: int, now: str) -> Message:
    """Queue a failed, undelivered or cancelled message again, from the start of its chain."""
    message = _require(db, message_id)
    if message.status not in RETRYABLE_STATES:
        raise StateError(
            f"message {message_id} is {message.status}; only failed, undelivered or "
            "cancelled messages can be retried"
        )
    db.execute(
        "UPDATE messages SET status = 'queued', due_at = ?, chain_position = 0, "
        "provider_attempts = 0, updated_at = ? WHERE id = ?",
        [now, now, message_id],
    )
    add_event(db, message_id, "queued", now, detail=f"retried by hand after {message.status}")
    return _require(db, message_id)


def cancel_queued_to(
    db: sqlite_utils.Database, channel: str, recipient: str, reason: str, now: str
) -> list[int]:
    """Cancel every queued message to one recipient (they opted out); returns the ids."""
    ids = [
        row["id"]
        for row in db.query(
            "SELECT id FROM messages WHERE status = 'queued' AND channel = ? AND recipient = ?",
            [channel, recipient],
        )
    ]
    for message_id in ids:
        db.execute(
            "UPDATE messages SET status = 'cancelled', last_error = ?, updated_at = ? WHERE id = ?",
            [reason, now, message_id],
        )
        add_event(db, message_id, "cancelled", now, detail=reason)
    return ids


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What `list_messages` narrows by; None means any."""

    status: str | None = None
    channel: str | None = None
    kind: str | None = None
    recipient: str | None = None
    since: str | None = None
    until: str | None = None


def list_messages(
    db: sqlite_utils.Database,
    where: MessageFilter,
    *,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Message]:
    """Newest first, `limit` at a time; page on with the last id as `before_id` (keyset paging).

    `since` and `until` also bound the ids: the page walks ids newest first, and a time filter
    alone would read every message outside the range before the first inside it (a whole
    1,000,000-message log for an `until` far back; issue 20). The bounds are the ids of the
    first and last message in the range, found on the created_at index, and the times are
    checked as well, so no message outside the range is listed. Ids follow creation times; a
    message written while the wall clock was set back (out of order with its id) may fall
    outside the ids found and not be listed.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for column in ("status", "channel", "kind", "recipient"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    lowest, below = None, before_id
    if where.since is not None:
        first = db.execute(
            "SELECT id FROM messages WHERE created_at >= ? ORDER BY created_at, id LIMIT 1",
            [where.since],
        ).fetchone()
        if first is None:
            return []
        clauses.append("created_at >= ?")
        params.append(where.since)
        lowest = int(first[0])
    if where.until is not None:
        last = db.execute(
            "SELECT id FROM messages WHERE created_at < ? "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            [where.until],
        ).fetchone()
        if last is None:
            return []
        clauses.append("created_at < ?")
        params.append(where.until)
        # One upper bound, not two: SQLite walks ids from one of them only.
        below = int(last[0]) + 1 if below is None else min(below, int(last[0]) + 1)
    if lowest is not None:
        clauses.append("id >= ?")
        params.append(lowest)
    if below is not None:
        clauses.append("id < ?")
        params.append(below)
    sql = "SELECT * FROM messages"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [Message.from_row(row) for row in db.query(sql, params)]


def count_by_status(db: sqlite_utils.Database) -> dict[str, int]:
    """How many messages are in each state (for health and the dashboard): read from the
    counts the triggers of migration m018 keep, not counted over the log."""
    rows = db.execute("SELECT status, count FROM message_counts WHERE count > 0").fetchall()
    return {status: count for status, count in rows}


def count_waiting(db: sqlite_utils.Database, channel: str, kind: str | None = None) -> int:
    """Messages of `channel` (and `kind`) queued or being sent: the queue's depth."""
    sql = "SELECT count(*) FROM messages WHERE status IN ('queued', 'sending') AND channel = ?"
    params = [channel]
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    return int(db.execute(sql, params).fetchone()[0])


def sms_segments_since(db: sqlite_utils.Database, since: str) -> int:
    """SMS segments queued since `since` that are or will be paid for: every SMS but the
    cancelled ones and those that failed with no provider taking them."""
    row = db.execute(
        # Named: the planner would otherwise take the (channel, id) index and read every SMS
        # ever sent.
        "SELECT coalesce(sum(segments), 0) FROM messages "
        "INDEXED BY idx_messages_sms_spend_created_at WHERE channel = 'sms' "
        "AND status != 'cancelled' AND NOT (status = 'failed' AND sent_at IS NULL) "
        "AND created_at >= ?",
        [since],
    ).fetchone()
    return int(row[0])


def count_recent_to(
    db: sqlite_utils.Database, channel: str, recipient: str, since: str
) -> tuple[int, str | None]:
    """Messages to one recipient created after `since`, and the oldest of their times.

    After, not at: a limit per minute lets the next message through a minute after the first.
    """
    row = db.execute(
        "SELECT count(*), min(created_at) FROM messages "
        "WHERE recipient = ? AND channel = ? AND created_at > ?",
        [recipient, channel, since],
    ).fetchone()
    return int(row[0]), row[1]


def _require(db: sqlite_utils.Database, message_id: int) -> Message:
    message = get_message(db, message_id)
    if message is None:
        raise LookupError(f"no message {message_id}")
    return message
