"""Push tokens and notifications in storage: one row per token, dead tokens kept dead until
they register again, a notification and its per-token messages in one transaction."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from storage.database import Database
from storage.messages import (
    PRIORITY,
    NewMessage,
    claim_due,
    get_events,
    get_message,
    insert_message,
)
from storage.models import Message
from storage.push import (
    NewPush,
    delete_token,
    invalid_token,
    invalidate_token,
    list_notifications,
    list_tokens,
    messages_by_key,
    notification_data,
    notification_messages,
    push_to_tokens,
    push_to_topic,
    register_token,
    token_by_value,
    valid_tokens_of,
)
from tests.storage import factories as f

NOW = f.NOW
LATER = f.LATER
TOKEN = "fcm-token-0001"
OTHER = "fcm-token-0002"


def new_push(**over: object) -> NewPush:
    fields: dict[str, object] = {
        "title": "Fresh bread",
        "body": "Bags are in",
        "data": {"store": "12"},
        "kind": "manual",
        "priority": PRIORITY["manual"],
    }
    fields.update(over)
    return NewPush(**fields)  # type: ignore[arg-type]


def queue_push(db: sqlite_utils.Database, token: str, *, channel: str = "push") -> Message:
    message, _ = insert_message(
        db,
        NewMessage(
            channel=channel, recipient=token, body="hi", kind="alert", priority=PRIORITY["alert"]
        ),
        NOW,
    )
    return message


def test_registering_twice_is_one_row(sync_db: sqlite_utils.Database) -> None:
    first, created = register_token(sync_db, TOKEN, NOW, platform="android")
    again, created_again = register_token(sync_db, TOKEN, LATER)
    assert created and not created_again
    assert again.id == first.id
    assert sync_db.execute("SELECT count(*) FROM push_tokens").fetchone()[0] == 1
    assert again.platform == "android"  # None keeps what was there
    assert again.created_at == first.created_at
    assert again.last_seen_at is not None and again.last_seen_at > first.created_at


def test_a_subscriber_can_claim_a_token_later(sync_db: sqlite_utils.Database) -> None:
    subscriber_id = f.insert(sync_db, "subscribers", f.subscriber())
    register_token(sync_db, TOKEN, NOW)
    row, _ = register_token(sync_db, TOKEN, LATER, subscriber_id=subscriber_id)
    assert row.subscriber_id == subscriber_id
    assert [t.token for t in valid_tokens_of(sync_db, subscriber_id)] == [TOKEN]


def test_a_dead_token_is_marked_and_its_queue_cancelled(sync_db: sqlite_utils.Database) -> None:
    register_token(sync_db, TOKEN, NOW)
    doomed = queue_push(sync_db, TOKEN)
    other_token = queue_push(sync_db, OTHER)
    same_text_sms = queue_push(sync_db, TOKEN, channel="sms")
    in_flight = queue_push(sync_db, TOKEN)
    claim_due(sync_db, NOW, LATER, 100)  # everything is "sending" now
    sync_db.execute("UPDATE messages SET status = 'queued' WHERE id != ?", [in_flight.id])

    result = invalidate_token(sync_db, TOKEN, LATER, reason="fcm: UNREGISTERED")

    assert result.changed and result.cancelled_message_ids == (doomed.id,)
    dead = invalid_token(sync_db, TOKEN)
    assert dead is not None
    assert dead.invalid_reason == "fcm: UNREGISTERED"
    assert dead.invalid_at is not None and dead.invalid_at.isoformat().startswith("2026-01-01")
    cancelled = get_message(sync_db, doomed.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert "invalid" in (cancelled.last_error or "")
    assert get_events(sync_db, doomed.id)[-1].state == "cancelled"
    for untouched in (other_token, same_text_sms):
        row = get_message(sync_db, untouched.id)
        assert row is not None and row.status == "queued"
    still = get_message(sync_db, in_flight.id)
    assert still is not None and still.status == "sending"


def test_invalidating_again_keeps_the_first_reason(sync_db: sqlite_utils.Database) -> None:
    register_token(sync_db, TOKEN, NOW)
    invalidate_token(sync_db, TOKEN, NOW, reason="first")
    again = invalidate_token(sync_db, TOKEN, LATER, reason="second")
    assert not again.changed
    dead = invalid_token(sync_db, TOKEN)
    assert dead is not None and dead.invalid_reason == "first"


def test_an_unknown_dead_token_is_remembered_as_dead(sync_db: sqlite_utils.Database) -> None:
    result = invalidate_token(sync_db, "never-registered", NOW, reason="fcm: UNREGISTERED")
    assert result.changed
    assert invalid_token(sync_db, "never-registered") is not None


def test_registering_a_dead_token_again_makes_it_valid(sync_db: sqlite_utils.Database) -> None:
    register_token(sync_db, TOKEN, NOW)
    invalidate_token(sync_db, TOKEN, NOW, reason="fcm: UNREGISTERED")
    row, created = register_token(sync_db, TOKEN, LATER)
    assert not created
    assert row.invalid_at is None and row.invalid_reason is None
    assert invalid_token(sync_db, TOKEN) is None


def test_a_push_to_tokens_is_one_notification_and_one_message_each(
    sync_db: sqlite_utils.Database,
) -> None:
    register_token(sync_db, OTHER, NOW)
    invalidate_token(sync_db, OTHER, NOW, reason="fcm: UNREGISTERED")
    notification, messages = push_to_tokens(sync_db, [TOKEN, OTHER, "third"], new_push(), NOW)
    assert notification.target == "tokens" and notification.topic is None
    assert notification.data == {"store": "12"}
    assert [m.recipient for m in messages] == [TOKEN, OTHER, "third"]
    assert {m.notification_id for m in messages} == {notification.id}
    assert all(m.channel == "push" and m.subject == "Fresh bread" for m in messages)
    # The dead one is written down and cancelled at once: its outcome shows, nothing is sent.
    assert [m.status for m in messages] == ["queued", "cancelled", "queued"]
    assert "invalid" in (messages[1].last_error or "")
    # Tokens never seen before are stored, as the FCM backend stored them.
    stored = token_by_value(sync_db, "third")
    assert stored is not None and stored.invalid_at is None
    assert notification_messages(sync_db, notification.id) == messages


def test_a_push_to_tokens_is_all_or_nothing(sync_db: sqlite_utils.Database) -> None:
    register_token(sync_db, TOKEN, NOW)
    sync_db.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError):
        # kind "bogus" breaks the CHECK on the messages, after the notification is written
        push_to_tokens(sync_db, [TOKEN, OTHER], new_push(kind="bogus"), NOW)
    sync_db.execute("ROLLBACK")
    assert sync_db.execute("SELECT count(*) FROM notifications").fetchone()[0] == 0
    assert sync_db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_a_topic_push_is_one_message_to_the_topic(sync_db: sqlite_utils.Database) -> None:
    notification, message = push_to_topic(sync_db, "news", new_push(data=None), NOW)
    assert notification.target == "topic" and notification.topic == "news"
    assert notification.data is None
    assert message.recipient == "topic:news" and message.notification_id == notification.id


def test_notification_data_reads_many_at_once(sync_db: sqlite_utils.Database) -> None:
    with_data, _ = push_to_topic(sync_db, "a", new_push(data={"k": "v", "n": "1"}), NOW)
    without, _ = push_to_topic(sync_db, "b", new_push(data=None), NOW)
    assert notification_data(sync_db, [with_data.id, without.id, 999]) == {
        with_data.id: {"k": "v", "n": "1"}
    }
    assert notification_data(sync_db, []) == {}


def test_list_notifications_counts_messages_by_state(sync_db: sqlite_utils.Database) -> None:
    register_token(sync_db, OTHER, NOW)
    invalidate_token(sync_db, OTHER, NOW, reason="dead")
    first, _ = push_to_tokens(sync_db, [TOKEN, OTHER], new_push(), NOW)
    second, _ = push_to_topic(sync_db, "news", new_push(), NOW)
    page = list_notifications(sync_db, limit=1)
    assert [s.notification.id for s in page] == [second.id]
    older = list_notifications(sync_db, limit=5, before_id=second.id)
    assert [s.notification.id for s in older] == [first.id]
    assert dict(older[0].counts) == {"queued": 1, "cancelled": 1}
    assert older[0].total == 2


def test_tokens_list_filters_and_delete_cancels(sync_db: sqlite_utils.Database) -> None:
    subscriber_id = f.insert(sync_db, "subscribers", f.subscriber())
    mine, _ = register_token(sync_db, TOKEN, NOW, subscriber_id=subscriber_id)
    register_token(sync_db, OTHER, NOW)
    invalidate_token(sync_db, OTHER, NOW, reason="dead")
    assert [t.token for t in list_tokens(sync_db, valid=True)] == [TOKEN]
    assert [t.token for t in list_tokens(sync_db, valid=False)] == [OTHER]
    assert [t.token for t in list_tokens(sync_db, subscriber_id=subscriber_id)] == [TOKEN]
    assert [t.token for t in list_tokens(sync_db, limit=1)] == [OTHER]
    queued = queue_push(sync_db, TOKEN)
    deleted = delete_token(sync_db, mine.id, LATER)
    assert deleted is not None and deleted[1] == (queued.id,)
    assert token_by_value(sync_db, TOKEN) is None
    assert delete_token(sync_db, mine.id, LATER) is None


def test_idempotent_pushes_find_their_messages(sync_db: sqlite_utils.Database) -> None:
    push_to_tokens(sync_db, [TOKEN], new_push(idempotency_prefix="push:edge-1"), NOW)
    push_to_tokens(sync_db, [OTHER], new_push(idempotency_prefix="push:edge-10"), NOW)
    found = messages_by_key(sync_db, "push:edge-1")
    assert [m.recipient for m in found] == [TOKEN]


async def test_the_database_thread_writes_a_push_in_one_commit(database: Database) -> None:
    notification, messages = await database.write(
        lambda conn: push_to_tokens(conn, [f"t{n}" for n in range(1000)], new_push(), NOW)
    )
    assert len(messages) == 1000
    count = await database.execute(
        lambda conn: conn.execute(
            "SELECT count(*) FROM messages WHERE notification_id = ?", [notification.id]
        ).fetchone()[0]
    )
    assert count == 1000
