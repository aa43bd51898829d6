"""Backpressure on a real database with a manual clock: past [outbox] max_queued the API's
sends get 503 with a Retry-After worked out from the queue's rate, the daemon's own sends
still queue (and are counted), a per-kind limit holds on its own, and pushes count too."""

from __future__ import annotations

import pytest

from daemon.runtime.clock import ManualClock
from daemon.services.outbox.backpressure import Backpressure, QueueLimits
from daemon.services.outbox.meter import SendMeter
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from daemon.services.push import PushService
from storage.database import Database

# What the first provider of the chain is configured for ([twilio] rate_per_second, say).
CONFIGURED_RATE = 2.0


def build(
    db: Database, clock: ManualClock, max_queued: int, **by_kind: int
) -> tuple[Outbox, SendMeter, Backpressure]:
    meter = SendMeter(clock)
    backpressure = Backpressure(
        QueueLimits(max_queued, by_kind), meter, lambda channel: CONFIGURED_RATE
    )
    return Outbox(db, clock, backpressure=backpressure), meter, backpressure


def sms(n: int, *, origin: str = "api", kind: str = "manual") -> EnqueueRequest:
    return EnqueueRequest(
        channel="sms",
        recipient="+33612345678",
        body=f"message {n}",
        kind=kind,
        origin=origin,  # type: ignore[arg-type]
    )


async def test_past_the_limit_the_api_gets_503_naming_the_depth_and_when_to_retry(
    db: Database, clock: ManualClock
) -> None:
    outbox, _, _ = build(db, clock, max_queued=10)
    for n in range(10):
        await outbox.enqueue(sms(n))
    with pytest.raises(EnqueueError) as refused:
        await outbox.enqueue(sms(10))
    error = refused.value
    assert error.status == 503
    assert error.rule == (
        "the sms queue is full: 10 messages wait to be sent ([outbox] max_queued = 10); at "
        "2.0 a second they take about 5s to send; try again in 1s"
    )
    assert error.retry_after == 1
    # The daemon's own (a TGTG alert, an owner alert) are never refused, only counted.
    for n in range(5):
        await outbox.enqueue(sms(100 + n, origin="daemon", kind="alert"))
    with pytest.raises(EnqueueError) as again:
        await outbox.enqueue(sms(11))
    # 15 wait now; the API may add one when 6 have gone: 3 s at 2 a second.
    assert "15 messages wait" in again.value.rule
    assert again.value.retry_after == 3
    waiting = await db.execute(
        lambda c: c.execute("SELECT count(*) FROM messages WHERE status = 'queued'").fetchone()[0]
    )
    assert waiting == 15


async def test_sent_messages_free_the_queue_and_the_measured_rate_sets_the_wait(
    db: Database, clock: ManualClock
) -> None:
    outbox, meter, backpressure = build(db, clock, max_queued=20)
    made = [await outbox.enqueue(sms(n)) for n in range(20)]
    # The provider takes 10 a second for two seconds (faster than configured).
    for _ in made:
        clock.advance(0.1)
        meter.observe("twilio", "sms", "sent", 0.05)
    assert backpressure.rate("sms") == pytest.approx(10.5, rel=0.01)
    ids = [m.message.id for m in made[:5]]
    await db.write(
        lambda c: c.execute(
            f"UPDATE messages SET status = 'sent' WHERE id IN ({','.join('?' * len(ids))})", ids
        )
    )
    for n in range(5):
        await outbox.enqueue(sms(20 + n))
    with pytest.raises(EnqueueError) as refused:
        await outbox.enqueue(sms(99))
    assert "at 10.5 a second" in refused.value.rule
    assert refused.value.retry_after == 1
    state = await db.execute(lambda c: backpressure.state(c, "sms"))
    assert (state.waiting, state.full) == (20, True)
    assert state.eta_seconds == pytest.approx(20 / 10.5, rel=0.01)
    # A minute later with nothing sent, the configured rate is what is known.
    clock.advance(61)
    assert backpressure.rate("sms") == CONFIGURED_RATE


async def test_a_per_kind_limit_holds_while_other_kinds_still_queue(
    db: Database, clock: ManualClock
) -> None:
    outbox, _, _ = build(db, clock, max_queued=0, manual=3)
    for n in range(3):
        await outbox.enqueue(sms(n))
    with pytest.raises(EnqueueError, match=r"max_queued_by_kind manual = 3"):
        await outbox.enqueue(sms(3))
    await outbox.enqueue(sms(4, kind="alert"))


async def test_an_idempotent_repeat_is_answered_when_the_queue_is_full(
    db: Database, clock: ManualClock
) -> None:
    outbox, _, _ = build(db, clock, max_queued=1)
    request = EnqueueRequest(
        channel="sms", recipient="+33612345678", body="hi", origin="api", idempotency_key="k1"
    )
    first = await outbox.enqueue(request)
    again = await outbox.enqueue(request)
    assert (again.created, again.message.id) == (False, first.message.id)


async def test_pushes_from_the_api_are_held_to_the_limit_per_channel(
    db: Database, clock: ManualClock
) -> None:
    outbox, _, backpressure = build(db, clock, max_queued=3)
    push = PushService(db, clock, backpressure=backpressure)
    tokens = [f"token-{n}-" + "a" * 40 for n in range(3)]
    await push.send_to_tokens(tokens, "Hi", "Fresh bread", origin="api")
    with pytest.raises(EnqueueError) as refused:
        await push.send_to_topic("offers", "Hi", "Fresh bread", origin="api")
    assert refused.value.status == 503
    assert refused.value.rule.startswith("the push queue is full: 3 messages wait")
    # The SMS queue is its own.
    await outbox.enqueue(sms(1))
