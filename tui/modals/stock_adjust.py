"""Adjust a product's stock by a count: a delivery adds, breakage or a stock-take removes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tui.modals.form import FormField, FormModal
from tui.records import Product


def _delta(text: str) -> int | str:
    # Not a whole number: sent as typed, so the daemon names the rule next to the field.
    try:
        return int(text.replace(" ", ""))
    except ValueError:
        return text


class StockAdjustModal(FormModal[Product]):
    """Dismisses with the product and its new stock, or None when cancelled; `save` gets the
    change (text that is not a whole number as typed, for the daemon to refuse)."""

    def __init__(self, product: Product, save: Callable[[int | str], Awaitable[Product]]) -> None:
        super().__init__(
            f"Stock of {product.name}",
            [FormField("delta", "Change", placeholder="+12 or -3")],
            lambda values: save(_delta(values["delta"])),
            note=f"In stock now: {product.stock}. A positive count adds, a negative one removes.",
            submit="Adjust",
        )
