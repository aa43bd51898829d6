"""Stored reports over HTTP: send one now (stored and queued as the scheduled job does), list
them newest first, read one; a day after today is refused by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from daemon.api.context import ApiContext
from daemon.config import Settings
from daemon.runtime.clock import ManualClock
from daemon.services.backoffice.service import BackOffice
from daemon.services.outbox.service import Outbox
from storage.database import Database
from storage.optouts import opt_out
from tests.daemon.api.backoffice_support import make_office
from tests.daemon.api.support import bearer

OWNER = "+14155550199"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 7, 12, 0, tzinfo=UTC))


@pytest.fixture
def office(db: Database, clock: ManualClock) -> BackOffice:
    return make_office(db, clock)


@pytest.fixture
def ctx(
    make_ctx: Callable[..., ApiContext], office: BackOffice, db: Database, clock: ManualClock
) -> ApiContext:
    settings = Settings.model_validate(
        {"shop": {"name": "Corner Shop"}, "reports": {"owner_phone": OWNER}}
    )
    return make_ctx(
        backoffice=office, outbox=Outbox(db, clock), settings=settings, max_body_bytes=100_000
    )


async def _sell(client: httpx.AsyncClient) -> None:
    body = {"name": "Soap", "price": "40.00", "category": "grocery", "stock": 10}
    product = (await client.post("/api/v1/products", json=body, headers=bearer())).json()
    order = {"items": [{"product_id": product["product"]["id"], "quantity": 2}]}
    assert (await client.post("/api/v1/orders", json=order, headers=bearer())).status_code == 201


async def test_send_now_stores_queues_and_lists_the_report(client: httpx.AsyncClient) -> None:
    await _sell(client)
    sent = await client.post(
        "/api/v1/reports/send", json={"kind": "daily", "date": "2026-01-07"}, headers=bearer()
    )
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["report"]["start"] == "2026-01-07" and body["report"]["total"] == "80.00"
    assert len(body["queued"]) == 1 and "queued to 1 recipient" in body["message"]
    queued = await client.get("/api/v1/messages", params={"kind": "report"}, headers=bearer())
    [sms] = queued.json()["messages"]
    assert sms["recipient"] == OWNER and "80.00" in sms["body"]

    weekly = await client.post("/api/v1/reports/send", json={"kind": "weekly"}, headers=bearer())
    assert weekly.json()["report"]["start"] == "2025-12-29"  # the last whole Monday-Sunday

    listed = (await client.get("/api/v1/reports", headers=bearer())).json()["reports"]
    assert [(r["kind"], r["start"], r["orders"]) for r in listed] == [
        ("weekly", "2025-12-29", 0),
        ("daily", "2026-01-07", 1),
    ]
    one = await client.get(f"/api/v1/reports/{listed[1]['id']}", headers=bearer())
    assert one.json()["report"]["content"]["total_minor"] == 8000
    daily_only = await client.get("/api/v1/reports", params={"kind": "daily"}, headers=bearer())
    assert [r["kind"] for r in daily_only.json()["reports"]] == ["daily"]


async def test_a_day_after_today_and_an_unknown_report_are_refused(
    client: httpx.AsyncClient,
) -> None:
    late = await client.post(
        "/api/v1/reports/send", json={"kind": "daily", "date": "2026-01-08"}, headers=bearer()
    )
    assert late.status_code == 400
    assert late.json()["errors"] == [
        {"field": "body.date", "rule": "must not be after today (the shop's day)"}
    ]
    missing = await client.get("/api/v1/reports/99", headers=bearer())
    assert missing.status_code == 404 and "no report with id 99" in missing.json()["message"]
    # The named report paths still answer: the id route does not shadow them.
    totals = await client.get("/api/v1/reports/daily-totals", headers=bearer())
    assert totals.status_code == 200


async def test_a_refused_message_is_its_own_status_not_a_500(
    client: httpx.AsyncClient, db: Database
) -> None:
    # The owner replied STOP: the outbox refuses the report's SMS (409), which reached the
    # client as a 500 before; the report itself is stored and listed.
    await db.write(lambda conn: opt_out(conn, OWNER, "2026-01-07T11:00:00Z", reason="STOP"))

    sent = await client.post("/api/v1/reports/send", json={"kind": "daily"}, headers=bearer())

    assert sent.status_code == 409, sent.text
    assert sent.json()["error"] == 409 and "stored but not queued" in sent.json()["message"]
    listed = (await client.get("/api/v1/reports", headers=bearer())).json()["reports"]
    assert [r["kind"] for r in listed] == ["daily"]
