"""The reference client itself (`tgtg` from PyPI, ahivert/tgtg-python) against the fake TGTG:
if someone else's code logs in, lists favourites, refreshes and gets past a DataDome challenge
there, the fake answers as TGTG does, not merely as shopbell's client expects.

The reference is pointed at the fake with its own constructor arguments (`url=`, `timeout=`,
`user_agent=`: a fixed user agent also keeps it from asking Google Play for the app version).
Three things it has no option for are patched, and only those:
- `tgtg.DATADOME_SDK_URL`, the module constant `_fetch_datadome_cookie` posts to;
- `input()`, where `start_polling` reads the PIN from the terminal;
- `tgtg.POLLING_WAIT_TIME` (5 s between link polls), in the polling test only.
"""

from __future__ import annotations

import builtins
import datetime
import threading
from collections.abc import Iterator

import pytest
import tgtg
from tgtg.exceptions import TgtgAPIError

from tests.peers.tgtg import PIN, Fault, TgtgPeer

EMAIL = "ana@example.com"
AGENT = "TGTG/26.10.3 Dalvik/2.1.0 (Linux; Android 12; SM-G920V Build/MMB29K)"
BUCKET = "discover/v1/bucket"


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch) -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account(EMAIL)
        for n in range(3):
            fake.add_item(f"77462{n}", store=f"Bakery {n}", count=n, favorite_of=EMAIL)
        monkeypatch.setattr(tgtg, "DATADOME_SDK_URL", fake.datadome_url)
        yield fake


def reference(peer: TgtgPeer, **options: object) -> tgtg.TgtgClient:
    return tgtg.TgtgClient(url=peer.base_url, user_agent=AGENT, timeout=5, **options)


def logged_in(peer: TgtgPeer, monkeypatch: pytest.MonkeyPatch) -> tgtg.TgtgClient:
    monkeypatch.setattr(builtins, "input", lambda prompt="": PIN)
    client = reference(peer, email=EMAIL)
    client.login()
    return client


def test_the_reference_logs_in_with_the_pin(
    peer: TgtgPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = logged_in(peer, monkeypatch)
    assert client.refresh_token == peer.accounts[EMAIL].refresh
    assert client.access_token in peer.accounts[EMAIL].access
    assert client.cookie.startswith("datadome=")  # the token answer's Set-Cookie, verbatim
    sdk, by_email, by_pin = peer.received
    assert (sdk.path, by_email.path, by_pin.path) == (
        "/sdk/",
        "/api/auth/v5/authByEmail",
        "/api/auth/v5/authByRequestPin",
    )
    assert sdk.body["request"] == peer.base_url + "auth/v5/authByEmail"
    assert by_pin.body["request_pin"] == PIN and by_pin.status == 200


def test_the_reference_logs_in_by_polling_for_the_link(
    peer: TgtgPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tgtg, "POLLING_WAIT_TIME", 0.05)

    def no_pin(prompt: str = "") -> str:
        # The user clicks the link a moment after the reference starts polling.
        threading.Timer(0.3, peer.confirm, [EMAIL]).start()
        return ""

    monkeypatch.setattr(builtins, "input", no_pin)
    client = reference(peer, email=EMAIL)
    client.login()
    statuses = [r.status for r in peer.requests_to("authByRequestPollingId")]
    assert statuses[0] == 202 and statuses[-1] == 200 and set(statuses) == {200, 202}
    assert client.refresh_token == peer.accounts[EMAIL].refresh


def test_the_reference_lists_favourites_from_the_bucket(
    peer: TgtgPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = logged_in(peer, monkeypatch)
    items = client.get_favorites()
    assert sorted(i["item"]["item_id"] for i in items) == ["774620", "774621", "774622"]
    assert {i["items_available"] for i in items} == {0, 1, 2}
    assert all(i["store"]["store_name"].startswith("Bakery") for i in items)
    [bucket] = peer.requests_to(BUCKET)
    assert bucket.body["paging"] == {"page": 0, "size": 50}
    assert bucket.body["bucket"] == {"filler_type": "Favorites"}
    assert bucket.headers["authorization"] == f"Bearer {client.access_token}"


def test_the_reference_refreshes_stored_tokens_at_start_and_after_4_hours(
    peer: TgtgPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = logged_in(peer, monkeypatch)
    stored = {"access_token": first.access_token, "refresh_token": first.refresh_token}
    # A new client with stored tokens: the first call refreshes them.
    client = reference(peer, cookie=first.cookie, **stored)
    client.get_favorites()
    assert stored["refresh_token"] in peer.spent_refresh_tokens
    assert client.refresh_token == peer.accounts[EMAIL].refresh
    assert client.cookie.startswith("datadome=")
    assert len(peer.requests_to("token/v1/refresh")) == 1
    # Refreshed 3 h 59 min ago: no refresh; 4 h 1 min ago: one.
    now = datetime.datetime.now()
    client.last_time_token_refreshed = now - datetime.timedelta(hours=3, minutes=59)
    client.get_favorites()
    assert len(peer.requests_to("token/v1/refresh")) == 1
    client.last_time_token_refreshed = now - datetime.timedelta(hours=4, minutes=1)
    client.get_favorites()
    assert len(peer.requests_to("token/v1/refresh")) == 2


def test_the_reference_gets_past_one_datadome_challenge_but_not_two(
    peer: TgtgPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = logged_in(peer, monkeypatch)
    peer.script(Fault.captcha(), match=BUCKET, times=1)
    assert len(client.get_favorites()) == 3
    refused, retried = peer.requests_to(BUCKET)
    assert (refused.status, retried.status) == (403, 200)
    fetched = [r for r in peer.received if r.path == "/sdk/" and r.at > refused.at]
    assert len(fetched) == 1 and fetched[0].at < retried.at
    peer.script(Fault.captcha(), match=BUCKET, times=2)
    with pytest.raises(TgtgAPIError) as caught:
        client.get_favorites()
    assert caught.value.args[0] == 403


def test_orders_reserve_read_and_abort(peer: TgtgPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    client = logged_in(peer, monkeypatch)
    order = client.create_order("774622", 1)
    assert order["state"] == "RESERVED" and order["item_id"] == "774622"
    assert client.get_order_status(order["id"])["state"] == "RESERVED"
    client.abort_order(order["id"])
    assert client.get_order_status(order["id"])["state"] == "CANCELLED"
    # Sold out: the reference raises with the state TGTG gave instead of SUCCESS.
    with pytest.raises(TgtgAPIError) as sold:
        client.create_order("774620", 1)
    assert sold.value.args[0] == "SOLD_OUT"
