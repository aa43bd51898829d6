"""Sign-up and login of both old backends, roles on account creation, JWTs at the door."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.accounts import FREE_FAILURES
from daemon.services.backoffice.passwords import HashPool
from daemon.services.backoffice.service import BackOffice
from storage.database import Database
from tests.daemon.api.backoffice_support import (
    KEY,
    PASSWORD,
    auth,
    login,
    make_account,
    make_office,
)
from tests.daemon.api.support import bearer


@pytest.fixture
def office(db: Database, clock: ManualClock) -> BackOffice:
    return make_office(db, clock)


@pytest.fixture
def ctx(make_ctx: Callable[..., ApiContext], office: BackOffice) -> ApiContext:
    return make_ctx(backoffice=office, max_body_bytes=100_000)


async def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    return await db.execute(lambda conn: [tuple(row) for row in conn.execute(sql).fetchall()])


@pytest.mark.parametrize(
    ("signup", "login_path"),
    [("/signup", "/login"), ("/api/users/register", "/api/users/login")],
)
async def test_customer_signup_and_login_give_a_jwt(
    client: httpx.AsyncClient, db: Database, signup: str, login_path: str
) -> None:
    response = await client.post(
        signup,
        json={
            "username": "asha",
            "password": PASSWORD,
            "email": "asha@example.com",
            "name": "Asha",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    assert body["user"]["role"] == "customer"
    assert body["user"]["full_name"] == "Asha"
    assert "password" not in response.text

    stored = (await _rows(db, "SELECT password_hash FROM accounts"))[0][0]
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored

    logged = await client.post(login_path, json={"username": "asha", "password": PASSWORD})
    assert logged.status_code == 200, logged.text
    token = logged.json()["access_token"]
    assert logged.json()["token_type"] == "bearer"
    assert 0 < logged.json()["expires_in"] <= 15 * 60
    claims = jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["role"] == "customer"
    assert claims["sub"] == str(body["user"]["id"])
    # The e-mail works as the login name too, in any case.
    by_email = await client.post(
        login_path, json={"email": "ASHA@example.com", "password": PASSWORD}
    )
    assert by_email.status_code == 200

    me = await client.get("/api/v1/accounts/me", headers=auth(token))
    assert me.status_code == 200
    assert me.json()["account"]["username"] == "asha"


@pytest.mark.parametrize("path", ["/signup", "/api/users/register", "/api/v1/accounts"])
@pytest.mark.parametrize("role", ["cashier", "manager", "owner"])
async def test_a_customer_can_never_make_themselves_staff(
    client: httpx.AsyncClient, office: BackOffice, db: Database, path: str, role: str
) -> None:
    anonymous = await client.post(
        path, json={"username": "eve", "password": PASSWORD, "role": role}
    )
    assert anonymous.status_code == 403, anonymous.text

    await make_account(office, "mallory")
    token = await login(client, "mallory")
    as_customer = await client.post(
        path,
        json={"username": "eve2", "password": PASSWORD, "designation": role},
        headers=auth(token),
    )
    assert as_customer.status_code == 403
    assert await _rows(db, "SELECT username FROM accounts") == [("mallory",)]


async def test_staff_signup_needs_an_owner_or_manager(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    await make_account(office, "boss", "owner")
    await make_account(office, "mgr", "manager")
    await make_account(office, "till", "cashier")
    body = {"username": "newbie", "password": PASSWORD}

    assert (await client.post("/store/signup", json=body)).status_code == 403
    cashier = await login(client, "till", path="/store/login")
    assert (await client.post("/store/signup", json=body, headers=auth(cashier))).status_code == 403

    manager = await login(client, "mgr", path="/store/login")
    as_manager = await client.post("/store/signup", json=body, headers=auth(manager))
    assert as_manager.status_code == 201, as_manager.text
    assert as_manager.json()["user"]["role"] == "cashier"
    # A manager cannot make peers or bosses.
    peer = {"username": "mgr2", "password": PASSWORD, "role": "manager"}
    assert (await client.post("/store/signup", json=peer, headers=auth(manager))).status_code == 403

    owner = await login(client, "boss", path="/store/login")
    as_owner = await client.post("/store/signup", json=peer, headers=auth(owner))
    assert as_owner.status_code == 201
    assert as_owner.json()["user"]["role"] == "manager"
    # The API token (the shop's own programs) has the owner's powers.
    other = {"username": "own2", "password": PASSWORD, "role": "owner"}
    assert (await client.post("/api/v1/accounts", json=other, headers=bearer())).status_code == 201


async def test_store_login_refuses_customers_like_a_wrong_password(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    await make_account(office, "asha")
    response = await client.post("/store/login", json={"username": "asha", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json()["message"] == "invalid username or password"


async def test_login_failures_do_not_tell_whether_the_user_exists(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    await make_account(office, "asha")
    wrong = await client.post("/login", json={"username": "asha", "password": "nope-nope-nope"})
    nobody = await client.post("/login", json={"username": "zed", "password": "nope-nope-nope"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()


@pytest.mark.parametrize("username", ["asha", "ghost"])
async def test_repeated_failures_are_throttled_for_known_and_unknown_names(
    client: httpx.AsyncClient, office: BackOffice, clock: ManualClock, username: str
) -> None:
    await make_account(office, "asha")
    bad = {"username": username, "password": "wrong-password"}
    statuses = [(await client.post("/login", json=bad)).status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = await client.post("/login", json=bad)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    if username == "asha":
        # Even the right password waits out the lock.
        right = await client.post("/login", json={"username": "asha", "password": PASSWORD})
        assert right.status_code == 429
    clock.advance(31)
    after = await client.post("/login", json={"username": "asha", "password": PASSWORD})
    assert after.status_code == 200


async def test_parallel_wrong_passwords_lock_as_sequential_ones_do(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    await make_account(office, "asha")
    bad = {"username": "asha", "password": "wrong-password"}
    answers = await asyncio.gather(*(client.post("/login", json=bad) for _ in range(64)))
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {401: FREE_FAILURES, 429: 64 - FREE_FAILURES}
    right = await client.post("/login", json={"username": "asha", "password": PASSWORD})
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) > 0


async def test_a_full_hasher_answers_503_with_retry_after(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    await make_account(office, "asha")
    pool = HashPool(threads=1, waiting=0, nice=0)
    office.accounts._passwords.pool = pool  # a pool with no room to wait in
    release = threading.Event()
    blocker = asyncio.ensure_future(pool.run(release.wait, 5.0))
    await asyncio.sleep(0.01)
    try:
        for path, body in [
            ("/login", {"username": "asha", "password": PASSWORD}),
            ("/signup", {"username": "zed", "password": PASSWORD}),
        ]:
            busy = await client.post(path, json=body)
            assert busy.status_code == 503, busy.text
            assert busy.headers["Retry-After"] == "1"
            assert busy.json()["success"] is False
    finally:
        release.set()
        await blocker
    assert (await client.post("/login", json={"username": "asha", "password": PASSWORD})).is_success


async def test_signup_refuses_weak_passwords_and_taken_names(
    client: httpx.AsyncClient, db: Database
) -> None:
    short = await client.post("/signup", json={"username": "asha", "password": "short"})
    assert short.status_code == 400
    assert short.json()["errors"][0]["field"] == "body.password"
    ok = await client.post("/signup", json={"username": "asha", "password": PASSWORD})
    assert ok.status_code == 201
    again = await client.post("/signup", json={"username": "ASHA", "password": PASSWORD})
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "body.username"


async def test_sql_looking_text_is_stored_as_text(client: httpx.AsyncClient, db: Database) -> None:
    evil = "Robert'); DROP TABLE accounts;--"
    response = await client.post(
        "/signup",
        json={"username": "bobby';--", "password": PASSWORD, "name": evil, "phone": evil[:40]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["user"]["full_name"] == evil
    assert await _rows(db, "SELECT username, full_name FROM accounts") == [("bobby';--", evil)]
    login_try = await client.post(
        "/login", json={"username": "' OR '1'='1", "password": "' OR '1'='1"}
    )
    assert login_try.status_code == 401


# -- the JWT at the door ---------------------------------------------------------------------


def _forge(claims: dict[str, Any], key: bytes = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _claims(account_id: int, role: str, clock: ManualClock, **changes: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    claims = {"iss": "shopbell", "sub": str(account_id), "role": role, "iat": now, "exp": now + 600}
    claims.update(changes)
    return claims


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, office: BackOffice, clock: ManualClock
) -> None:
    await make_account(office, "boss", "owner")
    token = await login(client, "boss")
    assert (await client.get("/api/v1/accounts", headers=auth(token))).status_code == 200
    clock.advance(15 * 60 + 1)
    assert (await client.get("/api/v1/accounts", headers=auth(token))).status_code == 401


async def test_forged_and_none_tokens_are_refused(
    client: httpx.AsyncClient, office: BackOffice, clock: ManualClock
) -> None:
    boss = await make_account(office, "boss", "owner")
    good = _forge(_claims(boss.id, "owner", clock))
    assert (await client.get("/api/v1/accounts", headers=auth(good))).status_code == 200

    other_key = _forge(_claims(boss.id, "owner", clock), key=b"x" * 32)
    unsigned = jwt.encode(_claims(boss.id, "owner", clock), None, algorithm="none")
    # A customer's real token with its payload swapped for an owner's: the signature no
    # longer matches.
    customer = await make_account(office, "asha")
    real = _forge(_claims(customer.id, "customer", clock))
    promoted = _forge(_claims(customer.id, "owner", clock), key=b"y" * 32)
    spliced = ".".join([real.split(".")[0], promoted.split(".")[1], real.split(".")[2]])
    assert (await client.get("/api/v1/accounts", headers=auth(real))).status_code == 403
    for token in (other_key, unsigned, unsigned.rstrip(".") + ".", spliced, "a.b.c", "garbage"):
        response = await client.get("/api/v1/accounts", headers=auth(token))
        assert response.status_code == 401, token


async def test_a_login_token_cannot_reach_the_rest_of_the_api(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    await make_account(office, "boss", "owner")
    token = await login(client, "boss")
    for path in ("/api/v1/messages", "/api/test/private"):
        response = await client.get(path, headers=auth(token))
        assert response.status_code == 401
        assert "API token" in response.json()["message"]
    # The API token still opens everything.
    assert (await client.get("/api/test/private", headers=bearer())).status_code == 200
    assert (await client.get("/api/v1/accounts", headers=bearer())).status_code == 200


async def test_a_demoted_or_disabled_account_loses_its_powers_at_once(
    client: httpx.AsyncClient, office: BackOffice, db: Database
) -> None:
    boss = await make_account(office, "mgr", "manager")
    token = await login(client, "mgr")
    assert (await client.get("/api/v1/accounts", headers=auth(token))).status_code == 200
    await db.write(lambda conn: conn.execute("UPDATE accounts SET role = 'customer'"))
    assert (await client.get("/api/v1/accounts", headers=auth(token))).status_code == 403
    await db.write(
        lambda conn: conn.execute(
            "UPDATE accounts SET disabled_at = ? WHERE id = ?",
            [datetime(2026, 1, 1, tzinfo=UTC).isoformat(), boss.id],
        )
    )
    assert (await client.get("/api/v1/accounts/me", headers=auth(token))).status_code == 401


async def test_listing_accounts_needs_a_manager(
    client: httpx.AsyncClient, office: BackOffice
) -> None:
    await make_account(office, "asha")
    await make_account(office, "till", "cashier")
    for name in ("asha", "till"):
        token = await login(client, name)
        assert (await client.get("/api/v1/accounts", headers=auth(token))).status_code == 403
    assert (await client.get("/api/v1/accounts")).status_code == 401


def test_token_lifetime_is_short(office: BackOffice) -> None:
    assert office.tokens.ttl <= timedelta(minutes=15)


async def test_no_password_in_logs(
    client: httpx.AsyncClient, office: BackOffice, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post("/signup", json={"username": "asha", "password": PASSWORD})
    await client.post("/login", json={"username": "asha", "password": PASSWORD + "x"})
    assert PASSWORD not in caplog.text
