"""Sales reports over HTTP: the supermarket's three report paths and /api/v1/reports.

Dates are the shop's local days ([shop] timezone); a range includes both ends.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from daemon.api.accounts import backoffice, require_actor
from daemon.api.auth import register_login_prefix
from daemon.api.context import ApiContext, get_ctx
from daemon.api.errors import ApiError
from daemon.api.products import price_minor
from daemon.backoffice.money import to_text
from daemon.backoffice.reports import Reports, check_range

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]

for _prefix in (
    "/total_items_purchased",
    "/high_value_users",
    "/total_sales_shampoo_last_7_days",
    "/api/v1/reports",
):
    register_login_prefix(_prefix)

DEFAULT_THRESHOLD = "1000.00"
Days = Annotated[int, Query(ge=1, le=366)]
Day = Annotated[date | None, Query(description="a local date, YYYY-MM-DD")]


class ItemsPurchased(BaseModel):
    success: bool = True
    start: date
    end: date
    total_items_purchased: int


class HighValueUserOut(BaseModel):
    account_id: int
    username: str | None
    day: date
    spent: str
    spent_minor: int


class HighValueUsers(BaseModel):
    success: bool = True
    start: date
    end: date
    threshold: str
    threshold_minor: int
    currency: str
    users: list[HighValueUserOut]


class CategorySalesOut(BaseModel):
    success: bool = True
    category: str
    days: int
    start: date
    end: date
    items: int
    total_sales: str
    total_sales_minor: int
    currency: str


class TopProductOut(BaseModel):
    product_id: int
    name: str
    category: str | None
    quantity: int
    amount: str
    amount_minor: int


class TopProducts(BaseModel):
    success: bool = True
    start: date
    end: date
    currency: str
    products: list[TopProductOut]


class DayTotalOut(BaseModel):
    day: date
    orders: int
    total: str
    total_minor: int


class DailyTotals(BaseModel):
    success: bool = True
    start: date
    end: date
    currency: str
    days: list[DayTotalOut]


async def _reports(request: Request, ctx: ApiContext) -> Reports:
    await require_actor(request, ctx, "reports.read")
    return Reports(backoffice(ctx))


def _range(reports: Reports, start: date | None, end: date | None) -> tuple[date, date]:
    today = reports.today()
    first, last = start or end or today, end or start or today
    try:
        check_range(first, last)
    except ValueError as exc:
        raise ApiError(
            422, f"query.end: {exc}", errors=[{"field": "query.end", "rule": str(exc)}]
        ) from None
    return first, last


@router.get("/total_items_purchased", summary="Items purchased between two local dates")
async def total_items_purchased(
    request: Request, ctx: Ctx, start: Annotated[date, Query()], end: Annotated[date, Query()]
) -> ItemsPurchased:
    reports = await _reports(request, ctx)
    first, last = _range(reports, start, end)
    total = await reports.items_purchased(first, last)
    return ItemsPurchased(start=first, end=last, total_items_purchased=total)


@router.get("/high_value_users", summary="Customers who spent more than a threshold in one day")
async def high_value_users(
    request: Request,
    ctx: Ctx,
    threshold: Annotated[str, Query(max_length=20)] = DEFAULT_THRESHOLD,
    start: Day = None,
    end: Day = None,
) -> HighValueUsers:
    reports = await _reports(request, ctx)
    currency = backoffice(ctx).currency
    limit = price_minor(threshold, currency, field="query.threshold")
    first, last = _range(reports, start, end)
    found = await reports.high_value_users(first, last, limit)
    return HighValueUsers(
        start=first,
        end=last,
        threshold=to_text(limit, currency),
        threshold_minor=limit,
        currency=currency,
        users=[
            HighValueUserOut(
                account_id=user.account_id,
                username=user.username,
                day=user.day,
                spent=to_text(user.spent_minor, currency),
                spent_minor=user.spent_minor,
            )
            for user in found
        ],
    )


async def _category(
    request: Request, ctx: ApiContext, category: str, days: int
) -> CategorySalesOut:
    reports = await _reports(request, ctx)
    currency = backoffice(ctx).currency
    sales = await reports.category_sales(category, days)
    return CategorySalesOut(
        category=category,
        days=days,
        start=sales.first,
        end=sales.last,
        items=sales.items,
        total_sales=to_text(sales.amount_minor, currency),
        total_sales_minor=sales.amount_minor,
        currency=currency,
    )


@router.get("/total_sales_shampoo_last_7_days", summary="Shampoo sales over the last 7 days")
async def total_sales_shampoo_last_7_days(request: Request, ctx: Ctx) -> CategorySalesOut:
    return await _category(request, ctx, "shampoo", 7)


@router.get("/api/v1/reports/category-sales", summary="A category's sales over the last N days")
async def category_sales(
    request: Request,
    ctx: Ctx,
    category: Annotated[str, Query(min_length=1, max_length=200)],
    days: Days = 7,
) -> CategorySalesOut:
    return await _category(request, ctx, category, days)


@router.get("/api/v1/reports/top-products", summary="Best sellers between two local dates")
async def top_products(
    request: Request,
    ctx: Ctx,
    start: Day = None,
    end: Day = None,
    days: Annotated[int | None, Query(ge=1, le=366)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> TopProducts:
    reports = await _reports(request, ctx)
    currency = backoffice(ctx).currency
    first, last = reports.last_days(days) if days else _range(reports, start, end)
    found = await reports.top_products(first, last, limit)
    return TopProducts(
        start=first,
        end=last,
        currency=currency,
        products=[
            TopProductOut(
                product_id=row.product_id,
                name=row.name,
                category=row.category,
                quantity=row.quantity,
                amount=to_text(row.amount_minor, currency),
                amount_minor=row.amount_minor,
            )
            for row in found
        ],
    )


@router.get("/api/v1/reports/daily-totals", summary="Orders and sales per local day")
async def daily_totals(
    request: Request,
    ctx: Ctx,
    start: Day = None,
    end: Day = None,
    days: Annotated[int | None, Query(ge=1, le=366)] = None,
) -> DailyTotals:
    reports = await _reports(request, ctx)
    currency = backoffice(ctx).currency
    first, last = reports.last_days(days) if days else _range(reports, start, end)
    found = await reports.daily_totals(first, last)
    return DailyTotals(
        start=first,
        end=last,
        currency=currency,
        days=[
            DayTotalOut(
                day=row.day,
                orders=row.orders,
                total=to_text(row.amount_minor, currency),
                total_minor=row.amount_minor,
            )
            for row in found
        ],
    )
