"""The shared HTTP client never carries one service's (or account's) cookies to the next call."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from daemon.runtime.http_client import SharedHttp, build_http_client


class _CookieSetter(BaseHTTPRequestHandler):
    seen: list[str | None] = []  # noqa: RUF012 -- one list per test via the fixture

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Cookie"))
        self.send_response(200)
        # What DataDome does on a TGTG answer: a cookie for the whole domain.
        self.send_header("Set-Cookie", "datadome=account-a-secret; Path=/; Max-Age=3600")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    _CookieSetter.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _CookieSetter)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_a_cookie_set_for_one_call_is_not_sent_with_the_next(server: str) -> None:
    client = build_http_client()
    try:
        first = await client.get(f"{server}/account-a")
        assert "datadome" in first.headers["set-cookie"]  # the caller still sees it
        await client.get(f"{server}/account-b")
    finally:
        await client.aclose()
    assert _CookieSetter.seen == [None, None]
    assert len(client.cookies.jar) == 0


async def test_the_shared_client_is_built_by_its_first_user_and_closed_once(server: str) -> None:
    shared = SharedHttp(timeout=5)
    await shared.aclose()  # a daemon that never needed it stops without one
    assert not shared.built
    client = shared()
    assert shared() is client  # every provider and account gets the same pool
    assert (await client.get(f"{server}/first")).status_code == 200
    await shared.aclose()
    assert client.is_closed and not shared.built
