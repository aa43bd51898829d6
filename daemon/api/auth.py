"""The door: each request judged by its route's row in the access table (daemon/api/access.py)."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from daemon.api.access import Access, Rule, rule_for
from daemon.api.client_limits import ClientLimiter, Refusal
from daemon.api.clients import ClientResolver
from daemon.api.errors import error_response
from daemon.api.local_callers import LocalCallers

logger = logging.getLogger(__name__)

# Hand-written, after looking at Starlette's AuthenticationMiddleware and FastAPI's
# HTTPBearer: both protect only the routes that ask (`requires`, a dependency), so a
# route that forgets is open. Here the access table (daemon/api/access.py) decides, and a
# route without a row there needs the API token.

PRINCIPAL_API_TOKEN = "api-token"  # noqa: S105 -- a principal kind, not a secret
# A tokenless call to a local route from one of the shop PC's own programs.
PRINCIPAL_LOCAL = "local-program"
BEARER_SCHEME = "bearerAuth"

# Checks a presented token that is not the API token: returns a principal, or None.
LoginVerifier = Callable[[str], object | None]

LOGIN_NOT_ALLOWED_MESSAGE = "a login token cannot use this endpoint; it needs the API token"
MISSING_BEARER_MESSAGE = (
    "missing bearer token: send Authorization: Bearer <token> (shopbell token prints it)"
)
INVALID_BEARER_MESSAGE = "invalid token"
_REPEATED_SLASHES = re.compile("/{2,}")
ROUTE_CACHE_SIZE = 2048


@dataclass(frozen=True)
class Door:
    """What the access middleware needs besides the app: credentials, callers, limits."""

    token: str
    verify_login: LoginVerifier | None
    clients: ClientResolver
    local: LocalCallers
    limiter: ClientLimiter | None = None

    def __post_init__(self) -> None:
        if not self.token.strip():
            raise ValueError("an empty API token would let anyone in")


class AccessMiddleware:
    """Pure ASGI middleware: judges each request by its route's row in the access table.

    First the route: an unknown path is 404 and a known path with another method 405, for
    anyone (they are listed in the public OpenAPI document anyway). Then the credentials
    the row asks for, then the row's per-client limit. It sets scope["state"]["principal"]
    (request.state.principal) to "api-token", to what `verify_login` returned for a login
    token (a JWT), to "local-program" for a tokenless local call, or to None on a public
    route called without credentials.
    """

    def __init__(
        self, app: ASGIApp, *, routes: Callable[[], Sequence[BaseRoute]], door: Door
    ) -> None:
        self.app = app
        # Every route in the order the app matches them (daemon/api/app.py served_routes).
        self._routes = routes
        self._door = door
        self._token = door.token.encode("utf-8")
        self._routes_seen: dict[tuple[str, str, int], tuple[str | None, frozenset[str]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        method: str = scope["method"]
        if "//" in scope["path"]:
            # Flask merged repeated slashes; old builds of seed 0's page post to
            # "//submit_subscriber_info". Merged here, so the table and router see one path.
            scope["path"] = _REPEATED_SLASHES.sub("/", scope["path"])
        route, allowed = self._route_of(scope)
        if route is None:
            if allowed:
                headers = {"Allow": ", ".join(sorted(allowed))}
                response = error_response(405, "Method Not Allowed", headers=headers)
            else:
                response = error_response(404, "Not Found")
            await response(scope, receive, send)
            return

        rule = rule_for(method, route)
        access = rule.access if rule is not None else Access.TOKEN
        headers = Headers(scope=scope)
        presented = _bearer_token(headers.get("authorization"))
        principal = None if presented is None else self._principal(presented)

        refusal = self._refusal(access, presented, principal, scope, headers)
        if refusal is not None:
            logger.debug("refused %s %s: %s", method, scope["path"], refusal)
            await _unauthorized(refusal)(scope, receive, send)
            return
        if access is Access.LOCAL and principal != PRINCIPAL_API_TOKEN:
            principal = PRINCIPAL_LOCAL
        state: dict[str, Any] = scope.setdefault("state", {})
        state["principal"] = principal

        over = self._over_limit(rule, principal, scope)
        if over is not None:
            limited = error_response(
                429, over.message, headers={"Retry-After": str(over.retry_after)}
            )
            await limited(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _over_limit(self, rule: Rule | None, principal: object, scope: Scope) -> Refusal | None:
        """The row's per-client limit; the shop's own programs (the API token) go unlimited."""
        limiter = self._door.limiter
        if rule is None or rule.limit is None or limiter is None:
            return None
        if principal == PRINCIPAL_API_TOKEN:
            return None
        client = self._door.clients.key(scope)
        over = limiter.take(rule.limit, client)
        if over is not None:
            logger.info("limited %s %s from %s", scope["method"], scope["path"], client)
        return over

    def _route_of(self, scope: Scope) -> tuple[str | None, frozenset[str]]:
        """`_match`, remembered per method and path: walking ~90 routes costs up to 0.15 ms.

        Bounded: emptied when full, so a scanner's many paths cost only the walk. The
        number of routes is part of the key, as tests add routes to a built app.
        """
        routes = self._routes()
        key = (scope["method"], scope["path"], len(routes))
        found = self._routes_seen.get(key)
        if found is None:
            if len(self._routes_seen) >= ROUTE_CACHE_SIZE:
                self._routes_seen.clear()
            found = self._routes_seen[key] = _match(routes, scope)
        return found

    def _principal(self, presented: str) -> object | None:
        # Constant time, on bytes (a str compare_digest refuses non-ASCII input); Starlette
        # decoded the header as latin-1, so encoding it back gives the bytes as sent.
        if hmac.compare_digest(presented.encode("latin-1"), self._token):
            return PRINCIPAL_API_TOKEN
        if self._door.verify_login is not None:
            return self._door.verify_login(presented)
        return None

    def _refusal(
        self,
        access: Access,
        presented: str | None,
        principal: object | None,
        scope: Scope,
        headers: Headers,
    ) -> str | None:
        """Why the request is refused (401), or None when it may go on."""
        if access is Access.PUBLIC:
            # The route decides what an (optional) login may do, e.g. staff sign-up.
            return None
        if principal == PRINCIPAL_API_TOKEN:
            return None
        if access is Access.LOGIN and principal is not None:
            return None
        if presented is None:
            if access is Access.LOCAL:
                reason = self._door.local.refusal(self._door.clients.address(scope), headers)
                if reason is None:
                    return None
                return f"{MISSING_BEARER_MESSAGE}; a call without it is refused here: {reason}"
            return MISSING_BEARER_MESSAGE
        if principal is not None:
            return LOGIN_NOT_ALLOWED_MESSAGE
        client = self._door.clients.key(scope)
        logger.warning(
            "refused %s %s from %s: invalid token", scope["method"], scope["path"], client
        )
        return INVALID_BEARER_MESSAGE

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        # No websocket route is in the access table: only the API token opens one.
        presented = _bearer_token(Headers(scope=scope).get("authorization"))
        if presented is None or self._principal(presented) != PRINCIPAL_API_TOKEN:
            # 1008 = policy violation; a websocket cannot carry an HTTP 401 body.
            await send({"type": "websocket.close", "code": 1008})
            return
        scope.setdefault("state", {})["principal"] = PRINCIPAL_API_TOKEN
        await self.app(scope, receive, send)


def _match(routes: Sequence[BaseRoute], scope: Scope) -> tuple[str | None, frozenset[str]]:
    """The template of the route that serves `scope`, else the methods its path allows.

    The same walk as Starlette's router (the first full match wins), through its public
    `matches`, so the table is judged against the route that will really answer.
    """
    allowed: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "")), frozenset()
        if match is Match.PARTIAL:
            allowed |= set(getattr(route, "methods", None) or ())
    if "GET" in allowed:
        allowed.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return None, frozenset(allowed)


def _unauthorized(message: str) -> Response:
    return error_response(401, message, headers={"WWW-Authenticate": "Bearer"})


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
    """Mark each operation of an OpenAPI schema with its access and the token it needs.

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
            if not isinstance(operation, dict):
                continue
            rule = rule_for(method, path)
            access = rule.access if rule is not None else Access.TOKEN
            operation["x-access"] = access.value
            if access is Access.LOCAL:
                # The token, or nothing from this machine's own programs.
                operation.setdefault("security", [{BEARER_SCHEME: []}, {}])
            elif access is not Access.PUBLIC:
                operation.setdefault("security", [{BEARER_SCHEME: []}])
    return schema
