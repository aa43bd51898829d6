"""Add or edit a product: name, SKU, brand, category; price and stock too when adding."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tui.modals.form import FormField, FormModal
from tui.widgets.product_table import ProductView


def _count(text: str) -> int | str:
    # Not a whole number: sent as typed, so the daemon names the rule next to the field.
    try:
        return int(text)
    except ValueError:
        return text


class ProductFormModal(FormModal[ProductView]):
    """Dismisses with the product as the daemon saved it, or None when cancelled. Editing leaves
    price and stock to their own actions, which keep the price history and the stock count."""

    def __init__(
        self,
        product: ProductView | None,
        save: Callable[[dict[str, Any]], Awaitable[ProductView]],
    ) -> None:
        p = product
        fields = [
            FormField("name", "Name", p.name if p else ""),
            FormField("sku", "SKU", p.sku if p else "", "empty: one is made up"),
            FormField("brand", "Brand", (p.brand or "") if p else ""),
            FormField("category", "Category", (p.category or "") if p else "", "accessories"),
        ]
        if p is None:
            fields.append(FormField("price", "Price", placeholder="12.50"))
            fields.append(FormField("stock", "Stock", "0"))
        self.product = p
        title = f"Edit {p.name}" if p else "Add a product"
        super().__init__(title, fields, lambda values: save(self.body_of(values)))

    def body_of(self, values: dict[str, str]) -> dict[str, Any]:
        """The API's body; empty brand or category clears it, an empty SKU is left unset."""
        body: dict[str, Any] = {"name": values["name"]}
        if values["sku"]:
            body["sku"] = values["sku"]
        for name in ("brand", "category"):
            body[name] = values[name] or None
        if self.product is None:
            body["price"] = values["price"]
            body["stock"] = _count(values["stock"] or "0")
        return body
