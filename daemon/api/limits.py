"""Refuse request bodies over the configured size with a seed-format 413."""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daemon.api.errors import error_response

logger = logging.getLogger(__name__)

# Starlette 1.x ships RequestBodyLimitMiddleware (and FastAPI its `max_body_size`), but it
# answers in plain text and checks Content-Length only once the app reads or responds;
# this one refuses up front in the seed format and is otherwise the same idea.


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit.

    An HTTPException, so FastAPI's body reader re-raises it untouched and the error
    handlers answer 413; if a route swallows it, the middleware still answers.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_message(limit))


def too_large_message(limit: int) -> str:
    """The 413 message, one wording for both ways a body is caught."""
    return f"request body too large: the limit is {limit} bytes"


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 for a body over `max_body_bytes`, without reading further.

    A declared Content-Length over the limit is refused before the app runs; a body
    without one (chunked) is counted as the app reads it and refused at the first
    chunk past the limit.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await error_response(400, "invalid Content-Length header")(scope, receive, send)
                return
            if length > limit:
                logger.info(
                    "refused %s %s: body of %d bytes", scope["method"], scope["path"], length
                )
                await error_response(413, too_large_message(limit))(scope, receive, send)
                return

        received = 0
        refused = False  # the body passed the limit
        started = False  # the app's response has begun going out
        answered = False  # we sent the 413 in place of the app's response

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, answered
            if answered:
                return
            if refused and not started and message["type"] == "http.response.start":
                # The app answered anyway (it caught BodyTooLarge): the limit still wins.
                answered = True
                await error_response(413, too_large_message(limit))(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
        if refused:
            logger.info("refused %s %s: body over %d bytes", scope["method"], scope["path"], limit)
            if not started and not answered:
                await error_response(413, too_large_message(limit))(scope, receive, send)
