"""When to try again: exponential backoff with jitter, bounded, honouring a provider's hint."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of passing failures on one provider, before failing over to the next."""

    attempts_per_provider: int = 3
    base_seconds: float = 2.0
    max_seconds: float = 300.0

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        "Equal jitter": half the exponential step is fixed, half random, so retries of many
        messages that failed together spread out but never come back sooner than half the step.
        A provider's Retry-After is honoured (never sooner), within max_seconds.
        """
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        step = min(self.max_seconds, self.base_seconds * 2 ** min(attempt - 1, 30))
        wait = step / 2 + (rng or random).uniform(0, step / 2)
        if retry_after is not None and retry_after > wait:
            wait = retry_after
        return min(wait, self.max_seconds)

    def exhausted(self, attempts_on_provider: int) -> bool:
        """True when this provider has had all its tries for this message."""
        return attempts_on_provider >= self.attempts_per_provider
