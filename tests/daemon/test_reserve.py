"""Reserve by reply through the one inbound entry, with TGTG's side faked: the keywords, the
daily limit, refusals in plain words, an alert too old, a cancel TGTG no longer needed, and
subscribers who may not reserve. (tests/daemon/test_reserve_e2e.py runs the real daemon.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from daemon.runtime.clock import ManualClock, utc_iso
from daemon.services.inbound import (
    InboundResult,
    InboundService,
    KeywordMatch,
    Received,
    match_keyword,
)
from daemon.services.tgtg.reserve import OFFER_MINUTES, Reservations
from daemon.services.tgtg.watcher import NoAccount
from providers.tgtg.client import Order
from providers.tgtg.errors import TgtgError, TgtgOrderRefused, TgtgRateLimited
from storage import reservations as rows
from storage import subscribers
from storage.database import Database

PHONE = "+447700900123"
HELP = "Corner Shop alerts. Reply STOP to stop."


@dataclass
class Desk:
    """TGTG's side: what it was asked, and what it answers next."""

    created: list[tuple[int, str]] = field(default_factory=list)
    aborted: list[tuple[int, str]] = field(default_factory=list)
    refuse: Exception | None = None
    refuse_abort: Exception | None = None

    async def create_order(self, subscriber_id: int, item_id: str) -> Order:
        if self.refuse is not None:
            raise self.refuse
        self.created.append((subscriber_id, item_id))
        return Order(f"ord-{len(self.created)}", item_id, "RESERVED", 1, None)

    async def abort_order(self, subscriber_id: int, order_id: str) -> None:
        if self.refuse_abort is not None:
            raise self.refuse_abort
        self.aborted.append((subscriber_id, order_id))


@pytest.fixture
def desk() -> Desk:
    return Desk()


@pytest.fixture
def service(db: Database, clock: ManualClock, desk: Desk) -> InboundService:
    reservations = Reservations(db, clock, desk, per_day=2, timezone="Europe/Paris")
    return InboundService(db, clock, HELP, reservations=reservations)


async def subscriber(db: Database, clock: ManualClock, **values: object) -> int:
    now = utc_iso(clock.now())
    fields = {"phone": PHONE, "reserve_by_reply": True} | values
    created = await db.write(lambda c: subscribers.create(c, fields, now))
    return created.id


async def offer(db: Database, clock: ManualClock, sid: int, n: int = 1) -> None:
    end = utc_iso(clock.now() + timedelta(hours=2))
    offered = rows.Offer(sid, f"77462{n}", f"Bakery {n}", f"tgtg:{sid}:77462{n}:{n}", end)
    now = utc_iso(clock.now())
    await db.write(lambda c: rows.offer(c, offered, now))


sids = iter(range(1, 10_000))


async def reply(service: InboundService, body: str) -> InboundResult:
    return await service.receive(
        Received(
            source="twilio",
            sender=PHONE,
            body=body,
            provider_message_id=f"SM{next(sids)}",
            answers_inline=True,
        )
    )


@pytest.mark.parametrize("body", ["R", "r", " r ", "R.", "r!", "«R»"])
def test_r_is_matched_as_forgivingly_as_stop(body: str) -> None:
    assert match_keyword(body, reserve=True) == KeywordMatch("reserve", "R")
    assert match_keyword(body) is None  # the feature off: an ordinary message


@pytest.mark.parametrize("body", ["C", "c", "c.", " C "])
def test_c_cancels(body: str) -> None:
    assert match_keyword(body, reserve=True) == KeywordMatch("cancel", "C")


@pytest.mark.parametrize("body", ["CANCEL", "cancel", "Cancel."])
def test_cancel_stays_an_opt_out(body: str) -> None:
    assert match_keyword(body, reserve=True) == KeywordMatch("stop", "CANCEL")


@pytest.mark.parametrize("body", ["RR", "R please", "r c", "Reserve"])
def test_anything_longer_is_ordinary(body: str) -> None:
    assert match_keyword(body, reserve=True) is None


async def test_one_reservation_per_alert_and_the_daily_limit(
    service: InboundService, db: Database, clock: ManualClock, desk: Desk
) -> None:
    sid = await subscriber(db, clock)
    await offer(db, clock, sid, 1)
    first = await reply(service, "R")
    assert first.kind == "reserve"
    assert first.reply is not None and "order ord-1" in first.reply
    # Held 5 minutes from 12:00 UTC, told in the shop's time (Paris, UTC+1 in January).
    assert "TGTG holds it unpaid 5 min: pay in the TGTG app by 13:05." in first.reply
    assert (await reply(service, "R")).reply == "Already reserved from that alert: order ord-1."
    clock.advance(60)
    await offer(db, clock, sid, 2)
    assert "order ord-2" in str((await reply(service, "r")).reply)
    clock.advance(60)
    await offer(db, clock, sid, 3)
    limited = await reply(service, "R")
    assert limited.reply is not None and limited.reply.startswith("Not reserved: 2 reservations")
    assert len(desk.created) == 2
    # A day later the limit has room again.
    clock.advance(24 * 3600)
    await offer(db, clock, sid, 4)
    assert "order ord-3" in str((await reply(service, "R")).reply)


@pytest.mark.parametrize(
    ("refusal", "said"),
    [
        (TgtgOrderRefused("SOLD_OUT"), "Not reserved: it is sold out."),
        (TgtgOrderRefused("ALREADY_RESERVED"), "already have a reservation of it"),
        (TgtgRateLimited(0, "no answer within 5s"), "reply R again in a minute"),
        (NoAccount("no working TGTG login for this subscriber"), "log in to TGTG"),
        (TgtgError(400, "bad"), "TGTG refused (status 400)"),
    ],
)
async def test_a_failed_reservation_says_why(
    service: InboundService,
    db: Database,
    clock: ManualClock,
    desk: Desk,
    refusal: Exception,
    said: str,
) -> None:
    sid = await subscriber(db, clock)
    await offer(db, clock, sid)
    desk.refuse = refusal
    answer = await reply(service, "R")
    assert answer.reply is not None and said in answer.reply
    # TGTG said no: another R may try again, and this time it works.
    desk.refuse = None
    assert "order ord-1" in str((await reply(service, "R")).reply)


async def test_an_old_alert_offers_nothing(
    service: InboundService, db: Database, clock: ManualClock, desk: Desk
) -> None:
    sid = await subscriber(db, clock)
    await offer(db, clock, sid)
    clock.advance(OFFER_MINUTES * 60 + 1)
    answer = await reply(service, "R")
    assert answer.reply is not None and answer.reply.startswith("Too late to reserve Bakery 1")
    assert desk.created == []


async def test_nothing_offered_nothing_to_cancel(
    service: InboundService, db: Database, clock: ManualClock
) -> None:
    await subscriber(db, clock)
    assert str((await reply(service, "R")).reply).startswith("Nothing to reserve")
    assert (await reply(service, "C")).reply == "No reservation to cancel."


async def test_c_when_tgtg_already_let_the_order_go(
    service: InboundService, db: Database, clock: ManualClock, desk: Desk
) -> None:
    sid = await subscriber(db, clock)
    await offer(db, clock, sid)
    await reply(service, "R")
    desk.refuse_abort = TgtgOrderRefused("ORDER_NOT_OPEN")
    answer = await reply(service, "C")
    assert answer.reply is not None and "no longer held by TGTG" in answer.reply
    # Marked given up: a second C has nothing left to cancel.
    assert (await reply(service, "C")).reply == "No reservation to cancel."
    # And the alert still counts as used.
    assert "Already reserved" in str((await reply(service, "R")).reply)


@pytest.mark.parametrize(
    "values",
    [{"reserve_by_reply": False}, {"opted_out_at": "2026-01-01T00:00:00.000000+00:00"}],
    ids=["not opted in", "opted out"],
)
async def test_who_may_not_reserve_sends_an_ordinary_message(
    service: InboundService,
    db: Database,
    clock: ManualClock,
    desk: Desk,
    values: dict[str, object],
) -> None:
    sid = await subscriber(db, clock, **values)
    await offer(db, clock, sid)
    answer = await reply(service, "R")
    assert (answer.kind, answer.reply, answer.keyword) == ("message", None, None)
    assert desk.created == []


async def test_a_reservation_cut_off_by_a_restart_is_never_tried_twice(
    service: InboundService, db: Database, clock: ManualClock, desk: Desk
) -> None:
    sid = await subscriber(db, clock)
    await offer(db, clock, sid, 1)
    # shopbell stopped while TGTG was being asked: the claim stays, with no answer.
    [found] = await db.execute(lambda c: [rows.latest_offer(c, sid)])
    assert found is not None
    assert await db.write(lambda c: rows.claim(c, found.id, utc_iso(clock.now())))
    assert "the answer follows" in str((await reply(service, "R")).reply)
    clock.advance(3 * 60)
    answer = str((await reply(service, "R")).reply)
    assert answer.startswith("Not sure Bakery 1 was reserved")
    assert "TGTG app" in answer
    assert desk.created == [], "TGTG is not asked again: it may have taken the first order"
