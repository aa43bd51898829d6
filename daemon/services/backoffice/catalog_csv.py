"""The product catalogue as CSV: every row checked before any is written, errors by line."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from daemon.services.backoffice.money import to_minor, to_text
from storage.models import Product

COLUMNS = ("sku", "name", "brand", "category", "price", "stock", "active")
REQUIRED = ("sku", "name", "price")
MAX_TEXT = 200
# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...),
# +SUM(1), @SUM(A1)); OWASP's "CSV Injection" rule: such a cell is written with a leading
# apostrophe, which spreadsheets show as text. A cell that starts with the apostrophe itself
# gets one too, so reading the file back gives every text exactly as it was.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPE = "'"
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


class CsvError(Exception):
    """A row (or the header) that cannot be imported; `line` is the file's line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class ProductRow:
    line: int
    sku: str
    name: str
    brand: str | None
    category: str | None
    price_minor: int
    stock: int | None
    active: bool | None


def parse(stream: TextIO, currency: str) -> Iterator[ProductRow]:
    """Rows of a CSV with a header naming COLUMNS (sku, name and price required).

    Raises CsvError at the first bad row; a SKU twice in one file is an error too.
    """
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise CsvError(1, f"the header lacks {', '.join(missing)} (columns: {', '.join(COLUMNS)})")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise CsvError(1, f"unknown column {', '.join(map(repr, unknown))}")
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        row = _row(record, line, currency)
        if row.sku in seen:
            raise CsvError(line, f"sku {row.sku!r} is also on line {seen[row.sku]}")
        seen[row.sku] = line
        yield row


def _row(record: dict[str, str | None], line: int, currency: str) -> ProductRow:
    if None in record:
        raise CsvError(line, "more fields than the header has")

    def text(name: str) -> str | None:
        value = unescape_cell((record.get(name) or "").strip())
        if len(value) > MAX_TEXT:
            raise CsvError(line, f"{name} is longer than {MAX_TEXT} characters")
        return value or None

    sku, name, price = text("sku"), text("name"), text("price")
    if not sku or not name or price is None:
        raise CsvError(line, "sku, name and price are required")
    try:
        price_minor = to_minor(price, currency)
    except ValueError as exc:
        raise CsvError(line, f"price {price!r} {exc}") from None
    stock_text = text("stock")
    stock: int | None = None
    if stock_text is not None:
        if not stock_text.lstrip("-").isdigit():
            raise CsvError(line, f"stock {stock_text!r} is not a whole number")
        stock = int(stock_text)
        if stock < 0:
            raise CsvError(line, "stock must not be negative")
    active_text = (text("active") or "").lower()
    active: bool | None = None
    if active_text in _TRUE:
        active = True
    elif active_text in _FALSE:
        active = False
    elif active_text:
        raise CsvError(line, f"active {active_text!r} is not true or false")
    return ProductRow(line, sku, name, text("brand"), text("category"), price_minor, stock, active)


def write(products: Iterable[Product], currency: str, out: TextIO) -> int:
    """Write `products` as CSV that `parse` reads back; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for product in products:
        writer.writerow(
            [
                escape_cell(product.sku),
                escape_cell(product.name),
                escape_cell(product.brand or ""),
                escape_cell(product.category or ""),
                to_text(product.price_minor, currency),
                product.stock,
                "true" if product.active else "false",
            ]
        )
        count += 1
    return count


def escape_cell(text: str) -> str:
    """`text` as a cell no spreadsheet runs as a formula (FORMULA_STARTS), readable back."""
    if text.startswith((*FORMULA_STARTS, _ESCAPE)):
        return _ESCAPE + text
    return text


def unescape_cell(text: str) -> str:
    """The text `escape_cell` was given: one leading apostrophe dropped where it added one."""
    if text.startswith(_ESCAPE) and text[1:].startswith((*FORMULA_STARTS, _ESCAPE)):
        return text[1:]
    return text
