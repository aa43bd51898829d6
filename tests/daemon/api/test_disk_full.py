"""A full disk through the API: 507 with a plain sentence, health degraded with the reason,
nothing half-stored, and sending works again once there is room (issue 19)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.runtime.clock import ManualClock
from daemon.services.outbox.service import Outbox
from storage.database import Database
from tests.daemon.api.support import TOKEN, client_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_full_disk_answers_507_and_recovers_by_itself(
    make_ctx: Callable[..., ApiContext], db: Database, clock: ManualClock
) -> None:
    app: FastAPI = create_app(make_ctx(outbox=Outbox(db, clock), max_body_bytes=100_000))
    async with client_for(app) as client:
        first = await client.post(
            "/api/v1/messages", json={"to": "+447400123456", "body": "kept"}, headers=AUTH
        )
        assert first.status_code == 201, first.text
        pages = await db.execute(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        await db.execute(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 4}"))

        # Sent until the disk is full, as a shop's queue fills a small card.
        acknowledged = ["kept"]
        for n in range(200):
            body = f"{n:03d}" + "x" * 1497
            refused = await client.post(
                "/api/v1/messages", json={"to": "+447400123457", "body": body}, headers=AUTH
            )
            if refused.status_code != 201:
                break
            acknowledged.append(body)
        assert refused.status_code == 507, refused.text
        assert "is full, so this was not written" in refused.json()["message"]
        health = (await client.get("/api/health", headers=AUTH)).json()
        assert health["status"] == "degraded"
        assert "is full" in health["database"]["detail"]
        # Every acknowledged message is there, whole; the refused one is not.
        stored = await db.execute(
            lambda c: [r[0] for r in c.execute("SELECT body FROM messages ORDER BY id")]
        )
        assert stored == acknowledged

        await db.execute(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
        again = await client.post(
            "/api/v1/messages", json={"to": "+447400123457", "body": "room"}, headers=AUTH
        )
        assert again.status_code == 201, again.text
        health = (await client.get("/api/health", headers=AUTH)).json()
        assert "detail" not in health["database"]
