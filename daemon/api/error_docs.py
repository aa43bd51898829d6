"""What the OpenAPI document says about errors: every status a route can answer, with its body.

Two sources, so no route repeats what the app's own layers do:

- a route names the statuses its own code answers (`responses=errors_for(404, 409)`): a
  missing record, a conflict, a role refused, an outside service failing;
- `document_errors` adds, in the schema FastAPI builds, the statuses the layers around every
  route answer, from what the operation is: 400 where it takes inputs, 401 where the access
  table (daemon/api/access.py) asks for credentials, 413 where it reads a body, 429 where
  the table sets a per-client limit, 503 wherever it uses the database (unless marked
  `STORAGE_FREE`), 507 where it writes (POST, PUT, PATCH, DELETE).

405 is never listed: an operation is one method, and a 405 answers another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.api.access import Access, rule_for
from daemon.api.errors import VALIDATION_STATUS

ERROR_BODY = "ErrorBody"
JSON = "application/json"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
# An operation that touches neither the database nor a service: no 503, no 507.
STORAGE_FREE: dict[str, Any] = {"x-storage": "none"}
# FastAPI's own body of a 422, which this API never sends (errors.py answers 400 instead).
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

# What each status means on this API, in plain words.
DESCRIPTIONS: dict[int, str] = {
    400: "A parameter or field is missing or breaks its rule; `errors` names each one",
    401: "No valid credentials: send Authorization: Bearer <the API token or a login token>",
    403: "Refused to this caller: its role may not do this",
    404: "No such record",
    409: "Refused by the current state: a duplicate, an opted-out number, a message already "
    "sent, an empty stock...",
    413: "The body is larger than [api] max_body_bytes",
    415: "The body is not in the media type this route reads",
    429: "Too many requests; Retry-After says how many seconds to wait",
    502: "An outside service answered with an error",
    503: "Not available now: the database cannot be used, or the part of the daemon this "
    "needs is not running (yet); try again later",
    507: "The disk holding the database is full: nothing was written",
}
# A 503 a route answers itself: busy, or an outside service asks to wait.
BUSY_DESCRIPTION = (
    "Not available now: the database cannot be used, or a queue, a budget or an outside "
    "service is full or busy; Retry-After, when sent, says how many seconds to wait"
)
_RETRY_AFTER = {
    "description": "seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 0},
}
_WWW_AUTHENTICATE = {
    "description": '"Bearer", when the token is missing or not valid',
    "schema": {"type": "string"},
}


class FieldError(BaseModel):
    """One input a request got wrong."""

    field: str = Field(description='where it is, e.g. "body.phone" or "query.limit"')
    rule: str = Field(description="the rule it breaks, in plain words")
    type: str | None = Field(
        default=None, description="the rule's name when the request's model checked it"
    )


# What daemon/api/errors.py `error_response` writes; a test holds the two together.
class ErrorBody(BaseModel):
    """Every error answer of the API.

    Some add keys of their own beside these, e.g. `retry_after` and `sends_left` on a code
    asked for too often, `product_id` on an order refused for stock.
    """

    model_config = ConfigDict(extra="allow")

    success: Literal[False]
    error: int = Field(description="the HTTP status again")
    message: str = Field(min_length=1, description="what went wrong, in plain words")
    errors: list[FieldError] = Field(
        default_factory=list, description="each input that was refused and why (on 400 mostly)"
    )


def errors_for(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route for the statuses its own code answers.

    Each is an ErrorBody with the status's plain description, or the one given as
    `(status, description)`. A 503 named here is the route's own "busy" and may carry
    Retry-After; the 503 of the database is added to every route by `document_errors`.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, None)
        if status == 503:
            responses[status] = _error(status, description or BUSY_DESCRIPTION, retry_after=True)
        else:
            responses[status] = _error(status, description)
    return responses


def _error(
    status: int, description: str | None = None, *, retry_after: bool = False
) -> dict[str, Any]:
    documented: dict[str, Any] = {
        "description": description or DESCRIPTIONS[status],
        "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{ERROR_BODY}"}}},
    }
    if status == 429:
        # Every 429 says when to try again: the per-client limits and the services alike.
        documented["headers"] = {"Retry-After": {**_RETRY_AFTER, "required": True}}
    elif retry_after:
        documented["headers"] = {"Retry-After": _RETRY_AFTER}
    elif status == 401:
        documented["headers"] = {"WWW-Authenticate": _WWW_AUTHENTICATE}
    return documented


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add to an OpenAPI schema the errors every route gets from the app's layers.

    Idempotent: FastAPI caches the schema and this runs on each request for it.
    """
    _add_error_body(schema.setdefault("components", {}).setdefault("schemas", {}))
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and isinstance(operation.get("responses"), dict):
                _document_operation(method, path, operation)
    _drop_unused(schema, _FASTAPI_VALIDATION_SCHEMAS)
    return schema


def _document_operation(method: str, path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    inputs = bool(operation.get("parameters")) or "requestBody" in operation
    # FastAPI documents a 422 where there are inputs; this API answers 400 (errors.py).
    responses.pop("422", None)
    if inputs:
        responses.setdefault(str(VALIDATION_STATUS), _error(VALIDATION_STATUS))
    rule = rule_for(method, path)
    access = rule.access if rule is not None else Access.TOKEN
    if access is not Access.PUBLIC:
        responses.setdefault("401", _error(401))
    if "requestBody" in operation:
        responses.setdefault("413", _error(413))
    if rule is not None and rule.limit is not None:
        responses.setdefault("429", _error(429))
    if operation.get("x-storage") != "none":
        responses.setdefault("503", _error(503))
        if method.lower() in WRITE_METHODS:
            responses.setdefault("507", _error(507))
    operation["responses"] = dict(sorted(responses.items()))


def _add_error_body(schemas: dict[str, Any]) -> None:
    body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body.pop("$defs", {}))
    schemas[ERROR_BODY] = body


def _drop_unused(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    schemas: Mapping[str, Any] = schema.get("components", {}).get("schemas", {})
    for name in names:
        if name in schemas and f'"#/components/schemas/{name}"' not in json.dumps(schema):
            del schema["components"]["schemas"][name]
