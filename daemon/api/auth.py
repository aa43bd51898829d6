"""Bearer-token authentication for every path but the few listed here as public."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from daemon.api.errors import error_response

logger = logging.getLogger(__name__)

# Hand-written, after looking at Starlette's AuthenticationMiddleware and FastAPI's
# HTTPBearer: both protect only the routes that ask (`requires`, a dependency), so a
# route that forgets is open. Here every path is closed unless listed below.

PRINCIPAL_API_TOKEN = "api-token"  # noqa: S105 -- a principal kind, not a secret
BEARER_SCHEME = "bearerAuth"

# Public exact routes as (method, path). Everything not listed here or under a public
# prefix needs a bearer token, so a route added later cannot forget authentication.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    (method, path)
    for method in ("GET", "HEAD")
    for path in (
        "/api/health",
        "/api",
        "/api/openapi.json",
        "/api/docs",
        "/api/docs/oauth2-redirect",
    )
)

# Path prefixes (any method) whose routes authenticate requests themselves, e.g. Twilio
# webhooks checking X-Twilio-Signature. A prefix covers itself and what is below it at a
# "/" boundary. Edit only through `register_public_prefix`, at import time of the module
# that defines such routes, so `grep register_public_prefix` lists every one.
_public_prefixes: set[str] = set()

MISSING_BEARER_MESSAGE = (
    "missing bearer token: send Authorization: Bearer <token> (shopbell token prints it)"
)
INVALID_BEARER_MESSAGE = "invalid token"


def register_public_prefix(prefix: str) -> None:
    """Let every path under `prefix` through without a bearer token (its routes check)."""
    if not prefix.startswith("/") or prefix.rstrip("/") in ("", "/api"):
        raise ValueError(f"refusing to make {prefix!r} public: it would cover the whole API")
    _public_prefixes.add(prefix.rstrip("/"))


def unregister_public_prefix(prefix: str) -> None:
    """Undo `register_public_prefix` (for tests)."""
    _public_prefixes.discard(prefix.rstrip("/"))


def public_prefixes() -> frozenset[str]:
    """The registered public prefixes, without trailing slashes."""
    return frozenset(_public_prefixes)


def is_public(method: str, path: str) -> bool:
    """True when (method, path) needs no bearer token."""
    if (method.upper(), path) in PUBLIC_ROUTES:
        return True
    return any(path == prefix or path.startswith(prefix + "/") for prefix in _public_prefixes)


class BearerAuthMiddleware:
    """Pure ASGI middleware: checks `Authorization: Bearer <token>` before any route runs.

    On success it sets scope["state"]["principal"] (request.state.principal) to
    "api-token"; on public paths to None. A later login kind adds its own principal here.
    """

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        if not token.strip():
            raise ValueError("an empty API token would let anyone in")
        self.app = app
        self._token = token.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        state: dict[str, Any] = scope.setdefault("state", {})
        method = scope.get("method", "GET")
        # scope["path"] is what the router matches too, so both see the same path.
        path: str = scope["path"]
        if is_public(method, path):
            state["principal"] = None
            await self.app(scope, receive, send)
            return

        presented = _bearer_token(Headers(scope=scope).get("authorization"))
        if presented is None:
            logger.debug("refused %s %s: no bearer token", method, path)
            await self._refuse(scope, receive, send, MISSING_BEARER_MESSAGE)
            return
        # Constant time, on bytes (a str compare_digest refuses non-ASCII input); Starlette
        # decoded the header as latin-1, so encoding it back gives the bytes as sent.
        if not hmac.compare_digest(presented.encode("latin-1"), self._token):
            client = scope.get("client") or ("?", 0)
            logger.warning("refused %s %s from %s: invalid token", method, path, client[0])
            await self._refuse(scope, receive, send, INVALID_BEARER_MESSAGE)
            return

        state["principal"] = PRINCIPAL_API_TOKEN
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        if scope["type"] == "websocket":
            # 1008 = policy violation; a websocket cannot carry an HTTP 401 body.
            await send({"type": "websocket.close", "code": 1008})
            return
        response = error_response(401, message, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def _bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def add_bearer_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Mark non-public operations in an OpenAPI schema as needing the bearer token.

    The middleware, not a FastAPI dependency, enforces auth, so FastAPI cannot know;
    without this the docs page has no "Authorize" button.
    """
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "The API token (`shopbell token` prints it).",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and not is_public(method, path):
                operation.setdefault("security", [{BEARER_SCHEME: []}])
    return schema
