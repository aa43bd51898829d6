"""Each message-log query the API, health and the nightly jobs run, timed on a 1,000,000-message
log.

Usage: .venv/bin/python bench/scale.py [MESSAGES]   (default 1,000,000)

Builds the database as bench/tui.py does (the migrations, then MESSAGES rows over 30 days
written with executemany in one transaction, indexes built after the load; no ANALYZE), then
calls the storage functions themselves on one connection (no HTTP): the list query behind
GET /api/v1/messages for each filter, and one retention batch. Median of 5 runs each, every
run in a transaction rolled back, so a delete leaves the log as it was. The query plans of
all of these are held by tests/storage/test_query_plans.py; this only says what they cost.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench._daemon import code_line, machine_line  # noqa: E402
from bench.tui import NOW, build  # noqa: E402
from storage import retention, stats  # noqa: E402
from storage.connection import open_for_writing  # noqa: E402
from storage.messages import MessageFilter, count_by_status, list_messages  # noqa: E402

RUNS = 5


def _iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def queries() -> list[tuple[str, Callable[..., object]]]:
    def page(before: int | None = None, **where: str) -> Callable[..., object]:
        return lambda db: list_messages(db, MessageFilter(**where), limit=100, before_id=before)

    return [
        # What /api/health, the TUI's status line and /metrics read (migration m018's counts).
        ("counts by state (health)", count_by_status),
        ("waiting by state (dashboard)", stats.waiting),
        ("newest page", page()),
        ("status=failed", page(status="failed")),
        ("status=sent, before id 500,000", page(500_000, status="sent")),
        ("channel=email (none)", page(channel="email")),
        ("recipient=+15000000042", page(recipient="+15000000042")),
        ("recipient=+15000000042, before id 500,000", page(500_000, recipient="+15000000042")),
        ("since 1 day ago", page(since=_iso(1))),
        ("since 1 minute ago (few)", page(since=_iso(1 / 1440))),
        ("until 29 days ago", page(until=_iso(29))),
        ("until 29 days ago, before id 20,000", page(20_000, until=_iso(29))),
        ("since 20 until 19 days ago", page(since=_iso(20), until=_iso(19))),
        ("status=failed, until 29 days ago", page(status="failed", until=_iso(29))),
        (
            "retention batch: 500 older than 29 days",
            lambda db: retention.delete_old_messages(db, _iso(29), 500),
        ),
        (
            "retention last batch: none older than 40 days",
            lambda db: retention.delete_old_messages(db, _iso(40), 500),
        ),
    ]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(machine_line())
    print(code_line())
    with tempfile.TemporaryDirectory(prefix="shopbell-bench-scale-") as tmp:
        database = Path(tmp) / "data" / "shopbell.db"
        seconds = build(database, count)
        print(f"database: {count:,} messages in {seconds:.1f}s")
        db = open_for_writing(database)
        try:
            print(f"median of {RUNS} (ms), storage functions on one connection:")
            for label, call in queries():
                times = []
                for _ in range(RUNS):
                    db.conn.execute("BEGIN")
                    started = time.perf_counter()
                    call(db)
                    times.append((time.perf_counter() - started) * 1000)
                    db.conn.rollback()
                print(f"  {label:<48} {statistics.median(times):9.1f} ms")
        finally:
            db.close()


if __name__ == "__main__":
    main()
