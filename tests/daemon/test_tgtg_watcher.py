"""The TGTG watcher against the fake TGTG, on a real database with a manual clock: logins,
the alert rule in every case (also across a restart), backoff, blocks, budget, active hours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from daemon.runtime.clock import ManualClock
from daemon.services.outbox.service import Outbox
from daemon.services.owner import OwnerAlerts
from daemon.services.push import PushService
from daemon.services.tgtg import watcher as watcher_module
from daemon.services.tgtg.watcher import Watcher, WatcherSettings
from providers.tgtg.app_version import AppVersion
from providers.tgtg.client import ACCESS_TOKEN_LIFETIME_SECONDS, PAGE_SIZE, TgtgClient
from providers.tgtg.datadome import DataDomeSdk
from storage import subscribers
from storage import tgtg as tgtg_rows
from storage.database import Database
from storage.models import Message, OwnerAlert, TgtgAccount
from tests.helpers import wait_until_async
from tests.peers.tgtg import PIN, Fault, TgtgPeer

ANA = "ana@example.com"
BEN = "ben@example.com"
ITEM = "774625"
OWNER = "+33699999999"
BUCKET = "discover/v1/bucket"
REFRESH = "token/v1/refresh"


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

    def watcher(self, owner_phone: str = "", **settings: Any) -> Watcher:
        # As build_tgtg makes it, pointed at the fake: DataDome's SDK and the Play page too.
        client = TgtgClient(
            lambda: self.http,
            base_url=self.peer.base_url,
            timeout=5.0,
            datadome=DataDomeSdk(self.peer.datadome_url, self.clock.now, timeout=5.0),
            app_version=AppVersion(lookup_url=self.peer.play_url, timeout=5.0),
        )
        values = {"poll_seconds": 60.0, "requests_per_minute": 100} | settings
        # The daemon's one place for owner alerts, as lifecycle builds it; new each restart.
        owner = OwnerAlerts(self.db, self.clock, self.outbox, phone=owner_phone)
        return Watcher(
            self.db,
            self.clock,
            client,
            WatcherSettings(**values),
            outbox=self.outbox,
            push=self.push,
            owner=owner,
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

    async def open_alerts(self) -> list[OwnerAlert]:
        return await OwnerAlerts(self.db, self.clock, self.outbox).open_alerts()

    async def poll(self, watcher: Watcher, subscriber_id: int) -> None:
        await watcher.poll(await self.account(subscriber_id))


def polls(world: World) -> int:
    """Favourites polls and single-item polls the fake has seen."""
    return len(world.peer.requests_to(BUCKET)) + len(world.peer.requests_to("item/v8/"))


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
    world.peer.script(Fault.too_many(retry_after="120"), match=BUCKET, times=1)
    await world.poll(watcher, sid)
    account = await world.account(sid)
    assert account.failures == 1
    assert account.backoff_until is not None
    assert (account.backoff_until - world.clock.now()).total_seconds() == pytest.approx(120)
    asked = len(world.peer.requests_to(BUCKET))
    world.clock.advance(90)
    await watcher.tick()
    assert len(world.peer.requests_to(BUCKET)) == asked  # still backing off
    world.clock.advance(40)
    await watcher.tick()
    assert len(world.peer.requests_to(BUCKET)) == asked + 1
    assert (await world.account(sid)).failures == 0


async def test_5xx_backs_off_exponentially(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.script(Fault.server_error(503), match=BUCKET, times=2)
    waits = []
    for _ in range(2):
        await world.poll(watcher, sid)
        account = await world.account(sid)
        assert account.backoff_until is not None
        waits.append((account.backoff_until - world.clock.now()).total_seconds())
    assert waits == [pytest.approx(30), pytest.approx(60)]


async def test_403_blocks_tells_the_owner_once_and_recovers(world: World) -> None:
    watcher = world.watcher(owner_phone=OWNER, blocked_seconds=600)
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.script(Fault.captcha(), match=BUCKET, times=6)
    await world.poll(watcher, sid)
    account = await world.account(sid)
    assert account.state == "blocked"
    [told] = await world.system()
    assert told.recipient == OWNER and "blocked" in told.body and ANA in told.body
    world.clock.advance(601)
    await watcher.tick()  # still blocked: a longer back-off, no second message
    account = await world.account(sid)
    assert account.state == "blocked" and account.failures == 2
    # A restart while still blocked: the open alert is in the database, so no repeat either.
    watcher = world.watcher(owner_phone=OWNER, blocked_seconds=600)
    world.clock.advance(1201)
    await watcher.tick()
    assert (await world.account(sid)).failures == 3
    assert len(await world.system()) == 1
    [open_alert] = await world.open_alerts()
    assert open_alert.key == f"tgtg-blocked:{account.id}"
    health = await watcher.health()
    assert health["state"] == "degraded"
    world.clock.advance(2401)
    await watcher.tick()  # the block lifted: the owner hears it works again, once
    account = await world.account(sid)
    assert account.state == "active" and account.failures == 0
    told, recovered = await world.system()
    assert recovered.recipient == OWNER and "works again" in recovered.body
    assert await world.open_alerts() == []
    world.clock.advance(61)
    await watcher.tick()
    assert len(await world.system()) == 2


async def test_a_new_block_after_recovery_is_told_again(world: World) -> None:
    watcher = world.watcher(owner_phone=OWNER, blocked_seconds=60)
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.script(Fault.captcha(), match=BUCKET, times=2)
    await world.poll(watcher, sid)
    world.clock.advance(70)
    await watcher.tick()
    assert (await world.account(sid)).state == "active"
    world.peer.script(Fault.captcha(), match=BUCKET, times=2)
    world.clock.advance(70)  # the next poll, jitter included
    await watcher.tick()
    assert (await world.account(sid)).state == "blocked"
    bodies = [m.body for m in await world.system()]
    assert [("blocked" in b, "works again" in b) for b in bodies] == [
        (True, False),
        (False, True),
        (True, False),
    ]


async def test_403_without_an_owner_to_tell_is_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.script(Fault.captcha(), match=BUCKET, times=2)
    await world.poll(watcher, sid)
    assert "nobody to tell" in caplog.text and "blocked" in caplog.text
    assert await world.system() == []


async def test_the_budget_spreads_polls(world: World) -> None:
    # 12 a minute keeps 4 for sales windows (30%, rounded up): regular polls get 8.
    watcher = world.watcher(requests_per_minute=12, poll_seconds=600)
    for n, email in enumerate((ANA, BEN, "cy@example.com")):
        if email not in world.peer.accounts:
            world.peer.add_account(email)
        await world.logged_in(watcher, email, f"+3361111111{n}")
    # The logins spent 6 requests of 8 this minute: only two polls fit.
    detail = await watcher.tick()
    assert detail.startswith("polled 2, deferred 1")
    assert len(world.peer.requests_to(BUCKET)) == 2
    world.clock.advance(61)
    detail = await watcher.tick()
    assert detail.startswith("polled 1, deferred 0")  # the other two are not due yet
    assert (await watcher.health())["budget"] == {
        "requests_per_minute": 12,
        "used_last_minute": 1,
        "reserved_for_sales_windows": 4,
    }


async def test_polls_are_jittered_around_the_interval(world: World) -> None:
    watcher = world.watcher(poll_seconds=60)
    await world.logged_in(watcher, ANA, "+33611111111")
    await watcher.tick()
    world.clock.advance(53)
    await watcher.tick()
    assert len(world.peer.requests_to(BUCKET)) == 1  # below 54 s: never due
    world.clock.advance(14)
    await watcher.tick()
    assert len(world.peer.requests_to(BUCKET)) == 2  # above 66 s: always due


async def test_no_calls_outside_active_hours(world: World) -> None:
    # The clock starts at 12:00 UTC; the window is 08:00-09:00 in Paris (07:00-08:00 UTC).
    watcher = world.watcher(active_hours="08:00-09:00", timezone="Europe/Paris")
    sid = await world.subscriber("+33611111111")
    world.peer.confirm(ANA)
    await watcher.start_login(sid, ANA)
    asked = len(world.peer.requests_to("/api/"))
    world.clock.advance(120)
    assert await watcher.tick() == "outside active hours"
    assert len(world.peer.requests_to("/api/")) == asked
    assert (await watcher.health())["in_active_hours"] is False
    # 07:30 UTC the next day: inside.
    world.clock.advance((datetime(2026, 1, 2, 7, 30, tzinfo=UTC) - world.clock.now()).seconds)
    assert watcher.in_active_hours(world.clock.now())
    await watcher.tick()
    assert len(world.peer.requests_to("/api/")) == asked + 1
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
    assert polls(world) == 1
    world.clock.advance(15)
    await watcher.tick()
    assert polls(world) == 1  # not open yet
    world.peer.set_count(ITEM, 5)  # bags go live with the window
    world.peer.set_sales_window(ITEM, None)
    world.clock.advance(8)  # 12:00:23, long before the regular poll at 54-66 s
    await watcher.tick()
    assert polls(world) == 2
    assert len(await world.alerts()) == 1
    world.clock.advance(10)
    await watcher.tick()
    assert polls(world) == 2  # one extra poll, not a new rhythm
    assert (await world.account(sid)).state == "active"


async def test_a_block_during_a_pending_login_resumes_the_login(world: World) -> None:
    watcher = world.watcher(owner_phone=OWNER, blocked_seconds=60)
    sid = await world.subscriber("+33611111111")
    await watcher.start_login(sid, ANA)
    world.peer.script(Fault.captcha(), match="authByRequestPollingId", times=2)
    world.clock.advance(70)
    await watcher.tick()
    assert (await world.account(sid)).state == "blocked"
    assert len(await world.open_alerts()) == 1
    world.peer.confirm(ANA)
    world.clock.advance(70)
    await watcher.tick()
    account = await world.account(sid)
    assert account.state == "active" and account.refresh_token
    assert await world.open_alerts() == []
    assert "works again" in (await world.system())[-1].body


# -- sales windows: their own timer, the budget's reserve, one item alone ----------------------

SINGLE = f"item/v8/{ITEM}"


async def _many_logged_in(world: World, watcher: Watcher, n: int) -> list[str]:
    emails = [f"sub{i}@example.com" for i in range(n)]
    for i, email in enumerate(emails):
        world.peer.add_account(email)
        world.peer.favorite(email, ITEM)
        await world.logged_in(watcher, email, f"+336100000{i:02d}")
    return emails


async def test_the_window_timer_polls_the_item_at_its_time_from_the_reserve(world: World) -> None:
    watcher = world.watcher(requests_per_minute=10, poll_seconds=60)
    await _many_logged_in(world, watcher, 8)
    world.clock.advance(61)  # the logins' requests leave the minute
    # The clock is at 12:01:01; the window opens at 12:01:31.
    world.peer.set_sales_window(ITEM, "2026-01-01T12:01:31Z")
    detail = await watcher.tick()
    # 3 of 10 are kept for windows: regular polls stop at 7 and the 8th account waits.
    assert detail.startswith("polled 7, deferred 1")
    assert not watcher.budget.available() and watcher.budget.available(window=True)
    assert watcher.next_window_at() == datetime(2026, 1, 1, 12, 1, 32, tzinfo=UTC)
    world.clock.advance(30)  # 12:01:31: the window opens and the bags go live
    world.peer.set_count(ITEM, 3)
    world.clock.advance(0.8)  # 0.2 s before the poll is due
    watcher.start()
    try:
        await asyncio.sleep(0.05)
        assert world.peer.requests_to(SINGLE) == []  # the timer waits for its time
        world.clock.advance(0.2)
        await wait_until_async(lambda: len(world.peer.requests_to(SINGLE)) == 1, "window poll")
        await wait_until_async(lambda: watcher.next_window_at() is None, "window done")
    finally:
        await watcher.stop()
    # No tick ran since the flip: the timer's one request saw it, and it served every
    # subscriber known to watch the item (the deferred 8th account was never polled yet).
    [single] = world.peer.requests_to(SINGLE)
    assert single.body == {"origin": None}
    alerts = await world.alerts()
    assert len(alerts) == 7 and all("3 bags" in a.body for a in alerts)
    assert watcher.budget.used() == 8 <= 10
    assert (await watcher.health())["sales_windows_planned"] == 0


async def test_a_window_poll_retries_while_the_count_is_still_zero(world: World) -> None:
    watcher = world.watcher(requests_per_minute=10)
    await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.set_sales_window(ITEM, "2026-01-01T12:00:10Z")
    await watcher.tick()  # the regular poll sees 0 and the announcement
    world.clock.advance(11)
    assert await watcher.poll_windows() == 1  # 12:00:11: still 0
    assert await watcher.poll_windows() == 0  # the retry is a few seconds later, not now
    world.clock.advance(4)
    assert await watcher.poll_windows() == 1  # 12:00:15: still 0
    world.peer.set_count(ITEM, 2)  # the store is a few seconds late
    world.clock.advance(4)
    assert await watcher.poll_windows() == 1  # 12:00:19: there
    assert len(await world.alerts()) == 1
    world.clock.advance(4)
    assert await watcher.poll_windows() == 0  # seen: no more window polls
    assert len(world.peer.requests_to(SINGLE)) == 3


async def test_a_window_poll_gives_up_after_its_tries(world: World) -> None:
    watcher = world.watcher(requests_per_minute=10)
    await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.set_sales_window(ITEM, "2026-01-01T12:00:10Z")
    await watcher.tick()
    world.clock.advance(11)
    for _ in range(6):
        await watcher.poll_windows()
        world.clock.advance(4)
    assert len(world.peer.requests_to(SINGLE)) == 3
    assert watcher.next_window_at() is None


async def test_window_polls_wait_when_even_the_reserve_is_spent(world: World) -> None:
    watcher = world.watcher(requests_per_minute=10)
    await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.set_sales_window(ITEM, "2026-01-01T12:00:10Z")
    await watcher.tick()
    watcher.budget.spend(10 - watcher.budget.used())  # e.g. logins filled the minute
    world.clock.advance(11)
    assert await watcher.poll_windows() == 0
    assert world.peer.requests_to(SINGLE) == []
    assert watcher.next_window_at() is not None  # planned again for when a slot frees
    world.clock.advance(60)
    assert await watcher.poll_windows() == 1


# -- watch lists, price drops, dropped favourites, the DataDome cookie ------------------------


async def _set(world: World, sid: int, **values: Any) -> None:
    now = world.clock.now().isoformat()
    await world.db.write(lambda c: subscribers.update(c, sid, values, now))


async def test_a_watch_list_limits_alerts_to_its_items(world: World) -> None:
    watcher = world.watcher()
    world.peer.favorite(BEN, ITEM)
    ana = await world.logged_in(watcher, ANA, "+33611111111")
    ben = await world.logged_in(watcher, BEN, "+33622222222")
    await _set(world, ana, watch_items=["999999"])  # Ana watches another store only
    await world.poll(watcher, ana)
    await world.poll(watcher, ben)
    world.peer.set_count(ITEM, 2)
    await world.poll(watcher, ana)
    assert [a.recipient for a in await world.alerts()] == ["+33622222222"]
    await _set(world, ana, watch_items=["999999", ITEM])
    world.peer.set_count(ITEM, 0)
    await world.poll(watcher, ana)
    world.peer.set_count(ITEM, 1)
    await world.poll(watcher, ana)
    alerts = await world.alerts()
    assert sorted(a.recipient for a in alerts[1:]) == ["+33611111111", "+33622222222"]


async def test_price_drops_alert_once_each_and_only_those_who_opted_in(world: World) -> None:
    watcher = world.watcher()
    world.peer.favorite(BEN, ITEM)
    ana = await world.logged_in(watcher, ANA, "+33611111111")
    await world.logged_in(watcher, BEN, "+33622222222")
    await _set(world, ana, price_drop_alerts=True)
    world.peer.set_count(ITEM, 2)
    await world.poll(watcher, ana)  # first sighting at 3.99
    world.peer.set_price(ITEM, 299)
    await world.poll(watcher, ana)
    await world.poll(watcher, ana)  # the same lower price again: not a new drop
    [drop] = await world.alerts()
    assert drop.recipient == "+33611111111"
    assert "price down to 2.99 EUR (was 3.99 EUR)" in drop.body and "2 bags" in drop.body
    assert drop.segments == 1
    world.peer.set_price(ITEM, 349)  # up: nothing
    await world.poll(watcher, ana)
    world.peer.set_price(ITEM, 249)  # down again: a second alert
    await world.poll(watcher, ana)
    world.peer.set_count(ITEM, 0)
    world.peer.set_price(ITEM, 199)  # cheaper but sold out: nothing
    await world.poll(watcher, ana)
    bodies = [a.body for a in await world.alerts()]
    assert len(bodies) == 2 and "was 3.49 EUR" in bodies[1]
    assert all(a.recipient == "+33611111111" for a in await world.alerts())


async def test_a_price_drop_retry_sends_no_duplicate(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    await _set(world, sid, price_drop_alerts=True)
    world.peer.set_count(ITEM, 2)
    await world.poll(watcher, sid)
    world.peer.set_price(ITEM, 299)
    real = tgtg_rows.apply_observations

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(tgtg_rows, "apply_observations", crash)
    with pytest.raises(RuntimeError):
        await world.poll(watcher, sid)
    monkeypatch.setattr(tgtg_rows, "apply_observations", real)
    await world.poll(world.watcher(), sid)
    assert len(await world.alerts()) == 1


async def test_an_unfavourited_item_stops_alerting_and_comes_back_as_new(world: World) -> None:
    watcher = world.watcher()
    world.peer.favorite(BEN, ITEM)
    world.peer.add_item("888888", store="Green Grocer", count=0, favorite_of=ANA)
    ana = await world.logged_in(watcher, ANA, "+33611111111")
    ben = await world.logged_in(watcher, BEN, "+33622222222")
    await world.poll(watcher, ana)
    await world.poll(watcher, ben)
    world.peer.unfavorite(ANA, ITEM)
    await world.poll(watcher, ana)
    watched = await world.db.execute(lambda c: tgtg_rows.favorites_of(c, ana))
    assert [f.item_id for f in watched] == ["888888"]
    world.peer.set_count(ITEM, 3)
    await world.poll(watcher, ben)  # Ben's poll serves every watcher of the item: not Ana
    assert [a.recipient for a in await world.alerts()] == ["+33622222222"]
    world.peer.favorite(ANA, ITEM)  # favourited again while bags are there
    await world.poll(watcher, ana)
    assert len(await world.alerts()) == 1  # a first sighting, no alert
    watched = await world.db.execute(lambda c: tgtg_rows.favorites_of(c, ana))
    assert {f.item_id: f.items_available for f in watched} == {"888888": 0, ITEM: 3}


async def test_the_datadome_cookie_is_kept_and_sent_back(world: World) -> None:
    watcher = world.watcher()
    sid = await world.subscriber("+33611111111")
    await watcher.start_login(sid, ANA)
    # The login's first call got a cookie from DataDome's SDK; the PIN call sends it back.
    assert len(world.peer.requests_to("/sdk/")) == 1
    assert (await world.account(sid)).cookie == f"datadome={world.peer.datadome_issued[0]}"
    await watcher.submit_pin(sid, PIN)
    assert world.peer.requests_to("authByRequestPin")[0].cookies == {
        "datadome": world.peer.datadome_issued[0]
    }
    world.peer.datadome = "renewed-on-an-answer"
    await world.poll(watcher, sid)
    assert (await world.account(sid)).cookie == "datadome=renewed-on-an-answer"
    world.peer.datadome = None
    await world.poll(world.watcher(), sid)  # a restart: the stored cookie goes out again
    assert world.peer.requests_to(REFRESH)[-1].cookies == {"datadome": "renewed-on-an-answer"}
    # The refresh's answer set the next one, which the poll sent and the account keeps.
    sent = world.peer.requests_to(BUCKET)[-1].headers["cookie"]
    assert sent == (await world.account(sid)).cookie != "datadome=renewed-on-an-answer"
    assert len(world.peer.requests_to("/sdk/")) == 1


# -- the current protocol: the bucket in pages, DataDome's challenge, the token schedule ------


async def test_favourites_come_through_the_bucket_over_several_pages(world: World) -> None:
    more = [f"9{n:05d}" for n in range(2 * PAGE_SIZE + 3)]
    for n, item_id in enumerate(more):
        world.peer.add_item(item_id, store=f"Shop {n}", count=0, favorite_of=ANA)
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    await world.poll(watcher, sid)
    pages = [r.body["paging"]["page"] for r in world.peer.requests_to(BUCKET)]
    assert pages == [0, 1, 2]
    watched = await world.db.execute(lambda c: tgtg_rows.favorites_of(c, sid))
    assert {f.item_id for f in watched} == {ITEM, *more}
    world.peer.set_count(more[-1], 2)  # a favourite on the last page gets bags
    await world.poll(watcher, sid)
    [alert] = await world.alerts()
    assert "Shop 42" in alert.body and "2 bags" in alert.body


async def test_a_datadome_challenge_recovers_after_one_cookie_refresh(world: World) -> None:
    watcher = world.watcher(owner_phone=OWNER)
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.script(Fault.captcha(), match=BUCKET, times=1)
    world.peer.set_count(ITEM, 0)
    await world.poll(watcher, sid)
    account = await world.account(sid)
    assert account.state == "active" and account.failures == 0
    assert account.backoff_until is None and account.last_success_at is not None
    refused, retried = world.peer.requests_to(BUCKET)
    assert (refused.status, retried.status) == (403, 200)
    fresh = world.peer.datadome_issued[-1]
    assert retried.cookies == {"datadome": fresh} and account.cookie == f"datadome={fresh}"
    assert await world.system() == [] and await world.open_alerts() == []
    assert (await watcher.health())["state"] == "ok"


async def test_a_second_403_blocks_the_account(world: World) -> None:
    watcher = world.watcher(owner_phone=OWNER, blocked_seconds=600)
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.script(Fault.captcha(), match=BUCKET, times=2)
    await world.poll(watcher, sid)
    account = await world.account(sid)
    assert account.state == "blocked" and "captcha" in (account.state_detail or "")
    assert account.backoff_until is not None
    assert (account.backoff_until - world.clock.now()).total_seconds() == pytest.approx(600)
    [told] = await world.system()
    assert told.recipient == OWNER and "blocked" in told.body


async def test_a_403_without_a_challenge_blocks_at_once(world: World) -> None:
    watcher = world.watcher(owner_phone=OWNER)
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.script(Fault.forbidden(), match=BUCKET, times=1)
    await world.poll(watcher, sid)
    assert (await world.account(sid)).state == "blocked"
    assert len(world.peer.requests_to(BUCKET)) == 1


async def test_tokens_are_refreshed_every_4_hours(world: World) -> None:
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    await world.poll(watcher, sid)
    world.clock.advance(ACCESS_TOKEN_LIFETIME_SECONDS - 60)  # 3 h 59 min after the login
    await world.poll(watcher, sid)
    assert world.peer.requests_to(REFRESH) == []
    before = (await world.account(sid)).refresh_token
    world.clock.advance(61)  # 4 h 0 min 1 s
    await world.poll(watcher, sid)
    [refresh] = world.peer.requests_to(REFRESH)
    assert refresh.body == {"refresh_token": before}
    assert refresh.at < world.peer.requests_to(BUCKET)[-1].at  # before the poll's own call
    account = await world.account(sid)
    assert account.refresh_token == world.peer.accounts[ANA].refresh != before
    assert account.access_token_expires_at == world.clock.now() + timedelta(hours=4)
    await world.poll(watcher, sid)
    assert len(world.peer.requests_to(REFRESH)) == 1  # the next 4 hours start now


async def test_stored_tokens_are_refreshed_at_start(world: World) -> None:
    first = world.watcher()
    sid = await world.logged_in(first, ANA, "+33611111111")
    await world.poll(first, sid)
    assert world.peer.requests_to(REFRESH) == []
    stored = (await world.account(sid)).refresh_token
    restarted = world.watcher()  # a new process with the stored tokens, minutes later
    world.clock.advance(120)
    await world.poll(restarted, sid)
    [refresh] = world.peer.requests_to(REFRESH)
    assert refresh.body == {"refresh_token": stored}
    assert stored in world.peer.spent_refresh_tokens
    assert (await world.account(sid)).refresh_token == world.peer.accounts[ANA].refresh
    world.clock.advance(60)
    await world.poll(restarted, sid)
    assert len(world.peer.requests_to(REFRESH)) == 1  # once a start, not every poll


async def test_a_cookie_without_an_equals_sign_survives(world: World) -> None:
    world.peer.extra_cookies = ["sweet sweet cookie"]  # the reference's own test value
    watcher = world.watcher()
    sid = await world.logged_in(watcher, ANA, "+33611111111")
    world.peer.extra_cookies = []
    stored = (await world.account(sid)).cookie
    assert stored is not None and stored.endswith("; sweet sweet cookie")
    await world.poll(world.watcher(), sid)  # a restart: refreshed, then polled
    assert world.peer.requests_to(REFRESH)[-1].cookies[""] == "sweet sweet cookie"
    assert world.peer.requests_to(BUCKET)[-1].cookies[""] == "sweet sweet cookie"
    assert "sweet sweet cookie" in ((await world.account(sid)).cookie or "")
