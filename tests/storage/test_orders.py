"""Orders in storage: one transaction for the order and its stock, across connections too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlite_utils

from storage import orders, products, reports
from storage.database import Database

NOW = "2026-01-01T12:00:00.000000+00:00"


def _product(db: sqlite_utils.Database, sku: str, stock: int, price: int = 100) -> int:
    return products.insert_product(
        db, sku=sku, name=sku, price_minor=price, now=NOW, stock=stock
    ).id


def test_sold_statuses_match_the_report_queries() -> None:
    listed = "(" + ", ".join(f"'{status}'" for status in orders.SOLD) + ")"
    assert listed == reports.SOLD_SQL


async def test_an_order_and_its_stock_are_one_commit(database: Database) -> None:
    a = await database.write(lambda db: _product(db, "a", 5, 250))
    b = await database.write(lambda db: _product(db, "b", 1))
    with pytest.raises(orders.OutOfStockError) as caught:
        await database.write(
            lambda db: orders.place_order(db, account_id=None, items=[(a, 2), (b, 2)], now=NOW)
        )
    assert caught.value.product_id == b
    assert caught.value.available == 1

    def state(db: sqlite_utils.Database) -> tuple[list[int], int]:
        stocks = [r[0] for r in db.execute("SELECT stock FROM products ORDER BY id")]
        return stocks, db.execute("SELECT count(*) FROM orders").fetchone()[0]

    # The first line's decrement was rolled back with the rest.
    assert await database.execute(state) == ([5, 1], 0)
    placed = await database.write(
        lambda db: orders.place_order(db, account_id=None, items=[(a, 2), (b, 1)], now=NOW)
    )
    assert placed.order.total_minor == 600
    assert [(line.quantity, line.line_total_minor) for line in placed.lines] == [(2, 500), (1, 100)]
    assert await database.execute(state) == ([3, 0], 1)


@pytest.mark.parametrize("quantity", [0, -3])
def test_quantities_must_be_positive(sync_db: sqlite_utils.Database, quantity: int) -> None:
    a = _product(sync_db, "a", 5)
    with pytest.raises(ValueError, match="positive"):
        orders.place_order(sync_db, account_id=None, items=[(a, quantity)], now=NOW)


async def test_two_database_connections_racing_for_the_last_item(db_path: Path) -> None:
    # Two writers on one file (the daemon and, say, a second process): BEGIN IMMEDIATE
    # serialises them, so the loser sees the stock the winner left.
    first, second = Database(db_path), Database(db_path)
    await first.open()
    await second.open()
    try:
        product = await first.write(lambda db: _product(db, "last", 1))

        async def buy(database: Database) -> str:
            try:
                await database.write(
                    lambda db: orders.place_order(
                        db, account_id=None, items=[(product, 1)], now=NOW
                    )
                )
            except orders.OutOfStockError:
                return "lost"
            return "won"

        results = await asyncio.gather(*(buy(d) for d in (first, second) * 5))
        assert sorted(results) == ["lost"] * 9 + ["won"]
        stock = await first.execute(
            lambda db: db.execute("SELECT stock FROM products").fetchone()[0]
        )
        assert stock == 0
    finally:
        await first.close()
        await second.close()
