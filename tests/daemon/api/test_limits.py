"""Bodies over max_body_bytes (1000 in these tests) get a seed-format 413."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.daemon.api.support import Probe, bearer

LIMIT = 1000  # max_body_bytes of the test context
TOO_LARGE = {
    "success": False,
    "error": 413,
    "message": "request body too large: the limit is 1000 bytes",
}


async def test_declared_length_over_the_limit_is_413_before_the_route_runs(
    client: httpx.AsyncClient, probe: Probe
) -> None:
    response = await client.post("/api/test/upload", headers=bearer(), content=b"x" * (LIMIT + 1))

    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert probe.upload_calls == 0


async def test_body_at_the_limit_passes(client: httpx.AsyncClient, probe: Probe) -> None:
    response = await client.post("/api/test/upload", headers=bearer(), content=b"x" * LIMIT)

    assert response.status_code == 200
    assert response.json() == {"received": LIMIT}
    assert probe.upload_calls == 1


class Chunks:
    """A streamed body (no Content-Length) that counts how much the server pulled."""

    def __init__(self, size: int, count: int) -> None:
        self.size = size
        self.count = count
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield b"y" * self.size


async def test_streamed_body_over_the_limit_is_413_without_reading_the_rest(
    client: httpx.AsyncClient,
) -> None:
    body = Chunks(size=400, count=50)  # 20,000 bytes in all

    response = await client.post("/api/test/upload", headers=bearer(), content=body)

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert body.pulled == 3  # 1,200 bytes: the third chunk passed the limit; no more read


async def test_streamed_body_under_the_limit_passes(client: httpx.AsyncClient) -> None:
    body = Chunks(size=100, count=10)

    response = await client.post("/api/test/upload", headers=bearer(), content=body)

    assert response.status_code == 200
    assert response.json() == {"received": 1000}


async def test_auth_comes_before_the_body_limit(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/test/upload", content=b"x" * (LIMIT + 1))

    assert response.status_code == 401
