"""The OTP service on a real database with a manual clock: send, verify, status, sweep."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from daemon.runtime.clock import ManualClock, utc_iso
from daemon.runtime.paths import PathError
from daemon.runtime.scheduler import JobSpec, Scheduler
from daemon.services.otp.key import ensure_otp_key
from daemon.services.otp.service import OtpError, OtpService, VerifyFailed
from daemon.services.outbox.service import Outbox
from storage.database import Database
from storage.messages import PRIORITY, get_events, get_message
from storage.optouts import opt_out
from storage.otp import REDACTED_BODY
from tests.daemon.otp.support import ARABIC_INDIC, FULL_WIDTH, KEY, PHONE, code_in_message


async def rows(db: Database, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return await db.execute(lambda conn: [dict(r) for r in conn.query(sql, params or [])])


async def send_and_read(service: OtpService, db: Database, purpose: str = "login") -> str:
    sent = await service.send(PHONE, purpose)
    return await code_in_message(db, sent.message_id)


async def add_subscriber(db: Database, phone: str) -> int:
    def insert(conn: Any) -> int:
        cursor = conn.execute(
            "INSERT INTO subscribers (phone, created_at, updated_at) VALUES (?, ?, ?)",
            [phone, "2026-01-01T00:00:00.000000+00:00", "2026-01-01T00:00:00.000000+00:00"],
        )
        return int(cursor.lastrowid)

    return await db.write(insert)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# -- sending ---------------------------------------------------------------------------------


async def test_send_queues_an_otp_sms_first_in_line_with_the_codes_lifetime(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    sent = await service.send("+33 6 12 34 56 78")
    assert sent.phone == PHONE
    assert sent.status == "queued"
    assert (sent.expires_in, sent.sends_left, sent.resend_in) == (300, 2, 30)
    message = await db.execute(lambda conn: get_message(conn, sent.message_id))
    assert message is not None
    assert message.kind == "otp"
    assert message.priority == PRIORITY["otp"] == min(PRIORITY.values())
    assert message.validity_seconds == 300
    assert message.recipient == PHONE
    assert message.idempotency_key and message.idempotency_key.startswith("otp-")
    code = await code_in_message(db, sent.message_id)
    assert message.body.startswith(f"Your Corner Shop code is {code}. It expires in 5 min")
    [row] = await rows(db, "SELECT * FROM otp_codes")
    assert row["message_id"] == sent.message_id
    assert row["expires_at"] == utc_iso(clock.now() + timedelta(seconds=300))
    assert sent.expires_at == clock.now() + timedelta(seconds=300)


async def test_only_an_hmac_of_the_code_is_stored(service: OtpService, db: Database) -> None:
    code = await send_and_read(service, db)
    [row] = await rows(db, "SELECT * FROM otp_codes")
    assert len(row["code_hmac"]) == 64
    assert all(code not in str(value) for value in row.values())


async def test_verify_accepts_the_code_once(service: OtpService, db: Database) -> None:
    code = await send_and_read(service, db)
    verified = await service.verify(PHONE, code)
    assert verified.phone == PHONE
    with pytest.raises(VerifyFailed) as replay:
        await service.verify(PHONE, code)
    assert replay.value.reason == "used"
    assert replay.value.status == 400


async def test_expiry_at_the_boundary(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    code = await send_and_read(service, db)
    clock.advance(299.999)
    await service.verify(PHONE, code)  # a millisecond before: still good

    clock.advance(30.001)
    code = await send_and_read(service, db)
    clock.advance(300)  # the instant it expires: no longer good
    with pytest.raises(VerifyFailed) as late:
        await service.verify(PHONE, code)
    assert late.value.reason == "expired"


async def test_five_wrong_tries_kill_the_code(service: OtpService, db: Database) -> None:
    code = await send_and_read(service, db)
    left = []
    for _ in range(5):
        with pytest.raises(VerifyFailed) as caught:
            await service.verify(PHONE, wrong(code))
        assert caught.value.reason == "wrong"
        left.append(caught.value.attempts_left)
    assert left == [4, 3, 2, 1, 0]
    assert "no tries left" in str(caught.value)
    with pytest.raises(VerifyFailed) as locked:
        await service.verify(PHONE, code)  # the right code, too late
    assert locked.value.reason == "locked"
    [row] = await rows(db, "SELECT attempts, consumed_at FROM otp_codes")
    assert row == {"attempts": 5, "consumed_at": None}
    assert not (await service.status(PHONE)).pending
    # Dead at once, not at its natural expiry: the sweep cancels its unsent SMS now.
    assert "cancelled 1 unsent" in await service.sweep()


async def test_a_malformed_code_is_refused_and_costs_no_try(
    service: OtpService, db: Database
) -> None:
    code = await send_and_read(service, db)
    for bad in (ARABIC_INDIC, FULL_WIDTH, "12345", "1234567", "12a456"):
        with pytest.raises(OtpError) as caught:
            await service.verify(PHONE, bad)
        assert caught.value.status == 400
        assert caught.value.field == "otp"
    assert (await service.status(PHONE)).attempts_left == 5
    await service.verify(PHONE, f" {code} ")


async def test_a_malformed_phone_or_purpose_is_refused_naming_the_field(
    service: OtpService,
) -> None:
    for call in (
        service.send("12345"),
        service.verify("not a phone", "123456"),
        service.status("+999"),
    ):
        with pytest.raises(OtpError) as caught:
            await call
        assert (caught.value.field, caught.value.status) == ("phone", 400)
    with pytest.raises(OtpError) as caught:
        await service.send(PHONE, "payment")
    assert caught.value.field == "purpose"


async def test_verify_with_no_code_pending(service: OtpService) -> None:
    with pytest.raises(VerifyFailed) as caught:
        await service.verify(PHONE, "123456")
    assert caught.value.reason == "none"


# -- throttling ------------------------------------------------------------------------------


async def test_resend_waits_thirty_seconds_and_says_how_long(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    await service.send(PHONE)
    clock.advance(12)
    with pytest.raises(OtpError) as caught:
        await service.send(PHONE)
    assert caught.value.status == 429
    assert caught.value.retry_after == 18
    assert caught.value.extra == {"retry_after": 18, "sends_left": 2}
    clock.advance(18)
    await service.send(PHONE)
    assert len(await rows(db, "SELECT id FROM otp_codes")) == 2


async def test_at_most_three_sends_in_ten_minutes_for_any_purpose(
    service: OtpService, clock: ManualClock
) -> None:
    for purpose in ("login", "signup", "verify-phone"):
        await service.send(PHONE, purpose)
        clock.advance(60)
    with pytest.raises(OtpError) as caught:
        await service.send(PHONE, "login")
    assert caught.value.status == 429
    assert caught.value.retry_after == 600 - 180
    assert "3 codes in 10 minutes" in caught.value.rule
    assert (await service.status(PHONE)).sends_left == 0
    clock.advance(420)
    await service.send(PHONE, "login")
    await service.send("+33612345679")  # another number has its own allowance


async def test_concurrent_sends_to_one_number_send_one_code(
    service: OtpService, db: Database
) -> None:
    results = await asyncio.gather(*(service.send(PHONE) for _ in range(5)), return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
    assert all(
        isinstance(r, OtpError) and r.status == 429 for r in results if isinstance(r, BaseException)
    )
    assert len(await rows(db, "SELECT id FROM messages")) == 1


# -- replacement and purposes ------------------------------------------------------------------


async def test_a_new_code_replaces_the_old_one(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    first = await service.send(PHONE)
    old = await code_in_message(db, first.message_id)
    clock.advance(30)
    new = await send_and_read(service, db)
    if new == old:  # one chance in a million; the test needs them to differ
        pytest.skip("the two random codes happened to be equal")
    with pytest.raises(VerifyFailed) as caught:
        await service.verify(PHONE, old)
    assert caught.value.reason == "wrong"
    # The old SMS, never sent, is cancelled and its text blanked: a replaced code helps nobody.
    message = await db.execute(lambda conn: get_message(conn, first.message_id))
    assert message is not None and message.status == "cancelled"
    assert message.body == REDACTED_BODY
    await service.verify(PHONE, new)


async def test_purposes_do_not_cross(service: OtpService, db: Database) -> None:
    code = await send_and_read(service, db, "signup")
    with pytest.raises(VerifyFailed) as caught:
        await service.verify(PHONE, code, "login")
    assert caught.value.reason == "none"
    await service.verify(PHONE, code, "signup")


# -- concurrency -----------------------------------------------------------------------------


async def test_concurrent_verifies_of_one_code_exactly_one_succeeds(
    service: OtpService, db: Database
) -> None:
    code = await send_and_read(service, db)
    results = await asyncio.gather(
        *(service.verify(PHONE, code) for _ in range(20)), return_exceptions=True
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1
    assert all(isinstance(r, VerifyFailed) and r.reason == "used" for r in losses)


async def test_concurrent_wrong_guesses_cannot_exceed_the_limit(
    service: OtpService, db: Database
) -> None:
    code = await send_and_read(service, db)
    guesses = [f"{n:06d}" for n in range(30) if f"{n:06d}" != code][:20]
    results = await asyncio.gather(
        *(service.verify(PHONE, guess) for guess in guesses), return_exceptions=True
    )
    reasons = [r.reason for r in results if isinstance(r, VerifyFailed)]
    assert reasons.count("wrong") == 5
    assert reasons.count("locked") == 15
    [row] = await rows(db, "SELECT attempts FROM otp_codes")
    assert row["attempts"] == 5


# -- consequences ----------------------------------------------------------------------------


async def test_verify_marks_the_subscribers_phone_verified(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    subscriber = await add_subscriber(db, PHONE)
    code = await send_and_read(service, db)
    await service.verify(PHONE, code)
    [row] = await rows(db, "SELECT verified_at FROM subscribers WHERE id = ?", [subscriber])
    assert row["verified_at"] == utc_iso(clock.now())


async def test_answers_are_the_same_with_or_without_a_subscriber(
    service: OtpService, db: Database
) -> None:
    other = "+33612345679"
    await add_subscriber(db, PHONE)
    answers = []
    for phone in (PHONE, other):
        sent = await service.send(phone)
        code = await code_in_message(db, sent.message_id)
        status = await service.status(phone)
        verified = await service.verify(phone, code)
        answers.append(
            (
                {k: v for k, v in vars(sent).items() if k not in ("phone", "message_id")},
                {k: v for k, v in vars(status).items() if k != "phone"},
                {k: v for k, v in vars(verified).items() if k != "phone"},
            )
        )
    assert answers[0] == answers[1]


async def test_an_opted_out_number_gets_no_code(service: OtpService, db: Database) -> None:
    await db.write(lambda conn: opt_out(conn, PHONE, utc_iso(ManualClock().now()), reason="STOP"))
    with pytest.raises(OtpError) as caught:
        await service.send(PHONE)
    assert caught.value.status == 409
    assert "opted out" in caught.value.rule
    assert await rows(db, "SELECT id FROM otp_codes") == []


async def test_a_code_the_outbox_refuses_is_forgotten_and_does_not_count(
    db: Database, clock: ManualClock
) -> None:
    outbox = Outbox(db, clock, max_segments=1)
    service = OtpService(db, clock, outbox, KEY, text="{code}" + " pad" * 60)
    with pytest.raises(OtpError) as caught:
        await service.send(PHONE)
    assert caught.value.field == "body"
    assert await rows(db, "SELECT id FROM otp_codes") == []
    assert (await service.status(PHONE)).sends_left == 3


# -- status ----------------------------------------------------------------------------------


async def test_status_tells_where_a_number_stands_and_never_the_code(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    before = await service.status(PHONE)
    assert (before.pending, before.expires_in, before.attempts_left) == (False, None, None)
    assert (before.sends_left, before.resend_in, before.delivery) == (3, 0, None)
    code = await send_and_read(service, db)
    clock.advance(100.5)
    with pytest.raises(VerifyFailed):
        await service.verify(PHONE, wrong(code))
    now = await service.status(PHONE)
    assert now.pending is True
    assert now.expires_in == 200  # 199.5 s left, rounded up
    assert now.attempts_left == 4
    assert now.sends_left == 2
    assert now.resend_in == 0
    assert now.delivery == "queued"
    assert code not in repr(now)
    assert not (await service.status(PHONE, "signup")).pending


# -- logs ------------------------------------------------------------------------------------


async def test_no_code_in_the_logs(
    service: OtpService, db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    codes = []
    for _ in range(2):
        code = await send_and_read(service, db)
        codes.append(code)
        with pytest.raises(VerifyFailed):
            await service.verify(PHONE, wrong(code))
        await service.status(PHONE)
        await service.verify(PHONE, code)
        clock.advance(31)
    clock.advance(3600)
    await service.sweep()
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "otp: login code" in logged and "verified" in logged  # it did log
    for code in codes:
        assert code not in logged
        assert wrong(code) not in logged


# -- the sweep -------------------------------------------------------------------------------


async def test_sweep_removes_spent_codes_blanks_sent_texts_and_is_recorded(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    used = await service.send(PHONE)
    await service.verify(PHONE, await code_in_message(db, used.message_id))
    unsent = await service.send("+33612345679")
    live = await service.send("+33612345670")
    # The dispatcher sent the first and the third; the second is still queued.
    for message_id in (used.message_id, live.message_id):
        await db.write(
            lambda conn, m=message_id: conn.execute(
                "UPDATE messages SET status = 'sent' WHERE id = ?", [m]
            )
        )
    clock.advance(300)  # the second and third codes expire now

    scheduler = Scheduler(db, clock)
    scheduler.add(JobSpec("otp-sweep", service.sweep, IntervalTrigger(seconds=60)))
    assert await scheduler.run_job("otp-sweep") == "ok"
    [run] = await rows(db, "SELECT job_id, outcome, detail FROM job_runs")
    assert run["job_id"] == "otp-sweep" and run["outcome"] == "ok"
    assert "cancelled 1 unsent" in run["detail"]
    bodies = await rows(db, "SELECT id, status, body FROM messages ORDER BY id")
    assert [b["body"] for b in bodies] == [REDACTED_BODY] * 3
    assert bodies[1]["status"] == "cancelled"
    events = await db.execute(lambda conn: get_events(conn, unsent.message_id))
    assert "expired before it was sent" in (events[-1].detail or "")
    # Still inside the 10-minute send window: kept, they count toward the limit.
    assert len(await rows(db, "SELECT id FROM otp_codes")) == 3

    clock.advance(300)
    await service.sweep()
    assert await rows(db, "SELECT id FROM otp_codes") == []


async def test_sweep_keeps_live_codes_and_unsent_texts(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    sent = await service.send(PHONE)
    code = await code_in_message(db, sent.message_id)
    clock.advance(200)
    assert "removed 0" in await service.sweep()
    assert await code_in_message(db, sent.message_id) == code
    await service.verify(PHONE, code)


# -- the key ---------------------------------------------------------------------------------


def test_the_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "otp_key"
    key = ensure_otp_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_otp_key(path) == key


def test_a_key_others_can_read_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "otp_key"
    key = ensure_otp_key(path)
    os.chmod(path, 0o644)
    assert ensure_otp_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "made it 0600" in caplog.text
    assert key.hex() not in caplog.text


def test_a_damaged_key_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "otp_key"
    path.write_text("not a key\n")
    with pytest.raises(PathError, match="does not hold an OTP key"):
        ensure_otp_key(path)
    assert path.read_text() == "not a key\n"


async def test_sending_goes_on_after_the_sweep_emptied_the_table(
    service: OtpService, db: Database, clock: ManualClock
) -> None:
    # SQLite reuses the ids of deleted rows: the SMS of a new code must not be mistaken
    # for the SMS of an old one with the same id.
    first = await service.send(PHONE)
    clock.advance(3600)
    await service.sweep()
    assert await rows(db, "SELECT id FROM otp_codes") == []
    second = await service.send(PHONE)
    assert second.message_id != first.message_id
    await service.verify(PHONE, await code_in_message(db, second.message_id))
