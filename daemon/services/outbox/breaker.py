"""A circuit breaker per provider: after it fails as a whole, leave it alone for a while."""

from __future__ import annotations

import logging

from daemon.runtime.clock import Clock

log = logging.getLogger(__name__)


class CircuitBreaker:
    """Closed (use it) → open for `cooldown` seconds after a ProviderDown → half-open: one
    message may test it; success closes it, another ProviderDown opens it again.

    The outage is logged once when it starts and once when it ends, not once per message.
    """

    def __init__(self, name: str, clock: Clock, cooldown_seconds: float) -> None:
        self.name = name
        self._clock = clock
        self._cooldown = cooldown_seconds
        self._open_until: float | None = None
        self._probing = False
        self.reason = ""

    @property
    def state(self) -> str:
        if self._open_until is None:
            return "closed"
        return "open" if self._clock.monotonic() < self._open_until else "half-open"

    def allow(self) -> bool:
        """May a message be sent through this provider now?"""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._probing:
            self._probing = True  # one message tests the water; the rest keep failing over
            return True
        return False

    def record_success(self) -> None:
        if self._open_until is not None:
            log.warning("provider %s works again; back in use", self.name)
        self._open_until = None
        self._probing = False
        self.reason = ""

    def record_down(self, reason: str) -> None:
        if self._open_until is None:
            log.error(
                "provider %s is down (%s); failing over for %.0fs before trying it again",
                self.name,
                reason,
                self._cooldown,
            )
        self._open_until = self._clock.monotonic() + self._cooldown
        self._probing = False
        self.reason = reason

    def seconds_until_retry(self) -> float:
        """0 when it may be used now; else how long it rests."""
        if self._open_until is None:
            return 0.0
        return max(0.0, self._open_until - self._clock.monotonic())

    def release_probe(self) -> None:
        """The test message ended without a verdict on the provider (e.g. a recipient error)."""
        self._probing = False
