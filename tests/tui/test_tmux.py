"""`shopbell tui` in a real terminal (tmux, 80x24): keys in, the screen read back, quit."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.daemon.conftest import REPO
from tests.tui.conftest import LiveDaemon

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)


@pytest.fixture
def session(live_daemon: LiveDaemon) -> Iterator[str]:
    name = f"shopbell-test-{uuid.uuid4().hex[:8]}"
    env = " ".join(
        f"{key}={shlex.quote(value)}"
        for key, value in live_daemon.env.items()
        if key in ("PATH", "HOME", "PYTHONPATH", "XDG_DATA_HOME", "XDG_CONFIG_HOME")
    )
    config = shlex.quote(str(live_daemon.config))
    command = (
        f"cd {shlex.quote(str(REPO))} && env {env} TERM=xterm-256color "
        f"{shlex.quote(sys.executable)} -m daemon --config {config} tui"
    )
    started = _tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", command)
    assert started.returncode == 0, started.stderr
    yield name
    _tmux("kill-session", "-t", name)


def _screen(name: str) -> str:
    return _tmux("capture-pane", "-p", "-t", name).stdout


def _wait_for(name: str, text: str, seconds: float = 20.0) -> str:
    deadline = time.monotonic() + seconds
    shown = ""
    while time.monotonic() < deadline:
        shown = _screen(name)
        if text in shown:
            return shown
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never showed; the screen was:\n{shown}")


def _alive(name: str) -> bool:
    return _tmux("has-session", "-t", name).returncode == 0


def test_shopbell_tui_in_tmux_shows_a_sent_message_and_quits(
    live_daemon: LiveDaemon, session: str
) -> None:
    answer = live_daemon.api(
        "POST", "/api/v1/messages", json={"to": "+15005550006", "body": "Pickup at six"}
    )
    message_id = answer["message"]["id"]
    _wait_for(session, "Dashboard")
    _tmux("send-keys", "-t", session, "5")
    screen = _wait_for(session, "Pickup at")
    row = next(line for line in screen.splitlines() if "Pickup at" in line)
    assert str(message_id) in row and "+15005550006" in row
    # 80 columns: the footer's first keys are there, nothing wraps past the edge.
    assert all(len(line) <= 80 for line in screen.splitlines())
    assert "n New" in screen
    _tmux("send-keys", "-t", session, "C-q")
    deadline = time.monotonic() + 10
    while _alive(session) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(session), "ctrl+q did not end the app"
