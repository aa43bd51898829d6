"""The single-instance lock: one daemon per database file, and the second says who holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class LockError(Exception):
    """The database's lock cannot be taken; the message says why and what to do."""


class AlreadyRunningError(LockError):
    """Another process holds the database's lock."""


class InstanceLock:
    """An exclusive `flock` on `<database>.lock`, held for the daemon's lifetime.

    The kernel drops a flock when its holder dies, even by kill -9, so a stale lock file
    never blocks a restart. The file stays on disk (deleting it would race a starting daemon).
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LockError(
                f"cannot create the lock file {self.path}: {exc.strerror}; "
                "check the folder's owner and permissions"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise AlreadyRunningError(
                f"another shopbell daemon ({who}) is already using {self.database}; "
                "stop it first (systemctl stop shopbell, or kill "
                f"{holder or 'it'}) or set [paths] database to another file"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
