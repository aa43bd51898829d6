"""SMS pumping through the public send route: many numbers from one address, foreign and
premium-rate ranges. Each attack is refused before a code is queued, and health answers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from daemon.config import LimitsSettings, Settings
from daemon.runtime.clock import ManualClock
from daemon.services.otp.countries import allowed_calling_codes
from daemon.services.otp.service import OtpService
from daemon.services.outbox.service import Outbox
from storage.database import Database
from tests.daemon.api.support import bearer
from tests.daemon.otp.support import KEY


def anonymous(app: FastAPI, address: str = "198.51.100.23") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://shop.example")


async def queued_sms(db: Database) -> int:
    def count(conn: object) -> int:
        return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])  # type: ignore[attr-defined]

    return await db.execute(count)


@pytest.fixture
def pumped_app(make_app: Callable[..., FastAPI], db: Database, clock: ManualClock) -> FastAPI:
    # A shop in India ([sms] default_region = "IN"), 5 codes per address per 10 minutes.
    otp = OtpService(
        db, clock, Outbox(db, clock), KEY, calling_codes=allowed_calling_codes((), "IN")
    )
    settings = Settings(limits=LimitsSettings(otp_sends=5))
    return make_app(otp=otp, settings=settings)


async def test_one_address_asking_codes_for_many_numbers_is_stopped(
    pumped_app: FastAPI, db: Database
) -> None:
    async with anonymous(pumped_app) as pumper, anonymous(pumped_app, "203.0.113.5") as other:
        answers = [
            await pumper.post("/api/send-otp", json={"phone": f"+9198765{n:05d}"})
            for n in range(40)
        ]
        health = await other.get("/api/health")
        customer = await other.post("/api/send-otp", json={"phone": "+919812345678"})

    statuses = [a.status_code for a in answers]
    # Every number is new, so [otp]'s per-phone limit never trips: the per-address one does.
    assert statuses[:5] == [200] * 5
    assert set(statuses[5:]) == {429}
    refused = answers[5]
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["success"] is False
    assert "[limits] otp_sends" in refused.json()["message"]
    assert await queued_sms(db) == 6  # five from the pumper, one for the real customer
    assert health.status_code == 200
    assert customer.status_code == 200


@pytest.mark.parametrize(
    ("phone", "rule"),
    [
        # Example numbers of libphonenumber's metadata, one of each kind.
        ("+447400123456", "codes are sent only to numbers starting +91 ([otp] countries)"),
        ("+449012345678", "+44 is not one of them"),  # a UK premium-rate range
        ("+8823421234", "+882 is not one of them"),  # an international premium network
        ("+911861123456789", "premium-rate number"),  # premium-rate at home, too
        ("+9118603451234", "shared-cost number"),
    ],
)
async def test_foreign_and_premium_ranges_get_a_400_naming_the_rule(
    pumped_app: FastAPI, db: Database, phone: str, rule: str
) -> None:
    async with anonymous(pumped_app) as pumper:
        response = await pumper.post("/api/send-otp", json={"phone": phone})
        with_token = await pumper.post("/api/send-otp", json={"phone": phone}, headers=bearer())

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert rule in body["message"]
    assert body["message"].startswith("phone: ")
    assert with_token.status_code == 400  # the rule holds for the shop's own programs too
    assert await queued_sms(db) == 0
