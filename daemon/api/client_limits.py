"""Per-client limits on the public routes that cost money or CPU ([limits] in the config).

A fixed window per (limit, client): the first request opens a window of window_seconds,
and the window holds at most the limit's count. Fixed rather than sliding: a client at the
limit waits at most one window, and one number a client says what Retry-After means.

Memory is bounded: at most MAX_TRACKED windows are kept; when full, finished windows go
first, then the oldest. A stranger rotating through many addresses can push an old window
out early, which only ever lets a client in sooner, never locks one out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from daemon.api.access import LimitName
from daemon.config import LimitsSettings
from daemon.runtime.clock import Clock

MAX_TRACKED = 20_000

# What each limit counts, for the 429 message.
_WHAT: dict[LimitName, str] = {
    "otp_sends": "one-time codes asked for",
    "signups": "sign-ups",
    "logins": "logins",
    "subscribes": "subscriptions",
}


@dataclass(slots=True)
class _Window:
    opened: float
    count: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request over its limit: what to tell the client."""

    retry_after: int
    message: str


@dataclass
class ClientLimiter:
    settings: LimitsSettings
    clock: Clock
    max_tracked: int = MAX_TRACKED
    _windows: dict[tuple[LimitName, str], _Window] = field(default_factory=dict, init=False)

    def take(self, limit: LimitName, client: str) -> Refusal | None:
        """Count one request of `client` against `limit`; a Refusal when it is one too many."""
        now = self.clock.monotonic()
        span = self.settings.window_seconds
        allowed: int = getattr(self.settings, limit)
        key = (limit, client)
        window = self._windows.get(key)
        if window is None or now - window.opened >= span:
            self._make_room(now, span)
            self._windows.pop(key, None)  # re-inserted last: the dict stays oldest-first
            self._windows[key] = _Window(opened=now, count=1)
            return None
        if window.count < allowed:
            window.count += 1
            return None
        retry_after = max(1, math.ceil(window.opened + span - now))
        message = (
            f"too many {_WHAT[limit]} from your address: at most {allowed} every "
            f"{_minutes(span)}; try again in {retry_after} s ([limits] {limit})"
        )
        return Refusal(retry_after=retry_after, message=message)

    def _make_room(self, now: float, span: int) -> None:
        if len(self._windows) < self.max_tracked:
            return
        for key in [k for k, w in self._windows.items() if now - w.opened >= span]:
            del self._windows[key]
        while len(self._windows) >= self.max_tracked:
            del self._windows[next(iter(self._windows))]


def _minutes(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} s"
    minutes = seconds // 60
    return "minute" if minutes == 1 else f"{minutes} min"
