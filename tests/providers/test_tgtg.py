"""The TGTG client against the fake TGTG: logins, refresh rotation, 401 retry, paging, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from providers.tgtg.client import PAGE_SIZE, TgtgClient, Tokens, parse_item
from providers.tgtg.errors import TgtgBlocked, TgtgLoginError, TgtgRateLimited, TgtgUnauthorized
from tests.peers.tgtg import PIN, Fault, TgtgPeer

EMAIL = "ana@example.com"


@pytest.fixture
def peer() -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account(EMAIL)
        yield fake


@pytest.fixture
async def client(peer: TgtgPeer) -> AsyncIterator[TgtgClient]:
    async with httpx.AsyncClient() as http:
        yield TgtgClient(lambda: http, base_url=peer.base_url)


async def login(client: TgtgClient) -> Tokens:
    polling_id = await client.auth_by_email(EMAIL)
    return await client.auth_by_pin(EMAIL, polling_id, PIN)


async def test_pin_login_returns_tokens_and_the_cookie(client: TgtgClient, peer: TgtgPeer) -> None:
    polling_id = await client.auth_by_email(EMAIL)
    with pytest.raises(TgtgLoginError):
        await client.auth_by_pin(EMAIL, polling_id, "000000")
    tokens = await client.auth_by_pin(EMAIL, polling_id, PIN)
    assert tokens.access_token.startswith("at-") and tokens.refresh_token.startswith("rt-")
    assert tokens.cookie is not None and tokens.cookie.startswith("datadome=")
    assert "Path" not in tokens.cookie  # only name=value is re-sent
    assert tokens.ttl_seconds == 172800
    [first] = peer.requests_to("authByEmail")
    assert first.body == {"device_type": "ANDROID", "email": EMAIL}


async def test_polling_login_waits_for_the_click(client: TgtgClient, peer: TgtgPeer) -> None:
    polling_id = await client.auth_by_email(EMAIL)
    assert await client.auth_by_polling(EMAIL, polling_id) is None
    assert peer.requests_to("authByRequestPollingId")[-1].status == 202
    peer.confirm(EMAIL)
    tokens = await client.auth_by_polling(EMAIL, polling_id)
    assert tokens is not None and tokens.refresh_token


async def test_unknown_email_is_a_login_error(client: TgtgClient) -> None:
    with pytest.raises(TgtgLoginError, match="no TGTG account"):
        await client.auth_by_email("nobody@example.com")


async def test_refresh_rotates_and_spends_the_old_token(client: TgtgClient, peer: TgtgPeer) -> None:
    tokens = await login(client)
    fresh = await client.refresh(tokens.refresh_token, tokens.cookie)
    assert fresh.refresh_token != tokens.refresh_token
    assert fresh.access_token != tokens.access_token
    assert tokens.refresh_token in peer.spent_refresh_tokens
    with pytest.raises(TgtgUnauthorized):
        await client.refresh(tokens.refresh_token, tokens.cookie)


async def test_a_401_refreshes_once_and_retries(client: TgtgClient, peer: TgtgPeer) -> None:
    peer.add_item("1", store="Bakery", count=2, favorite_of=EMAIL)
    tokens = await login(client)
    peer.expire_access_tokens()
    rotated: list[Tokens] = []

    async def on_rotate(new: Tokens) -> None:
        rotated.append(new)

    credentials = (tokens.access_token, tokens.refresh_token, tokens.cookie)
    items, used = await client.favorites(credentials, on_rotate)
    assert [i.item_id for i in items] == ["1"] and items[0].items_available == 2
    assert len(rotated) == 1 and used[1] == rotated[0].refresh_token
    assert [r.status for r in peer.requests_to("item/v8")] == [401, 200]


async def test_a_second_401_is_not_retried_again(client: TgtgClient, peer: TgtgPeer) -> None:
    tokens = await login(client)

    async def on_rotate(new: Tokens) -> None:
        pass

    peer.script(Fault.unauthorized(), match="item/v8", times=2)
    with pytest.raises(TgtgUnauthorized):
        await client.favorites((tokens.access_token, tokens.refresh_token, None), on_rotate)
    assert len(peer.requests_to("item/v8")) == 2
    assert len(peer.requests_to("token/v1/refresh")) == 1


async def test_favourites_are_paged(client: TgtgClient, peer: TgtgPeer) -> None:
    for n in range(PAGE_SIZE + 50):
        peer.add_item(f"{n:04d}", store=f"Store {n}", count=n % 3, favorite_of=EMAIL)
    peer.add_item("9999", store="Not mine", count=5)
    tokens = await login(client)

    async def on_rotate(new: Tokens) -> None:
        raise AssertionError("no refresh needed")

    items, _ = await client.favorites(
        (tokens.access_token, tokens.refresh_token, tokens.cookie), on_rotate
    )
    assert len(items) == PAGE_SIZE + 50
    assert "9999" not in {i.item_id for i in items}
    pages = [r.body["page"] for r in peer.requests_to("item/v8")]
    assert pages == [1, 2]
    request = peer.requests_to("item/v8")[0]
    assert request.body["favorites_only"] is True and request.body["page_size"] == PAGE_SIZE
    assert request.headers["user-agent"].startswith("TGTG/")
    assert "Dalvik" in request.headers["user-agent"]
    assert request.headers["authorization"] == f"Bearer {tokens.access_token}"
    assert request.headers["cookie"] == tokens.cookie
    assert request.headers["x-correlation-id"]
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["accept-language"] == "en-GB"


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [(403, TgtgBlocked, None), (429, TgtgRateLimited, 7.0), (503, TgtgRateLimited, None)],
)
async def test_error_statuses_map_to_our_errors(
    client: TgtgClient, peer: TgtgPeer, status: int, error: type[Exception], retry_after: float
) -> None:
    tokens = await login(client)

    async def on_rotate(new: Tokens) -> None:
        pass

    peer.script(Fault(status, retry_after="7" if status == 429 else None), times=1)
    with pytest.raises(error) as caught:
        await client.favorites((tokens.access_token, tokens.refresh_token, None), on_rotate)
    if isinstance(caught.value, TgtgRateLimited):
        assert caught.value.retry_after == retry_after


def test_base_url_must_end_in_a_slash() -> None:
    with pytest.raises(ValueError, match="must end in '/'"):
        TgtgClient(httpx.AsyncClient, base_url="https://apptoogoodtogo.com/api")


def test_parse_item_reads_legacy_prices_and_missing_keys() -> None:
    item = parse_item(
        {
            "item": {
                "item_id": "42",
                "price_including_taxes": {"code": "GBP", "minor_units": 350, "decimals": 2},
            },
            "store": {"store_name": "Deli"},
            "items_available": 1,
        }
    )
    assert (item.item_id, item.store_name, item.price_minor, item.currency) == (
        "42",
        "Deli",
        350,
        "GBP",
    )
    assert item.pickup_start is None
    assert item.sharing_url == "https://share.toogoodtogo.com/item/42"


async def test_one_item_alone_with_its_window_and_link(client: TgtgClient, peer: TgtgPeer) -> None:
    peer.add_item("774625", store="Bakery Blue", count=4)  # not even a favourite
    peer.set_sales_window("774625", "2026-11-22T17:00:00Z")
    tokens = await login(client)

    async def on_rotate(new: Tokens) -> None:
        raise AssertionError("no refresh needed")

    item, _ = await client.item(
        (tokens.access_token, tokens.refresh_token, tokens.cookie), "774625", on_rotate
    )
    assert (item.item_id, item.store_name, item.items_available) == ("774625", "Bakery Blue", 4)
    assert item.next_sales_window is not None and item.next_sales_window.hour == 17
    assert item.sharing_url == "https://share.toogoodtogo.com/item/774625"
    [request] = peer.requests_to("item/v8/774625")
    assert request.body == {"origin": None}
    assert request.headers["authorization"] == f"Bearer {tokens.access_token}"


async def test_a_cookie_set_on_any_answer_is_merged_and_reported(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    peer.add_item("1", store="Bakery", count=0, favorite_of=EMAIL)
    tokens = await login(client)
    kept: list[str] = []

    async def on_rotate(new: Tokens) -> None:
        pass

    async def on_cookie(cookie: str) -> None:
        kept.append(cookie)

    credentials = (tokens.access_token, tokens.refresh_token, "session=abc; datadome=old")
    peer.script(Fault.captcha(), match="item/v8", times=1)  # a block still sets a datadome cookie
    with pytest.raises(TgtgBlocked):
        await client.favorites(credentials, on_rotate, on_cookie)
    assert kept == ["session=abc; datadome=blocked"]
    peer.datadome = "new"
    _, used = await client.favorites(credentials, on_rotate, on_cookie)
    assert kept[-1] == used[2] == "session=abc; datadome=new"
    peer.datadome = None
    await client.favorites(used, on_rotate, on_cookie)
    assert peer.requests_to("item/v8")[-1].headers["cookie"] == "session=abc; datadome=new"
    assert len(kept) == 2  # an answer without Set-Cookie changes nothing
