"""Time, injected: the system clock for the daemon and a clock tests can move."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

# A wall clock that moved this much more (or less) than the monotonic clock between two looks
# was stepped, not slewed: NTP slews at most 0.5 ms per second (RFC 5905), and chrony and
# systemd-timesyncd step only beyond a fraction of a second to begin with.
JUMP_TOLERANCE_SECONDS = 2.0


class Clock(Protocol):
    """What logic asks when it needs the time; never `time.time()` deep inside."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for timeouts and uptime)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to: for tests and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def jump(self, seconds: float) -> None:
        """Step the wall clock by `seconds`, either way, without moving the monotonic one: what
        NTP (or `date -s`) does to a machine whose clock was wrong."""
        self._now += timedelta(seconds=seconds)


class JumpWatch:
    """Notices the wall clock stepping against the monotonic clock (NTP answering late on a
    Pi without a real-time clock, a hand `date -s`, a machine waking from sleep).

    Each `check()` compares how far the wall clock moved since the last check with how far
    the monotonic clock moved; NTP's slow slewing stays well inside `tolerance_seconds`.
    """

    def __init__(self, clock: Clock, tolerance_seconds: float = JUMP_TOLERANCE_SECONDS) -> None:
        self._clock = clock
        self._tolerance = tolerance_seconds
        self._offset = self._read()

    def _read(self) -> float:
        return self._clock.now().timestamp() - self._clock.monotonic()

    def check(self) -> float:
        """Seconds the wall clock stepped since the last check: positive forward, negative
        back, 0.0 when it kept step with the monotonic clock (within the tolerance)."""
        offset = self._read()
        step, self._offset = offset - self._offset, offset
        return step if abs(step) > self._tolerance else 0.0


def describe_step(seconds: float) -> str:
    """A clock step in words: "forward by 3 days 0 h", "back by 1 h 0 min", "back by 45 s"."""
    way = "forward" if seconds >= 0 else "back"
    left = abs(seconds)
    # Rounded to the smaller unit shown: 259,199.6 s is "3 days 0 h", not "2 days 23 h".
    if left >= 86_400 - 1800:
        days, hours = divmod(round(left / 3600), 24)
        amount = f"{days} day{'s' if days != 1 else ''} {hours} h"
    elif left >= 3600 - 30:
        hours, minutes = divmod(round(left / 60), 60)
        amount = f"{hours} h {minutes} min"
    elif left >= 59.5:
        minutes, secs = divmod(round(left), 60)
        amount = f"{minutes} min {secs} s"
    else:
        amount = f"{round(left)} s"
    return f"{way} by {amount}"


def utc_iso(moment: datetime) -> str:
    """The one text form of a time in the database: UTC ISO-8601 with offset."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not stored; attach a time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
