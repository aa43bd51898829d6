"""GET /api/v1/stats: the dashboard's figures that no other endpoint gives, in one answer.

"Today" is the shop's local day ([shop] timezone); the hourly figures are the last 24 local
hours, the current (partial) one last. Each figure is a range scan of an index, so the answer
stays quick with a million messages in the log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import sqlite_utils
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from daemon.api.context import ApiContext, get_ctx
from daemon.runtime.clock import utc_iso
from daemon.services.backoffice.periods import days_range, local_day
from storage import stats as store
from storage.models import JobRun

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]

HOURS = 24
# Queue by status, today's messages by status, per-hour counts, last run by job id.
Figures = tuple[dict[str, int], dict[str, int], list[int], dict[str, JobRun]]
# Every state a message can be in, so the dashboard shows a 0 rather than leaving one out.
STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled")
# The queue is what still waits to go; the other states are counted for today only.
WAITING = ("queued", "sending")
# Messages that left the shop today, whatever their delivery receipt said since.
LEFT = ("sent", "delivered", "undelivered")


class Shop(BaseModel):
    name: str
    currency: str
    timezone: str


class Today(BaseModel):
    """Messages created today (the shop's day), by what became of them."""

    date: str
    created: int
    sent: int
    delivered: int
    failed: int
    by_status: dict[str, int]


class Hour(BaseModel):
    start: str
    count: int


class LastRun(BaseModel):
    started_at: str
    finished_at: str | None
    outcome: str
    detail: str | None


class Job(BaseModel):
    id: str
    next_run_at: str | None
    last_run: LastRun | None


class Stats(BaseModel):
    success: bool = True
    time: str
    shop: Shop
    queue: dict[str, int]
    today: Today
    hourly: list[Hour]
    jobs: list[Job]


def hour_bounds(now: datetime, zone: ZoneInfo, hours: int = HOURS) -> list[tuple[str, str]]:
    """[start, end) of the last `hours` local hours as UTC text; the last one ends at `now`."""
    # Local, not UTC, hours: a shop at UTC+5:30 starts its hours at :30 past in UTC.
    current = now.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    # Step in UTC so a DST change neither repeats nor skips an hour.
    first = current.astimezone(UTC) - timedelta(hours=hours - 1)
    starts = [first + timedelta(hours=n) for n in range(hours)]
    ends = [*starts[1:], now]
    return [(utc_iso(a), utc_iso(b)) for a, b in zip(starts, ends, strict=True)]


@router.get("/api/v1/stats", summary="Dashboard figures: queue, today, per hour, jobs")
async def stats(ctx: Ctx) -> Stats:
    shop = ctx.settings.shop
    zone = ZoneInfo(shop.timezone)
    now = ctx.clock.now()
    today = local_day(now, zone)
    day_start, day_end = days_range(today, today, zone)
    hours = hour_bounds(now, zone)
    next_runs = ctx.jobs() if ctx.jobs is not None else {}
    job_ids = sorted(next_runs)

    def read(db: sqlite_utils.Database) -> Figures:
        # One trip to the database thread for every figure: one consistent moment.
        return (
            store.waiting(db),
            store.status_between(db, day_start, day_end),
            store.created_per_period(db, hours),
            store.last_runs(db, job_ids),
        )

    queue, made_today, per_hour, runs = await ctx.db.execute(read)
    return Stats(
        time=utc_iso(now),
        shop=Shop(name=shop.name, currency=shop.currency, timezone=shop.timezone),
        queue={status: queue.get(status, 0) for status in WAITING},
        today=Today(
            date=today.isoformat(),
            created=sum(made_today.values()),
            sent=sum(made_today.get(s, 0) for s in LEFT),
            delivered=made_today.get("delivered", 0),
            failed=made_today.get("failed", 0),
            by_status={status: made_today.get(status, 0) for status in STATUSES},
        ),
        hourly=[Hour(start=start, count=n) for (start, _), n in zip(hours, per_hour, strict=True)],
        jobs=[_job(job_id, next_runs[job_id], runs.get(job_id)) for job_id in job_ids],
    )


def _job(job_id: str, next_run: datetime | None, run: JobRun | None) -> Job:
    last = None
    if run is not None:
        last = LastRun(
            started_at=utc_iso(run.started_at),
            finished_at=utc_iso(run.finished_at) if run.finished_at else None,
            outcome=run.outcome,
            detail=run.detail,
        )
    return Job(id=job_id, next_run_at=utc_iso(next_run) if next_run else None, last_run=last)
