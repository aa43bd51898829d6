"""`shopbell db restore PATH`: a good backup comes back with the old database kept; a bad
one, or a running daemon, changes nothing and says why."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from daemon.admin.cli import cli
from daemon.runtime.lock import InstanceLock
from storage.admin import backup_file, check_file, migrate_file
from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    return write_config("")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """The live database: migrated, holding one marker row."""
    path = tmp_path / "data" / "shopbell.db"
    path.parent.mkdir(mode=0o700)
    migrate_file(path)
    mark(path, "before-backup")
    return path


def mark(path: Path, job_id: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO job_runs (job_id, started_at, outcome) "
            "VALUES (?, '2026-01-01', 'running')",
            [job_id],
        )
    conn.close()


def markers(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT job_id FROM job_runs ORDER BY id")]
    finally:
        conn.close()


def restore(config: Path, source: Path) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "db", "restore", str(source)])


def kept_files(database: Path) -> list[Path]:
    return sorted(database.parent.glob(f"{database.name}.before-restore-*"))


def test_a_good_backup_is_restored_and_the_old_database_kept(
    config: Path, database: Path, tmp_path: Path
) -> None:
    backup = backup_file(database, tmp_path / "nightly.db").path
    mark(database, "after-backup")

    result = restore(config, backup)

    assert result.exit_code == 0, result.output
    assert "integrity ok" in result.output
    assert f"restored {database} from {backup}" in result.output
    assert markers(database) == ["before-backup"]
    [kept] = kept_files(database)
    assert f"kept the previous database as {kept}" in result.output
    assert markers(kept) == ["before-backup", "after-backup"]
    assert check_file(database).ok
    assert not database.with_name(database.name + "-wal").exists()
    assert oct(database.stat().st_mode & 0o777) == "0o600"
    # The daemon starts on the restored file (schema up to date, lock free).
    assert (
        "schema up to date"
        in CliRunner().invoke(cli, ["--config", str(config), "db", "migrate"]).output
    )


def test_a_file_that_is_not_sqlite_changes_nothing(
    config: Path, database: Path, tmp_path: Path
) -> None:
    bogus = tmp_path / "photo.jpg"
    bogus.write_bytes(b"\xff\xd8\xff\xe0" + b"JFIF" * 500)
    before = database.read_bytes()

    result = restore(config, bogus)

    assert result.exit_code == 1
    assert "is not an SQLite database" in result.output
    assert "Nothing was changed" in result.output
    assert database.read_bytes() == before
    assert kept_files(database) == []
    assert list(database.parent.glob(".*.tmp")) == []


def test_a_damaged_backup_changes_nothing(config: Path, database: Path, tmp_path: Path) -> None:
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT INTO job_runs (job_id, started_at, outcome) VALUES (?, '2026', 'running')",
            [(f"row-{n:04d}-" + "x" * 200,) for n in range(300)],
        )
    conn.close()
    backup = backup_file(database, tmp_path / "damaged.db").path
    raw = bytearray(backup.read_bytes())
    page = 4096
    assert len(raw) > 8 * page
    # Scribble over the middle of the file: table pages, not the header.
    raw[3 * page : 6 * page] = b"\x5a" * (3 * page)
    backup.write_bytes(bytes(raw))
    before = database.read_bytes()

    result = restore(config, backup)

    assert result.exit_code == 1
    assert "Nothing was changed" in result.output
    assert "integrity check" in result.output or "damaged" in result.output
    assert database.read_bytes() == before
    assert kept_files(database) == []
    assert list(database.parent.glob(".*.tmp")) == []


def test_a_backup_from_a_newer_shopbell_is_refused(
    config: Path, database: Path, tmp_path: Path
) -> None:
    backup = backup_file(database, tmp_path / "newer.db").path
    with sqlite3.connect(backup) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('shopbell', 'm999_from_the_future', '2027-01-01')"
        )
    conn.close()

    result = restore(config, backup)

    assert result.exit_code == 1
    assert "newer shopbell" in result.output and "m999_from_the_future" in result.output
    assert markers(database) == ["before-backup"]


def test_a_missing_file_is_named(config: Path, database: Path, tmp_path: Path) -> None:
    result = restore(config, tmp_path / "nope.db")
    assert result.exit_code == 1
    assert "there is no such file" in result.output


def test_restore_refuses_while_the_daemon_runs(
    config: Path, database: Path, tmp_path: Path
) -> None:
    backup = backup_file(database, tmp_path / "nightly.db").path
    mark(database, "after-backup")

    # The running daemon's hold on the database: its instance lock.
    with InstanceLock(database):
        result = restore(config, backup)

    assert result.exit_code == 1
    assert "already using" in result.output
    assert "A restore needs the daemon stopped; nothing was changed." in result.output
    assert markers(database) == ["before-backup", "after-backup"]
    assert kept_files(database) == []


def test_restore_onto_a_fresh_install_keeps_nothing(
    write_config: Callable[..., Path], database: Path, tmp_path: Path
) -> None:
    backup = backup_file(database, tmp_path / "nightly.db").path
    fresh = write_config(f'[paths]\ndata_dir = "{tmp_path / "fresh"}"\n', name="fresh.toml")

    result = restore(fresh, backup)

    assert result.exit_code == 0, result.output
    assert "kept the previous" not in result.output
    assert markers(tmp_path / "fresh" / "shopbell.db") == ["before-backup"]


def test_restore_refuses_while_a_real_daemon_runs(
    spawn: Callable[..., DaemonProcess],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(f"[api]\nport = {port}\n")
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    database = tmp_path / "data" / "shopbell.db"
    backup = backup_file(database, tmp_path / "nightly.db").path
    try:
        result = restore(config, backup)
    finally:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    assert result.exit_code == 1
    assert f"process {daemon.proc.pid}" in result.output
    assert "nothing was changed" in result.output
    assert kept_files(database) == []
    assert list(database.parent.glob(".*.tmp")) == []
