"""Seed 3, the supermarket backend: its clients are Postman requests built from its code.

Each test sends the keys that the original `app.py` routes and `processor.py` processors
read (`UserProcessor.signup`, `StoreUserProcessor.store_login`, `PurchaseProcessor.purchase`,
`ItemProcessor.add_item`, ...) and checks the keys those clients read back. What differs on
purpose: the manager routes need a login (the path's designation word is only compared with
it), passwords are hashed, a purchase is priced by the shop, not by the body's Rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.service import BackOffice
from storage.database import Database
from tests.daemon.api.backoffice_support import PASSWORD, auth, login, make_account, make_office


@pytest.fixture
def office(db: Database, clock: ManualClock) -> BackOffice:
    return make_office(db, clock)


@pytest.fixture
def ctx(make_ctx: Callable[..., ApiContext], office: BackOffice) -> ApiContext:
    return make_ctx(backoffice=office, max_body_bytes=100_000)


@pytest.fixture
async def manager(client: httpx.AsyncClient, office: BackOffice) -> str:
    await make_account(office, "mgr", "manager")
    return await login(client, "mgr", path="/store/login")


async def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    return await db.execute(lambda conn: [tuple(row) for row in conn.execute(sql).fetchall()])


# UserProcessor.signup's keys, as a Postman body.
CUSTOMER = {
    "First_Name": "Asha",
    "Last_Name": "Rao",
    "Age": 31,
    "Sex": "F",
    "Contact_Number": 9876543210,
    "Email_ID": "asha@example.com",
    "Password": PASSWORD,
}


async def test_signup_and_login_with_the_user_processor_keys(
    client: httpx.AsyncClient, db: Database
) -> None:
    """app.py `signup` (UserProcessor.signup) then `login`: Email_ID and Password."""
    response = await client.post("/signup", json=CUSTOMER)
    assert response.status_code == 201, response.text
    user = response.json()["user"]
    # No username in the body: the email address is the login name.
    assert user["username"] == "asha@example.com"
    assert user["email"] == "asha@example.com"
    assert user["full_name"] == "Asha Rao"
    assert user["phone"] == "9876543210"
    assert user["role"] == "customer"
    stored = (await _rows(db, "SELECT password_hash FROM accounts"))[0][0]
    assert stored.startswith("$argon2id$")

    logged = await client.post(
        "/login", json={"Email_ID": "asha@example.com", "Password": PASSWORD}
    )
    assert logged.status_code == 200, logged.text
    assert logged.json()["message"]
    assert logged.json()["user_id"] == user["id"]
    assert logged.json()["access_token"]

    wrong = await client.post("/login", json={"Email_ID": "asha@example.com", "Password": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["success"] is False


async def test_a_signup_without_a_key_is_400_naming_it(client: httpx.AsyncClient) -> None:
    """app.py `signup` with Password left out (the seed answered 500 with the key's name)."""
    body = {key: value for key, value in CUSTOMER.items() if key != "Password"}
    response = await client.post("/signup", json=body)
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert "password" in response.json()["message"]


async def test_store_signup_and_store_login_answer_the_user_id(
    client: httpx.AsyncClient, manager: str
) -> None:
    """app.py `store_signup` (StoreUserProcessor.store_signup: + Designation), `store_login`
    (StoreUserProcessor.store_login reads `user_id`)."""
    staff = {**CUSTOMER, "Email_ID": "ravi@example.com", "Designation": "Cashier"}
    # A designation in the body is not a login: nobody signs themselves up as staff.
    anonymous = await client.post("/store/signup", json={**staff, "Designation": "Manager"})
    assert anonymous.status_code == 403

    response = await client.post("/store/signup", json=staff, headers=auth(manager))
    assert response.status_code == 201, response.text
    assert response.json()["user"]["role"] == "cashier"

    logged = await client.post(
        "/store/login", json={"Email_ID": "ravi@example.com", "Password": PASSWORD}
    )
    assert logged.status_code == 200, logged.text
    assert logged.json()["user_id"] == response.json()["user"]["id"]
    assert logged.json()["role"] == "cashier"


async def test_add_item_takes_one_item_or_a_list(
    client: httpx.AsyncClient, manager: str, db: Database
) -> None:
    """app.py `add_item` (ItemProcessor.add_item: Product_name, Rate, Stock), an object or a
    list; the client reads `message`."""
    one = await client.post(
        "/add_item/manager",
        json={"Product_name": "Shampoo", "Rate": 120.5, "Stock": 10},
        headers=auth(manager),
    )
    assert one.status_code == 201, one.text
    assert one.json()["message"] == "Item added successfully"
    assert one.json()["item"]["price"] == "120.50"

    many = await client.post(
        "/add_item/manager",
        json=[
            {"Product_name": "Soap", "Rate": 40, "Stock": 5},
            {"Product_name": "Rice", "Rate": "65.00", "Stock": 50},
        ],
        headers=auth(manager),
    )
    assert many.status_code == 201, many.text
    assert many.json()["message"] == "Items added successfully"
    assert [item["name"] for item in many.json()["items"]] == ["Soap", "Rice"]
    assert await _rows(db, "SELECT name, price_minor, stock FROM products ORDER BY id") == [
        ("Shampoo", 12050, 10),
        ("Soap", 4000, 5),
        ("Rice", 6500, 50),
    ]

    # One bad item in a list adds none of them.
    bad = await client.post(
        "/add_item/manager",
        json=[{"Product_name": "Oil", "Rate": 90, "Stock": 1}, {"Product_name": "Dal"}],
        headers=auth(manager),
    )
    assert bad.status_code == 400, bad.text
    assert bad.json()["success"] is False
    assert len(await _rows(db, "SELECT id FROM products")) == 3


async def test_the_path_designation_is_never_trusted(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    """app.py `add_item`: the seed let anyone whose path said "manager" in."""
    item = {"Product_name": "Shampoo", "Rate": 120, "Stock": 1}
    assert (await client.post("/add_item/manager", json=item)).status_code == 401
    await make_account(office, "cust")
    customer = await login(client, "cust")
    refused = await client.post("/add_item/manager", json=item, headers=auth(customer))
    assert refused.status_code == 403


async def test_update_item_rate_reads_new_rate_and_delete_item(
    client: httpx.AsyncClient, manager: str
) -> None:
    """app.py `update_item_rate` (PUT, `new_rate`) and `delete_item` (DELETE)."""
    added = await client.post(
        "/add_item/manager",
        json={"Product_name": "Shampoo", "Rate": 120, "Stock": 1},
        headers=auth(manager),
    )
    item_id = added.json()["item"]["id"]
    changed = await client.put(
        f"/update_item_rate/{item_id}/manager", json={"new_rate": 99.5}, headers=auth(manager)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["item"]["price"] == "99.50"
    assert changed.json()["message"]

    deleted = await client.delete(f"/delete_item/{item_id}/manager", headers=auth(manager))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["item"]["active"] is False


async def test_purchase_by_item_name_is_priced_by_the_shop(
    client: httpx.AsyncClient, manager: str, office: BackOffice, db: Database
) -> None:
    """app.py `purchase` (PurchaseProcessor.purchase: User_id, Item, Quantity, Rate,
    Date_of_purchase), sent by the till's staff login for a customer."""
    await client.post(
        "/add_item/manager",
        json={"Product_name": "Shampoo", "Rate": 150, "Stock": 10},
        headers=auth(manager),
    )
    customer = await make_account(office, "asha")
    body = {
        "User_id": customer.id,
        "Item": "shampoo",  # a name, in any case
        "Quantity": 2,
        "Rate": 1,  # ignored: the shelf price is charged
        "Date_of_purchase": "2020-01-01",  # ignored: the sale is filed under today
    }
    response = await client.post("/purchase", json=body, headers=auth(manager))
    assert response.status_code == 201, response.text
    order = response.json()["order"]
    assert order["account_id"] == customer.id
    assert order["total"] == "300.00"
    assert await _rows(db, "SELECT stock FROM products") == [(8,)]

    unknown = await client.post(
        "/purchase", json={**body, "Item": "Conditioner"}, headers=auth(manager)
    )
    assert unknown.status_code == 400
    assert "Item" in unknown.json()["message"]


async def test_the_reports_answer_the_seed_keys(
    client: httpx.AsyncClient, manager: str, clock: ManualClock
) -> None:
    """app.py `total_items_purchased` (query start_date, end_date; reads `total_items`),
    `total_shampoo_sales_last_week` (reads that key), `high_value_users`."""
    await client.post(
        "/add_item/manager",
        json={"Product_name": "Shampoo", "Rate": 150, "Stock": 10},
        headers=auth(manager),
    )
    bought = await client.post(
        "/purchase", json={"Item": "Shampoo", "Quantity": 3}, headers=auth(manager)
    )
    assert bought.status_code == 201, bought.text
    today = clock.now().date().isoformat()

    items = await client.get(
        "/total_items_purchased",
        params={"start_date": today, "end_date": today},
        headers=auth(manager),
    )
    assert items.status_code == 200, items.text
    assert items.json()["total_items"] == 3
    assert items.json()["total_items_purchased"] == 3

    for path in ("/total_shampoo_sales_last_week", "/total_sales_shampoo_last_7_days"):
        shampoo = await client.get(path, headers=auth(manager))
        assert shampoo.status_code == 200, shampoo.text
        assert shampoo.json()["total_shampoo_sales_last_week"] == 450
        assert shampoo.json()["total_sales"] == "450.00"

    # The seed answered a bare list; shopbell keeps its object, the list is `users`.
    users = await client.get("/high_value_users", headers=auth(manager))
    assert users.status_code == 200, users.text
    assert isinstance(users.json()["users"], list)
