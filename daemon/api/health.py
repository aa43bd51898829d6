"""GET /api/health: version, uptime, the database and every registered component."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from daemon.api.context import ApiContext, HealthSource, get_ctx
from daemon.clock import utc_iso

logger = logging.getLogger(__name__)

# A component or the database that does not answer within this many seconds counts as
# down: health must answer quickly even when a part of the daemon is stuck.
HEALTH_TIMEOUT_SECONDS = 2.0

router = APIRouter()


class ComponentHealth(BaseModel):
    """One component's answer; extra keys (signal, operator, ...) are kept."""

    model_config = ConfigDict(extra="allow")

    state: Literal["ok", "degraded", "down"]
    detail: str = ""


class DatabaseHealth(BaseModel):
    """Whether the database answers."""

    ok: bool


class HealthReport(BaseModel):
    """The body of GET /api/health."""

    status: Literal["ok", "degraded"]
    version: str
    uptime_seconds: float
    time: str
    database: DatabaseHealth
    components: dict[str, ComponentHealth]


@router.get(
    "/api/health",
    summary="Daemon health: version, uptime, database and components",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "The database does not answer"}},
)
async def health(response: Response, ctx: Annotated[ApiContext, Depends(get_ctx)]) -> HealthReport:
    """Public; 200 while the database answers, 503 when it does not."""
    db_ok, components = await asyncio.gather(
        _database_ok(ctx),
        _check_components(ctx.health_sources),
    )
    all_ok = db_ok and all(c.state == "ok" for c in components.values())
    if not db_ok:
        response.status_code = 503
    uptime = max(0.0, ctx.clock.monotonic() - ctx.started_monotonic)
    return HealthReport(
        status="ok" if all_ok else "degraded",
        version=ctx.version,
        uptime_seconds=round(uptime, 3),
        time=utc_iso(ctx.clock.now()),
        database=DatabaseHealth(ok=db_ok),
        components=components,
    )


async def _database_ok(ctx: ApiContext) -> bool:
    try:
        # ping() never raises by contract, but a busy writer thread can keep it waiting.
        return bool(await asyncio.wait_for(ctx.db.ping(), HEALTH_TIMEOUT_SECONDS))
    except Exception as exc:
        logger.warning("health: database ping failed: %s", type(exc).__name__)
        return False


async def _check_components(sources: dict[str, HealthSource]) -> dict[str, ComponentHealth]:
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
