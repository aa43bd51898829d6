"""Fixtures shared by every test: an isolated environment and a temporary config."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from daemon.runtime.clock import ManualClock
from storage.database import Database

# Set when the tests themselves run under systemd; a test daemon must not talk to that systemd.
SYSTEMD_VARIABLES = ("JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No test reads or writes the real user's config or data folders, or their SHOPBELL_ vars."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    for name in list(os.environ):
        if name.startswith("SHOPBELL_") or name in SYSTEMD_VARIABLES:
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a config.toml with the given text (data folder in tmp_path unless it says)."""

    def write(text: str = "", *, name: str = "config.toml") -> Path:
        path = tmp_path / name
        if "[paths]" not in text:
            text = f'[paths]\ndata_dir = "{tmp_path / "data"}"\n\n' + text
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A real database file, migrated, closed after the test."""
    database = Database(tmp_path / "shopbell.db")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says."""
    return ManualClock()
