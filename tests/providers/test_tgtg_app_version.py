"""The app version the TGTG client claims: looked up on (the fake's) Google Play page once, the
configured one instead when set, the last one found or the built-in one when the lookup fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from providers.tgtg.app_version import FALLBACK, AppVersion, version_from_play_page
from providers.tgtg.client import TgtgClient
from tests.peers.tgtg import PLAY, Fault, TgtgPeer

EMAIL = "ana@example.com"


@pytest.fixture
def peer() -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account(EMAIL)
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def agent(peer: TgtgPeer) -> str:
    return peer.requests_to("authByEmail")[-1].headers["user-agent"]


async def test_the_current_version_is_looked_up_once_and_claimed(
    peer: TgtgPeer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    remember = tmp_path / "version"
    version = AppVersion(lookup_url=peer.play_url, remember=remember, timeout=5.0)
    client = TgtgClient(lambda: http, base_url=peer.base_url, app_version=version)
    await asyncio.gather(*(client.auth_by_email(EMAIL) for _ in range(3)))
    assert len(peer.requests_to(PLAY)) == 1
    assert agent(peer).startswith(f"TGTG/{peer.app_version} Dalvik/2.1.0 (Linux;")
    assert remember.read_text().strip() == peer.app_version


async def test_a_configured_version_is_claimed_without_a_lookup(
    peer: TgtgPeer, http: httpx.AsyncClient
) -> None:
    version = AppVersion(override="25.1.2", lookup_url=peer.play_url)
    client = TgtgClient(lambda: http, base_url=peer.base_url, app_version=version)
    await client.auth_by_email(EMAIL)
    assert peer.requests_to(PLAY) == []
    assert agent(peer).startswith("TGTG/25.1.2 ")


@pytest.mark.parametrize(("remembered", "claimed"), [(None, FALLBACK), ("26.9.1", "26.9.1")])
async def test_a_failed_lookup_falls_back_to_the_last_version_found_else_the_built_in(
    peer: TgtgPeer,
    http: httpx.AsyncClient,
    tmp_path: Path,
    remembered: str | None,
    claimed: str,
) -> None:
    remember = tmp_path / "version"
    if remembered:
        remember.write_text(remembered + "\n")
    peer.script(Fault.server_error(503), match=PLAY, times=1)
    version = AppVersion(lookup_url=peer.play_url, remember=remember, timeout=5.0)
    client = TgtgClient(lambda: http, base_url=peer.base_url, app_version=version)
    await client.auth_by_email(EMAIL)
    await client.auth_by_email(EMAIL)
    assert len(peer.requests_to(PLAY)) == 1  # not asked again on every call
    assert agent(peer).startswith(f"TGTG/{claimed} ")


def test_a_page_not_as_expected_is_refused() -> None:
    with pytest.raises(ValueError, match="no ds:5"):
        version_from_play_page("<html></html>")
    with pytest.raises(ValueError, match="no version"):
        version_from_play_page("AF_initDataCallback({key: 'ds:5', data:[1, 2], sideChannel: {}})")
