"""Daily and weekly sales reports built from the report queries, stored in `reports`.

A day is the shop's local day; a week runs Monday to Sunday in the shop's time zone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from daemon.runtime.clock import utc_iso
from daemon.services.backoffice.money import to_minor, to_text
from daemon.services.backoffice.periods import days_range
from daemon.services.backoffice.reports import DayTotal, HighValueUser, Reports
from daemon.services.backoffice.service import BackOffice
from storage import reports as store
from storage.models import Report

ReportKind = Literal["daily", "weekly"]
HIGH_VALUE_THRESHOLD = "1000"
TOP_PRODUCTS = 5


@dataclass(frozen=True, slots=True)
class SalesReport:
    """The figures of one report period."""

    kind: ReportKind
    first: date
    last: date
    items: int
    days: list[DayTotal]
    top: list[store.ProductSales]
    high_value: list[HighValueUser]
    threshold_minor: int

    @property
    def orders(self) -> int:
        return sum(day.orders for day in self.days)

    @property
    def amount_minor(self) -> int:
        return sum(day.amount_minor for day in self.days)


def period(kind: ReportKind, day: date) -> tuple[date, date]:
    """The day itself, or the Monday-to-Sunday week that holds it."""
    if kind == "daily":
        return day, day
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


async def build(office: BackOffice, kind: ReportKind, day: date) -> SalesReport:
    reports = Reports(office)
    first, last = period(kind, day)
    threshold = to_minor(HIGH_VALUE_THRESHOLD, office.currency)
    return SalesReport(
        kind=kind,
        first=first,
        last=last,
        items=await reports.items_purchased(first, last),
        days=await reports.daily_totals(first, last),
        top=await reports.top_products(first, last, TOP_PRODUCTS),
        high_value=await reports.high_value_users(first, last, threshold),
        threshold_minor=threshold,
    )


def content(report: SalesReport, currency: str) -> dict[str, Any]:
    """The report as JSON, as stored in `reports.content`."""
    return {
        "kind": report.kind,
        "start": report.first.isoformat(),
        "end": report.last.isoformat(),
        "currency": currency,
        "orders": report.orders,
        "items": report.items,
        "total_minor": report.amount_minor,
        "days": [
            {"day": d.day.isoformat(), "orders": d.orders, "total_minor": d.amount_minor}
            for d in report.days
        ],
        "top_products": [
            {
                "product_id": p.product_id,
                "name": p.name,
                "quantity": p.quantity,
                "amount_minor": p.amount_minor,
            }
            for p in report.top
        ],
        "high_value_threshold_minor": report.threshold_minor,
        "high_value_users": [
            {
                "account_id": u.account_id,
                "username": u.username,
                "day": u.day.isoformat(),
                "spent_minor": u.spent_minor,
            }
            for u in report.high_value
        ],
    }


def text(report: SalesReport, currency: str, shop: str) -> str:
    """The report as plain text (what an e-mail's text part would carry)."""

    def money(minor: int) -> str:
        return f"{to_text(minor, currency)} {currency}"

    span = (
        report.first.isoformat()
        if report.first == report.last
        else f"{report.first.isoformat()} to {report.last.isoformat()}"
    )
    lines = [
        f"{shop}: {report.kind} sales report, {span}",
        "",
        f"orders: {report.orders}",
        f"items sold: {report.items}",
        f"sales: {money(report.amount_minor)}",
    ]
    if report.kind == "weekly":
        lines += ["", "per day:"]
        lines += [
            f"  {d.day.isoformat()}  {d.orders:>5} orders  {money(d.amount_minor)}"
            for d in report.days
        ]
    lines += ["", "top products:"]
    lines += [f"  {p.name}: {p.quantity} sold, {money(p.amount_minor)}" for p in report.top] or [
        "  none"
    ]
    lines += ["", f"customers over {money(report.threshold_minor)} in a day:"]
    lines += [
        f"  {u.username or u.account_id} on {u.day.isoformat()}: {money(u.spent_minor)}"
        for u in report.high_value
    ] or ["  none"]
    return "\n".join(lines) + "\n"


async def save(office: BackOffice, report: SalesReport) -> Report:
    """Store the report; running it again for the same period replaces the stored one."""
    start, end = days_range(report.first, report.last, office.zone)
    body = json.dumps(content(report, office.currency), ensure_ascii=False)
    now = utc_iso(office.clock.now())
    return await office.db.write(
        lambda db: store.save_report(
            db, kind=report.kind, period_start=start, period_end=end, generated_at=now, content=body
        )
    )
