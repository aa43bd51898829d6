"""Storage errors whose text a shopkeeper can act on: the file, what went wrong, what to do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class StorageError(Exception):
    """The database cannot be used; `str()` is a plain sentence for the shopkeeper."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class NotADatabaseError(StorageError):
    """The file exists but is not an SQLite database."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is not a shopbell database: it is not an SQLite file. "
            "Nothing was changed. Check the database path in the configuration, "
            "or move that file somewhere else so shopbell can create a new database.",
            path=path,
        )


class SchemaTooNewError(StorageError):
    """The database has migrations this version does not know: a newer shopbell wrote it."""

    def __init__(self, path: Path | None, unknown: Sequence[str]) -> None:
        self.unknown = tuple(unknown)
        where = str(path) if path is not None else "The database"
        super().__init__(
            f"{where} was written by a newer version of shopbell "
            f"(it has changes this version does not know: {', '.join(self.unknown)}). "
            "Nothing was changed. Install that newer version of shopbell, "
            "or restore a backup made with this version.",
            path=path,
        )


class DatabaseUnavailableError(StorageError):
    """The database cannot be opened or created: missing folder, no permission, disk trouble."""


class DatabaseGoneError(StorageError):
    """The database file was deleted, moved or replaced under the running daemon.

    SQLite would go on writing into the open, unlinked file, and every write acknowledged
    from then on would be lost at the next start; so nothing more is written.
    """

    def __init__(self, path: Path, how: str) -> None:
        super().__init__(
            f"the database file {path} {how} while shopbell was running, so nothing more is "
            "written (it would be lost at the next start). Stop shopbell, put the database "
            "back (shopbell db restore <backup>; shopbell doctor lists the backups), then "
            "start shopbell again.",
            path=path,
        )
        self.how = how


class DatabaseMissingError(StorageError):
    """The database is missing where this install kept one: refused, not created afresh."""

    def __init__(self, path: Path, marker: Path) -> None:
        super().__init__(
            f"{path} is missing, but shopbell kept its database there before: it was deleted "
            "or moved. Nothing was created. Put it back with shopbell db restore <backup> "
            "(shopbell doctor lists the backups); to start again with an empty database on "
            f"purpose, delete {marker}.",
            path=path,
        )
        self.marker = marker


class DiskFullError(StorageError):
    """SQLite could not write: the disk (or the database's size limit) is full.

    Nothing of that write was kept; what was committed before stays intact, and writing works
    again by itself once there is room.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"the disk holding {path} is full, so this was not written. Free some space "
            "(old backups, logs, other files on that disk); shopbell writes again by itself "
            "once there is room, and nothing written before is lost.",
            path=path,
        )
