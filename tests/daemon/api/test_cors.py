"""CORS headers only for the configured origins, and none when none are configured."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from tests.daemon.api.support import bearer, client_for

SHOP = "http://shop.local:3000"
OTHER = "http://evil.example"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }


async def test_configured_origin_gets_cors_headers(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(cors_origins=(SHOP,))) as client:
        pre = await client.options("/api/test/private", headers=preflight(SHOP))
        simple = await client.get("/api/test/private", headers={"Origin": SHOP, **bearer()})
        refused = await client.get("/api/test/private", headers={"Origin": SHOP})

    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == SHOP
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == SHOP
    # A browser can read why it was refused.
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == SHOP


async def test_other_origin_gets_no_cors_headers(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(cors_origins=(SHOP,))) as client:
        pre = await client.options("/api/test/private", headers=preflight(OTHER))
        simple = await client.get("/api/test/private", headers={"Origin": OTHER, **bearer()})

    assert pre.status_code == 400
    assert "access-control-allow-origin" not in pre.headers
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


async def test_no_configured_origins_means_no_cors(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(cors_origins=())) as client:
        pre = await client.options("/api/test/private", headers=preflight(SHOP))
        simple = await client.get("/api/health", headers={"Origin": SHOP})

    # No CORS layer: a preflight is an OPTIONS request that no route serves.
    assert pre.status_code == 405
    assert "access-control-allow-origin" not in pre.headers
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
