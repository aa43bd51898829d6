"""Storage fixtures: a database path, an open Database, a migrated plain connection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlite_utils

from storage import migrations
from storage.connection import open_for_writing
from storage.database import Database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "shopbell.db"


@pytest.fixture
async def database(db_path: Path) -> AsyncIterator[Database]:
    """An open, migrated Database, closed after the test."""
    database = Database(db_path)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def sync_db(db_path: Path) -> Iterator[sqlite_utils.Database]:
    """A migrated database on a plain connection, with the daemon's pragmas."""
    db = open_for_writing(db_path)
    migrations.apply(db)
    yield db
    db.close()
