"""The OpenAPI document's errors: ErrorBody is what the API writes, and each operation lists
the statuses the app's layers answer for it (tests/reliability/test_api_conformance.py checks
the answers of a running daemon against the same document)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from daemon.api import access
from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.api.error_docs import ERROR_BODY, ErrorBody, FieldError, document_errors
from tests.daemon.api.support import bearer

_HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_BODY}"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in _HTTP_METHODS
    ]


@pytest.fixture
def document(make_ctx: Callable[..., ApiContext]) -> dict[str, Any]:
    return create_app(make_ctx()).openapi()


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/api/nothing-here", {"headers": bearer()}, 404),
        ("POST", "/api/health", {"headers": bearer()}, 405),
        ("GET", "/api/v1/stats", {}, 401),
        ("POST", "/api/test/signup", {"headers": bearer(), "json": {"qty": "many"}}, 400),
        ("POST", "/api/test/signup", {"headers": bearer(), "content": b'{"phone": '}, 400),
        ("GET", "/api/test/conflict", {"headers": bearer()}, 409),
        ("GET", "/api/test/boom", {"headers": bearer()}, 500),
    ],
)
async def test_every_error_the_api_writes_is_an_error_body(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    response = await client.request(method, path, **kwargs)

    assert response.status_code == status
    body = response.json()
    parsed = ErrorBody.model_validate(body)
    assert parsed.error == status
    # Each field error has the documented keys only, none left unsaid.
    for item in body.get("errors", []):
        assert FieldError.model_validate(item).model_dump(exclude_unset=True) == item


def test_no_operation_lists_fastapis_422_or_its_body(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert ERROR_BODY in document["components"]["schemas"]


def test_every_listed_error_has_the_error_body_and_a_description(
    document: dict[str, Any],
) -> None:
    errors = 0
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (path, status) == ("/api/health", "503"):
                continue  # health's 503 is its own report, with the database's state
            errors += 1
            assert response["description"], (method, path, status)
            assert response["content"]["application/json"]["schema"] == _ERROR_REF, (
                method,
                path,
                status,
            )
    assert errors > 300


def test_the_doors_statuses_follow_the_access_table(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        rule = access.rule_for(method, path)
        assert rule is not None, (method, path)
        statuses = operation["responses"]
        if rule.access is not access.Access.PUBLIC:
            assert "401" in statuses, (method, path)
        if rule.limit is not None:
            assert statuses["429"]["headers"]["Retry-After"]["required"] is True, (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(statuses), (method, path)
        if method in {"post", "put", "patch", "delete"}:
            assert {"503", "507"} <= set(statuses), (method, path)


def test_a_public_route_that_never_refuses_credentials_lists_no_401(
    document: dict[str, Any],
) -> None:
    catalogue = document["paths"]["/api/products"]["get"]["responses"]
    index = document["paths"]["/api"]["get"]["responses"]

    assert "401" not in catalogue
    # GET /api reads no storage and takes no input: nothing can go wrong but its answer.
    assert set(index) == {"200"}


def test_documenting_twice_changes_nothing(make_ctx: Callable[..., ApiContext]) -> None:
    app: FastAPI = create_app(make_ctx())
    first = copy.deepcopy(app.openapi())

    assert app.openapi() == first
    assert document_errors(copy.deepcopy(first)) == first
