"""The inventory mode against a real daemon: add, edit, stock, price with history, filters."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from textual.widgets import Input, Select, Static

from tests.tui.conftest import LiveDaemon, make_app
from tests.tui.conftest import until as _until
from tui.app import ShopbellApp
from tui.modals.form import FormModal
from tui.modals.price_change import PriceChangeModal
from tui.screens.inventory import LOW_STOCK, InventoryScreen
from tui.widgets.product_table import ProductTable


def _rows(app: ShopbellApp) -> list[list[str]]:
    table = app.screen.query_one(ProductTable)
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


def _names(app: ShopbellApp) -> list[str]:
    return [row[1] for row in _rows(app)]


def _text(widget: Any) -> str:
    console = Console(width=100, record=True)
    console.print(widget.content)
    return console.export_text()


def _products(live: LiveDaemon) -> list[dict[str, Any]]:
    return list(live.api("GET", "/api/v1/products")["products"])


def _add(live: LiveDaemon, name: str, price: str, stock: int, category: str | None = None) -> int:
    body = {"name": name, "price": price, "stock": stock, "category": category}
    return int(live.api("POST", "/api/v1/products", json=body)["product"]["id"])


async def _open(app: ShopbellApp, pilot: Any, rows: int) -> InventoryScreen:
    await _until(lambda: app.connected, pilot)
    await pilot.press("3")
    await _until(lambda: isinstance(app.screen, InventoryScreen), pilot)
    await _until(lambda: app.screen.query_one(ProductTable).row_count == rows, pilot)
    assert isinstance(app.screen, InventoryScreen)
    return app.screen


async def _type(pilot: Any, app: ShopbellApp, field: str, text: str) -> None:
    app.screen.query_one(f"#field-{field}", Input).value = text
    await pilot.pause()


async def test_add_a_product_a_bad_price_is_refused_by_its_field(live_daemon: LiveDaemon) -> None:
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=0)
        await pilot.press("a")
        await _until(lambda: isinstance(app.screen, FormModal), pilot)
        form = app.screen
        await _type(pilot, app, "name", "USB cable")
        await _type(pilot, app, "sku", "CAB-1")
        await _type(pilot, app, "category", "accessories")
        await _type(pilot, app, "price", "12,5x")
        await _type(pilot, app, "stock", "40")
        await pilot.press("ctrl+s")
        await _until(lambda: "price" in form.errors(), pilot)
        assert "must be a number like 12.50" in form.errors()["price"]
        assert form.values()["name"] == "USB cable"
        assert _products(live_daemon) == []
        await _type(pilot, app, "price", "12.50")
        await pilot.press("ctrl+s")
        await _until(lambda: _names(app) == ["USB cable"], pilot)
        [row] = _rows(app)
        assert row[0] == "CAB-1"
        assert row[3].startswith("12.50")
        [saved] = _products(live_daemon)
        assert (saved["sku"], saved["price_minor"], saved["stock"]) == ("CAB-1", 1250, 40)


async def test_edit_and_adjust_stock_with_a_low_stock_highlight(live_daemon: LiveDaemon) -> None:
    product_id = _add(live_daemon, "Speaker", "99", LOW_STOCK + 2, "sound devices")
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=1)
        assert "low" not in _rows(app)[0][4]
        await pilot.press("e")
        await _until(lambda: isinstance(app.screen, FormModal), pilot)
        await _type(pilot, app, "name", "Speaker mini")
        await pilot.press("enter")
        await _until(lambda: _names(app) == ["Speaker mini"], pilot)

        await pilot.press("s")
        await _until(lambda: isinstance(app.screen, FormModal), pilot)
        form = app.screen
        await _type(pilot, app, "delta", "three")
        await pilot.press("enter")
        await _until(lambda: "delta" in form.errors(), pilot)
        await _type(pilot, app, "delta", "-3")
        await pilot.press("enter")
        await _until(lambda: _rows(app)[0][4] == f"{LOW_STOCK - 1} low", pilot)
        product = live_daemon.api("GET", f"/api/v1/products/{product_id}")["product"]
        assert (product["name"], product["stock"]) == ("Speaker mini", LOW_STOCK - 1)
        status = str(app.screen.query_one("#inventory-status", Static).render())
        assert "low stock" in status and "here: 1" in status


async def test_change_price_shows_the_old_and_new_price_in_the_history(
    live_daemon: LiveDaemon,
) -> None:
    product_id = _add(live_daemon, "Earbuds", "20.00", 30, "sound devices")
    app = make_app(live_daemon.url)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, rows=1)
        await pilot.press("c")
        await _until(lambda: isinstance(app.screen, PriceChangeModal), pilot)
        assert "No earlier prices" in _text(app.screen.query_one("#form-note", Static))
        await _type(pilot, app, "price", "17.50")
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, InventoryScreen), pilot)
        await _until(lambda: _rows(app)[0][3].startswith("17.50"), pilot)
        detail = app.screen.query_one("#product-detail", Static)
        await _until(lambda: "20.00" in _text(detail), pilot)
        assert "20.00 → 17.50" in _text(detail)
        changes = live_daemon.api("GET", f"/api/v1/products/{product_id}")["price_changes"]
        assert [(c["old_price_minor"], c["new_price_minor"]) for c in changes] == [(2000, 1750)]
        # The form shows the history too, for terminals with no room for the pane.
        await pilot.press("c")
        await _until(lambda: isinstance(app.screen, PriceChangeModal), pilot)
        assert "20.00 INR → 17.50 INR" in _text(app.screen.query_one("#form-note", Static))


async def test_search_and_category_filter(live_daemon: LiveDaemon) -> None:
    _add(live_daemon, "USB cable", "5", 10, "accessories")
    _add(live_daemon, "Phone case", "8", 10, "accessories")
    _add(live_daemon, "Speaker", "99", 10, "sound devices")
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot, rows=3)
        select = screen.query_one("#product-category", Select)
        await _until(lambda: len(select._options) == 3, pilot)  # the prompt and two categories
        select.value = "sound devices"
        await _until(lambda: _names(app) == ["Speaker"], pilot)
        select.value = "accessories"
        await _until(lambda: _names(app) == ["USB cable", "Phone case"], pilot)
        await pilot.press("slash")
        await pilot.press(*"case")
        await _until(lambda: _names(app) == ["Phone case"], pilot)
        select.clear()
        await _until(lambda: _names(app) == ["Phone case"], pilot)
        screen.query_one("#product-search", Input).value = ""
        await _until(lambda: len(_names(app)) == 3, pilot)


async def test_pages_turn_with_n_and_b() -> None:
    import httpx

    from tests.tui.conftest import canned
    from tests.tui.test_snapshots_dashboard import ROUTES

    def page(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("page", 1))
        first = (number - 1) * 50 + 1
        products = [
            {
                "id": n,
                "sku": f"SKU-{n}",
                "name": f"Product {n}",
                "brand": None,
                "category": None,
                "price": "1.00",
                "price_minor": 100,
                "currency": "INR",
                "stock": 10,
                "active": True,
            }
            for n in range(first, min(first + 49, 120) + 1)
        ]
        body = {"products": products, "page": number, "per_page": 50, "total": 120, "pages": 3}
        return httpx.Response(200, json={"success": True, **body})

    routes = {
        **ROUTES,
        "GET /api/v1/products": page,
        "GET /api/v1/products/categories": {"success": True, "categories": []},
    }
    app = make_app("http://daemon.test", transport=canned(routes))
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=50)
        status = app.screen.query_one("#inventory-status", Static)
        assert "page 1 of 3" in str(status.render())
        await pilot.press("n", "n")
        await _until(lambda: _names(app)[:1] == ["Product 101"], pilot)
        assert len(_names(app)) == 20
        assert "page 3 of 3" in str(status.render())
        await pilot.press("b")
        await _until(lambda: _names(app)[:1] == ["Product 51"], pilot)
