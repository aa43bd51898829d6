"""TGTG observations into alerts: a rising edge (or a price drop, for those who asked) of an
item a subscriber watches becomes one alert on each of their channels (SMS, push, e-mail),
through the outbox, once per edge (an idempotency key per channel), never to an opted-out
subscriber."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from daemon.runtime.clock import Clock, utc_iso
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from daemon.services.push import PushService
from daemon.services.tgtg.rule import (
    alert_mail,
    alert_subject,
    alert_text,
    edge_key,
    email_key,
    is_price_drop,
    is_rising_edge,
    item_name,
    price_drop_key,
    watches,
)
from providers.smtp.provider import email_body
from providers.tgtg.client import Observation
from storage import reservations as reservation_rows
from storage import subscribers as subscriber_rows
from storage import tgtg as rows
from storage.database import Database
from storage.models import Subscriber

log = logging.getLogger(__name__)
# Alerts enqueued at once (storage.database's write group size).
ALERT_CHUNK = 64


class Alerts:
    """One account's observations in, the alerts they call for out (through the outbox)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        timezone: str,
        *,
        outbox: Outbox | None = None,
        push: PushService | None = None,
        offer_reservations: bool = False,
    ) -> None:
        self._db = db
        self._clock = clock
        self._timezone = timezone
        self._outbox = outbox
        self._push = push
        # [tgtg] reserve_by_reply: SMS alerts of opted-in subscribers offer "reply R".
        self._offer_reservations = offer_reservations

    async def observe(
        self, subscriber_id: int, observations: list[Observation], *, complete: bool = False
    ) -> int:
        """Apply one account's observations to every subscriber watching those items; alert
        on each rising edge, and on each price drop for those who opted in (before storing
        the counts, so a crash in between re-alerts with the same idempotency key instead of
        missing). `complete`: this is the subscriber's whole favourites list, so favourites
        missing from it were dropped in the app. Returns the number of alerts enqueued."""
        by_id = {o.item_id: o for o in observations if o.item_id}
        previous = await self._db.execute(lambda c: rows.previous_counts(c, list(by_id)))
        edges: list[tuple[rows.Previous, int | None]] = []
        for p in previous:
            now_seen = by_id[p.item_id]
            if is_rising_edge(p.items_available, now_seen.items_available):
                edges.append((p, None))
            elif is_price_drop(
                p.items_available, p.price_minor, now_seen.items_available, now_seen.price_minor
            ):
                edges.append((p, p.price_minor))
        ids = {edge.subscriber_id for edge, _ in edges}
        # One read for every subscriber, then the alerts enqueued together, so the database
        # thread commits them in a few groups instead of one fsync per alert.
        subscribers = await self._db.execute(lambda c: subscriber_rows.get_many(c, ids))
        alerts = [
            (subscriber, edge, was)
            for edge, was in edges
            if (subscriber := subscribers.get(edge.subscriber_id)) is not None
            and watches(subscriber, edge.item_id)
            and (was is None or subscriber.price_drop_alerts)
        ]
        # A write group at a time: the dispatcher's claim waits behind every write queued
        # before it in the database thread, so 1,000 alerts handed over at once held the first
        # SMS back (bench/alert_latency.py measures it); in chunks, sending starts after the first.
        for start in range(0, len(alerts), ALERT_CHUNK):
            await asyncio.gather(
                *(
                    self._alert(subscriber, by_id[edge.item_id], self._key(edge, by_id, was), was)
                    for subscriber, edge, was in alerts[start : start + ALERT_CHUNK]
                )
            )
        seen = [_seen(o) for o in by_id.values()]
        alerted = [(e.subscriber_id, e.item_id) for _, e, _ in alerts]
        now = utc_iso(self._clock.now())
        kept = list(by_id)

        def store(c: Any) -> list[str]:
            rows.apply_observations(c, subscriber_id, seen, now, alerted=alerted)
            return rows.forget_dropped(c, subscriber_id, kept) if complete else []

        dropped = await self._db.write(store)
        if dropped:
            log.info(
                "tgtg: subscriber %d unfavourited %s; no longer watched",
                subscriber_id,
                ", ".join(dropped),
            )
        return len(alerts)

    @staticmethod
    def _key(edge: rows.Previous, by_id: dict[str, Observation], was: int | None) -> str:
        if was is None:
            return edge_key(edge.subscriber_id, edge.item_id, edge.updated_at, edge.last_alerted_at)
        price = by_id[edge.item_id].price_minor
        return price_drop_key(edge.subscriber_id, edge.item_id, edge.updated_at, price or 0)

    async def _alert(
        self, subscriber: Subscriber, item: Observation, key: str, was_minor: int | None = None
    ) -> None:
        if subscriber.opted_out_at is not None:
            return
        text = alert_text(item, self._timezone, was_minor=was_minor)
        what = "bags available" if was_minor is None else "price down"
        if "sms" in subscriber.channels and subscriber.phone and self._outbox is not None:
            offer = self._offers(subscriber, item)
            try:
                await self._outbox.enqueue(
                    EnqueueRequest(
                        channel="sms",
                        recipient=subscriber.phone,
                        body=alert_text(item, self._timezone, was_minor=was_minor, reserve=offer),
                        kind="alert",
                        subscriber_id=subscriber.id,
                        idempotency_key=key,
                    )
                )
            except EnqueueError as exc:
                log.info("tgtg: no SMS alert to subscriber %d: %s", subscriber.id, exc)
            else:
                if offer:
                    await self._offer(subscriber, item, key)
        if "push" in subscriber.channels and self._push is not None:
            try:
                await self._push.notify_subscriber(
                    subscriber.id,
                    alert_subject(item, was_minor),
                    text,
                    {"item_id": item.item_id, "url": item.sharing_url},
                    kind="alert",
                    idempotency_key=key,
                )
            except EnqueueError as exc:
                log.info("tgtg: no push alert to subscriber %d: %s", subscriber.id, exc)
        if "email" in subscriber.channels and self._outbox is not None:
            await self._email(self._outbox, subscriber, item, key, was_minor)
        log.info("tgtg: %s alert for item %s to subscriber %d", what, item.item_id, subscriber.id)

    def _offers(self, subscriber: Subscriber, item: Observation) -> bool:
        """Whether this SMS offers "reply R": the feature on, the subscriber opted in, and
        the pick-up window (when TGTG gave one) not over yet."""
        if not (self._offer_reservations and subscriber.reserve_by_reply):
            return False
        return item.pickup_end is None or item.pickup_end > self._clock.now()

    async def _offer(self, subscriber: Subscriber, item: Observation, key: str) -> None:
        # Written after the SMS is queued: an offer nobody was sent must not be reservable.
        offered = reservation_rows.Offer(
            subscriber_id=subscriber.id,
            item_id=item.item_id,
            item_name=item_name(item),
            alert_key=key,
            pickup_end=utc_iso(item.pickup_end) if item.pickup_end else None,
        )
        now = utc_iso(self._clock.now())
        await self._db.write(lambda c: reservation_rows.offer(c, offered, now))

    async def _email(
        self,
        outbox: Outbox,
        subscriber: Subscriber,
        item: Observation,
        key: str,
        was_minor: int | None,
    ) -> None:
        """The e-mail alert: a text and an HTML part, under its own idempotency key."""
        if not subscriber.email:
            log.info("tgtg: no e-mail alert to subscriber %d: they have no address", subscriber.id)
            return
        mail = alert_mail(item, self._timezone, was_minor=was_minor)
        try:
            await outbox.enqueue(
                EnqueueRequest(
                    channel="email",
                    recipient=subscriber.email,
                    subject=mail.subject,
                    body=email_body(mail.text, mail.html),
                    kind="alert",
                    subscriber_id=subscriber.id,
                    idempotency_key=email_key(key),
                )
            )
        except EnqueueError as exc:
            log.info("tgtg: no e-mail alert to subscriber %d: %s", subscriber.id, exc)


def _seen(item: Observation) -> rows.Seen:
    return rows.Seen(
        item_id=item.item_id,
        store_name=item.store_name or None,
        display_name=item.display_name or None,
        items_available=item.items_available,
        pickup_start=utc_iso(item.pickup_start) if item.pickup_start else None,
        pickup_end=utc_iso(item.pickup_end) if item.pickup_end else None,
        price_minor=item.price_minor,
        currency=item.currency if item.currency and len(item.currency) == 3 else None,
    )
