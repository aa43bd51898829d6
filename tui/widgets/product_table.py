"""The products table: stock and price per product, the ones running low highlighted."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from tui.records import Product

# Explicit black on yellow: readable on the dark and the light theme alike.
LOW_STYLE = "bold black on yellow"


class ProductTable(DataTable[str | Text]):
    """Rows keyed by product id; a stock at or below `low_stock` is shown in the warning colour."""

    def __init__(self, *, low_stock: int, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.low_stock = low_stock

    def on_mount(self) -> None:
        self.add_column("SKU", key="sku")
        self.add_column("Name", key="name")
        self.add_column("Category", key="category")
        self.add_column("Price", key="price")
        self.add_column("Stock", key="stock")

    def is_low(self, product: Product) -> bool:
        return product.active and product.stock <= self.low_stock

    def show(self, products: Sequence[Product]) -> None:
        keep = self.highlighted_id
        self.clear()
        for product in products:
            low = self.is_low(product)
            stock = Text(str(product.stock), justify="right")
            if low:
                stock = Text(f"{product.stock} low", style=LOW_STYLE, justify="right")
            name = product.name if product.active else f"{product.name} (inactive)"
            self.add_row(
                product.sku,
                Text(name, style="bold" if low else ("dim" if not product.active else "")),
                product.category or "—",
                Text(f"{product.price} {product.currency}", justify="right"),
                stock,
                key=str(product.id),
            )
        if keep is not None and str(keep) in self.rows:
            self.move_cursor(row=self.get_row_index(str(keep)))

    @property
    def highlighted_id(self) -> int | None:
        """The id of the product under the cursor, or None when the table is empty."""
        if not self.row_count:
            return None
        key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(key.value) if key.value is not None else None
