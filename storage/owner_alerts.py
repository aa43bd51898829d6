"""Owner alerts: one open row per key until cleared, and the history the hourly limit counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlite_utils

from storage.models import OwnerAlert

_COLUMNS = "id, key, text, subject, raised_at, queued_at, cleared_at"
# The open alerts are the rows of this partial index; named, because the planner would rather
# read the whole history in id order than sort the few open ones.
_OPEN = "INDEXED BY idx_owner_alerts_key_open"


@dataclass(frozen=True, slots=True)
class Raised:
    """What `raise_alert` decided: a new alert to queue, or why there is none."""

    outcome: Literal["raised", "open", "limited"]
    alert: OwnerAlert | None = None


def raise_alert(
    db: sqlite_utils.Database,
    key: str,
    text: str,
    subject: str | None,
    *,
    now: str,
    hour_ago: str,
    max_per_hour: int,
) -> Raised:
    """Open an alert for `key` unless one is open or `max_per_hour` went out in the last hour.

    Runs in one transaction with its checks, so two callers cannot both open the same key.
    """
    if db.execute(
        "SELECT 1 FROM owner_alerts WHERE key = ? AND cleared_at IS NULL", [key]
    ).fetchone():
        return Raised("open")
    (recent,) = db.execute(
        "SELECT count(*) FROM owner_alerts WHERE raised_at > ?", [hour_ago]
    ).fetchone()
    if recent >= max_per_hour:
        return Raised("limited")
    cursor = db.execute(
        "INSERT INTO owner_alerts (key, text, subject, raised_at) VALUES (?, ?, ?, ?)",
        [key, text, subject, now],
    )
    alert = _get(db, int(cursor.lastrowid or 0))
    assert alert is not None
    return Raised("raised", alert)


def mark_queued(db: sqlite_utils.Database, alert_id: int, now: str) -> None:
    """The alert's messages are in the outbox."""
    db.execute("UPDATE owner_alerts SET queued_at = ? WHERE id = ?", [now, alert_id])


def clear_alert(db: sqlite_utils.Database, key: str, now: str) -> OwnerAlert | None:
    """Close the open alert for `key`; the alert as it was, or None when none was open."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM owner_alerts WHERE key = ? AND cleared_at IS NULL",  # noqa: S608
        [key],
    ).fetchone()
    if row is None:
        return None
    db.execute("UPDATE owner_alerts SET cleared_at = ? WHERE id = ?", [now, row[0]])
    return _record(row)


def unqueued(db: sqlite_utils.Database) -> list[OwnerAlert]:
    """Open alerts whose messages were never queued (a crash came in between)."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM owner_alerts {_OPEN} "  # noqa: S608
        "WHERE cleared_at IS NULL AND queued_at IS NULL ORDER BY id"
    ).fetchall()
    return [_record(row) for row in rows]


def open_alerts(db: sqlite_utils.Database) -> list[OwnerAlert]:
    """Every alert not cleared yet, oldest first (for health and doctor)."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM owner_alerts {_OPEN} WHERE cleared_at IS NULL ORDER BY id"  # noqa: S608
    ).fetchall()
    return [_record(row) for row in rows]


def _get(db: sqlite_utils.Database, alert_id: int) -> OwnerAlert | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM owner_alerts WHERE id = ?",  # noqa: S608
        [alert_id],
    ).fetchone()
    return _record(row) if row else None


def _record(row: Any) -> OwnerAlert:
    return OwnerAlert.from_row(dict(zip(_COLUMNS.split(", "), row, strict=True)))
