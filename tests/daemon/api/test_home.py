"""GET /: a small page saying shopbell runs, its version and where the docs are; detail with
the token only, nothing fetched from elsewhere, no script."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from tests.daemon.api.support import TOKEN, VERSION, bearer, client_for


async def twilio() -> dict[str, Any]:
    return {"state": "degraded", "detail": "auth failed for sender +15550001111"}


async def test_the_home_page_says_what_runs_and_links_the_docs(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app(health_sources={"twilio": twilio})) as client:
        page = await client.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "shopbell is running" in page.text
    assert f"Version {VERSION}" in page.text
    links = re.findall(r'href="([^"]+)"', page.text)
    assert links == ["/api/docs", "/api/redoc", "/api", "/api/health"]
    # A stranger learns nothing of the providers, and the page can run no script.
    assert "twilio" not in page.text and "+15550001111" not in page.text
    assert "<script" not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert TOKEN not in page.text


async def test_with_the_token_the_page_shows_each_parts_state(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_app(health_sources={"twilio": twilio})) as client:
        page = await client.get("/", headers=bearer())

    assert "<td>twilio</td><td>degraded</td>" in page.text
    assert "auth failed for sender +15550001111" in page.text
    assert TOKEN not in page.text


async def test_text_from_a_component_is_escaped(make_app: Callable[..., FastAPI]) -> None:
    async def hostile() -> dict[str, Any]:
        return {"state": "down", "detail": "<script>alert(1)</script>"}

    async with client_for(make_app(health_sources={"modem": hostile})) as client:
        page = await client.get("/", headers=bearer())

    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
