"""What the dispatcher learns a recipient will not take, recorded once.

A provider can say a send failed because of the recipient, not the message: the person
replied STOP to the shop's number (Twilio error 21610, docs/twilio.md, "Error codes"), or a
push token will never work again (FCM's UNREGISTERED, docs/fcm.md, "Dead tokens"). An SMS
recipient is opted out, so their queued messages are cancelled; a dead push token is marked,
so only that device is dropped.
"""

from __future__ import annotations

import logging

from daemon.runtime.clock import Clock, utc_iso
from storage.database import Database
from storage.optouts import opt_out
from storage.push import invalidate_token

log = logging.getLogger(__name__)


class OptOuts:
    """The dispatcher's opt-out hook: `record(channel, recipient, reason)`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(self, channel: str, recipient: str, reason: str) -> None:
        if channel == "push":
            await self._token_dead(recipient, reason)
            return
        now = utc_iso(self._clock.now())
        await self._db.write(lambda conn: opt_out(conn, recipient, now, reason=reason))
        log.info("%s opted out (%s); their queued messages are cancelled", recipient, reason)

    async def _token_dead(self, token: str, reason: str) -> None:
        """A device token that will never work: marked, its queued pushes cancelled."""
        now = utc_iso(self._clock.now())
        result = await self._db.write(
            lambda conn: invalidate_token(conn, token, now, reason=reason)
        )
        if result.changed:
            log.info(
                "push: token %d is dead (%s); it gets nothing more until the app registers it "
                "again%s",
                result.token_id,
                reason,
                f"; {len(result.cancelled_message_ids)} queued pushes cancelled"
                if result.cancelled_message_ids
                else "",
            )
