"""The daemon's life: start in a written-down order, stop in reverse in named, timed stages."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon import __version__
from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.api.server import ApiBindError, ApiServer, bind_socket
from daemon.backoffice import report_mail
from daemon.backoffice.service import BackOffice, build_backoffice
from daemon.clock import Clock, SystemClock, utc_iso
from daemon.config import ConfigError, LoadedConfig, Settings, load_config, secret_values
from daemon.http_client import SharedHttp
from daemon.inbound import InboundService, Received
from daemon.lean import one_malloc_arena, release_free_memory
from daemon.lock import InstanceLock, LockError
from daemon.logs import log_file_path, setup_logging, update_logging
from daemon.maintenance import Care, build_care, build_owner_alerts
from daemon.otp.service import OtpService, build_otp_service
from daemon.outbox.dispatcher import Dispatcher
from daemon.outbox.policy import RetryPolicy
from daemon.outbox.router import Router
from daemon.outbox.service import Outbox
from daemon.outbox.wiring import ChainReport, build_router
from daemon.owner import OwnerAlerts
from daemon.paths import PathError, ensure_api_token, ensure_private_dir
from daemon.push import PushService, push_health
from daemon.receipts import Receipts, SegmentReport, build_receipts
from daemon.scheduler import JobSpec, Scheduler
from daemon.systemd import Notifier
from daemon.tgtg.watcher import Watcher, WatcherSettings
from providers.tgtg.client import TgtgClient
from storage.database import Database
from storage.errors import StorageError
from storage.messages import count_by_status
from storage.optouts import opt_out

if TYPE_CHECKING:
    from daemon.metrics import Metrics
    from providers.modem.provider import ModemInbound, ModemReport

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STARTUP_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_FORCED = 130
HTTP_CLIENT_CLOSE_SECONDS = 2.0
PROVIDERS_CLOSE_SECONDS = 3.0
PROVIDER_CHECK_MINUTES = 5
# How often freed heap memory goes back to the system (daemon/lean.py release_free_memory).
MEMORY_TRIM_MINUTES = 10
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
class Overrides:
    """Settings given on the command line; they win over the file and the environment."""

    host: str | None = None
    port: int | None = None

    def apply(self, settings: Settings) -> Settings:
        changes = {k: v for k, v in (("host", self.host), ("port", self.port)) if v is not None}
        if not changes:
            return settings
        api = settings.api.model_dump() | changes
        try:
            return settings.model_copy(update={"api": type(settings.api).model_validate(api)})
        except ValueError as exc:
            problems = [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]  # type: ignore[attr-defined]
            raise ConfigError("(command line)", [f"--host/--port: {p}" for p in problems]) from None


@dataclass
class Daemon:
    """One shopbell process: storage, the shared HTTP client, the API; stopped by a signal."""

    loaded: LoadedConfig
    config_arg: Path | None = None
    overrides: Overrides = field(default_factory=Overrides)
    clock: Clock = field(default_factory=SystemClock)
    environ: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        self.settings = self.overrides.apply(self.loaded.settings)
        self._stop = asyncio.Event()
        self._stopping = False
        self._stages: list[_Stage] = []
        self._lock: InstanceLock | None = None
        self.db: Database | None = None
        self.http: SharedHttp | None = None
        self.api_server: ApiServer | None = None
        self.router: Router | None = None
        self.chain: ChainReport | None = None
        self.dispatcher: Dispatcher | None = None
        self.outbox: Outbox | None = None
        self.inbound: InboundService | None = None
        self.receipts: Receipts | None = None
        self.push: PushService | None = None
        self.otp: OtpService | None = None
        self.scheduler: Scheduler | None = None
        self.tgtg: Watcher | None = None
        self.backoffice: BackOffice | None = None
        self.owner: OwnerAlerts | None = None
        self.care: Care | None = None
        self.metrics: Metrics | None = None
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
        update_logging(settings.logging.level, [*secret_values(settings), self.api_token])

        self.db = Database(
            settings.database_path, busy_timeout_ms=settings.database.busy_timeout_ms
        )
        try:
            applied = await self.db.open(migrate=True)
        except StorageError as exc:
            raise StartupError(str(exc)) from None
        self._stages.append(_Stage("database", settings.shutdown.storage_seconds, self.db.close))
        log.info(
            "database: %s (%s)",
            settings.database_path,
            f"applied {len(applied)} migrations" if applied else "schema up to date",
        )

        # Built when a provider or a TGTG account first needs it, not before.
        self.http = SharedHttp(HTTP_TIMEOUT_SECONDS)
        self._stages.append(_Stage("http client", HTTP_CLIENT_CLOSE_SECONDS, self.http.aclose))

        self.router, chain = build_router(settings, self.http, self.clock)
        self.chain = chain
        self._stages.append(_Stage("providers", PROVIDERS_CLOSE_SECONDS, self.router.close))
        await self._report_providers(chain)
        if settings.metrics.enabled:
            # Imported only when on: prometheus_client costs idle memory (a small Pi).
            from daemon.metrics import Metrics

            self.metrics = Metrics(self.db, self.clock, self.router)
        outbox = settings.outbox
        self.dispatcher = Dispatcher(
            self.db,
            self.router,
            self.clock,
            RetryPolicy(
                attempts_per_provider=outbox.attempts_per_provider,
                base_seconds=outbox.backoff_base_seconds,
                max_seconds=outbox.backoff_max_seconds,
            ),
            lease_seconds=outbox.lease_seconds,
            batch_size=outbox.batch_size,
            on_opt_out=self._record_opt_out,
            on_outcome=self.metrics.observe_send if self.metrics is not None else None,
        )
        self.outbox = Outbox(
            self.db,
            self.clock,
            default_region=settings.sms.default_region,
            max_segments=settings.sms.max_segments,
            wake=self.dispatcher.wake,
        )
        # Built right after the outbox, so every later part can tell the owner something.
        self.owner = build_owner_alerts(settings, self.db, self.clock, self.outbox)
        self.care = build_care(settings, self.db, self.clock, self.owner)
        if await self.owner.resume():
            log.info("owner: queued the alerts a crash left unsent")
        self.inbound = InboundService(
            self.db,
            self.clock,
            settings.sms.help_text,
            default_region=settings.sms.default_region,
            outbox=self.outbox,
        )
        self.receipts = build_receipts(self.db, self.clock, settings)
        self.push = PushService(self.db, self.clock, wake=self.dispatcher.wake)
        try:
            self.otp = build_otp_service(
                settings.otp,
                settings.data_dir,
                self.db,
                self.clock,
                self.outbox,
                shop_name=settings.shop.name,
                default_region=settings.sms.default_region,
            )
            backoffice = build_backoffice(settings, self.db, self.clock)
            self.backoffice = backoffice
        except PathError as exc:
            raise StartupError(str(exc)) from None
        await self._start_modem()
        self.tgtg = self._build_tgtg()
        if self.metrics is not None:
            self.metrics.count_polls(self.tgtg)

        try:
            sock = bind_socket(settings.api.host, settings.api.port)
        except ApiBindError as exc:
            raise StartupError(str(exc)) from None
        ctx = ApiContext(
            db=self.db,
            clock=self.clock,
            api_token=self.api_token,
            version=__version__,
            started_at=self.clock.now(),
            started_monotonic=self.clock.monotonic(),
            max_body_bytes=settings.api.max_body_bytes,
            cors_origins=settings.api.cors_origins,
            health_sources={
                "sms": self._sms_health,
                "push": self._push_health,
                "email": self._email_health,
                "tgtg": self._tgtg_health,
                # Open owner alerts, for `shopbell doctor` and the TUI's dashboard.
                "owner": self.owner.health,
            },
            settings=settings,
            outbox=self.outbox,
            push=self.push,
            otp=self.otp,
            tgtg=self.tgtg,
            backoffice=backoffice,
            metrics=self.metrics,
            inbound=self.inbound,
            receipts=self.receipts,
        )
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
        api_budget = settings.shutdown.api_seconds
        # The server forces its connections closed a little before the stage's own deadline.
        self._stages.append(
            _Stage("api", api_budget, functools.partial(server.stop, timeout=api_budget * 0.8))
        )
        url = self.api_url
        log.info("api: listening on %s (docs %s/api/docs)", url, url)

        await self.dispatcher.start()
        outbox_budget = settings.shutdown.outbox_seconds
        self._stages.append(
            _Stage(
                "outbox",
                outbox_budget,
                functools.partial(self.dispatcher.stop, timeout=outbox_budget * 0.9),
            )
        )
        log.info("outbox: dispatching (%d sends at once at most)", self.router.capacity)

        self.scheduler = Scheduler(self.db, self.clock)
        for spec in self._jobs():
            self.scheduler.add(spec)
        self.scheduler.start()
        ctx.jobs = self.scheduler.next_runs
        jobs_budget = settings.shutdown.scheduler_seconds
        self._stages.append(
            _Stage(
                "scheduler",
                jobs_budget,
                functools.partial(self.scheduler.stop, timeout=jobs_budget * 0.9),
            )
        )
        log.info("scheduler: %s", ", ".join(self.scheduler.job_ids) or "no jobs")
        log.info(
            "ready: database %s, config %s, API %s",
            settings.database_path,
            self.loaded.source_label,
            url,
        )
        await self.systemd.ready(self._status_line)

    async def _status_line(self) -> str:
        """What `systemctl status shopbell` shows: where it serves and what waits."""
        assert self.db is not None
        queue = await self.db.execute(count_by_status)
        line = f"serving on {self.api_url}; {queue.get('queued', 0)} queued"
        if queue.get("sending"):
            line += f", {queue['sending']} sending"
        return line

    async def _report_providers(self, chain: ChainReport) -> None:
        assert self.router is not None
        for name, why in chain.left_out.items():
            log.info("sms provider %s left out: %s", name, why)
        if chain.console_only:
            log.warning(
                "sms: no real provider is configured: messages (one-time codes included) are "
                "printed to this log, not sent; configure [twilio] or [fast2sms]"
            )
        else:
            log.info("sms chain: %s", " -> ".join(chain.used))
        for name, health in (await self.router.health()).items():
            log.info(
                "provider %s: %s%s",
                name,
                health.state,
                f" ({health.detail})" if health.detail else "",
            )

    def _jobs(self) -> list[JobSpec]:
        """Every scheduled job, by fixed id; later features add theirs here."""
        return [
            JobSpec(
                "provider-health",
                self._check_providers,
                IntervalTrigger(minutes=PROVIDER_CHECK_MINUTES),
            ),
            JobSpec(
                "memory-trim",
                self._release_memory,
                IntervalTrigger(minutes=MEMORY_TRIM_MINUTES),
            ),
            JobSpec(
                "otp-sweep",
                self._sweep_otp,
                IntervalTrigger(seconds=self.settings.otp.sweep_seconds),
            ),
            # One job for every TGTG account: the request budget is per IP, so one place
            # spreads the polls inside it (see daemon/tgtg/watcher.py).
            JobSpec(
                "tgtg-poll",
                self._poll_tgtg,
                IntervalTrigger(seconds=self.settings.tgtg.tick_seconds),
            ),
            # Yesterday's report every morning; last week's on [reports] weekly_on. A missed
            # run (the machine was off) still runs within the hour after.
            JobSpec(
                "report-daily",
                functools.partial(self._send_report, "daily"),
                self._report_trigger(),
                misfire_grace_seconds=3600,
            ),
            JobSpec(
                "report-weekly",
                functools.partial(self._send_report, "weekly"),
                self._report_trigger(self.settings.reports.weekly_on),
                misfire_grace_seconds=3600,
            ),
            # Nightly backup, daily retention, the free-disk check every 10 minutes.
            *(self.care.jobs() if self.care is not None else []),
        ]

    def _report_trigger(self, day_of_week: str | None = None) -> CronTrigger:
        """[reports] daily_at in [shop] timezone, every day or on one day of the week."""
        at = time.fromisoformat(self.settings.reports.daily_at)
        return CronTrigger(
            day_of_week=day_of_week,
            hour=at.hour,
            minute=at.minute,
            timezone=ZoneInfo(self.settings.shop.timezone),
        )

    async def _send_report(self, kind: str) -> str:
        """Build and store the report of the period that ended yesterday, and queue it."""
        assert self.backoffice is not None and self.outbox is not None
        done = await report_mail.run(
            self.backoffice,
            self.outbox,
            self.settings,
            kind,  # type: ignore[arg-type]
        )
        return (
            f"{kind} report {report_mail.span(done.report)} stored (id {done.stored.id}); "
            f"{len(done.message_ids)} messages queued"
        )

    async def _tgtg_health(self) -> dict[str, object]:
        assert self.tgtg is not None
        return await self.tgtg.health()

    async def _poll_tgtg(self) -> str:
        assert self.tgtg is not None
        return await self.tgtg.tick()

    def _build_tgtg(self) -> Watcher:
        """The TGTG watcher on the shared HTTP client; it polls from the `tgtg-poll` job."""
        assert self.db is not None and self.http is not None
        tgtg = self.settings.tgtg
        client = TgtgClient(
            self.http,
            base_url=tgtg.base_url,
            language=tgtg.language,
            timeout=tgtg.timeout_seconds,
        )
        settings = WatcherSettings(
            poll_seconds=tgtg.poll_seconds,
            requests_per_minute=tgtg.requests_per_minute,
            active_hours=tgtg.active_hours,
            backoff_max_seconds=tgtg.backoff_max_seconds,
            blocked_seconds=tgtg.blocked_seconds,
            timezone=self.settings.shop.timezone,
        )
        # A block is told to the owner through OwnerAlerts ([owner], else [tgtg] owner_phone).
        watcher = Watcher(
            self.db,
            self.clock,
            client,
            settings,
            outbox=self.outbox,
            push=self.push,
            owner=self.owner,
        )
        # The sales-window timer polls at an announced window's time, between ticks.
        watcher.start()
        self._stages.append(_Stage("tgtg windows", Watcher.STOP_SECONDS, watcher.stop))
        return watcher

    async def _release_memory(self) -> str | None:
        # A few milliseconds on the loop; the database thread waits for malloc meanwhile.
        return release_free_memory()

    async def _sweep_otp(self) -> str:
        assert self.otp is not None
        return await self.otp.sweep()

    async def _check_providers(self) -> str:
        assert self.router is not None
        health = await self.router.health()
        if self.care is not None:
            await self.care.providers.observe(health)
        return ", ".join(f"{name} {h.state}" for name, h in sorted(health.items()))

    async def _start_modem(self) -> None:
        """Hand the modem its inbound and report handlers and let it connect in the background."""
        assert self.router is not None
        if not self.settings.modem.configured:
            return
        # Loaded only with a modem configured (3 MB a daemon without one need not carry).
        from providers.modem.provider import ModemProvider

        for slot in self.router.slots():
            if isinstance(slot.provider, ModemProvider):
                slot.provider.on_inbound = self._modem_inbound
                slot.provider.on_status_report = self._modem_report
                await slot.provider.start()
                log.info("modem: connecting to %s in the background", slot.provider.port)

    async def _modem_inbound(self, message: ModemInbound) -> None:
        """One SMS from the modem, through the one inbound entry, before the modem deletes it."""
        assert self.inbound is not None
        await self.inbound.receive(
            Received(
                source="modem",
                sender=message.sender,
                body=message.text,
                provider_message_id=message.key,
            )
        )

    async def _modem_report(self, report: ModemReport) -> None:
        """One segment's status report from the modem, through the one receipts entry."""
        assert self.receipts is not None
        await self.receipts.apply(
            SegmentReport(
                provider="modem",
                reference=str(report.message_reference),
                recipient=report.recipient,
                delivered=report.delivered,
                failed=report.failed,
                status_code=report.status,
            )
        )

    async def _sms_health(self) -> dict[str, object]:
        assert self.router is not None and self.db is not None
        providers = await self.router.health("sms")
        states = [h.state for h in providers.values()]
        state = "ok" if states and all(s == "ok" for s in states) else "degraded"
        if states and all(s == "down" for s in states):
            state = "down"
        queue = await self.db.execute(count_by_status)
        return {
            "state": state,
            "chain": [slot.name for slot in self.router.chain("sms")],
            "providers": {n: {"state": h.state, "detail": h.detail} for n, h in providers.items()},
            "left_out": dict(self.chain.left_out) if self.chain else {},
            "queued": queue.get("queued", 0),
            "sending": queue.get("sending", 0),
            "failed": queue.get("failed", 0),
        }

    async def _push_health(self) -> dict[str, object]:
        assert self.router is not None
        return await push_health(self.router)

    async def _email_health(self) -> dict[str, object]:
        """The e-mail chain (SMTP, or the console) for the dashboard, shaped like push's."""
        assert self.router is not None
        providers = await self.router.health("email")
        states = {h.state for h in providers.values()}
        return {
            "state": "ok" if states == {"ok"} else "down" if states <= {"down"} else "degraded",
            "chain": [slot.name for slot in self.router.chain("email")],
            "providers": {n: {"state": h.state, "detail": h.detail} for n, h in providers.items()},
        }

    async def _record_opt_out(self, channel: str, recipient: str, reason: str) -> None:
        assert self.db is not None
        if channel == "push":
            # A dead device token, not a person saying STOP: only that token is dropped.
            assert self.push is not None
            await self.push.token_dead(recipient, reason)
            return
        now = utc_iso(self.clock.now())
        await self.db.write(lambda conn: opt_out(conn, recipient, now, reason=reason))
        log.info("%s opted out (%s); their queued messages are cancelled", recipient, reason)

    @property
    def api_url(self) -> str:
        host = self.settings.api.host
        port = self.api_server.bound_port if self.api_server else self.settings.api.port
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    async def _shutdown(self) -> None:
        if not self._stages and self._lock is None:
            return
        self._stopping = True
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
        changed = _changed_keys(self.settings, new)
        if not changed:
            log.info("reload: configuration unchanged")
            return []
        live = [key for key in changed if key in RELOADABLE_KEYS]
        restart = [key for key in changed if key not in RELOADABLE_KEYS]
        if live:
            update_logging(new.logging.level, [*secret_values(new), self.api_token])
            log.info("reload: applied %s", ", ".join(live))
        if restart:
            log.warning("reload: these need a restart to take effect: %s", ", ".join(restart))
        self.loaded = loaded
        self.settings = self.settings.model_copy(update={"logging": new.logging})
        return changed


def _changed_keys(old: Settings, new: Settings) -> list[str]:
    changed: list[str] = []
    for section_name in Settings.model_fields:
        before, after = getattr(old, section_name), getattr(new, section_name)
        for key in type(before).model_fields:
            if getattr(before, key) != getattr(after, key):
                changed.append(f"{section_name}.{key}")
    return changed


def run_daemon(
    config_arg: Path | None, overrides: Overrides, environ: Mapping[str, str] | None = None
) -> int:
    """`shopbell run`: load the config, set up logging, run until stopped; the exit code."""
    try:
        loaded = load_config(config_arg, environ)
        settings = overrides.apply(loaded.settings)
    except ConfigError as exc:
        setup_logging("INFO")
        log.error("%s", exc)
        return EXIT_BAD_CONFIG
    try:
        setup_logging(
            settings.logging.level,
            secret_values(settings),
            file=log_file_path(settings),
            max_bytes=settings.logging.max_bytes,
            backups=settings.logging.backups,
        )
    except PathError as exc:
        setup_logging("INFO", secret_values(settings))
        log.error("cannot start: %s", exc)
        return EXIT_STARTUP_FAILED
    daemon = Daemon(loaded=loaded, config_arg=config_arg, overrides=overrides, environ=environ)
    loop_factory = _loop_factory(settings.api.event_loop)
    # Everything built so far lives as long as the process: freezing it keeps the collector's
    # full passes (34 ms over ~100,000 startup objects) from stalling every request now and then.
    gc.collect()
    gc.freeze()
    one_malloc_arena()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(daemon.run())


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """[api] event_loop: None for Python's own loop, else uvloop's (when it is installed)."""
    if name != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("[api] event_loop = uvloop, but uvloop is not installed: using asyncio")
        return None
    log.info("event loop: uvloop")
    return uvloop.new_event_loop
