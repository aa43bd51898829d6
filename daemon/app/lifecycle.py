"""The daemon's life: start in a written-down order, stop in reverse in named, timed stages.

What each part is and how it is built is in daemon/app/services.py; what runs when, in
daemon/app/jobs.py. This module holds only the order, the stages and the signals.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from daemon import __version__
from daemon.api.server import ApiBindError, ApiServer, bind_socket
from daemon.app.jobs import scheduled_jobs
from daemon.app.services import Services, api_context, build_services, log_chain, modems
from daemon.config import (
    ConfigError,
    LoadedConfig,
    Overrides,
    Settings,
    changed_keys,
    load_config,
    secret_values,
)
from daemon.runtime.clock import Clock, SystemClock
from daemon.runtime.http_client import SharedHttp
from daemon.runtime.lock import InstanceLock, LockError
from daemon.runtime.logs import update_logging
from daemon.runtime.paths import PathError, ensure_api_token, ensure_private_dir
from daemon.runtime.replica import ReplicaSupervisor, replica_secrets
from daemon.runtime.scheduler import Scheduler
from daemon.runtime.systemd import Notifier
from daemon.services.care.backups import backups_in
from daemon.services.tgtg.watcher import Watcher
from storage.database import Database
from storage.errors import DatabaseMissingError, StorageError
from storage.messages import count_by_status

if TYPE_CHECKING:
    from fastapi import FastAPI

    from daemon.api.context import ApiContext

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STARTUP_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_FORCED = 130
HTTP_CLIENT_CLOSE_SECONDS = 2.0
PROVIDERS_CLOSE_SECONDS = 3.0
DIRECT_ALERT_SECONDS = 10.0
# After [replica] stop_seconds, the time to kill Litestream and see it go.
REPLICA_KILL_SECONDS = 2.0
HTTP_TIMEOUT_SECONDS = 20.0
# Keys a running daemon can take from a reloaded config; everything else needs a restart.
RELOADABLE_KEYS = frozenset({"logging.level"})


class StartupError(Exception):
    """The daemon cannot start; the message says why and what to do, in plain words."""


@dataclass
class _Stage:
    """One started part, with the way and the time allowed to stop it."""

    name: str
    timeout: float
    stop: Callable[[], Awaitable[None]]


@dataclass
class Daemon:
    """One shopbell process: its services, the API and the jobs; stopped by a signal."""

    loaded: LoadedConfig
    config_arg: Path | None = None
    overrides: Overrides = field(default_factory=Overrides)
    clock: Clock = field(default_factory=SystemClock)
    environ: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        self.settings = self.overrides.apply(self.loaded.settings)
        self._stop = asyncio.Event()
        self._stages: list[_Stage] = []
        self._lock: InstanceLock | None = None
        # Set once by _start, when every part is built; None before and after a failed start.
        self.services: Services | None = None
        self.api_server: ApiServer | None = None
        self.scheduler: Scheduler | None = None
        # Litestream beside the daemon, only with [replica] url set (docs/replica.md).
        self.replica: ReplicaSupervisor | None = None
        self.api_token = ""
        self.systemd = Notifier(self.environ)

    async def run(self) -> int:
        """Start, serve until SIGINT/SIGTERM, stop; the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        # From the first moment: a start that hangs is restarted by systemd's watchdog too.
        self.systemd.start_watchdog()
        try:
            try:
                await self._start()
            except StartupError as exc:
                log.error("cannot start: %s", exc)
                return EXIT_STARTUP_FAILED
            if not self._stop.is_set():
                await self._stop.wait()
            return EXIT_OK
        finally:
            self.systemd.stopping()
            await self._shutdown()
            await self.systemd.close()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    def request_stop(self) -> None:
        """Ask the daemon to stop gracefully (what SIGTERM does)."""
        self._stop.set()

    def _stage(self, name: str, budget: float, stop: Callable[[], Awaitable[None]]) -> None:
        """`stop` runs at shutdown, in reverse order of the stages, within `budget` seconds."""
        self._stages.append(_Stage(name, budget, stop))

    async def _start(self) -> None:
        settings = self.settings
        log.info(
            "shopbell %s starting (pid %d); config: %s",
            __version__,
            os.getpid(),
            self.loaded.source_label,
        )
        if self.loaded.env_keys:
            log.info("settings from the environment: %s", ", ".join(self.loaded.env_keys))
        try:
            ensure_private_dir(settings.data_dir)
            ensure_private_dir(settings.database_path.parent, purpose="database folder")
            self._lock = InstanceLock(settings.database_path)
            self._lock.acquire()
            self.api_token = settings.api.token.get_secret_value() or ensure_api_token(
                settings.token_path
            )
        except (PathError, LockError) as exc:
            raise StartupError(str(exc)) from None
        # The generated token is a secret too: from here on the log masks it.
        update_logging(settings.logging.level, self._secrets(settings))

        db = Database(settings.database_path, busy_timeout_ms=settings.database.busy_timeout_ms)
        try:
            applied = await db.open(migrate=True)
        except DatabaseMissingError as exc:
            raise StartupError(f"{exc} {_where_to_restore_from(settings)}") from None
        except StorageError as exc:
            raise StartupError(str(exc)) from None
        self._stage("database", settings.shutdown.storage_seconds, db.close)
        log.info(
            "database: %s (%s)",
            settings.database_path,
            f"applied {len(applied)} migrations" if applied else "schema up to date",
        )
        if settings.replica.url:
            # Right after the database: stopped after every writer, before the database's
            # closing checkpoint, so its last upload holds every acknowledged write.
            replica = ReplicaSupervisor(
                settings.replica,
                settings.database_path,
                settings.data_dir,
                self.clock,
                environ=self.environ,
            )
            await replica.start()
            self.replica = replica
            self._stage(
                "replica", settings.replica.stop_seconds + REPLICA_KILL_SECONDS, replica.stop
            )
        # Built when a provider or a TGTG account first needs it, not before.
        http = SharedHttp(HTTP_TIMEOUT_SECONDS)
        self._stage("http client", HTTP_CLIENT_CLOSE_SECONDS, http.aclose)

        try:
            services = build_services(settings, db, http, self.clock)
        except PathError as exc:
            raise StartupError(str(exc)) from None
        self.services = services
        self._stage("providers", PROVIDERS_CLOSE_SECONDS, services.router.close)
        # Before the providers close: an alert that the database is gone is under way.
        self._stage("direct alert", DIRECT_ALERT_SECONDS, services.direct_alert.wait)
        # The modem as soon as it is built: its initialisation, and the reading of what
        # waits on its SIM, run in the background while the rest starts.
        for modem in modems(services):
            await modem.start()
            log.info("modem: connecting to %s in the background", modem.port)
        await log_chain(services)
        # A clock behind the database is said in plain words; it never stops the start.
        await services.clock_check.at_start()
        if await services.owner.resume():
            log.info("owner: queued the alerts a crash left unsent")
        # The outbox before the API: the queue is sent from now on; a send waits (bounded)
        # for a modem that is still initialising.
        await services.dispatcher.start()
        outbox_budget = settings.shutdown.outbox_seconds
        self._stage(
            "outbox",
            outbox_budget,
            functools.partial(services.dispatcher.stop, timeout=outbox_budget * 0.9),
        )
        log.info("outbox: dispatching (%d sends at once at most)", services.router.capacity)
        # The sales-window timer polls at an announced window's time, between ticks.
        services.tgtg.start()
        self._stage("tgtg windows", Watcher.STOP_SECONDS, services.tgtg.stop)

        # FastAPI and every route's models are the largest import of the daemon: done in a
        # thread, so the modem, the outbox and the inbound messages go on meanwhile.
        create_app = await asyncio.to_thread(_api_factory)
        # Bound only now, just before granian takes the address over (ApiServer.start closes
        # this socket first): a client that connected to it in between would be reset.
        try:
            sock = bind_socket(settings.api.host, settings.api.port)
        except ApiBindError as exc:
            raise StartupError(str(exc)) from None
        ctx = api_context(services, settings, self.clock, self.api_token)
        if self.replica is not None:
            ctx.health_sources["replica"] = self.replica.health
        server = ApiServer(
            create_app(ctx),
            sock,
            max_header_bytes=settings.api.max_header_bytes,
            header_timeout=settings.api.header_timeout_seconds,
            keepalive_timeout=settings.api.keepalive_timeout_seconds,
            max_connections=settings.api.max_connections,
        )
        self.api_server = server
        await server.start()
        # Built after run_daemon froze the start-up heap (process.py): frozen too, so the
        # collector's full passes do not walk the routes and their models either.
        gc.freeze()
        api_budget = settings.shutdown.api_seconds
        # The server forces its connections closed a little before the stage's own deadline.
        self._stage("api", api_budget, functools.partial(server.stop, timeout=api_budget * 0.8))
        url = self.api_url
        log.info("api: listening on %s (docs %s/api/docs)", url, url)

        self.scheduler = scheduler = Scheduler(db, self.clock)
        for spec in scheduled_jobs(settings, services):
            scheduler.add(spec)
        scheduler.start()
        ctx.jobs = scheduler.next_runs
        jobs_budget = settings.shutdown.scheduler_seconds
        self._stage(
            "scheduler", jobs_budget, functools.partial(scheduler.stop, timeout=jobs_budget * 0.9)
        )
        log.info("scheduler: %s", ", ".join(scheduler.job_ids) or "no jobs")
        log.info(
            "ready: database %s, config %s, API %s",
            settings.database_path,
            self.loaded.source_label,
            url,
        )
        await self.systemd.ready(functools.partial(self._status_line, db))

    async def _status_line(self, db: Database) -> str:
        """What `systemctl status shopbell` shows: where it serves and what waits."""
        queue = await db.execute(count_by_status)
        line = f"serving on {self.api_url}; {queue.get('queued', 0)} queued"
        if queue.get("sending"):
            line += f", {queue['sending']} sending"
        return line

    @property
    def api_url(self) -> str:
        host = self.settings.api.host
        port = self.api_server.bound_port if self.api_server else self.settings.api.port
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    async def _shutdown(self) -> None:
        if not self._stages and self._lock is None:
            return
        started = self.clock.monotonic()
        budget = sum(stage.timeout for stage in self._stages)
        log.info("stopping: %d stages, budget %.1fs", len(self._stages), budget)
        while self._stages:
            stage = self._stages.pop()
            try:
                await asyncio.wait_for(stage.stop(), timeout=stage.timeout)
                log.info("stopped: %s", stage.name)
            except TimeoutError:
                log.warning(
                    "stop: %s did not finish within %.1fs; moved on", stage.name, stage.timeout
                )
            except Exception:
                log.exception("stop: %s failed; moved on", stage.name)
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        log.info("shopbell stopped in %.1fs", self.clock.monotonic() - started)

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        name = signal.Signals(sig).name
        if self._stop.is_set():
            # The operator asked twice: they want it gone now, not gracefully.
            log.warning("second %s: forcing exit now", name)
            logging.shutdown()
            os._exit(EXIT_FORCED)
        log.info(
            "%s received: stopping gracefully (send it again to force)",
            name,
        )
        self._stop.set()

    def _secrets(self, settings: Settings) -> list[str]:
        """What the log masks: the config's secrets, the API token, the replica's keys."""
        found = [*secret_values(settings), self.api_token]
        if settings.replica.url:
            found += replica_secrets(self.environ)
        return found

    def _on_reload_signal(self) -> None:
        asyncio.get_running_loop().create_task(self.reload(), name="config-reload")

    async def reload(self) -> list[str]:
        """Re-read the config (SIGHUP); apply what can change live, name what needs a restart."""
        try:
            loaded = await asyncio.to_thread(load_config, self.config_arg, self.environ)
            new = self.overrides.apply(loaded.settings)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return []
        changed = changed_keys(self.settings, new)
        if not changed:
            log.info("reload: configuration unchanged")
            return []
        live = [key for key in changed if key in RELOADABLE_KEYS]
        restart = [key for key in changed if key not in RELOADABLE_KEYS]
        if live:
            update_logging(new.logging.level, self._secrets(new))
            log.info("reload: applied %s", ", ".join(live))
        if restart:
            log.warning("reload: these need a restart to take effect: %s", ", ".join(restart))
        self.loaded = loaded
        self.settings = self.settings.model_copy(update={"logging": new.logging})
        return changed


def _api_factory() -> Callable[[ApiContext], FastAPI]:
    """create_app, imported on first use: `shopbell run` only (the other commands never
    serve), and off the event loop (see _start)."""
    from daemon.api.app import create_app

    return create_app


def _where_to_restore_from(settings: Settings) -> str:
    """For a database found missing: the newest nightly backup, and the replica if any."""
    found = backups_in(settings.backup_dir)
    said = (
        f"The newest backup is {found[-1]}: shopbell db restore {found[-1]}."
        if found
        else f"There is no nightly backup in {settings.backup_dir}."
    )
    if settings.replica.url:
        said += " Or bring back the replica's newest state: shopbell db restore --from-replica."
    return said
