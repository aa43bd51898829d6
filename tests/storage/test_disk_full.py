"""A full disk is a clear state: the write that did not fit is refused in plain words,
nothing committed before is touched, and writing resumes by itself (issue 19).

SQLite's own size limit (PRAGMA max_page_count) makes it answer exactly as a full disk does
(SQLITE_FULL, "database or disk is full"), without filling this machine's disk.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storage.database import Database
from storage.errors import DiskFullError


def add(conn: object, job_id: str, padding: int = 0) -> None:
    conn.execute(  # type: ignore[attr-defined]
        "INSERT INTO job_runs (job_id, started_at, outcome, detail) "
        "VALUES (?, '2026-01-01', 'running', ?)",
        [job_id, "x" * padding],
    )


def jobs(conn: object) -> list[str]:
    return [row[0] for row in conn.execute("SELECT job_id FROM job_runs ORDER BY id")]  # type: ignore[attr-defined]


async def test_a_full_disk_refuses_the_write_keeps_the_rest_and_recovers(tmp_path: Path) -> None:
    database = Database(tmp_path / "shopbell.db")
    await database.open(migrate=True)
    try:
        await database.write(lambda c: add(c, "kept"))
        pages = await database.execute(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        await database.execute(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 1}"))

        with pytest.raises(DiskFullError) as refused:
            await database.write(lambda c: add(c, "too big", padding=200_000))
        assert "is full, so this was not written" in str(refused.value)
        assert database.disk_full is not None
        # Queued together (one group commit): all refused, none half-kept.
        for outcome in await _together(database):
            assert isinstance(outcome, DiskFullError)
        assert await database.execute(jobs) == ["kept"]
        assert await database.ping() is True  # reads go on

        await database.execute(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
        await database.write(lambda c: add(c, "after", padding=200_000))
        assert database.disk_full is None
        assert await database.execute(jobs) == ["kept", "after"]
    finally:
        await database.close()


async def _together(database: Database) -> list[BaseException | None]:
    results = await asyncio.gather(
        database.write(lambda c: add(c, "a")),
        database.write(lambda c: add(c, "b", padding=200_000)),
        return_exceptions=True,
    )
    return [r if isinstance(r, BaseException) else None for r in results]
