"""Fixtures for the API tests: a real migrated database, a manual clock, the app, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from storage.database import Database
from tests.daemon.api.support import TOKEN, VERSION, Probe, add_test_routes, client_for


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def make_ctx(db: Database, clock: ManualClock) -> Callable[..., ApiContext]:
    """ApiContext with test defaults; keyword arguments replace fields."""

    def make(**changes: Any) -> ApiContext:
        fields: dict[str, Any] = {
            "db": db,
            "clock": clock,
            "api_token": TOKEN,
            "version": VERSION,
            "started_at": clock.now(),
            "started_monotonic": clock.monotonic(),
            "max_body_bytes": 1000,
        }
        fields.update(changes)
        return ApiContext(**fields)

    return make


@pytest.fixture
def make_app(make_ctx: Callable[..., ApiContext], probe: Probe) -> Callable[..., FastAPI]:
    """create_app plus the test-only routes; keyword arguments go to the context."""

    def make(**changes: Any) -> FastAPI:
        app = create_app(make_ctx(**changes))
        add_test_routes(app, probe)
        return app

    return make


@pytest.fixture
def ctx(make_ctx: Callable[..., ApiContext]) -> ApiContext:
    return make_ctx()


@pytest.fixture
def app(ctx: ApiContext, probe: Probe) -> FastAPI:
    application = create_app(ctx)
    add_test_routes(application, probe)
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http
