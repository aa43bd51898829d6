"""Orders and reports against a real daemon: today's orders and their lines, the sales chart,
and sending a report now (it is stored and queued to the owner)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input

from tests.tui.conftest import TOKEN, LiveDaemon, make_app
from tests.tui.test_app import _until
from tui.modals.send_report import SendReportModal
from tui.widgets.sales_chart import SalesChart

OWNER = "+14155550199"


@pytest.fixture
def shop_daemon(
    daemon_config: Callable[[str], tuple[Path, int]], daemon_env: dict[str, str]
) -> Iterator[LiveDaemon]:
    """A daemon with report recipients, and two products and two orders placed today."""
    path, port = daemon_config(
        f'[reports]\nowner_phone = "{OWNER}"\nrecipients = ["boss@example.com"]\n'
    )
    live = LiveDaemon(f"http://127.0.0.1:{port}", TOKEN, port, path, daemon_env)
    live.start()
    yield live
    live.stop()


def _product(live: LiveDaemon, name: str, price: str) -> int:
    body = {"name": name, "price": price, "category": "grocery", "stock": 50}
    return int(live.api("POST", "/api/v1/products", json=body)["product"]["id"])


def _order(live: LiveDaemon, *items: tuple[int, int]) -> dict[str, Any]:
    body = {"items": [{"product_id": p, "quantity": q} for p, q in items]}
    return dict(live.api("POST", "/api/v1/orders", json=body)["order"])


def _cells(table: DataTable[Any]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


async def test_todays_orders_their_lines_and_the_chart(shop_daemon: LiveDaemon) -> None:
    live = shop_daemon
    soap = _product(live, "Sandal Soap", "40.00")
    tea = _product(live, "Assam Tea 250 g", "125.50")
    first = _order(live, (soap, 3))
    second = _order(live, (tea, 2), (soap, 1))

    app = make_app(live.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        screen = app.screen
        orders = screen.query_one("#orders", DataTable)
        await _until(lambda: orders.row_count == 2, pilot)
        # Newest first; each with the total the daemon computed.
        assert [row[0] for row in _cells(orders)] == [str(second["id"]), str(first["id"])]
        assert _cells(orders)[0][3] == "291.00"

        lines = screen.query_one("#lines", DataTable)
        await _until(lambda: any("Assam" in row[0] for row in _cells(lines)), pilot)
        assert [(row[0][:5], row[1], row[3]) for row in _cells(lines)] == [
            ("Assam", "2", "251.00"),
            ("Sanda", "1", "40.00"),
        ]
        # Down to the older order: its lines replace the others.
        orders.focus()
        await pilot.press("down")
        await _until(lambda: _cells(lines) and _cells(lines)[0][1] == "3", pilot)
        assert _cells(lines)[0][0].startswith("Sandal") and len(_cells(lines)) == 1

        chart = screen.query_one(SalesChart)
        await _until(lambda: chart.days, pilot)
        assert chart.days[-1].shown == "411.00" and chart.days[-1].orders == 2
        summary = str(screen.query_one("#orders-summary").render())
        assert "2 orders" in summary and "411.00 INR" in summary


async def test_sending_a_report_now_stores_and_queues_it(shop_daemon: LiveDaemon) -> None:
    live = shop_daemon
    soap = _product(live, "Sandal Soap", "40.00")
    _order(live, (soap, 5))
    today = datetime.now(UTC).date().isoformat()

    app = make_app(live.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        screen = app.screen
        reports = screen.query_one("#reports", DataTable)
        await _until(lambda: reports.row_count == 1, pilot)
        assert _cells(reports)[0][0] == "none yet"

        await pilot.press("s")
        await _until(lambda: isinstance(app.screen, SendReportModal), pilot)
        modal = app.screen
        # A day in the future is refused next to the field, and the modal stays.
        modal.query_one("#day", Input).value = "2999-01-01"
        await pilot.click("#send")
        assert "must not be after today" in str(modal.query_one("#day-error").render())
        assert app.screen is modal
        day = modal.query_one("#day", Input)
        day.value = ""
        day.focus()
        await pilot.press(*today, "enter")
        await _until(lambda: not isinstance(app.screen, SendReportModal), pilot)

        await _until(lambda: _cells(reports)[0][0] == "daily", pilot)
        assert _cells(reports)[0][1] == today
        assert _cells(reports)[0][2] == "1" and _cells(reports)[0][3] == "200.00"
        await _until(lambda: any("queued" in n.message for n in app._notifications), pilot)

    # The daemon stored the report and queued the owner's SMS and the e-mail.
    stored = live.api("GET", "/api/v1/reports")["reports"]
    assert [(r["kind"], r["start"], r["total_minor"]) for r in stored] == [("daily", today, 20000)]
    queued = live.api("GET", "/api/v1/messages", params={"kind": "report"})["messages"]
    assert sorted(m["recipient"] for m in queued) == sorted([OWNER, "boss@example.com"])
