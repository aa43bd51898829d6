"""Reserve by reply: "R" to an alert SMS reserves one bag on the subscriber's own TGTG account,
"C" gives their latest reservation up. Each returns the answer text; the inbound entry
(daemon/services/inbound.py) carries it back the way the "R" came.

One reservation per alert (the offer row is claimed before TGTG is called, so a second "R"
answers with the order it made), at most `per_day` reservations a subscriber in 24 hours,
none once the alert's pick-up window is over or the alert is too old. TGTG's calls go through
the watcher (its per-account lock, token refresh and request budget).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from daemon.runtime.clock import Clock, utc_iso
from daemon.services.tgtg.watcher import NoAccount
from providers.tgtg.client import Order
from providers.tgtg.errors import (
    TgtgBlocked,
    TgtgError,
    TgtgLoginError,
    TgtgOrderRefused,
    TgtgRateLimited,
    TgtgUnauthorized,
)
from storage import reservations as rows
from storage.database import Database
from storage.models import Reservation

log = logging.getLogger(__name__)
# How long TGTG holds an unpaid order: a user of TGTG Scanner's reservations saw each bag
# "released after 5 min" (Der-Henning/tgtg#384). docs/tgtg.md, "Orders".
HOLD_MINUTES = 5
# An alert older than this offers nothing any more: surprise bags sell out within minutes,
# and an "R" an hour later is more likely an answer to something else.
OFFER_MINUTES = 60
DAY = timedelta(hours=24)
# A claim still "reserving" after this long was cut off (shopbell stopped during TGTG's
# call): longer than any TGTG call with its retries takes.
LOST_CLAIM = timedelta(minutes=2)


class OrderDesk(Protocol):
    """Who talks to TGTG for a subscriber's account (the watcher)."""

    async def create_order(self, subscriber_id: int, item_id: str) -> Order: ...

    async def abort_order(self, subscriber_id: int, order_id: str) -> None: ...


class Reservations:
    """The "R" and "C" of reserve by reply; answers are plain words, never raised errors."""

    def __init__(
        self, db: Database, clock: Clock, desk: OrderDesk, *, per_day: int, timezone: str
    ) -> None:
        self._db = db
        self._clock = clock
        self._desk = desk
        self._per_day = per_day
        self._zone = ZoneInfo(timezone)

    async def reserve(self, subscriber_id: int) -> str:
        """Reserve one bag of the subscriber's latest alert that offered it."""
        now = self._clock.now()
        offer = await self._db.execute(lambda c: rows.latest_offer(c, subscriber_id))
        if offer is None:
            return "Nothing to reserve: R answers an alert that says 'Reply R to reserve 1.'"
        if offer.state in ("reserved", "cancelled"):
            cancelled = " (cancelled since)" if offer.state == "cancelled" else ""
            return f"Already reserved from that alert: order {offer.order_id}{cancelled}."
        if offer.state == "reserving":
            if now - offer.updated_at >= LOST_CLAIM:
                # TGTG may have taken the order before shopbell stopped: trying again could
                # reserve a second bag, so the subscriber looks first.
                return (
                    f"Not sure {offer.item_name} was reserved: shopbell stopped while asking "
                    "TGTG. Look under Orders in the TGTG app before reserving again."
                )
            return f"Already reserving {offer.item_name}; the answer follows."
        late = self._too_late(offer, now)
        if late is not None:
            return late
        since = utc_iso(now - DAY)
        made = await self._db.execute(lambda c: rows.reserved_since(c, subscriber_id, since))
        if made >= self._per_day:
            return (
                f"Not reserved: {made} reservations in 24 hours is the most by SMS. "
                "Reserve in the TGTG app."
            )
        stamp = utc_iso(now)
        if not await self._db.write(lambda c: rows.claim(c, offer.id, stamp)):
            return f"Already reserving {offer.item_name}; the answer follows."
        try:
            order = await self._desk.create_order(subscriber_id, offer.item_id)
        except (TgtgError, NoAccount) as exc:
            why = _why_not(exc)
            later = utc_iso(self._clock.now())
            await self._db.write(lambda c: rows.failed(c, offer.id, why, later))
            log.info(
                "tgtg: subscriber %d: no reservation of %s: %s", subscriber_id, offer.item_id, exc
            )
            return f"Not reserved: {why}."
        done = self._clock.now()
        hold = done + timedelta(minutes=HOLD_MINUTES)
        await self._db.write(
            lambda c: rows.reserved(c, offer.id, order.order_id, utc_iso(hold), utc_iso(done))
        )
        log.info(
            "tgtg: subscriber %d reserved item %s by reply (order %s)",
            subscriber_id,
            offer.item_id,
            order.order_id,
        )
        return (
            f"Reserved 1 bag: {offer.item_name}, order {order.order_id}. TGTG holds it unpaid "
            f"{HOLD_MINUTES} min: pay in the TGTG app by {self._local(hold)}. Reply C to cancel."
        )

    async def cancel(self, subscriber_id: int) -> str:
        """Give the subscriber's latest reservation up."""
        found = await self._db.execute(lambda c: rows.latest_reserved(c, subscriber_id))
        if found is None:
            return "No reservation to cancel."
        assert found.order_id is not None
        order_id = found.order_id
        try:
            await self._desk.abort_order(subscriber_id, order_id)
        except TgtgOrderRefused:
            stamp = utc_iso(self._clock.now())
            detail = "TGTG no longer held it"
            await self._db.write(lambda c: rows.cancelled(c, found.id, detail, stamp))
            return (
                f"Order {order_id} is no longer held by TGTG (paid or expired): nothing to cancel."
            )
        except (TgtgError, NoAccount) as exc:
            return f"Order {order_id} is not cancelled: {_why_not(exc)}. Cancel it in the TGTG app."
        stamp = utc_iso(self._clock.now())
        await self._db.write(lambda c: rows.cancelled(c, found.id, None, stamp))
        log.info("tgtg: subscriber %d cancelled order %s by reply", subscriber_id, order_id)
        return f"Cancelled order {order_id} ({found.item_name})."

    def _too_late(self, offer: Reservation, now: datetime) -> str | None:
        if offer.pickup_end is not None and offer.pickup_end <= now:
            return f"Too late to reserve {offer.item_name}: its pick-up time is over."
        if now - offer.offered_at > timedelta(minutes=OFFER_MINUTES):
            return (
                f"Too late to reserve {offer.item_name}: that alert is over "
                f"{OFFER_MINUTES} min old. Look in the TGTG app."
            )
        return None

    def _local(self, moment: datetime) -> str:
        return f"{moment.astimezone(self._zone):%H:%M}"


def _why_not(exc: TgtgError | NoAccount) -> str:
    """A failure in the subscriber's words."""
    if isinstance(exc, NoAccount):
        return f"{exc}; log in to TGTG through the shop again"
    if isinstance(exc, TgtgOrderRefused):
        if "ALREADY" in exc.state:
            return "TGTG says you already have a reservation of it"
        if "SOLD" in exc.state or "STOCK" in exc.state:
            return "it is sold out"
        return f"TGTG refused ({exc.state})"
    if isinstance(exc, (TgtgUnauthorized, TgtgLoginError)):
        return "your TGTG login has expired; log in again through the shop"
    if isinstance(exc, TgtgBlocked):
        return "TGTG is refusing the shop's requests for now"
    if isinstance(exc, TgtgRateLimited):
        return "TGTG did not answer in time; reply R again in a minute"
    return f"TGTG refused (status {exc.status})"
