"""`shopbell run` as a real subprocess: start, stop on signals, reload, and refuse bad starts."""

from __future__ import annotations

import signal
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port

Spawn = Callable[..., DaemonProcess]


@pytest.fixture
def config(write_config: Callable[..., Path]) -> tuple[Path, int]:
    port = free_port()
    return write_config(f"[api]\nport = {port}\n"), port


def test_starts_serves_and_stops_on_sigterm_within_budget(
    spawn: Spawn, config: tuple[Path, int], tmp_path: Path
) -> None:
    path, port = config
    daemon = spawn("--config", str(path), "run")
    daemon.wait_ready(port)
    ready = daemon.wait_for_line("ready:")
    database = tmp_path / "data" / "shopbell.db"
    # It says where its database, config and API are.
    assert str(database) in ready and str(path) in ready and f"127.0.0.1:{port}" in ready
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "api_token").stat().st_mode) == 0o600

    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    code = daemon.wait(timeout=30)
    elapsed = time.monotonic() - started
    assert code == 0, daemon.output
    # The default budget is api 5 s + storage 5 s; an idle daemon takes far less.
    assert elapsed < 10, f"stop took {elapsed:.1f}s"
    for stage in ("stopped: api", "stopped: http client", "stopped: database"):
        assert stage in daemon.output
    assert daemon.output.index("stopped: api") < daemon.output.index("stopped: database")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
    # A clean stop leaves a consistent database with the whole schema.
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] > 0


def test_sigint_stops_too(spawn: Spawn, config: tuple[Path, int]) -> None:
    path, port = config
    daemon = spawn("--config", str(path), "run")
    daemon.wait_ready(port)
    daemon.signal(signal.SIGINT)
    assert daemon.wait() == 0, daemon.output
    assert "SIGINT received: stopping gracefully" in daemon.output


def test_second_signal_forces_exit(
    daemon_env: dict[str, str], config: tuple[Path, int], tmp_path: Path
) -> None:
    # A stage that hangs (as a stuck provider would) stands between the two signals.
    path, _ = config
    script = tmp_path / "hang.py"
    script.write_text(
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from daemon.config import load_config\n"
        "from daemon.app.lifecycle import Daemon, _Stage\n"
        "from daemon.runtime.logs import setup_logging\n"
        "async def main():\n"
        "    d = Daemon(loaded=load_config(Path(sys.argv[1])))\n"
        "    async def hang():\n"
        "        await asyncio.sleep(60)\n"
        "    orig = d._start\n"
        "    async def start():\n"
        "        await orig()\n"
        "        d._stages.append(_Stage('stuck', 60, hang))\n"
        "        print('hung stage added', flush=True)\n"
        "    d._start = start\n"
        "    return await d.run()\n"
        "setup_logging('INFO')\n"
        "sys.exit(asyncio.run(main()))\n"
    )
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)],
        env=daemon_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "hung stage added" in line:
                break
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert proc.poll() is None, "the hung stage should still be waiting"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        rest = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130
    assert time.monotonic() - started < 5
    assert "second SIGTERM: forcing exit now" in rest


def test_sighup_reloads_what_it_can_and_names_what_needs_restart(
    spawn: Spawn, config: tuple[Path, int]
) -> None:
    path, port = config
    daemon = spawn("--config", str(path), "run")
    daemon.wait_ready(port)
    text = path.read_text()
    path.write_text(
        text.replace(f"port = {port}", f"port = {port + 1}") + '[logging]\nlevel = "DEBUG"\n'
    )
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_line("reload: applied logging.level")
    assert "api.port" in daemon.wait_for_line("need a restart")
    # Still serving on the old port: a port change waits for a restart.
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200

    path.write_text(text.replace("[api]\n", "[api]\nbogus = 1\n"))
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_line("reload refused, keeping the running config")
    daemon.wait_for_line("api.bogus: unknown key")
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_second_daemon_on_the_same_database_refuses(
    spawn: Spawn, config: tuple[Path, int], write_config: Callable[..., Path]
) -> None:
    path, port = config
    first = spawn("--config", str(path), "run")
    first.wait_ready(port)
    second = spawn("--config", str(path), "run", "--port", str(free_port()))
    assert second.wait(timeout=30) == 1
    assert f"process {first.proc.pid}" in second.output
    assert "already using" in second.output
    # The first one is untouched.
    assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200
    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    # After it stopped, the lock is free again.
    third = spawn("--config", str(path), "run")
    third.wait_ready(port)
    third.signal(signal.SIGTERM)
    assert third.wait() == 0


def test_bad_config_refuses_to_start_in_one_screenful(
    spawn: Spawn, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_config('[api]\nprot = 1\nport = "x"\n[logging]\nlevel = "LOUD"\n')
    daemon = spawn("--config", str(path), "run")
    assert daemon.wait() == 2
    assert "api.prot: unknown key (did you mean 'port'?)" in daemon.output
    assert "api.port: expected a whole number" in daemon.output
    assert "logging.level" in daemon.output
    assert len(daemon.lines) <= 24
    assert "Traceback" not in daemon.output
    assert not (tmp_path / "data").exists(), "a refused config must create nothing"


def test_database_that_is_not_sqlite_is_refused_and_left_alone(
    spawn: Spawn, config: tuple[Path, int], tmp_path: Path
) -> None:
    path, _ = config
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    database = data / "shopbell.db"
    content = b"these are the shop's notes, not a database\n" * 50
    database.write_bytes(content)
    daemon = spawn("--config", str(path), "run")
    assert daemon.wait() == 1
    assert str(database) in daemon.output
    assert "not" in daemon.output and "SQLite" in daemon.output
    assert "Traceback" not in daemon.output
    assert database.read_bytes() == content
    assert not (data / "shopbell.db-wal").exists()


def test_database_from_a_newer_shopbell_is_refused(
    spawn: Spawn, config: tuple[Path, int], tmp_path: Path
) -> None:
    path, port = config
    daemon = spawn("--config", str(path), "run")
    daemon.wait_ready(port)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    database = tmp_path / "data" / "shopbell.db"
    with sqlite3.connect(database) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('shopbell', 'm999_from_the_future', '2030-01-01')"
        )
    conn.close()
    before = database.read_bytes()
    again = spawn("--config", str(path), "run")
    assert again.wait() == 1
    assert "m999_from_the_future" in again.output
    assert "newer" in again.output
    assert database.read_bytes() == before


def test_data_dir_that_cannot_be_made(
    spawn: Spawn, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = write_config(f'[paths]\ndata_dir = "{blocker / "data"}"\n[api]\nport = {free_port()}\n')
    daemon = spawn("--config", str(path), "run")
    assert daemon.wait() == 1
    assert str(blocker / "data") in daemon.output
    assert "Traceback" not in daemon.output


def test_port_in_use_is_explained(spawn: Spawn, config: tuple[Path, int]) -> None:
    import socket

    path, port = config
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        daemon = spawn("--config", str(path), "run")
        assert daemon.wait() == 1
    assert f"127.0.0.1:{port}" in daemon.output
    assert "in use" in daemon.output
    assert "Traceback" not in daemon.output
    # Startup stopped what it had started, in reverse.
    assert "stopped: database" in daemon.output


def test_token_never_in_the_log(spawn: Spawn, config: tuple[Path, int], tmp_path: Path) -> None:
    path, port = config
    daemon = spawn("--config", str(path), "run")
    daemon.wait_ready(port)
    token = (tmp_path / "data" / "api_token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    httpx.get(f"http://127.0.0.1:{port}/api/nothing-here", headers=headers, timeout=5)
    httpx.get(
        f"http://127.0.0.1:{port}/api/x", headers={"Authorization": "Bearer wrong"}, timeout=5
    )
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert token not in daemon.output
