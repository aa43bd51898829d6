"""Seed 4, ElectroPorts & Pins: what its front end (ElectroPorts-And-Pins-Front-End) sends.

The shipped pages call the backend's code paths, not its README's: `SignUp.jsx` posts
/register, `Login.jsx` posts /login and stores access_token, refresh_token and role,
`Profile.jsx` reads /user, `Phones.jsx`, `Laptops.jsx`, `Accessories.jsx` and
`SoundDevices.jsx` read data.phones, data.laptops, data.accessories, data.sound_devices.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.service import BackOffice
from storage.database import Database
from tests.daemon.api.backoffice_support import PASSWORD, auth, make_office
from tests.daemon.api.support import bearer


@pytest.fixture
def office(db: Database, clock: ManualClock) -> BackOffice:
    return make_office(db, clock)


@pytest.fixture
def ctx(make_ctx: Callable[..., ApiContext], office: BackOffice) -> ApiContext:
    return make_ctx(backoffice=office, max_body_bytes=100_000)


async def _register(client: httpx.AsyncClient) -> httpx.Response:
    # SignUp.jsx: fetch POST JSON {username, email, password, confirmPassword}.
    return await client.post(
        "/register",
        json={
            "username": "markswell",
            "email": "mark@example.com",
            "password": PASSWORD,
            "confirmPassword": PASSWORD,
        },
    )


async def test_signup_page_registers(client: httpx.AsyncClient) -> None:
    """SignUp.jsx: reads only response.ok."""
    response = await _register(client)
    assert response.is_success, response.text
    assert response.json()["user"]["role"] == "customer"
    # The README's path is the same door.
    again = await client.post(
        "/api/users/register",
        json={"username": "other", "email": "o@example.com", "password": PASSWORD},
    )
    assert again.is_success


async def test_login_page_gets_what_it_stores(client: httpx.AsyncClient) -> None:
    """Login.jsx: axios.post /login {email, password}; stores access_token, refresh_token,
    role from the top level of the answer."""
    await _register(client)
    response = await client.post("/login", json={"email": "mark@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"]
    assert body["role"] == "customer"
    # No refresh tokens in shopbell: the page only stores this, so it is the access token.
    assert body["refresh_token"] == body["access_token"]

    wrong = await client.post("/login", json={"email": "mark@example.com", "password": "x" * 9})
    assert wrong.status_code == 401


async def test_profile_page_reads_the_logged_in_user(client: httpx.AsyncClient) -> None:
    """Profile.jsx: GET /user with Authorization: Bearer <token>; reads name, email, role,
    image_url (imageUrl); the backend answered id, username, email, role, image_url."""
    registered = await _register(client)
    token = (
        await client.post("/login", json={"email": "mark@example.com", "password": PASSWORD})
    ).json()["access_token"]
    response = await client.get("/user", headers=auth(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == registered.json()["user"]["id"]
    assert body["username"] == "markswell"
    assert body["name"] == "markswell"
    assert body["email"] == "mark@example.com"
    assert body["role"] == "customer"
    assert body["image_url"] is None
    assert body["imageUrl"] is None

    # The shipped page reads localStorage.access_token, which Login.jsx never sets: it
    # sends "Bearer null", and that is refused as any bad token is.
    assert (await client.get("/user", headers={"Authorization": "Bearer null"})).status_code == 401
    assert (await client.get("/user")).status_code == 401


@pytest.mark.parametrize(
    ("path", "key", "category"),
    [
        ("/phones", "phones", "Phones"),
        ("/laptops", "laptops", "laptop"),
        ("/accessories", "accessories", "Accessory"),
        ("/sounddevices", "sound_devices", "Sound Devices"),
    ],
)
async def test_catalogue_pages_read_their_kind(
    client: httpx.AsyncClient, path: str, key: str, category: str
) -> None:
    """Phones.jsx / UserPhones.jsx (`data.phones[]`: id, name, price, image_url,
    description), Laptops.jsx, Accessories.jsx, SoundDevices.jsx (`image`): no login."""
    for name, cat, price in (
        ("Item A", category, "12999.00"),
        ("Item B", category.upper(), "499.50"),
        ("Other", "grocery", "10.00"),
    ):
        made = await client.post(
            "/api/v1/products",
            json={"name": name, "price": price, "category": cat, "stock": 3},
            headers=bearer(),
        )
        assert made.status_code == 201, made.text
    gone = await client.post(
        "/api/v1/products",
        json={"name": "Retired", "price": "1.00", "category": category},
        headers=bearer(),
    )
    await client.delete(f"/api/v1/products/{gone.json()['product']['id']}", headers=bearer())

    response = await client.get(path)
    assert response.status_code == 200, response.text
    items = response.json()[key]
    assert [item["name"] for item in items] == ["Item A", "Item B"]
    first = items[0]
    assert isinstance(first["id"], int)
    assert first["price"] == 12999
    assert items[1]["price"] == 499.5
    for field in ("image_url", "image", "description"):
        assert first[field] is None


async def test_an_empty_kind_is_an_empty_list(client: httpx.AsyncClient) -> None:
    """Phones.jsx maps over data.phones: an empty shop must still give a list."""
    response = await client.get("/phones")
    assert response.status_code == 200
    assert response.json()["phones"] == []
