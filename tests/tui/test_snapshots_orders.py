"""The orders and reports mode's looks at 80x24 and 120x40, from canned answers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.tui.conftest import FIXED_NOW, canned, make_app
from tests.tui.test_snapshots_dashboard import ROUTES as DASHBOARD_ROUTES


def _line(product_id: int, quantity: int, unit_minor: int) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "quantity": quantity,
        "unit_price": f"{unit_minor / 100:.2f}",
        "unit_price_minor": unit_minor,
        "line_total": f"{unit_minor * quantity / 100:.2f}",
        "line_total_minor": unit_minor * quantity,
    }


def _order(order_id: int, at: str, status: str, *lines: dict[str, Any]) -> dict[str, Any]:
    total = sum(int(line["line_total_minor"]) for line in lines)
    return {
        "id": order_id,
        "account_id": None,
        "status": status,
        "total": f"{total / 100:.2f}",
        "total_minor": total,
        "currency": "INR",
        "note": None,
        "created_at": at,
        "lines": list(lines),
    }


ORDERS = [
    _order(14, "2026-11-20T10:12:40+00:00", "paid", _line(1, 2, 15000), _line(2, 1, 60000)),
    _order(13, "2026-11-20T09:03:05+00:00", "placed", _line(3, 4, 2500)),
    _order(12, "2026-11-20T08:41:19+00:00", "cancelled", _line(1, 1, 15000)),
    # Yesterday: listed by the API, not by "today's orders".
    _order(11, "2026-11-19T18:00:00+00:00", "paid", _line(2, 1, 60000)),
]
PRODUCTS = {1: "Herbal Shampoo 200 ml", 2: "Bluetooth Speaker", 3: "Soap Box"}
SALES = [0, 120000, 45000, 98000, 0, 76000, 150000, 30000, 88000, 64000, 0, 120000, 99000, 85000]


def _report(report_id: int, kind: str, start: str, end: str, orders: int, total: int) -> dict:
    return {
        "id": report_id,
        "kind": kind,
        "start": start,
        "end": end,
        "generated_at": f"{end}T07:00:00.000000+00:00",
        "sent_at": None,
        "orders": orders,
        "items": orders * 2,
        "total": f"{total / 100:.2f}",
        "total_minor": total,
        "currency": "INR",
        "content": {},
    }


def _product(request: httpx.Request) -> httpx.Response:
    product_id = int(request.url.path.rsplit("/", 1)[1])
    return httpx.Response(200, json={"success": True, "product": {"name": PRODUCTS[product_id]}})


class _Products(dict):  # type: ignore[type-arg]
    """Routes with one pattern: GET /api/v1/products/<id>."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key.startswith("GET /api/v1/products/"):
            return _product
        return super().get(key, default)


def _days() -> dict[str, Any]:
    first = date(2026, 11, 20) - timedelta(days=len(SALES) - 1)
    return {
        "success": True,
        "start": first.isoformat(),
        "end": "2026-11-20",
        "currency": "INR",
        "days": [
            {
                "day": (first + timedelta(days=n)).isoformat(),
                "orders": total // 30000,
                "total": f"{total / 100:,.2f}",
                "total_minor": total,
            }
            for n, total in enumerate(SALES)
        ],
    }


ROUTES = _Products(
    {
        **DASHBOARD_ROUTES,
        "GET /api/v1/orders": {"success": True, "orders": ORDERS},
        "GET /api/v1/reports": {
            "success": True,
            "reports": [
                _report(3, "daily", "2026-11-19", "2026-11-19", 9, 99000),
                _report(2, "weekly", "2026-11-09", "2026-11-15", 41, 612000),
                _report(1, "daily", "2026-11-18", "2026-11-18", 4, 120000),
            ],
        },
        "GET /api/v1/reports/daily-totals": _days(),
    }
)


def orders_app() -> Any:
    return make_app("http://daemon.test", transport=canned(ROUTES), clock=lambda: FIXED_NOW)


async def _loaded(pilot: Any) -> None:
    from textual.widgets import DataTable

    await pilot.press("4")
    screen = pilot.app.screen
    for _ in range(200):
        lines = screen.query_one("#lines", DataTable)
        named = lines.row_count and "Herbal" in str(lines.get_row_at(0)[0])
        if pilot.app.connected and named and screen.query_one("#reports", DataTable).row_count:
            break
        await pilot.pause(0.02)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_orders_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(orders_app(), terminal_size=size, run_before=_loaded)


def test_send_report_modal_snapshot_at_80x24(snap_compare: Any) -> None:
    async def refused(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press("s")
        await pilot.pause()
        pilot.app.screen.query_one("#day").value = "2999-01-01"
        # Sent by its action, not a click: a mouse left over a button would hover-highlight it
        # (or not) depending on timing.
        pilot.app.screen.action_send()
        await pilot.pause()

    assert snap_compare(orders_app(), terminal_size=(80, 24), run_before=refused)
