"""Sales reports over HTTP: the supermarket's three report paths and /api/v1/reports.

Dates are the shop's local days ([shop] timezone); a range includes both ends.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from daemon.api.accounts import backoffice, require_actor
from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.api.products import price_minor
from daemon.runtime.clock import utc_iso
from daemon.services.backoffice import report_mail
from daemon.services.backoffice.money import to_text
from daemon.services.backoffice.periods import days_range
from daemon.services.backoffice.reports import Reports, check_range
from daemon.services.outbox.service import EnqueueError
from storage import reports as report_store
from storage.models import Report

# Every route here needs reports.read (`_reports`).
router = APIRouter(responses=errors_for((403, "This login's role may not read reports")))
Ctx = Annotated[ApiContext, Depends(get_ctx)]


DEFAULT_THRESHOLD = "1000.00"
Days = Annotated[int, Query(ge=1, le=366)]
Day = Annotated[date | None, Query(description="a local date, YYYY-MM-DD")]


class ItemsPurchased(BaseModel):
    success: bool = True
    start: date
    end: date
    total_items_purchased: int
    total_items: int = Field(description="the same number, under the supermarket's key")


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


class ShampooSalesOut(CategorySalesOut):
    # The supermarket's code answered its SQL SUM under this key: a number, not text.
    total_shampoo_sales_last_week: float = Field(description="total_sales as a number")


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
            400, f"query.end: {exc}", errors=[{"field": "query.end", "rule": str(exc)}]
        ) from None
    return first, last


@router.get("/total_items_purchased", summary="Items purchased between two local dates")
async def total_items_purchased(
    request: Request,
    ctx: Ctx,
    # start_date and end_date: the names the supermarket's code read (app.py).
    start: Annotated[
        date,
        Query(validation_alias=AliasChoices("start", "start_date"), description="YYYY-MM-DD"),
    ],
    end: Annotated[
        date, Query(validation_alias=AliasChoices("end", "end_date"), description="YYYY-MM-DD")
    ],
) -> ItemsPurchased:
    reports = await _reports(request, ctx)
    first, last = _range(reports, start, end)
    total = await reports.items_purchased(first, last)
    return ItemsPurchased(start=first, end=last, total_items_purchased=total, total_items=total)


# The supermarket's code answered a bare list of {First_Name, Last_Name,
# Total_purchase_amount}, summed over all time; a list cannot also carry shopbell's fields, so
# this stays an object (users[]) and follows the README: per customer and local day.
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


async def _shampoo(request: Request, ctx: ApiContext) -> ShampooSalesOut:
    """Category "shampoo"; and, as the supermarket summed rows with Item = 'Shampoo' and its
    items have no category, a product without a category counts when its name is Shampoo."""
    reports = await _reports(request, ctx)
    office = backoffice(ctx)
    first, last = reports.last_days(7)
    start, end = days_range(first, last, office.zone)

    def read(db: Any) -> tuple[int, int]:
        row = db.execute(
            "SELECT coalesce(sum(l.quantity), 0), coalesce(sum(l.line_total_minor), 0) "
            "FROM orders o JOIN order_lines l ON l.order_id = o.id "
            "JOIN products p ON p.id = l.product_id "
            "WHERE o.status IN ('placed', 'paid') AND o.created_at >= ? AND o.created_at < ? "
            "AND (p.category = 'shampoo' COLLATE NOCASE OR ((p.category IS NULL "
            "OR trim(p.category) = '') AND trim(p.name) = 'shampoo' COLLATE NOCASE))",
            [start, end],
        ).fetchone()
        return int(row[0]), int(row[1])

    items, amount = await office.db.execute(read)
    total = to_text(amount, office.currency)
    return ShampooSalesOut(
        category="shampoo",
        days=7,
        start=first,
        end=last,
        items=items,
        total_sales=total,
        total_sales_minor=amount,
        currency=office.currency,
        total_shampoo_sales_last_week=float(total),
    )


# The README's path and the code's path: the same report, the same answer.
@router.get("/total_sales_shampoo_last_7_days", summary="Shampoo sales over the last 7 days")
async def total_sales_shampoo_last_7_days(request: Request, ctx: Ctx) -> ShampooSalesOut:
    return await _shampoo(request, ctx)


@router.get(
    "/total_shampoo_sales_last_week",
    summary="Shampoo sales over the last 7 days (the supermarket code's path)",
)
async def total_shampoo_sales_last_week(request: Request, ctx: Ctx) -> ShampooSalesOut:
    return await _shampoo(request, ctx)


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


# -- stored reports, and sending one now -------------------------------------------------
# Declared last: "/api/v1/reports/{report_id}" must not shadow the named report paths above.

ReportKindIn = Literal["daily", "weekly"]


class StoredReportOut(BaseModel):
    id: int
    kind: str
    start: date
    end: date
    generated_at: str
    sent_at: str | None
    orders: int
    items: int
    total: str
    total_minor: int
    currency: str
    content: dict[str, Any]

    @classmethod
    def of(cls, report: Report, currency: str) -> StoredReportOut:
        content = report.content
        # The currency the report was made in, should [shop] currency change later.
        made_in = str(content.get("currency") or currency)
        total = int(content.get("total_minor", 0))
        return cls(
            id=report.id,
            kind=report.kind,
            start=date.fromisoformat(str(content.get("start", report.period_start.date()))),
            end=date.fromisoformat(str(content.get("end", report.period_end.date()))),
            generated_at=utc_iso(report.generated_at),
            sent_at=utc_iso(report.sent_at) if report.sent_at else None,
            orders=int(content.get("orders", 0)),
            items=int(content.get("items", 0)),
            total=to_text(total, made_in),
            total_minor=total,
            currency=made_in,
            content=content,
        )


class StoredReports(BaseModel):
    success: bool = True
    reports: list[StoredReportOut]


class StoredReportResponse(BaseModel):
    success: bool = True
    report: StoredReportOut


class SendReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReportKindIn
    # Named `day` here (a field called `date` would hide the type), `date` on the wire.
    day: date | None = Field(
        default=None,
        alias="date",
        description="a local day in the period; default: the last whole one",
    )


class SentReportOut(BaseModel):
    success: bool = True
    message: str
    report: StoredReportOut
    queued: list[int]


@router.get("/api/v1/reports", summary="Stored daily and weekly reports, newest first")
async def list_stored_reports(
    request: Request,
    ctx: Ctx,
    kind: ReportKindIn | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="page on: last id")] = None,
) -> StoredReports:
    await _reports(request, ctx)
    office = backoffice(ctx)
    found = await office.db.execute(
        lambda db: report_store.list_reports(db, kind=kind, limit=limit, before_id=before)
    )
    return StoredReports(reports=[StoredReportOut.of(r, office.currency) for r in found])


@router.get("/api/v1/reports/{report_id}", summary="One stored report", responses=errors_for(404))
async def stored_report(
    report_id: Annotated[int, PathParam(ge=1, le=2**62)], request: Request, ctx: Ctx
) -> StoredReportResponse:
    await _reports(request, ctx)
    office = backoffice(ctx)
    found = await office.db.execute(lambda db: report_store.get_report(db, report_id))
    if found is None:
        raise ApiError(404, f"no report with id {report_id}")
    return StoredReportResponse(report=StoredReportOut.of(found, office.currency))


@router.post(
    "/api/v1/reports/send",
    summary="Build, store and queue a report now",
    responses=errors_for((409, "Stored, but a recipient refuses messages (opted out)"), 503),
)
async def send_report_now(body: SendReportIn, request: Request, ctx: Ctx) -> SentReportOut:
    """What the scheduled report job does, for the period holding `date` (default: the last
    whole day or Monday-to-Sunday week)."""
    await _reports(request, ctx)
    office = backoffice(ctx)
    if ctx.outbox is None:
        raise ApiError(503, "the outbox is not available (the daemon is starting)")
    if body.day is not None and body.day > Reports(office).today():
        raise ApiError(
            400,
            "body.date: must not be after today (the shop's day)",
            errors=[{"field": "body.date", "rule": "must not be after today (the shop's day)"}],
        )
    try:
        done = await report_mail.run(office, ctx.outbox, ctx.settings, body.kind, body.day)
    except EnqueueError as exc:
        # The report is stored (GET /api/v1/reports lists it); its message was refused.
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        raise ApiError(
            exc.status, f"the report is stored but not queued: {exc.rule}", headers=headers
        ) from None
    out = StoredReportOut.of(done.stored, office.currency)
    if done.message_ids:
        said = f"{body.kind} report {report_mail.span(done.report)} queued to "
        said += f"{len(done.message_ids)} recipient" + ("s" if len(done.message_ids) > 1 else "")
    else:
        said = (
            f"{body.kind} report {report_mail.span(done.report)} stored; nobody to send it to "
            "(set [reports] recipients or owner_phone)"
        )
    return SentReportOut(message=said, report=out, queued=list(done.message_ids))
