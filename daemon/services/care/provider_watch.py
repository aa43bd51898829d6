"""Provider outages into owner alerts: down past N minutes, or the SIM locked at once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from daemon.runtime.clock import Clock
from daemon.services.owner import OwnerAlerts
from providers.base import ProviderHealth


class ProviderWatch:
    """Provider health into owner alerts: down past N minutes, or the SIM locked at once.

    When a provider went down is kept in memory: after a restart the wait starts again, and
    an alert already sent stays open in the database until the provider is ok.
    """

    def __init__(self, owner: OwnerAlerts, clock: Clock, down_minutes: int) -> None:
        self._owner = owner
        self._clock = clock
        self._down_after = timedelta(minutes=down_minutes)
        self._down_since: dict[str, datetime] = {}

    async def observe(self, health: Mapping[str, ProviderHealth]) -> None:
        now = self._clock.now()
        for name, report in sorted(health.items()):
            if report.state == "ok":
                self._down_since.pop(name, None)
                await self._owner.clear(f"sim-locked:{name}", f"shopbell: {name}: SIM unlocked.")
                await self._owner.clear(
                    f"provider-down:{name}", f"shopbell: {name} works again ({report.detail})."
                )
                continue
            if report.state != "down":
                continue  # degraded: slow or retrying, not yet the owner's problem
            if report.detail.startswith("sim locked"):
                # Only a person with the PIN (or PUK) can fix it: no point in waiting.
                await self._owner.alert(
                    f"sim-locked:{name}",
                    f"shopbell: the modem's SIM is locked: {report.detail}",
                    subject="shopbell: the modem's SIM is locked",
                )
                continue  # one alert for one cause, not a second one 15 minutes on
            since = self._down_since.setdefault(name, now)
            if now - since >= self._down_after:
                minutes = int((now - since).total_seconds() // 60)
                await self._owner.alert(
                    f"provider-down:{name}",
                    f"shopbell: {name} has been down for {minutes} min: {report.detail}",
                    subject=f"shopbell: {name} is down",
                )
