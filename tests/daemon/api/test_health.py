"""GET /api/health: public, version, uptime, database, components that fail safely."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from daemon.api import health
from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock, utc_iso
from storage.database import Database
from tests.daemon.api.support import VERSION, bearer, client_for


async def test_health_is_public_and_reports_version_time_and_database(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    response = await client.get("/api/health", headers=bearer())

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "success": True,
        "status": "ok",
        "version": VERSION,
        "uptime_seconds": 0.0,
        "time": utc_iso(clock.now()),
        "database": {"ok": True},
        "components": {},
    }


async def test_a_stranger_learns_only_up_down_and_the_version(
    make_app: Callable[..., FastAPI],
) -> None:
    async def twilio() -> dict[str, Any]:
        return {"state": "degraded", "detail": "auth failed for +15550001111", "budget": 12}

    async with client_for(make_app(health_sources={"twilio": twilio})) as client:
        stranger = (await client.get("/api/health")).json()  # no Authorization header
        owner = (await client.get("/api/health", headers=bearer())).json()

    assert stranger == {
        "success": True,
        "status": "degraded",
        "version": VERSION,
        "database": {"ok": True},
        "components": {"twilio": {"state": "degraded"}},
    }
    assert owner["components"]["twilio"]["detail"] == "auth failed for +15550001111"
    assert owner["components"]["twilio"]["budget"] == 12


async def test_uptime_and_time_follow_the_clock(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    clock.advance(90.5)

    body = (await client.get("/api/health", headers=bearer())).json()

    assert body["uptime_seconds"] == 90.5
    assert body["time"] == utc_iso(clock.now())
    assert body["time"].endswith("+00:00")


async def test_closed_database_gives_503(tmp_path: Path, make_app: Callable[..., FastAPI]) -> None:
    database = Database(tmp_path / "closing.db")
    await database.open()
    app = make_app(db=database)
    async with client_for(app) as client:
        assert (await client.get("/api/health", headers=bearer())).status_code == 200
        await database.close()

        response = await client.get("/api/health", headers=bearer())

    assert response.status_code == 503
    body = response.json()
    assert body["database"] == {"ok": False}
    assert body["status"] == "degraded"


async def test_raising_health_source_is_down_and_degrades_status_not_500(
    make_app: Callable[..., FastAPI],
) -> None:
    async def modem() -> dict[str, Any]:
        raise RuntimeError("serial port /dev/ttyUSB0 password=hunter2")

    async def twilio() -> dict[str, Any]:
        return {"state": "ok", "detail": "last send 2 min ago"}

    app = make_app(health_sources={"modem": modem, "twilio": twilio})
    async with client_for(app) as client:
        response = await client.get("/api/health", headers=bearer())

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["components"] == {
        "modem": {"state": "down", "detail": "RuntimeError"},
        "twilio": {"state": "ok", "detail": "last send 2 min ago"},
    }
    assert "hunter2" not in response.text


async def test_hanging_health_source_times_out_as_down(
    make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "HEALTH_TIMEOUT_SECONDS", 0.05)

    async def stuck() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"state": "ok"}

    app = make_app(health_sources={"tgtg:shop@example.com": stuck})
    async with client_for(app) as client:
        # The outer bound only keeps a broken timeout from hanging the test run.
        response = await asyncio.wait_for(client.get("/api/health", headers=bearer()), timeout=5.0)

    assert response.status_code == 200
    assert response.json()["components"] == {
        "tgtg:shop@example.com": {"state": "down", "detail": "TimeoutError"}
    }
    assert response.json()["status"] == "degraded"


async def test_degraded_source_keeps_its_extra_keys(make_app: Callable[..., FastAPI]) -> None:
    async def modem() -> dict[str, Any]:
        return {"state": "degraded", "detail": "weak signal", "signal": 7, "operator": "Jio"}

    app = make_app(health_sources={"modem": modem})
    async with client_for(app) as client:
        response = await client.get("/api/health", headers=bearer())

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["components"]["modem"] == {
        "state": "degraded",
        "detail": "weak signal",
        "signal": 7,
        "operator": "Jio",
    }


async def test_all_sources_ok_means_status_ok(make_app: Callable[..., FastAPI]) -> None:
    async def fine() -> dict[str, Any]:
        return {"state": "ok"}

    app = make_app(health_sources={"a": fine, "b": fine})
    async with client_for(app) as client:
        body = (await client.get("/api/health", headers=bearer())).json()

    assert body["status"] == "ok"
    assert body["components"] == {
        "a": {"state": "ok", "detail": ""},
        "b": {"state": "ok", "detail": ""},
    }


async def test_invalid_health_answer_is_down(make_app: Callable[..., FastAPI]) -> None:
    async def confused() -> dict[str, Any]:
        return {"state": "fine, thanks"}

    app = make_app(health_sources={"confused": confused})
    async with client_for(app) as client:
        body = (await client.get("/api/health", headers=bearer())).json()

    assert body["components"]["confused"] == {"state": "down", "detail": "invalid health answer"}
    assert body["status"] == "degraded"


def test_context_refuses_an_empty_token(make_ctx: Callable[..., ApiContext]) -> None:
    with pytest.raises(ValueError, match="empty"):
        make_ctx(api_token="  ")
