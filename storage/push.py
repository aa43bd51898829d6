"""Push tokens and notifications: registering and invalidating device tokens, and the rows
behind one push to many tokens or to a topic.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`), so a notification, its tokens and all of its messages are
one commit, and a dead token and the cancellations it causes are another.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.messages import NewMessage, cancel_message, cancel_queued_to, insert_message
from storage.models import Message, Notification, PushToken, Subscriber

# A push message's recipient for a topic: this prefix and the topic's name.
TOPIC_PREFIX = "topic:"


@dataclass(frozen=True, slots=True)
class InvalidatedToken:
    """What marking a token dead did."""

    token_id: int
    cancelled_message_ids: tuple[int, ...]
    # False when it was already marked invalid (a second failure in flight at the same time).
    changed: bool


@dataclass(frozen=True, slots=True)
class NotificationSummary:
    """A notification with how many of its messages are in each state."""

    notification: Notification
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class NewPush:
    """One push to write down: its content, and what each message gets in common."""

    title: str | None
    body: str
    data: Mapping[str, str] | None
    kind: str
    priority: int
    subscriber_id: int | None = None
    # Prefix of each message's idempotency key (the token id is appended), when given.
    idempotency_prefix: str | None = None


# -- tokens -----------------------------------------------------------------------------------


def register_token(
    db: sqlite_utils.Database,
    token: str,
    now: str,
    *,
    subscriber_id: int | None = None,
    platform: str | None = None,
) -> tuple[PushToken, bool]:
    """Add a device token, or refresh the one already there; (the row, whether it is new).

    Registering is the app saying the token works: a token marked invalid becomes valid again.
    A subscriber or platform given replaces the stored one; None keeps it.
    """
    existing = token_by_value(db, token)
    if existing is None:
        cursor = db.execute(
            "INSERT INTO push_tokens (token, subscriber_id, platform, created_at, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [token, subscriber_id, platform, now, now],
        )
        created = get_token(db, int(cursor.lastrowid or 0))
        assert created is not None
        return created, True
    db.execute(
        "UPDATE push_tokens SET last_seen_at = ?, invalid_at = NULL, invalid_reason = NULL, "
        "subscriber_id = coalesce(?, subscriber_id), platform = coalesce(?, platform) "
        "WHERE id = ?",
        [now, subscriber_id, platform, existing.id],
    )
    updated = get_token(db, existing.id)
    assert updated is not None
    return updated, False


def get_token(db: sqlite_utils.Database, token_id: int) -> PushToken | None:
    rows = list(db.query("SELECT * FROM push_tokens WHERE id = ?", [token_id]))
    return PushToken.from_row(rows[0]) if rows else None


def token_by_value(db: sqlite_utils.Database, token: str) -> PushToken | None:
    rows = list(db.query("SELECT * FROM push_tokens WHERE token = ?", [token]))
    return PushToken.from_row(rows[0]) if rows else None


def invalid_token(db: sqlite_utils.Database, token: str) -> PushToken | None:
    """The token's row when it is marked invalid (FCM said it is dead), else None."""
    rows = list(
        db.query("SELECT * FROM push_tokens WHERE token = ? AND invalid_at IS NOT NULL", [token])
    )
    return PushToken.from_row(rows[0]) if rows else None


def invalidate_token(
    db: sqlite_utils.Database, token: str, now: str, *, reason: str
) -> InvalidatedToken:
    """Mark `token` dead and cancel every push still queued to it; idempotent.

    A token never registered gets a row too, already invalid, so nothing is sent to it again.
    The first failure's time and reason are kept; queued messages are cancelled every time.
    """
    existing = token_by_value(db, token)
    if existing is None:
        cursor = db.execute(
            "INSERT INTO push_tokens (token, created_at, invalid_at, invalid_reason) "
            "VALUES (?, ?, ?, ?)",
            [token, now, now, reason],
        )
        token_id, changed = int(cursor.lastrowid or 0), True
    else:
        cursor = db.execute(
            "UPDATE push_tokens SET invalid_at = ?, invalid_reason = ? "
            "WHERE id = ? AND invalid_at IS NULL",
            [now, reason, existing.id],
        )
        token_id, changed = existing.id, cursor.rowcount > 0
    cancelled = cancel_queued_to(db, "push", token, f"push token is invalid: {reason}", now)
    return InvalidatedToken(token_id, tuple(cancelled), changed)


def delete_token(
    db: sqlite_utils.Database, token_id: int, now: str
) -> tuple[PushToken, tuple[int, ...]] | None:
    """Remove a token and cancel the pushes still queued to it; None when there is no such id."""
    token = get_token(db, token_id)
    if token is None:
        return None
    cancelled = cancel_queued_to(db, "push", token.token, "push token deleted", now)
    db.execute("DELETE FROM push_tokens WHERE id = ?", [token_id])
    return token, tuple(cancelled)


def list_tokens(
    db: sqlite_utils.Database,
    *,
    subscriber_id: int | None = None,
    valid: bool | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[PushToken]:
    """Newest first, `limit` at a time; page on with the last id as `before_id`."""
    clauses: list[str] = []
    params: list[Any] = []
    if subscriber_id is not None:
        clauses.append("subscriber_id = ?")
        params.append(subscriber_id)
    if valid is not None:
        clauses.append("invalid_at IS NULL" if valid else "invalid_at IS NOT NULL")
    if before_id is not None:
        clauses.append("id < ?")
        params.append(before_id)
    sql = "SELECT * FROM push_tokens"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [PushToken.from_row(row) for row in db.query(sql, params)]


# -- subscribers ------------------------------------------------------------------------------


def get_subscriber(db: sqlite_utils.Database, subscriber_id: int) -> Subscriber | None:
    rows = list(db.query("SELECT * FROM subscribers WHERE id = ?", [subscriber_id]))
    return Subscriber.from_row(rows[0]) if rows else None


def valid_tokens_of(db: sqlite_utils.Database, subscriber_id: int) -> list[PushToken]:
    """A subscriber's tokens that may be sent to, oldest first."""
    rows = db.query(
        "SELECT * FROM push_tokens WHERE subscriber_id = ? AND invalid_at IS NULL ORDER BY id",
        [subscriber_id],
    )
    return [PushToken.from_row(row) for row in rows]


# -- notifications ----------------------------------------------------------------------------


def push_to_tokens(
    db: sqlite_utils.Database, tokens: Sequence[str], push: NewPush, now: str
) -> tuple[Notification, list[Message]]:
    """One notification and one queued message per token, in the caller's transaction.

    Tokens not seen before are stored (as the SMS backend stored them). A token marked
    invalid gets its message too, cancelled at once with the reason, so the notification
    shows every token's outcome; registering the token again is what makes it valid.
    """
    notification = _insert_notification(db, "tokens", None, push, now)
    db.conn.executemany(
        "INSERT INTO push_tokens (token, created_at) VALUES (?, ?) ON CONFLICT (token) DO NOTHING",
        [(token, now) for token in tokens],
    )
    known = _tokens_by_value(db, tokens)
    messages: list[Message] = []
    for token in tokens:
        row = known[token]
        key = f"{push.idempotency_prefix}:{row.id}" if push.idempotency_prefix else None
        message, _ = insert_message(db, _new_message(token, push, notification.id, key), now)
        if row.invalid_at is not None:
            message = cancel_message(
                db, message.id, f"push token is invalid: {row.invalid_reason or 'dead'}", now
            )
        messages.append(message)
    return notification, messages


def push_to_topic(
    db: sqlite_utils.Database, topic: str, push: NewPush, now: str
) -> tuple[Notification, Message]:
    """One notification and its one queued message to an FCM topic."""
    notification = _insert_notification(db, "topic", topic, push, now)
    key = f"{push.idempotency_prefix}:topic" if push.idempotency_prefix else None
    new = _new_message(TOPIC_PREFIX + topic, push, notification.id, key)
    message, _ = insert_message(db, new, now)
    return notification, message


def messages_by_key(db: sqlite_utils.Database, prefix: str) -> list[Message]:
    """The messages whose idempotency key starts with `prefix:` (an earlier identical push)."""
    rows = db.query(
        "SELECT * FROM messages WHERE idempotency_key >= ? AND idempotency_key < ? ORDER BY id",
        [f"{prefix}:", f"{prefix};"],  # ";" sorts right after ":"
    )
    return [Message.from_row(row) for row in rows]


def get_notification(db: sqlite_utils.Database, notification_id: int) -> Notification | None:
    rows = list(db.query("SELECT * FROM notifications WHERE id = ?", [notification_id]))
    return Notification.from_row(rows[0]) if rows else None


def notification_messages(db: sqlite_utils.Database, notification_id: int) -> list[Message]:
    """A notification's messages (one per token, or the topic's one), in the order written."""
    rows = db.query(
        "SELECT * FROM messages WHERE notification_id = ? ORDER BY id", [notification_id]
    )
    return [Message.from_row(row) for row in rows]


def notification_counts(
    db: sqlite_utils.Database, notification_ids: Iterable[int]
) -> dict[int, dict[str, int]]:
    """How many messages of each notification are in each state."""
    ids = sorted(set(notification_ids))
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        "SELECT notification_id, status, count(*) FROM messages "  # noqa: S608 -- only "?" marks
        f"WHERE notification_id IN ({marks}) GROUP BY notification_id, status",
        ids,
    ).fetchall()
    counts: dict[int, dict[str, int]] = {notification_id: {} for notification_id in ids}
    for notification_id, status, count in rows:
        counts[notification_id][status] = count
    return counts


def list_notifications(
    db: sqlite_utils.Database, *, limit: int = 50, before_id: int | None = None
) -> list[NotificationSummary]:
    """Newest first, with each one's message counts by state; page on with `before_id`."""
    sql = "SELECT * FROM notifications"
    params: list[Any] = []
    if before_id is not None:
        sql += " WHERE id < ?"
        params.append(before_id)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    notifications = [Notification.from_row(row) for row in db.query(sql, params)]
    counts = notification_counts(db, (n.id for n in notifications))
    return [NotificationSummary(n, counts.get(n.id, {})) for n in notifications]


def notification_data(
    db: sqlite_utils.Database, notification_ids: Iterable[int]
) -> dict[int, dict[str, str]]:
    """The data payload of each notification that has one, for the dispatcher (one query)."""
    ids = sorted(set(notification_ids))
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"SELECT id, data FROM notifications WHERE id IN ({marks}) "  # noqa: S608 -- "?" only
        "AND data IS NOT NULL",
        ids,
    ).fetchall()
    found: dict[int, dict[str, str]] = {}
    for notification_id, data in rows:
        value = json.loads(data)
        if isinstance(value, dict) and value:
            found[notification_id] = {str(k): str(v) for k, v in value.items()}
    return found


def _insert_notification(
    db: sqlite_utils.Database, target: str, topic: str | None, push: NewPush, now: str
) -> Notification:
    data = json.dumps(dict(push.data), ensure_ascii=False, sort_keys=True) if push.data else None
    cursor = db.execute(
        "INSERT INTO notifications (target, topic, title, body, data, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [target, topic, push.title, push.body, data, now],
    )
    notification = get_notification(db, int(cursor.lastrowid or 0))
    assert notification is not None
    return notification


def _tokens_by_value(db: sqlite_utils.Database, tokens: Sequence[str]) -> dict[str, PushToken]:
    found: dict[str, PushToken] = {}
    # SQLite allows 32766 parameters a statement; stay well under it.
    for start in range(0, len(tokens), 500):
        chunk = list(tokens[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows = db.query(
            f"SELECT * FROM push_tokens WHERE token IN ({marks})",  # noqa: S608 -- "?" only
            chunk,
        )
        for row in rows:
            token = PushToken.from_row(row)
            found[token.token] = token
    return found


def _new_message(
    recipient: str, push: NewPush, notification_id: int, key: str | None
) -> NewMessage:
    return NewMessage(
        channel="push",
        recipient=recipient,
        body=push.body,
        kind=push.kind,
        priority=push.priority,
        subject=push.title,
        idempotency_key=key,
        subscriber_id=push.subscriber_id,
        notification_id=notification_id,
    )
