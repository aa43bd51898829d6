"""What the clock checks need of the tables (docs/clock.md): the newest time the database
holds, and queued messages whose wait a clock stepped back would stretch.

A Pi without a real-time clock boots at the time it last saved and steps when NTP answers; a
row written by an earlier run with a later time than the clock's now shows the clock is
behind. Each look is one cheap query: the last job run by rowid (a job runs every minute or
so, so it is when shopbell last ran) and the newest message by its `created_at` index.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta

import sqlite_utils

from storage.messages import add_event
from storage.models import parse_time


@dataclass(frozen=True, slots=True)
class NewestRow:
    """The latest time found, and where (`job_runs.started_at`, `messages.created_at`)."""

    at: str
    where: str


_LOOKS = (
    ("job_runs.started_at", "SELECT started_at FROM job_runs ORDER BY id DESC LIMIT 1"),
    ("messages.created_at", "SELECT max(created_at) FROM messages"),
)


def newest_row(db: sqlite_utils.Database | sqlite3.Connection) -> NewestRow | None:
    """The newest stamp of the tables above (UTC ISO text compares as time), None when empty."""
    best: NewestRow | None = None
    for where, sql in _LOOKS:
        row = db.execute(sql).fetchone()
        if row is None or row[0] is None:
            continue
        if best is None or str(row[0]) > best.at:
            best = NewestRow(str(row[0]), where)
    return best


def rebase_future_waits(db: sqlite_utils.Database, now: str) -> int:
    """Queued messages last changed "later" than `now` were put back by a clock that has
    since stepped back: each waits from now what it was told to wait then (due_at minus
    updated_at), not that plus the step. Returns how many were moved."""
    rows = db.execute(
        "SELECT id, due_at, updated_at FROM messages WHERE status = 'queued' AND updated_at > ?",
        [now],
    ).fetchall()
    moment = parse_time(now)
    for message_id, due_at, updated_at in rows:
        wait = max(timedelta(0), parse_time(due_at) - parse_time(updated_at))
        due = (moment + wait).isoformat(timespec="microseconds")
        db.execute(
            "UPDATE messages SET due_at = ?, updated_at = ? WHERE id = ?", [due, now, message_id]
        )
        add_event(
            db,
            message_id,
            "queued",
            now,
            detail=f"the clock stepped back; the wait starts again from now: next try at {due}",
        )
    return len(rows)
