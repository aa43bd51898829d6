"""Add or edit a product: name, SKU, brand, category; price and stock too when adding."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tui.modals.form import FormField, FormModal
from tui.records import NewProduct, Product, ProductDetails


def _count(text: str) -> int | str:
    # Not a whole number: sent as typed, so the daemon names the rule next to the field.
    try:
        return int(text)
    except ValueError:
        return text


def _details_fields(p: Product | None) -> list[FormField]:
    return [
        FormField("name", "Name", p.name if p else ""),
        FormField("sku", "SKU", p.sku if p else "", "empty: one is made up"),
        FormField("brand", "Brand", (p.brand or "") if p else ""),
        FormField("category", "Category", (p.category or "") if p else "", "accessories"),
    ]


def _details(values: dict[str, str]) -> ProductDetails:
    return ProductDetails(
        name=values["name"], sku=values["sku"], brand=values["brand"], category=values["category"]
    )


class ProductFormModal(FormModal[Product]):
    """Dismisses with the product as the daemon saved it, or None when cancelled. Editing leaves
    price and stock to their own actions, which keep the price history and the stock count.
    Made by `adding` or `editing`."""

    @classmethod
    def adding(cls, save: Callable[[NewProduct], Awaitable[Product]]) -> ProductFormModal:
        fields = [
            *_details_fields(None),
            FormField("price", "Price", placeholder="12.50"),
            FormField("stock", "Stock", "0"),
        ]

        def new(values: dict[str, str]) -> NewProduct:
            stock = _count(values["stock"] or "0")
            return NewProduct(_details(values), price=values["price"], stock=stock)

        return cls("Add a product", fields, lambda values: save(new(values)))

    @classmethod
    def editing(
        cls, product: Product, save: Callable[[ProductDetails], Awaitable[Product]]
    ) -> ProductFormModal:
        fields = _details_fields(product)
        return cls(f"Edit {product.name}", fields, lambda values: save(_details(values)))
