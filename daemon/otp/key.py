"""The OTP server key: 32 random bytes in the data folder, mode 0600, never in the database."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from daemon.otp.policy import KEY_BYTES
from daemon.paths import FILE_MODE, PathError, ensure_private_dir, write_private_file

log = logging.getLogger(__name__)

KEY_FILENAME = "otp_key"


def ensure_otp_key(path: Path) -> bytes:
    """The key at `path`, generated (0600) on first use.

    A key another user could read is made private again, with a warning: whoever reads it
    and a copy of the database can test all million codes offline. A file that does not
    hold a key is refused rather than replaced, since replacing it would silently kill every
    code in flight and hide whatever damaged it.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        ensure_private_dir(path.parent)
        key = secrets.token_bytes(KEY_BYTES)
        write_private_file(path, key.hex() + "\n")
        log.info("otp: generated the server key %s", path)
        return key
    except PermissionError:
        raise PathError(f"cannot read the OTP key {path}: permission denied") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise PathError(f"cannot read the OTP key {path}: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise PathError(
            f"{path} does not hold an OTP key ({KEY_BYTES * 2} hex digits); restore it from a "
            "backup, or delete it to make a new one (codes already sent stop working)"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & ~FILE_MODE:
        os.chmod(path, FILE_MODE)
        log.warning("otp: the key %s could be read by others (mode %o); made it 0600", path, mode)
    return key
