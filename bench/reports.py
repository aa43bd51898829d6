"""Report queries on a year of sales: 1,000,000 order lines; each query's time and the file size.

Usage: .venv/bin/python bench/reports.py [LINES]   (default 1,000,000)
"""

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
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.config import Settings
from daemon.runtime.clock import ManualClock, utc_iso
from daemon.services.backoffice.reports import Reports
from daemon.services.backoffice.service import build_backoffice
from storage.database import Database

ZONE = "Asia/Kolkata"
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 12, 31, 18, 0, tzinfo=UTC)
PRODUCTS = 500
ACCOUNTS = 5000
CATEGORIES = ("grocery", "shampoo", "accessory", "sound device", "soap", "snacks")
RUNS = 5


def fill(path: Path, lines: int) -> int:
    """Products, accounts and orders of about 3.3 lines each, spread over the year."""
    rng = random.Random(8)
    now = utc_iso(YEAR_START)
    conn = sqlite3.connect(path)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO products (sku, name, category, price_minor, stock, active, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, 1000000, 1, ?, ?)",
        [
            (
                f"P{n}",
                f"Product {n}",
                CATEGORIES[n % len(CATEGORIES)],
                rng.randint(500, 50000),
                now,
                now,
            )
            for n in range(1, PRODUCTS + 1)
        ],
    )
    prices = dict(conn.execute("SELECT id, price_minor FROM products").fetchall())
    conn.executemany(
        "INSERT INTO accounts (username, password_hash, role, created_at, updated_at) "
        "VALUES (?, 'x', 'customer', ?, ?)",
        [(f"user{n}", now, now) for n in range(1, ACCOUNTS + 1)],
    )
    orders = lines * 3 // 10
    seconds = int((NOW - YEAR_START).total_seconds())
    times = sorted(rng.randrange(seconds) for _ in range(orders))
    order_rows = []
    line_rows = []
    written = 0
    for order_id, offset in enumerate(times, start=1):
        count = 3 if order_id % 3 else 4
        if order_id == orders:
            count = max(1, lines - written)
        total = 0
        for _ in range(count):
            product = rng.randint(1, PRODUCTS)
            quantity = rng.randint(1, 4)
            amount = quantity * prices[product]
            total += amount
            line_rows.append((order_id, product, quantity, prices[product], amount))
        written += count
        at = utc_iso(YEAR_START + timedelta(seconds=offset))
        order_rows.append((order_id, rng.randint(1, ACCOUNTS), total, at, at))
    conn.executemany(
        "INSERT INTO orders (id, account_id, status, total_minor, created_at, updated_at) "
        "VALUES (?, ?, 'placed', ?, ?, ?)",
        order_rows,
    )
    conn.executemany(
        "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_minor, "
        "line_total_minor) VALUES (?, ?, ?, ?, ?)",
        line_rows,
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return len(line_rows)


async def timed(call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    durations = []
    for _ in range(RUNS):
        began = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - began)
    return statistics.median(durations) * 1000, max(durations) * 1000


async def main(lines: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="shopbell-bench-reports-"))
    path = folder / "shopbell.db"
    db = Database(path)
    await db.open()
    await db.close()
    began = time.perf_counter()
    written = fill(path, lines)
    filled = time.perf_counter() - began
    db = Database(path)
    await db.open()
    settings = Settings.model_validate({"shop": {"timezone": ZONE}})
    office = build_backoffice(settings, db, ManualClock(NOW), key=b"k" * 32)
    reports = Reports(office)
    day = date(2025, 12, 31)
    queries: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("items purchased, one day", lambda: reports.items_purchased(day, day)),
        ("items purchased, 30 days", lambda: reports.items_purchased(day - timedelta(29), day)),
        ("items purchased, the year", lambda: reports.items_purchased(date(2025, 1, 1), day)),
        ("high-value users, one day", lambda: reports.high_value_users(day, day, 100000)),
        (
            "high-value users, 7 days",
            lambda: reports.high_value_users(day - timedelta(6), day, 100000),
        ),
        ("category sales, 7 days", lambda: reports.category_sales("shampoo", 7)),
        ("category sales, 30 days", lambda: reports.category_sales("shampoo", 30)),
        ("top products, 7 days", lambda: reports.top_products(day - timedelta(6), day, 10)),
        ("totals per day, 7 days", lambda: reports.daily_totals(day - timedelta(6), day)),
        ("totals per day, the year", lambda: reports.daily_totals(date(2025, 1, 1), day)),
    ]
    print(f"shopbell report queries: {written:,} order lines over 2025, database in {folder}")
    print(
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}"
    )
    print(f"filled in {filled:.1f} s; database {path.stat().st_size / 1e6:,.1f} MB")
    for name, call in queries:
        median, worst = await timed(call)
        flag = "" if worst < 200 else "   over 200 ms"
        print(f"{name:<28} median {median:8.1f} ms   max {worst:8.1f} ms{flag}")
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
