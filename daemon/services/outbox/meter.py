"""How fast each channel's queue drains: the sends the providers took in the last minute."""

from __future__ import annotations

from collections import deque

from daemon.runtime.clock import Clock

WINDOW_SECONDS = 60.0
# Fewer sends than this in the window say too little about the rate to use it.
MIN_SENDS = 5
# At most this many send times are kept per channel (about a minute at 160 a second); the
# rate is computed over what is kept, so it stays right above that, only over a shorter span.
MAX_KEPT = 10_000


class SendMeter:
    """Counts the sends providers accepted, per channel, on the monotonic clock; fed by the
    dispatcher's outcome hook."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._times: dict[str, deque[float]] = {}

    def observe(self, provider: str, channel: str, outcome: str, seconds: float) -> None:
        """The dispatcher's outcome hook: (provider, channel, sent|retry|failed, seconds)."""
        if outcome != "sent":
            return
        times = self._times.setdefault(channel, deque(maxlen=MAX_KEPT))
        times.append(self._clock.monotonic())

    def rate(self, channel: str) -> float | None:
        """Sends a second over the last minute, from the first send in it to now; None when
        the minute held fewer than MIN_SENDS."""
        times = self._times.get(channel)
        if not times:
            return None
        now = self._clock.monotonic()
        while times and times[0] < now - WINDOW_SECONDS:
            times.popleft()
        if len(times) < MIN_SENDS:
            return None
        return len(times) / max(now - times[0], 1.0)
