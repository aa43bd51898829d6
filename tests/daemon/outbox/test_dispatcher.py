"""The dispatcher with real providers against the local fake Twilio and Fast2SMS: retries,
failover, recipient errors, breakers, priorities, idempotency and opt-outs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from daemon.runtime.clock import SystemClock, utc_iso
from daemon.services.outbox.breaker import CircuitBreaker
from daemon.services.outbox.dispatcher import Dispatcher
from daemon.services.outbox.limits import TokenBucket
from daemon.services.outbox.policy import RetryPolicy
from daemon.services.outbox.router import Router, Slot
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from providers.base import Outgoing, Provider
from providers.console.provider import ConsoleProvider
from providers.fast2sms.provider import Fast2SmsProvider
from providers.twilio.provider import TwilioProvider
from storage.database import Database
from storage.messages import get_events, get_message
from storage.models import Message, MessageEvent
from storage.optouts import opt_out
from tests.helpers import wait_until_async
from tests.peers.fast2sms import API_KEY, Fast2SmsPeer
from tests.peers.fast2sms import Fault as Fast2SmsFault
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, Fault, TwilioPeer

FROM = "+15005550006"
FRENCH = "+33612345678"
INDIAN = "+919876543210"
FINAL = {"sent", "delivered", "failed", "cancelled", "undelivered"}


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioPeer() as peer:
        yield peer


@pytest.fixture
def fast2sms() -> Iterator[Fast2SmsPeer]:
    with Fast2SmsPeer() as peer:
        yield peer


@dataclass
class Rig:
    db: Database
    outbox: Outbox
    dispatcher: Dispatcher
    router: Router

    async def send(self, to: str, body: str = "Bags are in", **extra: object) -> int:
        enqueued = await self.outbox.enqueue(
            EnqueueRequest(channel="sms", recipient=to, body=body, **extra)  # type: ignore[arg-type]
        )
        return enqueued.message.id

    async def settle(self, ids: list[int], timeout: float = 15.0) -> list[Message]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            messages = [await self.db.execute(lambda c, i=i: get_message(c, i)) for i in ids]
            if all(m is not None and m.status in FINAL for m in messages):
                return messages  # type: ignore[return-value]
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled: {[(m.id, m.status) for m in messages if m]}")
            await asyncio.sleep(0.02)

    async def events(self, message_id: int) -> list[MessageEvent]:
        return await self.db.execute(lambda c: get_events(c, message_id))


@pytest.fixture
async def make_rig(
    db: Database, twilio: TwilioPeer, fast2sms: Fast2SmsPeer
) -> AsyncIterator[Callable[..., Rig]]:
    clock = SystemClock()
    http = httpx.AsyncClient()
    rigs: list[Rig] = []

    def slot(provider: Provider, concurrency: int = 4, cooldown: float = 60.0) -> Slot:
        return Slot(
            provider=provider,
            bucket=TokenBucket(1000, clock),
            concurrency=concurrency,
            breaker=CircuitBreaker(provider.name, clock, cooldown),
        )

    def build(
        chain: tuple[str, ...] = ("twilio", "fast2sms"),
        *,
        concurrency: int = 4,
        twilio_token: str = AUTH_TOKEN,
        timeout: float = 5.0,
        attempts: int = 3,
        start: bool = True,
        others: bool = False,
    ) -> Rig:
        providers: dict[str, Callable[[], Provider]] = {
            "twilio": lambda: TwilioProvider(
                account_sid=ACCOUNT_SID,
                auth_token=twilio_token,
                from_number=FROM,
                base_url=twilio.base_url,
                timeout_seconds=timeout,
                concurrency=concurrency,
            ),
            "fast2sms": lambda: Fast2SmsProvider(
                http=http, api_key=API_KEY, base_url=fast2sms.base_url, timeout_seconds=timeout
            ),
            "console": lambda: ConsoleProvider(),
        }
        chains = {"sms": [slot(providers[name](), concurrency) for name in chain]}
        if others:
            # As the daemon has them: push and e-mail through their own (console) providers.
            chains["push"] = [slot(ConsoleProvider(channel="push"), 8)]
            chains["email"] = [slot(ConsoleProvider(channel="email"), 8)]
        router = Router(chains)
        dispatcher = Dispatcher(
            db,
            router,
            clock,
            RetryPolicy(attempts_per_provider=attempts, base_seconds=0.02, max_seconds=0.2),
            lease_seconds=30,
            batch_size=16,
            on_opt_out=lambda channel, to, why: db.write(
                lambda c: opt_out(c, to, utc_iso(clock.now()), reason=why)
            ),
        )
        rig = Rig(db, Outbox(db, clock, wake=dispatcher.wake), dispatcher, router)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        await rig.dispatcher.stop(5)
        await rig.router.close()
    await http.aclose()


async def started(rig: Rig) -> Rig:
    await rig.dispatcher.start()
    return rig


async def test_sends_each_message_once_through_twilio(make_rig, twilio: TwilioPeer) -> None:
    rig = await started(make_rig())
    ids = [await rig.send(FRENCH, f"message {n}") for n in range(30)]
    messages = await rig.settle(ids)
    assert {m.status for m in messages} == {"sent"}
    bodies = sorted(r.form["Body"] for r in twilio.sent)
    assert bodies == sorted(f"message {n}" for n in range(30)), "each exactly once"
    by_sid = {r.sid: r.form["Body"] for r in twilio.sent}
    for message in messages:
        assert by_sid[message.provider_message_id] == message.body
        assert message.provider == "twilio"
    events = await rig.events(ids[0])
    assert [e.state for e in events] == ["queued", "sending", "sent"]


async def test_priority_order_otp_before_alerts_before_manual(make_rig, twilio: TwilioPeer) -> None:
    rig = make_rig(concurrency=1)
    manual = [await rig.send(FRENCH, f"manual {n}") for n in range(3)]
    alert = await rig.send(FRENCH, "alert", kind="alert")
    otp = await rig.send(FRENCH, "code 123456", kind="otp")
    await started(rig)
    await rig.settle([*manual, alert, otp])
    order = [r.form["Body"] for r in twilio.sent]
    assert order == ["code 123456", "alert", "manual 0", "manual 1", "manual 2"]


async def test_transient_errors_retry_with_backoff_then_succeed(
    make_rig, twilio: TwilioPeer
) -> None:
    twilio.script(Fault.server_error(503), match=FRENCH, times=2)
    rig = await started(make_rig())
    [message] = await rig.settle([await rig.send(FRENCH)])
    assert message.status == "sent"
    assert message.attempts == 3
    assert len(twilio.received) == 3
    states = [e.state for e in await rig.events(message.id)]
    assert states == ["queued", "sending", "queued", "sending", "queued", "sending", "sent"]


async def test_exhausted_provider_fails_over_to_the_next(
    make_rig, twilio: TwilioPeer, fast2sms: Fast2SmsPeer
) -> None:
    twilio.script(Fault.too_many(retry_after="0"), match=INDIAN)
    rig = await started(make_rig())
    [message] = await rig.settle([await rig.send(INDIAN)])
    assert message.status == "sent"
    assert message.provider == "fast2sms"
    assert len(twilio.received) == 3, "attempts_per_provider tries on twilio"
    assert [r.numbers for r in fast2sms.received] == [["9876543210"]]
    details = " ".join(e.detail or "" for e in await rig.events(message.id))
    assert "failing over" in details


async def test_recipient_error_fails_at_once_without_failover(
    make_rig, twilio: TwilioPeer, fast2sms: Fast2SmsPeer
) -> None:
    twilio.script(Fault.error(21211, message="not a valid phone number"), match=INDIAN)
    rig = await started(make_rig())
    [message] = await rig.settle([await rig.send(INDIAN)])
    assert message.status == "failed"
    assert message.error_code == "21211"
    assert len(twilio.received) == 1
    assert fast2sms.received == []


async def test_21610_records_the_opt_out_and_refuses_later_sends(
    make_rig, twilio: TwilioPeer
) -> None:
    twilio.script(Fault.error(21610, message="unsubscribed"), match=FRENCH)
    rig = await started(make_rig())
    [message] = await rig.settle([await rig.send(FRENCH)])
    assert message.status == "failed"
    deadline = time.monotonic() + 5
    while True:
        try:
            await rig.send(FRENCH, "another")
        except EnqueueError as exc:
            assert exc.field == "recipient" and "opted out" in exc.rule
            break
        assert time.monotonic() < deadline, "the opt-out was never recorded"
        await asyncio.sleep(0.05)


async def test_bad_credentials_open_the_breaker_and_fail_over_at_once(
    make_rig, twilio: TwilioPeer, fast2sms: Fast2SmsPeer
) -> None:
    rig = await started(make_rig(twilio_token="wrong-token-0000000000"))
    first = await rig.settle([await rig.send(INDIAN, "one")])
    assert first[0].status == "sent" and first[0].provider == "fast2sms"
    assert len(twilio.received) == 1, "no retries on bad credentials"
    second = await rig.settle([await rig.send(INDIAN, "two")])
    assert second[0].provider == "fast2sms"
    assert len(twilio.received) == 1, "the open breaker skips twilio without a request"
    assert rig.router.chain("sms")[0].breaker.state == "open"
    assert "wrong-token" not in (first[0].last_error or "")


async def test_every_provider_failing_ends_in_failed(
    make_rig, twilio: TwilioPeer, fast2sms: Fast2SmsPeer
) -> None:
    twilio.script(Fault.server_error(500))
    fast2sms.script(Fast2SmsFault.server_error(502))
    rig = await started(make_rig(attempts=2))
    [message] = await rig.settle([await rig.send(INDIAN)])
    assert message.status == "failed"
    assert "every provider failed" in (message.last_error or "")
    assert len(twilio.received) == 2 and len(fast2sms.received) == 2


async def test_no_provider_for_the_number(make_rig, fast2sms: Fast2SmsPeer) -> None:
    rig = await started(make_rig(chain=("fast2sms",)))
    [message] = await rig.settle([await rig.send(FRENCH)])
    assert message.status == "failed"
    assert "no provider could send it" in (message.last_error or "")
    assert fast2sms.received == []


async def test_timeout_is_transient(make_rig, twilio: TwilioPeer) -> None:
    twilio.script(Fault.slow(3.0), match=FRENCH, times=1)
    rig = await started(make_rig(chain=("twilio",), timeout=0.5))
    started_at = time.monotonic()
    [message] = await rig.settle([await rig.send(FRENCH)])
    assert message.status == "sent"
    assert message.attempts == 2
    assert time.monotonic() - started_at < 3.0


async def test_idempotency_key_never_sends_twice(make_rig, twilio: TwilioPeer) -> None:
    rig = await started(make_rig())
    first = await rig.send(FRENCH, "once", idempotency_key="order-17")
    second = await rig.send(FRENCH, "once", idempotency_key="order-17")
    assert first == second
    await rig.settle([first])
    await asyncio.sleep(0.2)
    assert len(twilio.sent) == 1


async def test_opted_out_number_is_refused_and_its_queue_cancelled(
    make_rig, db: Database, twilio: TwilioPeer
) -> None:
    rig = make_rig()  # not started: the message stays queued
    queued = await rig.send(FRENCH, "queued before STOP")
    now = utc_iso(SystemClock().now())
    result = await db.write(lambda c: opt_out(c, FRENCH, now, reason="replied STOP"))
    assert result.cancelled_message_ids == (queued,)
    with pytest.raises(EnqueueError) as caught:
        await rig.send(FRENCH, "after STOP")
    assert caught.value.status == 409
    await started(rig)
    [message] = await rig.settle([queued])
    assert message.status == "cancelled"
    assert twilio.received == []


async def test_restart_requeues_messages_left_sending(make_rig, db: Database, twilio) -> None:
    rig = make_rig()
    message_id = await rig.send(FRENCH, "interrupted")
    # What a crash mid-send leaves behind: the row committed as sending, no outcome.
    claimed = await rig.dispatcher._claim(10)
    assert [m.id for m in claimed] == [message_id]
    fresh = make_rig()
    recovered = await fresh.dispatcher.start()
    assert recovered == 1
    [message] = await fresh.settle([message_id])
    assert message.status == "sent"
    details = [e.detail or "" for e in await fresh.events(message_id)]
    assert any("a duplicate is possible" in d for d in details)


async def test_console_chain_prints_the_message(make_rig, caplog) -> None:
    rig = await started(make_rig(chain=("console",)))
    with caplog.at_level(logging.INFO, logger="providers.console.provider"):
        [message] = await rig.settle([await rig.send(FRENCH, "hello console")])
    assert message.status == "sent" and message.provider == "console"
    assert f"console sms to {FRENCH}" in caplog.text
    assert "hello console" in caplog.text


async def test_console_hides_codes_when_told(caplog) -> None:
    hidden = ConsoleProvider(reveal_codes=False)
    outgoing = Outgoing(
        message_id=1, channel="sms", recipient=FRENCH, body="code 493817", kind="otp"
    )
    with caplog.at_level(logging.INFO, logger="providers.console.provider"):
        await hidden.send(outgoing)
        await ConsoleProvider(reveal_codes=False).send(
            Outgoing(message_id=2, channel="sms", recipient=FRENCH, body="not a code")
        )
    assert "493817" not in caplog.text
    assert "not a code" in caplog.text


# -- what `sending` means: being sent now ----------------------------------------------------


async def count_sending(db: Database) -> int:
    return await db.execute(
        lambda c: c.execute("SELECT count(*) FROM messages WHERE status = 'sending'").fetchone()[0]
    )


async def crash(dispatcher: Dispatcher) -> None:
    """What kill -9 leaves behind: every task gone, no outcome written, rows left `sending`."""
    tasks = [dispatcher._loop_task, dispatcher._recorder_task, *dispatcher._inflight]
    for task in tasks:
        assert task is not None
        task.cancel()
    await asyncio.gather(*[t for t in tasks if t is not None], return_exceptions=True)


async def test_only_what_the_provider_can_take_now_is_sending(
    make_rig, db: Database, twilio: TwilioPeer
) -> None:
    # A slow Twilio taking 3 at a time, with a second SMS provider and push and e-mail beside
    # it: 22 slots in all, but an SMS can start only in one of Twilio's 3.
    twilio.latency = 0.15
    rig = await started(make_rig(concurrency=3, others=True))
    ids = [await rig.send(FRENCH, f"message {n}") for n in range(15)]
    most = 0
    while True:
        most = max(most, await count_sending(db))
        messages = [await db.execute(lambda c, i=i: get_message(c, i)) for i in ids]
        if all(m is not None and m.status in FINAL for m in messages):
            break
        await asyncio.sleep(0.01)
    assert {m.status for m in messages if m is not None} == {"sent"}
    assert most == 3, f"at most Twilio's 3 sends are `sending` (and the 3 are kept busy): {most}"
    assert sorted(r.form["Body"] for r in twilio.sent) == sorted(f"message {n}" for n in range(15))


async def test_a_crash_requeues_at_most_what_was_being_sent(
    make_rig, db: Database, twilio: TwilioPeer, caplog
) -> None:
    twilio.latency = 0.3
    rig = await started(make_rig(concurrency=3, others=True))
    ids = [await rig.send(FRENCH, f"message {n}") for n in range(12)]
    await wait_until_async(lambda: len(twilio.received) >= 4, "a second round of sends", timeout=10)
    await crash(rig.dispatcher)
    left_sending = await count_sending(db)
    assert 1 <= left_sending <= 3
    await asyncio.sleep(0.4)  # what the dead dispatcher had sent reaches the fake

    fresh = make_rig(concurrency=3, others=True)
    with caplog.at_level(logging.WARNING, logger="daemon.services.outbox.dispatcher"):
        recovered = await fresh.dispatcher.start()
    assert recovered == left_sending
    assert f"{recovered} messages were being sent" in caplog.text
    messages = await fresh.settle(ids)
    assert {m.status for m in messages} == {"sent"}
    received = Counter(r.form["Body"] for r in twilio.sent)
    assert set(received) == {f"message {n}" for n in range(12)}, "none lost"
    assert received.total() - 12 <= recovered, "a duplicate only for what was being sent"


async def test_a_slow_sms_backlog_does_not_hold_up_push(
    make_rig, db: Database, twilio: TwilioPeer
) -> None:
    twilio.latency = 0.2
    rig = await started(make_rig(chain=("twilio",), concurrency=1, others=True))
    sms_ids = [await rig.send(FRENCH, f"message {n}") for n in range(10)]
    enqueued = await rig.outbox.enqueue(
        EnqueueRequest(channel="push", recipient="device-token-1", body="Your order is ready")
    )
    [push] = await rig.settle([enqueued.message.id])
    assert push.status == "sent" and push.provider == "console"
    waiting = [await db.execute(lambda c, i=i: get_message(c, i)) for i in sms_ids]
    assert sum(1 for m in waiting if m is not None and m.status == "queued") >= 5, (
        "the push went out while most of the SMS still waited for the slow provider"
    )
    await rig.settle(sms_ids)


async def test_a_channel_without_providers_fails_at_once(make_rig, twilio: TwilioPeer) -> None:
    rig = await started(make_rig(chain=("twilio",)))  # SMS only: no e-mail chain at all
    enqueued = await rig.outbox.enqueue(
        EnqueueRequest(channel="email", recipient="shop@example.com", body="Daily report")
    )
    sms = await rig.send(FRENCH, "still sent")
    [email, text] = await rig.settle([enqueued.message.id, sms])
    assert email.status == "failed"
    assert "no email provider is configured" in (email.last_error or "")
    assert text.status == "sent"
