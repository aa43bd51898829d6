"""Message texts that must not be readable at rest (one-time codes), sealed in the outbox.

An OTP message's text is the one place a code is in clear. It is stored sealed with
AES-256-GCM under a key kept in the data folder (`message_key`, 0600), never in the
database, so the database file, its WAL, the nightly backups and any copy of them hold only
ciphertext; the dispatcher opens it just before handing it to the provider, and the OTP
sweep blanks it once sent. A sealed text reads `sealed:v1:` and base64 (nonce, ciphertext).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from daemon.runtime.paths import ensure_secret_key

KEY_FILENAME = "message_key"
KEY_BYTES = 32
SEALED_PREFIX = "sealed:v1:"
_NONCE_BYTES = 12


class SealError(Exception):
    """A sealed text that this key cannot open (the key file was replaced, or it is damaged)."""


class Sealer:
    """Seals and opens message texts with one key; never shows the key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a message key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "<Sealer>"

    def seal(self, text: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), None)
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str) -> str:
        """The text of `stored`; a text that was never sealed comes back as it is."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX) :])
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
        except (InvalidTag, ValueError) as exc:
            raise SealError(
                f"cannot open a sealed message text with the key in {KEY_FILENAME} (was the "
                "data folder's key replaced?)"
            ) from exc
        return plain.decode("utf-8")


def build_sealer(data_dir: Path) -> Sealer:
    """The daemon's sealer, its key made (0600) in the data folder on first use."""
    key = ensure_secret_key(
        data_dir / KEY_FILENAME,
        size=KEY_BYTES,
        what="message key",
        log_name="outbox",
        lost="one-time codes still queued cannot be sent",
    )
    return Sealer(key)
