"""Per-provider rate limits: a token bucket on the injected clock."""

from __future__ import annotations

import asyncio

from daemon.runtime.clock import Clock


class TokenBucket:
    """`rate` sends per second on average, bursts up to `burst`; `acquire` waits its turn."""

    def __init__(self, rate: float, clock: Clock, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock.monotonic()
        self._lock = asyncio.Lock()

    def take(self) -> float:
        """Take a token if there is one (0.0), else the seconds until there will be one."""
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    async def acquire(self) -> None:
        # The lock keeps waiters in order, so a steady stream cannot starve an early one.
        async with self._lock:
            # The wait is computed from the rate, not polled: sleep exactly until a token is due.
            while (wait := self.take()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
