"""Push through the whole outbox: the push service, the dispatcher and the real FCM provider
against the fake FCM. A 1,000-token notification, dead-token pruning, FCM down and back, a
subscriber's devices, and the rules FCM sets on what a push may hold."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.runtime.clock import SystemClock
from daemon.services.opt_outs import OptOuts
from daemon.services.outbox.breaker import CircuitBreaker
from daemon.services.outbox.dispatcher import Dispatcher
from daemon.services.outbox.health import push_health
from daemon.services.outbox.limits import TokenBucket
from daemon.services.outbox.policy import RetryPolicy
from daemon.services.outbox.router import Router, Slot
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from daemon.services.push import (
    MAX_PAYLOAD_BYTES,
    MAX_TOKEN_LENGTH,
    MAX_TOKENS,
    PushService,
    check_content,
    check_tokens,
    check_topic,
)
from providers.fcm import FcmProvider
from providers.fcm.provider import TOPIC_PREFIX as PROVIDER_TOPIC_PREFIX
from storage.database import Database
from storage.messages import get_message
from storage.models import Message, PushToken
from storage.push import TOPIC_PREFIX, notification_messages, token_by_value
from tests.helpers import wait_until_async
from tests.peers.fcm import Fault, FcmPeer
from tests.storage import factories as f

FINAL = {"sent", "delivered", "failed", "cancelled", "undelivered"}


@pytest.fixture
def peer() -> Iterator[FcmPeer]:
    with FcmPeer() as fake:
        yield fake


@dataclass
class Rig:
    db: Database
    push: PushService
    outbox: Outbox
    dispatcher: Dispatcher
    provider: FcmProvider
    breaker: CircuitBreaker
    router: Router
    opt_outs: OptOuts

    async def settle(self, messages: list[Message], timeout: float = 30.0) -> list[Message]:  # noqa: ASYNC109
        ids = [m.id for m in messages]
        deadline = time.monotonic() + timeout
        while True:
            rows = await self.db.execute(lambda c: [get_message(c, i) for i in ids])
            if all(m is not None and m.status in FINAL for m in rows):
                return rows  # type: ignore[return-value]
            if time.monotonic() > deadline:
                stuck = [
                    (m.id, m.status, m.last_error) for m in rows if m and m.status not in FINAL
                ]
                raise AssertionError(f"not settled: {stuck[:5]}")
            await asyncio.sleep(0.05)

    async def token(self, value: str) -> PushToken | None:
        return await self.db.execute(lambda c: token_by_value(c, value))


@pytest.fixture
async def make_rig(
    db: Database, peer: FcmPeer, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    account = peer.write_service_account(tmp_path / "service-account.json")
    clock = SystemClock()
    made: list[Rig] = []

    async def build(*, threads: int = 16, start: bool = True) -> Rig:
        provider = FcmProvider(
            service_account_file=str(account),
            base_url=peer.base_url,
            timeout_seconds=2.0,
            concurrency=threads,
        )
        breaker = CircuitBreaker("fcm", clock, 0.3)
        slot = Slot(
            provider=provider, bucket=TokenBucket(5000, clock), concurrency=threads, breaker=breaker
        )
        router = Router({"push": [slot]})
        opt_outs = OptOuts(db, clock)
        dispatcher = Dispatcher(
            db,
            router,
            clock,
            RetryPolicy(attempts_per_provider=3, base_seconds=0.05, max_seconds=2.0),
            lease_seconds=30.0,
            batch_size=64,
            on_opt_out=opt_outs.record,
        )
        push = PushService(db, clock, wake=dispatcher.wake)
        outbox = Outbox(db, clock, wake=dispatcher.wake)
        rig = Rig(db, push, outbox, dispatcher, provider, breaker, router, opt_outs)
        made.append(rig)
        if start:
            await dispatcher.start()
        return rig

    yield build
    for rig in made:
        await rig.dispatcher.stop(timeout=5)
        await rig.provider.close()


async def test_a_thousand_token_notification_records_every_outcome(
    peer: FcmPeer, make_rig: Callable[..., Awaitable[Rig]]
) -> None:
    tokens = [f"device-{n:04d}:APA91b{n:06d}" for n in range(1000)]
    dead, malformed, bad_payload = tokens[0:40], tokens[100:110], tokens[200:205]
    quota_once, unavailable_once = tokens[300:320], tokens[400:1000:60]
    for token in dead:
        peer.script(Fault.dead(), match=token)
    for token in malformed:
        peer.script(Fault.malformed(), match=token)
    for token in bad_payload:
        peer.script(Fault.bad_payload(), match=token)
    for token in quota_once:
        peer.script(Fault.quota(retry_after="1"), match=token, times=1)
    for token in unavailable_once:
        # Every try of the adapter's first round fails; the outbox's retry goes through.
        peer.script(Fault.unavailable(), match=token, times=3)
    rig = await make_rig()

    queued = await rig.push.send_to_tokens(tokens, "Fresh bread", "Bags are in", {"store": "12"})

    assert len(queued.messages) == 1000
    settled = await rig.settle(list(queued.messages), timeout=60)
    by_token = {m.recipient: m for m in settled}
    failed = set(dead) | set(malformed) | set(bad_payload)
    assert {m.recipient for m in settled if m.status == "failed"} == failed
    assert {m.recipient for m in settled if m.status == "sent"} == set(tokens) - failed
    assert {by_token[t].error_code for t in dead} == {"UNREGISTERED"}
    assert {by_token[t].error_code for t in malformed} == {"INVALID_ARGUMENT"}
    # Retried, not failed (several 503s at once may also rest FCM a moment: more tries).
    assert all(by_token[t].attempts >= 2 for t in quota_once + unavailable_once)
    # FCM took each good token exactly once, with the title, body and data.
    accepted = peer.accepted
    assert sorted(s.token for s in accepted) == sorted(set(tokens) - failed)
    assert all(
        s.message["notification"] == {"title": "Fresh bread", "body": "Bags are in"}
        and s.message["data"] == {"store": "12"}
        for s in accepted
    )
    assert all(by_token[s.token].provider_message_id == s.name for s in accepted)
    # Sixteen threads, one OAuth token.
    assert len(peer.grants) == 1
    # Dead and malformed tokens are pruned; a payload FCM refused says nothing of the token.
    for token in dead + malformed:
        row = await rig.token(token)
        assert row is not None and row.invalid_at is not None, token
        assert "fcm" in (row.invalid_reason or "")
    for token in bad_payload + quota_once:
        row = await rig.token(token)
        assert row is not None and row.invalid_at is None
    stored = await rig.db.execute(lambda c: notification_messages(c, queued.notification.id))
    assert len(stored) == 1000 and all(m.status in FINAL for m in stored)


async def test_a_dead_token_is_never_sent_to_again_until_it_registers(
    peer: FcmPeer, make_rig: Callable[..., Awaitable[Rig]]
) -> None:
    rig = await make_rig()
    peer.script(Fault.dead(), match="gone")
    first = await rig.push.send_to_tokens(["alive", "gone"], "Hi", "First")
    await rig.settle(list(first.messages))
    gone = await rig.token("gone")
    assert gone is not None and gone.invalid_at is not None
    assert "UNREGISTERED" in (gone.invalid_reason or "")

    second = await rig.push.send_to_tokens(["alive", "gone"], "Hi", "Second")
    assert [m.status for m in second.messages] == ["queued", "cancelled"]
    await rig.settle(list(second.messages))
    assert [s.token for s in peer.received].count("gone") == 1
    with pytest.raises(EnqueueError) as refused:
        await rig.outbox.enqueue(EnqueueRequest(channel="push", recipient="gone", body="x"))
    assert refused.value.status == 409 and refused.value.field == "recipient"

    row, created = await rig.push.register("gone")
    assert not created and row.invalid_at is None
    peer.clear()
    third = await rig.push.send_to_tokens(["gone"], "Hi", "Welcome back")
    [sent] = await rig.settle(list(third.messages))
    assert sent.status == "sent"
    assert [s.token for s in peer.accepted] == ["gone"]


async def test_a_dead_token_cancels_the_pushes_still_queued_to_it(
    make_rig: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await make_rig(start=False)
    one = await rig.push.send_to_tokens(["doomed", "fine"], None, "One")
    two = await rig.push.send_to_tokens(["doomed"], None, "Two")
    await rig.opt_outs.record("push", "doomed", "fcm: FCM answered HTTP 404 UNREGISTERED")
    rows = await rig.db.execute(
        lambda c: [get_message(c, m.id) for m in (*one.messages, *two.messages)]
    )
    assert [(m.recipient, m.status) for m in rows] == [
        ("doomed", "cancelled"),
        ("fine", "queued"),
        ("doomed", "cancelled"),
    ]


async def test_fcm_down_pushes_wait_and_go_when_it_is_back(
    peer: FcmPeer, make_rig: Callable[..., Awaitable[Rig]]
) -> None:
    rig = await make_rig(threads=2)
    peer.stop()
    queued = await rig.push.send_to_tokens([f"d{n}" for n in range(6)], "Hi", "Later")
    await wait_until_async(
        lambda: rig.breaker.state != "closed", "FCM to count as down", timeout=10, interval=0.05
    )
    await asyncio.sleep(1.0)  # a while down: claims, probes, rests
    rows = await rig.db.execute(lambda c: [get_message(c, m.id) for m in queued.messages])
    assert all(m is not None and m.status in ("queued", "sending") for m in rows)
    assert any(m is not None and m.attempts >= 2 for m in rows)
    health = await push_health(rig.router)
    assert health["state"] == "down" and health["chain"] == ["fcm"]
    peer.start()
    settled = await rig.settle(list(queued.messages), timeout=30)
    assert {m.status for m in settled} == {"sent"}
    assert sorted(s.token for s in peer.accepted) == [f"d{n}" for n in range(6)]


async def test_a_subscribers_devices_get_their_alert(
    db: Database, peer: FcmPeer, make_rig: Callable[..., Awaitable[Rig]]
) -> None:
    rig = await make_rig()

    async def add(**over: object) -> int:
        return await db.write(lambda c: f.insert(c, "subscribers", f.subscriber(**over)))

    with_push = await add(phone="+447700900001", channels='["sms", "push"]')
    sms_only = await add(phone="+447700900002", channels='["sms"]')
    opted_out = await add(phone="+447700900003", opted_out_at=f.NOW)
    no_tokens = await add(phone="+447700900004")
    await rig.push.register("phone-a", subscriber_id=with_push, platform="android")
    await rig.push.register("tablet-b", subscriber_id=with_push, platform="ios")
    await rig.push.register("old-c", subscriber_id=with_push)
    await rig.opt_outs.record("push", "old-c", "fcm: UNREGISTERED")
    await rig.push.register("sms-only-phone", subscriber_id=sms_only)
    await rig.push.register("opted-out-phone", subscriber_id=opted_out)

    alert = await rig.push.notify_subscriber(
        with_push, "Bags at Bakery", "2 bags, 18:00-18:30", {"item": "42"}, idempotency_key="e1"
    )
    assert alert is not None and alert.created
    assert [m.recipient for m in alert.messages] == ["phone-a", "tablet-b"]
    assert all(m.kind == "alert" and m.subscriber_id == with_push for m in alert.messages)
    again = await rig.push.notify_subscriber(
        with_push, "Bags at Bakery", "2 bags, 18:00-18:30", {"item": "42"}, idempotency_key="e1"
    )
    assert again is not None and not again.created
    assert again.notification.id == alert.notification.id
    await rig.settle(list(alert.messages))
    assert sorted(s.token for s in peer.accepted) == ["phone-a", "tablet-b"]
    assert all(s.message["data"] == {"item": "42"} for s in peer.accepted)
    for someone in (sms_only, opted_out, no_tokens):
        assert await rig.push.notify_subscriber(someone, "Bags", "Now") is None
    with pytest.raises(EnqueueError) as missing:
        await rig.push.notify_subscriber(999, "Bags", "Now")
    assert missing.value.status == 404


async def test_a_topic_push_reaches_the_topic(
    peer: FcmPeer, make_rig: Callable[..., Awaitable[Rig]]
) -> None:
    rig = await make_rig()
    queued = await rig.push.send_to_topic("/topics/news", "News", "We open at 9", {"a": "b"})
    [message] = await rig.settle(list(queued.messages))
    assert message.status == "sent" and message.recipient == "topic:news"
    [sent] = peer.accepted
    assert sent.topic == "news" and sent.message["data"] == {"a": "b"}
    assert TOPIC_PREFIX == PROVIDER_TOPIC_PREFIX


async def test_refused_pushes_write_nothing(
    db: Database, make_rig: Callable[..., Awaitable[Rig]]
) -> None:
    rig = await make_rig(start=False)
    with pytest.raises(EnqueueError) as caught:
        await rig.push.send_to_tokens(["ok", 7], "Hi", "x")  # type: ignore[list-item]
    assert caught.value.field == "tokens[1]"
    with pytest.raises(EnqueueError):
        await rig.push.send_to_tokens(["ok"], "Hi", "x" * (MAX_PAYLOAD_BYTES + 1))
    counts = await db.execute(
        lambda c: [
            c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("notifications", "messages", "push_tokens")
        ]
    )
    assert counts == [0, 0, 0]


# -- the rules --------------------------------------------------------------------------------


def refused(call: Callable[[], object]) -> EnqueueError:
    with pytest.raises(EnqueueError) as caught:
        call()
    return caught.value


def test_token_rules_name_the_field() -> None:
    assert check_tokens(["a", "b", "a"]) == ["a", "b"]
    assert refused(lambda: check_tokens([])).field == "tokens"
    assert refused(lambda: check_tokens("abc")).field == "tokens"
    assert refused(lambda: check_tokens(["x"] * (MAX_TOKENS + 1))).field == "tokens"
    too_long = refused(lambda: check_tokens(["a", "b" * (MAX_TOKEN_LENGTH + 1)]))
    assert too_long.field == "tokens[1]" and str(MAX_TOKEN_LENGTH) in too_long.rule
    assert refused(lambda: check_tokens([None])).field == "tokens[0]"
    assert refused(lambda: check_tokens(["has space"])).field == "tokens[0]"
    assert refused(lambda: check_tokens(["topic:news"])).field == "tokens[0]"
    assert refused(lambda: check_tokens([""])).field == "tokens[0]"


def test_topic_rules() -> None:
    assert check_topic("/topics/news") == "news"
    assert check_topic("shop-offers_2026.v1~%") == "shop-offers_2026.v1~%"
    for bad in ("", "/topics/", "two words", "news/fr", "é", "x" * 901):
        assert refused(lambda bad=bad: check_topic(bad)).field == "topic"


def test_content_rules() -> None:
    assert check_content("", "hi", None).title is None
    assert refused(lambda: check_content("t", "   ", None)).field == "body"
    assert refused(lambda: check_content("t" * 4097, "b", None)).field == "title"
    assert refused(lambda: check_content("t", "b", {"n": 1})).field == "data.n"
    assert refused(lambda: check_content("t", "b", {"from": "x"})).field == "data.from"
    assert refused(lambda: check_content("t", "b", {"google.c": "x"})).field == "data.google.c"
    assert refused(lambda: check_content("t", "b", {"gcm_x": "x"})).field == "data.gcm_x"
    # Each fits alone, not together.
    together = refused(lambda: check_content("t" * 2000, "b" * 2000, {"k": "v" * 200}))
    assert together.field == "body" and "together" in together.rule
    # Bytes, not characters: 1366 three-byte characters are 4098 bytes.
    assert refused(lambda: check_content(None, "€" * 1366, None)).field == "body"
    assert check_content(None, "€" * 1365, None).body == "€" * 1365


@given(
    title=st.text(max_size=1500),
    body=st.text(min_size=1, max_size=1500),
    data=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=200), max_size=5),
)
def test_content_is_accepted_exactly_when_fcm_would(
    title: str, body: str, data: dict[str, str]
) -> None:
    size = sum(len(s.encode()) for s in (title, body, *data, *data.values()))
    reserved = any(
        k.lower() in ("from", "message_type", "notification")
        or k.lower().startswith(("google", "gcm"))
        for k in data
    )
    acceptable = (
        size <= MAX_PAYLOAD_BYTES
        and bool(body.strip())
        and "\x00" not in title + body
        and not reserved
    )
    try:
        checked = check_content(title, body, data)
    except EnqueueError:
        assert not acceptable
    else:
        assert acceptable
        assert checked.data == data and checked.body == body
