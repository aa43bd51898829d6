"""The spending cap on a real database with a manual clock: the API's SMS stop at the day's
and the month's cap with 503 and the wait until it resets, one-time codes and owner alerts go
on (and are counted), a cancelled SMS gives its segments back, the totals survive a restart,
and the owner hears of it at the warning level and at 100 %."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.runtime.clock import ManualClock
from daemon.services.care.outbox_watch import KEY_BUDGET_SPENT, KEY_BUDGET_WARN, OutboxWatch
from daemon.services.otp.policy import OtpPolicy
from daemon.services.otp.service import OtpError, OtpService
from daemon.services.outbox.budget import Budget, BudgetRules
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from daemon.services.owner import OwnerAlerts
from storage.database import Database
from tests.daemon.otp.support import KEY

OWNER = "+33600000001"
# 10:00 in Paris on a Tuesday; the shop's midnight is 14 hours away.
START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
ONE_SEGMENT = "Fresh bread at 5pm today."
# 161 plain characters: two segments of 153.
TWO_SEGMENTS = "x" * 161


def outbox_with(db: Database, clock: ManualClock, **rules: object) -> Outbox:
    defaults: dict[str, object] = {"timezone": "Europe/Paris", "currency": "EUR"}
    return Outbox(db, clock, budget=Budget(BudgetRules(**{**defaults, **rules})))  # type: ignore[arg-type]


def api_sms(to: str = "+33612345678", body: str = ONE_SEGMENT, **extra: object) -> EnqueueRequest:
    return EnqueueRequest(channel="sms", recipient=to, body=body, origin="api", **extra)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


async def test_the_api_stops_at_the_days_cap_with_503_and_the_wait_until_midnight(
    db: Database, clock: ManualClock
) -> None:
    outbox = outbox_with(db, clock, per_day=5, price_per_segment=0.07)
    await outbox.enqueue(api_sms(body=TWO_SEGMENTS))
    for _ in range(3):
        await outbox.enqueue(api_sms())
    # 5 of 5 segments used: the next one is refused, naming the cap and when it resets.
    with pytest.raises(EnqueueError) as refused:
        await outbox.enqueue(api_sms())
    error = refused.value
    assert error.status == 503
    assert error.field == ""
    assert "the SMS budget is spent: 5 of 5 segments today (100 %, 0.35 EUR)" in error.rule
    assert "[sms] budget_per_day" in error.rule
    # Midnight in Paris is 23:00 UTC: 14 hours from 09:00 UTC.
    assert error.retry_after == 14 * 3600
    # A message that would pass the cap is refused even when the cap is not reached yet.
    outbox_two = outbox_with(db, clock, per_day=6)
    with pytest.raises(EnqueueError, match="this message needs 2"):
        await outbox_two.enqueue(api_sms(body=TWO_SEGMENTS))
    count = await db.execute(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0])
    assert count == 4

    # Past the shop's midnight, a new day's budget.
    clock.advance(14 * 3600)
    sent = await outbox.enqueue(api_sms())
    assert sent.created


async def test_codes_and_owner_alerts_go_on_when_spent_and_are_counted(
    db: Database, clock: ManualClock
) -> None:
    outbox = outbox_with(db, clock, per_day=2)
    await outbox.enqueue(api_sms())
    await outbox.enqueue(api_sms())
    otp = OtpService(db, clock, outbox, KEY, OtpPolicy(), shop_name="Corner Shop")
    sent = await otp.send("+33612345670")
    assert sent.message_id
    owner = OwnerAlerts(db, clock, outbox, phone=OWNER)
    assert await owner.alert("disk-low", "shopbell: the disk is filling") is True
    # The daemon's TGTG alerts are not exempt by default: they stop with the API's sends.
    with pytest.raises(EnqueueError, match="budget is spent"):
        await outbox.enqueue(
            EnqueueRequest(channel="sms", recipient="+33612345671", body="Bags!", kind="alert")
        )
    # Made exempt in config, they go on.
    exempt = outbox_with(db, clock, per_day=2, exempt=frozenset({"otp", "system", "alert"}))
    await exempt.enqueue(
        EnqueueRequest(channel="sms", recipient="+33612345671", body="Bags!", kind="alert")
    )
    assert outbox.budget is not None
    state = outbox.budget.state(clock.now())
    assert state.day.segments == 4
    assert state.state == "spent"


async def test_an_idempotent_repeat_is_answered_when_the_budget_is_spent(
    db: Database, clock: ManualClock
) -> None:
    outbox = outbox_with(db, clock, per_day=1)
    first = await outbox.enqueue(api_sms(idempotency_key="till-41"))
    again = await outbox.enqueue(api_sms(idempotency_key="till-41"))
    assert (again.created, again.message.id) == (False, first.message.id)


async def test_a_cancelled_sms_gives_its_segments_back_and_the_month_cap_holds(
    db: Database, clock: ManualClock
) -> None:
    outbox = outbox_with(db, clock, per_month=3)
    queued = await outbox.enqueue(api_sms(body=TWO_SEGMENTS))
    await outbox.enqueue(api_sms())
    with pytest.raises(EnqueueError) as refused:
        await outbox.enqueue(api_sms())
    assert "3 of 3 segments this month" in refused.value.rule
    assert "[sms] budget_per_month" in refused.value.rule
    # Midnight Paris on April 1st is 22:00 UTC on March 31st (summer time by then).
    resets = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert refused.value.retry_after == int((resets - START).total_seconds())
    await outbox.cancel(queued.message.id)
    assert outbox.budget is not None
    assert outbox.budget.state(clock.now()).month.segments == 1
    await outbox.retry(queued.message.id)
    # Sent again by hand: its two segments count again.
    assert outbox.budget.state(clock.now()).month.segments == 3
    await outbox.cancel(queued.message.id)
    await outbox.enqueue(api_sms())
    await outbox.enqueue(api_sms())
    with pytest.raises(EnqueueError):
        await outbox.enqueue(api_sms())
    # The next day does not reset a month's cap; the next month does.
    clock.advance(86_400)
    with pytest.raises(EnqueueError):
        await outbox.enqueue(api_sms())
    clock.advance((resets - clock.now()).total_seconds() + 1)
    assert (await outbox.enqueue(api_sms())).created


async def test_the_totals_are_counted_from_the_database_after_a_restart(
    db: Database, clock: ManualClock
) -> None:
    before = outbox_with(db, clock, per_day=3)
    await before.enqueue(api_sms(body=TWO_SEGMENTS))
    # A new daemon on the same file: its budget counts what was queued today.
    after = outbox_with(db, clock, per_day=3)
    await after.enqueue(api_sms())
    with pytest.raises(EnqueueError, match="3 of 3 segments today"):
        await after.enqueue(api_sms())


async def test_the_owner_is_told_at_the_warning_level_and_when_spent_once_each(
    db: Database, clock: ManualClock
) -> None:
    outbox = outbox_with(db, clock, per_day=10, warn_percent=80)
    owner = OwnerAlerts(db, clock, outbox, phone=OWNER)
    watch = OutboxWatch(db, clock, outbox, owner)

    async def owner_texts() -> list[str]:
        return await db.execute(
            lambda c: [
                r[0]
                for r in c.execute(
                    "SELECT body FROM messages WHERE recipient = ? ORDER BY id", [OWNER]
                )
            ]
        )

    for _ in range(7):
        await outbox.enqueue(api_sms())
    assert "budget ok" in await watch.run()
    assert await owner_texts() == []
    await outbox.enqueue(api_sms())
    said = await watch.run()
    assert said.startswith("budget warn: 8 of 10 segments today (80 %)")
    [warned] = await owner_texts()
    assert "8 of 10 segments today (80 %) of the SMS budget are used" in warned
    # Checked again: nothing new.
    await watch.run()
    assert len(await owner_texts()) == 1
    health = await watch.health()
    assert health["state"] == "degraded"
    assert health["budget"] == {
        "state": "warn",
        "warn_percent": 80,
        "day": {
            "segments": 9,  # the owner's alert counts too
            "limit": 10,
            "percent": 90.0,
            "money": None,
            "resets_at": "2026-03-10T23:00:00.000000+00:00",
        },
    }
    await outbox.enqueue(api_sms())
    await watch.run()
    texts = await owner_texts()
    assert len(texts) == 2
    assert texts[1].startswith("shopbell: the SMS budget is spent: 10 of 10 segments today")
    # The next day both clear: the next time is told again.
    clock.advance(86_400)
    assert "budget ok: 0 of 10 segments today" in await watch.run()
    open_keys = [alert.key for alert in await owner.open_alerts()]
    assert KEY_BUDGET_WARN not in open_keys
    assert KEY_BUDGET_SPENT not in open_keys


async def test_codes_not_exempt_are_refused_with_the_wait_and_no_field_to_blame(
    db: Database, clock: ManualClock
) -> None:
    outbox = outbox_with(db, clock, per_day=1, exempt=frozenset({"system"}))
    await outbox.enqueue(api_sms())
    otp = OtpService(db, clock, outbox, KEY, OtpPolicy(), shop_name="Corner Shop")
    with pytest.raises(OtpError) as refused:
        await otp.send("+33612345670")
    assert refused.value.status == 503
    assert refused.value.retry_after == 14 * 3600
    assert str(refused.value).startswith("the SMS budget is spent: 1 of 1 segments today")
    # Not written: the refused code does not count as a send.
    assert (await otp.status("+33612345670")).pending is False
