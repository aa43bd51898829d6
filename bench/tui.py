"""The TUI on a 1,000,000-message log: first paint, opening Messages, a filter, scrolling, RSS.

Usage: .venv/bin/python bench/tui.py [MESSAGES]   (default 1,000,000)

1. Builds a fresh database: the migrations applied (storage.migrations), then MESSAGES rows
   written straight into `messages` with sqlite3 (indexes dropped during the load and built
   again after it, as a restore would), spread over 30 days; no row is `queued`, so the
   daemon has nothing to send.
2. Starts the real daemon on it (`python -m daemon run`, bench/_daemon.py) and times the API's
   list query for each filter the Messages mode offers (median of 5, over HTTP).
3. Runs the app headless (`App.run_test`, 120x40) in a child process, so its peak RSS
   (resource.getrusage) is the TUI's alone, and times, from that process's clock:
   - first paint: creating the app → the dashboard mounted and the daemon answering;
   - open Messages: key `5` → the first page (100 rows) in the table;
   - filter: status=failed chosen → only failed rows shown;
   - scroll to row 1,000: `ctrl+end` pressed until the cursor is on row 1,000 (pages of 100
     loaded as it goes);
   - the longest stall of the app's event loop over all of it (a 10 ms ticker's worst lateness).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# `python bench/x.py` puts bench/ first on sys.path; keep only the repository root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench._daemon import (  # noqa: E402
    API_TOKEN,
    Daemon,
    base_config,
    code_line,
    free_port,
    machine_line,
    wait_quiet,
)
from storage import migrations  # noqa: E402
from storage.connection import open_for_writing  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
SPAN = timedelta(days=30)
RECIPIENTS = 10_000
# status, share: a shop's log is mostly sent; a few failed, cancelled, undelivered.
STATUSES = (
    ("sent", 0.80),
    ("delivered", 0.15),
    ("failed", 0.03),
    ("cancelled", 0.015),
    ("undelivered", 0.005),
)
KINDS = (("alert", 0.6), ("manual", 0.2), ("otp", 0.15), ("report", 0.05))
BATCH = 50_000
RUNS = 5


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, share in table:
        x -= share
        if x < 0:
            return value
    return table[-1][0]


def build(database: Path, count: int) -> float:
    """The schema by migration, then `count` messages; returns the seconds it took."""
    started = time.perf_counter()
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = open_for_writing(database)
    try:
        migrations.apply(db)
    finally:
        db.close()
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='messages' "
        "AND sql IS NOT NULL"
    ).fetchall()
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    rng = random.Random(9)
    step = SPAN / count
    first = NOW - SPAN

    def rows(start: int, stop: int) -> Any:
        for i in range(start, stop):
            at = (first + step * i).isoformat().replace("+00:00", "Z")
            status = _pick(rng, STATUSES)
            kind = _pick(rng, KINDS)
            push = rng.random() < 0.1
            recipient = (
                f"tok-{rng.randrange(RECIPIENTS):05d}"
                if push
                else (f"+1500{rng.randrange(RECIPIENTS):07d}")
            )
            sent = at if status in ("sent", "delivered", "undelivered") else None
            yield (
                i + 1,
                "push" if push else "sms",
                recipient,
                f"Bags are in at the shop #{i}",
                kind,
                {"otp": 0, "alert": 10, "manual": 20, "report": 30}[kind],
                status,
                None if push else "gsm7",
                None if push else 1,
                "console" if sent else None,
                1 if status != "cancelled" else 0,
                "every provider failed" if status == "failed" else None,
                at,
                at,
                sent,
                at,
            )

    for start in range(0, count, BATCH):
        conn.executemany(
            "INSERT INTO messages (id, channel, recipient, body, kind, priority, status, "
            "encoding, segments, provider, attempts, last_error, created_at, due_at, sent_at, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows(start, min(count, start + BATCH)),
        )
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    # No ANALYZE: the daemon never runs it, so its query planner works without statistics.
    conn.close()
    return time.perf_counter() - started


def time_queries(url: str) -> list[tuple[str, float, int]]:
    """(query, median ms, rows) for each filter of the Messages mode, first and a deep page."""
    import httpx

    since = (NOW - timedelta(days=1)).isoformat()
    queries: list[tuple[str, dict[str, Any]]] = [
        ("newest page", {}),
        ("page before id 500,000", {"before": 500_000}),
        ("status=failed", {"status": "failed"}),
        ("status=sent", {"status": "sent"}),
        ("status=queued (none)", {"status": "queued"}),
        ("kind=report", {"kind": "report"}),
        ("channel=push", {"channel": "push"}),
        ("channel=email (none)", {"channel": "email"}),
        ("recipient=+15000000042", {"recipient": "+15000000042"}),
        ("since 1 day ago", {"since": since}),
        ("until 29 days ago", {"until": (NOW - timedelta(days=29)).isoformat()}),
        ("status=sent, before id 500,000", {"status": "sent", "before": 500_000}),
        ("status=failed, before id 500,000", {"status": "failed", "before": 500_000}),
        ("status=failed & kind=report", {"status": "failed", "kind": "report"}),
    ]
    out = []
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        for label, params in queries:
            times = []
            found = 0
            for _ in range(RUNS):
                started = time.perf_counter()
                response = http.get("/api/v1/messages", params={"limit": 100, **params})
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                found = len(response.json()["messages"])
            out.append((label, statistics.median(times), found))
    return out


async def measure_app(url: str) -> dict[str, float]:
    """Runs in the child process: the app headless against the daemon."""
    from textual.widgets import Select

    from tui.app import ShopbellApp
    from tui.client import ApiClient
    from tui.screens.dashboard import DashboardScreen
    from tui.screens.messages import MessagesScreen
    from tui.widgets.message_table import MessageTable

    figures: dict[str, float] = {}
    worst_lag = 0.0

    async def ticker() -> None:
        nonlocal worst_lag
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            worst_lag = max(worst_lag, loop.time() - before - 0.01)

    async def until(condition: Any, pilot: Any, seconds: float = 60.0) -> None:
        deadline = time.perf_counter() + seconds
        while not condition():
            if time.perf_counter() > deadline:
                raise RuntimeError("timed out")
            await pilot.pause(0.005)

    started = time.perf_counter()
    started_cpu = time.process_time()
    app = ShopbellApp(ApiClient(url, API_TOKEN))
    async with app.run_test(size=(120, 40)) as pilot:
        tick = asyncio.create_task(ticker())
        await until(lambda: isinstance(app.screen, DashboardScreen) and app.connected, pilot)
        figures["first_paint_ms"] = (time.perf_counter() - started) * 1000
        figures["first_paint_cpu_ms"] = (time.process_time() - started_cpu) * 1000

        mark = time.perf_counter()
        mark_cpu = time.process_time()
        await pilot.press("5")
        await until(
            lambda: (
                isinstance(app.screen, MessagesScreen)
                and app.screen.query_one(MessageTable).row_count >= 100
            ),
            pilot,
        )
        figures["open_messages_ms"] = (time.perf_counter() - mark) * 1000
        figures["open_messages_cpu_ms"] = (time.process_time() - mark_cpu) * 1000
        screen = app.screen
        table = screen.query_one(MessageTable)

        def only_failed() -> bool:
            shown = table.messages.values()
            return table.row_count > 0 and all(m.status == "failed" for m in shown)

        mark = time.perf_counter()
        mark_cpu = time.process_time()
        await pilot.press("slash")
        await until(lambda: bool(screen.query("#filter-status")), pilot)
        screen.query_one("#filter-status", Select).value = "failed"
        await until(only_failed, pilot)
        figures["filter_failed_ms"] = (time.perf_counter() - mark) * 1000
        figures["filter_failed_cpu_ms"] = (time.process_time() - mark_cpu) * 1000

        screen.query_one("#filter-status", Select).clear()
        await until(lambda: table.row_count >= 100 and not only_failed(), pilot)
        await pilot.press("escape")
        table.focus()
        mark = time.perf_counter()
        mark_cpu = time.process_time()
        while table.cursor_row < 999:
            await pilot.press("ctrl+end")
            await pilot.pause(0.005)
        figures["scroll_to_1000_ms"] = (time.perf_counter() - mark) * 1000
        figures["scroll_to_1000_cpu_ms"] = (time.process_time() - mark_cpu) * 1000
        figures["rows_loaded"] = table.row_count
        tick.cancel()
    figures["worst_loop_stall_ms"] = worst_lag * 1000
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        print(json.dumps(asyncio.run(measure_app(sys.argv[2]))))
        return
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(machine_line())
    print(code_line())
    print("load average at start (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="shopbell-bench-tui-") as tmp:
        folder = Path(tmp)
        config = base_config(
            folder, free_port(), retention={"messages_days": 0}, logging={"level": "WARNING"}
        )
        daemon = Daemon(folder, config)
        seconds = build(daemon.database, count)
        size = daemon.database.stat().st_size / 2**20
        print(f"database: {count:,} messages in {seconds:.1f}s, {size:.0f} MiB")
        with daemon:
            daemon.wait_ready(timeout=120)
            print("API, GET /api/v1/messages?limit=100 (median of 5, ms):")
            for label, ms, found in time_queries(daemon.url):
                print(f"  {label:<36} {ms:8.1f} ms  {found:3d} rows")
            # Other work on a 2-core machine (a test suite) doubles every figure: wait for quiet.
            others = wait_quiet(patience=90)
            print(f"other work on the machine before the app run: {others:.2f} cores")
            child = subprocess.run(
                [sys.executable, __file__, "--measure", daemon.url],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if child.returncode != 0:
                raise SystemExit(f"the app run failed:\n{child.stderr[-3000:]}")
            figures = json.loads(child.stdout.strip().splitlines()[-1])
    print("TUI (headless run_test, 120x40):")
    lines = (
        ("first paint (app created -> dashboard, daemon answering)", "first_paint_ms", "ms"),
        ("open Messages (key 5 -> first 100 rows)", "open_messages_ms", "ms"),
        ("filter status=failed (-> only failed rows shown)", "filter_failed_ms", "ms"),
        (
            f"scroll to row 1,000 ({figures['rows_loaded']:.0f} rows loaded)",
            "scroll_to_1000_ms",
            "ms",
        ),
        ("longest event-loop stall over the run", "worst_loop_stall_ms", "ms"),
        ("peak RSS of the TUI process", "peak_rss_mib", "MiB"),
    )
    for label, key, unit in lines:
        cpu = figures.get(key.removesuffix("_ms") + "_cpu_ms") if key.endswith("_ms") else None
        spent = f"  ({cpu:.0f} ms CPU in the TUI process)" if cpu is not None else ""
        print(f"  {label:<58} {figures[key]:6.0f} {unit}{spent}")


if __name__ == "__main__":
    main()
