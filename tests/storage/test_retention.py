"""Retention deletes only old, finished rows, in bounded batches, and leaves the rest alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlite_utils

from daemon.runtime.clock import ManualClock, utc_iso
from daemon.services.care import retention as care_retention
from daemon.services.care.retention import Retention
from storage import retention
from storage.database import Database
from tests.storage import factories as f

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
OLD = utc_iso(NOW - timedelta(days=200))
RECENT = utc_iso(NOW - timedelta(days=10))
FINAL = ("sent", "delivered", "undelivered", "failed", "cancelled")


def _message(db: sqlite_utils.Database, status: str, at: str, **over: Any) -> int:
    row = f.message(
        status=status,
        created_at=at,
        due_at=at,
        updated_at=at,
        lease_until=at if status == "sending" else None,
        kind="manual",
        **over,
    )
    message_id = f.insert(db, "messages", row)
    f.insert(db, "message_events", f.message_event(message_id, at=at))
    f.insert(db, "message_events", f.message_event(message_id, at=at, state="sending"))
    f.insert(db, "message_parts", f.message_part(message_id, sent_at=at))
    return message_id


def _ids(db: sqlite_utils.Database, table: str) -> set[int]:
    return {row[0] for row in db.execute(f"SELECT id FROM {table}").fetchall()}


def _seed(db: sqlite_utils.Database) -> dict[str, Any]:
    """Old and recent rows of every kind retention looks at; returns what must survive."""
    keep: dict[str, Any] = {}
    old_final = [_message(db, status, OLD) for status in FINAL]
    old_live = [_message(db, status, OLD) for status in ("queued", "sending")]
    recent = [_message(db, status, RECENT) for status in FINAL]
    keep["messages"] = set(old_live + recent)
    keep["old_final"] = set(old_final)
    otp = f.insert(db, "otp_codes", f.otp_code(message_id=old_final[0]))
    keep["otp"] = otp
    f.insert(db, "inbound_messages", f.inbound_message(received_at=OLD, provider_message_id="a"))
    keep["inbound"] = {
        f.insert(
            db, "inbound_messages", f.inbound_message(received_at=RECENT, provider_message_id="b")
        )
    }
    f.insert(db, "job_runs", f.job_run(started_at=OLD, finished_at=OLD))
    keep["job_runs"] = {
        f.insert(db, "job_runs", f.job_run(started_at=OLD, finished_at=None, outcome="running")),
        f.insert(db, "job_runs", f.job_run(started_at=RECENT, finished_at=RECENT)),
    }
    f.insert(db, "owner_alerts", f.owner_alert(key="a", raised_at=OLD, cleared_at=OLD))
    keep["owner_alerts"] = {
        f.insert(db, "owner_alerts", f.owner_alert(key="b", raised_at=OLD, cleared_at=None)),
        f.insert(db, "owner_alerts", f.owner_alert(key="c", raised_at=RECENT, cleared_at=RECENT)),
    }
    return keep


async def test_old_final_rows_go_and_everything_else_stays(
    database: Database, sync_db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = _seed(sync_db)
    sync_db.conn.commit()
    # Small batches, so the job must loop: 5 old final messages in batches of 2.
    monkeypatch.setattr(care_retention, "MESSAGE_BATCH", 2)
    monkeypatch.setattr(care_retention, "ROW_BATCH", 1)

    detail = await Retention(database, ManualClock(NOW), days=180).run()

    assert "5 messages" in detail and "10 message_events" in detail
    assert "5 message_parts" in detail and "1 inbound_messages" in detail
    assert _ids(sync_db, "messages") == keep["messages"]
    left_events = {r[0] for r in sync_db.execute("SELECT message_id FROM message_events")}
    assert left_events == keep["messages"]
    left_parts = {r[0] for r in sync_db.execute("SELECT message_id FROM message_parts")}
    assert left_parts == keep["messages"]
    # The OTP code keeps its row (the otp-sweep owns it); its link to the message is emptied.
    assert sync_db.execute(
        "SELECT message_id FROM otp_codes WHERE id = ?", [keep["otp"]]
    ).fetchone() == (None,)
    assert _ids(sync_db, "inbound_messages") == keep["inbound"]
    assert _ids(sync_db, "job_runs") == keep["job_runs"]
    assert _ids(sync_db, "owner_alerts") == keep["owner_alerts"]
    assert sync_db.execute("PRAGMA foreign_key_check").fetchall() == []


async def test_zero_days_keeps_everything(
    database: Database, sync_db: sqlite_utils.Database
) -> None:
    _seed(sync_db)
    sync_db.conn.commit()
    before = sync_db.execute("SELECT count(*) FROM messages").fetchone()

    detail = await Retention(database, ManualClock(NOW), days=0).run()

    assert "keeping everything" in detail
    assert sync_db.execute("SELECT count(*) FROM messages").fetchone() == before


def test_one_batch_deletes_at_most_its_limit(sync_db: sqlite_utils.Database) -> None:
    keep = _seed(sync_db)
    before = utc_iso(NOW - timedelta(days=180))

    first = retention.delete_old_messages(sync_db, before, 2)
    assert first.counts == {"messages": 2, "message_events": 4, "message_parts": 2}
    rest = retention.delete_old_messages(sync_db, before, 100)
    assert rest.primary == 3
    assert retention.delete_old_messages(sync_db, before, 100).primary == 0
    assert _ids(sync_db, "messages") == keep["messages"]


def test_notifications_go_only_once_their_messages_have(sync_db: sqlite_utils.Database) -> None:
    before = utc_iso(NOW - timedelta(days=180))
    lonely = f.insert(sync_db, "notifications", f.notification(created_at=OLD))
    used = f.insert(sync_db, "notifications", f.notification(created_at=OLD))
    _message(sync_db, "queued", OLD, notification_id=used)

    assert retention.delete_old_notifications(sync_db, before, 10).primary == 1
    assert _ids(sync_db, "notifications") == {used}
    assert lonely not in _ids(sync_db, "notifications")
