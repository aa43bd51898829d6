"""What a running daemon keeps loaded: only what its configuration uses (a Pi's memory).

Each test runs the real daemon (`shopbell run`) in a child process with a watcher thread that,
once the API answers, reports what the process has loaded and stops it with SIGTERM, as
systemd would. bench/idle_memory.py measures what each part costs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.daemon.conftest import REPO
from tests.helpers import free_port

# Runs in the child: the daemon in the main thread (it owns the signals), the look from a
# thread once the URL (argv[2]) answers.
_CHILD = """
import json, os, signal, sys, threading, time, urllib.error, urllib.request

config, url = sys.argv[1], sys.argv[2]

def look():
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            break
        except urllib.error.HTTPError:
            break  # answered (a 404 is an answer)
        except OSError:
            time.sleep(0.1)
    seen = {
        "httpx": "httpx" in sys.modules,
        "uvloop": "uvloop" in sys.modules,
        "platformdirs": "platformdirs" in sys.modules,
    }
    print("LOOKED " + json.dumps(seen), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=look, daemon=True).start()
from daemon.admin.cli import main
sys.argv = ["shopbell", "--config", config, "run"]
main()
"""


def _run_and_look(
    config: Path, port: int, env: dict[str, str], path: str = "/api/health"
) -> tuple[dict[str, int], str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(config), f"http://127.0.0.1:{port}{path}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    line = next(line for line in done.stdout.splitlines() if line.startswith("LOOKED "))
    return json.loads(line.removeprefix("LOOKED ")), output


def test_a_console_only_daemon_loads_no_http_client(
    write_config: Callable[..., Path], daemon_env: dict[str, str]
) -> None:
    port = free_port()
    seen, output = _run_and_look(write_config(f"[api]\nport = {port}\n"), port, daemon_env)
    # No HTTP provider and no TGTG login: the shared client (httpx, TLS, CA bundle) is never
    # built. (uvloop is imported by granian, whose loop registry probes for it
    # when it is installed, so only the log says which loop runs: Python's own by default.)
    seen.pop("uvloop")
    assert "event loop: uvloop" not in output
    assert seen == {
        "httpx": False,
        # Started with --config and a data folder, as the service is: no user folder to find.
        "platformdirs": False,
    }, output
    # Stopping still walks every stage, the unbuilt client's included.
    assert "stopped: http client" in output


def test_event_loop_uvloop_runs_the_daemon_on_uvloop(
    write_config: Callable[..., Path], daemon_env: dict[str, str]
) -> None:
    port = free_port()
    config = write_config(f'[api]\nport = {port}\nevent_loop = "uvloop"\n')
    seen, output = _run_and_look(config, port, daemon_env)
    assert seen["uvloop"] is True
    assert "event loop: uvloop" in output
