"""Is this machine's clock plausible? A start-up look at the database, and the network's time.

A Raspberry Pi has no real-time clock: it boots at the time it last saved and steps when NTP
answers, which a Pi with only a modem may never get. shopbell never refuses to start over
the clock and never sets it (it runs unprivileged, and the network's time is unauthenticated):
it says what it sees, in the log and in /api/health's "clock" component, and what to do
(docs/clock.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.runtime.clock import Clock, describe_step, utc_iso
from storage.clock import NewestRow, newest_row
from storage.database import Database
from storage.models import parse_time

log = logging.getLogger(__name__)

# A clock this much behind the newest row is behind, not merely slewed by NTP since.
BEHIND_SLACK_SECONDS = 60.0
# The network's time this far from ours: our clock is off (a few minutes, as the doctor's
# Date-header check allows a minute between two machines that both keep NTP time).
NETWORK_DRIFT_SECONDS = 300.0
SET_TIME = (
    "turn on NTP (`sudo timedatectl set-ntp true`), or set the time by hand: "
    "`sudo timedatectl set-time 'YYYY-MM-DD HH:MM:SS'` (or `sudo date -s`)"
)


@dataclass(frozen=True, slots=True)
class ClockBehind:
    """At start, the clock said `now`, and the database held a row from `newest`."""

    now: datetime
    newest: datetime
    where: str

    @property
    def seconds(self) -> float:
        return (self.newest - self.now).total_seconds()


@dataclass(frozen=True, slots=True)
class NetworkTime:
    """A time the mobile network gave (through the modem's +CCLK), when we read it."""

    source: str
    theirs: datetime
    ours: datetime
    read_monotonic: float

    @property
    def offset_seconds(self) -> float:
        """Theirs minus ours when read: positive when our clock is behind."""
        return (self.theirs - self.ours).total_seconds()


class ClockCheck:
    """The start-up check and the network's time, for the log and /api/health."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self.behind: ClockBehind | None = None
        self.network: NetworkTime | None = None

    async def at_start(self) -> ClockBehind | None:
        """Warn (and go on) when the clock is older than the newest row in the database."""
        try:
            newest: NewestRow | None = await self._db.execute(newest_row)
        except Exception:
            log.exception("clock: could not read the newest row's time; not checked")
            return None
        if newest is None:
            return None
        now = self._clock.now()
        found = ClockBehind(now=now, newest=parse_time(newest.at), where=newest.where)
        if found.seconds <= BEHIND_SLACK_SECONDS:
            return None
        self.behind = found
        log.warning(
            "clock: this machine's clock says %s, but the database holds a row from %s (%s): "
            "the clock is probably %s behind (no real-time clock? NTP not answered yet?). "
            "shopbell goes on; %s. With a modem, /api/health's clock shows the mobile "
            "network's time when the network offers it",
            _shown(now),
            _shown(found.newest),
            newest.where,
            describe_step(found.seconds).split(" by ", 1)[1],
            SET_TIME,
        )
        return found

    def network_time(self, source: str, theirs: datetime) -> None:
        """The modem read the network's time (AT+CCLK?): log it when our clock is off."""
        seen = NetworkTime(
            source=source,
            theirs=theirs,
            ours=self._clock.now(),
            read_monotonic=self._clock.monotonic(),
        )
        self.network = seen
        offset = seen.offset_seconds
        if abs(offset) <= NETWORK_DRIFT_SECONDS:
            log.info(
                "clock: the mobile network's time (%s) agrees with this machine's clock "
                "(within %.0f s)",
                source,
                abs(offset),
            )
            return
        log.warning(
            "clock: the mobile network's time (%s, AT+CCLK?) is %s, this machine's clock "
            "says %s: ours is %s. shopbell does not set the clock (it runs unprivileged); %s",
            source,
            _shown(theirs),
            _shown(seen.ours),
            _off(offset),
            SET_TIME,
        )

    def _network_now(self) -> datetime | None:
        seen = self.network
        if seen is None:
            return None
        return seen.theirs + timedelta(seconds=self._clock.monotonic() - seen.read_monotonic)

    async def health(self) -> dict[str, object]:
        """/api/health's "clock" component: degraded while the clock looks wrong."""
        now = self._clock.now()
        problems: list[str] = []
        answer: dict[str, object] = {"time": utc_iso(now)}
        behind = self.behind
        if behind is not None and now < behind.newest:
            problems.append(
                f"the clock says {_shown(now)}, but the database holds a row from "
                f"{_shown(behind.newest)}: it is probably behind (no real-time clock, no NTP "
                "yet)"
            )
            answer["newest_row"] = utc_iso(behind.newest)
        network_now = self._network_now()
        if network_now is not None and self.network is not None:
            offset = (network_now - now).total_seconds()
            answer["network_time"] = utc_iso(network_now)
            answer["network_offset_seconds"] = round(offset, 1)
            if abs(offset) > NETWORK_DRIFT_SECONDS:
                problems.append(
                    f"the mobile network's time ({self.network.source}) is "
                    f"{_shown(network_now)}: this machine's clock is {_off(offset)}"
                )
        if problems:
            answer.update(state="degraded", detail="; ".join(problems) + f"; {SET_TIME}")
            return answer
        found = "the clock is not behind the database"
        if network_now is not None:
            found += " and agrees with the mobile network's time"
        answer.update(state="ok", detail=found)
        return answer


def _shown(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _off(offset: float) -> str:
    """How our clock stands against a reference `offset` seconds ahead of it."""
    amount = describe_step(offset).split(" by ", 1)[1]
    return f"{amount} behind" if offset > 0 else f"{amount} ahead"
