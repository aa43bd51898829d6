"""The TGTG watcher against the fake TGTG, on a real database with a manual clock: logins,
the alert rule in every case (also across a restart), backoff, blocks, budget, active hours."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from daemon.clock import ManualClock
from daemon.outbox.service import Outbox
from daemon.push import PushService
from daemon.tgtg import watcher as watcher_module
from daemon.tgtg.watcher import Watcher, WatcherSettings
from providers.tgtg.client import TgtgClient
from storage import subscribers
from storage import tgtg as tgtg_rows
from storage.database import Database
from storage.models import Message, TgtgAccount
from tests.peers.tgtg import PIN, TgtgPeer

ANA = "ana@example.com"
BEN = "ben@example.com"
ITEM = "774625"


@pytest.fixture
def peer() -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account(ANA)
        fake.add_account(BEN)
        fake.add_item(ITEM, store="Bakery Blue", count=0, favorite_of=ANA)
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


class World:
    """The database, the clock and a way to build watchers (a new one = a restart)."""

    def __init__(self, db: Database, clock: ManualClock, http: httpx.AsyncClient, peer: TgtgPeer):
        self.db, self.clock, self.http, self.peer = db, clock, http, peer
        self.outbox = Outbox(db, clock)
        self.push = PushService(db, clock)

    def watcher(self, **settings: Any) -> Watcher:
        client = TgtgClient(self.http, base_url=self.peer.base_url)
        values = {"poll_seconds": 60.0, "requests_per_minute": 100} | settings
        return Watcher(
            self.db,
            self.clock,
            client,
            WatcherSettings(**values),
            outbox=self.outbox,
            push=self.push,
        )

    async def subscriber(self, phone: str, channels: tuple[str, ...] = ("sms",)) -> int:
        now = self.clock.now().isoformat()
        created = await self.db.write(
            lambda c: subscribers.create(c, {"phone": phone, "channels": list(channels)}, now)
        )
        return created.id

    async def logged_in(self, watcher: Watcher, email: str, phone: str, **kw: Any) -> int:
        subscriber_id = await self.subscriber(phone, **kw)
        await watcher.start_login(subscriber_id, email)
        account = await watcher.submit_pin(subscriber_id, PIN)
        assert account.state == "active"
        return subscriber_id

    async def account(self, subscriber_id: int) -> TgtgAccount:
        found = await self.db.execute(lambda c: tgtg_rows.account_of(c, subscriber_id))
        assert found is not None
        return found

    async def alerts(self) -> list[Message]:
        rows = await self.db.execute(
            lambda c: list(c.query("SELECT * FROM messages WHERE kind = 'alert' ORDER BY id"))
        )
        return [Message.from_row(r) for r in rows]

    async def system(self) -> list[Message]:
        rows = await self.db.execute(
            lambda c: list(c.query("SELECT * FROM messages WHERE kind = 'system' ORDER BY id"))
        )
        return [Message.from_row(r) for r in rows]

    async def poll(self, watcher: Watcher, subscriber_id: int) -> None:
        await watcher.poll(await self.account(subscriber_id))


@pytest.fixture
def world(db: Database, clock: ManualClock, http: httpx.AsyncClient, peer: TgtgPeer) -> World:
    return World(db, clock, http, peer)


# -- login ------------------------------------------------------------------------------------


async def test_pin_login_stores_tokens_and_cookie(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    account = await world.account(sid)
    assert account.refresh_token == world.peer.accounts[ANA].refresh
    assert account.cookie and account.cookie.startswith("datadome=")
    assert account.polling_id is None and account.access_token_expires_at is not None


async def test_polling_login_completes_from_the_tick(world: World) -> None:
    watcher = world.watcher()
    sid = await world.subscriber("+33611111111")
    await watcher.start_login(sid, ANA)
    world.clock.advance(70)
    await watcher.tick()
    assert (await world.account(sid)).state == "pending"
    world.peer.confirm(ANA)
    world.clock.advance(70)
    await watcher.tick()
    account = await world.account(sid)
    assert account.state == "active" and account.refresh_token


async def test_refresh_on_401_persists_the_rotated_token(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    before = (await world.account(sid)).refresh_token
    world.peer.expire_access_tokens()
    await world.poll(watcher, sid)
    after = await world.account(sid)
    assert after.refresh_token != before
    assert after.refresh_token == world.peer.accounts[ANA].refresh
    assert after.last_success_at is not None


async def test_a_refused_refresh_asks_for_a_new_login(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.expire_access_tokens()
    world.peer.accounts[ANA].refresh = "rt-revoked"
    await world.poll(watcher, sid)
    account = await world.account(sid)
    assert account.state == "error" and "log in again" in (account.state_detail or "")


# -- the alert rule ---------------------------------------------------------------------------


async def test_alert_rule_every_case(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.set_count(ITEM, 2)
    await world.poll(watcher, sid)  # first sighting, bags there already: no alert
    assert await world.alerts() == []
    for count in (1, 3):  # changes between positive counts: no alert
        world.peer.set_count(ITEM, count)
        await world.poll(watcher, sid)
    assert await world.alerts() == []
    world.peer.set_count(ITEM, 0)  # sell-out: no alert
    await world.poll(watcher, sid)
    assert await world.alerts() == []
    world.peer.set_count(ITEM, 3)  # rising edge: one alert
    await world.poll(watcher, sid)
    await world.poll(watcher, sid)
    [alert] = await world.alerts()
    assert alert.recipient == "+33611111111" and alert.subscriber_id == sid
    assert "Bakery Blue" in alert.body and "3 bags" in alert.body
    assert "3.99 EUR" in alert.body
    assert "18:00-18:30" in alert.body  # 17:00Z in the store's Europe/Paris
    assert f"https://share.toogoodtogo.com/item/{ITEM}" in alert.body
    assert alert.segments == 1 and alert.encoding == "gsm7"
    world.peer.set_count(ITEM, 0)
    await world.poll(watcher, sid)
    world.peer.set_count(ITEM, 1)  # restock after a sell-out: alerts again
    await world.poll(watcher, sid)
    alerts = await world.alerts()
    assert len(alerts) == 2 and "1 bag," in alerts[1].body
    assert alerts[0].idempotency_key != alerts[1].idempotency_key
    [favorite] = await world.db.execute(lambda c: tgtg_rows.favorites_of(c, sid))
    assert favorite.items_available == 1 and favorite.last_alerted_at is not None


async def test_a_restart_neither_floods_nor_misses(world: World) -> None:
    first = world.watcher()
    sid = await world.logged_in(first, ANA, "+33611111111")
    await world.poll(first, sid)  # stored: 0
    world.peer.set_count(ITEM, 4)  # bags appear while the daemon is down
    second = world.watcher()  # a restart: a new watcher on the same database
    await world.poll(second, sid)
    assert len(await world.alerts()) == 1  # not missed
    third = world.watcher()
    await world.poll(third, sid)  # still 4 after another restart
    assert len(await world.alerts()) == 1  # no flood


async def test_a_crash_between_alert_and_count_sends_no_duplicate(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    await world.poll(watcher, sid)
    world.peer.set_count(ITEM, 2)
    real = tgtg_rows.apply_observations

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(tgtg_rows, "apply_observations", crash)
    with pytest.raises(RuntimeError):
        await world.poll(watcher, sid)
    monkeypatch.setattr(tgtg_rows, "apply_observations", real)
    await world.poll(world.watcher(), sid)
    assert len(await world.alerts()) == 1


async def test_opted_out_subscribers_get_nothing(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    await world.poll(watcher, sid)
    now = world.clock.now().isoformat()
    await world.db.write(lambda c: subscribers.update(c, sid, {"opted_out_at": now}, now))
    world.peer.set_count(ITEM, 2)
    await world.poll(watcher, sid)
    assert await world.alerts() == []


async def test_one_observation_serves_every_watcher_of_the_item(world: World) -> None:
    watcher = world.watcher()
    world.peer.favorite(BEN, ITEM)
    ana = await world.logged_in(watcher, ANA, "+33611111111")
    ben = await world.logged_in(watcher, BEN, "+33622222222")
    await world.poll(watcher, ana)
    await world.poll(watcher, ben)
    world.peer.set_count(ITEM, 5)
    await world.poll(watcher, ana)  # only Ana's account asks
    alerts = await world.alerts()
    assert sorted(a.recipient for a in alerts) == ["+33611111111", "+33622222222"]
    await world.poll(watcher, ben)  # Ben's own poll sees 5 again: no second alert
    assert len(await world.alerts()) == 2


async def test_push_subscribers_get_a_push(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111", channels=("push",))
    await world.push.register("device-token-" + "x" * 40, subscriber_id=sid)
    await world.poll(watcher, sid)
    world.peer.set_count(ITEM, 2)
    await world.poll(watcher, sid)
    [alert] = await world.alerts()
    assert alert.channel == "push" and "Bakery Blue" in alert.body


# -- failures, budget, active hours ----------------------------------------------------------


async def test_429_backs_off_honouring_retry_after(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.fail(429, retry_after="120", path="item/v8")
    await world.poll(watcher, sid)
    account = await world.account(sid)
    assert account.failures == 1
    assert account.backoff_until is not None
    assert (account.backoff_until - world.clock.now()).total_seconds() == pytest.approx(120)
    asked = len(world.peer.requests_to("item/v8"))
    world.clock.advance(90)
    await watcher.tick()
    assert len(world.peer.requests_to("item/v8")) == asked  # still backing off
    world.clock.advance(40)
    await watcher.tick()
    assert len(world.peer.requests_to("item/v8")) == asked + 1
    assert (await world.account(sid)).failures == 0


async def test_5xx_backs_off_exponentially(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.fail(503, times=2, path="item/v8")
    waits = []
    for _ in range(2):
        await world.poll(watcher, sid)
        account = await world.account(sid)
        assert account.backoff_until is not None
        waits.append((account.backoff_until - world.clock.now()).total_seconds())
    assert waits == [pytest.approx(30), pytest.approx(60)]


async def test_403_blocks_tells_the_owner_once_and_recovers(world: World) -> None:
    watcher = world.watcher(owner_phone="+33699999999", blocked_seconds=600)
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.fail(403, times=2, path="item/v8")
    await world.poll(watcher, sid)
    account = await world.account(sid)
    assert account.state == "blocked"
    world.clock.advance(601)
    await watcher.tick()  # still blocked: a longer back-off, no second message
    account = await world.account(sid)
    assert account.state == "blocked" and account.failures == 2
    [owner] = await world.system()
    assert owner.recipient == "+33699999999" and "blocked" in owner.body
    health = await watcher.health()
    assert health["state"] == "degraded"
    world.clock.advance(1201)
    await watcher.tick()  # the block lifted
    account = await world.account(sid)
    assert account.state == "active" and account.failures == 0
    assert len(await world.system()) == 1


async def test_403_without_an_owner_phone_is_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.fail(403, path="item/v8")
    await world.poll(watcher, sid)
    assert "owner_phone" in caplog.text
    assert await world.system() == []


async def test_the_budget_spreads_polls(world: World) -> None:
    watcher = world.watcher(requests_per_minute=8, poll_seconds=600)
    for n, email in enumerate((ANA, BEN, "cy@example.com")):
        if email not in world.peer.accounts:
            world.peer.add_account(email)
        await world.logged_in(watcher, email, f"+3361111111{n}")
    # The logins spent 6 requests of 8 this minute: only two polls fit.
    detail = await watcher.tick()
    assert detail.startswith("polled 2, deferred 1")
    assert len(world.peer.requests_to("item/v8")) == 2
    world.clock.advance(61)
    detail = await watcher.tick()
    assert detail.startswith("polled 1, deferred 0")  # the other two are not due yet
    assert (await watcher.health())["budget"] == {"requests_per_minute": 8, "used_last_minute": 1}


async def test_polls_are_jittered_around_the_interval(world: World) -> None:
    watcher = world.watcher(poll_seconds=60)
    await world.logged_in(watcher, ANA, "+33611111111")
    await watcher.tick()
    world.clock.advance(53)
    await watcher.tick()
    assert len(world.peer.requests_to("item/v8")) == 1  # below 54 s: never due
    world.clock.advance(14)
    await watcher.tick()
    assert len(world.peer.requests_to("item/v8")) == 2  # above 66 s: always due


async def test_no_calls_outside_active_hours(world: World) -> None:
    # The clock starts at 12:00 UTC; the window is 08:00-09:00 in Paris (07:00-08:00 UTC).
    watcher = world.watcher(active_hours="08:00-09:00", timezone="Europe/Paris")
    sid = await world.subscriber("+33611111111")
    world.peer.confirm(ANA)
    await watcher.start_login(sid, ANA)
    asked = len(world.peer.received)
    world.clock.advance(120)
    assert await watcher.tick() == "outside active hours"
    assert len(world.peer.received) == asked
    assert (await watcher.health())["in_active_hours"] is False
    # 07:30 UTC the next day: inside.
    world.clock.advance((datetime(2026, 1, 2, 7, 30, tzinfo=UTC) - world.clock.now()).seconds)
    assert watcher.in_active_hours(world.clock.now())
    await watcher.tick()
    assert len(world.peer.received) == asked + 1
    assert (await world.account(sid)).state == "active"


def test_a_window_across_midnight() -> None:
    assert watcher_module.parse_hours("22:00-06:00") is not None
    with pytest.raises(ValueError):
        watcher_module.parse_hours("22:00")


async def test_an_announced_sales_window_gets_an_extra_poll(world: World) -> None:
    watcher = world.watcher(poll_seconds=60)
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    # The clock is at 12:00:00 UTC; the window opens at 12:00:20.
    world.peer.set_sales_window(ITEM, "2026-01-01T12:00:20Z")
    await watcher.tick()
    assert len(world.peer.requests_to("item/v8")) == 1
    world.clock.advance(15)
    await watcher.tick()
    assert len(world.peer.requests_to("item/v8")) == 1  # not open yet
    world.peer.set_count(ITEM, 5)  # bags go live with the window
    world.peer.set_sales_window(ITEM, None)
    world.clock.advance(8)  # 12:00:23, long before the regular poll at 54-66 s
    await watcher.tick()
    assert len(world.peer.requests_to("item/v8")) == 2
    assert len(await world.alerts()) == 1
    world.clock.advance(10)
    await watcher.tick()
    assert len(world.peer.requests_to("item/v8")) == 2  # one extra poll, not a new rhythm
    assert (await world.account(sid)).state == "active"


async def test_a_block_during_a_pending_login_resumes_the_login(world: World) -> None:
    watcher = world.watcher(blocked_seconds=60)
    sid = await world.subscriber("+33611111111")
    await watcher.start_login(sid, ANA)
    world.peer.fail(403, path="authByRequestPollingId")
    world.clock.advance(70)
    await watcher.tick()
    assert (await world.account(sid)).state == "blocked"
    world.peer.confirm(ANA)
    world.clock.advance(70)
    await watcher.tick()
    account = await world.account(sid)
    assert account.state == "active" and account.refresh_token
