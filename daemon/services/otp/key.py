"""The OTP server key: 32 random bytes in the data folder, mode 0600, never in the database."""

from __future__ import annotations

from pathlib import Path

from daemon.runtime.paths import ensure_secret_key
from daemon.services.otp.policy import KEY_BYTES

KEY_FILENAME = "otp_key"


def ensure_otp_key(path: Path) -> bytes:
    """The key at `path`, generated (0600) on first use.

    A key another user could read is made private again, with a warning: whoever reads it
    and a copy of the database can test all million codes offline. A file that does not
    hold a key is refused rather than replaced, since replacing it would silently kill every
    code in flight and hide whatever damaged it.
    """
    return ensure_secret_key(
        path,
        size=KEY_BYTES,
        what="OTP key",
        log_name="otp",
        lost="codes already sent stop working",
    )
