"""Probes for what a test cannot see through the API: owner threads, files beside the db."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from storage.database import THREAD_NAME


def db_threads() -> list[threading.Thread]:
    """Live database owner threads (there should be none after a close or a failed open)."""
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def sidecar_files(path: Path) -> list[str]:
    """The files SQLite may leave beside `path` (-wal, -shm, -journal)."""
    return sorted(
        p.name for p in path.parent.iterdir() if p.name.startswith(path.name) and p != path
    )


def permissions_enforced() -> bool:
    """Whether this process is bound by file permissions (root usually is not)."""
    if os.geteuid() != 0:
        return True
    # Root without CAP_DAC_OVERRIDE (a hardened container) is bound by them: try it.
    with tempfile.TemporaryDirectory() as scratch:
        locked = Path(scratch, "locked")
        locked.mkdir(mode=0o500)
        try:
            (locked / "probe").touch()
        except PermissionError:
            return True
        finally:
            locked.chmod(0o700)
        return False
