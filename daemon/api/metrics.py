"""GET /metrics: Prometheus metrics, behind the API token unless [metrics] public = true."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from daemon.api.auth import MISSING_BEARER_MESSAGE, PRINCIPAL_API_TOKEN
from daemon.api.context import ApiContext, get_ctx
from daemon.api.errors import error_response

METRICS_PATH = "/metrics"
# Public in the access table; this route asks for the token itself, so [metrics] public can
# open it. Imported only when metrics are on; with them off, /metrics has no route at all.

router = APIRouter()


# Not in the OpenAPI document: it is Prometheus' text format, not part of the JSON API.
@router.get(METRICS_PATH, include_in_schema=False)
async def metrics(request: Request, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Response:
    """The metrics in Prometheus' text format (or OpenMetrics, when the scraper asks)."""
    if ctx.metrics is None:
        return error_response(404, "Not Found")
    principal = getattr(request.state, "principal", None)
    if not ctx.settings.metrics.public and principal != PRINCIPAL_API_TOKEN:
        # Only the API token: a customer's login (JWT) must not read the shop's volumes.
        return error_response(401, MISSING_BEARER_MESSAGE, headers={"WWW-Authenticate": "Bearer"})
    body, content_type = await ctx.metrics.render(request.headers.get("accept"))
    return Response(content=body, media_type=content_type)
