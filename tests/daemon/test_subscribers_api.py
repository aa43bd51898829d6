"""Subscribers and TGTG logins over the HTTP API, with the fake TGTG behind the watcher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from daemon.services.outbox.service import Outbox
from daemon.services.owner import OwnerAlerts
from daemon.services.tgtg.watcher import Watcher, WatcherSettings
from providers.tgtg.client import TgtgClient
from storage.database import Database
from tests.daemon.api.support import TOKEN, bearer, client_for
from tests.peers.tgtg import PIN, Fault, TgtgPeer

ANA = "ana@example.com"
OWNER = "+33699999999"


@pytest.fixture
def peer() -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account(ANA)
        fake.add_item("774625", store="Bakery Blue", count=2, favorite_of=ANA)
        yield fake


@pytest.fixture
async def api(
    db: Database, clock: ManualClock, peer: TgtgPeer
) -> AsyncIterator[tuple[httpx.AsyncClient, Watcher]]:
    async with httpx.AsyncClient() as http:
        outbox = Outbox(db, clock)
        owner = OwnerAlerts(db, clock, outbox, phone=OWNER)
        watcher = Watcher(
            db,
            clock,
            TgtgClient(lambda: http, base_url=peer.base_url),
            WatcherSettings(),
            outbox=outbox,
            owner=owner,
        )
        ctx = ApiContext(
            db=db,
            clock=clock,
            api_token=TOKEN,
            version="test",
            started_at=clock.now(),
            started_monotonic=clock.monotonic(),
            outbox=outbox,
            tgtg=watcher,
            health_sources={"owner": owner.health},
        )
        async with client_for(create_app(ctx)) as client:
            client.headers.update(bearer())
            yield client, watcher


async def test_crud(api: tuple[httpx.AsyncClient, Watcher]) -> None:
    client, _ = api
    created = await client.post(
        "/api/v1/subscribers",
        json={"name": "Ana", "email": ANA, "phone": "+33 6 12 34 56 78", "channels": ["sms"]},
    )
    assert created.status_code == 201, created.text
    subscriber = created.json()["subscriber"]
    sid = subscriber["id"]
    assert subscriber["phone"] == "+33612345678" and subscriber["opted_out"] is False
    assert created.json()["tgtg"] is None
    duplicate = await client.post("/api/v1/subscribers", json={"phone": "+33612345678"})
    assert duplicate.status_code == 409 and duplicate.json()["success"] is False
    changed = await client.patch(
        f"/api/v1/subscribers/{sid}", json={"channels": ["sms", "push"], "opted_out": True}
    )
    assert changed.json()["subscriber"]["channels"] == ["sms", "push"]
    assert changed.json()["subscriber"]["opted_out"] is True
    assert changed.json()["subscriber"]["name"] == "Ana"  # untouched fields stay
    kept = await client.patch(f"/api/v1/subscribers/{sid}", json={"channels": None})
    assert kept.status_code == 200 and kept.json()["subscriber"]["channels"] == ["sms", "push"]
    listed = await client.get("/api/v1/subscribers")
    assert [s["id"] for s in listed.json()["subscribers"]] == [sid]
    bad = await client.post("/api/v1/subscribers", json={"phone": "12"})
    assert bad.status_code == 400
    assert (await client.delete(f"/api/v1/subscribers/{sid}")).status_code == 204
    assert (await client.get(f"/api/v1/subscribers/{sid}")).status_code == 404
    assert (await client.delete(f"/api/v1/subscribers/{sid}")).status_code == 404


async def test_submit_subscriber_info_creates_then_updates_and_starts_the_login(
    api: tuple[httpx.AsyncClient, Watcher], peer: TgtgPeer
) -> None:
    client, _ = api
    first = await client.post(
        "/submit_subscriber_info", json={"email": ANA, "phone_number": "+33612345678"}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["success"] is True and body["created"] is True
    assert body["tgtg"]["state"] == "pending"
    assert "access_token" not in first.text and "refresh_token" not in first.text
    assert len(peer.requests_to("authByEmail")) == 1
    again = await client.post(
        "/submit_subscriber_info",
        json={"email": "ANA2@example.com", "phone_number": "+33612345678"},
    )
    assert again.json()["created"] is False
    assert again.json()["subscriber"]["id"] == body["subscriber"]["id"]
    assert again.json()["subscriber"]["email"] == "ANA2@example.com"
    assert "could not start" in again.json()["message"]  # no TGTG account for that e-mail


async def test_login_then_pin_then_favourites_and_health(
    api: tuple[httpx.AsyncClient, Watcher],
) -> None:
    client, watcher = api
    sid = (await client.post("/api/v1/subscribers", json={"email": ANA})).json()["subscriber"]["id"]
    early = await client.post(f"/api/v1/subscribers/{sid}/tgtg/pin", json={"pin": PIN})
    assert early.status_code == 409
    started = await client.post(f"/api/v1/subscribers/{sid}/tgtg/login", json={})
    assert started.status_code == 202 and started.json()["account"]["state"] == "pending"
    wrong = await client.post(f"/api/v1/subscribers/{sid}/tgtg/pin", json={"pin": "000000"})
    assert wrong.status_code == 400
    done = await client.post(f"/api/v1/subscribers/{sid}/tgtg/pin", json={"pin": PIN})
    assert done.status_code == 200 and done.json()["account"]["state"] == "active"
    assert done.json()["account"]["logged_in"] is True
    await watcher.tick()
    favorites = await client.get("/api/v1/tgtg/favorites", params={"subscriber_id": sid})
    [favorite] = favorites.json()["favorites"]
    assert favorite["item_id"] == "774625" and favorite["items_available"] == 2
    state = await client.get(f"/api/v1/subscribers/{sid}/tgtg")
    assert state.json()["account"]["last_success_at"] is not None
    health = (await watcher.health())["accounts"]
    assert health == {"active": 1}


async def test_deleting_a_blocked_subscriber_closes_the_owners_alert(
    api: tuple[httpx.AsyncClient, Watcher], peer: TgtgPeer
) -> None:
    client, watcher = api
    sid = (await client.post("/api/v1/subscribers", json={"email": ANA})).json()["subscriber"]["id"]
    await client.post(f"/api/v1/subscribers/{sid}/tgtg/login", json={})
    await client.post(f"/api/v1/subscribers/{sid}/tgtg/pin", json={"pin": PIN})
    peer.script(Fault.captcha(), match="discover/v1/bucket", times=3)
    await watcher.tick()
    blocked = await client.get(f"/api/v1/subscribers/{sid}/tgtg")
    assert blocked.json()["account"]["state"] == "blocked"
    owner = (await client.get("/api/health")).json()["components"]["owner"]
    assert owner["state"] == "degraded"  # the owner was told
    deleted = await client.delete(f"/api/v1/subscribers/{sid}")
    assert deleted.status_code == 204
    # Nobody could clear that alert any more (no account to recover): it is closed with it.
    owner = (await client.get("/api/health")).json()["components"]["owner"]
    assert owner["state"] == "ok", owner
    assert (await client.get("/api/v1/tgtg/accounts")).json()["accounts"] == []


async def test_search_finds_every_word_in_name_email_or_phone_across_pages(
    api: tuple[httpx.AsyncClient, Watcher],
) -> None:
    client, _ = api
    for n in range(30):
        body = {"name": f"Person {n}", "phone": f"+336123456{n:02d}"}
        if n == 27:
            body |= {"name": "Zoë Martin", "email": "zoe_m@shop.example"}
        assert (await client.post("/api/v1/subscribers", json=body)).status_code == 201

    async def names(**params: object) -> list[str]:
        page = await client.get("/api/v1/subscribers", params=params)
        assert page.status_code == 200, page.text
        return [s["name"] for s in page.json()["subscribers"]]

    # Past the first page of ten: the search runs in the database, not on what was loaded.
    assert await names(limit=10, q="martin") == ["Zoë Martin"]
    assert await names(q="zoe_m shop") == ["Zoë Martin"]  # every word, e-mail included
    assert await names(q="zoe%") == []  # % and _ are letters, not wildcards
    assert await names(q="+3361234562") == [f"Person {n}" for n in range(20, 27)] + [
        "Zoë Martin",
        "Person 28",
        "Person 29",
    ]
    found = await client.get("/api/v1/subscribers", params={"q": "Person", "limit": 5})
    assert found.json()["next_after"] == 5  # pages on, with the search
    too_long = await client.get("/api/v1/subscribers", params={"q": "x" * 101})
    assert too_long.status_code == 400 and "q" in too_long.text


async def test_login_for_an_unknown_subscriber_is_404(
    api: tuple[httpx.AsyncClient, Watcher],
) -> None:
    client, _ = api
    response = await client.post("/api/v1/subscribers/99/tgtg/login", json={"email": ANA})
    assert response.status_code == 404


async def test_watch_list_and_price_drop_alerts(api: tuple[httpx.AsyncClient, Watcher]) -> None:
    client, _ = api
    created = await client.post(
        "/api/v1/subscribers",
        json={
            "phone": "+33612345678",
            "watch_items": ["774625", "https://share.toogoodtogo.com/item/998877", "774625"],
            "price_drop_alerts": True,
        },
    )
    assert created.status_code == 201, created.text
    subscriber = created.json()["subscriber"]
    assert subscriber["watch_items"] == ["774625", "998877"]  # share links become ids, once
    assert subscriber["price_drop_alerts"] is True
    sid = subscriber["id"]
    changed = await client.patch(f"/api/v1/subscribers/{sid}", json={"watch_items": []})
    assert changed.json()["subscriber"]["watch_items"] == []  # empty: every favourite
    assert changed.json()["subscriber"]["price_drop_alerts"] is True  # untouched
    got = await client.get(f"/api/v1/subscribers/{sid}")
    assert got.json()["subscriber"]["watch_items"] == []
    listed = await client.get("/api/v1/subscribers")
    assert listed.json()["subscribers"][0]["price_drop_alerts"] is True
    bad = await client.patch(
        f"/api/v1/subscribers/{sid}", json={"watch_items": ["774625", "bakery"]}
    )
    assert bad.status_code == 400
    [error] = bad.json()["errors"]
    assert error["field"] == "body.watch_items"
    assert "item 2 ('bakery') is not a TGTG item id" in error["rule"]
    flag = await client.patch(f"/api/v1/subscribers/{sid}", json={"price_drop_alerts": "often"})
    assert flag.status_code == 400
    assert flag.json()["errors"][0]["field"] == "body.price_drop_alerts"


async def test_reserve_by_reply_is_a_per_subscriber_opt_in(
    api: tuple[httpx.AsyncClient, Watcher],
) -> None:
    client, _ = api
    created = await client.post("/api/v1/subscribers", json={"phone": "+33612345679"})
    subscriber = created.json()["subscriber"]
    assert subscriber["reserve_by_reply"] is False  # off unless asked for
    sid = subscriber["id"]
    on = await client.patch(f"/api/v1/subscribers/{sid}", json={"reserve_by_reply": True})
    assert on.json()["subscriber"]["reserve_by_reply"] is True
    renamed = await client.patch(f"/api/v1/subscribers/{sid}", json={"name": "Ana"})
    assert renamed.json()["subscriber"]["reserve_by_reply"] is True  # untouched
    bad = await client.patch(f"/api/v1/subscribers/{sid}", json={"reserve_by_reply": "maybe"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "body.reserve_by_reply"
    made = await client.post(
        "/api/v1/subscribers", json={"phone": "+33612345680", "reserve_by_reply": True}
    )
    assert made.json()["subscriber"]["reserve_by_reply"] is True
