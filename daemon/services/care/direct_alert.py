"""The owner's alert for when the outbox itself cannot take one: its database file is gone,
or its disk is full.

Owner alerts normally go through the outbox (written down first, once per key). With the
database deleted or replaced, or no room left to write, nothing can be written, so these go
straight through the providers, nothing written: the SMS chain in order until one takes it,
then the e-mail chain. A vanished database is said once per daemon run; a full disk at most
once an hour (a disk hovering at full would otherwise flap). The log has each too.
"""

from __future__ import annotations

import asyncio
import logging

from daemon.runtime.clock import Clock
from daemon.services.outbox.router import Router
from providers.base import Outgoing
from storage.errors import DatabaseGoneError, DiskFullError

log = logging.getLogger(__name__)

# Each provider gets this long before the next is tried.
SEND_TIMEOUT_SECONDS = 30.0
# A full disk is told again at most this often.
DISK_FULL_QUIET_SECONDS = 3600.0


class DirectAlert:
    """Tells the owner, straight through the providers, that the database is gone."""

    def __init__(
        self, router: Router, clock: Clock, *, phone: str, email: str, shop_name: str
    ) -> None:
        self._router = router
        self._clock = clock
        self.phone = phone
        self.email = email
        self._shop = shop_name
        self._gone_told = False
        self._full_told_at: float | None = None
        self._tasks: set[asyncio.Task[list[str]]] = set()

    def database_gone(self, error: DatabaseGoneError) -> None:
        """Database.on_gone: start telling the owner (once a run); returns at once."""
        if self._gone_told:
            return
        self._gone_told = True
        self._start(
            f"shopbell on {self._shop} has stopped taking messages: {error}",
            f"{self._shop}: shopbell's database is gone",
        )

    def disk_full(self, error: DiskFullError) -> None:
        """Database.on_full: start telling the owner (at most once an hour); returns at once."""
        now = self._clock.monotonic()
        if self._full_told_at is not None and now - self._full_told_at < DISK_FULL_QUIET_SECONDS:
            return
        self._full_told_at = now
        self._start(
            f"shopbell on {self._shop} cannot write down new messages: {error}",
            f"{self._shop}: the disk is full",
        )

    def _start(self, text: str, subject: str) -> None:
        task = asyncio.get_running_loop().create_task(self.send(text, subject), name="direct-alert")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, text: str, subject: str) -> list[str]:
        """Send `text` by SMS and e-mail to the owner; the providers that took it."""
        took: list[str] = []
        for channel, recipient in (("sms", self.phone), ("email", self.email)):
            if not recipient:
                continue
            outgoing = Outgoing(
                message_id=0,
                channel=channel,
                recipient=recipient,
                body=text if channel == "sms" else f"{text}\n\n-- shopbell on {self._shop}\n",
                kind="system",
                subject=subject if channel == "email" else None,
            )
            for slot in self._router.chain(channel):
                try:
                    await asyncio.wait_for(slot.provider.send(outgoing), SEND_TIMEOUT_SECONDS)
                except Exception as exc:
                    log.warning(
                        "owner alert (direct): %s did not take the %s: %s",
                        slot.name,
                        channel,
                        type(exc).__name__,
                    )
                    continue
                took.append(slot.name)
                break
        if not (self.phone or self.email):
            log.error("owner alert (direct): nobody to tell ([owner] phone/email): %s", text)
        else:
            log.warning("owner alert (direct, through %s): %s", ", ".join(took) or "none", text)
        return took

    async def wait(self) -> None:
        """Let an alert under way finish (the daemon stopping)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=SEND_TIMEOUT_SECONDS)
