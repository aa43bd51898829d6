"""Helpers for the API tests: the token, test-only routes and an in-process client."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field, field_validator

from daemon.api.errors import ApiError

# Distinctive, so a leak into a body or a log line is easy to find.
TOKEN = "tok-7Hq2Zx9LmV4pRw1s"
VERSION = "9.9.9-test"
BASE_URL = "http://testserver"


def bearer(token: str = TOKEN) -> dict[str, str]:
    """Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


class Signup(BaseModel):
    """A body with rules, for the 400 tests."""

    phone: str = Field(min_length=8)
    qty: int

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not value.startswith("+"):
            raise ValueError("phone must start with + (E.164)")
        return value


class Probe:
    """What the test-only routes saw, for tests that check a handler did or did not run."""

    def __init__(self) -> None:
        self.upload_calls = 0
        self.slow_entered = asyncio.Event()
        self.slow_cancelled = False


def add_test_routes(app: FastAPI, probe: Probe) -> None:
    """Test-only routes; none of them is public, since none is listed in auth.py."""

    @app.get("/api/test/private", summary="Test: who am I")
    async def private(request: Request) -> dict[str, Any]:
        return {"principal": request.state.principal}

    @app.post("/api/test/signup", summary="Test: validated body")
    async def signup(body: Signup) -> dict[str, Any]:
        return body.model_dump()

    @app.post("/api/test/upload", summary="Test: read the raw body")
    async def upload(request: Request) -> dict[str, int]:
        probe.upload_calls += 1
        return {"received": len(await request.body())}

    @app.get("/api/test/boom", summary="Test: a bug")
    async def boom() -> None:
        raise RuntimeError("secret detail 42")

    @app.get("/api/test/conflict", summary="Test: an expected failure")
    async def conflict() -> None:
        raise ApiError(409, "already subscribed", subscriber_id=7)

    @app.get("/api/test/slow", summary="Test: a request that never ends")
    async def slow() -> None:
        probe.slow_entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            probe.slow_cancelled = True
            raise

    @app.post("/hooks/test/inbound", summary="Test: a self-authenticating webhook")
    async def inbound() -> dict[str, bool]:
        return {"accepted": True}


def client_for(application: FastAPI) -> httpx.AsyncClient:
    """An in-process client; app exceptions are raised, so a leaked one fails the test."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url=BASE_URL)
