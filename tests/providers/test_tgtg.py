"""The TGTG client against the fake TGTG: logins, refresh rotation, 401 retry, the favourites
bucket in pages, DataDome's cookie and challenge, errors, and the one cookie jar."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from daemon.runtime.clock import ManualClock
from providers.tgtg.app_version import AppVersion
from providers.tgtg.client import FIRST_PAGE, PAGE_SIZE, TgtgClient, Tokens, parse_item
from providers.tgtg.cookies import CookieJar
from providers.tgtg.datadome import DataDomeSdk
from providers.tgtg.errors import TgtgBlocked, TgtgLoginError, TgtgRateLimited, TgtgUnauthorized
from tests.peers.tgtg import PIN, Fault, TgtgPeer

EMAIL = "ana@example.com"
BUCKET = "discover/v1/bucket"


@pytest.fixture
def peer() -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account(EMAIL)
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def client(peer: TgtgPeer, http: httpx.AsyncClient) -> TgtgClient:
    return TgtgClient(
        lambda: http,
        base_url=peer.base_url,
        timeout=5.0,
        datadome=DataDomeSdk(peer.datadome_url, ManualClock().now, timeout=5.0),
        app_version=AppVersion(lookup_url=peer.play_url, timeout=5.0),
    )


async def login(client: TgtgClient) -> Tokens:
    started = await client.auth_by_email(EMAIL)
    return await client.auth_by_pin(EMAIL, started.polling_id, PIN, started.cookie)


async def no_rotation(new: Tokens) -> None:
    raise AssertionError("no refresh expected")


async def any_rotation(new: Tokens) -> None:
    pass


# -- login --------------------------------------------------------------------------------------


async def test_the_first_call_gets_a_datadome_cookie_and_the_login_keeps_it(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    started = await client.auth_by_email(EMAIL)
    [sdk] = peer.requests_to("/sdk/")
    [first] = peer.requests_to("authByEmail")
    assert sdk.at <= first.at
    assert sdk.body["request"] == peer.base_url + "auth/v5/authByEmail"
    assert sdk.body["ddvc"] == peer.app_version and len(sdk.body["cid"]) == 120
    assert first.body == {"device_type": "ANDROID", "email": EMAIL}
    assert first.cookies == {"datadome": peer.datadome_issued[0]}
    assert started.cookie == f"datadome={peer.datadome_issued[0]}"
    with pytest.raises(TgtgLoginError):
        await client.auth_by_pin(EMAIL, started.polling_id, "000000", started.cookie)
    tokens = await client.auth_by_pin(EMAIL, started.polling_id, PIN, started.cookie)
    assert tokens.access_token.startswith("at-") and tokens.refresh_token.startswith("rt-")
    # The token answer's datadome cookie replaced the SDK's; only name=value is kept.
    assert tokens.cookie is not None and tokens.cookie.startswith("datadome=")
    assert "Path" not in tokens.cookie and peer.datadome_issued[0] not in tokens.cookie
    assert tokens.ttl_seconds is None  # the recorded answers state no lifetime
    assert len(peer.requests_to("/sdk/")) == 1  # the cookie was there for the PIN call


async def test_polling_login_waits_for_the_click(client: TgtgClient, peer: TgtgPeer) -> None:
    started = await client.auth_by_email(EMAIL)
    assert await client.auth_by_polling(EMAIL, started.polling_id, started.cookie) is None
    assert peer.requests_to("authByRequestPollingId")[-1].status == 202
    peer.confirm(EMAIL)
    tokens = await client.auth_by_polling(EMAIL, started.polling_id, started.cookie)
    assert tokens is not None and tokens.refresh_token


async def test_unknown_email_is_a_login_error(client: TgtgClient) -> None:
    with pytest.raises(TgtgLoginError, match="no TGTG account"):
        await client.auth_by_email("nobody@example.com")


# -- tokens -------------------------------------------------------------------------------------


async def test_refresh_rotates_and_spends_the_old_token(client: TgtgClient, peer: TgtgPeer) -> None:
    tokens = await login(client)
    fresh = await client.refresh(tokens)
    assert fresh.refresh_token != tokens.refresh_token
    assert fresh.access_token != tokens.access_token
    assert tokens.refresh_token in peer.spent_refresh_tokens
    [refresh] = peer.requests_to("token/v1/refresh")
    assert refresh.body == {"refresh_token": tokens.refresh_token}
    assert refresh.headers["cookie"] == tokens.cookie  # the refresh sends the account's cookies
    with pytest.raises(TgtgUnauthorized):
        await client.refresh(tokens)


async def test_a_401_refreshes_once_and_retries(client: TgtgClient, peer: TgtgPeer) -> None:
    peer.add_item("1", store="Bakery", count=2, favorite_of=EMAIL)
    tokens = await login(client)
    peer.expire_access_tokens()
    rotated: list[Tokens] = []

    async def on_rotate(new: Tokens) -> None:
        rotated.append(new)

    items, used = await client.favorites(tokens, on_rotate)
    assert [i.item_id for i in items] == ["1"] and items[0].items_available == 2
    assert len(rotated) == 1 and used.refresh_token == rotated[0].refresh_token
    assert [r.status for r in peer.requests_to(BUCKET)] == [401, 200]
    assert peer.requests_to(BUCKET)[-1].headers["authorization"] == f"Bearer {used.access_token}"


async def test_a_second_401_is_not_retried_again(client: TgtgClient, peer: TgtgPeer) -> None:
    tokens = await login(client)
    peer.script(Fault.unauthorized(), match=BUCKET, times=2)
    with pytest.raises(TgtgUnauthorized, match="UNAUTHORIZED"):
        await client.favorites(tokens, any_rotation)
    assert len(peer.requests_to(BUCKET)) == 2
    assert len(peer.requests_to("token/v1/refresh")) == 1


# -- favourites ---------------------------------------------------------------------------------


async def test_favourites_come_from_the_bucket_a_page_at_a_time(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    for n in range(2 * PAGE_SIZE + 5):
        peer.add_item(f"{n:04d}", store=f"Store {n}", count=n % 3, favorite_of=EMAIL)
    peer.add_item("9999", store="Not mine", count=5)
    tokens = await login(client)
    items, _ = await client.favorites(tokens, no_rotation)
    assert [i.item_id for i in items] == [f"{n:04d}" for n in range(2 * PAGE_SIZE + 5)]
    requests = peer.requests_to(BUCKET)
    assert [r.body["paging"] for r in requests] == [
        {"page": FIRST_PAGE + n, "size": PAGE_SIZE} for n in range(3)
    ]
    first = requests[0]
    assert first.body == {
        "origin": {"latitude": 0.0, "longitude": 0.0},
        "radius": 21,
        "paging": {"page": 0, "size": PAGE_SIZE},
        "bucket": {"filler_type": "Favorites"},
    }
    assert first.headers["user-agent"].startswith(f"TGTG/{peer.app_version} Dalvik/2.1.0")
    assert first.headers["authorization"] == f"Bearer {tokens.access_token}"
    assert first.headers["cookie"] == tokens.cookie
    assert first.headers["x-correlation-id"]
    assert first.headers["content-type"].startswith("application/json")
    assert first.headers["accept-language"] == "en-GB"


async def test_a_full_last_page_costs_one_more_empty_page(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    for n in range(PAGE_SIZE):
        peer.add_item(f"{n:04d}", store=f"Store {n}", favorite_of=EMAIL)
    tokens = await login(client)
    items, _ = await client.favorites(tokens, no_rotation)
    assert len(items) == PAGE_SIZE
    assert [r.body["paging"]["page"] for r in peer.requests_to(BUCKET)] == [0, 1]


async def test_one_item_alone_with_its_window_and_its_own_link(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    peer.add_item("774625", store="Bakery Blue", count=4)  # not even a favourite
    peer.set_sales_window("774625", "2026-11-22T17:00:00Z")
    tokens = await login(client)
    item, _ = await client.item(tokens, "774625", no_rotation)
    assert (item.item_id, item.store_name, item.items_available) == ("774625", "Bakery Blue", 4)
    assert item.next_sales_window is not None and item.next_sales_window.hour == 17
    # TGTG's sharing_url there is the app's download page: the item's own link instead.
    assert item.sharing_url == "https://share.toogoodtogo.com/item/774625"
    [request] = peer.requests_to("item/v8/774625")
    assert request.body == {"origin": None}


# -- DataDome -----------------------------------------------------------------------------------


@pytest.mark.parametrize("challenge", [Fault.captcha(), Fault.captcha_page()])
async def test_a_datadome_challenge_gets_a_fresh_cookie_and_one_retry(
    client: TgtgClient, peer: TgtgPeer, challenge: Fault
) -> None:
    peer.add_item("1", store="Bakery", count=1, favorite_of=EMAIL)
    tokens = await login(client)
    kept: list[str] = []

    async def on_cookie(cookie: str) -> None:
        kept.append(cookie)

    stale = Tokens(tokens.access_token, tokens.refresh_token, f"{tokens.cookie}; session=old")
    peer.script(challenge, match=BUCKET, times=1)
    items, used = await client.favorites(stale, no_rotation, on_cookie)
    assert [i.item_id for i in items] == ["1"]
    refused, retried = peer.requests_to(BUCKET)
    assert refused.status == 403 and retried.status == 200
    assert len(peer.requests_to("/sdk/")) == 2  # the login's, and the challenge's
    fresh = peer.datadome_issued[-1]
    # Every old cookie was dropped; the retry carried only the fresh one.
    assert retried.cookies == {"datadome": fresh}
    assert used.cookie == f"datadome={fresh}" and kept[-1] == used.cookie


async def test_a_second_403_is_a_block(client: TgtgClient, peer: TgtgPeer) -> None:
    tokens = await login(client)
    peer.script(Fault.captcha(), match=BUCKET, times=2)
    with pytest.raises(TgtgBlocked, match="DataDome"):
        await client.favorites(tokens, no_rotation)
    assert [r.status for r in peer.requests_to(BUCKET)] == [403, 403]


async def test_a_403_without_a_challenge_is_a_block_at_once(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    tokens = await login(client)
    peer.script(Fault.forbidden(), match=BUCKET, times=1)
    with pytest.raises(TgtgBlocked, match="not DataDome"):
        await client.favorites(tokens, no_rotation)
    assert len(peer.requests_to(BUCKET)) == 1
    assert len(peer.requests_to("/sdk/")) == 1  # only the login's


async def test_without_a_cookie_from_the_sdk_the_call_still_goes(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    peer.script(Fault.server_error(503), match="/sdk/", times=1)
    started = await client.auth_by_email(EMAIL)
    assert started.polling_id
    assert "datadome" not in peer.requests_to("authByEmail")[0].cookies


async def test_the_datadome_cookie_renewed_on_an_answer_is_kept(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    peer.add_item("1", store="Bakery", count=0, favorite_of=EMAIL)
    tokens = await login(client)
    kept: list[str] = []

    async def on_cookie(cookie: str) -> None:
        kept.append(cookie)

    with_session = Tokens(
        tokens.access_token, tokens.refresh_token, f"session=abc; {tokens.cookie}"
    )
    peer.datadome = "renewed"
    _, used = await client.favorites(with_session, no_rotation, on_cookie)
    assert kept == [used.cookie] and used.cookie == "session=abc; datadome=renewed"
    peer.datadome = None
    await client.favorites(used, no_rotation, on_cookie)
    assert peer.requests_to(BUCKET)[-1].headers["cookie"] == "session=abc; datadome=renewed"
    assert len(kept) == 1  # an answer without Set-Cookie changes nothing


# -- cookies ------------------------------------------------------------------------------------


def test_one_parsing_rule_keeps_a_cookie_without_an_equals_sign() -> None:
    jar = CookieJar().with_cookies(
        ["datadome=abc; Max-Age=5184000; Path=/; Secure", "sweet sweet cookie", "a=1=2; Path=/"]
    )
    assert jar.header() == "datadome=abc; sweet sweet cookie; a=1=2"
    # The stored header reads back to the same jar: one rule both ways.
    assert CookieJar.parse(jar.header()) == jar
    assert jar.with_cookies(["datadome=new; Path=/"]).header() == (
        "datadome=new; sweet sweet cookie; a=1=2"
    )
    assert jar.with_cookies(["other cookie"]).header() == "datadome=abc; other cookie; a=1=2"
    assert CookieJar.parse(None).header() is None and CookieJar.parse(" ; ").header() is None


async def test_a_set_cookie_without_an_equals_sign_survives_login_refresh_and_calls(
    client: TgtgClient, peer: TgtgPeer
) -> None:
    peer.extra_cookies = ["sweet sweet cookie"]  # what the reference's own test answers
    tokens = await login(client)
    assert tokens.cookie is not None and "sweet sweet cookie" in tokens.cookie
    peer.extra_cookies = []
    fresh = await client.refresh(tokens)
    assert fresh.cookie is not None and fresh.cookie.endswith("; sweet sweet cookie")
    await client.favorites(fresh, no_rotation)
    sent = peer.requests_to(BUCKET)[-1]
    assert sent.cookies[""] == "sweet sweet cookie" and "datadome" in sent.cookies


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [
        (Fault.too_many(retry_after="7"), 7.0),
        (Fault.too_many(), None),
        (Fault.server_error(), None),
    ],
)
async def test_429_and_5xx_are_rate_limits(
    client: TgtgClient, peer: TgtgPeer, fault: Fault, retry_after: float | None
) -> None:
    tokens = await login(client)
    peer.script(fault, times=1)
    with pytest.raises(TgtgRateLimited) as caught:
        await client.favorites(tokens, no_rotation)
    assert caught.value.status == fault.status and caught.value.retry_after == retry_after


async def test_no_answer_in_time_is_a_rate_limit(peer: TgtgPeer, http: httpx.AsyncClient) -> None:
    client = TgtgClient(lambda: http, base_url="http://127.0.0.1:9/api/", timeout=1.0)
    with pytest.raises(TgtgRateLimited) as caught:
        await client.auth_by_email(EMAIL)
    assert caught.value.status == 0


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
