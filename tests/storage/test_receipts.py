"""Delivery receipts: forward only, first final state wins, duplicates are no-ops."""

from __future__ import annotations

from typing import Any

import pytest
import sqlite_utils

from storage.messages import get_events, get_message
from storage.receipts import apply_receipt, describe_error
from tests.storage import factories as f

SID = "SM0123456789abcdef0123456789abcdef"
T1 = "2026-01-01T12:01:00.000000+00:00"
T2 = "2026-01-01T12:02:00.000000+00:00"
T3 = "2026-01-01T12:03:00.000000+00:00"


def sent_message(db: sqlite_utils.Database, **over: Any) -> int:
    fields: dict[str, Any] = {
        "status": "sent",
        "provider": "twilio",
        "provider_message_id": SID,
        "sent_at": f.NOW,
    } | over
    return f.insert(db, "messages", f.message(**fields))


def receipt(
    db: sqlite_utils.Database, status: str, now: str = T1, code: str | None = None, **over: Any
) -> Any:
    fields: dict[str, Any] = {
        "provider": "twilio",
        "provider_message_id": SID,
        "status": status,
        "error_code": code,
        "now": now,
    } | over
    return apply_receipt(db, **fields)


def states(db: sqlite_utils.Database, message_id: int) -> list[str]:
    return [event.state for event in get_events(db, message_id)]


def status_of(db: sqlite_utils.Database, message_id: int) -> str:
    message = get_message(db, message_id)
    assert message is not None
    return message.status


def test_delivered_moves_sent_to_delivered(sync_db: sqlite_utils.Database) -> None:
    message_id = sent_message(sync_db)

    result = receipt(sync_db, "delivered", T1)

    assert (result.message_id, result.moved, result.state) == (message_id, True, "delivered")
    message = get_message(sync_db, message_id)
    assert message is not None
    assert message.status == "delivered"
    assert message.delivered_at is not None
    assert message.updated_at.isoformat() == "2026-01-01T12:01:00+00:00"
    events = get_events(sync_db, message_id)
    assert [event.state for event in events] == ["delivered"]
    assert events[0].provider == "twilio"
    assert events[0].at.isoformat() == "2026-01-01T12:01:00+00:00"


def test_sent_then_delivered_then_late_sent_stays_delivered(
    sync_db: sqlite_utils.Database,
) -> None:
    message_id = sent_message(sync_db)

    first = receipt(sync_db, "sent", T1)
    second = receipt(sync_db, "delivered", T2)
    late = receipt(sync_db, "sent", T3)

    assert (first.moved, second.moved, late.moved) == (False, True, False)
    assert late.state == "delivered"
    assert status_of(sync_db, message_id) == "delivered"
    assert states(sync_db, message_id) == ["delivered"]


@pytest.mark.parametrize("early", ["queued", "accepted", "scheduled", "sending", "sent"])
def test_steps_up_to_sent_change_nothing(sync_db: sqlite_utils.Database, early: str) -> None:
    message_id = sent_message(sync_db)

    result = receipt(sync_db, early)

    assert (result.moved, result.state) == (False, "sent")
    assert status_of(sync_db, message_id) == "sent"
    assert states(sync_db, message_id) == []


def test_undelivered_records_the_error_code(sync_db: sqlite_utils.Database) -> None:
    message_id = sent_message(sync_db)

    result = receipt(sync_db, "undelivered", code="30003")

    assert (result.moved, result.state) == (True, "undelivered")
    message = get_message(sync_db, message_id)
    assert message is not None
    assert message.status == "undelivered"
    assert message.error_code == "30003"
    assert message.last_error == "ErrorCode 30003: handset unreachable"
    assert message.delivered_at is None
    (event,) = get_events(sync_db, message_id)
    assert (event.state, event.provider) == ("undelivered", "twilio")
    assert event.detail == "ErrorCode 30003: handset unreachable"


def test_failed_with_unknown_code_shows_the_bare_code(sync_db: sqlite_utils.Database) -> None:
    message_id = sent_message(sync_db)

    receipt(sync_db, "failed", code="39999")

    message = get_message(sync_db, message_id)
    assert message is not None
    assert (message.status, message.error_code) == ("failed", "39999")
    assert message.last_error == "ErrorCode 39999"


def test_duplicate_receipt_adds_no_event(sync_db: sqlite_utils.Database) -> None:
    message_id = sent_message(sync_db)

    first = receipt(sync_db, "undelivered", T1, code="30003")
    again = receipt(sync_db, "undelivered", T2, code="30003")

    assert (first.moved, again.moved) == (True, False)
    assert states(sync_db, message_id) == ["undelivered"]


@pytest.mark.parametrize(
    ("first", "second"),
    [("delivered", "undelivered"), ("undelivered", "delivered"), ("failed", "delivered")],
)
def test_first_final_state_wins(sync_db: sqlite_utils.Database, first: str, second: str) -> None:
    message_id = sent_message(sync_db)

    receipt(sync_db, first, T1)
    result = receipt(sync_db, second, T2)

    assert (result.moved, result.state) == (False, first)
    assert status_of(sync_db, message_id) == first
    assert states(sync_db, message_id) == [first]


def test_canceled_at_twilio_is_a_failure(sync_db: sqlite_utils.Database) -> None:
    message_id = sent_message(sync_db)

    result = receipt(sync_db, "canceled")

    assert (result.moved, result.state) == (True, "failed")
    (event,) = get_events(sync_db, message_id)
    assert event.detail == "delivery receipt: canceled"


def test_unknown_status_changes_nothing(sync_db: sqlite_utils.Database) -> None:
    message_id = sent_message(sync_db)

    result = receipt(sync_db, "partially_delivered")

    assert (result.message_id, result.moved, result.state) == (message_id, False, "sent")
    assert states(sync_db, message_id) == []


def test_status_words_are_read_in_any_case(sync_db: sqlite_utils.Database) -> None:
    sent_message(sync_db)
    assert receipt(sync_db, " Delivered ").state == "delivered"


def test_unknown_sid_is_reported_not_raised(sync_db: sqlite_utils.Database) -> None:
    sent_message(sync_db)

    result = receipt(sync_db, "delivered", provider_message_id="SMunknown")

    assert (result.message_id, result.moved, result.state) == (None, False, None)


def test_sid_of_another_provider_is_not_ours(sync_db: sqlite_utils.Database) -> None:
    message_id = sent_message(sync_db, provider="modem")

    assert receipt(sync_db, "delivered").message_id is None
    assert status_of(sync_db, message_id) == "sent"


@pytest.mark.parametrize("current", ["queued", "sending", "cancelled"])
def test_message_not_sent_in_this_attempt_is_left_alone(
    sync_db: sqlite_utils.Database, current: str
) -> None:
    # Retried by hand (queued or sending again) or cancelled: the old attempt's receipt is late.
    over: dict[str, Any] = {"status": current}
    if current == "sending":
        over["lease_until"] = T3
    message_id = sent_message(sync_db, **over)

    result = receipt(sync_db, "delivered")

    assert (result.moved, result.state) == (False, current)
    assert status_of(sync_db, message_id) == current
    assert states(sync_db, message_id) == []


def test_the_newest_message_with_a_reused_id_gets_the_receipt(
    sync_db: sqlite_utils.Database,
) -> None:
    # Modem message references wrap around at 255: the latest use of an id is the live one.
    old = sent_message(sync_db, provider="modem", provider_message_id="17", status="delivered")
    new = sent_message(sync_db, provider="modem", provider_message_id="17")

    result = receipt(sync_db, "delivered", provider="modem", provider_message_id="17")

    assert result.message_id == new
    assert status_of(sync_db, old) == "delivered"
    assert states(sync_db, old) == []


def test_describe_error() -> None:
    assert describe_error("twilio", None) is None
    assert describe_error("twilio", "30005") == "ErrorCode 30005: unknown destination handset"
    # Twilio's meanings are not another provider's.
    assert describe_error("modem", "30005") == "ErrorCode 30005"
