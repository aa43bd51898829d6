"""Helpers for the back-office API tests: a cheap password hasher, accounts, logins."""

from __future__ import annotations

from typing import Any

import httpx
from argon2 import PasswordHasher

from daemon.config import Settings
from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.roles import API_TOKEN_ACTOR
from daemon.services.backoffice.service import BackOffice, build_backoffice
from storage.database import Database
from storage.models import Account

KEY = bytes(range(32))
PASSWORD = "correct horse battery"
# argon2's smallest parameters: the tests check behaviour, not hashing cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def make_office(
    db: Database, clock: ManualClock, *, timezone: str = "UTC", currency: str = "INR"
) -> BackOffice:
    settings = Settings.model_validate({"shop": {"timezone": timezone, "currency": currency}})
    return build_backoffice(settings, db, clock, key=KEY, hasher=FAST_HASHER)


async def make_account(
    office: BackOffice, username: str, role: str = "customer", **extra: Any
) -> Account:
    return await office.accounts.create(
        username=username,
        password=PASSWORD,
        role=role,
        by=API_TOKEN_ACTOR,
        **extra,  # type: ignore[arg-type]
    )


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, path: str = "/login"
) -> str:
    response = await client.post(path, json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
