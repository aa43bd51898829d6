"""The API docs pages, Swagger UI at /api/docs and ReDoc at /api/redoc, with no internet.

FastAPI's built-in pages load their JavaScript, CSS and favicon from a CDN, so on a shop PC
without internet they are blank. Here the same pages (FastAPI's own HTML builders) point at
copies of those files shipped in the `fastapi-offline` wheel (docs/api-docs.md says why that
package), served from under /api/docs/ so they share the docs pages' public path prefix.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS_URL", "DOCS_URL", "OAUTH2_REDIRECT_URL", "REDOC_URL", "router"]

DOCS_URL = "/api/docs"
OAUTH2_REDIRECT_URL = DOCS_URL + "/oauth2-redirect"
REDOC_URL = "/api/redoc"
# Under DOCS_URL on purpose: the auth layer's public docs prefix covers the assets too.
ASSETS_URL = DOCS_URL + "/assets"

# The package and its folder of assets: swagger-ui-bundle.js, swagger-ui.css,
# redoc.standalone.js, favicon.png. Located with find_spec by StaticFiles, so the package's
# own module (a FastAPI subclass we don't use) is never imported.
_ASSET_PACKAGE = ("fastapi_offline", "static")

# Swagger UI otherwise sends the schema's URL to validator.swagger.io for a badge image:
# an outside request, and a broken image with no internet.
_SWAGGER_UI_PARAMETERS: dict[str, Any] = {"validatorUrl": None}

router = APIRouter()


def _root(request: Request) -> str:
    # Behind a proxy serving the daemon under a sub-path, links must carry that prefix.
    return str(request.scope.get("root_path", "")).rstrip("/")


def _openapi_url(request: Request) -> str:
    # Read from the app, so the pages follow the one place that names the schema's URL.
    return _root(request) + (request.app.openapi_url or "")


@router.get(DOCS_URL, include_in_schema=False)
async def swagger_ui_page(request: Request) -> HTMLResponse:
    """Swagger UI, its script, style and icon from this daemon."""
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        swagger_ui_parameters={
            **(request.app.swagger_ui_parameters or {}),
            **_SWAGGER_UI_PARAMETERS,
        },
    )


@router.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    """The page Swagger UI's OAuth2 flows return to (inline script, no assets)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL, include_in_schema=False)
async def redoc_page(request: Request) -> HTMLResponse:
    """ReDoc, its script and icon from this daemon."""
    root = _root(request)
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        # Google Fonts is another outside host; ReDoc falls back to the system's fonts.
        with_google_fonts=False,
    )


# A Mount, not routes: StaticFiles brings ETag/Last-Modified (304s), HEAD, and refuses paths
# outside the folder. app.py's `_serve` copies a router's routes, so the Mount comes along.
router.routes.append(
    Mount(ASSETS_URL, app=StaticFiles(packages=[_ASSET_PACKAGE]), name="docs-assets")
)
