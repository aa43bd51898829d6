"""Per-segment status reports: matched by reference, recipient and time; the message follows."""

from __future__ import annotations

import sqlite_utils

from storage.messages import NewMessage, Sent, claim_due, get_message, insert_message
from storage.messages import record_outcomes as record
from storage.migrations import apply
from storage.receipts import apply_part_report

T0 = "2026-11-22T10:00:00.000000+00:00"
T1 = "2026-11-22T10:00:05.000000+00:00"
T2 = "2026-11-22T10:01:00.000000+00:00"
TO = "+33612345678"


def sent_message(db: sqlite_utils.Database, parts: tuple[str, ...], at: str = T0) -> int:
    new = NewMessage(channel="sms", recipient=TO, body="x" * 200, kind="manual", priority=20)
    message, _ = insert_message(db, new, at)
    claim_due(db, at, T2, 10)
    record(db, [Sent(message.id, "modem", parts[0], segments=len(parts), parts=parts)], at)
    return message.id


def report(
    db: sqlite_utils.Database,
    ref: str,
    *,
    delivered: bool = True,
    failed: bool = False,
    status: int = 0,
    to: str = TO,
):  # type: ignore[no-untyped-def]
    return apply_part_report(
        db,
        provider="modem",
        reference=ref,
        recipient=to,
        delivered=delivered,
        failed=failed,
        status_code=status,
        now=T1,
        sent_after="2026-11-20T00:00:00+00:00",
    )


def fresh() -> sqlite_utils.Database:
    db = sqlite_utils.Database(memory=True)
    apply(db)
    return db


def test_delivered_only_when_every_segment_is() -> None:
    db = fresh()
    message_id = sent_message(db, ("17", "18"))
    first = report(db, "17")
    assert first.message_id == message_id and not first.moved
    assert get_message(db, message_id).status == "sent"
    second = report(db, "18")
    assert second.moved and second.state == "delivered"
    assert get_message(db, message_id).delivered_at is not None


def test_one_failed_segment_makes_it_undelivered() -> None:
    db = fresh()
    message_id = sent_message(db, ("40", "41"))
    result = report(db, "41", delivered=False, failed=True, status=0x45)
    assert result.moved and result.state == "undelivered"
    message = get_message(db, message_id)
    assert message.error_code == "0x45"
    # The other segment's late success does not move it back.
    assert not report(db, "40").moved
    assert get_message(db, message_id).status == "undelivered"


def test_pending_report_changes_nothing_and_wrong_number_matches_nothing() -> None:
    db = fresh()
    message_id = sent_message(db, ("9",))
    assert not report(db, "9", delivered=False, failed=False, status=0x21).moved
    assert report(db, "9", to="+33699999999").message_id is None
    assert get_message(db, message_id).status == "sent"


def test_a_wrapped_reference_matches_the_newest_unreported_segment() -> None:
    db = fresh()
    old = sent_message(db, ("200",), at="2026-11-21T09:00:00.000000+00:00")
    new = sent_message(db, ("200",))
    assert report(db, "200").message_id == new
    assert get_message(db, old).status == "sent"
    # A second report for the same reference now finds the older, still unreported one.
    assert report(db, "200").message_id == old
