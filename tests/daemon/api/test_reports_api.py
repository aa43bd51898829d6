"""Reports against hand-computed figures, with orders on both sides of midnight in the shop's
time zone (Asia/Kolkata, UTC+5:30): on UTC days the figures would come out differently."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.service import BackOffice
from storage.database import Database
from tests.daemon.api.backoffice_support import auth, login, make_account, make_office
from tests.daemon.api.support import bearer

ZONE = "Asia/Kolkata"


@pytest.fixture
def clock() -> ManualClock:
    # 2026-01-04 23:59 in Kolkata.
    return ManualClock(datetime(2026, 1, 4, 18, 29, tzinfo=UTC))


@pytest.fixture
def office(db: Database, clock: ManualClock) -> BackOffice:
    return make_office(db, clock, timezone=ZONE)


@pytest.fixture
def ctx(make_ctx: Callable[..., ApiContext], office: BackOffice) -> ApiContext:
    return make_ctx(backoffice=office, max_body_bytes=100_000)


def _at(clock: ManualClock, moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


@pytest.fixture
async def shop(client: httpx.AsyncClient, office: BackOffice, clock: ManualClock) -> dict[str, str]:
    """The orders of the module docstring; returns tokens by name."""
    tokens = {}
    for name, role in (("asha", "customer"), ("ravi", "customer"), ("boss", "manager")):
        await make_account(office, name, role)
    for name in ("asha", "ravi", "boss", "till"):
        if name == "till":
            await make_account(office, "till", "cashier")
        tokens[name] = await login(client, name)

    async def product(name: str, price: str, category: str) -> int:
        body = {"name": name, "price": price, "category": category, "stock": 100}
        response = await client.post("/api/v1/products", json=body, headers=bearer())
        return int(response.json()["product"]["id"])

    shampoo = await product("Herbal Shampoo", "150.00", "Shampoo")
    soap = await product("Soap Box", "600.00", "grocery")

    async def order(who: str, *items: tuple[int, int]) -> None:
        body = {"items": [{"product_id": p, "quantity": q} for p, q in items]}
        tokens[who] = await login(client, who)  # tokens live 15 minutes; the clock jumps days
        response = await client.post("/purchase", json=body, headers=auth(tokens[who]))
        assert response.status_code == 201, response.text

    await order("asha", (shampoo, 1))  # Jan 4 23:59 IST: outside "last 7 days"
    clock.advance(60)
    await order("asha", (shampoo, 1))  # Jan 5 00:00 IST: the first minute inside
    _at(clock, datetime(2026, 1, 10, 18, 0, tzinfo=UTC))
    await order("asha", (shampoo, 2), (soap, 1))  # Jan 10 23:30 IST: 900.00
    _at(clock, datetime(2026, 1, 10, 18, 20, tzinfo=UTC))
    await order("asha", (shampoo, 1))  # Jan 10 23:50 IST: 150.00 -> asha 1050.00 on Jan 10
    _at(clock, datetime(2026, 1, 10, 18, 45, tzinfo=UTC))
    await order("ravi", (soap, 1), (shampoo, 3))  # Jan 11 00:15 IST: 1050.00
    _at(clock, datetime(2026, 1, 10, 18, 50, tzinfo=UTC))
    await order("asha", (shampoo, 1))  # Jan 11 00:20 IST: 150.00
    _at(clock, datetime(2026, 1, 10, 18, 55, tzinfo=UTC))  # now: Jan 11 00:25 IST
    for name in tokens:
        tokens[name] = await login(client, name)
    return tokens


async def test_total_items_purchased_by_local_days(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    headers = auth(shop["boss"])

    async def items(start: str, end: str) -> int:
        response = await client.get(
            "/total_items_purchased", params={"start": start, "end": end}, headers=headers
        )
        assert response.status_code == 200, response.text
        return int(response.json()["total_items_purchased"])

    assert await items("2026-01-10", "2026-01-10") == 4
    assert await items("2026-01-11", "2026-01-11") == 5
    assert await items("2026-01-10", "2026-01-11") == 9
    assert await items("2026-01-04", "2026-01-04") == 1
    assert await items("2026-01-01", "2026-01-31") == 11
    backwards = await client.get(
        "/total_items_purchased",
        params={"start": "2026-01-11", "end": "2026-01-10"},
        headers=headers,
    )
    assert backwards.status_code == 400
    missing = await client.get("/total_items_purchased", headers=headers)
    assert missing.status_code == 400


async def test_high_value_users_per_local_day(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    headers = auth(shop["boss"])
    params = {"start": "2026-01-10", "end": "2026-01-11"}
    response = await client.get("/high_value_users", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["threshold"] == "1000.00"
    assert [(u["username"], u["day"], u["spent"]) for u in body["users"]] == [
        ("asha", "2026-01-10", "1050.00"),
        ("ravi", "2026-01-11", "1050.00"),
    ]
    # "More than": exactly the threshold is not enough.
    strict = await client.get(
        "/high_value_users", params={**params, "threshold": "1050"}, headers=headers
    )
    assert strict.json()["users"] == []
    # Default: today in the shop (Jan 11).
    today = (await client.get("/high_value_users", headers=headers)).json()
    assert [(u["username"], u["day"]) for u in today["users"]] == [("ravi", "2026-01-11")]
    bad = await client.get("/high_value_users", params={"threshold": "10.001"}, headers=headers)
    assert bad.status_code == 400


async def test_shampoo_last_7_days_and_the_general_form(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    headers = auth(shop["boss"])
    shampoo = await client.get("/total_sales_shampoo_last_7_days", headers=headers)
    assert shampoo.status_code == 200, shampoo.text
    body = shampoo.json()
    # Jan 5..11 in Kolkata: 1 + 2 + 1 + 3 + 1 = 8 bottles at 150.00.
    assert (body["start"], body["end"]) == ("2026-01-05", "2026-01-11")
    assert body["items"] == 8
    assert body["total_sales"] == "1200.00"
    general = await client.get(
        "/api/v1/reports/category-sales", params={"category": "SHAMPOO", "days": 1}, headers=headers
    )
    assert general.json()["items"] == 4
    assert general.json()["total_sales_minor"] == 60000
    nothing = await client.get(
        "/api/v1/reports/category-sales",
        params={"category": "' OR 1=1 --", "days": 7},
        headers=headers,
    )
    assert nothing.json()["items"] == 0


async def test_top_products_and_daily_totals(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    headers = auth(shop["boss"])
    top = await client.get(
        "/api/v1/reports/top-products",
        params={"start": "2026-01-10", "end": "2026-01-11"},
        headers=headers,
    )
    assert [(p["name"], p["quantity"], p["amount"]) for p in top.json()["products"]] == [
        ("Soap Box", 2, "1200.00"),
        ("Herbal Shampoo", 7, "1050.00"),
    ]
    daily = await client.get(
        "/api/v1/reports/daily-totals",
        params={"start": "2026-01-04", "end": "2026-01-11"},
        headers=headers,
    )
    assert [(d["day"], d["orders"], d["total"]) for d in daily.json()["days"]] == [
        ("2026-01-04", 1, "150.00"),
        ("2026-01-05", 1, "150.00"),
        ("2026-01-06", 0, "0.00"),
        ("2026-01-07", 0, "0.00"),
        ("2026-01-08", 0, "0.00"),
        ("2026-01-09", 0, "0.00"),
        ("2026-01-10", 2, "1050.00"),
        ("2026-01-11", 2, "1200.00"),
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/total_items_purchased?start=2026-01-10&end=2026-01-10",
        "/high_value_users",
        "/total_sales_shampoo_last_7_days",
        "/api/v1/reports/category-sales?category=shampoo",
        "/api/v1/reports/top-products",
        "/api/v1/reports/daily-totals",
    ],
)
async def test_reports_are_for_managers_and_owners(
    client: httpx.AsyncClient, shop: dict[str, str], path: str
) -> None:
    assert (await client.get(path)).status_code == 401
    for name in ("asha", "till"):
        assert (await client.get(path, headers=auth(shop[name]))).status_code == 403
    assert (await client.get(path, headers=auth(shop["boss"]))).status_code == 200
    assert (await client.get(path, headers=bearer())).status_code == 200
