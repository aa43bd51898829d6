"""Backpressure: how deep each channel's queue may grow from the API, and how long it takes
to drain at the rate it is sent.

The API's sends are refused past `[outbox] max_queued` (and `max_queued_by_kind`) with 503
and a Retry-After; the daemon's own sends (TGTG alerts, one-time codes, replies, owner
alerts) are never refused here, only counted. The check runs inside the transaction that
writes the message, so concurrent requests cannot slip past it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlite_utils

from daemon.runtime.durations import human_duration
from daemon.services.outbox.meter import SendMeter
from storage.messages import count_waiting

# A Retry-After never asks for more than an hour: the queue's rate may change in the meantime.
MAX_RETRY_AFTER_SECONDS = 3600
# With no rate known (no provider sending), callers are asked to come back in a minute.
UNKNOWN_RATE_RETRY_SECONDS = 60


class QueueFull(Exception):
    """A channel's queue holds as many messages as the API may add; the text says how many,
    how long they take, and when to try again."""

    def __init__(self, text: str, retry_after: int) -> None:
        super().__init__(text)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """`[outbox] max_queued` (per channel, 0: none) and `max_queued_by_kind`."""

    max_queued: int = 0
    by_kind: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueState:
    """One channel's queue as health and the TUI show it."""

    channel: str
    waiting: int
    # Sends a second: measured over the last minute, else the provider's configured rate.
    rate_per_second: float | None
    # How long the waiting messages take at that rate; None when nothing sends.
    eta_seconds: float | None
    max_queued: int

    @property
    def full(self) -> bool:
        return 0 < self.max_queued <= self.waiting


class Backpressure:
    """Counts each channel's queue and refuses the API's sends past the limits."""

    def __init__(
        self,
        limits: QueueLimits,
        meter: SendMeter,
        configured_rate: Callable[[str], float | None],
    ) -> None:
        self.limits = limits
        self._meter = meter
        self._configured_rate = configured_rate

    def rate(self, channel: str) -> float | None:
        """What the queue drains at now: the measured rate while sends go out, else what the
        first provider not resting is configured for."""
        return self._meter.rate(channel) or self._configured_rate(channel)

    def check(self, conn: sqlite_utils.Database, channel: str, kind: str, count: int = 1) -> None:
        """Raise QueueFull when `count` more `kind` messages from the API would pass a limit.
        Runs in the write transaction."""
        limit = self.limits.max_queued
        if limit:
            waiting = count_waiting(conn, channel)
            if waiting + count > limit:
                self._refuse(channel, waiting, waiting + count - limit, f"max_queued = {limit:,}")
        by_kind = self.limits.by_kind.get(kind)
        if by_kind is not None:
            waiting = count_waiting(conn, channel, kind)
            if waiting + count > by_kind:
                over = waiting + count - by_kind
                self._refuse(channel, waiting, over, f"max_queued_by_kind {kind} = {by_kind:,}")

    def state(self, conn: sqlite_utils.Database, channel: str) -> QueueState:
        """The queue of `channel` now (read on the database thread)."""
        waiting = count_waiting(conn, channel)
        rate = self.rate(channel)
        return QueueState(
            channel=channel,
            waiting=waiting,
            rate_per_second=rate,
            eta_seconds=waiting / rate if rate else (0.0 if waiting == 0 else None),
            max_queued=self.limits.max_queued,
        )

    def _refuse(self, channel: str, waiting: int, over: int, rule: str) -> None:
        rate = self.rate(channel)
        if rate:
            retry = min(MAX_RETRY_AFTER_SECONDS, max(1, math.ceil(over / rate)))
            drain = (
                f"at {rate:,.1f} a second they take about {human_duration(waiting / rate)} to send"
            )
        else:
            retry = UNKNOWN_RATE_RETRY_SECONDS
            drain = "no provider is sending them now"
        raise QueueFull(
            f"the {channel} queue is full: {waiting:,} messages wait to be sent ([outbox] "
            f"{rule}); {drain}; try again in {retry}s",
            retry,
        )
