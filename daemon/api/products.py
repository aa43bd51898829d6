"""Products over HTTP: the supermarket's item routes, the shop API's public catalogue, and
/api/v1/products for full management and stock adjustments.

The supermarket backend put the caller's designation in the path; here the role comes from
the login token and the designation is only checked against it, never trusted on its own.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from daemon.api.accounts import backoffice, require_actor
from daemon.api.auth import register_login_prefix, register_public_prefix
from daemon.api.context import ApiContext, get_ctx
from daemon.api.errors import ApiError
from daemon.backoffice.money import to_minor, to_text
from daemon.backoffice.roles import Actor, Permission, can, designation_matches
from daemon.clock import utc_iso
from storage import products as store
from storage.models import PriceChange, Product

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]
ProductId = Annotated[int, PathParam(ge=1, le=2**62)]

register_public_prefix("/api/products", methods=["GET", "HEAD"])
for _prefix in ("/api/products", "/api/v1/products", "/add_item", "/delete_item"):
    register_login_prefix(_prefix)
register_login_prefix("/update_item_rate")

Text = Annotated[str, Field(min_length=1, max_length=200)]
OptionalText = Annotated[str | None, Field(default=None, max_length=200)]
# A price as the shop writes it (12.50), checked against the currency's decimals.
Price = Annotated[StrictInt | StrictFloat | StrictStr, Field(union_mode="left_to_right")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProductIn(_Body):
    name: Text
    price: Price = Field(validation_alias=AliasChoices("price", "rate"))
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    brand: OptionalText = None
    category: OptionalText = None
    stock: int = Field(
        default=0, strict=True, ge=0, le=10**9, validation_alias=AliasChoices("stock", "quantity")
    )


class PriceIn(_Body):
    price: Price = Field(validation_alias=AliasChoices("price", "rate"))


class ProductChange(_Body):
    model_config = ConfigDict(extra="forbid")
    name: Text | None = None
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    brand: OptionalText = None
    category: OptionalText = None
    active: bool | None = Field(default=None, strict=True)
    price: Price | None = None


class StockIn(_Body):
    delta: int = Field(strict=True, ge=-(10**9), le=10**9, description="added (or, < 0, removed)")


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    brand: str | None
    category: str | None
    price: str
    price_minor: int
    currency: str
    stock: int
    active: bool


class PriceChangeOut(BaseModel):
    old_price_minor: int
    new_price_minor: int
    account_id: int | None
    changed_at: str


class ProductResponse(BaseModel):
    success: bool = True
    message: str | None = None
    product: ProductOut
    price_changes: list[PriceChangeOut] | None = None


class ItemResponse(BaseModel):
    success: bool = True
    message: str
    item: ProductOut


class ProductsPage(BaseModel):
    success: bool = True
    products: list[ProductOut]
    page: int
    per_page: int
    total: int
    pages: int


def product_out(product: Product, currency: str) -> ProductOut:
    return ProductOut(
        id=product.id,
        sku=product.sku,
        name=product.name,
        brand=product.brand,
        category=product.category,
        price=to_text(product.price_minor, currency),
        price_minor=product.price_minor,
        currency=currency,
        stock=product.stock,
        active=product.active,
    )


def _change_out(change: PriceChange) -> PriceChangeOut:
    return PriceChangeOut(
        old_price_minor=change.old_price_minor,
        new_price_minor=change.new_price_minor,
        account_id=change.account_id,
        changed_at=change.changed_at.isoformat(),
    )


def price_minor(value: Any, currency: str, field: str = "body.price") -> int:
    try:
        return to_minor(value, currency)
    except ValueError as exc:
        raise ApiError(
            422, f"{field}: {exc}", errors=[{"field": field, "rule": str(exc)}]
        ) from None


async def _designated(
    request: Request, ctx: ApiContext, designation: str, permission: Permission
) -> Actor:
    actor = await require_actor(request, ctx)
    if not designation_matches(designation, actor.role):
        raise ApiError(403, f"designation {designation!r} does not match your role {actor.role}")
    if not can(actor.role, permission):
        raise ApiError(403, f"a {actor.role} may not do this ({permission})")
    return actor


async def _create(ctx: ApiContext, body: ProductIn) -> Product:
    office = backoffice(ctx)
    minor = price_minor(body.price, office.currency)
    now = utc_iso(office.clock.now())
    sku = body.sku

    # The supermarket's items had no SKU: they get a random one the shop can change later.
    chosen = sku or f"item-{secrets.token_hex(4)}"

    def insert(db: Any) -> Product:
        return store.insert_product(
            db,
            sku=chosen,
            name=body.name,
            price_minor=minor,
            now=now,
            brand=body.brand,
            category=body.category,
            stock=body.stock,
        )

    try:
        return await office.db.write(insert)
    except store.DuplicateSkuError as exc:
        raise ApiError(
            409, str(exc), errors=[{"field": "body.sku", "rule": "must be unique"}]
        ) from None


async def _set_price(ctx: ApiContext, product_id: int, value: Any, actor: Actor) -> Product:
    office = backoffice(ctx)
    minor = price_minor(value, office.currency)
    now = utc_iso(office.clock.now())
    try:
        return await office.db.write(
            lambda db: store.set_price(db, product_id, minor, account_id=actor.account_id, now=now)
        )
    except store.UnknownProductError as exc:
        raise ApiError(404, str(exc)) from None


async def _deactivate(ctx: ApiContext, product_id: int) -> Product:
    office = backoffice(ctx)
    now = utc_iso(office.clock.now())
    try:
        # Never deleted: order lines keep pointing at what was sold.
        return await office.db.write(
            lambda db: store.update_product(db, product_id, {"active": 0}, now=now)
        )
    except store.UnknownProductError as exc:
        raise ApiError(404, str(exc)) from None


# -- the supermarket backend ---------------------------------------------------------------


@router.post("/add_item/{designation}", status_code=201, summary="Add an item (managers, owners)")
async def add_item(
    designation: Annotated[str, PathParam(max_length=40)],
    body: ProductIn,
    request: Request,
    ctx: Ctx,
) -> ItemResponse:
    await _designated(request, ctx, designation, "products.write")
    product = await _create(ctx, body)
    return ItemResponse(message="item added", item=product_out(product, backoffice(ctx).currency))


# One route per method: a route with two methods gets one OpenAPI operation id for both.
@router.delete(
    "/delete_item/{item_id}/{designation}",
    name="delete_item",
    summary="Delete an item: it is deactivated, its sales stay (managers, owners)",
)
@router.post(
    "/delete_item/{item_id}/{designation}",
    name="delete_item_by_post",
    summary="Delete an item (POST, as the supermarket backend's clients send it)",
)
async def delete_item(
    item_id: ProductId,
    designation: Annotated[str, PathParam(max_length=40)],
    request: Request,
    ctx: Ctx,
) -> ItemResponse:
    await _designated(request, ctx, designation, "products.write")
    product = await _deactivate(ctx, item_id)
    return ItemResponse(message="item deleted", item=product_out(product, backoffice(ctx).currency))


@router.post(
    "/update_item_rate/{item_id}/{designation}",
    name="update_item_rate",
    summary="Change an item's price (managers, owners); the change is recorded",
)
@router.put(
    "/update_item_rate/{item_id}/{designation}",
    name="update_item_rate_by_put",
    summary="Change an item's price (PUT)",
)
async def update_item_rate(
    item_id: ProductId,
    designation: Annotated[str, PathParam(max_length=40)],
    body: PriceIn,
    request: Request,
    ctx: Ctx,
) -> ItemResponse:
    actor = await _designated(request, ctx, designation, "products.write")
    product = await _set_price(ctx, item_id, body.price, actor)
    return ItemResponse(message="rate updated", item=product_out(product, backoffice(ctx).currency))


# -- the shop API's public catalogue ---------------------------------------------------------


async def _page(
    ctx: ApiContext,
    *,
    page: int,
    per_page: int,
    category: str | None,
    brand: str | None,
    search: str | None,
    active: bool | None,
) -> ProductsPage:
    office = backoffice(ctx)
    found = await office.db.execute(
        lambda db: store.list_products(
            db,
            category=category,
            brand=brand,
            search=search,
            active=active,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
    )
    return ProductsPage(
        products=[product_out(product, office.currency) for product in found.products],
        page=page,
        per_page=per_page,
        total=found.total,
        pages=(found.total + per_page - 1) // per_page,
    )


Page = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(ge=1, le=100)]
Filter = Annotated[str | None, Query(max_length=200)]


@router.get("/api/products", summary="The public catalogue: paged, by category, brand or name")
async def catalogue(
    ctx: Ctx,
    page: Page = 1,
    per_page: PerPage = 20,
    category: Filter = None,
    brand: Filter = None,
    search: Annotated[
        str | None, Query(max_length=200, validation_alias=AliasChoices("search", "q", "name"))
    ] = None,
) -> ProductsPage:
    return await _page(
        ctx,
        page=page,
        per_page=per_page,
        category=category,
        brand=brand,
        search=search,
        active=True,
    )


@router.get("/api/products/{product_id}", summary="One product of the public catalogue")
async def catalogue_product(product_id: ProductId, ctx: Ctx) -> ProductResponse:
    office = backoffice(ctx)
    product = await office.db.execute(lambda db: store.get_product(db, product_id))
    if product is None or not product.active:
        raise ApiError(404, f"no product with id {product_id}")
    return ProductResponse(product=product_out(product, office.currency))


# -- /api/v1/products --------------------------------------------------------------------------


@router.get("/api/v1/products", summary="Products, inactive ones too (staff)")
async def list_products(
    request: Request,
    ctx: Ctx,
    page: Page = 1,
    per_page: PerPage = 50,
    category: Filter = None,
    brand: Filter = None,
    search: Filter = None,
    active: Annotated[bool | None, Query()] = None,
) -> ProductsPage:
    actor = await require_actor(request, ctx)
    if not actor.is_staff:
        raise ApiError(403, "staff only; customers use /api/products")
    return await _page(
        ctx,
        page=page,
        per_page=per_page,
        category=category,
        brand=brand,
        search=search,
        active=active,
    )


@router.post("/api/v1/products", status_code=201, summary="Add a product (managers, owners)")
async def create_product(body: ProductIn, request: Request, ctx: Ctx) -> ProductResponse:
    await require_actor(request, ctx, "products.write")
    product = await _create(ctx, body)
    return ProductResponse(
        message="product added", product=product_out(product, backoffice(ctx).currency)
    )


class CategoryOut(BaseModel):
    name: str
    products: int


class CategoryList(BaseModel):
    success: bool = True
    categories: list[CategoryOut]


# Categories are few (a shop has tens); the cap keeps one answer small whatever is stored.
MAX_CATEGORIES = 500


# Registered before /{product_id}: "categories" is not an id.
@router.get("/api/v1/products/categories", summary="Product categories and their counts (staff)")
async def list_categories(request: Request, ctx: Ctx) -> CategoryList:
    actor = await require_actor(request, ctx)
    if not actor.is_staff:
        raise ApiError(403, "staff only; customers use /api/products")

    def read(db: Any) -> list[tuple[str, int]]:
        rows = db.execute(
            "SELECT category, count(*) FROM products WHERE category IS NOT NULL "
            "AND category != '' GROUP BY category COLLATE NOCASE "
            "ORDER BY category COLLATE NOCASE LIMIT ?",
            [MAX_CATEGORIES],
        ).fetchall()
        return [(str(name), int(count)) for name, count in rows]

    found = await backoffice(ctx).db.execute(read)
    return CategoryList(categories=[CategoryOut(name=n, products=c) for n, c in found])


@router.get("/api/v1/products/{product_id}", summary="A product and its price history (staff)")
async def get_product(product_id: ProductId, request: Request, ctx: Ctx) -> ProductResponse:
    actor = await require_actor(request, ctx)
    if not actor.is_staff:
        raise ApiError(403, "staff only; customers use /api/products")
    office = backoffice(ctx)

    def read(db: Any) -> tuple[Product | None, list[PriceChange]]:
        return store.get_product(db, product_id), store.price_changes(db, product_id)

    product, changes = await office.db.execute(read)
    if product is None:
        raise ApiError(404, f"no product with id {product_id}")
    return ProductResponse(
        product=product_out(product, office.currency),
        price_changes=[_change_out(change) for change in changes],
    )


@router.patch("/api/v1/products/{product_id}", summary="Change a product (managers, owners)")
async def change_product(
    product_id: ProductId, body: ProductChange, request: Request, ctx: Ctx
) -> ProductResponse:
    actor = await require_actor(request, ctx, "products.write")
    office = backoffice(ctx)
    changes = body.model_dump(exclude_unset=True, exclude={"price"})
    if "name" in changes and changes["name"] is None:
        raise ApiError(
            422,
            "body.name: must not be null",
            errors=[{"field": "body.name", "rule": "must not be null"}],
        )
    if "sku" in changes and changes["sku"] is None:
        raise ApiError(
            422,
            "body.sku: must not be null",
            errors=[{"field": "body.sku", "rule": "must not be null"}],
        )
    if "active" in changes:
        if changes["active"] is None:
            raise ApiError(
                422,
                "body.active: must be true or false",
                errors=[{"field": "body.active", "rule": "must be true or false"}],
            )
        changes["active"] = 1 if changes["active"] else 0
    minor = price_minor(body.price, office.currency) if "price" in body.model_fields_set else None
    now = utc_iso(office.clock.now())

    def change(db: Any) -> Product:
        product = store.update_product(db, product_id, changes, now=now)
        if minor is not None:
            product = store.set_price(db, product_id, minor, account_id=actor.account_id, now=now)
        return product

    try:
        product = await office.db.write(change)
    except store.UnknownProductError as exc:
        raise ApiError(404, str(exc)) from None
    except store.DuplicateSkuError as exc:
        raise ApiError(
            409, str(exc), errors=[{"field": "body.sku", "rule": "must be unique"}]
        ) from None
    return ProductResponse(message="product changed", product=product_out(product, office.currency))


@router.post("/api/v1/products/{product_id}/stock", summary="Adjust stock (managers, owners)")
async def adjust_stock(
    product_id: ProductId, body: StockIn, request: Request, ctx: Ctx
) -> ProductResponse:
    await require_actor(request, ctx, "products.write")
    office = backoffice(ctx)
    now = utc_iso(office.clock.now())
    try:
        product = await office.db.write(
            lambda db: store.adjust_stock(db, product_id, body.delta, now=now)
        )
    except store.UnknownProductError as exc:
        raise ApiError(404, str(exc)) from None
    return ProductResponse(message="stock adjusted", product=product_out(product, office.currency))


@router.delete("/api/v1/products/{product_id}", summary="Deactivate a product (managers, owners)")
async def delete_product(product_id: ProductId, request: Request, ctx: Ctx) -> ProductResponse:
    await require_actor(request, ctx, "products.write")
    product = await _deactivate(ctx, product_id)
    return ProductResponse(
        message="product deactivated", product=product_out(product, backoffice(ctx).currency)
    )
