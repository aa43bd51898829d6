"""Retry timing: exponential, jittered, bounded, and never sooner than a provider asks."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.services.outbox.policy import RetryPolicy

policies = st.builds(
    RetryPolicy,
    attempts_per_provider=st.integers(1, 10),
    base_seconds=st.floats(0.1, 60),
    max_seconds=st.floats(1, 3600),
)


@given(policies, st.integers(1, 200), st.integers(0, 2**32 - 1))
def test_delay_within_half_step_and_step(policy: RetryPolicy, attempt: int, seed: int) -> None:
    delay = policy.delay(attempt, rng=random.Random(seed))
    step = min(policy.max_seconds, policy.base_seconds * 2 ** min(attempt - 1, 30))
    assert step / 2 <= delay <= step
    assert delay <= policy.max_seconds


@given(policies, st.integers(1, 20), st.floats(0, 10_000), st.integers(0, 2**32 - 1))
def test_retry_after_is_honoured_within_the_max(
    policy: RetryPolicy, attempt: int, retry_after: float, seed: int
) -> None:
    delay = policy.delay(attempt, retry_after=retry_after, rng=random.Random(seed))
    assert delay >= min(retry_after, policy.max_seconds)
    assert delay <= policy.max_seconds


def test_delays_grow_and_spread() -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=300)
    rng = random.Random(1)
    firsts = [policy.delay(1, rng=rng) for _ in range(200)]
    fourths = [policy.delay(4, rng=rng) for _ in range(200)]
    assert max(firsts) <= 2 < min(fourths)
    assert len({round(d, 3) for d in firsts}) > 100, "jitter spreads retries out"


def test_exhausted_after_configured_attempts() -> None:
    policy = RetryPolicy(attempts_per_provider=3)
    assert not policy.exhausted(2)
    assert policy.exhausted(3)
    with pytest.raises(ValueError):
        policy.delay(0)
