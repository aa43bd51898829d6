"""The circuit breaker's states and the token bucket's rate, on a clock the test moves."""

from __future__ import annotations

import asyncio
import logging

import pytest

from daemon.runtime.clock import ManualClock, SystemClock
from daemon.services.outbox.breaker import CircuitBreaker
from daemon.services.outbox.limits import TokenBucket


def test_breaker_opens_rests_probes_once_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("twilio", clock, cooldown_seconds=60)
    assert breaker.allow() and breaker.state == "closed"
    with caplog.at_level(logging.WARNING):
        breaker.record_down("bad credentials")
        breaker.record_down("bad credentials")
    assert [r.message for r in caplog.records].count(
        "provider twilio is down (bad credentials); failing over for 60s before trying it again"
    ) == 1, "an outage is logged once, not once per message"
    assert not breaker.allow() and breaker.state == "open"
    assert breaker.seconds_until_retry() == 60
    clock.advance(61)
    assert breaker.state == "half-open"
    assert breaker.allow(), "one message tests the provider"
    assert not breaker.allow(), "only one at a time"
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
    assert "provider twilio works again" in caplog.text


def test_breaker_probe_that_fails_reopens() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("modem", clock, cooldown_seconds=10)
    breaker.record_down("unplugged")
    clock.advance(11)
    assert breaker.allow()
    breaker.record_down("still unplugged")
    assert breaker.state == "open"
    assert not breaker.allow()


def test_bucket_gives_burst_then_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=5, clock=clock, burst=2)
    assert bucket.take() == 0.0
    assert bucket.take() == 0.0
    wait = bucket.take()
    assert wait == pytest.approx(0.2)
    clock.advance(0.2)
    assert bucket.take() == 0.0
    clock.advance(10)
    taken = sum(1 for _ in range(10) if bucket.take() == 0.0)
    assert taken == 2, "idle time never builds more than the burst"


async def test_bucket_acquire_paces_real_time() -> None:
    bucket = TokenBucket(rate=50, clock=SystemClock(), burst=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(6):
        await bucket.acquire()
    # 1 from the burst, then 5 more at 50/s: at least ~0.1 s.
    assert loop.time() - started >= 0.09
