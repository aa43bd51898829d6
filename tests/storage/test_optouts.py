"""Opt-outs: one flag on subscribers, queued SMS cancelled with it, idempotent, one transaction."""

from __future__ import annotations

import pytest
import sqlite_utils

from storage.database import Database
from storage.messages import PRIORITY, NewMessage, get_events, get_message, insert_message
from storage.optouts import is_e164, is_opted_out, opt_in, opt_out
from tests.storage import factories as f

PHONE = "+447700900123"
OTHER = "+447700900456"
NOW = f.NOW
LATER = f.LATER
REASON = "recipient opted out (replied STOP)"


def queue_sms(db: sqlite_utils.Database, recipient: str, *, channel: str = "sms") -> int:
    message, _ = insert_message(
        db,
        NewMessage(
            channel=channel,
            recipient=recipient,
            body="Bags are in",
            kind="alert",
            priority=PRIORITY["alert"],
        ),
        NOW,
    )
    return message.id


def subscriber_row(db: sqlite_utils.Database, phone: str) -> dict[str, object]:
    rows = list(db.query("SELECT * FROM subscribers WHERE phone = ?", [phone]))
    assert len(rows) == 1
    return rows[0]


def test_unknown_number_becomes_an_opted_out_contact(sync_db: sqlite_utils.Database) -> None:
    assert not is_opted_out(sync_db, PHONE)

    result = opt_out(sync_db, PHONE, NOW, reason=REASON)

    row = subscriber_row(sync_db, PHONE)
    assert result.subscriber_id == row["id"]
    assert result.changed is True
    assert row["opted_out_at"] == NOW
    # A contact, not an alert subscriber: no channels.
    assert row["channels"] == "[]"
    assert is_opted_out(sync_db, PHONE)


def test_existing_subscriber_keeps_their_row_and_channels(sync_db: sqlite_utils.Database) -> None:
    subscriber_id = f.insert(sync_db, "subscribers", f.subscriber(phone=PHONE))

    result = opt_out(sync_db, PHONE, LATER, reason=REASON)

    row = subscriber_row(sync_db, PHONE)
    assert result.subscriber_id == subscriber_id
    assert row["channels"] == '["sms", "push"]'
    assert row["opted_out_at"] == LATER
    assert row["updated_at"] == LATER


def test_queued_sms_to_the_number_are_cancelled_with_the_reason(
    sync_db: sqlite_utils.Database,
) -> None:
    mine = [queue_sms(sync_db, PHONE), queue_sms(sync_db, PHONE)]
    others = queue_sms(sync_db, OTHER)
    email = queue_sms(sync_db, PHONE, channel="email")

    result = opt_out(sync_db, PHONE, LATER, reason=REASON)

    assert sorted(result.cancelled_message_ids) == sorted(mine)
    for message_id in mine:
        message = get_message(sync_db, message_id)
        assert message is not None
        assert message.status == "cancelled"
        assert message.last_error == REASON
        assert get_events(sync_db, message_id)[-1].detail == REASON
    # STOP by SMS stops SMS; other people's messages and other channels are untouched.
    for message_id in (others, email):
        message = get_message(sync_db, message_id)
        assert message is not None and message.status == "queued"


def test_opt_out_twice_keeps_the_first_time_and_still_cancels(
    sync_db: sqlite_utils.Database,
) -> None:
    first = opt_out(sync_db, PHONE, NOW, reason=REASON)
    late = queue_sms(sync_db, PHONE)

    second = opt_out(sync_db, PHONE, LATER, reason=REASON)

    assert second.changed is False
    assert second.subscriber_id == first.subscriber_id
    assert subscriber_row(sync_db, PHONE)["opted_out_at"] == NOW
    assert second.cancelled_message_ids == (late,)
    assert sync_db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 1


def test_opt_in_clears_the_flag_once(sync_db: sqlite_utils.Database) -> None:
    opt_out(sync_db, PHONE, NOW, reason=REASON)

    assert opt_in(sync_db, PHONE, LATER) is True
    assert not is_opted_out(sync_db, PHONE)
    assert subscriber_row(sync_db, PHONE)["opted_out_at"] is None
    assert opt_in(sync_db, PHONE, LATER) is False


def test_opt_in_of_unknown_number_creates_nothing(sync_db: sqlite_utils.Database) -> None:
    assert opt_in(sync_db, PHONE, NOW) is False
    assert sync_db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_cancelled_messages_stay_cancelled_after_opt_in(sync_db: sqlite_utils.Database) -> None:
    message_id = queue_sms(sync_db, PHONE)
    opt_out(sync_db, PHONE, NOW, reason=REASON)
    opt_in(sync_db, PHONE, LATER)

    message = get_message(sync_db, message_id)
    assert message is not None and message.status == "cancelled"


def test_opted_out_flag_is_per_number(sync_db: sqlite_utils.Database) -> None:
    opt_out(sync_db, PHONE, NOW, reason=REASON)
    assert not is_opted_out(sync_db, OTHER)


@pytest.mark.parametrize("phone", ["07700900123", "+0123", "+44 7700 900123", "VODAFONE", ""])
def test_not_e164_is_refused(sync_db: sqlite_utils.Database, phone: str) -> None:
    assert not is_e164(phone)
    with pytest.raises(ValueError, match=r"E\.164"):
        opt_out(sync_db, phone, NOW, reason=REASON)


async def test_opt_out_is_part_of_the_callers_transaction(database: Database) -> None:
    message_id = await database.write(lambda db: queue_sms(db, PHONE))

    def opt_out_then_fail(db: sqlite_utils.Database) -> None:
        opt_out(db, PHONE, LATER, reason=REASON)
        raise RuntimeError("later step failed")

    with pytest.raises(RuntimeError):
        await database.write(opt_out_then_fail)

    assert not await database.execute(lambda db: is_opted_out(db, PHONE))
    message = await database.execute(lambda db: get_message(db, message_id))
    assert message is not None and message.status == "queued"
