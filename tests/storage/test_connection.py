"""Refusals at the door: both writers (daemon and `db migrate`) check the file before writing."""

# Between awaits these tests look at small temporary files; blocking for that is fine.
# ruff: noqa: ASYNC240

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from storage.admin import migrate_file
from storage.database import Database
from storage.errors import (
    DatabaseUnavailableError,
    NotADatabaseError,
    SchemaTooNewError,
    StorageError,
)
from tests.storage import factories as f
from tests.storage.probes import db_threads, permissions_enforced, sidecar_files

Opener = Callable[[Path], Awaitable[list[str]]]

needs_permissions = pytest.mark.skipif(
    not permissions_enforced(), reason="running as root: file permissions are not enforced"
)


async def _database_open(path: Path) -> list[str]:
    database = Database(path)
    try:
        return await database.open()
    finally:
        await database.close()


async def _migrate_file(path: Path) -> list[str]:
    return migrate_file(path)


@pytest.fixture(params=[_database_open, _migrate_file], ids=["Database.open", "migrate_file"])
def opener(request: pytest.FixtureRequest) -> Iterator[Opener]:
    yield request.param
    # Whatever happened, no database thread may be left behind.
    assert db_threads() == []


def _assert_plain(error: StorageError, path: Path) -> None:
    text = str(error)
    assert str(path) in text
    assert "\n" not in text
    assert "Traceback" not in text


async def test_a_new_database_is_created_private_and_migrated(
    opener: Opener, db_path: Path
) -> None:
    applied = await opener(db_path)
    assert applied[0] == "m001_create_subscribers"
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


async def test_an_empty_file_is_an_empty_database(opener: Opener, db_path: Path) -> None:
    db_path.touch()
    assert await opener(db_path) != []


async def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(
    opener: Opener, db_path: Path
) -> None:
    original = b"name,phone\nAsha,+447700900123\n" * 50
    db_path.write_bytes(original)
    with pytest.raises(NotADatabaseError) as caught:
        await opener(db_path)
    _assert_plain(caught.value, db_path)
    assert "not an SQLite file" in str(caught.value)
    assert db_path.read_bytes() == original
    assert sidecar_files(db_path) == []


async def test_a_newer_schema_is_refused_and_left_alone(opener: Opener, db_path: Path) -> None:
    migrate_file(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
        ["shopbell", "m999_add_loyalty_points", f.NOW],
    )
    conn.commit()
    # Rollback-journal mode, as a restored backup is: switching it to WAL would be a write.
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    original = db_path.read_bytes()

    with pytest.raises(SchemaTooNewError) as caught:
        await opener(db_path)
    _assert_plain(caught.value, db_path)
    assert caught.value.unknown == ("m999_add_loyalty_points",)
    assert "m999_add_loyalty_points" in str(caught.value)
    assert "restore a backup" in str(caught.value)
    assert db_path.read_bytes() == original
    assert sidecar_files(db_path) == []


async def test_a_missing_folder_is_named(opener: Opener, tmp_path: Path) -> None:
    path = tmp_path / "not-made-yet" / "shopbell.db"
    with pytest.raises(DatabaseUnavailableError) as caught:
        await opener(path)
    _assert_plain(caught.value, path)
    assert f"the folder {path.parent} does not exist" in str(caught.value)
    assert not path.parent.exists()


async def test_a_folder_as_the_path_is_refused(opener: Opener, tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailableError, match="is a folder"):
        await opener(tmp_path)


@needs_permissions
async def test_a_folder_without_write_permission_is_refused(opener: Opener, tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await opener(folder / "shopbell.db")
        assert str(folder) in str(caught.value)
        assert "permission" in str(caught.value).lower()
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


@needs_permissions
async def test_a_read_only_database_is_refused(opener: Opener, db_path: Path) -> None:
    migrate_file(db_path)
    db_path.chmod(0o400)
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await opener(db_path)
        _assert_plain(caught.value, db_path)
    finally:
        db_path.chmod(0o600)
