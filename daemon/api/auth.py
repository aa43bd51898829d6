"""Bearer-token authentication for every path but the few listed here as public."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
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

# Path prefixes whose routes authenticate requests themselves, e.g. Twilio webhooks
# checking X-Twilio-Signature, or a sign-up route deciding what an optional login may do.
# A prefix covers itself and what is below it at a "/" boundary; the value is the methods
# it is public for (None: any). Edit only through `register_public_prefix`, at import time
# of the module that defines such routes, so `grep register_public_prefix` lists every one.
_public_prefixes: dict[str, frozenset[str] | None] = {}

# Path prefixes where a login token (a JWT from a back-office login) is accepted as well as
# the API token. Everywhere else only the API token opens the door: a customer's login must
# never reach the outbox, push or OTP routes. Edit through `register_login_prefix`.
_login_prefixes: set[str] = set()

# Checks a presented token that is not the API token: returns a principal, or None.
LoginVerifier = Callable[[str], object | None]

LOGIN_NOT_ALLOWED_MESSAGE = "a login token cannot use this endpoint; it needs the API token"
MISSING_BEARER_MESSAGE = (
    "missing bearer token: send Authorization: Bearer <token> (shopbell token prints it)"
)
INVALID_BEARER_MESSAGE = "invalid token"


def _check_prefix(prefix: str, what: str) -> str:
    if not prefix.startswith("/") or prefix.rstrip("/") in ("", "/api"):
        raise ValueError(f"refusing to make {prefix!r} {what}: it would cover the whole API")
    return prefix.rstrip("/")


def register_public_prefix(prefix: str, methods: Iterable[str] | None = None) -> None:
    """Let paths under `prefix` through without a bearer token (its routes check).

    `methods` limits it (e.g. GET for a public catalogue whose writes need a login).
    On a public path a bearer token, when one is sent and valid, still sets the principal.
    """
    key = _check_prefix(prefix, "public")
    _public_prefixes[key] = None if methods is None else frozenset(m.upper() for m in methods)


def unregister_public_prefix(prefix: str) -> None:
    """Undo `register_public_prefix` (for tests)."""
    _public_prefixes.pop(prefix.rstrip("/"), None)


def public_prefixes() -> frozenset[str]:
    """The registered public prefixes, without trailing slashes."""
    return frozenset(_public_prefixes)


def register_login_prefix(prefix: str) -> None:
    """Accept login tokens (JWTs) as well as the API token on paths under `prefix`."""
    _login_prefixes.add(_check_prefix(prefix, "open to logins"))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def login_allowed(path: str) -> bool:
    """True when a login token may be used on `path`."""
    return any(_under(path, prefix) for prefix in _login_prefixes)


def is_public(method: str, path: str) -> bool:
    """True when (method, path) needs no bearer token."""
    method = method.upper()
    if (method, path) in PUBLIC_ROUTES:
        return True
    return any(
        _under(path, prefix) and (methods is None or method in methods)
        for prefix, methods in _public_prefixes.items()
    )


class BearerAuthMiddleware:
    """Pure ASGI middleware: checks `Authorization: Bearer <token>` before any route runs.

    On success it sets scope["state"]["principal"] (request.state.principal) to
    "api-token", or to what `verify_login` returned for a login token (a JWT) on a path
    registered with `register_login_prefix`; on public paths to that principal when a valid
    token was sent anyway, else None.
    """

    def __init__(
        self, app: ASGIApp, *, token: str, verify_login: LoginVerifier | None = None
    ) -> None:
        if not token.strip():
            raise ValueError("an empty API token would let anyone in")
        self.app = app
        self._token = token.encode("utf-8")
        self._verify_login = verify_login

    def _principal(self, presented: str, path: str) -> object | None:
        # Constant time, on bytes (a str compare_digest refuses non-ASCII input); Starlette
        # decoded the header as latin-1, so encoding it back gives the bytes as sent.
        if hmac.compare_digest(presented.encode("latin-1"), self._token):
            return PRINCIPAL_API_TOKEN
        if self._verify_login is not None and login_allowed(path):
            return self._verify_login(presented)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        state: dict[str, Any] = scope.setdefault("state", {})
        method = scope.get("method", "GET")
        # scope["path"] is what the router matches too, so both see the same path.
        path: str = scope["path"]
        presented = _bearer_token(Headers(scope=scope).get("authorization"))
        if is_public(method, path):
            # The route decides what an (optional) login may do, e.g. staff sign-up.
            state["principal"] = None if presented is None else self._principal(presented, path)
            await self.app(scope, receive, send)
            return

        if presented is None:
            logger.debug("refused %s %s: no bearer token", method, path)
            await self._refuse(scope, receive, send, MISSING_BEARER_MESSAGE)
            return
        principal = self._principal(presented, path)
        if principal is None:
            client = scope.get("client") or ("?", 0)
            logger.warning("refused %s %s from %s: invalid token", method, path, client[0])
            message = INVALID_BEARER_MESSAGE
            if (
                self._verify_login is not None
                and not login_allowed(path)
                and self._verify_login(presented) is not None
            ):
                message = LOGIN_NOT_ALLOWED_MESSAGE
            await self._refuse(scope, receive, send, message)
            return

        state["principal"] = principal
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
