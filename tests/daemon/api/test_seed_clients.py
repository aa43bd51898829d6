"""The seeds' own client code, replayed: what each sends, and that it finds what it reads.

Seed 2, QuickCart (`mujju-212/quickcart`, commit 1a7ab25): its React app's
`src/services/smsService.js`, against a real daemon with the settings a shop running it sets
(`[sms] default_region = "IN"` for its 10-digit numbers, `[api] cors_origins` for the page).
Seed 0, the TGTG alerts front end (`pallas0/TooGood_frontend`, commit eee6d1a):
`src/Signup.js` and `src/apihandler.js`, in-process with the fake TGTG behind the watcher and
`[sms] default_region = "US"`. Each test names the client file and function it replays.
"""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.config import ApiSettings, Settings, SmsSettings
from daemon.runtime.clock import ManualClock
from daemon.services.otp.service import OtpService
from daemon.services.outbox.service import Outbox
from daemon.services.owner import OwnerAlerts
from daemon.services.tgtg.watcher import Watcher, WatcherSettings
from providers.tgtg.client import TgtgClient
from storage.database import Database
from tests.daemon.api.support import TOKEN, client_for
from tests.daemon.conftest import DaemonProcess
from tests.daemon.otp.support import KEY
from tests.helpers import free_port
from tests.peers.tgtg import TgtgPeer

# -- seed 2: QuickCart ---------------------------------------------------------------------

QUICKCART_ORIGIN = "http://localhost:3000"  # the React dev server the app is served from
INDIAN_DIGITS = "9876543210"  # what sendOTP posts: the 10 digits, no +91


def preflight(client: httpx.Client, path: str, origin: str) -> httpx.Response:
    """What the browser sends before a JSON fetch/axios POST from the page."""
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


class QuickCart:
    """A daemon configured as a QuickCart shop sets it, and the page's browser."""

    def __init__(self, client: httpx.Client, process: DaemonProcess) -> None:
        self.client = client
        self.process = process

    def health_gate(self) -> bool:
        """smsService.js checkBackendHealth: `response.ok` and `data.success === true`."""
        response = self.client.get("/api/health")
        assert response.headers.get("access-control-allow-origin") == QUICKCART_ORIGIN
        return response.is_success and response.json().get("success") is True

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """A page's fetch POST with `Content-Type: application/json`, after its preflight."""
        allowed = preflight(self.client, path, QUICKCART_ORIGIN)
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == QUICKCART_ORIGIN
        response = self.client.post(path, json=body)
        # Without this header the browser hides the answer from the page.
        assert response.headers.get("access-control-allow-origin") == QUICKCART_ORIGIN
        return response

    def code_sent(self, message_id: int) -> str:
        """The code as the console provider printed it: what the customer reads."""
        line = self.process.wait_for_line(f"(message {message_id}, otp)")
        found = re.search(r"\b(\d{6})\b", line.partition("otp):")[2])
        assert found, line
        return found.group(1)


@pytest.fixture
def quickcart(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path]
) -> Iterator[QuickCart]:
    port = free_port()
    config = write_config(
        f'[api]\nport = {port}\ncors_origins = ["{QUICKCART_ORIGIN}"]\n'
        '[sms]\ndefault_region = "IN"\n'
    )
    process = spawn("--config", str(config), "run")
    process.wait_ready(port)
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Origin": QUICKCART_ORIGIN}, timeout=10
    ) as client:
        yield QuickCart(client, process)
    process.signal(signal.SIGTERM)
    process.wait()


def test_quickcart_send_otp(quickcart: QuickCart) -> None:
    """QuickCart `src/services/smsService.js` sendOTP: checkBackendHealth (GET /api/health,
    `success === true`), then POST /api/send-otp {"phoneNumber": "<10 digits>"} from the page;
    reads `success` and `message` (and `development_mode`/`otp`, which never come)."""
    assert quickcart.health_gate() is True
    response = quickcart.post("/api/send-otp", {"phoneNumber": INDIAN_DIGITS})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is True
    assert isinstance(data["message"], str) and data["message"]
    assert data["phone"] == "+91" + INDIAN_DIGITS
    # No development-mode echo: the code goes by SMS only, never in the answer.
    assert "otp" not in data and "development_mode" not in data
    code = quickcart.code_sent(data["message_id"])
    assert code not in response.text


def test_quickcart_verify_otp(quickcart: QuickCart) -> None:
    """QuickCart `src/services/smsService.js` verifyOTP: POST /api/verify-otp
    {"phoneNumber": "<10 digits>", "otp": "<6 characters>"}; reads `success` and `message`
    whatever the HTTP status."""
    sent = quickcart.post("/api/send-otp", {"phoneNumber": INDIAN_DIGITS}).json()
    code = quickcart.code_sent(sent["message_id"])
    wrong = quickcart.post(
        "/api/verify-otp",
        {"phoneNumber": INDIAN_DIGITS, "otp": "000000" if code != "000000" else "111111"},
    )
    assert wrong.status_code == 400
    assert wrong.json()["success"] is False and wrong.json()["message"]
    right = quickcart.post("/api/verify-otp", {"phoneNumber": INDIAN_DIGITS, "otp": code})
    assert right.status_code == 200, right.text
    assert right.json()["success"] is True and right.json()["message"]


def test_quickcart_send_otp_again_too_soon(quickcart: QuickCart) -> None:
    """QuickCart `src/services/smsService.js` sendOTP / resendOTP: a second send for the same
    number; on `success` false the client throws `data.message` to the form."""
    assert quickcart.post("/api/send-otp", {"phoneNumber": INDIAN_DIGITS}).is_success
    again = quickcart.post("/api/send-otp", {"phoneNumber": INDIAN_DIGITS})
    assert again.status_code == 429
    assert again.json()["success"] is False
    assert "phone" in again.json()["message"] and int(again.headers["Retry-After"]) >= 1


def test_quickcart_otp_status_answers_the_seed_data(quickcart: QuickCart) -> None:
    """QuickCart backend `backend/routes/auth_routes.py` get_otp_status (no client calls it):
    GET /api/otp-status/<phone> answered `{"success": true, "data": {exists, expires_in}}`."""
    none = quickcart.client.get(f"/api/otp-status/{INDIAN_DIGITS}")
    assert none.status_code == 200, none.text
    assert none.json()["data"] == {"exists": False, "expires_in": 0}
    assert quickcart.post("/api/send-otp", {"phoneNumber": INDIAN_DIGITS}).is_success
    live = quickcart.client.get(f"/api/otp-status/{INDIAN_DIGITS}").json()
    assert live["success"] is True and live["data"]["exists"] is True
    assert 290 <= live["data"]["expires_in"] <= 300
    assert live["pending"] is True, "shopbell's own keys stay beside the seed's"


async def test_quickcart_numbers_need_the_shops_default_region(
    make_app: Callable[..., FastAPI], db: Database, clock: ManualClock
) -> None:
    """QuickCart `src/services/smsService.js` sendOTP posts 10 digits without +91: on defaults
    (`[sms] default_region` empty) they are refused with a 400 saying what to set."""
    app = make_app(otp=OtpService(db, clock, Outbox(db, clock), KEY))
    async with client_for(app) as client:
        response = await client.post("/api/send-otp", json={"phoneNumber": INDIAN_DIGITS})
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert "default_region" in response.json()["message"]


# -- seed 0: the TGTG alerts front end -------------------------------------------------------

TOOGOOD_ORIGIN = "https://too-good-frontend.vercel.app"
ANA = "ana@example.com"
US_DIGITS = "2025550123"  # Signup.js accepts /^\d{10,11}$/: no +1


@pytest.fixture
def tgtg() -> Iterator[TgtgPeer]:
    with TgtgPeer() as fake:
        fake.add_account(ANA)
        fake.add_item("774625", store="Bakery Blue", count=2, favorite_of=ANA)
        yield fake


@pytest.fixture
async def toogood(
    db: Database, clock: ManualClock, tgtg: TgtgPeer
) -> AsyncIterator[tuple[httpx.AsyncClient, Watcher]]:
    """The app as a TGTG alerts shop sets it, called from its front end's page."""
    async with httpx.AsyncClient() as http:
        outbox = Outbox(db, clock, default_region="US")
        watcher = Watcher(
            db,
            clock,
            TgtgClient(lambda: http, base_url=tgtg.base_url),
            WatcherSettings(),
            outbox=outbox,
            owner=OwnerAlerts(db, clock, outbox, phone="+12025550199"),
        )
        ctx = ApiContext(
            db=db,
            clock=clock,
            api_token=TOKEN,
            version="test",
            started_at=clock.now(),
            started_monotonic=clock.monotonic(),
            cors_origins=(TOOGOOD_ORIGIN,),
            settings=Settings(
                sms=SmsSettings(default_region="US"),
                api=ApiSettings(cors_origins=(TOOGOOD_ORIGIN,)),
            ),
            outbox=outbox,
            tgtg=watcher,
        )
        async with client_for(create_app(ctx)) as client:
            client.headers["Origin"] = TOOGOOD_ORIGIN
            yield client, watcher


async def post_data(client: httpx.AsyncClient, user_data: dict[str, str]) -> httpx.Response:
    """apihandler.js post_data: axios.post(POST_ROUTE, userData), JSON, after the preflight."""
    allowed = await client.options(
        "/submit_subscriber_info",
        headers={
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == TOOGOOD_ORIGIN
    response = await client.post("/submit_subscriber_info", json=user_data)
    assert response.headers.get("access-control-allow-origin") == TOOGOOD_ORIGIN
    return response


async def process_data(client: httpx.AsyncClient, subscriber_id: object) -> httpx.Response:
    """apihandler.js process_data: axios.get(`.../process_subscriber/${subscriberId}`)."""
    response = await client.get(f"/process_subscriber/{subscriber_id}")
    assert response.headers.get("access-control-allow-origin") == TOOGOOD_ORIGIN
    return response


async def test_toogood_signup_then_process_subscriber(
    toogood: tuple[httpx.AsyncClient, Watcher], tgtg: TgtgPeer, clock: ManualClock
) -> None:
    """TooGood `src/Signup.js` handleSubmit with `src/apihandler.js`: post_data {email,
    phoneNumber}, reads `status === 201` and `subscriber_id` (else shows `message`); then
    process_data(subscriber_id), shows `message` unless `status === 201`."""
    client, watcher = toogood
    submitted = await post_data(client, {"email": ANA, "phoneNumber": US_DIGITS})
    assert submitted.status_code == 200, submitted.text
    data = submitted.json()
    assert data["status"] == 201
    subscriber_id = data["subscriber_id"]
    assert subscriber_id == data["subscriber"]["id"]
    assert data["subscriber"]["phone"] == "+1" + US_DIGITS
    calls = len(tgtg.received)

    # The e-mail link is not clicked yet: the page shows the message, which says so.
    waiting = await process_data(client, subscriber_id)
    assert waiting.status_code == 200
    assert waiting.json()["status"] != 201 and "e-mail" in waiting.json()["message"]
    assert waiting.json()["state"] == "pending"

    tgtg.confirm(ANA)  # the subscriber clicks the link; the watcher's next poll sees it
    assert len(tgtg.received) == calls, "process_subscriber itself calls nothing"
    clock.advance(watcher.settings.poll_seconds)
    assert (await watcher.tick()).startswith("polled 1")
    done = await process_data(client, subscriber_id)
    assert done.json() == {
        "success": True,
        "status": 201,
        "message": "Subscriber information added successfully",
        "state": "active",
    }
    assert ANA not in done.text and US_DIGITS not in done.text


async def test_toogood_process_subscriber_tells_nothing_of_unknown_ids(
    toogood: tuple[httpx.AsyncClient, Watcher],
) -> None:
    """TooGood `src/apihandler.js` process_data with an id that has no login: the same answer
    as for an id that does not exist, so the public route does not list subscribers."""
    client, _ = toogood
    created = await client.post(
        "/api/v1/subscribers",
        json={"phone": "+12025550155"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert created.status_code == 201, created.text
    without_login = await process_data(client, created.json()["subscriber"]["id"])
    unknown = await process_data(client, 987_654)
    assert without_login.status_code == unknown.status_code == 200
    assert without_login.json() == unknown.json()
    assert unknown.json()["status"] == 500 and unknown.json()["success"] is False


async def test_toogood_older_client_phone_number(
    toogood: tuple[httpx.AsyncClient, Watcher],
) -> None:
    """TooGood `src/App.js` (the commented-out older client): posts {email, phone_number},
    11 digits with the leading 1, and reads `message`."""
    client, _ = toogood
    submitted = await post_data(client, {"email": ANA, "phone_number": "1" + US_DIGITS})
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["subscriber"]["phone"] == "+1" + US_DIGITS
    assert submitted.json()["status"] == 201 and submitted.json()["message"]


async def test_toogood_refusal_shows_its_message(
    toogood: tuple[httpx.AsyncClient, Watcher],
) -> None:
    """TooGood `src/Signup.js` handleApiError: on an HTTP error it shows
    `error.response.data.message`, which names the field and its rule."""
    client, _ = toogood
    refused = await post_data(client, {"email": "not-an-address", "phoneNumber": US_DIGITS})
    assert refused.status_code == 400
    assert refused.json()["success"] is False
    assert refused.json()["message"].startswith("body.email:")
