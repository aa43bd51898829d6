"""The red-team case of issue 19: the database file deleted while the daemon runs.

Before: the daemon went on answering 201 (into the unlinked file) with health saying
`database: ok`, and the next start made an empty database: every acknowledged row gone.
Now: nothing is acknowledged after the deletion, health says why, the next start refuses,
and a restored backup brings back what was acknowledged before it.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
from click.testing import CliRunner

from daemon.admin.cli import cli
from tests.daemon.conftest import DaemonProcess
from tests.helpers import free_port


def send(client: httpx.Client, n: int) -> httpx.Response:
    return client.post("/api/v1/messages", json={"to": "+447400123456", "body": f"#{n}"})


def bodies(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT body FROM messages ORDER BY id")]
    finally:
        conn.close()


def test_a_deleted_database_stops_acknowledging_and_is_never_replaced_by_an_empty_one(
    spawn: Callable[..., DaemonProcess], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(f"[api]\nport = {port}\n")
    database = tmp_path / "data" / "shopbell.db"
    backup = tmp_path / "backup.db"
    daemon = spawn("--config", str(config), "run")
    daemon.wait_ready(port)
    token = (tmp_path / "data" / "api_token").read_text().strip()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        for n in range(10):
            assert send(client, n).status_code == 201
        backed_up = CliRunner().invoke(cli, ["--config", str(config), "db", "backup", str(backup)])
        assert backed_up.exit_code == 0, backed_up.output

        database.unlink()  # a cleanup script, a user in the wrong folder

        refused = send(client, 10)
        assert refused.status_code == 503, refused.text
        message = refused.json()["message"]
        assert f"{database} was deleted" in message and "shopbell db restore" in message
        health = client.get("/api/health")
        assert health.status_code == 503
        assert health.json()["database"] == {"ok": False, "detail": message}
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.output

    again = spawn("--config", str(config), "run")
    assert again.wait() == 1, again.output
    assert f"{database} is missing, but shopbell kept its database there before" in again.output
    # It names the newest nightly backup to restore (none was made here by the job).
    assert f"There is no nightly backup in {tmp_path / 'data' / 'backups'}." in again.output
    assert not database.exists(), "no empty database was made in its place"

    restored = CliRunner().invoke(cli, ["--config", str(config), "db", "restore", str(backup)])
    assert restored.exit_code == 0, restored.output
    assert bodies(database) == [f"#{n}" for n in range(10)]
    third = spawn("--config", str(config), "run")
    third.wait_ready(port)
    third.signal(signal.SIGTERM)
    assert third.wait() == 0, third.output
