"""Every error in the seed format: 404, 405, 400, ApiError and an unhandled 500."""

from __future__ import annotations

import logging

import httpx
import pytest

from daemon.api.errors import error_response
from tests.daemon.api.support import bearer


async def test_unknown_path_is_404_in_seed_format(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here", headers=bearer())

    assert response.status_code == 404
    assert response.json() == {"success": False, "error": 404, "message": "Not Found"}


async def test_wrong_method_is_405_in_seed_format_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/health", headers=bearer())

    assert response.status_code == 405
    assert response.json() == {"success": False, "error": 405, "message": "Method Not Allowed"}
    assert "GET" in response.headers["allow"]


async def test_400_names_each_field_and_rule(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/test/signup", headers=bearer(), json={"qty": "many"})

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"] == 400
    assert "body.phone: field required" in body["message"]
    assert "body.qty: input should be a valid integer" in body["message"]
    rules = {item["field"]: item["rule"] for item in body["errors"]}
    assert rules["body.phone"] == "field required"
    assert rules["body.qty"].startswith("input should be a valid integer")
    assert "many" not in response.text  # the rejected input is not echoed


async def test_400_uses_the_validators_own_words(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/test/signup", headers=bearer(), json={"phone": "0987654321", "qty": 1}
    )

    assert response.status_code == 400
    assert response.json()["message"] == "body.phone: phone must start with + (E.164)"


async def test_invalid_json_is_400_on_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/test/signup",
        headers={**bearer(), "Content-Type": "application/json"},
        content=b'{"phone": ',
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["body"]
    assert errors[0]["rule"].startswith("invalid JSON at character")


async def test_api_error_keeps_status_message_and_extra(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/test/conflict", headers=bearer())

    assert response.status_code == 409
    assert response.json() == {
        "success": False,
        "error": 409,
        "message": "already subscribed",
        "subscriber_id": 7,
    }


async def test_unhandled_exception_is_500_without_its_text_and_is_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="daemon.api.errors")

    # The client raises app exceptions: passing means the error did not escape the app.
    response = await client.get("/api/test/boom", headers=bearer())

    assert response.status_code == 500
    assert response.json() == {"success": False, "error": 500, "message": "Internal Server Error"}
    assert "secret detail" not in response.text
    assert "RuntimeError" not in response.text
    logged = [r for r in caplog.records if r.name == "daemon.api.errors"]
    assert len(logged) == 1
    assert "GET /api/test/boom" in logged[0].getMessage()
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], RuntimeError)


def test_error_response_refuses_to_overwrite_seed_keys() -> None:
    with pytest.raises(ValueError, match="success"):
        error_response(400, "bad", success=True)
    body = error_response(400, "bad", field="phone").body
    assert body == b'{"success":false,"error":400,"message":"bad","field":"phone"}'
