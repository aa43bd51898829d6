"""Products over HTTP: supermarket item routes by role, the public catalogue, /api/v1/products."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.service import BackOffice
from storage.database import Database
from tests.daemon.api.backoffice_support import auth, login, make_account, make_office
from tests.daemon.api.support import bearer


@pytest.fixture
def office(db: Database, clock: ManualClock) -> BackOffice:
    return make_office(db, clock)


@pytest.fixture
def ctx(make_ctx: Callable[..., ApiContext], office: BackOffice) -> ApiContext:
    return make_ctx(backoffice=office, max_body_bytes=100_000)


@pytest.fixture
async def tokens(client: httpx.AsyncClient, office: BackOffice) -> dict[str, str]:
    found = {}
    for role in ("customer", "cashier", "manager", "owner"):
        await make_account(office, role, role)
        found[role] = await login(client, role)
    return found


async def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    return await db.execute(lambda conn: [tuple(row) for row in conn.execute(sql).fetchall()])


async def _add(client: httpx.AsyncClient, token: str, **item: Any) -> httpx.Response:
    body = {"name": "Shampoo", "rate": "120.50", "category": "shampoo", "quantity": 5, **item}
    return await client.post("/add_item/manager", json=body, headers=auth(token))


async def test_a_manager_adds_an_item_in_minor_units(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    response = await _add(client, tokens["manager"], brand="Dove")
    assert response.status_code == 201, response.text
    item = response.json()["item"]
    assert item["price"] == "120.50"
    assert item["price_minor"] == 12050
    assert item["stock"] == 5
    assert item["currency"] == "INR"
    assert await _rows(db, "SELECT name, price_minor, stock FROM products") == [
        ("Shampoo", 12050, 5)
    ]


@pytest.mark.parametrize(
    "price", ["12.345", 12.345, "-1", -1, "abc", "NaN", "Infinity", True, None, [1]]
)
async def test_bad_prices_are_400_naming_the_field(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database, price: Any
) -> None:
    response = await _add(client, tokens["manager"], rate=price)
    assert response.status_code == 400, response.text
    assert "price" in response.json()["message"] or "rate" in response.json()["message"]
    assert await _rows(db, "SELECT id FROM products") == []


@pytest.mark.parametrize("quantity", [-1, 1.5, "3"])
async def test_bad_stock_counts_are_400(
    client: httpx.AsyncClient, tokens: dict[str, str], quantity: Any
) -> None:
    response = await _add(client, tokens["manager"], quantity=quantity)
    assert response.status_code == 400


async def test_designation_is_checked_against_the_token_never_trusted(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    body = {"name": "Soap", "rate": 10}
    # A cashier claiming to be a manager in the path gets nowhere.
    claimed = await client.post("/add_item/manager", json=body, headers=auth(tokens["cashier"]))
    assert claimed.status_code == 403
    honest = await client.post("/add_item/cashier", json=body, headers=auth(tokens["cashier"]))
    assert honest.status_code == 403
    customer = await client.post("/add_item/customer", json=body, headers=auth(tokens["customer"]))
    assert customer.status_code == 403
    anonymous = await client.post("/add_item/owner", json=body)
    assert anonymous.status_code == 401
    # A manager naming another role in the path is refused too.
    mismatch = await client.post("/add_item/owner", json=body, headers=auth(tokens["manager"]))
    assert mismatch.status_code == 403
    assert await _rows(db, "SELECT id FROM products") == []
    owner = await client.post("/add_item/admin", json=body, headers=auth(tokens["owner"]))
    assert owner.status_code == 201


@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_a_cashier_cannot_delete_a_product(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database, method: str
) -> None:
    item = (await _add(client, tokens["manager"])).json()["item"]
    for role in ("cashier", "customer"):
        refused = await client.request(
            method, f"/delete_item/{item['id']}/{role}", headers=auth(tokens[role])
        )
        assert refused.status_code == 403
    assert await _rows(db, "SELECT active FROM products") == [(1,)]
    done = await client.request(
        method, f"/delete_item/{item['id']}/manager", headers=auth(tokens["manager"])
    )
    assert done.status_code == 200
    assert done.json()["item"]["active"] is False
    # Deactivated, not deleted, and gone from the public catalogue.
    assert await _rows(db, "SELECT active FROM products") == [(0,)]
    assert (await client.get(f"/api/products/{item['id']}")).status_code == 404
    unknown = await client.request(
        method, "/delete_item/999/manager", headers=auth(tokens["manager"])
    )
    assert unknown.status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_rate_update_records_who_and_when(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    db: Database,
    clock: ManualClock,
    method: str,
) -> None:
    item = (await _add(client, tokens["manager"])).json()["item"]
    refused = await client.request(
        method,
        f"/update_item_rate/{item['id']}/cashier",
        json={"rate": 1},
        headers=auth(tokens["cashier"]),
    )
    assert refused.status_code == 403
    clock.advance(60)
    response = await client.request(
        method,
        f"/update_item_rate/{item['id']}/owner",
        json={"rate": "99.9"},
        headers=auth(tokens["owner"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["item"]["price_minor"] == 9990
    owner_id = (await _rows(db, "SELECT id FROM accounts WHERE role = 'owner'"))[0][0]
    assert await _rows(
        db, "SELECT old_price_minor, new_price_minor, account_id, changed_at FROM price_changes"
    ) == [(12050, 9990, owner_id, "2026-01-01T12:01:00.000000+00:00")]
    history = await client.get(f"/api/v1/products/{item['id']}", headers=auth(tokens["cashier"]))
    assert history.json()["price_changes"][0]["account_id"] == owner_id
    too_precise = await client.request(
        method,
        f"/update_item_rate/{item['id']}/owner",
        json={"rate": "1.001"},
        headers=auth(tokens["owner"]),
    )
    assert too_precise.status_code == 400


async def test_public_catalogue_pages_and_filters(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    items = [
        ("Bass Speaker", "Sony", "sound device"),
        ("USB Cable", "Anker", "accessory"),
        ("Headphones", "Sony", "sound device"),
        ("Rice 5kg", "Daawat", "grocery"),
        ("Hidden", "Sony", "sound device"),
    ]
    for name, brand, category in items:
        body = {"name": name, "price": 100, "brand": brand, "category": category}
        assert (
            await client.post("/api/v1/products", json=body, headers=bearer())
        ).status_code == 201
    await client.delete("/api/v1/products/5", headers=bearer())

    everything = await client.get("/api/products")
    assert everything.status_code == 200
    assert everything.json()["total"] == 4
    paged = (await client.get("/api/products", params={"per_page": 3, "page": 2})).json()
    assert [p["name"] for p in paged["products"]] == ["Rice 5kg"]
    assert paged["pages"] == 2
    sony = (await client.get("/api/products", params={"brand": "sony"})).json()
    assert [p["name"] for p in sony["products"]] == ["Bass Speaker", "Headphones"]
    sound = (await client.get("/api/products", params={"category": "Sound Device"})).json()
    assert sound["total"] == 2
    search = (await client.get("/api/products", params={"search": "cable"})).json()
    assert [p["name"] for p in search["products"]] == ["USB Cable"]
    # LIKE wildcards are plain characters in a search.
    assert (await client.get("/api/products", params={"search": "%"})).json()["total"] == 0
    one = await client.get("/api/products/2")
    assert one.json()["product"]["name"] == "USB Cable"
    assert (await client.get("/api/products/999")).status_code == 404
    # The catalogue is read-only: writing is /api/v1/products, with a login.
    assert (await client.post("/api/products", json={})).status_code == 405


async def test_sql_looking_text_in_product_fields(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    evil = "x'); DROP TABLE products;--"
    body = {"name": evil, "price": 1, "brand": evil, "category": evil, "sku": evil[:60]}
    response = await client.post("/api/v1/products", json=body, headers=auth(tokens["owner"]))
    assert response.status_code == 201
    found = (await client.get("/api/products", params={"search": evil, "brand": evil})).json()
    assert [p["name"] for p in found["products"]] == [evil]
    assert (await client.get("/api/products", params={"category": "' OR 1=1 --"})).json()[
        "total"
    ] == 0
    assert await _rows(db, "SELECT count(*) FROM products") == [(1,)]


async def test_v1_management_and_stock_adjustments_by_role(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    body = {"name": "Cable", "price": "5", "sku": "CAB-1"}
    for role in ("customer", "cashier"):
        assert (
            await client.post("/api/v1/products", json=body, headers=auth(tokens[role]))
        ).status_code == 403
    created = await client.post("/api/v1/products", json=body, headers=auth(tokens["manager"]))
    assert created.status_code == 201
    product_id = created.json()["product"]["id"]
    duplicate = await client.post("/api/v1/products", json=body, headers=auth(tokens["owner"]))
    assert duplicate.status_code == 409

    for role in ("customer", "cashier"):
        headers = auth(tokens[role])
        assert (
            await client.post(
                f"/api/v1/products/{product_id}/stock", json={"delta": 5}, headers=headers
            )
        ).status_code == 403
        assert (
            await client.patch(
                f"/api/v1/products/{product_id}", json={"name": "x"}, headers=headers
            )
        ).status_code == 403
        assert (
            await client.delete(f"/api/v1/products/{product_id}", headers=headers)
        ).status_code == 403
    assert (
        await client.get("/api/v1/products", headers=auth(tokens["customer"]))
    ).status_code == 403

    manager = auth(tokens["manager"])
    stocked = await client.post(
        f"/api/v1/products/{product_id}/stock", json={"delta": 7}, headers=manager
    )
    assert stocked.json()["product"]["stock"] == 7
    taken = await client.post(
        f"/api/v1/products/{product_id}/stock", json={"delta": -2}, headers=manager
    )
    assert taken.json()["product"]["stock"] == 5
    fractional = await client.post(
        f"/api/v1/products/{product_id}/stock", json={"delta": 1.5}, headers=manager
    )
    assert fractional.status_code == 400
    changed = await client.patch(
        f"/api/v1/products/{product_id}",
        json={"name": "Cable 2m", "price": "6.25", "category": "accessory"},
        headers=manager,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["product"]["price_minor"] == 625
    assert changed.json()["product"]["category"] == "accessory"
    assert await _rows(db, "SELECT old_price_minor, new_price_minor FROM price_changes") == [
        (500, 625)
    ]
    unknown_field = await client.patch(
        f"/api/v1/products/{product_id}", json={"stock": 100}, headers=manager
    )
    assert unknown_field.status_code == 400
    listing = await client.get("/api/v1/products", headers=auth(tokens["cashier"]))
    assert listing.json()["total"] == 1
    assert (
        await client.post("/api/v1/products/99/stock", json={"delta": 1}, headers=manager)
    ).status_code == 404


async def test_jpy_has_no_decimals(
    client: httpx.AsyncClient, make_ctx: Callable[..., ApiContext], db: Database, clock: ManualClock
) -> None:
    from daemon.api.app import create_app
    from tests.daemon.api.support import client_for

    app = create_app(make_ctx(backoffice=make_office(db, clock, currency="JPY")))
    async with client_for(app) as yen:
        refused = await yen.post(
            "/api/v1/products", json={"name": "Tea", "price": "1.5"}, headers=bearer()
        )
        assert refused.status_code == 400
        ok = await yen.post(
            "/api/v1/products", json={"name": "Tea", "price": 150}, headers=bearer()
        )
        assert ok.json()["product"]["price"] == "150"
