"""Which daemon `shopbell tui` talks to, with which token, and how to start a local one."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from daemon.config import Settings
from daemon.runtime.paths import ensure_api_token, ensure_private_dir


class TargetError(Exception):
    """No usable daemon address or token; the message says what to set."""


@dataclass(frozen=True)
class TuiTarget:
    """The daemon's base URL, its API token, and whether it runs on this machine."""

    url: str
    token: str
    local: bool


def resolve_target(settings: Settings, url: str | None, token: str | None) -> TuiTarget:
    """--url/--token win over [tui] url/token; with neither, this machine's daemon."""
    remote = (url or settings.tui.url).strip().rstrip("/")
    if remote and not remote.startswith(("http://", "https://")):
        raise TargetError(f"--url: {remote!r} is not a URL like 'http://192.168.1.20:8765'")
    chosen_token = token or settings.tui.token.get_secret_value()
    if remote:
        if not chosen_token:
            raise TargetError(
                f"no API token for {remote}: pass --token or set [tui] token "
                "(`shopbell token` prints it on the daemon's machine)"
            )
        return TuiTarget(remote, chosen_token, local=_is_loopback(remote))
    host = settings.api.host
    if host in ("0.0.0.0", "::"):  # noqa: S104 -- a listening address, reached via loopback
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
    shown = f"[{host}]" if ":" in host else host
    # No token yet (the daemon never ran): make the one it will use, as `shopbell init` does,
    # so a daemon started from the app accepts this app.
    chosen_token = (
        chosen_token
        or settings.api.token.get_secret_value()
        or ensure_api_token(settings.token_path)
    )
    return TuiTarget(f"http://{shown}:{settings.api.port}", chosen_token, local=True)


def _is_loopback(url: str) -> bool:
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def start_local_daemon(settings: Settings, config: Path | None) -> str:
    """Start `shopbell run` in the background, its output in <data_dir>/daemon.log."""
    ensure_private_dir(settings.data_dir)
    log_path = settings.data_dir / "daemon.log"
    args = [sys.executable, "-m", "daemon"]
    if config is not None:
        args += ["--config", str(config)]
    with open(log_path, "ab") as log:
        subprocess.Popen(  # noqa: S603 -- our own interpreter and module, no shell
            [*args, "run"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # it outlives the TUI
        )
    return f"shopbell run started in the background; its log: {log_path}"
