"""Orders and their lines: placed at the current prices, stock taken in the same transaction.

`place_order` must run inside `Database.write`: the stock checks, the decrements and the
order's rows are then one commit, so two orders racing for the last item cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from storage.models import Order, OrderLine
from storage.products import UnknownProductError, get_product

# The statuses that count as a sale in reports.
SOLD = ("placed", "paid")


class OutOfStockError(Exception):
    """A product has fewer in stock than the order asks for; nothing was changed."""

    def __init__(self, product_id: int, name: str, requested: int, available: int) -> None:
        super().__init__(
            f"not enough {name!r} (product {product_id}) in stock: "
            f"{requested} asked, {max(available, 0)} left"
        )
        self.product_id = product_id
        self.name = name
        self.requested = requested
        self.available = max(available, 0)


class InactiveProductError(Exception):
    """The product is no longer sold."""

    def __init__(self, product_id: int, name: str) -> None:
        super().__init__(f"{name!r} (product {product_id}) is no longer sold")
        self.product_id = product_id
        self.name = name


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """An order with its lines."""

    order: Order
    lines: list[OrderLine]


def place_order(
    db: sqlite_utils.Database,
    *,
    account_id: int | None,
    items: Sequence[tuple[int, int]],
    now: str,
    note: str | None = None,
) -> PlacedOrder:
    """Create an order of (product_id, quantity) items at current prices and take the stock.

    The same product named twice is one line. Raises UnknownProductError, InactiveProductError
    or OutOfStockError; the caller's transaction then rolls back whatever was done.
    """
    merged: dict[int, int] = {}
    for product_id, quantity in items:
        if quantity <= 0:
            raise ValueError("quantities must be positive")
        merged[product_id] = merged.get(product_id, 0) + quantity
    if not merged:
        raise ValueError("an order needs at least one item")
    priced: list[tuple[int, int, int]] = []
    for product_id, quantity in merged.items():
        product = get_product(db, product_id)
        if product is None:
            raise UnknownProductError(product_id)
        if not product.active:
            raise InactiveProductError(product_id, product.name)
        # Checked and taken in one statement; the transaction holds the write lock anyway.
        cursor = db.execute(
            "UPDATE products SET stock = stock - ?, updated_at = ? WHERE id = ? AND stock >= ?",
            [quantity, now, product_id, quantity],
        )
        if cursor.rowcount != 1:
            raise OutOfStockError(product_id, product.name, quantity, product.stock)
        priced.append((product_id, quantity, product.price_minor))
    total = sum(quantity * price for _, quantity, price in priced)
    cursor = db.execute(
        "INSERT INTO orders (account_id, status, total_minor, note, created_at, updated_at) "
        "VALUES (?, 'placed', ?, ?, ?, ?)",
        [account_id, total, note, now, now],
    )
    order_id = int(cursor.lastrowid or 0)
    for product_id, quantity, price in priced:
        db.execute(
            "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_minor, "
            "line_total_minor) VALUES (?, ?, ?, ?, ?)",
            [order_id, product_id, quantity, price, quantity * price],
        )
    placed = get_order(db, order_id)
    assert placed is not None
    return placed


def get_order(db: sqlite_utils.Database, order_id: int) -> PlacedOrder | None:
    rows = list(db.query("SELECT * FROM orders WHERE id = ?", [order_id]))
    if not rows:
        return None
    lines = db.query("SELECT * FROM order_lines WHERE order_id = ? ORDER BY id", [order_id])
    return PlacedOrder(Order.from_row(rows[0]), [OrderLine.from_row(line) for line in lines])


def list_orders(
    db: sqlite_utils.Database,
    *,
    account_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[PlacedOrder]:
    """Orders newest first, all or one account's, each with its lines."""
    where, params = ("WHERE account_id = ?", [account_id]) if account_id is not None else ("", [])
    ids = [
        row[0]
        for row in db.execute(
            f"SELECT id FROM orders {where} ORDER BY id DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*params, limit, offset],
        ).fetchall()
    ]
    found = [get_order(db, order_id) for order_id in ids]
    return [order for order in found if order is not None]
