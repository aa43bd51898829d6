"""Prometheus metrics for /metrics: counters fed by hooks, gauges read at scrape time.

Imported only when [metrics] enabled = true: prometheus_client costs memory and import time
that a daemon without a Prometheus should not pay.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from daemon.runtime.clock import Clock
from daemon.services.outbox.router import Router
from providers.modem.driver import ModemState
from providers.modem.provider import ModemProvider
from storage import tgtg as tgtg_rows
from storage.database import Database
from storage.messages import count_by_status
from storage.models import TgtgAccount

log = logging.getLogger(__name__)

# Every message state, so each series exists from the first scrape (a missing series reads as
# "no data" in Prometheus, not as zero).
MESSAGE_STATES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "cancelled",
)
TGTG_STATES = ("pending", "active", "blocked", "error", "disabled")
# From a local console print (ms) to a modem waiting out its send timeout (35 s).
SEND_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# The `_created` series double the output for no use on a single daemon; process-wide, but
# this module is the only user of prometheus_client in the daemon.
prometheus_client.disable_created_metrics()


class _Pollable(Protocol):
    """What count_polls needs of the TGTG watcher."""

    poll: Callable[[TgtgAccount], Awaitable[None]]


@dataclass(frozen=True)
class _Snapshot:
    """What the database and the modem said at the start of one scrape."""

    messages: dict[str, int] = field(default_factory=dict)
    tgtg: dict[str, int] = field(default_factory=dict)
    modem: tuple[int | None, bool] | None = None
    up_seconds: float = 0.0


class Metrics:
    """A private registry: send outcomes and TGTG polls counted as they happen, queue depth,
    TGTG accounts and the modem read when Prometheus asks."""

    def __init__(self, db: Database, clock: Clock, router: Router | None = None) -> None:
        self._db = db
        self._clock = clock
        self._router = router
        self._started = clock.monotonic()
        # Not the global REGISTRY: tests build many apps in one process, and nothing else
        # (process or platform collectors) should end up in the shop's metrics unasked.
        self.registry = CollectorRegistry(auto_describe=True)
        self.sends = Counter(
            "shopbell_sends",
            "Send attempts by provider, channel and outcome (sent, retry, failed).",
            ["provider", "channel", "outcome"],
            registry=self.registry,
        )
        self.send_seconds = Histogram(
            "shopbell_send_seconds",
            "Seconds one send attempt took, by provider (failovers included).",
            ["provider"],
            buckets=SEND_BUCKETS,
            registry=self.registry,
        )
        self.tgtg_polls = Counter(
            "shopbell_tgtg_polls",
            "TGTG account polls by outcome (ok, blocked, error, retry).",
            ["outcome"],
            registry=self.registry,
        )
        self._snapshot = _Snapshot()
        self.registry.register(_ScrapeCollector(self))

    # -- hooks ---------------------------------------------------------------------------

    def observe_send(self, provider: str, channel: str, outcome: str, seconds: float) -> None:
        """The dispatcher's on_outcome hook."""
        self.sends.labels(provider, channel, outcome).inc()
        self.send_seconds.labels(provider).observe(max(0.0, seconds))

    def count_polls(self, watcher: _Pollable) -> None:
        """Count each of `watcher`'s account polls by what it left the account in.

        Wraps the watcher's own `poll` on this instance (the scheduler's tick calls it), so
        the watcher needs no metrics code of its own.
        """
        poll = watcher.poll

        @functools.wraps(poll)
        async def counted(account: TgtgAccount) -> None:
            try:
                await poll(account)
            finally:
                self.tgtg_polls.labels(await self._poll_outcome(account)).inc()

        watcher.poll = counted  # type: ignore[method-assign]

    async def _poll_outcome(self, before: TgtgAccount) -> str:
        try:
            after = await self._db.execute(lambda conn: tgtg_rows.get_account(conn, before.id))
        except Exception:
            log.debug("metrics: cannot read TGTG account %d after its poll", before.id)
            return "error"
        if after is None:
            return "error"
        if after.last_success_at is not None and after.last_success_at != before.last_success_at:
            return "ok"
        if after.state == "active" and before.state == "pending":
            return "ok"  # a login confirmed
        if after.state in ("blocked", "error"):
            return after.state
        return "retry"

    # -- scraping ------------------------------------------------------------------------

    async def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The metrics in the format Prometheus asked for (Accept), and its content type."""

        def read(conn):  # type: ignore[no-untyped-def]
            return count_by_status(conn), tgtg_rows.count_by_state(conn)

        messages, tgtg = await self._db.execute(read)
        self._snapshot = _Snapshot(
            messages=messages,
            tgtg=tgtg,
            modem=self._modem_reading(),
            up_seconds=max(0.0, self._clock.monotonic() - self._started),
        )
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def _modem_reading(self) -> tuple[int | None, bool] | None:
        if self._router is None:
            return None
        for slot in self._router.slots():
            if isinstance(slot.provider, ModemProvider):
                driver = slot.provider.driver
                return driver.info.signal_dbm, driver.state is ModemState.READY
        return None

    @property
    def snapshot(self) -> _Snapshot:
        return self._snapshot


class _ScrapeCollector(Collector):
    """The gauges read at scrape time, from the snapshot `render` has just taken."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        # Describing by collecting would read a stale snapshot at registration; names suffice.
        return []

    def collect(self) -> Iterator[Metric]:
        snap = self._metrics.snapshot
        queue = GaugeMetricFamily(
            "shopbell_queue_depth", "Messages in the outbox by state.", labels=["status"]
        )
        for state in sorted(set(MESSAGE_STATES) | set(snap.messages)):
            queue.add_metric([state], snap.messages.get(state, 0))
        yield queue
        accounts = GaugeMetricFamily(
            "shopbell_tgtg_accounts", "TGTG accounts by state.", labels=["state"]
        )
        for state in sorted(set(TGTG_STATES) | set(snap.tgtg)):
            accounts.add_metric([state], snap.tgtg.get(state, 0))
        yield accounts
        yield GaugeMetricFamily(
            "shopbell_tgtg_blocked",
            "TGTG accounts blocked by TGTG (captcha) right now.",
            value=snap.tgtg.get("blocked", 0),
        )
        yield GaugeMetricFamily(
            "shopbell_up_seconds", "Seconds since the daemon started.", value=snap.up_seconds
        )
        if snap.modem is not None:
            signal, registered = snap.modem
            if signal is not None:
                yield GaugeMetricFamily(
                    "shopbell_modem_signal_dbm",
                    "The modem's last signal reading (AT+CSQ), in dBm.",
                    value=signal,
                )
            yield GaugeMetricFamily(
                "shopbell_modem_registered",
                "1 when the modem is ready and registered on a network, else 0.",
                value=1 if registered else 0,
            )
