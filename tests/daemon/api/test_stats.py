"""GET /api/v1/stats against a real database, with the shop at UTC+5:30 (Asia/Kolkata): its day
and its hours begin at :30 past in UTC, so UTC buckets would count differently."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.config import Settings
from daemon.runtime.clock import ManualClock
from daemon.services.outbox.service import EnqueueRequest, Outbox
from storage.database import Database
from tests.daemon.api.support import bearer, client_for

ZONE = "Asia/Kolkata"
# 2026-03-10 00:10 in Kolkata: the shop's day began 10 minutes ago.
NOW = datetime(2026, 3, 9, 18, 40, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW - timedelta(hours=30))


@pytest.fixture
def ctx(make_ctx: Callable[..., ApiContext]) -> ApiContext:
    settings = Settings.model_validate(
        {"shop": {"name": "Corner Shop", "timezone": ZONE, "currency": "INR"}}
    )
    return make_ctx(settings=settings, jobs=lambda: {})


def _at(clock: ManualClock, moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


async def _send(outbox: Outbox) -> int:
    queued = await outbox.enqueue(EnqueueRequest(channel="sms", recipient="+14155550100", body="x"))
    return queued.message.id


async def _mark(db: Database, message_id: int, status: str) -> None:
    # What the dispatcher would have written; the dashboard only reads the status.
    await db.write(
        lambda c: c.execute("UPDATE messages SET status = ? WHERE id = ?", [status, message_id])
    )


async def test_today_and_hours_follow_the_shops_time_zone(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    outbox = Outbox(db, clock)
    # 23:55 yesterday in Kolkata (18:25 UTC on the same UTC date as "now"): not today.
    _at(clock, datetime(2026, 3, 9, 18, 25, tzinfo=UTC))
    await _mark(db, await _send(outbox), "sent")
    # 00:02 and 00:05 today in Kolkata.
    _at(clock, datetime(2026, 3, 9, 18, 32, tzinfo=UTC))
    await _mark(db, await _send(outbox), "delivered")
    await _mark(db, await _send(outbox), "failed")
    _at(clock, datetime(2026, 3, 9, 18, 35, tzinfo=UTC))
    await _send(outbox)
    _at(clock, NOW)

    response = await client.get("/api/v1/stats", headers=bearer())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["shop"] == {"name": "Corner Shop", "currency": "INR", "timezone": ZONE}
    assert body["today"] == {
        "date": "2026-03-10",
        "created": 3,
        "sent": 1,  # the delivered one left the shop too
        "delivered": 1,
        "failed": 1,
        "by_status": {
            "queued": 1,
            "sending": 0,
            "sent": 0,
            "delivered": 1,
            "undelivered": 0,
            "failed": 1,
            "cancelled": 0,
        },
    }
    # The queue counts what still waits, whatever day it was made.
    assert body["queue"] == {"queued": 1, "sending": 0}
    hourly = body["hourly"]
    assert len(hourly) == 24
    # Local hours: the last began at 00:00 Kolkata = 18:30 UTC, the one before at 17:30 UTC.
    assert hourly[-1]["start"].startswith("2026-03-09T18:30:00")
    assert hourly[-2]["start"].startswith("2026-03-09T17:30:00")
    assert [h["count"] for h in hourly[-2:]] == [1, 3]
    assert sum(h["count"] for h in hourly) == 4


async def test_a_message_older_than_a_day_is_outside_the_hours(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    outbox = Outbox(db, clock)
    await _send(outbox)  # 30 hours before now
    _at(clock, NOW)
    body = (await client.get("/api/v1/stats", headers=bearer())).json()
    assert sum(h["count"] for h in body["hourly"]) == 0
    assert body["today"]["created"] == 0
    assert body["queue"]["queued"] == 1


async def test_jobs_show_their_next_run_and_last_run(
    make_ctx: Callable[..., ApiContext], db: Database, clock: ManualClock
) -> None:
    _at(clock, NOW)
    next_run = NOW + timedelta(minutes=5)
    await db.write(
        lambda c: c.execute(
            "INSERT INTO job_runs (job_id, started_at, finished_at, outcome, detail) VALUES "
            "('otp-sweep', ?, ?, 'ok', 'old'), ('otp-sweep', ?, ?, 'error', 'boom')",
            [
                "2026-03-09T18:00:00.000000+00:00",
                "2026-03-09T18:00:01.000000+00:00",
                "2026-03-09T18:30:00.000000+00:00",
                "2026-03-09T18:30:02.000000+00:00",
            ],
        )
    )
    app = create_app(make_ctx(jobs=lambda: {"otp-sweep": next_run, "report-daily": None}))
    async with client_for(app) as client:
        body = (await client.get("/api/v1/stats", headers=bearer())).json()

    assert body["jobs"] == [
        {
            "id": "otp-sweep",
            "next_run_at": "2026-03-09T18:45:00.000000+00:00",
            "last_run": {
                "started_at": "2026-03-09T18:30:00.000000+00:00",
                "finished_at": "2026-03-09T18:30:02.000000+00:00",
                "outcome": "error",
                "detail": "boom",
            },
        },
        {"id": "report-daily", "next_run_at": None, "last_run": None},
    ]


async def test_stats_need_the_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/stats")
    assert response.status_code == 401
    assert response.json()["success"] is False
    wrong = await client.get("/api/v1/stats", headers=bearer("not-the-token"))
    assert wrong.status_code == 401
