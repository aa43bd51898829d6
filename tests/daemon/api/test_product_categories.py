"""GET /api/v1/products/categories: the category filter's choices, for staff only."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.service import BackOffice
from storage.database import Database
from tests.daemon.api.backoffice_support import auth, login, make_account, make_office


@pytest.fixture
def office(db: Database, clock: ManualClock) -> BackOffice:
    return make_office(db, clock)


@pytest.fixture
def ctx(make_ctx: Callable[..., ApiContext], office: BackOffice) -> ApiContext:
    return make_ctx(backoffice=office, max_body_bytes=100_000)


async def test_categories_are_listed_once_each_with_their_counts(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    await make_account(office, "manager", "manager")
    await make_account(office, "customer", "customer")
    manager = auth(await login(client, "manager"))
    for name, category in (
        ("Cable", "accessories"),
        ("Case", "Accessories"),
        ("Speaker", "sound devices"),
        ("Gift card", None),
    ):
        body = {"name": name, "price": "5", "category": category}
        created = await client.post("/api/v1/products", json=body, headers=manager)
        assert created.status_code == 201, created.text
    answer = await client.get("/api/v1/products/categories", headers=manager)
    assert answer.status_code == 200, answer.text
    found = {c["name"].casefold(): c["products"] for c in answer.json()["categories"]}
    assert found == {"accessories": 2, "sound devices": 1}
    # The id route still answers for ids.
    assert (await client.get("/api/v1/products/1", headers=manager)).status_code == 200
    customer = auth(await login(client, "customer"))
    refused = await client.get("/api/v1/products/categories", headers=customer)
    assert refused.status_code == 403
