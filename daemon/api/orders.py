"""Orders over HTTP: the supermarket's /purchase, the shop API's /api/orders, /api/v1/orders.

An order takes its prices from the catalogue at that moment and its stock in the same
transaction; not enough of one product refuses the whole order (409) and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from daemon.api.accounts import backoffice, require_actor
from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.runtime.clock import utc_iso
from daemon.services.backoffice.money import to_text
from daemon.services.backoffice.roles import Actor, can
from storage import accounts as account_store
from storage import orders as store
from storage.products import UnknownProductError

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]
OrderId = Annotated[int, PathParam(ge=1, le=2**62)]


MAX_LINES = 200


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LineIn(_Body):
    product_id: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=2**62,
        validation_alias=AliasChoices("product_id", "item_id", "id"),
    )
    # The supermarket's /purchase named the item (`Item`: a product name), not its id.
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        validation_alias=AliasChoices("name", "Item", "item"),
        description="a product's name, when no product_id is given",
    )
    quantity: int = Field(
        strict=True,
        gt=0,
        le=100_000,
        description="a whole number above 0",
        validation_alias=AliasChoices("quantity", "Quantity"),
    )

    @model_validator(mode="after")
    def _named(self) -> LineIn:
        if self.product_id is None and self.name is None:
            raise ValueError("give product_id (or the product's name)")
        return self


class OrderIn(_Body):
    """shopbell's order, or the supermarket's purchase: User_id, Item, Quantity at the top.

    That body's Rate and Date_of_purchase are accepted and ignored: the price is the
    catalogue's at this moment and the date is the daemon's clock, so a till cannot sell
    below the shelf price or file a sale under another day's report.
    """

    items: list[LineIn] = Field(
        min_length=1, max_length=MAX_LINES, validation_alias=AliasChoices("items", "products")
    )
    account_id: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=2**62,
        description="staff only: the customer it is for",
        validation_alias=AliasChoices("account_id", "User_id", "user_id"),
    )
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="before")
    @classmethod
    def _one_item(cls, data: Any) -> Any:
        # The supermarket's /purchase took one item at the top level.
        single = isinstance(data, dict) and "items" not in data and "products" not in data
        if single and any(key in data for key in ("product_id", "item_id", "Item", "item")):
            return {**data, "items": [data]}
        return data


class LineOut(BaseModel):
    product_id: int
    quantity: int
    unit_price: str
    unit_price_minor: int
    line_total: str
    line_total_minor: int


class OrderOut(BaseModel):
    id: int
    account_id: int | None
    status: str
    total: str
    total_minor: int
    currency: str
    note: str | None
    created_at: str
    lines: list[LineOut]


class OrderResponse(BaseModel):
    success: bool = True
    message: str | None = None
    order: OrderOut


class OrdersResponse(BaseModel):
    success: bool = True
    orders: list[OrderOut]


def order_out(placed: store.PlacedOrder, currency: str) -> OrderOut:
    order = placed.order
    return OrderOut(
        id=order.id,
        account_id=order.account_id,
        status=order.status,
        total=to_text(order.total_minor, currency),
        total_minor=order.total_minor,
        currency=currency,
        note=order.note,
        created_at=order.created_at.isoformat(),
        lines=[
            LineOut(
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price=to_text(line.unit_price_minor, currency),
                unit_price_minor=line.unit_price_minor,
                line_total=to_text(line.line_total_minor, currency),
                line_total_minor=line.line_total_minor,
            )
            for line in placed.lines
        ],
    )


async def _buyer(ctx: ApiContext, actor: Actor, wanted: int | None) -> int | None:
    """Whose order it is: a customer's own; staff may name a customer (or none: a till sale)."""
    if not can(actor.role, "orders.for_others"):
        if wanted is not None and wanted != actor.account_id:
            raise ApiError(403, "a customer can only order for themselves")
        return actor.account_id
    if wanted is None:
        return None
    account = await backoffice(ctx).db.execute(lambda db: account_store.get_account(db, wanted))
    if account is None:
        raise ApiError(
            400,
            f"body.account_id: no account with id {wanted}",
            errors=[{"field": "body.account_id", "rule": "must be an existing account"}],
        )
    return wanted


async def _line_ids(ctx: ApiContext, lines: list[LineIn]) -> list[tuple[int, int]]:
    """(product id, quantity) per line; a line given by name is looked up among the products
    on sale, ignoring case. A name that matches none, or several, is refused with 400 rather
    than guessed: the wrong product would be charged and taken from stock."""
    names = sorted({line.name for line in lines if line.product_id is None and line.name})

    def read(db: Any) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for name in names:
            rows = db.execute(
                "SELECT id FROM products WHERE active = 1 AND name = ? COLLATE NOCASE "
                "ORDER BY id LIMIT 2",
                [name.strip()],
            ).fetchall()
            found[name] = [int(row[0]) for row in rows]
        return found

    ids = await backoffice(ctx).db.execute(read) if names else {}
    result = []
    for line in lines:
        if line.product_id is not None:
            result.append((line.product_id, line.quantity))
            continue
        assert line.name is not None  # LineIn._named
        matches = ids[line.name]
        if len(matches) != 1:
            rule = "must name a product on sale" if not matches else "names several products"
            hint = "" if not matches else "; send product_id"
            raise ApiError(
                400,
                f"body.Item: {line.name!r} {rule}{hint}",
                errors=[{"field": "body.Item", "rule": rule}],
            )
        result.append((matches[0], line.quantity))
    return result


async def _place(request: Request, ctx: ApiContext, body: OrderIn) -> OrderResponse:
    actor = await require_actor(request, ctx)
    office = backoffice(ctx)
    buyer = await _buyer(ctx, actor, body.account_id)
    items = await _line_ids(ctx, body.items)
    now = utc_iso(office.clock.now())
    try:
        placed = await office.db.write(
            lambda db: store.place_order(db, account_id=buyer, items=items, now=now, note=body.note)
        )
    except store.OutOfStockError as exc:
        raise ApiError(
            409,
            str(exc),
            product_id=exc.product_id,
            product=exc.name,
            requested=exc.requested,
            available=exc.available,
        ) from None
    except store.InactiveProductError as exc:
        raise ApiError(409, str(exc), product_id=exc.product_id, product=exc.name) from None
    except UnknownProductError as exc:
        raise ApiError(
            400,
            f"body.items: {exc}",
            errors=[{"field": "body.items", "rule": str(exc)}],
            product_id=exc.product_id,
        ) from None
    return OrderResponse(message="order placed", order=order_out(placed, office.currency))


async def _list(
    request: Request, ctx: ApiContext, account_id: int | None, limit: int, offset: int
) -> OrdersResponse:
    actor = await require_actor(request, ctx)
    if not can(actor.role, "orders.read_all"):
        if account_id is not None and account_id != actor.account_id:
            raise ApiError(403, "a customer sees only their own orders")
        account_id = actor.account_id
    office = backoffice(ctx)
    found = await office.db.execute(
        lambda db: store.list_orders(db, account_id=account_id, limit=limit, offset=offset)
    )
    return OrdersResponse(orders=[order_out(placed, office.currency) for placed in found])


async def _one(request: Request, ctx: ApiContext, order_id: int) -> OrderResponse:
    actor = await require_actor(request, ctx)
    office = backoffice(ctx)
    placed = await office.db.execute(lambda db: store.get_order(db, order_id))
    mine = placed is not None and placed.order.account_id == actor.account_id
    # Someone else's order is "not found", so ids do not tell how many orders exist.
    if placed is None or not (mine or can(actor.role, "orders.read_all")):
        raise ApiError(404, f"no order with id {order_id}")
    return OrderResponse(order=order_out(placed, office.currency))


ORDER_ERRORS = errors_for(
    (403, "A customer orders only for themselves"),
    (409, "A product is out of stock or no longer on sale"),
)
LIST_ERRORS = errors_for((403, "A customer sees only their own orders"))
ONE_ERRORS = errors_for((404, "No such order, or not this customer's"))

AccountFilter = Annotated[int | None, Query(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=2**62)]


@router.post(
    "/purchase",
    status_code=201,
    summary="Record a purchase (supermarket backend)",
    responses=ORDER_ERRORS,
)
async def purchase(body: OrderIn, request: Request, ctx: Ctx) -> OrderResponse:
    return await _place(request, ctx, body)


@router.post(
    "/api/orders/create",
    status_code=201,
    summary="Create an order (shop API)",
    responses=ORDER_ERRORS,
)
async def create_order(body: OrderIn, request: Request, ctx: Ctx) -> OrderResponse:
    return await _place(request, ctx, body)


@router.get(
    "/api/orders",
    summary="Orders: a customer's own, or all for staff (shop API)",
    responses=LIST_ERRORS,
)
async def orders(
    request: Request,
    ctx: Ctx,
    account_id: AccountFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> OrdersResponse:
    return await _list(request, ctx, account_id, limit, offset)


@router.get(
    "/api/orders/{order_id}",
    summary="One order (shop API)",
    responses=ONE_ERRORS,
)
async def order(order_id: OrderId, request: Request, ctx: Ctx) -> OrderResponse:
    return await _one(request, ctx, order_id)


@router.post(
    "/api/v1/orders",
    status_code=201,
    summary="Place an order",
    responses=ORDER_ERRORS,
)
async def v1_create(body: OrderIn, request: Request, ctx: Ctx) -> OrderResponse:
    return await _place(request, ctx, body)


@router.get(
    "/api/v1/orders",
    summary="Orders, newest first: a customer's own, or all for staff",
    responses=LIST_ERRORS,
)
async def v1_list(
    request: Request,
    ctx: Ctx,
    account_id: AccountFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> OrdersResponse:
    return await _list(request, ctx, account_id, limit, offset)


@router.get(
    "/api/v1/orders/{order_id}",
    summary="One order",
    responses=ONE_ERRORS,
)
async def v1_one(order_id: OrderId, request: Request, ctx: Ctx) -> OrderResponse:
    return await _one(request, ctx, order_id)
