"""Logs: journald's format under systemd, the plain one elsewhere, a rotating private file."""

from __future__ import annotations

import logging
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from daemon.runtime.logs import QUIET_LIBRARIES, setup_logging
from tests.daemon.conftest import REPO
from tests.helpers import free_port, wait_until

SECRET = "hunter2-very-secret-value"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # It also quiets some libraries' loggers; later tests capture their lines (httpx's).
    quiet = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    yield
    for name, quiet_level in quiet.items():
        logging.getLogger(name).setLevel(quiet_level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def journal_id(path: Path) -> str:
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}"


def test_under_journald_each_line_carries_its_priority_and_no_timestamp(tmp_path: Path) -> None:
    out = tmp_path / "stderr"
    with out.open("w", encoding="utf-8") as stream:
        setup_logging("DEBUG", [SECRET], stream=stream, environ={"JOURNAL_STREAM": journal_id(out)})
        log = logging.getLogger("shop.test")
        log.debug("debug line")
        log.info("info line with %s", SECRET)
        log.warning("warning line")
        try:
            raise ValueError(f"broken by {SECRET}")
        except ValueError:
            log.exception("error line")
        log.critical("critical line")
    lines = out.read_text().splitlines()
    assert lines[:4] == [
        "<7>shop.test: debug line",
        "<6>shop.test: info line with ********",
        "<4>shop.test: warning line",
        "<3>shop.test: error line",
    ]
    # The traceback stays at the error's priority, line by line, the secret masked.
    traceback = lines[4:-1]
    assert traceback[0] == "<3>Traceback (most recent call last):"
    assert all(line.startswith("<3>") for line in traceback)
    assert traceback[-1] == "<3>ValueError: broken by ********"
    assert lines[-1] == "<2>shop.test: critical line"


def test_a_terminal_that_inherited_journal_stream_gets_the_plain_format(tmp_path: Path) -> None:
    # A shell started by a systemd user manager inherits $JOURNAL_STREAM with its own stderr.
    out, other = tmp_path / "stderr", tmp_path / "journal"
    other.touch()
    with out.open("w", encoding="utf-8") as stream:
        setup_logging("INFO", stream=stream, environ={"JOURNAL_STREAM": journal_id(other)})
        logging.getLogger("shop.test").info("hello")
    line = out.read_text().strip()
    assert TIMESTAMP.match(line) and line.endswith("INFO shop.test: hello")


def test_the_file_rotates_at_max_bytes_keeps_backups_and_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    path = folder / "shopbell.log"
    with open(os.devnull, "w") as quiet:
        setup_logging(
            "INFO", [SECRET], file=path, max_bytes=4096, backups=2, stream=quiet, environ={}
        )
        log = logging.getLogger("shop.test")
        for number in range(200):
            log.info("line %03d %s %s", number, SECRET, "x" * 60)
    logging.getLogger().handlers[-1].flush()
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["shopbell.log", "shopbell.log.1", "shopbell.log.2"]
    for name in files:
        file = folder / name
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, name
        assert file.stat().st_size <= 4096, name
        assert SECRET not in file.read_text()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    # The newest lines are in the current file, timestamped; the oldest were dropped.
    current = path.read_text().splitlines()
    assert TIMESTAMP.match(current[-1]) and "line 199 ********" in current[-1]
    assert "line 000" not in "".join((folder / n).read_text() for n in files)


def test_an_existing_log_file_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "shopbell.log"
    path.write_text("from before\n")
    path.chmod(0o644)
    with open(os.devnull, "w") as quiet:
        setup_logging("INFO", file=path, stream=quiet, environ={})
    logging.getLogger("shop.test").info("after")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("from before\n")


def test_a_daemon_under_journald_and_with_a_log_file(
    tmp_path: Path, write_config: Callable[..., Path], daemon_env: dict[str, str]
) -> None:
    port = free_port()
    config = write_config(f'[api]\nport = {port}\n[logging]\nfile = "shopbell.log"\n')
    stderr = tmp_path / "journal"
    stderr.touch()
    env = daemon_env | {"JOURNAL_STREAM": journal_id(stderr), "PYTHONUNBUFFERED": "1"}
    with stderr.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--config", str(config), "run"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    try:
        wait_until(lambda: "ready:" in stderr.read_text(), "ready: in the log", timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    journal = stderr.read_text().splitlines()
    assert journal and all(re.match(r"<[2-7]>\S+: ", line) for line in journal), journal
    assert any(line.startswith("<6>daemon.app.lifecycle: ready: ") for line in journal)
    # The file has the same events, with timestamps, private.
    file = tmp_path / "data" / "shopbell.log"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    lines = file.read_text().splitlines()
    assert len(lines) == len(journal)
    assert all(TIMESTAMP.match(line) for line in lines)
    assert "INFO daemon.app.lifecycle: shopbell stopped in" in lines[-1]


def test_a_log_file_that_cannot_be_written_stops_the_start_with_a_reason(
    tmp_path: Path, write_config: Callable[..., Path], daemon_env: dict[str, str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = write_config(f'[logging]\nfile = "{blocker / "shopbell.log"}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(config), "run"],
        cwd=REPO,
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"cannot start: the log folder {blocker} exists but is not a folder" in done.stderr
