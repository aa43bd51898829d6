"""Sealed message texts: what the outbox stores for a one-time code, opened only to send."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.services.outbox.sealing import KEY_FILENAME, Sealer, SealError, build_sealer


def test_a_sealed_text_opens_with_its_key_only() -> None:
    sealer = Sealer(os.urandom(32))
    sealed = sealer.seal("Your shop code is 123456")
    assert "123456" not in sealed and sealed.startswith("sealed:v1:")
    assert sealed != sealer.seal("Your shop code is 123456"), "a new nonce each time"
    assert sealer.open(sealed) == "Your shop code is 123456"
    with pytest.raises(SealError, match=KEY_FILENAME):
        Sealer(os.urandom(32)).open(sealed)
    with pytest.raises(SealError):
        sealer.open(sealed[:-4] + "AAAA")
    assert sealer.open("an ordinary text") == "an ordinary text"


def test_the_key_lives_in_the_data_folder_private_and_stays(tmp_path: Path) -> None:
    first = build_sealer(tmp_path)
    key = tmp_path / KEY_FILENAME
    assert key.stat().st_mode & 0o777 == 0o600
    sealed = first.seal("kept across restarts")
    assert build_sealer(tmp_path).open(sealed) == "kept across restarts"
    assert "Sealer" in repr(first) and key.read_bytes().hex() not in repr(first)
