"""Sales figures by the shop's own days: local dates in, UTC ranges to storage, buckets out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from daemon.services.backoffice.periods import days_range, last_days, local_day
from daemon.services.backoffice.service import BackOffice
from storage import reports as store

MAX_DAYS = 5 * 366


@dataclass(frozen=True, slots=True)
class HighValueUser:
    """A customer who spent more than the threshold on one local day."""

    account_id: int
    username: str | None
    day: date
    spent_minor: int


@dataclass(frozen=True, slots=True)
class DayTotal:
    day: date
    orders: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class CategorySales:
    category: str
    first: date
    last: date
    items: int
    amount_minor: int


def check_range(first: date, last: date) -> None:
    """Raise ValueError for a range the reports refuse (backwards or too long)."""
    if last < first:
        raise ValueError("end is before start")
    if (last - first).days >= MAX_DAYS:
        raise ValueError(f"a range covers at most {MAX_DAYS} days")


class Reports:
    """The report queries of the back office; `office` gives the database, clock and zone."""

    def __init__(self, office: BackOffice) -> None:
        self._office = office

    def today(self) -> date:
        return local_day(self._office.clock.now(), self._office.zone)

    def last_days(self, days: int) -> tuple[date, date]:
        return last_days(self._office.clock.now(), days, self._office.zone)

    async def items_purchased(self, first: date, last: date) -> int:
        start, end = days_range(first, last, self._office.zone)
        return await self._office.db.execute(lambda db: store.items_purchased(db, start, end))

    def _day_bounds(self, first: date, last: date) -> tuple[list[date], list[tuple[str, str]]]:
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return days, [days_range(day, day, self._office.zone) for day in days]

    async def daily_totals(self, first: date, last: date) -> list[DayTotal]:
        days, bounds = self._day_bounds(first, last)
        totals = await self._office.db.execute(lambda db: store.totals_per_period(db, bounds))
        return [
            DayTotal(day, orders, amount)
            for day, (orders, amount) in zip(days, totals, strict=True)
        ]

    async def high_value_users(
        self, first: date, last: date, threshold_minor: int
    ) -> list[HighValueUser]:
        """Customers whose orders on one local day add up to more than the threshold."""
        days, bounds = self._day_bounds(first, last)
        found = await self._office.db.execute(
            lambda db: store.spend_above(db, bounds, threshold_minor)
        )
        return [
            HighValueUser(row.account_id, row.username, days[row.period], row.spent_minor)
            for row in found
        ]

    async def category_sales(self, category: str, days: int) -> CategorySales:
        first, last = self.last_days(days)
        start, end = days_range(first, last, self._office.zone)
        items, amount = await self._office.db.execute(
            lambda db: store.category_sales(db, category, start, end)
        )
        return CategorySales(category, first, last, items, amount)

    async def top_products(self, first: date, last: date, limit: int) -> list[store.ProductSales]:
        start, end = days_range(first, last, self._office.zone)
        return await self._office.db.execute(
            lambda db: store.top_products(db, start, end, limit=limit)
        )
