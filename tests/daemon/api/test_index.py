"""GET /api lists the routes; the OpenAPI schema and the docs page are public."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.daemon.api.support import VERSION


async def test_index_is_public_and_lists_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/api")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "shopbell"
    assert body["version"] == VERSION
    assert body["docs"] == "/api/docs"
    assert body["openapi"] == "/api/openapi.json"
    endpoints = {(e["method"], e["path"]): e for e in body["endpoints"]}
    assert endpoints[("GET", "/api/health")]["public"] is True
    assert endpoints[("GET", "/api")]["public"] is True
    assert endpoints[("GET", "/api/test/private")] == {
        "method": "GET",
        "path": "/api/test/private",
        "summary": "Test: who am I",
        "public": False,
    }
    assert ("POST", "/api/test/signup") in endpoints
    # The docs pages are named at the top, not listed as endpoints.
    assert not any(path.startswith("/api/docs") for _, path in endpoints)


async def test_index_shows_a_route_added_later(app: FastAPI, client: httpx.AsyncClient) -> None:
    before = (await client.get("/api")).json()["endpoints"]

    @app.delete("/api/test/later/{item_id}")
    async def remove_later_item(item_id: int) -> None:
        return None

    after = (await client.get("/api")).json()["endpoints"]

    assert {"method": "DELETE", "path": "/api/test/later/{item_id}"} not in [
        {"method": e["method"], "path": e["path"]} for e in before
    ]
    assert {
        "method": "DELETE",
        "path": "/api/test/later/{item_id}",
        "summary": "Remove Later Item",
        "public": False,
    } in after


async def test_openapi_and_docs_are_public(client: httpx.AsyncClient) -> None:
    schema = await client.get("/api/openapi.json")
    docs = await client.get("/api/docs")
    redirect = await client.get("/api/docs/oauth2-redirect")
    redoc = await client.get("/api/redoc")

    assert schema.status_code == 200
    assert schema.json()["info"] == {"title": "shopbell", "version": VERSION}
    assert docs.status_code == 200
    assert "/api/openapi.json" in docs.text
    assert redirect.status_code == 200
    assert redoc.status_code == 200
    assert "/api/openapi.json" in redoc.text
    # FastAPI's own pages are off (they load from a CDN): its default paths are unknown.
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/docs")).status_code == 404


async def test_openapi_marks_which_operations_need_the_token(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/openapi.json")).json()

    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "security" not in schema["paths"]["/api/health"]["get"]
    assert "security" not in schema["paths"]["/api"]["get"]
    assert schema["paths"]["/api/test/private"]["get"]["security"] == [{"bearerAuth": []}]
