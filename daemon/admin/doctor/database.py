"""The doctor's file checks: the data folder (private, writable) and the database."""

from __future__ import annotations

import asyncio
import os
import sqlite3

from daemon.admin.doctor.check import Check, Context, file_mode, human_size
from daemon.admin.doctor.tgtg import tgtg_check
from daemon.config import Settings
from daemon.runtime.paths import DIR_MODE, FILE_MODE
from storage import migrations
from storage import tgtg as tgtg_rows
from storage.connection import open_verified
from storage.errors import StorageError


async def check_data_dir(ctx: Context) -> list[Check]:
    return [await asyncio.to_thread(_data_dir_sync, ctx.settings)]


def _data_dir_sync(settings: Settings) -> Check:
    folder = settings.data_dir
    if not folder.exists():
        return Check(
            "data dir",
            "WARN",
            f"{folder} does not exist yet",
            "`shopbell run` (or `shopbell init`) creates it, private to this user",
        )
    if not folder.is_dir():
        return Check(
            "data dir",
            "FAIL",
            f"{folder} is a file, not a folder",
            "move that file away or set [paths] data_dir to a folder",
        )
    loose = [f"{folder} is mode {file_mode(folder):o}"] if file_mode(folder) & ~DIR_MODE else []
    files = [settings.database_path, settings.token_path]
    for path in files:
        if path.is_file() and file_mode(path) & ~FILE_MODE:
            loose.append(f"{path.name} is mode {file_mode(path):o}")
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check(
            "data dir",
            "FAIL",
            f"{folder} is not writable by this user",
            "run the doctor as the daemon's user (sudo -u shopbell shopbell doctor), or "
            "fix the folder's owner (chown)",
        )
    if loose:
        return Check(
            "data dir",
            "WARN",
            f"{folder}: others may read it ({'; '.join(loose)})",
            f"chmod 700 {folder} and chmod 600 the files in it (they hold phone numbers "
            "and tokens)",
        )
    return Check("data dir", "OK", f"{folder}, private to this user")


async def check_database_and_tgtg(ctx: Context) -> list[Check]:
    database, accounts = await asyncio.to_thread(_database_sync, ctx.settings)
    checks = [database]
    if accounts is not None:
        checks.append(tgtg_check(accounts))
    return checks


def _database_sync(settings: Settings) -> tuple[Check, list[tgtg_rows.TgtgAccount] | None]:
    path = settings.database_path
    if not path.exists():
        return (
            Check(
                "database",
                "WARN",
                f"no database yet at {path}",
                "`shopbell run` creates it at its first start (or `shopbell db migrate` "
                "now); if you had one, check [paths] database",
            ),
            None,
        )
    try:
        db = open_verified(path, read_only=True, busy_timeout_ms=settings.database.busy_timeout_ms)
    except StorageError as exc:
        # StorageError's text already says what to do; name where the details are.
        return Check("database", "FAIL", str(exc), "`shopbell db check` shows more"), None
    try:
        quick = [str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall()]
        status = migrations.status(db)
        # Accounts are read with this version's record type: only from a current schema.
        current = not status.pending and not status.unknown
        accounts = tgtg_rows.accounts(db) if current else None
    except sqlite3.DatabaseError as exc:
        return (
            Check(
                "database",
                "FAIL",
                f"{path} is damaged (SQLite said: {exc})",
                "stop shopbell, keep the damaged file aside and restore the latest backup",
            ),
            None,
        )
    finally:
        db.close()
    # In WAL mode recent writes sit in the -wal file until a checkpoint: count both.
    wal = path.with_name(path.name + "-wal")
    size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    if quick != ["ok"]:
        return (
            Check(
                "database",
                "FAIL",
                f"{path} is damaged: {'; '.join(quick[:3])}",
                "stop shopbell, keep the damaged file aside and restore the latest backup",
                tuple(quick[3:10]),
            ),
            None,
        )
    if status.unknown:
        return (
            Check(
                "database",
                "FAIL",
                f"{path} was written by a newer shopbell ({', '.join(status.unknown)})",
                "install that newer shopbell, or restore a backup made with this version",
            ),
            accounts,
        )
    if status.pending:
        return (
            Check(
                "database",
                "WARN",
                f"{path}: {len(status.pending)} schema change(s) pending "
                f"({', '.join(status.pending)})",
                "the daemon applies them when it starts; or run `shopbell db migrate`",
            ),
            accounts,
        )
    return (
        Check(
            "database",
            "OK",
            f"{path}: sound (quick_check), schema up to date "
            f"({len(status.applied)} migrations), {human_size(size)}",
        ),
        accounts,
    )
