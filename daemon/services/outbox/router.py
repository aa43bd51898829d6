"""The provider chain of each channel, with each provider's breaker and limits."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from daemon.services.outbox.breaker import CircuitBreaker
from daemon.services.outbox.limits import TokenBucket
from providers.base import Provider, ProviderHealth

log = logging.getLogger(__name__)


@dataclass
class Slot:
    """One provider in use: its limits and its breaker."""

    provider: Provider
    bucket: TokenBucket
    concurrency: int
    breaker: CircuitBreaker

    def __post_init__(self) -> None:
        self.in_flight = asyncio.Semaphore(self.concurrency)

    @property
    def name(self) -> str:
        return self.provider.name


@dataclass(frozen=True)
class Unavailable:
    """Every provider left in the chain is resting after an outage."""

    retry_in: float


class Router:
    """Ordered providers per channel (`sms = [twilio, fast2sms]`); picks who sends next."""

    def __init__(self, chains: dict[str, list[Slot]]) -> None:
        self.chains = chains

    def chain(self, channel: str) -> list[Slot]:
        return self.chains.get(channel, [])

    def pick(self, channel: str, start: int) -> tuple[int, Slot] | Unavailable | None:
        """The first provider at or after `start` that may be used now.

        None when the chain has nothing at or after `start`; Unavailable when there are
        providers but all are resting (their breakers are open).
        """
        chain = self.chain(channel)
        if start >= len(chain):
            return None
        for position in range(start, len(chain)):
            if chain[position].breaker.allow():
                return position, chain[position]
        waits = [slot.breaker.seconds_until_retry() for slot in chain[start:]]
        return Unavailable(retry_in=max(0.0, min(waits)))

    def lanes(self, channel: str) -> list[tuple[int, int, Slot | None]]:
        """The chain cut into runs of positions that `pick` would send through the same
        provider now: (first, last, that provider), or None where every provider from there
        on is resting. Looks without taking a half-open breaker's test message."""
        chain = self.chain(channel)
        runs: list[tuple[int, int, Slot | None]] = []
        for position in range(len(chain)):
            target = next((slot for slot in chain[position:] if slot.breaker.state != "open"), None)
            if runs and runs[-1][2] is target:
                runs[-1] = (runs[-1][0], position, target)
            else:
                runs.append((position, position, target))
        return runs

    def rate(self, channel: str) -> float | None:
        """The configured sends a second of the first provider not resting, which is what
        the queue drains at; None when every provider is resting or there is none."""
        for slot in self.chain(channel):
            if slot.breaker.state != "open":
                return slot.bucket.rate
        return None

    def has(self, channel: str, position: int) -> bool:
        return position < len(self.chain(channel))

    def slots(self) -> list[Slot]:
        """Every provider in use, each once."""
        seen: dict[int, Slot] = {}
        for chain in self.chains.values():
            for slot in chain:
                seen.setdefault(id(slot), slot)
        return list(seen.values())

    @property
    def capacity(self) -> int:
        """How many sends can be in flight at once, over all providers."""
        return sum(slot.concurrency for slot in self.slots())

    async def health(self, channel: str | None = None) -> dict[str, ProviderHealth]:
        """Each provider's health: of one channel's chain, or of every provider in use."""
        report: dict[str, ProviderHealth] = {}
        for slot in self.chain(channel) if channel is not None else self.slots():
            if slot.breaker.state != "closed":
                report[slot.name] = ProviderHealth("down", slot.breaker.reason)
                continue
            try:
                report[slot.name] = await asyncio.wait_for(slot.provider.health(), 2.0)
            except Exception as exc:
                report[slot.name] = ProviderHealth("down", type(exc).__name__)
        return report

    async def close(self) -> None:
        for slot in self.slots():
            try:
                await slot.provider.close()
            except Exception:
                log.exception("closing provider %s failed", slot.name)
