"""GET /: a small HTML page saying that shopbell runs, its version, and where to go next.

No script and nothing fetched from elsewhere (the page works on a shop PC with no internet);
provider detail only for a caller with the API token, as on /api/health.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from daemon.api.auth import PRINCIPAL_API_TOKEN
from daemon.api.context import ApiContext, get_ctx
from daemon.api.health import ComponentHealth, check_components

router = APIRouter()

# Nothing but the page itself and its inline style: no script may run on it.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"
    "td,th{padding:.2em .8em;text-align:left}"
)
_LINKS = (
    ("/api/docs", "API docs (Swagger UI)"),
    ("/api/redoc", "API docs (ReDoc)"),
    ("/api", "index of the endpoints (JSON)"),
    ("/api/health", "health (JSON)"),
)


@router.get("/", include_in_schema=False)
async def home(request: Request, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> HTMLResponse:
    """The home page; the components' states and detail only with the token."""
    shop = ctx.settings.shop.name
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>shopbell {escape(ctx.version)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>shopbell is running</h1><p>Version {escape(ctx.version)}",
        f" for {escape(shop)}.</p>" if shop else ".</p>",
        "<ul>",
        *(f'<li><a href="{href}">{escape(text)}</a></li>' for href, text in _LINKS),
        "</ul>",
    ]
    if getattr(request.state, "principal", None) == PRINCIPAL_API_TOKEN:
        parts.append(_components(await check_components(ctx.health_sources)))
    else:
        parts.append(
            "<p>The shop's programs call this daemon's API; the shopkeeper runs it with "
            "<code>shopbell tui</code>.</p>"
        )
    parts.append("</body></html>")
    return HTMLResponse("".join(parts), headers=_HEADERS)


def _components(components: dict[str, ComponentHealth]) -> str:
    if not components:
        return "<p>No providers are configured.</p>"
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{escape(cell)}</td>" for cell in (name, c.state, c.detail or ""))
        + "</tr>"
        for name, c in sorted(components.items())
    )
    return f"<table><tr><th>Part</th><th>State</th><th>Detail</th></tr>{rows}</table>"
