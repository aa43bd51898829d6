"""The OTP backend's endpoints: shapes, errors in the seed format, limits, the token, races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from daemon.runtime.clock import ManualClock
from daemon.services.otp.service import OtpService
from daemon.services.outbox.service import Outbox
from storage.database import Database
from tests.daemon.api.support import bearer, client_for
from tests.daemon.otp.support import ARABIC_INDIC, FULL_WIDTH, KEY, PHONE, code_in_message


@pytest.fixture
def otp_service(db: Database, clock: ManualClock) -> OtpService:
    return OtpService(db, clock, Outbox(db, clock), KEY)


@pytest.fixture
async def api(
    make_app: Callable[..., FastAPI], otp_service: OtpService
) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(otp=otp_service)
    async with client_for(app) as http:
        http.headers.update(bearer())
        yield http


async def send(api: httpx.AsyncClient, phone: str = PHONE, **extra: Any) -> httpx.Response:
    return await api.post("/api/send-otp", json={"phone": phone, **extra})


async def sent_code(api: httpx.AsyncClient, db: Database, phone: str = PHONE) -> str:
    response = await send(api, phone)
    assert response.status_code == 200, response.text
    return await code_in_message(db, response.json()["message_id"])


async def test_send_otp_answers_queued_never_delivered(api: httpx.AsyncClient) -> None:
    response = await send(api, "+33 6 12 34 56 78", purpose="signup", client="web")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["status"] == "queued"
    assert "delivered" not in response.text
    assert body["phone"] == PHONE and body["purpose"] == "signup"
    assert (body["expires_in"], body["sends_left"], body["resend_in"]) == (300, 2, 30)
    assert isinstance(body["message_id"], int)


async def test_verify_then_replay(api: httpx.AsyncClient, db: Database) -> None:
    code = await sent_code(api, db)
    ok = await api.post("/api/verify-otp", json={"phone": PHONE, "otp": code})
    assert ok.status_code == 200
    assert ok.json() == {
        "success": True,
        "message": "code verified",
        "phone": PHONE,
        "purpose": "login",
        "verified": True,
    }
    replay = await api.post("/api/verify-otp", json={"phone": PHONE, "otp": code})
    assert replay.status_code == 400
    body = replay.json()
    assert (body["success"], body["error"], body["reason"]) == (False, 400, "used")
    assert body["attempts_left"] == 0
    assert body["message"].startswith("otp: ")


async def test_wrong_code_says_tries_left_and_locks(api: httpx.AsyncClient, db: Database) -> None:
    code = await sent_code(api, db)
    guess = "000000" if code != "000000" else "111111"
    answers = [
        (await api.post("/api/verify-otp", json={"phone": PHONE, "otp": guess})).json()
        for _ in range(6)
    ]
    assert [a["attempts_left"] for a in answers[:5]] == [4, 3, 2, 1, 0]
    assert {a["reason"] for a in answers[:5]} == {"wrong"}
    assert answers[5]["reason"] == "locked"
    late = await api.post("/api/verify-otp", json={"phone": PHONE, "otp": code})
    assert late.json()["reason"] == "locked"


@pytest.mark.parametrize(
    ("otp", "rule"),
    [
        (ARABIC_INDIC, "digits 0-9"),
        (FULL_WIDTH, "digits 0-9"),
        ("12345", "exactly 6 digits"),
        ("1234567", "exactly 6 digits"),
        ("12-456", "digits 0-9"),
        (123456, "not a number"),
    ],
)
async def test_a_malformed_code_is_a_400_naming_the_field(
    api: httpx.AsyncClient, db: Database, otp: object, rule: str
) -> None:
    await sent_code(api, db)
    response = await api.post("/api/verify-otp", json={"phone": PHONE, "otp": otp})
    assert response.status_code == 400
    body = response.json()
    assert body["message"].startswith(("otp:", "body.otp:"))
    assert rule in body["message"]
    assert body["errors"][0]["field"] == "body.otp"
    status = (await api.get(f"/api/otp-status/{PHONE}")).json()
    assert status["attempts_left"] == 5, "a malformed code costs no try"


async def test_bad_phones_and_purposes_are_400_naming_the_field(api: httpx.AsyncClient) -> None:
    bad = await send(api, "12345")
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("phone:")
    assert bad.json()["errors"] == [
        {"field": "body.phone", "rule": bad.json()["errors"][0]["rule"]}
    ]
    missing = await api.post("/api/send-otp", json={})
    assert missing.status_code == 400 and "body.phone" in missing.json()["message"]
    purpose = await send(api, purpose="payment")
    assert purpose.status_code == 400 and "body.purpose" in purpose.json()["message"]
    status = await api.get("/api/otp-status/nope")
    assert status.status_code == 400
    assert status.json()["errors"][0]["field"] == "path.phone"
    verify = await api.post("/api/verify-otp", json={"phone": "+1", "otp": "123456"})
    assert verify.status_code == 400 and verify.json()["message"].startswith("phone:")


async def test_resend_too_soon_is_429_with_retry_after(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    assert (await send(api)).status_code == 200
    clock.advance(10)
    limited = await send(api)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "20"
    body = limited.json()
    assert (body["success"], body["error"], body["retry_after"]) == (False, 429, 20)
    assert "try again in 20s" in body["message"]
    clock.advance(20)
    assert (await send(api)).status_code == 200
    clock.advance(30)
    assert (await send(api)).status_code == 200
    clock.advance(30)
    window = await send(api)
    assert window.status_code == 429
    assert window.headers["Retry-After"] == str(600 - 90)
    assert window.json()["sends_left"] == 0


async def test_status_never_shows_the_code(
    api: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    empty = (await api.get(f"/api/otp-status/{PHONE}")).json()
    assert empty["pending"] is False and empty["sends_left"] == 3
    assert empty["data"] == {"exists": False, "expires_in": 0}
    code = await sent_code(api, db)
    clock.advance(60)
    response = await api.get("/api/otp-status/%2B33612345678", params={"purpose": "login"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "success": True,
        "data": {"exists": True, "expires_in": 240},  # the OTP backend's own keys
        "phone": PHONE,
        "purpose": "login",
        "pending": True,
        "expires_in": 240,
        "attempts_left": 5,
        "sends_left": 2,
        "resend_in": 0,
        "delivery": "queued",
    }
    assert code not in response.text
    hmac_row = await db.execute(
        lambda conn: conn.execute("SELECT code_hmac FROM otp_codes").fetchone()[0]
    )
    assert hmac_row not in response.text
    other = (await api.get(f"/api/otp-status/{PHONE}", params={"purpose": "signup"})).json()
    assert other["pending"] is False


async def test_answers_do_not_tell_whether_the_phone_has_an_account(
    api: httpx.AsyncClient, db: Database
) -> None:
    known, unknown = PHONE, "+33612345679"
    await db.write(
        lambda conn: conn.execute(
            "INSERT INTO subscribers (phone, created_at, updated_at) VALUES (?, ?, ?)",
            [known, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"],
        )
    )

    def scrub(response: httpx.Response, phone: str) -> tuple[int, Any]:
        body = response.json()
        body.pop("message_id", None)
        return response.status_code, str(body).replace(phone, "PHONE")

    seen = []
    for phone in (known, unknown):
        sent = await send(api, phone)
        code = await code_in_message(db, sent.json()["message_id"])
        status = await api.get(f"/api/otp-status/{phone}")
        ok = await api.post("/api/verify-otp", json={"phone": phone, "otp": code})
        none = await api.post(
            "/api/verify-otp", json={"phone": phone, "otp": code, "purpose": "signup"}
        )
        seen.append([scrub(r, phone) for r in (sent, status, ok, none)])
    assert seen[0] == seen[1]


async def test_concurrent_verifies_over_http_one_wins(api: httpx.AsyncClient, db: Database) -> None:
    code = await sent_code(api, db)
    responses = await asyncio.gather(
        *(api.post("/api/verify-otp", json={"phone": PHONE, "otp": code}) for _ in range(12))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [400] * 11
    assert {r.json()["reason"] for r in responses if r.status_code == 400} == {"used"}


async def test_the_routes_are_public_as_the_shops_clients_call_them(
    make_app: Callable[..., FastAPI], otp_service
) -> None:
    # A shop's sign-up page asks for a code with no token (issue 16); the send is limited
    # per client address by [limits] and per phone by [otp].
    async with client_for(make_app(otp=otp_service)) as anonymous:
        sent = await anonymous.post("/api/send-otp", json={"phone": PHONE})
        assert sent.status_code == 200
        status = await anonymous.get(f"/api/otp-status/{PHONE}")
        assert status.status_code == 200
        wrong = await anonymous.post("/api/verify-otp", json={"phone": PHONE, "otp": "000000"})
        assert wrong.status_code != 401
        listed = (await anonymous.get("/api")).json()["endpoints"]
        otp_routes = [e for e in listed if "otp" in e["path"]]
        assert len(otp_routes) == 3 and all(e["public"] for e in otp_routes)


async def test_without_the_service_the_routes_say_503(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/send-otp", json={"phone": PHONE}, headers=bearer())
    assert response.status_code == 503
    assert response.json()["success"] is False
