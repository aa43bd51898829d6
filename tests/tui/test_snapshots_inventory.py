"""The inventory mode's looks at 80x24 and 120x40, from canned answers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import FIXED_NOW, canned, make_app
from tests.tui.test_snapshots_dashboard import ROUTES as DASHBOARD_ROUTES


def _product(
    pid: int, sku: str, name: str, category: str | None, minor: int, stock: int, **extra: Any
) -> dict[str, Any]:
    return {
        "id": pid,
        "sku": sku,
        "name": name,
        "brand": extra.pop("brand", None),
        "category": category,
        "price": f"{minor / 100:.2f}",
        "price_minor": minor,
        "currency": "INR",
        "stock": stock,
        "active": extra.pop("active", True),
    }


PRODUCTS = [
    _product(1, "SPK-BT1", "Bluetooth Speaker", "sound devices", 149900, 3, brand="Boat"),
    _product(2, "CAB-USB", "USB-C cable 1 m", "accessories", 29900, 42),
    _product(3, "CAS-A15", "Phone case A15", "accessories", 49900, 0),
    _product(4, "SHA-200", "Herbal Shampoo 200 ml", "personal care", 15000, 18),
    _product(5, "EAR-01", "Wired earphones", "sound devices", 39900, 7, active=False),
]
ROUTES: dict[str, Any] = {
    **DASHBOARD_ROUTES,
    "GET /api/v1/products": {
        "success": True,
        "products": PRODUCTS,
        "page": 1,
        "per_page": 50,
        "total": 5,
        "pages": 1,
    },
    "GET /api/v1/products/categories": {
        "success": True,
        "categories": [
            {"name": "accessories", "products": 2},
            {"name": "personal care", "products": 1},
            {"name": "sound devices", "products": 2},
        ],
    },
    "GET /api/v1/products/1": {
        "success": True,
        "message": None,
        "product": PRODUCTS[0],
        "price_changes": [
            {
                "old_price_minor": 129900,
                "new_price_minor": 139900,
                "account_id": None,
                "changed_at": "2026-10-02T09:00:00+00:00",
            },
            {
                "old_price_minor": 139900,
                "new_price_minor": 149900,
                "account_id": 2,
                "changed_at": "2026-11-20T09:15:00+00:00",
            },
        ],
    },
}


def inventory_app() -> Any:
    return make_app("http://daemon.test", transport=canned(ROUTES), clock=lambda: FIXED_NOW)


async def _loaded(pilot: Any) -> None:
    from textual.widgets import Static

    from tui.widgets.product_table import ProductTable

    await pilot.press("3")
    screen = pilot.app.screen
    wide = pilot.app.size.width >= 100
    for _ in range(200):
        table = screen.query_one(ProductTable)
        detail = str(screen.query_one("#product-detail", Static).content)
        if pilot.app.connected and table.row_count == 5 and (detail or not wide):
            break
        await pilot.pause(0.02)
    table.focus()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_inventory_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(inventory_app(), terminal_size=size, run_before=_loaded)


async def _price_form(pilot: Any) -> None:
    from tui.modals.price_change import PriceChangeModal

    await _loaded(pilot)
    await pilot.press("c")
    for _ in range(200):
        if isinstance(pilot.app.screen, PriceChangeModal):
            break
        await pilot.pause(0.02)
    await pilot.pause()


def test_price_change_form_snapshot_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(inventory_app(), terminal_size=(80, 24), run_before=_price_form)
