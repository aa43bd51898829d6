"""Scheduled jobs: APScheduler 3.x inside the daemon's loop, every run written to job_runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from daemon.runtime.clock import Clock, utc_iso
from storage.database import Database

log = logging.getLogger(__name__)

JobFn = Callable[[], Awaitable[str | None]]
DETAIL_LIMIT = 500


@dataclass(frozen=True)
class JobSpec:
    """One job: a fixed id (so a restart replaces rather than adds), what to run, when."""

    id: str
    fn: JobFn
    trigger: BaseTrigger
    misfire_grace_seconds: int = 60


class Scheduler:
    """Runs `async def` jobs with coalescing, one instance at a time, and records each run.

    A job returns a short detail for the log (or None); an exception is recorded as an error
    and never stops the scheduler.
    """

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._specs: dict[str, JobSpec] = {}

    def add(self, spec: JobSpec) -> None:
        self._specs[spec.id] = spec

    @property
    def job_ids(self) -> list[str]:
        return sorted(self._specs)

    def next_runs(self) -> dict[str, datetime | None]:
        """Each job's next run (UTC), None while paused; for the dashboard."""
        # A job added before start() has no next_run_time attribute yet.
        return {job.id: getattr(job, "next_run_time", None) for job in self._scheduler.get_jobs()}

    def start(self) -> None:
        """Register every job by its fixed id and start, inside the running loop."""
        for spec in self._specs.values():
            self._scheduler.add_job(
                self.run_job,
                trigger=spec.trigger,
                args=[spec.id],
                id=spec.id,
                name=spec.id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=spec.misfire_grace_seconds,
            )
        self._scheduler.start()

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 -- a stage budget
        """Pause, let running jobs finish within `timeout`, shut down."""
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        running = [
            task
            for task in asyncio.all_tasks()
            if task.get_name().startswith("job:") and not task.done()
        ]
        if running:
            await asyncio.wait(running, timeout=timeout)
        self._scheduler.shutdown(wait=False)

    async def run_job(self, job_id: str) -> str:
        """Run one job now and record it in job_runs; returns its outcome."""
        spec = self._specs[job_id]
        task = asyncio.current_task()
        if task is not None:
            task.set_name(f"job:{job_id}")
        started = utc_iso(self._clock.now())
        run_id = await self._db.write(lambda conn: _start_run(conn, job_id, started))
        outcome, detail = "ok", None
        try:
            detail = await spec.fn()
        except Exception as exc:
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", job_id)
        finished = utc_iso(self._clock.now())
        text = (detail or "")[:DETAIL_LIMIT] or None
        await self._db.write(lambda conn: _finish_run(conn, run_id, finished, outcome, text))
        log.debug("job %s: %s%s", job_id, outcome, f" ({text})" if text else "")
        return outcome


def _start_run(conn: Any, job_id: str, started: str) -> int:
    cursor = conn.execute(
        "INSERT INTO job_runs (job_id, started_at, outcome) VALUES (?, ?, 'running')",
        [job_id, started],
    )
    return int(cursor.lastrowid)


def _finish_run(conn: Any, run_id: int, finished: str, outcome: str, detail: str | None) -> None:
    conn.execute(
        "UPDATE job_runs SET finished_at = ?, outcome = ?, detail = ? WHERE id = ?",
        [finished, outcome, detail, run_id],
    )
