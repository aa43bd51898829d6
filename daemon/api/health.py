"""GET /api/health: version, uptime, the database and every registered component."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from daemon.api.auth import PRINCIPAL_API_TOKEN
from daemon.api.context import ApiContext, HealthSource, get_ctx
from daemon.runtime.clock import utc_iso

logger = logging.getLogger(__name__)

# A component or the database that does not answer within this many seconds counts as
# down: health must answer quickly even when a part of the daemon is stuck.
HEALTH_TIMEOUT_SECONDS = 2.0

router = APIRouter()


class ComponentHealth(BaseModel):
    """One component's answer; extra keys (signal, operator, ...) are kept."""

    model_config = ConfigDict(extra="allow")

    state: Literal["ok", "degraded", "down"]
    # None (left out) in the answer to a caller without the token.
    detail: str | None = ""


class DatabaseHealth(BaseModel):
    """Whether the database answers, and (for the token's holder) why not."""

    ok: bool
    detail: str | None = None


class HealthReport(BaseModel):
    """The body of GET /api/health; without the token only up/down and the version."""

    # The seeds' shape: QuickCart's page sends nothing until health says success is true.
    success: bool
    status: Literal["ok", "degraded"]
    version: str
    database: DatabaseHealth
    components: dict[str, ComponentHealth]
    # Only for a caller with the API token (None is left out of the answer).
    uptime_seconds: float | None = None
    time: str | None = None


@router.get(
    "/api/health",
    summary="Daemon health: version, uptime, database and components",
    response_model=HealthReport,
    response_model_exclude_none=True,
    responses={503: {"model": HealthReport, "description": "The database does not answer"}},
)
async def health(
    request: Request, response: Response, ctx: Annotated[ApiContext, Depends(get_ctx)]
) -> HealthReport:
    """Public; 200 while the database answers, 503 when it does not.

    A stranger learns only whether each part is up and the version; provider detail,
    sender numbers, error texts and budgets need the API token.
    """
    db_ok, components = await asyncio.gather(
        _database_ok(ctx),
        check_components(ctx.health_sources),
    )
    full = ctx.db.disk_full
    all_ok = db_ok and full is None and all(c.state == "ok" for c in components.values())
    if not db_ok:
        response.status_code = 503
    report = HealthReport(
        success=db_ok,
        status="ok" if all_ok else "degraded",
        version=ctx.version,
        database=DatabaseHealth(ok=db_ok),
        components={
            name: ComponentHealth(state=c.state, detail=None) for name, c in components.items()
        },
    )
    if getattr(request.state, "principal", None) != PRINCIPAL_API_TOKEN:
        return report
    uptime = max(0.0, ctx.clock.monotonic() - ctx.started_monotonic)
    trouble = ctx.db.gone or full
    return report.model_copy(
        update={
            "database": DatabaseHealth(ok=db_ok, detail=str(trouble) if trouble else None),
            "components": components,
            "uptime_seconds": round(uptime, 3),
            "time": utc_iso(ctx.clock.now()),
        }
    )


async def _database_ok(ctx: ApiContext) -> bool:
    try:
        # ping() never raises by contract, but a busy writer thread can keep it waiting.
        return bool(await asyncio.wait_for(ctx.db.ping(), HEALTH_TIMEOUT_SECONDS))
    except Exception as exc:
        logger.warning("health: database ping failed: %s", type(exc).__name__)
        return False


async def check_components(sources: dict[str, HealthSource]) -> dict[str, ComponentHealth]:
    """Every source's answer, each within HEALTH_TIMEOUT_SECONDS; a failing one is down."""
    names = list(sources)
    results = await asyncio.gather(*(_ask(name, sources[name]) for name in names))
    return dict(zip(names, results, strict=True))


async def _ask(name: str, source: HealthSource) -> ComponentHealth:
    try:
        answer: Any = await asyncio.wait_for(source(), HEALTH_TIMEOUT_SECONDS)
    except Exception as exc:
        # Only the type: an exception's text may carry a credential or a phone number.
        logger.warning("health: %s failed: %s", name, type(exc).__name__)
        logger.debug("health: %s failed", name, exc_info=True)
        return ComponentHealth(state="down", detail=type(exc).__name__)
    try:
        return ComponentHealth.model_validate(answer)
    except ValidationError:
        logger.warning("health: %s gave an answer without a valid state", name)
        return ComponentHealth(state="down", detail="invalid health answer")
