"""Sales report queries over a UTC time range [start, end); the daemon picks the range.

Day and week boundaries belong to the shop's time zone, which SQLite does not know, so the
caller turns local days into UTC instants and, where a figure is per day, buckets the rows
it gets back. Only orders that count as sales (placed, paid) are included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from storage.models import Report

# Written out in each query (SQL text stays literal); a test holds it equal to SOLD.
SOLD_SQL = "('placed', 'paid')"


@dataclass(frozen=True, slots=True)
class PeriodSpend:
    """What one account spent in one period (its index in the bounds given)."""

    period: int
    account_id: int
    username: str | None
    spent_minor: int


@dataclass(frozen=True, slots=True)
class ProductSales:
    """How much of one product sold in a range."""

    product_id: int
    name: str
    category: str | None
    quantity: int
    amount_minor: int


def items_purchased(db: sqlite_utils.Database, start: str, end: str) -> int:
    row = db.execute(
        "SELECT coalesce(sum(l.quantity), 0) FROM orders o JOIN order_lines l "
        "ON l.order_id = o.id WHERE o.status IN ('placed', 'paid') "
        "AND o.created_at >= ? AND o.created_at < ?",
        [start, end],
    ).fetchone()
    return int(row[0])


# The periods come in as JSON [[start, end], ...]: one parameter, however many days, and
# each period is one range scan of the created_at index (day lengths vary with DST, so
# the caller computes the bounds rather than SQLite).
_PERIODS = (
    "WITH periods(n, start, stop) AS (SELECT CAST(key AS INTEGER), "
    "json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)) "
)


def totals_per_period(
    db: sqlite_utils.Database, bounds: Sequence[tuple[str, str]]
) -> list[tuple[int, int]]:
    """(orders, amount in minor units) for each [start, end) in `bounds`, in order."""
    rows = db.execute(
        _PERIODS + "SELECT periods.n, count(o.id), coalesce(sum(o.total_minor), 0) "
        "FROM periods LEFT JOIN orders o ON o.created_at >= periods.start "
        "AND o.created_at < periods.stop AND o.status IN ('placed', 'paid') "
        "GROUP BY periods.n ORDER BY periods.n",
        [json.dumps(list(bounds))],
    ).fetchall()
    return [(int(row[1]), int(row[2])) for row in rows]


def spend_above(
    db: sqlite_utils.Database, bounds: Sequence[tuple[str, str]], threshold_minor: int
) -> list[PeriodSpend]:
    """Accounts whose orders in one period add up to more than `threshold_minor`."""
    rows = db.execute(
        _PERIODS + "SELECT periods.n, o.account_id, a.username, sum(o.total_minor) AS spent "
        "FROM periods JOIN orders o ON o.created_at >= periods.start "
        "AND o.created_at < periods.stop AND o.status IN ('placed', 'paid') "
        "LEFT JOIN accounts a ON a.id = o.account_id WHERE o.account_id IS NOT NULL "
        "GROUP BY periods.n, o.account_id HAVING spent > ? ORDER BY periods.n, spent DESC, "
        "o.account_id",
        [json.dumps(list(bounds)), threshold_minor],
    ).fetchall()
    return [PeriodSpend(*row) for row in rows]


def category_sales(
    db: sqlite_utils.Database, category: str, start: str, end: str
) -> tuple[int, int]:
    """(items sold, amount in minor units) of one category (any case) in the range."""
    row = db.execute(
        "SELECT coalesce(sum(l.quantity), 0), coalesce(sum(l.line_total_minor), 0) "
        "FROM orders o JOIN order_lines l ON l.order_id = o.id "
        "JOIN products p ON p.id = l.product_id "
        "WHERE o.status IN ('placed', 'paid') AND o.created_at >= ? AND o.created_at < ? "
        "AND p.category = ? COLLATE NOCASE",
        [start, end, category],
    ).fetchone()
    return int(row[0]), int(row[1])


def top_products(
    db: sqlite_utils.Database, start: str, end: str, *, limit: int = 10
) -> list[ProductSales]:
    """Best sellers by amount, then quantity, then id."""
    rows = db.execute(
        "SELECT p.id, p.name, p.category, sum(l.quantity), sum(l.line_total_minor) "
        "FROM orders o JOIN order_lines l ON l.order_id = o.id "
        "JOIN products p ON p.id = l.product_id "
        "WHERE o.status IN ('placed', 'paid') AND o.created_at >= ? AND o.created_at < ? "
        "GROUP BY p.id ORDER BY sum(l.line_total_minor) DESC, sum(l.quantity) DESC, p.id "
        "LIMIT ?",
        [start, end, limit],
    ).fetchall()
    return [ProductSales(*row) for row in rows]


def save_report(
    db: sqlite_utils.Database,
    *,
    kind: str,
    period_start: str,
    period_end: str,
    generated_at: str,
    content: str,
) -> Report:
    """Store a report; a second run for the same period replaces the first (one row each)."""
    db.execute(
        "INSERT INTO reports (kind, period_start, period_end, generated_at, content) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, period_start) DO UPDATE SET "
        "period_end = excluded.period_end, generated_at = excluded.generated_at, "
        "content = excluded.content",
        [kind, period_start, period_end, generated_at, content],
    )
    rows = list(
        db.query("SELECT * FROM reports WHERE kind = ? AND period_start = ?", [kind, period_start])
    )
    return Report.from_row(rows[0])


def list_reports(
    db: sqlite_utils.Database,
    *,
    kind: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Report]:
    """Stored reports, newest first; page on with the last id as `before_id`."""
    rows = db.query(
        "SELECT * FROM reports WHERE (:kind IS NULL OR kind = :kind) "
        "AND (:before IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit",
        {"kind": kind, "before": before_id, "limit": limit},
    )
    return [Report.from_row(row) for row in rows]


def get_report(db: sqlite_utils.Database, report_id: int) -> Report | None:
    rows = list(db.query("SELECT * FROM reports WHERE id = ?", [report_id]))
    return Report.from_row(rows[0]) if rows else None
