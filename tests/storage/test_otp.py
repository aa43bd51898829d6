"""One-time code rows: written, found, tried, used up once, closed, swept; their SMS blanked."""

from __future__ import annotations

import asyncio

import sqlite_utils

from storage.database import Database
from storage.messages import PRIORITY, NewMessage, get_events, get_message, insert_message
from storage.models import parse_time
from storage.otp import (
    REDACTED_BODY,
    close_live_codes,
    consume_code,
    delete_code,
    get_code,
    insert_code,
    latest_code,
    link_message,
    mark_phone_verified,
    record_wrong_attempt,
    sent_since,
    sweep,
)
from tests.storage import factories as f

PHONE = "+447700900123"
OTHER = "+447700900456"
T0 = "2026-01-01T12:00:00.000000+00:00"
T1 = "2026-01-01T12:01:00.000000+00:00"
T5 = "2026-01-01T12:05:00.000000+00:00"
T6 = "2026-01-01T12:06:00.000000+00:00"
T20 = "2026-01-01T12:20:00.000000+00:00"


def new_code(
    db: sqlite_utils.Database,
    *,
    phone: str = PHONE,
    purpose: str = "login",
    now: str = T0,
    expires_at: str = T5,
    body: str | None = "Your code is 482913",
    status: str = "queued",
) -> int:
    code = insert_code(
        db, phone=phone, purpose=purpose, code_hmac="a" * 64, now=now, expires_at=expires_at
    )
    if body is not None:
        message, _ = insert_message(
            db,
            NewMessage(
                channel="sms", recipient=phone, body=body, kind="otp", priority=PRIORITY["otp"]
            ),
            now,
        )
        db.execute("UPDATE messages SET status = ? WHERE id = ?", [status, message.id])
        link_message(db, code.id, message.id)
    return code.id


def message_of(db: sqlite_utils.Database, code_id: int):  # type: ignore[no-untyped-def]
    code = get_code(db, code_id)
    assert code is not None and code.message_id is not None
    message = get_message(db, code.message_id)
    assert message is not None
    return message


def test_insert_and_find_the_latest(sync_db: sqlite_utils.Database) -> None:
    first = new_code(sync_db)
    second = new_code(sync_db, now=T1)
    new_code(sync_db, purpose="signup", now=T1)
    code = latest_code(sync_db, PHONE, "login")
    assert code is not None and code.id == second and code.id != first
    assert (code.attempts, code.sends, code.consumed_at) == (0, 1, None)
    assert code.last_sent_at == code.created_at
    assert latest_code(sync_db, OTHER, "login") is None
    assert latest_code(sync_db, PHONE, "verify-phone") is None


def test_sent_since_counts_every_purpose_of_one_phone(sync_db: sqlite_utils.Database) -> None:
    new_code(sync_db, now=T0)
    new_code(sync_db, purpose="signup", now=T1)
    new_code(sync_db, phone=OTHER, now=T1)
    assert sent_since(sync_db, PHONE, "2026-01-01T11:55:00.000000+00:00") == [T0, T1]
    assert sent_since(sync_db, PHONE, T0) == [T1]  # strictly after


def test_close_live_codes_ends_them_and_cancels_their_unsent_sms(
    sync_db: sqlite_utils.Database,
) -> None:
    queued = new_code(sync_db)
    sent = new_code(sync_db, status="sent")
    other_purpose = new_code(sync_db, purpose="signup")
    closed = close_live_codes(sync_db, PHONE, "login", T1, "replaced by a newer code")
    assert closed == [queued, sent]
    for code_id in closed:
        code = get_code(sync_db, code_id)
        assert code is not None and code.expires_at == parse_time(T1)
    cancelled = message_of(sync_db, queued)
    assert cancelled.status == "cancelled" and cancelled.body == REDACTED_BODY
    events = get_events(sync_db, cancelled.id)
    assert events[-1].detail == "replaced by a newer code"
    assert message_of(sync_db, sent).status == "sent"
    assert message_of(sync_db, other_purpose).status == "queued"
    assert close_live_codes(sync_db, PHONE, "login", T1, "again") == []


def test_wrong_attempts_count_and_the_last_one_closes(sync_db: sqlite_utils.Database) -> None:
    code_id = new_code(sync_db)
    assert record_wrong_attempt(sync_db, code_id, T1, close=False) == 1
    assert record_wrong_attempt(sync_db, code_id, T1, close=True) == 2
    code = get_code(sync_db, code_id)
    assert code is not None and code.expires_at == parse_time(T1)


def test_consume_works_once_and_only_while_live(sync_db: sqlite_utils.Database) -> None:
    code_id = new_code(sync_db, status="sent")
    assert consume_code(sync_db, code_id, T1) is True
    assert consume_code(sync_db, code_id, T1) is False
    code = get_code(sync_db, code_id)
    assert code is not None and code.consumed_at is not None
    # Its SMS, already sent, no longer needs the code in it.
    assert message_of(sync_db, code_id).body == REDACTED_BODY
    expired = new_code(sync_db)
    assert consume_code(sync_db, expired, T5) is False  # at expires_at: too late


def test_mark_phone_verified_only_touches_an_existing_subscriber(
    sync_db: sqlite_utils.Database,
) -> None:
    subscriber = f.insert(sync_db, "subscribers", f.subscriber(phone=PHONE, verified_at=None))
    assert mark_phone_verified(sync_db, PHONE, T1) is True
    row = sync_db.execute(
        "SELECT verified_at FROM subscribers WHERE id = ?", [subscriber]
    ).fetchone()
    assert row[0] == T1
    assert mark_phone_verified(sync_db, OTHER, T1) is False
    assert sync_db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 1


def test_delete_code_forgets_it(sync_db: sqlite_utils.Database) -> None:
    code_id = new_code(sync_db, body=None)
    delete_code(sync_db, code_id)
    assert get_code(sync_db, code_id) is None
    assert sent_since(sync_db, PHONE, "2000-01-01T00:00:00.000000+00:00") == []


def test_sweep(sync_db: sqlite_utils.Database) -> None:
    live = new_code(sync_db, now=T1, expires_at=T6)
    expired_queued = new_code(sync_db, phone=OTHER)
    used = new_code(sync_db, phone="+447700900789", status="delivered")
    consume_code(sync_db, used, T1)
    sent_live = new_code(sync_db, phone="+447700900111", expires_at=T6, status="sent")

    result = sweep(sync_db, T5, forget_before="2026-01-01T11:55:00.000000+00:00")
    assert (result.removed, result.cancelled) == (0, 1)
    assert message_of(sync_db, expired_queued).status == "cancelled"
    assert message_of(sync_db, expired_queued).body == REDACTED_BODY
    assert message_of(sync_db, sent_live).body == REDACTED_BODY  # sent: the provider has it
    assert message_of(sync_db, live).body == "Your code is 482913"  # still to be sent

    later = sweep(sync_db, T20, forget_before="2026-01-01T12:10:00.000000+00:00")
    assert later.removed == 4
    assert later.cancelled == 1  # the last queued one, expired by now
    assert sync_db.execute("SELECT count(*) FROM otp_codes").fetchone()[0] == 0
    assert sync_db.execute("SELECT count(*) FROM messages").fetchone()[0] == 4


def test_sweep_keeps_dead_codes_inside_the_send_window(sync_db: sqlite_utils.Database) -> None:
    new_code(sync_db, now=T0, expires_at=T5)
    result = sweep(sync_db, T6, forget_before="2026-01-01T11:56:00.000000+00:00")
    assert result.removed == 0
    assert sent_since(sync_db, PHONE, "2026-01-01T11:56:00.000000+00:00") == [T0]


async def test_check_and_consume_in_one_write_lets_one_of_many_win(database: Database) -> None:
    code_id = await database.write(new_code)

    async def try_once() -> bool:
        return await database.write(lambda conn: consume_code(conn, code_id, T1))

    results = await asyncio.gather(*(try_once() for _ in range(10)))
    assert results.count(True) == 1


def test_the_sweeps_index_holds_only_the_otp_messages_it_has_still_to_blank(
    sync_db: sqlite_utils.Database,
) -> None:
    # The partial index (m020) spells out the blanked text: it must be the one the sweep writes,
    # or the sweep would read every OTP message again (or miss the ones it should blank).
    [sql] = sync_db.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'idx_messages_otp_not_redacted'"
    ).fetchone()
    assert f"body <> '{REDACTED_BODY}'" in sql
    for n in range(3):
        message, _ = insert_message(
            sync_db,
            NewMessage(
                channel="sms", recipient="+33612345678", body=f"code {n}", kind="otp", priority=0
            ),
            "2026-01-01T12:00:00.000000+00:00",
        )
        sync_db.execute("UPDATE messages SET status = 'sent' WHERE id = ?", [message.id])

    def in_index() -> int:
        return sync_db.execute(
            "SELECT count(*) FROM messages INDEXED BY idx_messages_otp_not_redacted "
            f"WHERE kind = 'otp' AND body <> '{REDACTED_BODY}'"
        ).fetchone()[0]

    assert in_index() == 3
    assert (
        sweep(
            sync_db, "2026-01-01T12:01:00.000000+00:00", "2026-01-01T11:00:00.000000+00:00"
        ).redacted
        == 3
    )
    assert in_index() == 0
    bodies = {row[0] for row in sync_db.execute("SELECT body FROM messages WHERE kind = 'otp'")}
    assert bodies == {REDACTED_BODY}
