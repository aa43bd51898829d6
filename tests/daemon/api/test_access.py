"""The access table: every route has a row, the README prints it, and each kind holds.

Local routes: tokenless only from [api] trusted_networks, and never for what looks like a
web page (a foreign Origin, a body that is not JSON) or a rebinding DNS name (a foreign
Host). Public routes that cost money or CPU: limited per client address.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from daemon.api import access
from daemon.api.app import create_app, served_routes
from daemon.api.context import ApiContext
from daemon.config import LimitsSettings, Settings
from daemon.runtime.clock import ManualClock
from storage.database import Database
from tests.daemon.api.support import bearer

README = Path(__file__).resolve().parents[3] / "README.md"
SHOP = "http://shop.local:3000"
_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def full_app(make_ctx: Callable[..., ApiContext], db: Database, clock: ManualClock) -> FastAPI:
    """The app as the daemon builds it with every optional route on (metrics too)."""
    from daemon.services.metrics import Metrics

    settings = Settings.model_validate({"metrics": {"enabled": True}})
    return create_app(make_ctx(settings=settings, metrics=Metrics(db, clock)))


def served(app: FastAPI) -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for route in served_routes(app):
        if isinstance(route, Mount):
            routes.add(("GET", route.path))
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                routes.add((method, str(getattr(route, "path", ""))))
    return routes


def test_every_route_and_every_documented_operation_has_a_row(
    make_ctx: Callable[..., ApiContext], db: Database, clock: ManualClock
) -> None:
    app = full_app(make_ctx, db, clock)
    rows = {(rule.method, rule.path) for rule in access.ACCESS}
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in _HTTP_METHODS
    }

    assert documented - rows == set(), "add these routes to daemon/api/access.py"
    assert served(app) - rows == set(), "add these routes to daemon/api/access.py"
    assert rows - served(app) == set(), "these rows of daemon/api/access.py have no route"


def test_the_readme_prints_the_table_as_it_is_in_the_code() -> None:
    assert access.markdown_table() in README.read_text(encoding="utf-8")


def test_the_openapi_document_says_each_operations_access(
    make_ctx: Callable[..., ApiContext], db: Database, clock: ManualClock
) -> None:
    paths = full_app(make_ctx, db, clock).openapi()["paths"]

    assert paths["/smss"]["post"]["x-access"] == "local"
    assert paths["/smss"]["post"]["security"] == [{"bearerAuth": []}, {}]
    assert paths["/api/send-otp"]["post"]["x-access"] == "public"
    assert "security" not in paths["/api/send-otp"]["post"]
    assert paths["/api/v1/messages"]["get"]["security"] == [{"bearerAuth": []}]
    # One rule for a field that breaks its rule, documented as it is answered.
    assert "400" in paths["/smss"]["post"]["responses"]
    assert "422" not in paths["/smss"]["post"]["responses"]


def client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50123))
    # As the seeds' programs call it: http://localhost:<port>.
    return httpx.AsyncClient(transport=transport, base_url="http://localhost:8765")


def assert_needs_the_token(response: httpx.Response, because: str) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["success"] is False and body["error"] == 401
    assert body["message"].startswith("missing bearer token")
    assert because in body["message"]


async def test_a_program_on_this_machine_sends_json_without_the_token(app: FastAPI) -> None:
    async with client(app) as local:
        # Past the door: the route itself answers, naming the missing field.
        response = await local.post("/smss", json={"subject": "hi", "message": "x"})
        empty = await local.post("/notifications/tokens")

    assert response.status_code == 400
    assert response.json()["message"] == "body.contact: field required"
    # No body at all carries no message: the route's 400, as seed 1 answers it.
    assert empty.status_code == 400


async def test_a_caller_on_the_shop_network_needs_the_token(app: FastAPI) -> None:
    async with client(app, "192.168.1.50") as lan:
        refused = await lan.post("/smss", json={})
        with_token = await lan.post("/smss", json={}, headers=bearer())

    assert_needs_the_token(refused, "trusted_networks")
    assert with_token.status_code == 400  # in, and judged by the route


async def test_a_web_page_on_the_shop_pc_cannot_send_without_the_token(
    make_app: Callable[..., FastAPI],
) -> None:
    async with client(make_app(cors_origins=(SHOP,))) as local:
        # A page elsewhere posts JSON to 127.0.0.1 (the preflight is the CORS layer's).
        foreign = await local.post("/smss", json={}, headers={"Origin": "http://evil.example"})
        # A form or a no-cors fetch needs no preflight: its body is not JSON.
        form = await local.post("/smss", data={"contact": "+201009129288", "message": "x"})
        text = await local.post("/smss", content=b"{}", headers={"Content-Type": "text/plain"})
        # A rebinding DNS name points the page's own host at this machine.
        rebound = await local.post("/smss", json={}, headers={"Host": "evil.example:8765"})
        listed = await local.post("/smss", json={}, headers={"Origin": SHOP})
        named = await local.post("/smss", json={}, headers={"Host": "localhost:8765"})

    assert_needs_the_token(foreign, "web page (http://evil.example)")
    assert_needs_the_token(form, "not JSON")
    assert_needs_the_token(text, "not JSON")
    assert_needs_the_token(rebound, "Host header (evil.example:8765)")
    assert listed.status_code == 400  # a listed shop page may, as cors_origins says
    assert named.status_code == 400


async def test_behind_the_local_proxy_the_real_client_is_judged(app: FastAPI) -> None:
    async with client(app, "127.0.0.1") as proxy:
        # A tunnel on this machine forwards a caller from the internet.
        forwarded = await proxy.post("/smss", json={}, headers={"X-Forwarded-For": "203.0.113.9"})
    async with client(app, "192.168.1.50") as lan:
        # A stranger's own X-Forwarded-For is not believed.
        spoofed = await lan.post("/smss", json={}, headers={"X-Forwarded-For": "127.0.0.1"})

    assert_needs_the_token(forwarded, "trusted_networks")
    assert_needs_the_token(spoofed, "trusted_networks")


async def test_a_listed_origin_may_preflight_a_public_route_without_the_token(
    make_app: Callable[..., FastAPI],
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with client(make_app(cors_origins=(SHOP,))) as page:
        listed = await page.options("/api/send-otp", headers={"Origin": SHOP, **preflight})
        unlisted = await page.options(
            "/api/send-otp", headers={"Origin": "http://evil.example", **preflight}
        )

    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == SHOP
    assert "access-control-allow-origin" not in unlisted.headers


def limited_app(make_app: Callable[..., FastAPI], **limits: Any) -> FastAPI:
    settings = Settings(limits=LimitsSettings(window_seconds=60, **limits))
    return make_app(settings=settings)


async def test_sign_ups_are_limited_per_client_with_retry_after(
    make_app: Callable[..., FastAPI], clock: ManualClock
) -> None:
    app = limited_app(make_app, signups=2)
    body = {"password": "x"}  # refused by the route: the limit counts every try
    async with client(app, "192.168.1.50") as one, client(app, "192.168.1.51") as other:
        tries = [(await one.post("/signup", json=body)).status_code for _ in range(3)]
        over = await one.post("/api/users/register", json=body)  # the same limit
        neighbour = await other.post("/signup", json=body)
        clock.advance(61)
        later = await one.post("/signup", json=body)
        token = [
            (await one.post("/signup", json=body, headers=bearer())).status_code for _ in range(4)
        ]

    assert tries[:2] == [400, 400] and tries[2] == 429
    assert over.status_code == 429
    assert over.headers["retry-after"] == "60"
    assert over.json()["success"] is False and over.json()["error"] == 429
    assert over.json()["message"] == (
        "too many sign-ups from your address: at most 2 every minute; "
        "try again in 60 s ([limits] signups)"
    )
    assert neighbour.status_code == 400  # another address has its own count
    assert later.status_code == 400  # the window passed
    assert 429 not in token  # the shop's own programs, with the API token, are not limited


async def test_logins_and_subscriptions_have_their_own_limits(
    make_app: Callable[..., FastAPI],
) -> None:
    app = limited_app(make_app, logins=1, subscribes=1)
    async with client(app, "10.0.0.7") as caller:
        logins = [(await caller.post("/login", json={})).status_code for _ in range(2)]
        subscribes = [
            (await caller.post("/submit_subscriber_info", json={})).status_code for _ in range(2)
        ]
        signup = await caller.post("/signup", json={})

    assert logins[1] == 429 and logins[0] != 429
    assert subscribes[1] == 429 and subscribes[0] != 429
    assert signup.status_code == 400  # sign-ups are counted apart


@pytest.mark.parametrize("path", ["/api/v1/messages", "/api/v1/subscribers"])
async def test_token_routes_stay_closed(app: FastAPI, path: str) -> None:
    async with client(app) as local:
        response = await local.get(path)
    assert response.status_code == 401
