"""Change a product's price, with its earlier prices shown: who changed them and when."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tui.format import money, when
from tui.modals.form import FormField, FormModal
from tui.records import PriceChange, Product

# Past prices shown in the form; the oldest ones scroll away first.
HISTORY_SHOWN = 8


def history_table(
    changes: Sequence[PriceChange], currency: str, now: datetime, *, label: bool = True
) -> RenderableType:
    """Newest first: when, old price → new price, in the currency's digits (its code left
    out with `label=False`)."""
    if not changes:
        return Text("No earlier prices.", style="dim")
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    recent = sorted(changes, key=lambda c: c.changed_at, reverse=True)
    for change in recent[:HISTORY_SHOWN]:
        table.add_row(
            when(change.changed_at, now),
            money(change.old_price_minor, currency, label=label),
            "→",
            money(change.new_price_minor, currency, label=label),
        )
    return table


class PriceChangeModal(FormModal[Product]):
    """Dismisses with the product at its new price, or None when cancelled; `save` gets the
    new price as typed."""

    def __init__(
        self,
        product: Product,
        changes: Sequence[PriceChange],
        now: datetime,
        save: Callable[[str], Awaitable[Product]],
    ) -> None:
        note = Group(
            Text(f"Now {product.price} {product.currency}. Earlier prices:"),
            history_table(changes, product.currency, now),
        )
        super().__init__(
            f"Price of {product.name}",
            [FormField("price", "New price", placeholder=product.price)],
            lambda values: save(values["price"]),
            note=note,
            submit="Change",
        )
