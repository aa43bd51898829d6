"""The single-instance lock, in process: one holder at a time, named when refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.runtime.lock import AlreadyRunningError, InstanceLock, LockError


def test_second_lock_refused_naming_the_holder(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    with InstanceLock(database) as first:
        assert first.path.read_text().strip() == str(os.getpid())
        with pytest.raises(AlreadyRunningError) as caught:
            InstanceLock(database).acquire()
        message = str(caught.value)
        assert f"process {os.getpid()}" in message
        assert str(database) in message
    # Released: a new holder gets it.
    with InstanceLock(database):
        pass


def test_lock_in_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(LockError) as caught:
        InstanceLock(tmp_path / "missing" / "shop.db").acquire()
    assert "missing" in str(caught.value)
