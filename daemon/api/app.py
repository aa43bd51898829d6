"""Builds the FastAPI app: middleware, error handlers and routers, nothing else."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from daemon.api import accounts as accounts_api
from daemon.api import docs, health, home, index, messages, notifications, otp, webhooks
from daemon.api import orders as orders_api
from daemon.api import products as products_api
from daemon.api import reports as reports_api
from daemon.api import stats as stats_api
from daemon.api import subscribers as subscribers_api
from daemon.api import tgtg as tgtg_api
from daemon.api.auth import AccessMiddleware, Door, LoginVerifier, add_bearer_security
from daemon.api.client_limits import ClientLimiter
from daemon.api.clients import networks
from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import document_errors
from daemon.api.errors import UnhandledErrorMiddleware, install_error_handlers
from daemon.api.limits import BodyLimitMiddleware
from daemon.api.local_callers import LocalCallers, machine_names

__all__ = ["DOCS_URL", "OPENAPI_URL", "ApiContext", "create_app", "get_ctx"]

OPENAPI_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"
CORS_MAX_AGE_SECONDS = 600
# Every module with routes, in the order a request is matched against them.
_ROUTE_MODULES = (
    home,
    health,
    index,
    messages,
    notifications,
    otp,
    webhooks,
    accounts_api,
    products_api,
    orders_api,
    reports_api,
    subscribers_api,
    tgtg_api,
    stats_api,
    docs,
)


def create_app(ctx: ApiContext) -> FastAPI:
    """The API app for `ctx`; the caller serves it (ApiServer) or tests call it directly."""
    app = FastAPI(
        title="shopbell",
        version=ctx.version,
        openapi_url=OPENAPI_URL,
        # FastAPI's own pages load Swagger UI/ReDoc from a CDN (blank with no internet):
        # off here, served by daemon/api/docs.py with assets from a package instead.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for module in _ROUTE_MODULES:
        _include(app, module.router)
    if ctx.metrics is not None:
        # Imported only here: with metrics off, prometheus_client is never loaded.
        from daemon.api import metrics as metrics_api

        _include(app, metrics_api.router)
    _install_openapi_security(app)

    # add_middleware puts each new one outside the previous: the last added runs first.
    # Order, outermost first: CORS (so preflights and 401/413 answers carry CORS headers),
    # the access table (route, credentials, per-client limits, before any body is read),
    # body limit, error catcher.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=ctx.max_body_bytes)
    app.add_middleware(
        AccessMiddleware, routes=functools.partial(served_routes, app), door=_door(ctx)
    )
    if ctx.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(ctx.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            # Bearer tokens, not cookies: browsers need no credentials mode.
            allow_credentials=False,
            max_age=CORS_MAX_AGE_SECONDS,
        )
    return app


def _include(app: FastAPI, router: APIRouter) -> None:
    app.include_router(router)
    app.state.included = [*getattr(app.state, "included", ()), router]


def served_routes(app: FastAPI) -> list[BaseRoute]:
    """Every route `app` serves, in the order it matches them (the first full match wins).

    FastAPI (0.165) keeps an included router as one entry of `app.routes` that does not say
    which of its routes matched; the access table needs the route itself. So each entry that
    is not a route of its own stands for the next included router, and its routes take its
    place. Remembered until the app's routes change (tests add some to a built app).
    """
    entries = app.router.routes
    cached = getattr(app.state, "served", None)
    if cached is not None and cached[0] == len(entries):
        return cached[1]
    included = iter(getattr(app.state, "included", ()))
    served: list[BaseRoute] = []
    for entry in entries:
        if isinstance(entry, (Route, Mount, WebSocketRoute)):
            served.append(entry)
        else:
            router = next(included, None)
            served.extend(router.routes if router is not None else [entry])
    app.state.served = (len(entries), served)
    return served


def _door(ctx: ApiContext) -> Door:
    api = ctx.settings.api
    local = LocalCallers(
        networks=networks(api.trusted_networks),
        origins=frozenset(origin.rstrip("/") for origin in ctx.cors_origins),
        names=machine_names(extra_urls=(api.public_url,), extra_hosts=(api.host,)),
    )
    return Door(
        token=ctx.api_token,
        verify_login=_login_verifier(ctx),
        clients=ctx.clients,
        local=local,
        limiter=ClientLimiter(ctx.settings.limits, ctx.clock),
    )


def _login_verifier(ctx: ApiContext) -> LoginVerifier:
    def verify(token: str) -> object | None:
        # Read at each request: the back office may be attached after the app is built.
        return ctx.backoffice.tokens.verify(token) if ctx.backoffice is not None else None

    return verify


def _install_openapi_security(app: FastAPI) -> None:
    build_schema = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI caches the schema and rebuilds it when routes change; marking is
        # idempotent, so mark whatever it returns: who may call each operation, and every
        # error status the app's layers add to its route's own (daemon/api/error_docs.py).
        return add_bearer_security(document_errors(build_schema()))

    # FastAPI's documented way to customise the schema: replace app.openapi.
    app.openapi = openapi  # type: ignore[method-assign]
