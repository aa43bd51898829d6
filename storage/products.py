"""Products: the catalogue, stock counts and the history of price changes.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`) or read (`Database.execute`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import sqlite_utils

from storage.models import PriceChange, Product

# Columns a caller may change with update_product; price goes through set_price (history).
EDITABLE = ("name", "brand", "category", "active", "sku")


class DuplicateSkuError(Exception):
    """Another product already has this SKU."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"a product with sku {sku!r} already exists")
        self.sku = sku


class UnknownProductError(Exception):
    """No product has this id."""

    def __init__(self, product_id: int) -> None:
        super().__init__(f"no product with id {product_id}")
        self.product_id = product_id


@dataclass(frozen=True, slots=True)
class ProductPage:
    """One page of a product listing and how many match in all."""

    products: list[Product]
    total: int


def insert_product(
    db: sqlite_utils.Database,
    *,
    sku: str,
    name: str,
    price_minor: int,
    now: str,
    brand: str | None = None,
    category: str | None = None,
    stock: int = 0,
) -> Product:
    try:
        cursor = db.execute(
            "INSERT INTO products (sku, name, brand, category, price_minor, stock, active, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
            [sku, name, brand, category, price_minor, stock, now, now],
        )
    except sqlite3.IntegrityError as exc:
        if "products.sku" in str(exc):
            raise DuplicateSkuError(sku) from None
        raise
    return require_product(db, int(cursor.lastrowid or 0))


def get_product(db: sqlite_utils.Database, product_id: int) -> Product | None:
    rows = list(db.query("SELECT * FROM products WHERE id = ?", [product_id]))
    return Product.from_row(rows[0]) if rows else None


def require_product(db: sqlite_utils.Database, product_id: int) -> Product:
    product = get_product(db, product_id)
    if product is None:
        raise UnknownProductError(product_id)
    return product


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_products(
    db: sqlite_utils.Database,
    *,
    category: str | None = None,
    brand: str | None = None,
    search: str | None = None,
    active: bool | None = True,
    limit: int = 20,
    offset: int = 0,
) -> ProductPage:
    """Products matching every filter given, by id; category and brand ignore case."""
    clauses: list[str] = []
    params: list[object] = []
    if active is not None:
        clauses.append("active = ?")
        params.append(1 if active else 0)
    if category is not None:
        clauses.append("category = ? COLLATE NOCASE")
        params.append(category)
    if brand is not None:
        clauses.append("brand = ? COLLATE NOCASE")
        params.append(brand)
    if search:
        clauses.append("name LIKE ? ESCAPE '\\'")
        params.append(f"%{_escape_like(search)}%")
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    # Only fixed fragments go into the text; every value is a parameter.
    total = db.execute(f"SELECT count(*) FROM products {where}", params).fetchone()[0]  # noqa: S608
    rows = db.query(
        f"SELECT * FROM products {where} ORDER BY id LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset],
    )
    return ProductPage([Product.from_row(row) for row in rows], int(total))


def set_price(
    db: sqlite_utils.Database,
    product_id: int,
    price_minor: int,
    *,
    account_id: int | None,
    now: str,
) -> Product:
    """Change the price and record who changed it and when (nothing recorded if unchanged)."""
    product = require_product(db, product_id)
    if product.price_minor != price_minor:
        db.execute(
            "UPDATE products SET price_minor = ?, updated_at = ? WHERE id = ?",
            [price_minor, now, product_id],
        )
        db.execute(
            "INSERT INTO price_changes (product_id, old_price_minor, new_price_minor, "
            "account_id, changed_at) VALUES (?, ?, ?, ?, ?)",
            [product_id, product.price_minor, price_minor, account_id, now],
        )
    return require_product(db, product_id)


def update_product(
    db: sqlite_utils.Database, product_id: int, changes: dict[str, object], *, now: str
) -> Product:
    """Change the EDITABLE columns named in `changes`."""
    require_product(db, product_id)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)} with update_product")
    if changes:
        columns = ", ".join(f"{name} = ?" for name in changes)
        try:
            db.execute(
                f"UPDATE products SET {columns}, updated_at = ? WHERE id = ?",  # noqa: S608
                [*changes.values(), now, product_id],
            )
        except sqlite3.IntegrityError as exc:
            if "products.sku" in str(exc):
                raise DuplicateSkuError(str(changes.get("sku"))) from None
            raise
    return require_product(db, product_id)


def adjust_stock(db: sqlite_utils.Database, product_id: int, delta: int, *, now: str) -> Product:
    """Add `delta` (negative to remove) to the stock count."""
    require_product(db, product_id)
    db.execute(
        "UPDATE products SET stock = stock + ?, updated_at = ? WHERE id = ?",
        [delta, now, product_id],
    )
    return require_product(db, product_id)


def price_changes(db: sqlite_utils.Database, product_id: int) -> list[PriceChange]:
    rows = db.query(
        "SELECT * FROM price_changes WHERE product_id = ? ORDER BY changed_at, id", [product_id]
    )
    return [PriceChange.from_row(row) for row in rows]


def upsert_by_sku(
    db: sqlite_utils.Database,
    *,
    sku: str,
    name: str,
    price_minor: int,
    now: str,
    brand: str | None = None,
    category: str | None = None,
    stock: int | None = None,
    active: bool | None = None,
    account_id: int | None = None,
) -> bool:
    """Create the product with this SKU, or change it (price through set_price, so the change
    is recorded); `stock` and `active` left as they are when None. True when created."""
    rows = list(db.query("SELECT id FROM products WHERE sku = ?", [sku]))
    if not rows:
        product = insert_product(
            db,
            sku=sku,
            name=name,
            price_minor=price_minor,
            now=now,
            brand=brand,
            category=category,
            stock=stock or 0,
        )
        if active is False:
            update_product(db, product.id, {"active": 0}, now=now)
        return True
    product_id = int(rows[0]["id"])
    changes: dict[str, object] = {"name": name, "brand": brand, "category": category}
    if active is not None:
        changes["active"] = 1 if active else 0
    update_product(db, product_id, changes, now=now)
    if stock is not None:
        db.execute("UPDATE products SET stock = ? WHERE id = ?", [stock, product_id])
    set_price(db, product_id, price_minor, account_id=account_id, now=now)
    return False


def all_products(db: sqlite_utils.Database) -> list[Product]:
    return [Product.from_row(row) for row in db.query("SELECT * FROM products ORDER BY id")]
