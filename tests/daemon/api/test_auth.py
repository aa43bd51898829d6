"""Bearer auth: secure by default, exact messages, and the token never leaks."""

from __future__ import annotations

import logging

import httpx
import pytest

from daemon.api.auth import INVALID_BEARER_MESSAGE, MISSING_BEARER_MESSAGE
from daemon.api.context import ApiContext
from tests.daemon.api.support import TOKEN, bearer


def assert_refused(response: httpx.Response, message: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"success": False, "error": 401, "message": message}


async def test_no_token_is_401_with_how_to(client: httpx.AsyncClient) -> None:
    assert_refused(await client.get("/api/test/private"), MISSING_BEARER_MESSAGE)
    assert MISSING_BEARER_MESSAGE == (
        "missing bearer token: send Authorization: Bearer <token> (shopbell token prints it)"
    )


async def test_wrong_token_is_401_invalid(client: httpx.AsyncClient) -> None:
    assert_refused(
        await client.get("/api/test/private", headers=bearer("nope")), INVALID_BEARER_MESSAGE
    )
    assert_refused(
        await client.get("/api/test/private", headers=bearer(TOKEN + "x")), INVALID_BEARER_MESSAGE
    )
    # Non-ASCII bytes in the header: refused, not a 500 from compare_digest.
    latin1 = {b"Authorization": "Bearer tök-ñon-ascii".encode("latin-1")}
    assert_refused(await client.get("/api/test/private", headers=latin1), INVALID_BEARER_MESSAGE)


async def test_other_schemes_or_empty_bearer_count_as_missing(client: httpx.AsyncClient) -> None:
    basic = {"Authorization": f"Basic {TOKEN}"}
    assert_refused(await client.get("/api/test/private", headers=basic), MISSING_BEARER_MESSAGE)
    empty = {"Authorization": "Bearer "}
    assert_refused(await client.get("/api/test/private", headers=empty), MISSING_BEARER_MESSAGE)


async def test_right_token_passes_and_sets_the_principal(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/test/private", headers=bearer())
    lower = await client.get("/api/test/private", headers={"authorization": f"bearer {TOKEN}"})

    assert response.status_code == 200
    assert response.json() == {"principal": "api-token"}
    assert lower.status_code == 200


async def test_route_and_method_are_judged_before_the_token(client: httpx.AsyncClient) -> None:
    # As the seeds answer: 404 for an unknown path, 405 for a known path and another
    # method, token or not (the public OpenAPI document lists the paths anyway).
    for headers in ({}, bearer()):
        missing = await client.get("/api/nothing-here", headers=headers)
        assert missing.status_code == 404
        assert missing.json() == {"success": False, "error": 404, "message": "Not Found"}
        wrong = await client.post("/api/health", headers=headers)
        assert wrong.status_code == 405
        assert wrong.json()["message"] == "Method Not Allowed"
        assert wrong.headers["allow"] == "GET, HEAD"
        assert (await client.get("/smss", headers=headers)).status_code == 405
        assert (await client.get("/api/health/", headers=headers)).status_code == 404


async def test_a_route_without_a_row_in_the_table_needs_the_api_token(
    client: httpx.AsyncClient,
) -> None:
    # The test-only routes have no row: secure by default.
    assert_refused(await client.get("/api/test/private"), MISSING_BEARER_MESSAGE)
    assert (await client.get("/api/test/private", headers=bearer())).status_code == 200


async def test_the_token_never_appears_in_bodies_or_logs(
    client: httpx.AsyncClient, ctx: ApiContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    longer = TOKEN + "-and-more"  # a wrong token that contains the right one
    requests = [
        ("GET", "/api/test/private", {}),
        ("GET", "/api/test/private", bearer(longer)),
        ("GET", "/api/test/private", bearer()),
        ("GET", "/api/nothing-here", bearer()),
        ("POST", "/api/health", bearer()),
        ("GET", "/api/test/boom", bearer()),
        ("POST", "/api/test/signup", bearer()),
        ("GET", "/api/health", bearer()),
        ("GET", "/api", bearer()),
        ("GET", "/api/openapi.json", bearer()),
    ]
    texts = []
    for method, path, headers in requests:
        response = await client.request(method, path, headers=headers)
        texts.append(response.text)

    assert any(r.name == "daemon.api.auth" for r in caplog.records)  # the log was captured
    for text in texts:
        assert TOKEN not in text
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(record.args) for record in caplog.records)
    assert TOKEN not in repr(ctx)


async def test_repeated_slashes_are_merged_as_flask_merged_them(client: httpx.AsyncClient) -> None:
    # Old builds of seed 0's page post to "http://127.0.0.1:5000//submit_subscriber_info".
    assert (await client.get("http://testserver//api//health")).status_code == 200
    response = await client.post("http://testserver//submit_subscriber_info", json={})
    assert response.status_code == 400  # the route's answer: it was found
