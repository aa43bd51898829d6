"""The inventory mode: products with stock and price, search, category filter, stock and price."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, Static

from tui.modals.price_change import PriceChangeModal, history_table
from tui.modals.product_form import ProductFormModal
from tui.modals.stock_adjust import StockAdjustModal
from tui.records import PriceChange, Product, ProductDetails
from tui.screens.base import ModeScreen
from tui.widgets.product_table import LOW_STYLE, ProductTable

# The data model has no reorder level per product: at or below this many, a product is "low".
LOW_STOCK = 5
# Products per page (the API's most is 100); n and b turn pages, the table is never loaded whole.
PAGE = 50


class InventoryScreen(ModeScreen):
    """Products in pages, filtered by name and category; the highlighted one's price history
    beside the table on a wide terminal, and in the price form on any."""

    TITLE = "Inventory"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    # The table, not the search box: keys typed into an Input (the mode digits too) stay there.
    AUTO_FOCUS = "#products"
    BINDINGS = [
        Binding("a", "add_product", "Add"),
        Binding("e", "edit_product", "Edit"),
        Binding("s", "adjust_stock", "Stock"),
        Binding("c", "change_price", "Price"),
        Binding("n", "next_page", "Next"),
        Binding("b", "previous_page", "Back"),
        Binding("slash", "focus_search", "Search"),
        Binding("r", "refresh", "Reload", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]
    DEFAULT_CSS = """
    InventoryScreen #inventory-filters {
        height: 3;
    }
    InventoryScreen #product-search {
        width: 1fr;
    }
    InventoryScreen #product-category {
        width: 30;
    }
    InventoryScreen #inventory-body {
        height: 1fr;
    }
    InventoryScreen #inventory-left {
        width: 1fr;
    }
    InventoryScreen #products {
        height: 1fr;
    }
    InventoryScreen #inventory-status {
        height: 1;
        color: $text-muted;
        padding: 0 1;
    }
    InventoryScreen #product-detail {
        width: 42;
        height: 1fr;
        border-left: vkey $primary 50%;
        padding: 0 1;
        overflow-y: auto;
    }
    InventoryScreen.-narrow #product-detail {
        display: none;
    }
    InventoryScreen.-narrow #product-category {
        width: 24;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.products: list[Product] = []
        self.page = 1
        self.pages = 1
        self.total = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="inventory-filters"):
            yield Input(placeholder="Search by name (/)", id="product-search")
            yield Select[str]([], prompt="All categories", id="product-category")
        with Horizontal(id="inventory-body"):
            with Vertical(id="inventory-left"):
                yield ProductTable(low_stock=LOW_STOCK, id="products")
                yield Static("", id="inventory-status")
            yield Static("", id="product-detail")

    @property
    def table(self) -> ProductTable:
        return self.query_one(ProductTable)

    def refresh_data(self) -> None:
        self.load_categories()
        self.load_products()

    # -- loading ---------------------------------------------------------------------------

    def search(self) -> str | None:
        return self.query_one("#product-search", Input).value.strip() or None

    def category(self) -> str | None:
        chosen = self.query_one("#product-category", Select).value
        return chosen if isinstance(chosen, str) else None

    @work(exclusive=True, group="inventory-categories", exit_on_error=False)
    async def load_categories(self) -> None:
        categories = await self.api.categories()
        select = self.query_one("#product-category", Select)
        chosen = select.value
        options = [(f"{c.name} ({c.products})", c.name) for c in categories]
        select.set_options(options)
        if isinstance(chosen, str) and chosen in {value for _, value in options}:
            select.value = chosen

    @work(exclusive=True, group="inventory-products", exit_on_error=False)
    async def load_products(self) -> None:
        answer = await self.api.products(
            page=self.page, per_page=PAGE, search=self.search(), category=self.category()
        )
        self.products = list(answer.products)
        self.total = answer.total
        self.pages = max(1, answer.pages)
        if self.page > self.pages:
            # The last page emptied (a filter, or products went inactive): show the new last one.
            self.page = self.pages
            self.load_products()
            return
        self.table.show(self.products)
        self._status()
        self.show_detail_of_cursor()

    def _status(self) -> None:
        low = sum(1 for p in self.products if self.table.is_low(p))
        pages = f"page {self.page} of {self.pages} (n/b)" if self.pages > 1 else "one page"
        text = f"{self.total} products · {pages} · low stock (≤{LOW_STOCK}) here: {low}"
        self.query_one("#inventory-status", Static).update(text)

    @on(Input.Changed, "#product-search")
    @on(Select.Changed, "#product-category")
    def _filter(self) -> None:
        self.page = 1
        self.load_products()

    @on(Input.Submitted, "#product-search")
    def _to_table(self) -> None:
        self.table.focus()

    @on(DataTable.RowHighlighted, "#products")
    def show_detail_of_cursor(self) -> None:
        product_id = self.table.highlighted_id
        if product_id is None:
            self.query_one("#product-detail", Static).update(Text("No product.", style="dim"))
        elif self.has_class("-wide"):
            self.load_detail(product_id)

    @work(exclusive=True, group="inventory-detail", exit_on_error=False)
    async def load_detail(self, product_id: int) -> None:
        answer = await self.api.product(product_id)
        changes = answer.price_changes or ()
        self.query_one("#product-detail", Static).update(self._detail(answer.product, changes))

    def _detail(self, product: Product, changes: Sequence[PriceChange]) -> RenderableType:
        facts = Table.grid(padding=(0, 1))
        facts.add_column(style="bold", no_wrap=True)
        facts.add_column()
        facts.add_row("SKU", product.sku)
        facts.add_row("Brand", product.brand or "—")
        facts.add_row("Category", product.category or "—")
        facts.add_row("Price", f"{product.price} {product.currency}")
        stock = Text(str(product.stock))
        if self.table.is_low(product):
            stock = Text(f"{product.stock}: low (≤{LOW_STOCK})", style=LOW_STYLE)
        facts.add_row("Stock", stock)
        facts.add_row("Active", "yes" if product.active else "no")
        return Group(
            Text(product.name, style="bold"),
            facts,
            # The pane is narrow: the currency goes in the heading, not in every row.
            Text(f"\nPrice history ({product.currency})", style="bold"),
            history_table(changes, product.currency, self.shop.clock(), label=False),
        )

    def selected(self) -> Product | None:
        """The highlighted product, or a notice that there is none."""
        product_id = self.table.highlighted_id
        for product in self.products:
            if product.id == product_id:
                return product
        self.notify("No product selected.", severity="warning")
        return None

    def _saved(self, saved: Product | None, what: str = "Saved") -> None:
        if saved is None:
            return
        self.notify(f"{what}: {saved.name}, {saved.price} {saved.currency}, stock {saved.stock}.")
        self.products = [saved if p.id == saved.id else p for p in self.products]
        self.table.show(self.products)
        self.load_categories()
        self.load_products()

    # -- actions ---------------------------------------------------------------------------

    def action_focus_search(self) -> None:
        self.query_one("#product-search", Input).focus()

    def action_focus_table(self) -> None:
        self.table.focus()

    def action_refresh(self) -> None:
        self.refresh_data()

    def action_next_page(self) -> None:
        if self.page < self.pages:
            self.page += 1
            self.load_products()

    def action_previous_page(self) -> None:
        if self.page > 1:
            self.page -= 1
            self.load_products()

    def action_add_product(self) -> None:
        modal = ProductFormModal.adding(self.api.add_product)
        self.app.push_screen(modal, lambda p: self._saved(p, "Added"))

    def action_edit_product(self) -> None:
        product = self.selected()
        if product is None:
            return

        async def save(details: ProductDetails) -> Product:
            return await self.api.edit_product(product.id, details)

        self.app.push_screen(ProductFormModal.editing(product, save), self._saved)

    def action_adjust_stock(self) -> None:
        product = self.selected()
        if product is None:
            return

        async def save(delta: int | str) -> Product:
            return await self.api.adjust_stock(product.id, delta)

        self.app.push_screen(
            StockAdjustModal(product, save), lambda p: self._saved(p, "Stock adjusted")
        )

    @work(exclusive=True, group="inventory-change", exit_on_error=False)
    async def action_change_price(self) -> None:
        """The form shows the price history, so it is read first."""
        product = self.selected()
        if product is None:
            return
        answer = await self.api.product(product.id)

        async def save(price: str) -> Product:
            return await self.api.change_price(product.id, price)

        changes = answer.price_changes or ()
        modal = PriceChangeModal(answer.product, changes, self.shop.clock(), save)
        self.app.push_screen(modal, lambda p: self._saved(p, "Price changed"))
