"""GET /api: a short index of the endpoints, generated from the app's routes (via its OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from daemon.api.access import is_public
from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import STORAGE_FREE

router = APIRouter()

_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class Endpoint(BaseModel):
    """One method on one path."""

    method: str
    path: str
    summary: str
    public: bool


class ApiIndex(BaseModel):
    """The body of GET /api."""

    name: str
    version: str
    docs: str
    openapi: str
    auth: str
    endpoints: list[Endpoint]


@router.get(
    "/api",
    summary="This index of the API's endpoints",
    response_model=ApiIndex,
    openapi_extra=STORAGE_FREE,
)
async def api_index(request: Request, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> ApiIndex:
    """Public; read from the app's OpenAPI schema, so it stays true as routes are added."""
    app: FastAPI = request.app
    return ApiIndex(
        name=app.title,
        version=ctx.version,
        docs="/api/docs",
        openapi=app.openapi_url or "",
        auth="Authorization: Bearer <token> on every endpoint not marked public",
        endpoints=list_endpoints(app.openapi()),
    )


def list_endpoints(schema: dict[str, Any]) -> list[Endpoint]:
    """The operations of an OpenAPI schema, sorted by path then method.

    The schema rather than app.routes: since FastAPI 0.137 app.routes is a tree of
    included routers, and the schema already holds full paths and summaries. Routes with
    include_in_schema=False (the docs pages among them) are left out, as in the docs.
    """
    endpoints: list[Endpoint] = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _HTTP_METHODS or not isinstance(operation, dict):
                continue
            verb = method.upper()
            endpoints.append(
                Endpoint(
                    method=verb,
                    path=path,
                    summary=str(operation.get("summary", "")),
                    public=is_public(verb, path),
                )
            )
    endpoints.sort(key=lambda e: (e.path, e.method))
    return endpoints
