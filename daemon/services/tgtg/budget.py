"""TGTG's request budget: requests in the last minute, across every account (the limit is
per IP), with a reserve for announced sales windows."""

from __future__ import annotations

import math
from collections import deque

from daemon.runtime.clock import Clock

WINDOW_SECONDS = 60.0
# The share of the per-IP budget that regular polls may not spend. With every account always
# due (1,000 accounts at 10 requests/min), regular polls would otherwise hold the whole minute
# and a sales-window poll would wait ~a minute for a slot; 30% of the default 10/min is 3
# requests a minute: one window's first poll and its two retries.
WINDOW_RESERVE = 0.3


class Budget:
    """Requests to TGTG in the last minute, across every account (the limit is per IP).

    `reserve` requests of each minute are for sales-window polls only.
    """

    def __init__(self, per_minute: int, clock: Clock, reserve_share: float = WINDOW_RESERVE):
        self.per_minute = per_minute
        # At least one request a minute stays for regular polls, or nothing would be watched.
        self.reserve = max(0, min(per_minute - 1, math.ceil(per_minute * reserve_share)))
        self._clock = clock
        self._sent: deque[float] = deque()

    def _trim(self) -> None:
        horizon = self._clock.monotonic() - WINDOW_SECONDS
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()

    def used(self) -> int:
        self._trim()
        return len(self._sent)

    def available(self, *, window: bool = False) -> bool:
        """A regular poll may use the budget but its reserve; a window poll all of it."""
        limit = self.per_minute if window else self.per_minute - self.reserve
        return self.used() < limit

    def free_in(self) -> float:
        """Seconds until the oldest request of the minute leaves it (0 with none)."""
        self._trim()
        if not self._sent:
            return 0.0
        return max(0.0, self._sent[0] + WINDOW_SECONDS - self._clock.monotonic())

    def spend(self, requests: int) -> None:
        now = self._clock.monotonic()
        self._sent.extend([now] * requests)
