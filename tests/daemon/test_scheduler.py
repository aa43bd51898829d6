"""Scheduled jobs run in the loop, one at a time, and every run is written to job_runs."""

from __future__ import annotations

import asyncio

from apscheduler.triggers.interval import IntervalTrigger

from daemon.runtime.clock import SystemClock
from daemon.runtime.scheduler import JobSpec, Scheduler
from storage.database import Database


async def runs(db: Database) -> list[dict]:
    return await db.execute(
        lambda conn: [dict(r) for r in conn.query("SELECT * FROM job_runs ORDER BY id")]
    )


async def test_run_job_records_ok_and_error(db: Database) -> None:
    scheduler = Scheduler(db, SystemClock())

    async def fine() -> str:
        return "swept 3 codes"

    async def broken() -> None:
        raise RuntimeError("disk on fire")

    scheduler.add(JobSpec("fine", fine, IntervalTrigger(hours=1)))
    scheduler.add(JobSpec("broken", broken, IntervalTrigger(hours=1)))
    assert await scheduler.run_job("fine") == "ok"
    assert await scheduler.run_job("broken") == "error"
    rows = await runs(db)
    assert [(r["job_id"], r["outcome"], r["detail"]) for r in rows] == [
        ("fine", "ok", "swept 3 codes"),
        ("broken", "error", "RuntimeError: disk on fire"),
    ]
    assert all(r["finished_at"] for r in rows)


async def test_a_ticking_job_writes_only_its_failures(db: Database) -> None:
    # tgtg-poll ticks every 5 s: two fsync'd rows a tick kept an idle daemon's database thread
    # awake 2.8 times a second; its failures still show in job_runs.
    scheduler = Scheduler(db, SystemClock())
    failing = False

    async def tick() -> str:
        if failing:
            raise RuntimeError("TGTG answered 500")
        return "nothing due"

    scheduler.add(JobSpec("tick", tick, IntervalTrigger(seconds=5), record_ok=False))
    assert await scheduler.run_job("tick") == "ok"
    assert await runs(db) == []
    failing = True
    assert await scheduler.run_job("tick") == "error"
    [row] = await runs(db)
    assert (row["job_id"], row["outcome"], row["detail"]) == (
        "tick",
        "error",
        "RuntimeError: TGTG answered 500",
    )
    assert row["started_at"] <= row["finished_at"]


async def test_started_jobs_run_on_their_trigger_one_at_a_time(db: Database) -> None:
    scheduler = Scheduler(db, SystemClock())
    active = 0
    most = 0

    async def slow() -> None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.15)
        active -= 1

    scheduler.add(JobSpec("slow", slow, IntervalTrigger(seconds=0.05)))
    scheduler.add(JobSpec("slow", slow, IntervalTrigger(seconds=0.05)))  # same id: replaced
    assert scheduler.job_ids == ["slow"]
    scheduler.start()
    await asyncio.sleep(0.6)
    await scheduler.stop(timeout=2)
    rows = await runs(db)
    assert len(rows) >= 2
    assert most == 1, "max_instances=1: never two runs of one job at once"
    assert all(r["outcome"] == "ok" for r in rows), "stop let the running one finish"
