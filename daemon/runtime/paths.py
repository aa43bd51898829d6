"""The daemon's files on disk: a private data folder and secret files only the owner can read."""

from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


class PathError(Exception):
    """A folder or file shopbell needs cannot be made or read; the message says what to do."""


def ensure_private_dir(path: Path, *, purpose: str = "data folder") -> Path:
    """Create `path` (and parents) with mode 0700 if missing; refuse what cannot be written."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except PermissionError:
        raise PathError(
            f"cannot create the {purpose} {path}: permission denied. Set [paths] data_dir to a "
            "folder this user can write, or run shopbell as the user that owns it."
        ) from None
    except FileExistsError:
        raise PathError(f"the {purpose} {path} exists but is not a folder") from None
    except OSError as exc:
        raise PathError(f"cannot create the {purpose} {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise PathError(f"the {purpose} {path} exists but is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PathError(
            f"cannot write in the {purpose} {path}: permission denied. Fix its owner "
            "(chown) or set [paths] data_dir to a folder this user can write."
        )
    return path


def write_private_file(path: Path, text: str, *, overwrite: bool = False) -> None:
    """Write `text` to a file created with mode 0600, atomically (temp file, then rename)."""
    if path.exists() and not overwrite:
        raise PathError(f"{path} already exists; not overwriting it")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except PermissionError:
        raise PathError(f"cannot write {path}: permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PathError(f"cannot write {path}: the disk is full") from None
        raise PathError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def ensure_secret_key(path: Path, *, size: int, what: str, log_name: str, lost: str) -> bytes:
    """A random key of `size` bytes kept as hex at `path` (0600), generated on first use.

    Used for every server key (OTP codes, login tokens). A key another user could read is
    made private again, with a warning. A file that does not hold a key is refused rather
    than replaced: replacing it would silently invalidate what it signed (`lost` says what)
    and hide whatever damaged it.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        ensure_private_dir(path.parent)
        key = secrets.token_bytes(size)
        write_private_file(path, key.hex() + "\n")
        log.info("%s: generated the server key %s", log_name, path)
        return key
    except PermissionError:
        raise PathError(f"cannot read the {what} {path}: permission denied") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise PathError(f"cannot read the {what} {path}: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < size:
        raise PathError(
            f"{path} does not hold an {what} ({size * 2} hex digits); restore it from a "
            f"backup, or delete it to make a new one ({lost})"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & ~FILE_MODE:
        os.chmod(path, FILE_MODE)
        log.warning(
            "%s: the key %s could be read by others (mode %o); made it 0600", log_name, path, mode
        )
    return key


def read_api_token(path: Path) -> str | None:
    """The generated API token, or None when there is none yet."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except PermissionError:
        raise PathError(f"cannot read the API token {path}: permission denied") from None
    return token or None


def ensure_api_token(path: Path) -> str:
    """Return the API token at `path`, generating one (0600) on first use."""
    token = read_api_token(path)
    if token is None:
        ensure_private_dir(path.parent)
        token = secrets.token_urlsafe(32)
        write_private_file(path, token + "\n", overwrite=True)
    return token
