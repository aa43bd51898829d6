"""The database file deleted, moved or replaced under a running daemon: nothing more is
acknowledged, and the next start refuses to begin again on an empty database (issue 19)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.connection import kept_marker, open_for_writing
from storage.database import Database
from storage.errors import DatabaseGoneError, DatabaseMissingError


def insert_run(conn: object, job_id: str) -> int:
    cursor = conn.execute(  # type: ignore[attr-defined]
        "INSERT INTO job_runs (job_id, started_at, outcome) VALUES (?, '2026-01-01', 'running')",
        [job_id],
    )
    return int(cursor.lastrowid)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "shopbell.db")
    await database.open(migrate=True)
    await database.write(lambda c: insert_run(c, "before"))
    yield database
    await database.close()


async def test_a_deleted_file_takes_no_more_writes_and_says_so(live: Database) -> None:
    live.path.unlink()

    with pytest.raises(DatabaseGoneError) as refused:
        await live.write(lambda c: insert_run(c, "after"))
    assert "was deleted" in str(refused.value)
    assert str(live.path) in str(refused.value)
    assert "shopbell db restore" in str(refused.value)
    assert await live.ping() is False
    # Every later write is refused at once, without a trip to the database thread.
    with pytest.raises(DatabaseGoneError):
        await live.write(lambda c: insert_run(c, "later"))
    # Reads still answer (the open file is still readable), so the TUI can show what was.
    jobs = await live.execute(lambda c: [r[0] for r in c.execute("SELECT job_id FROM job_runs")])
    assert jobs == ["before"]


async def test_a_moved_file_is_noticed(live: Database, tmp_path: Path) -> None:
    os.rename(live.path, tmp_path / "elsewhere.db")
    with pytest.raises(DatabaseGoneError, match="was moved away"):
        await live.write(lambda c: insert_run(c, "after"))


async def test_a_replaced_file_is_noticed_and_left_as_it_is(live: Database, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    os.replace(other, live.path)
    before = live.path.read_bytes()

    with pytest.raises(DatabaseGoneError, match="was replaced by another file"):
        await live.write(lambda c: insert_run(c, "after"))
    await live.close()
    # Whatever was put there is not written over, not even by the closing checkpoint.
    assert live.path.read_bytes() == before


def test_a_missing_database_where_one_was_kept_is_not_created_again(tmp_path: Path) -> None:
    path = tmp_path / "shopbell.db"
    open_for_writing(path).close()
    marker = kept_marker(path)
    assert marker.exists()
    path.unlink()

    with pytest.raises(DatabaseMissingError) as refused:
        open_for_writing(path)
    assert not path.exists(), "no empty database may take the lost one's place"
    message = str(refused.value)
    assert "shopbell db restore" in message and str(marker) in message

    # The owner who wants a fresh start says so by removing the marker.
    marker.unlink()
    open_for_writing(path).close()
    assert path.exists() and marker.exists()
