"""The orders and reports mode: today's orders and their lines, stored reports, sales per day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import DataTable, Static

from tui.format import money, parse_time, when
from tui.modals.send_report import ReportRequest, SendReportModal
from tui.records import DailyTotals, Order, StoredReport
from tui.screens.base import ModeScreen
from tui.screens.dashboard import shop_zone
from tui.widgets.sales_chart import DaySales, SalesChart

# Orders come newest first, a page at a time, until one is older than today; a very busy
# day stops after this many pages rather than loading everything.
ORDER_PAGE = 100
MAX_ORDER_PAGES = 10
REPORTS_SHOWN = 30
CHART_DAYS = 14
WIDE_COLUMNS = 100
STATUS_STYLE = {"placed": "", "paid": "green", "cancelled": "dim", "refunded": "dark_orange"}
W = TypeVar("W", bound=Widget)


class OrdersScreen(ModeScreen):
    """Today's orders (select one to see its lines), the reports sent, and a sales chart."""

    TITLE = "Orders and reports"
    BINDINGS = [
        Binding("r", "refresh_orders", "Refresh"),
        Binding("s", "send_report", "Send report"),
    ]
    DEFAULT_CSS = """
    OrdersScreen #orders-summary { height: 1; padding: 0 1; }
    OrdersScreen #orders-grid {
        grid-size: 2 2;
        grid-columns: 1fr 1fr;
        grid-rows: 1fr 1fr;
    }
    OrdersScreen.-narrow #orders-grid { grid-columns: 1fr 1fr; }
    OrdersScreen .panel {
        border: round $primary 50%;
        border-title-color: $text-accent;
        height: 1fr;
    }
    OrdersScreen .panel:focus-within { border: round $accent; }
    OrdersScreen DataTable { scrollbar-size-horizontal: 0; }
    OrdersScreen SalesChart { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[int, Order] = {}
        self.product_names: dict[int, str] = {}
        self.today: date | None = None
        self.zone = ZoneInfo("UTC")
        self.currency = ""
        self._shown_order: int | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("asking the daemon…", id="orders-summary")
        with Grid(id="orders-grid"):
            yield self._panel(DataTable(id="orders", cursor_type="row"), "Today's orders")
            yield self._panel(DataTable(id="lines", cursor_type="row"), "Lines")
            yield self._panel(DataTable(id="reports", cursor_type="row"), "Reports")
            yield self._panel(SalesChart(id="chart"), f"Sales per day, last {CHART_DAYS}")

    @staticmethod
    def _panel(widget: W, title: str) -> W:
        widget.add_class("panel")
        widget.border_title = title
        return widget

    def on_mount(self) -> None:
        self.query_one("#orders", DataTable).add_columns("#", "time", "status", "total")
        self.query_one("#lines", DataTable).add_columns("product", "qty", "price", "total")
        self.query_one("#reports", DataTable).add_columns(
            "kind", "period", "orders", "sales", "made"
        )
        super().on_mount()

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < WIDE_COLUMNS, "-narrow")
        # Product names are cut to the lines panel's width, which just changed.
        self.call_after_refresh(self.show_lines, self._shown_order)

    def refresh_data(self) -> None:
        self.load_orders()
        self.load_reports()

    def action_refresh_orders(self) -> None:
        self.refresh_data()

    # -- today's orders and their lines --------------------------------------------------

    @work(exclusive=True, group="orders-load", exit_on_error=False)
    async def load_orders(self) -> None:
        stats = await self.api.stats()
        self.zone = shop_zone(stats.shop)
        self.currency = stats.shop.currency
        self.today = date.fromisoformat(stats.today.date)
        found: list[Order] = []
        complete = False
        for page in range(MAX_ORDER_PAGES):
            batch = await self.api.orders(limit=ORDER_PAGE, offset=page * ORDER_PAGE)
            todays = [order for order in batch if self._is_today(order)]
            found.extend(todays)
            if len(todays) < len(batch) or len(batch) < ORDER_PAGE:
                complete = True
                break
        self.show_orders(found, complete)

    def _is_today(self, order: Order) -> bool:
        moment = parse_time(order.created_at)
        return moment is not None and moment.astimezone(self.zone).date() == self.today

    def _now(self) -> datetime:
        return self.shop.clock().astimezone(self.zone)

    def show_orders(self, orders: Sequence[Order], complete: bool) -> None:
        table = self.query_one("#orders", DataTable)
        keep = table.cursor_row
        table.clear()
        self.orders = {order.id: order for order in orders}
        now = self._now()
        for order in orders:
            table.add_row(
                str(order.id),
                when(order.created_at, now),
                Text(order.status, style=STATUS_STYLE.get(order.status, "")),
                Text(order.total, justify="right"),
                key=str(order.id),
            )
        sold = [o for o in orders if o.status in ("placed", "paid")]
        total = sum(o.total_minor for o in sold)
        currency = orders[0].currency if orders else self.currency
        day = self.today.isoformat() if self.today else "today"
        more = "" if complete else f" (the newest {len(orders)} shown)"
        self.query_one("#orders-summary", Static).update(
            Text.assemble(
                (f"Today {day}: ", "bold"),
                f"{len(orders)} orders{more}, sales ",
                (money(total, currency), "bold"),
            )
        )
        if orders:
            table.move_cursor(row=min(max(keep, 0), len(orders) - 1))
            self.show_lines(orders[table.cursor_row].id)
        else:
            self.show_lines(None)

    @on(DataTable.RowHighlighted, "#orders")
    def _order_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.show_lines(int(event.row_key.value))

    def show_lines(self, order_id: int | None) -> None:
        self._shown_order = order_id
        table = self.query_one("#lines", DataTable)
        table.clear()
        panel_title = "Lines"
        order = self.orders.get(order_id) if order_id is not None else None
        if order is None:
            table.border_title = panel_title
            return
        table.border_title = f"Lines of order {order_id} · {order.total}"
        missing = []
        # What the other three columns and the cell padding take; the name gets the rest.
        room = max(8, table.size.width - 24)
        for line in order.lines:
            product = line.product_id
            name = self.product_names.get(product)
            if name is None:
                missing.append(product)
            name = name or f"product {product}"
            table.add_row(
                name if len(name) <= room else name[: room - 1] + "…",
                str(line.quantity),
                Text(line.unit_price, justify="right"),
                Text(line.line_total, justify="right"),
            )
        if missing:
            self.load_product_names(sorted(set(missing)))

    @work(exclusive=True, group="orders-products", exit_on_error=False)
    async def load_product_names(self, product_ids: list[int]) -> None:
        """Names for the lines shown: one small read per product not seen before."""
        for product_id in product_ids:
            self.product_names[product_id] = await self.api.product_name(product_id)
        self.show_lines(self._shown_order)

    # -- reports and the sales chart ------------------------------------------------------

    @work(exclusive=True, group="orders-reports", exit_on_error=False)
    async def load_reports(self) -> None:
        reports = await self.api.reports(limit=REPORTS_SHOWN)
        totals = await self.api.daily_totals(days=CHART_DAYS)
        self.show_reports(reports)
        self.show_chart(totals)

    def show_reports(self, reports: Sequence[StoredReport]) -> None:
        table = self.query_one("#reports", DataTable)
        table.clear()
        now = self._now()
        for report in reports:
            start, end = report.start, report.end
            period = start if start == end else f"{start[5:]}→{end[5:]}"
            table.add_row(
                report.kind,
                period,
                str(report.orders),
                Text(report.total, justify="right"),
                when(report.generated_at, now),
                key=str(report.id),
            )
        if not reports:
            table.add_row("none yet", "", "", "", "")

    def show_chart(self, totals: DailyTotals) -> None:
        currency = totals.currency or self.currency
        days = [
            DaySales(
                label=date.fromisoformat(day.day).strftime("%a %d"),
                total_minor=day.total_minor,
                shown=day.total,
                orders=day.orders,
            )
            for day in totals.days
        ]
        chart = self.query_one(SalesChart)
        chart.border_title = f"Sales per day ({currency}), last {len(days) or CHART_DAYS}"
        chart.show_days(days)

    # -- sending a report now -------------------------------------------------------------

    def action_send_report(self) -> None:
        today = self.today or self.shop.clock().astimezone(self.zone).date()
        self.app.push_screen(SendReportModal(today), self._send_chosen)

    def _send_chosen(self, request: ReportRequest | None) -> None:
        if request is not None:
            self.send_report(request)

    @work(exclusive=True, group="orders-send", exit_on_error=False)
    async def send_report(self, request: ReportRequest) -> None:
        sent = await self.api.send_report(request.kind, request.day)
        self.notify(
            sent.message,
            title="Report queued" if sent.queued else "Report stored",
            severity="information" if sent.queued else "warning",
        )
        self.load_reports()
