"""Storage round trip: awaited write transactions and reads through the database thread."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlite_utils

from storage.database import Database

NOW = "2026-01-01T12:00:00.000000+00:00"


def enqueue(db: sqlite_utils.Database) -> int:
    """What the outbox does per message: the message row and its first event, one transaction."""
    message_id = db.execute(
        "INSERT INTO messages (channel, recipient, body, kind, priority, status, created_at, "
        "due_at, updated_at) VALUES ('sms', '+447700900123', 'Bags are in', 'alert', 20, "
        "'queued', ?, ?, ?)",
        [NOW, NOW, NOW],
    ).lastrowid
    db.execute(
        "INSERT INTO message_events (message_id, at, state, detail) "
        "VALUES (?, ?, 'queued', 'enqueued')",
        [message_id, NOW],
    )
    assert message_id is not None
    return message_id


def read_one(message_id: int) -> Callable[[sqlite_utils.Database], object]:
    def read(db: sqlite_utils.Database) -> object:
        return db.execute(
            "SELECT id, status, recipient FROM messages WHERE id = ?", [message_id]
        ).fetchone()

    return read


def nothing(db: sqlite_utils.Database) -> None:
    return None


async def timed(n: int, call: Callable[[int], Awaitable[object]]) -> tuple[float, list[float]]:
    """Run `call(i)` n times one after another; return the total seconds and each latency."""
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        began = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - began)
    return time.perf_counter() - start, latencies


def report(name: str, n: int, total: float, latencies: list[float]) -> None:
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<34} {n / total:>10,.0f}/s   p50 {cuts[49] * 1e6:>8,.0f} µs   "
        f"p99 {cuts[98] * 1e6:>8,.0f} µs"
    )


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="shopbell-bench-") as folder:
        database = Database(Path(folder) / "bench.db")
        await database.open()
        try:
            print(f"shopbell storage round trip: n={n}, database in {folder}")
            print(
                f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
                f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}"
            )
            await database.write(enqueue)  # warm up: pages in cache, statements prepared

            total, latencies = await timed(n, lambda i: database.write(enqueue))
            report("write (message + event, FULL sync)", n, total, latencies)

            count = await database.execute(lambda db: db["messages"].count)
            total, latencies = await timed(
                n, lambda i: database.execute(read_one(1 + (i * 7919) % count))
            )
            report("read (one message by id)", n, total, latencies)

            total, latencies = await timed(n, lambda i: database.execute(nothing))
            report("round trip (no SQL)", n, total, latencies)
        finally:
            await database.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=2000, help="operations per figure")
    arguments = parser.parse_args()
    if arguments.n < 2:
        sys.exit("n must be at least 2 (percentiles need two samples)")
    asyncio.run(main(arguments.n))
