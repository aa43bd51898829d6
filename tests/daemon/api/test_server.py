"""ApiServer on a real socket: start, serve, stop within the timeout; bind errors in words."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket

import httpx
import pytest
from fastapi import FastAPI

from daemon.api.server import ApiBindError, ApiServer, bind_socket
from tests.daemon.api.support import TOKEN, Probe, bearer


async def test_serves_over_tcp_and_stops_within_its_timeout(app: FastAPI) -> None:
    handlers_before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = ApiServer(app, bind_socket("127.0.0.1", 0))
    port = server.bound_port
    assert port > 0
    await server.start()
    try:
        # A server's own signal handlers would have replaced the daemon's by now.
        assert {sig: signal.getsignal(sig) for sig in handlers_before} == handlers_before
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = await client.get("/api/health")
            private = await client.get("/api/test/private", headers=bearer())
            refused = await client.get("/api/test/private")
    finally:
        await asyncio.wait_for(server.stop(timeout=2.0), timeout=5.0)

    assert health.status_code == 200
    assert health.json()["database"] == {"ok": True}
    # granian always names itself (no setting turns it off); it must not tell its version.
    assert health.headers.get("server", "granian") == "granian"
    assert private.json() == {"principal": "api-token"}
    assert refused.status_code == 401
    assert TOKEN not in refused.text
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/api/health")


async def test_stop_forces_a_request_that_does_not_finish(app: FastAPI, probe: Probe) -> None:
    server = ApiServer(app, bind_socket("127.0.0.1", 0))
    await server.start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.bound_port}") as client:
        request = asyncio.create_task(client.get("/api/test/slow", headers=bearer()))
        await asyncio.wait_for(probe.slow_entered.wait(), timeout=5.0)

        # Generous outer bound: fails only if stop() hangs, not on a slow machine.
        await asyncio.wait_for(server.stop(timeout=0.5), timeout=5.0)

        assert probe.slow_cancelled
        # The cancelled request is answered 500 by granian, or its connection drops.
        try:
            answer = await asyncio.wait_for(request, timeout=5.0)
        except httpx.TransportError:
            return
        assert answer.status_code == 500


async def test_stop_before_start_just_closes_the_socket(app: FastAPI) -> None:
    sock = bind_socket("127.0.0.1", 0)
    server = ApiServer(app, sock)

    await server.stop(timeout=1.0)

    assert sock.fileno() == -1


def test_port_in_use_is_a_plain_bind_error() -> None:
    taken = bind_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ApiBindError) as caught:
            bind_socket("127.0.0.1", port)
    finally:
        taken.close()

    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{port}: address already in use; "
        "is another shopbell running? change [api] port or stop it"
    )


def test_address_not_on_this_machine_is_a_bind_error() -> None:
    with pytest.raises(ApiBindError, match=r"cannot listen on 192\.0\.2\.1:8765: .*\[api\] host"):
        bind_socket("192.0.2.1", 8765)  # TEST-NET-1: never a local address


def test_port_out_of_range_is_a_bind_error() -> None:
    with pytest.raises(ApiBindError, match="between 1 and 65535"):
        bind_socket("127.0.0.1", 70000)


def _ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET6) as probe_sock:
        probe_sock.bind(("::1", 0))
        return True
    return False


@pytest.mark.skipif(not _ipv6_loopback_works(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_literal_binds_and_reports_in_brackets(host: str) -> None:
    sock = bind_socket(host, 0)
    try:
        assert sock.family == socket.AF_INET6
        port = sock.getsockname()[1]
        with pytest.raises(ApiBindError, match=rf"cannot listen on \[::1\]:{port}: address"):
            bind_socket(host, port)
    finally:
        sock.close()
