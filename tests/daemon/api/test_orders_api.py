"""Orders over HTTP: /purchase and /api/orders/create at current prices, stock in the same
transaction, 409 naming the product, customers see their own orders, staff all."""

from __future__ import annotations

import asyncio
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
    for name, role in (("asha", "customer"), ("ravi", "customer"), ("till", "cashier")):
        await make_account(office, name, role)
        found[name] = await login(client, name)
    return found


async def _product(client: httpx.AsyncClient, name: str, price: str, stock: int) -> int:
    response = await client.post(
        "/api/v1/products", json={"name": name, "price": price, "stock": stock}, headers=bearer()
    )
    assert response.status_code == 201, response.text
    return int(response.json()["product"]["id"])


async def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    return await db.execute(lambda conn: [tuple(row) for row in conn.execute(sql).fetchall()])


@pytest.mark.parametrize("path", ["/purchase", "/api/orders/create", "/api/v1/orders"])
async def test_an_order_takes_current_prices_and_stock(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database, path: str
) -> None:
    soap = await _product(client, "Soap", "25.50", 10)
    rice = await _product(client, "Rice", "300", 3)
    body = {"items": [{"product_id": soap, "quantity": 2}, {"item_id": rice, "quantity": 1}]}
    response = await client.post(path, json=body, headers=auth(tokens["asha"]))
    assert response.status_code == 201, response.text
    order = response.json()["order"]
    assert order["total_minor"] == 2 * 2550 + 30000
    assert order["total"] == "351.00"
    assert [
        (line["product_id"], line["quantity"], line["unit_price_minor"]) for line in order["lines"]
    ] == [
        (soap, 2, 2550),
        (rice, 1, 30000),
    ]
    assert await _rows(db, "SELECT stock FROM products ORDER BY id") == [(8,), (2,)]
    # A later price change does not touch the order.
    await client.patch(f"/api/v1/products/{soap}", json={"price": "1"}, headers=bearer())
    again = await client.get(f"/api/orders/{order['id']}", headers=auth(tokens["asha"]))
    assert again.json()["order"]["total_minor"] == 35100


async def test_the_supermarket_single_item_form(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    soap = await _product(client, "Soap", "10", 5)
    response = await client.post(
        "/purchase", json={"item_id": soap, "quantity": 3}, headers=auth(tokens["asha"])
    )
    assert response.status_code == 201, response.text
    assert response.json()["order"]["total_minor"] == 3000


async def test_not_enough_stock_is_409_naming_the_product_and_nothing_changes(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    soap = await _product(client, "Soap", "10", 5)
    rice = await _product(client, "Basmati Rice", "300", 1)
    body = {"items": [{"product_id": soap, "quantity": 2}, {"product_id": rice, "quantity": 2}]}
    response = await client.post("/api/orders/create", json=body, headers=auth(tokens["asha"]))
    assert response.status_code == 409
    payload = response.json()
    assert "Basmati Rice" in payload["message"]
    assert payload["product_id"] == rice
    assert payload["available"] == 1
    assert await _rows(db, "SELECT stock FROM products ORDER BY id") == [(5,), (1,)]
    assert await _rows(db, "SELECT count(*) FROM orders") == [(0,)]
    assert await _rows(db, "SELECT count(*) FROM order_lines") == [(0,)]


async def test_the_same_product_twice_is_checked_as_a_whole(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    soap = await _product(client, "Soap", "10", 3)
    body = {"items": [{"product_id": soap, "quantity": 2}, {"product_id": soap, "quantity": 2}]}
    response = await client.post("/purchase", json=body, headers=auth(tokens["asha"]))
    assert response.status_code == 409
    assert await _rows(db, "SELECT stock FROM products") == [(3,)]


async def test_concurrent_orders_for_the_last_item_exactly_one_wins(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    last = await _product(client, "Last Speaker", "999", 1)
    body = {"items": [{"product_id": last, "quantity": 1}]}
    responses = await asyncio.gather(
        *(
            client.post("/api/orders/create", json=body, headers=auth(tokens[name]))
            for name in ("asha", "ravi", "till") * 4
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 11
    assert await _rows(db, "SELECT stock FROM products") == [(0,)]
    assert await _rows(db, "SELECT count(*) FROM orders") == [(1,)]


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", None, True])
async def test_bad_quantities_are_400(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database, quantity: Any
) -> None:
    soap = await _product(client, "Soap", "10", 5)
    body = {"items": [{"product_id": soap, "quantity": quantity}]}
    response = await client.post("/purchase", json=body, headers=auth(tokens["asha"]))
    assert response.status_code == 400
    assert "quantity" in response.json()["message"]
    assert await _rows(db, "SELECT stock FROM products") == [(5,)]


async def test_unknown_or_inactive_products(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    soap = await _product(client, "Soap", "10", 5)
    unknown = await client.post(
        "/purchase",
        json={"items": [{"product_id": 999, "quantity": 1}]},
        headers=auth(tokens["asha"]),
    )
    assert unknown.status_code == 400
    assert unknown.json()["product_id"] == 999
    await client.delete(f"/api/v1/products/{soap}", headers=bearer())
    inactive = await client.post(
        "/purchase",
        json={"items": [{"product_id": soap, "quantity": 1}]},
        headers=auth(tokens["asha"]),
    )
    assert inactive.status_code == 409
    assert await _rows(db, "SELECT count(*) FROM orders") == [(0,)]
    empty = await client.post("/purchase", json={"items": []}, headers=auth(tokens["asha"]))
    assert empty.status_code == 400


async def test_customers_see_their_own_orders_staff_see_all(
    client: httpx.AsyncClient, tokens: dict[str, str], office: BackOffice
) -> None:
    soap = await _product(client, "Soap", "10", 50)
    body = {"items": [{"product_id": soap, "quantity": 1}]}
    mine = (await client.post("/purchase", json=body, headers=auth(tokens["asha"]))).json()["order"]
    theirs = (await client.post("/purchase", json=body, headers=auth(tokens["ravi"]))).json()[
        "order"
    ]

    asha = (await client.get("/api/orders", headers=auth(tokens["asha"]))).json()["orders"]
    assert [order["id"] for order in asha] == [mine["id"]]
    hidden = await client.get(f"/api/orders/{theirs['id']}", headers=auth(tokens["asha"]))
    assert hidden.status_code == 404
    peeking = await client.get(
        "/api/orders", params={"account_id": theirs["account_id"]}, headers=auth(tokens["asha"])
    )
    assert peeking.status_code == 403

    for headers in (auth(tokens["till"]), bearer()):
        everyone = (await client.get("/api/v1/orders", headers=headers)).json()["orders"]
        assert [order["id"] for order in everyone] == [theirs["id"], mine["id"]]
        assert (await client.get(f"/api/orders/{theirs['id']}", headers=headers)).status_code == 200
    assert (await client.get("/api/orders")).status_code == 401


async def test_a_customer_cannot_order_for_someone_else_but_a_cashier_can(
    client: httpx.AsyncClient, tokens: dict[str, str], office: BackOffice, db: Database
) -> None:
    soap = await _product(client, "Soap", "10", 50)
    ravi_id = (await _rows(db, "SELECT id FROM accounts WHERE username = 'ravi'"))[0][0]
    body = {"items": [{"product_id": soap, "quantity": 1}], "account_id": ravi_id}
    refused = await client.post("/purchase", json=body, headers=auth(tokens["asha"]))
    assert refused.status_code == 403
    till = await client.post("/purchase", json=body, headers=auth(tokens["till"]))
    assert till.status_code == 201
    assert till.json()["order"]["account_id"] == ravi_id
    walk_in = await client.post(
        "/purchase",
        json={"items": [{"product_id": soap, "quantity": 1}]},
        headers=auth(tokens["till"]),
    )
    assert walk_in.json()["order"]["account_id"] is None
    nobody = await client.post(
        "/purchase", json={**body, "account_id": 999}, headers=auth(tokens["till"])
    )
    assert nobody.status_code == 400


async def test_sql_looking_note_is_kept_as_text(
    client: httpx.AsyncClient, tokens: dict[str, str], db: Database
) -> None:
    soap = await _product(client, "Soap", "10", 5)
    evil = "1; DELETE FROM orders; --"
    body = {"items": [{"product_id": soap, "quantity": 1}], "note": evil}
    response = await client.post("/purchase", json=body, headers=auth(tokens["asha"]))
    assert response.json()["order"]["note"] == evil
    assert await _rows(db, "SELECT note FROM orders") == [(evil,)]
