"""The owner's alert for when the outbox itself cannot take one: its database file is gone.

Owner alerts normally go through the outbox (written down first, once per key). With the
database deleted or replaced, nothing can be written, so this one goes straight through the
providers, nothing written: the SMS chain in order until one takes it, then the e-mail chain.
It is said once per daemon run; the log has it too.
"""

from __future__ import annotations

import asyncio
import logging

from daemon.services.outbox.router import Router
from providers.base import Outgoing
from storage.errors import DatabaseGoneError

log = logging.getLogger(__name__)

# Each provider gets this long before the next is tried.
SEND_TIMEOUT_SECONDS = 30.0


class DirectAlert:
    """Tells the owner, straight through the providers, that the database is gone."""

    def __init__(self, router: Router, *, phone: str, email: str, shop_name: str) -> None:
        self._router = router
        self.phone = phone
        self.email = email
        self._shop = shop_name
        self._told = False
        self._tasks: set[asyncio.Task[list[str]]] = set()

    def database_gone(self, error: DatabaseGoneError) -> None:
        """Database.on_gone: start telling the owner (once); returns at once."""
        if self._told:
            return
        self._told = True
        text = f"shopbell on {self._shop} has stopped taking messages: {error}"
        task = asyncio.get_running_loop().create_task(
            self.send(text, f"{self._shop}: shopbell's database is gone"), name="direct-alert"
        )
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
