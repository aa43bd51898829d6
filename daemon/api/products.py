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
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
)

from daemon.api.accounts import backoffice, require_actor
from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.runtime.clock import utc_iso
from daemon.services.backoffice.money import to_minor, to_text
from daemon.services.backoffice.roles import Actor, Permission, can, designation_matches
from storage import products as store
from storage.models import PriceChange, Product

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]
ProductId = Annotated[int, PathParam(ge=1, le=2**62)]


Text = Annotated[str, Field(min_length=1, max_length=200)]
OptionalText = Annotated[str | None, Field(default=None, max_length=200)]
# A price as the shop writes it (12.50), checked against the currency's decimals.
Price = Annotated[StrictInt | StrictFloat | StrictStr, Field(union_mode="left_to_right")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProductIn(_Body):
    # Product_name, Rate, Stock: the supermarket backend's item body (processor.py).
    name: Text = Field(validation_alias=AliasChoices("name", "Product_name"))
    price: Price = Field(validation_alias=AliasChoices("price", "rate", "Rate"))
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    brand: OptionalText = None
    category: OptionalText = None
    stock: int = Field(
        default=0,
        strict=True,
        ge=0,
        le=10**9,
        validation_alias=AliasChoices("stock", "quantity", "Stock"),
    )


# The supermarket's /add_item took a list of items too; a cap keeps one request bounded.
MAX_ITEMS = 200
ProductList = Annotated[list[ProductIn], Field(min_length=1, max_length=MAX_ITEMS)]


def _item_or_items(value: Any) -> str:
    return "items" if isinstance(value, list) else "item"


# Chosen by the body's JSON type, so an error names one reading ("body.item.price",
# "body.items.1.price"), not both.
OneOrMany = Annotated[
    Annotated[ProductIn, Tag("item")] | Annotated[ProductList, Tag("items")],
    Discriminator(_item_or_items),
]


class PriceIn(_Body):
    # new_rate: what the supermarket's /update_item_rate read (app.py).
    price: Price = Field(validation_alias=AliasChoices("price", "rate", "new_rate"))


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


class AddedItems(BaseModel):
    success: bool = True
    message: str
    item: ProductOut | None = Field(description="the item, when one was sent; null for a list")
    items: list[ProductOut] = Field(description="every item added, in the order sent")


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
            400, f"{field}: {exc}", errors=[{"field": field, "rule": str(exc)}]
        ) from None


DESIGNATION_REFUSED = (403, "The designation is not this login's role, or the role may not do this")
STAFF_ONLY = (403, "Staff only: customers read /api/products")
DUPLICATE_SKU = (409, "Another product has this sku")
# The supermarket backend's item routes.
ITEM_ERRORS = errors_for(DESIGNATION_REFUSED, 404)


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
    (product,) = await _create_many(ctx, [body], listed=False)
    return product


async def _create_many(ctx: ApiContext, bodies: list[ProductIn], *, listed: bool) -> list[Product]:
    """Insert every item in one transaction: a list with one bad item adds none of them."""
    office = backoffice(ctx)
    # Every price is checked before anything is written; a list's errors name the item.
    minors = [
        price_minor(
            body.price, office.currency, f"body.items[{i}].price" if listed else "body.price"
        )
        for i, body in enumerate(bodies)
    ]
    now = utc_iso(office.clock.now())

    def insert(db: Any) -> list[Product]:
        return [
            store.insert_product(
                db,
                # The supermarket's items had no SKU: a random one the shop can change later.
                sku=body.sku or f"item-{secrets.token_hex(4)}",
                name=body.name,
                price_minor=minor,
                now=now,
                brand=body.brand,
                category=body.category,
                stock=body.stock,
            )
            for body, minor in zip(bodies, minors, strict=True)
        ]

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


@router.post(
    "/add_item/{designation}",
    status_code=201,
    summary="Add an item, or a list of items (managers, owners)",
    responses=errors_for(DESIGNATION_REFUSED, DUPLICATE_SKU),
)
async def add_item(
    designation: Annotated[str, PathParam(max_length=40)],
    body: OneOrMany,
    request: Request,
    ctx: Ctx,
) -> AddedItems:
    await _designated(request, ctx, designation, "products.write")
    currency = backoffice(ctx).currency
    if isinstance(body, list):
        added = await _create_many(ctx, body, listed=True)
        # The supermarket backend's words, which its Postman users know.
        return AddedItems(
            message="Items added successfully",
            item=None,
            items=[product_out(product, currency) for product in added],
        )
    out = product_out(await _create(ctx, body), currency)
    return AddedItems(message="Item added successfully", item=out, items=[out])


# One route per method: a route with two methods gets one OpenAPI operation id for both.
@router.delete(
    "/delete_item/{item_id}/{designation}",
    name="delete_item",
    summary="Delete an item: it is deactivated, its sales stay (managers, owners)",
    responses=ITEM_ERRORS,
)
@router.post(
    "/delete_item/{item_id}/{designation}",
    name="delete_item_by_post",
    summary="Delete an item (POST, as the supermarket backend's clients send it)",
    responses=ITEM_ERRORS,
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
    responses=ITEM_ERRORS,
)
@router.put(
    "/update_item_rate/{item_id}/{designation}",
    name="update_item_rate_by_put",
    summary="Change an item's price (PUT)",
    responses=ITEM_ERRORS,
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


@router.get(
    "/api/products/{product_id}",
    summary="One product of the public catalogue",
    responses=errors_for(404),
)
async def catalogue_product(product_id: ProductId, ctx: Ctx) -> ProductResponse:
    office = backoffice(ctx)
    product = await office.db.execute(lambda db: store.get_product(db, product_id))
    if product is None or not product.active:
        raise ApiError(404, f"no product with id {product_id}")
    return ProductResponse(product=product_out(product, office.currency))


# -- the ElectroPorts front end's catalogue: one list per kind -------------------------------
# Its pages (Phones.jsx, Laptops.jsx, Accessories.jsx, SoundDevices.jsx) fetch GET /phones etc.
# and read data.phones[] (or laptops, accessories, sound_devices) with id, name, price (a
# number), image_url or image, description. shopbell has one catalogue, so each kind is a
# category; the spellings a shop may use ("Phone", "phones", "Sound Devices", "sound_device")
# all count, compared without case, spaces, "-" or "_".
KINDS: dict[str, tuple[str, ...]] = {
    "phones": ("phone", "phones"),
    "laptops": ("laptop", "laptops"),
    "accessories": ("accessory", "accessories"),
    "sound_devices": ("sounddevice", "sounddevices"),
}
# The seed answered every row at once; the cap keeps one answer bounded, by id.
MAX_KIND_ITEMS = 1000


class KindItemOut(BaseModel):
    """A catalogue product as the ElectroPorts pages read it, plus shopbell's own fields."""

    id: int
    sku: str
    name: str
    brand: str | None
    category: str | None
    price: float = Field(description="a number, as the pages show it; price_text is exact")
    price_text: str
    price_minor: int
    currency: str
    stock: int
    # shopbell keeps no pictures or descriptions; the keys exist because the pages read them.
    image_url: None = None
    image: None = None
    description: None = None


class _KindList(BaseModel):
    success: bool = True
    category: str = Field(description="the category name the list was chosen by")
    total: int


class PhonesOut(_KindList):
    phones: list[KindItemOut]


class LaptopsOut(_KindList):
    laptops: list[KindItemOut]


class AccessoriesOut(_KindList):
    accessories: list[KindItemOut]


class SoundDevicesOut(_KindList):
    sound_devices: list[KindItemOut]


async def _kind(ctx: ApiContext, kind: str) -> list[KindItemOut]:
    office = backoffice(ctx)
    names = KINDS[kind]
    marks = ", ".join("?" for _ in names)
    folded = "replace(replace(replace(lower(trim(category)), ' ', ''), '-', ''), '_', '')"

    def read(db: Any) -> list[Product]:
        # Only fixed fragments go into the text; every value is a parameter.
        rows = db.query(
            f"SELECT * FROM products WHERE active = 1 AND {folded} IN ({marks}) "  # noqa: S608
            "ORDER BY id LIMIT ?",
            [*names, MAX_KIND_ITEMS],
        )
        return [Product.from_row(row) for row in rows]

    return [
        KindItemOut(
            id=product.id,
            sku=product.sku,
            name=product.name,
            brand=product.brand,
            category=product.category,
            price=float(to_text(product.price_minor, office.currency)),
            price_text=to_text(product.price_minor, office.currency),
            price_minor=product.price_minor,
            currency=office.currency,
            stock=product.stock,
        )
        for product in await office.db.execute(read)
    ]


@router.get("/phones", summary="Catalogue products of category phone (ElectroPorts)")
async def phones(ctx: Ctx) -> PhonesOut:
    found = await _kind(ctx, "phones")
    return PhonesOut(category="phone", total=len(found), phones=found)


@router.get("/laptops", summary="Catalogue products of category laptop (ElectroPorts)")
async def laptops(ctx: Ctx) -> LaptopsOut:
    found = await _kind(ctx, "laptops")
    return LaptopsOut(category="laptop", total=len(found), laptops=found)


@router.get("/accessories", summary="Catalogue products of category accessory (ElectroPorts)")
async def accessories(ctx: Ctx) -> AccessoriesOut:
    found = await _kind(ctx, "accessories")
    return AccessoriesOut(category="accessory", total=len(found), accessories=found)


@router.get("/sounddevices", summary="Catalogue products of category sound device (ElectroPorts)")
async def sound_devices(ctx: Ctx) -> SoundDevicesOut:
    found = await _kind(ctx, "sound_devices")
    return SoundDevicesOut(category="sound device", total=len(found), sound_devices=found)


# -- /api/v1/products --------------------------------------------------------------------------


@router.get(
    "/api/v1/products",
    summary="Products, inactive ones too (staff)",
    responses=errors_for(STAFF_ONLY),
)
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


@router.post(
    "/api/v1/products",
    status_code=201,
    summary="Add a product (managers, owners)",
    responses=errors_for(403, DUPLICATE_SKU),
)
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
@router.get(
    "/api/v1/products/categories",
    summary="Product categories and their counts (staff)",
    responses=errors_for(STAFF_ONLY),
)
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


@router.get(
    "/api/v1/products/{product_id}",
    summary="A product and its price history (staff)",
    responses=errors_for(STAFF_ONLY, 404),
)
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


@router.patch(
    "/api/v1/products/{product_id}",
    summary="Change a product (managers, owners)",
    responses=errors_for(403, 404, DUPLICATE_SKU),
)
async def change_product(
    product_id: ProductId, body: ProductChange, request: Request, ctx: Ctx
) -> ProductResponse:
    actor = await require_actor(request, ctx, "products.write")
    office = backoffice(ctx)
    changes = body.model_dump(exclude_unset=True, exclude={"price"})
    if "name" in changes and changes["name"] is None:
        raise ApiError(
            400,
            "body.name: must not be null",
            errors=[{"field": "body.name", "rule": "must not be null"}],
        )
    if "sku" in changes and changes["sku"] is None:
        raise ApiError(
            400,
            "body.sku: must not be null",
            errors=[{"field": "body.sku", "rule": "must not be null"}],
        )
    if "active" in changes:
        if changes["active"] is None:
            raise ApiError(
                400,
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


@router.post(
    "/api/v1/products/{product_id}/stock",
    summary="Adjust stock (managers, owners)",
    responses=errors_for(403, 404),
)
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


@router.delete(
    "/api/v1/products/{product_id}",
    summary="Deactivate a product (managers, owners)",
    responses=errors_for(403, 404),
)
async def delete_product(product_id: ProductId, request: Request, ctx: Ctx) -> ProductResponse:
    await require_actor(request, ctx, "products.write")
    product = await _deactivate(ctx, product_id)
    return ProductResponse(
        message="product deactivated", product=product_out(product, backoffice(ctx).currency)
    )
