"""Scheduled jobs: APScheduler 3.x inside the daemon's loop, every run written to job_runs.

Across a step of the wall clock (docs/clock.md): APScheduler 3 keeps each job's next run as a
wall time and sleeps on the loop's monotonic timer, so a watch looks for a step every
CLOCK_WATCH_SECONDS (through APScheduler's public job API, nothing of its internals). Interval
jobs keep their spacing in real time (their next run moves with the
step, either way); jobs at a time of day stay at that wall time: several runs that fell due
at once run once (coalesce), and one whose time is further gone than its grace is recorded
in job_runs as skipped, with the time it missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.runtime.clock import Clock, JumpWatch, describe_step, utc_iso
from storage.database import Database

log = logging.getLogger(__name__)
# How often the wall clock is compared with the monotonic one for a step (one wake-up).
CLOCK_WATCH_SECONDS = 10.0

JobFn = Callable[[], Awaitable[str | None]]
DETAIL_LIMIT = 500


@dataclass(frozen=True)
class JobSpec:
    """One job: a fixed id (so a restart replaces rather than adds), what to run, when."""

    id: str
    fn: JobFn
    trigger: BaseTrigger
    misfire_grace_seconds: int = 60
    # False for a job that ticks every few seconds: only its failures go to job_runs, so an
    # idle daemon does not commit (and fsync) two rows every tick.
    record_ok: bool = True


class Scheduler:
    """Runs `async def` jobs with coalescing, one instance at a time, and records each run.

    A job returns a short detail for the log (or None); an exception is recorded as an error
    and never stops the scheduler.
    """

    def __init__(
        self, db: Database, clock: Clock, *, clock_watch_seconds: float = CLOCK_WATCH_SECONDS
    ) -> None:
        self._db = db
        self._clock = clock
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._clock_watch_seconds = clock_watch_seconds
        self._watch: asyncio.Task[None] | None = None
        self._scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self._specs: dict[str, JobSpec] = {}
        self._jumps = JumpWatch(clock)
        self._writes: set[asyncio.Task[None]] = set()

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
        self._watch = asyncio.get_running_loop().create_task(
            self._watch_clock(), name="scheduler-clock-watch"
        )

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 -- a stage budget
        """Pause, let running jobs finish within `timeout`, shut down."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
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
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=timeout)
        self._scheduler.shutdown(wait=False)

    async def _watch_clock(self) -> None:
        while True:
            await asyncio.sleep(self._clock_watch_seconds)
            try:
                self._follow_clock()
            except Exception:
                log.exception("scheduler: looking for a clock step failed")

    def _follow_clock(self) -> None:
        """Before APScheduler looks for due jobs: if the wall clock stepped, move each interval
        job's next run by the step, so it keeps its spacing in real time (no hour without a
        sweep after a step back, no burst after a step forward)."""
        step = self._jumps.check()
        if not step:
            return
        now = self._clock.now()
        moved = []
        for job in self._scheduler.get_jobs():
            due = getattr(job, "next_run_time", None)
            if due is None or not isinstance(job.trigger, IntervalTrigger):
                continue
            job.modify(next_run_time=max(now, due + timedelta(seconds=step)))
            moved.append(job.id)
        log.warning(
            "scheduler: the clock stepped %s (NTP, or set by hand); interval jobs keep their "
            "spacing (%s); jobs at a time of day run at that time, once if several fell due, "
            "and one further gone than its grace is recorded as skipped",
            describe_step(step),
            ", ".join(sorted(moved)) or "none",
        )

    def _missed(self, event: JobExecutionEvent) -> None:
        """APScheduler skipped a run past its grace: say so in job_runs, not only in the log."""
        spec = self._specs.get(event.job_id)
        if spec is None:
            return
        scheduled = event.scheduled_run_time
        now = self._clock.now()
        late = describe_step((now - scheduled).total_seconds()).split(" by ", 1)[1]
        detail = (
            f"missed its run at {scheduled.astimezone(now.tzinfo):%Y-%m-%d %H:%M} UTC by {late}, "
            f"more than its grace of {spec.misfire_grace_seconds} s (the clock jumped, or the "
            "machine was off or asleep); it runs again at its next time"
        )
        log.warning("job %s %s", event.job_id, detail)
        stamp = utc_iso(now)

        async def record() -> None:
            await self._db.write(lambda conn: _skipped_run(conn, event.job_id, stamp, detail))

        task = asyncio.get_running_loop().create_task(record(), name=f"job-skipped:{event.job_id}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def run_job(self, job_id: str) -> str:
        """Run one job now and record it in job_runs; returns its outcome."""
        spec = self._specs[job_id]
        task = asyncio.current_task()
        if task is not None:
            task.set_name(f"job:{job_id}")
        started = utc_iso(self._clock.now())
        run_id: int | None = None
        if spec.record_ok:
            run_id = await self._db.write(lambda conn: _start_run(conn, job_id, started))
        outcome, detail = "ok", None
        try:
            detail = await spec.fn()
        except Exception as exc:
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", job_id)
        finished = utc_iso(self._clock.now())
        text = (detail or "")[:DETAIL_LIMIT] or None
        if run_id is not None:
            await self._db.write(lambda conn: _finish_run(conn, run_id, finished, outcome, text))
        elif outcome != "ok":
            await self._db.write(
                lambda conn: _finish_run(
                    conn, _start_run(conn, job_id, started), finished, outcome, text
                )
            )
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


def _skipped_run(conn: Any, job_id: str, at: str, detail: str) -> None:
    conn.execute(
        "INSERT INTO job_runs (job_id, started_at, finished_at, outcome, detail) "
        "VALUES (?, ?, ?, 'skipped', ?)",
        [job_id, at, at, detail[:DETAIL_LIMIT]],
    )
