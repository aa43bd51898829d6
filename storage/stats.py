"""Dashboard figures: messages by status, per period and per day, and each job's last run."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlite_utils

from storage.models import JobRun


def created_per_period(db: sqlite_utils.Database, bounds: Sequence[tuple[str, str]]) -> list[int]:
    """How many messages were created in each [start, end) of `bounds`, in order.

    Counted on the created_at index alone (no table rows read), so a busy day costs only
    its index entries.
    """
    # The periods arrive as one JSON parameter (as in storage/reports.py); each becomes one
    # range scan of idx_messages_created_at.
    rows = db.execute(
        "WITH periods(n, start, stop) AS (SELECT CAST(key AS INTEGER), "
        "json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)) "
        "SELECT periods.n, (SELECT count(*) FROM messages m "
        "WHERE m.created_at >= periods.start AND m.created_at < periods.stop) "
        "FROM periods ORDER BY periods.n",
        [json.dumps(list(bounds))],
    ).fetchall()
    return [int(row[1]) for row in rows]


def waiting(db: sqlite_utils.Database) -> dict[str, int]:
    """Messages still to send (queued, sending), on the (status, ...) index: a full count of
    every state would read every index entry, 1,000,000 of them in a big log."""
    rows = db.execute(
        "SELECT status, count(*) FROM messages WHERE status IN ('queued', 'sending') "
        "GROUP BY status"
    ).fetchall()
    return {str(status): int(count) for status, count in rows}


def status_between(db: sqlite_utils.Database, start: str, end: str) -> dict[str, int]:
    """Messages created in [start, end), counted by their status now."""
    rows = db.execute(
        "SELECT status, count(*) FROM messages INDEXED BY idx_messages_created_at "
        "WHERE created_at >= ? AND created_at < ? GROUP BY status",
        [start, end],
    ).fetchall()
    return {str(status): int(count) for status, count in rows}


def last_runs(db: sqlite_utils.Database, job_ids: Sequence[str]) -> dict[str, JobRun]:
    """The latest run of each job in `job_ids` that has run at all."""
    found: dict[str, JobRun] = {}
    for job_id in job_ids:
        # One index probe per job: job_runs grows by a row per tick of every job.
        rows = list(
            db.query(
                "SELECT * FROM job_runs WHERE job_id = ? ORDER BY started_at DESC, id DESC LIMIT 1",
                [job_id],
            )
        )
        if rows:
            found[job_id] = JobRun.from_row(rows[0])
    return found
