"""The TGTG client's order calls against the fake: reserve, status, abort, the refusals (sold
out, already reserved, an order past its hold), a 401 refreshed on the way. (The reference
client reads the same answers in test_tgtg_reference.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from providers.tgtg.client import CREATE_ORDER, TgtgClient, Tokens
from providers.tgtg.errors import TgtgOrderRefused
from tests.peers.tgtg import ALREADY_RESERVED, NOT_OPEN, PIN, SOLD_OUT, Fault, TgtgPeer

EMAIL = "ana@example.com"
ITEM = "774625"


@pytest.fixture
def peer() -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account(EMAIL)
        fake.add_item(ITEM, store="Bakery Blue", count=2, favorite_of=EMAIL)
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def client(peer: TgtgPeer, http: httpx.AsyncClient) -> TgtgClient:
    return TgtgClient(lambda: http, base_url=peer.base_url, timeout=5.0)


async def login(client: TgtgClient) -> Tokens:
    started = await client.auth_by_email(EMAIL)
    return await client.auth_by_pin(EMAIL, started.polling_id, PIN, started.cookie)


async def no_rotation(new: Tokens) -> None:
    raise AssertionError("no refresh expected")


async def test_reserve_then_status_then_abort(client: TgtgClient, peer: TgtgPeer) -> None:
    tokens = await login(client)
    order, _ = await client.create_order(tokens, ITEM, no_rotation)
    [create] = peer.requests_to("order/v8/create/")
    assert create.path == f"/api/{CREATE_ORDER.format(ITEM)}"
    assert create.body == {"item_count": 1}
    assert create.headers["authorization"] == f"Bearer {tokens.access_token}"
    assert order.item_id == ITEM and order.state == "RESERVED" and order.quantity == 1
    assert order.total_minor == 399 and order.currency == "EUR"
    assert order.reserved_at is not None
    assert peer.items[ITEM].count == 1  # the reservation took a bag off the shelf

    state, _ = await client.order_status(tokens, order.order_id, no_rotation)
    assert state == "RESERVED"
    await client.abort_order(tokens, order.order_id, no_rotation)
    [abort] = peer.requests_to("/abort")
    assert abort.body == {"cancel_reason_id": 1}
    assert (await client.order_status(tokens, order.order_id, no_rotation))[0] == "CANCELLED"
    assert peer.items[ITEM].count == 2


async def test_refusals_carry_tgtg_s_state(client: TgtgClient, peer: TgtgPeer) -> None:
    tokens = await login(client)
    order, _ = await client.create_order(tokens, ITEM, no_rotation)
    with pytest.raises(TgtgOrderRefused) as again:
        await client.create_order(tokens, ITEM, no_rotation)
    assert again.value.state == ALREADY_RESERVED
    peer.set_count(ITEM, 0)
    peer.add_item("999", store="Empty", count=0, favorite_of=EMAIL)
    with pytest.raises(TgtgOrderRefused) as sold:
        await client.create_order(tokens, "999", no_rotation)
    assert sold.value.state == SOLD_OUT
    peer.expire_order(order.order_id)
    with pytest.raises(TgtgOrderRefused) as expired:
        await client.abort_order(tokens, order.order_id, no_rotation)
    assert expired.value.state == NOT_OPEN


async def test_a_401_on_the_reservation_refreshes_and_reserves_once(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    tokens = await login(client)
    rotated: list[Tokens] = []

    async def keep(new: Tokens) -> None:
        rotated.append(new)

    peer.script(Fault.unauthorized(), match="order/v8/create/", times=1)
    order, now = await client.create_order(tokens, ITEM, keep)
    assert len(rotated) == 1 and now.access_token == rotated[0].access_token
    assert len(peer.orders_of(EMAIL)) == 1 and order.order_id in peer.orders
