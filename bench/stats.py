"""GET /api/v1/stats (the dashboard's figures) on 1,000,000 messages: spread over 30 days, and
the worst case of all of them made in the last 24 hours. Prints the median and worst of 7."""

from __future__ import annotations

import asyncio
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.config import Settings
from daemon.runtime.clock import ManualClock, utc_iso
from storage.database import Database

MESSAGES = int(os.environ.get("MESSAGES", "1000000"))
RUNS = 7
NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
TOKEN = "bench-token-0123456789"
# Mostly sent; a few still queued or failed, as in a working shop.
STATUSES = ["sent"] * 80 + ["delivered"] * 15 + ["failed"] * 3 + ["queued"] * 2
INSERT = (
    "INSERT INTO messages (channel, recipient, body, kind, priority, status, created_at, "
    "due_at, updated_at) VALUES ('sms', '+14155550100', 'x', 'manual', 30, ?, ?, ?, ?)"
)


def fill(conn: sqlite3.Connection, hours: float) -> None:
    rnd = random.Random(1)
    moments = sorted(NOW - timedelta(seconds=rnd.random() * hours * 3600) for _ in range(MESSAGES))
    rows = []
    for moment in moments:
        at = utc_iso(moment)
        rows.append((rnd.choice(STATUSES), at, at, at))
    conn.executemany(INSERT, rows)


async def case(folder: Path, label: str, hours: float) -> None:
    db = Database(folder / f"{int(hours)}h.db")
    await db.open()
    started = time.perf_counter()
    await db.write(lambda c: fill(c.conn, hours))
    print(f"{label}: filled in {time.perf_counter() - started:.1f} s")
    settings = Settings.model_validate({"shop": {"timezone": "Asia/Kolkata"}})
    jobs = {f"job-{n}": NOW for n in range(10)}
    ctx = ApiContext(
        db=db,
        clock=ManualClock(NOW),
        api_token=TOKEN,
        version="bench",
        started_at=NOW,
        started_monotonic=0.0,
        settings=settings,
        jobs=lambda: jobs,
    )
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            answer = await client.get("/api/v1/stats", headers={"Authorization": f"Bearer {TOKEN}"})
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
    today = answer.json()["today"]["created"]
    print(
        f"  {today:,} made today: median {statistics.median(times):7.1f} ms"
        f"   max {max(times):7.1f} ms"
    )
    await db.close()


async def main() -> None:
    print(f"shopbell GET /api/v1/stats: {MESSAGES:,} messages")
    print(
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}"
    )
    with tempfile.TemporaryDirectory(prefix="shopbell-bench-stats-") as folder:
        await case(Path(folder), "over 30 days", 30 * 24)
        await case(Path(folder), "all in the last 24 hours", 24)


if __name__ == "__main__":
    asyncio.run(main())
