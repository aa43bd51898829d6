"""Every API error as seed-format JSON: {"success": false, "error": <status>, "message": ...}."""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.errors import DiskFullError, StorageError

logger = logging.getLogger(__name__)

# One rule everywhere: a missing or malformed field is 400 Bad Request, as the seeds answer
# it (seed 1's own tests assert 400), on their paths and on /api/v1 alike, rather than
# FastAPI's 422. The body names each field and its rule.
VALIDATION_STATUS = 400
_RESERVED_KEYS = frozenset({"success", "error", "message"})
# pydantic prefixes messages of custom validators; the prefix says nothing to an API user.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


class ApiError(Exception):
    """Raised by routes for an expected failure; answered as seed-format JSON with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers) if headers else None
        self.extra = extra


def error_response(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The one error body of the API; `extra` adds keys after the three seed keys."""
    clash = _RESERVED_KEYS & extra.keys()
    if clash:
        raise ValueError(f"extra keys would overwrite the seed format: {sorted(clash)}")
    body: dict[str, Any] = {"success": False, "error": status, "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def describe_validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Turn pydantic's errors into [{"field": "body.phone", "rule": "field required", ...}]."""
    described: list[dict[str, str]] = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        kind = str(error.get("type", ""))
        if kind == "json_invalid":
            # loc is ("body", <character offset>): the offset is not a field.
            ctx = error.get("ctx") or {}
            position = loc[1] if len(loc) > 1 else "?"
            rule = f"invalid JSON at character {position}: {ctx.get('error', 'cannot parse')}"
            described.append({"field": "body", "rule": rule, "type": kind})
            continue
        described.append({"field": _field_path(loc), "rule": _plain_rule(error), "type": kind})
    return described


def _field_path(loc: Sequence[Any]) -> str:
    """("body", "items", 0, "qty") -> "body.items[0].qty"."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "request"


def _plain_rule(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "is not valid"))
    for prefix in _PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    # "Field required" -> "field required", but keep words like "JSON" or "E.164" intact.
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    return message


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in {204, 304}:
        # These statuses must not carry a body (same rule as Starlette's own handler).
        return Response(status_code=exc.status_code, headers=exc.headers)
    if isinstance(exc.detail, str) and exc.detail:
        return error_response(exc.status_code, exc.detail, headers=exc.headers)
    # FastAPI's HTTPException allows any JSON as detail; keep it, under a key of its own.
    phrase = _phrase(exc.status_code)
    if exc.detail:
        return error_response(exc.status_code, phrase, headers=exc.headers, detail=exc.detail)
    return error_response(exc.status_code, phrase, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    described = describe_validation_errors(exc.errors())
    message = "; ".join(f"{item['field']}: {item['rule']}" for item in described)
    # The rejected input is never echoed back: it may hold a password or an OTP.
    return error_response(VALIDATION_STATUS, message or "request is not valid", errors=described)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, headers=exc.headers, **exc.extra)


async def _last_resort(request: Request, exc: Exception) -> Response:
    # Reached only for errors outside the routes (a bug in a middleware); Starlette's
    # ServerErrorMiddleware logs and re-raises after this, so no logging here.
    return internal_error_response()


def internal_error_response() -> JSONResponse:
    """The 500 answer: nothing of the exception, which may hold data or secrets."""
    return error_response(500, _phrase(500))


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    # The database cannot take the work (its file is gone, the disk is full): nothing was
    # acknowledged, and the sentence says what to do. 507 for a full disk (RFC 4918 11.5),
    # else 503: the request may work later.
    logger.error("%s %s: %s", request.method, request.url.path, exc)
    return error_response(507 if isinstance(exc, DiskFullError) else 503, str(exc))


def install_error_handlers(app: FastAPI) -> None:
    """Replace FastAPI's {"detail": ...} answers with the seed format."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StorageError, _storage_error)
    app.add_exception_handler(Exception, _last_resort)


class UnhandledErrorMiddleware:
    """Answers a route's unhandled exception with a seed-format 500 and logs the traceback.

    Starlette's own `Exception` handler runs in the outermost middleware and re-raises
    afterwards, so the server logs the error a second time and the 500 misses the CORS
    headers. Installed as the innermost middleware, this one answers inside the stack.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False
        finished = False

        async def watch(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not started:
                await internal_error_response()(scope, receive, send)
            elif not finished:
                # Half a response is out: only the server can abort the connection.
                raise
