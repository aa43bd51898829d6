"""Every service of the daemon, built once from the settings into one frozen record.

The order here is the order of dependence: the outbox before everything that sends, the
owner's alerts right after it (every later part may need to tell the owner something), the
watchers last. Nothing here starts a task or touches the network: daemon/app/lifecycle.py
starts what needs starting, in its own order, and stops it in reverse.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon import __version__
from daemon.api.context import ApiContext
from daemon.app.wiring import ChainReport, build_router
from daemon.config import Settings
from daemon.runtime.clock import Clock
from daemon.runtime.http_client import SharedHttp
from daemon.services.backoffice.service import BackOffice, build_backoffice
from daemon.services.care.backups import Backups
from daemon.services.care.clock import ClockCheck
from daemon.services.care.direct_alert import DirectAlert
from daemon.services.care.disk import DiskWatch
from daemon.services.care.outbox_watch import OutboxWatch
from daemon.services.care.provider_watch import ProviderWatch
from daemon.services.care.retention import Retention
from daemon.services.inbound import InboundService, Received
from daemon.services.opt_outs import OptOuts
from daemon.services.otp.service import OtpService, build_otp_service
from daemon.services.outbox.backpressure import Backpressure, QueueLimits
from daemon.services.outbox.budget import Budget, BudgetRules
from daemon.services.outbox.dispatcher import Dispatcher, OutcomeHook
from daemon.services.outbox.health import email_health, push_health, sms_health
from daemon.services.outbox.meter import SendMeter
from daemon.services.outbox.policy import RetryPolicy
from daemon.services.outbox.router import Router
from daemon.services.outbox.sealing import build_sealer
from daemon.services.outbox.service import Outbox
from daemon.services.owner import OwnerAlerts
from daemon.services.push import PushService
from daemon.services.receipts import Receipts, SegmentReport, build_receipts
from daemon.services.tgtg.reserve import Reservations
from daemon.services.tgtg.watcher import Watcher, WatcherSettings
from providers.tgtg.app_version import PLAY_URL, AppVersion
from providers.tgtg.client import DEFAULT_BASE_URL, TgtgClient
from providers.tgtg.datadome import SDK_URL, DataDomeSdk
from storage.database import Database

if TYPE_CHECKING:
    from daemon.services.metrics import Metrics
    from providers.modem.provider import ModemInbound, ModemProvider, ModemReport

log = logging.getLogger(__name__)
# In the data folder: the TGTG app version last found on Google Play.
APP_VERSION_FILE = "tgtg_app_version"


@dataclass(frozen=True, slots=True)
class Services:
    """The daemon's parts, each built once; the lifecycle starts and stops the ones that run."""

    db: Database
    http: SharedHttp
    router: Router
    chain: ChainReport
    dispatcher: Dispatcher
    outbox: Outbox
    owner: OwnerAlerts
    inbound: InboundService
    receipts: Receipts
    push: PushService
    otp: OtpService
    backoffice: BackOffice
    tgtg: Watcher
    provider_watch: ProviderWatch
    backups: Backups
    retention: Retention
    disk: DiskWatch
    # The queues' ETA and the spending cap, told to the owner.
    outbox_watch: OutboxWatch
    # The owner told straight through the providers when the database file is gone.
    direct_alert: DirectAlert
    # The start-up clock check and the mobile network's time (docs/clock.md).
    clock_check: ClockCheck
    # Only with [metrics] enabled.
    metrics: Metrics | None


def build_services(settings: Settings, db: Database, http: SharedHttp, clock: Clock) -> Services:
    """Every service from `settings`; raises PathError when a key file cannot be made or read."""
    router, chain = build_router(settings, http, clock)
    # One-time codes are stored sealed, their key beside the database (never in it).
    sealer = build_sealer(settings.data_dir)
    metrics: Metrics | None = None
    if settings.metrics.enabled:
        # Imported only when on: no other part needs prometheus_client.
        from daemon.services.metrics import Metrics

        metrics = Metrics(db, clock, router)
    outbox_settings = settings.outbox
    # How fast each queue drains, for backpressure's Retry-After and the queue's ETA.
    meter = SendMeter(clock)
    backpressure = Backpressure(
        QueueLimits(outbox_settings.max_queued, dict(outbox_settings.max_queued_by_kind)),
        meter,
        router.rate,
    )
    dispatcher = Dispatcher(
        db,
        router,
        clock,
        RetryPolicy(
            attempts_per_provider=outbox_settings.attempts_per_provider,
            base_seconds=outbox_settings.backoff_base_seconds,
            max_seconds=outbox_settings.backoff_max_seconds,
        ),
        lease_seconds=outbox_settings.lease_seconds,
        batch_size=outbox_settings.batch_size,
        on_opt_out=OptOuts(db, clock).record,
        on_outcome=_outcome_hooks(meter.observe, metrics.observe_send if metrics else None),
        sealer=sealer,
    )
    outbox = Outbox(
        db,
        clock,
        default_region=settings.sms.default_region,
        max_segments=settings.sms.max_segments,
        wake=dispatcher.wake,
        sealer=sealer,
        backpressure=backpressure,
        budget=build_budget(settings),
    )
    owner = build_owner_alerts(settings, db, clock, outbox)
    direct_alert = DirectAlert(
        router, clock, phone=owner.phone, email=owner.email, shop_name=settings.shop.name
    )
    # Called on the loop the moment the database finds its file gone, or its disk full.
    db.on_gone = direct_alert.database_gone
    db.on_full = direct_alert.disk_full
    push = PushService(db, clock, wake=dispatcher.wake, backpressure=backpressure)
    tgtg = build_tgtg(settings, db, clock, http, outbox=outbox, push=push, owner=owner)
    if metrics is not None:
        metrics.count_polls(tgtg)
    return Services(
        db=db,
        http=http,
        router=router,
        chain=chain,
        dispatcher=dispatcher,
        outbox=outbox,
        owner=owner,
        inbound=InboundService(
            db,
            clock,
            settings.sms.help_text,
            default_region=settings.sms.default_region,
            outbox=outbox,
            reservations=build_reservations(settings, db, clock, tgtg),
        ),
        receipts=build_receipts(db, clock, settings),
        push=push,
        otp=build_otp_service(
            settings.otp,
            settings.data_dir,
            db,
            clock,
            outbox,
            shop_name=settings.shop.name,
            default_region=settings.sms.default_region,
        ),
        backoffice=build_backoffice(settings, db, clock),
        tgtg=tgtg,
        provider_watch=ProviderWatch(owner, clock, settings.owner.provider_down_minutes),
        backups=Backups(
            settings.database_path, settings.backup_dir, settings.backup.keep, clock, owner
        ),
        retention=Retention(db, clock, settings.retention.messages_days),
        disk=DiskWatch(settings.data_dir, settings.owner.disk_free_min_mb, owner),
        direct_alert=direct_alert,
        outbox_watch=OutboxWatch(
            db, clock, outbox, owner, eta_alert_minutes=outbox_settings.eta_alert_minutes
        ),
        clock_check=ClockCheck(db, clock),
        metrics=metrics,
    )


def _outcome_hooks(*hooks: OutcomeHook | None) -> OutcomeHook:
    """One outcome hook for the dispatcher that calls each given one in turn."""
    given = [hook for hook in hooks if hook is not None]

    def observe(provider: str, channel: str, outcome: str, seconds: float) -> None:
        for hook in given:
            hook(provider, channel, outcome, seconds)

    return observe


def build_budget(settings: Settings) -> Budget | None:
    """The spending cap from [sms] budget_*; None when neither cap is set."""
    sms = settings.sms
    rules = BudgetRules(
        per_day=sms.budget_per_day,
        per_month=sms.budget_per_month,
        price_per_segment=sms.price_per_segment,
        currency=settings.shop.currency,
        warn_percent=sms.budget_warn_percent,
        exempt=frozenset(sms.budget_exempt),
        timezone=settings.shop.timezone,
    )
    return Budget(rules) if rules.on else None


def build_owner_alerts(
    settings: Settings, db: Database, clock: Clock, outbox: Outbox
) -> OwnerAlerts:
    """OwnerAlerts from [owner], the phone falling back to [tgtg] and [reports] owner_phone."""
    if not (settings.owner_phone or settings.owner.email):
        log.info("owner: no [owner] phone or email: what needs the owner is only logged")
    return OwnerAlerts(
        db,
        clock,
        outbox,
        phone=settings.owner_phone,
        email=settings.owner.email,
        max_per_hour=settings.owner.max_per_hour,
        shop_name=settings.shop.name,
    )


def build_tgtg(
    settings: Settings,
    db: Database,
    clock: Clock,
    http: SharedHttp,
    *,
    outbox: Outbox,
    push: PushService,
    owner: OwnerAlerts,
) -> Watcher:
    """The TGTG watcher on the shared HTTP client; it polls from the `tgtg-poll` job."""
    tgtg = settings.tgtg
    # A stand-in base_url (a fake, a mirror) talks to nobody else unless told to.
    real = tgtg.base_url == DEFAULT_BASE_URL
    datadome_url = tgtg.datadome_url or (SDK_URL if real else "")
    client = TgtgClient(
        http,
        base_url=tgtg.base_url,
        language=tgtg.language,
        timeout=tgtg.timeout_seconds,
        datadome=DataDomeSdk(datadome_url, clock.now, min(tgtg.timeout_seconds, 10.0))
        if datadome_url
        else None,
        app_version=AppVersion(
            override=tgtg.app_version,
            lookup_url=tgtg.app_version_url or (PLAY_URL if real else ""),
            # The last version found, for when a later lookup fails.
            remember=settings.data_dir / APP_VERSION_FILE,
            timeout=tgtg.timeout_seconds,
        ),
    )
    watcher_settings = WatcherSettings(
        poll_seconds=tgtg.poll_seconds,
        requests_per_minute=tgtg.requests_per_minute,
        active_hours=tgtg.active_hours,
        backoff_max_seconds=tgtg.backoff_max_seconds,
        blocked_seconds=tgtg.blocked_seconds,
        timezone=settings.shop.timezone,
        reserve_by_reply=tgtg.reserve_by_reply,
    )
    # A block is told to the owner through OwnerAlerts ([owner], else [tgtg] owner_phone).
    return Watcher(db, clock, client, watcher_settings, outbox=outbox, push=push, owner=owner)


def build_reservations(
    settings: Settings, db: Database, clock: Clock, tgtg: Watcher
) -> Reservations | None:
    """Reserve by reply ([tgtg] reserve_by_reply), through the watcher's accounts; None when
    off, so "R" and "C" stay ordinary messages."""
    if not settings.tgtg.reserve_by_reply:
        return None
    return Reservations(
        db,
        clock,
        tgtg,
        per_day=settings.tgtg.reserve_per_day,
        timezone=settings.shop.timezone,
    )


def modems(services: Services) -> list[ModemProvider]:
    """The configured modems, each handing what it receives to the one inbound entry and its
    status reports to the one receipts entry."""
    # Imported only when a modem is in the chain: a daemon without one need not load it.
    if not any(slot.name == "modem" for slot in services.router.slots()):
        return []
    from providers.modem.provider import ModemProvider

    found: list[ModemProvider] = []
    for slot in services.router.slots():
        if isinstance(slot.provider, ModemProvider):
            slot.provider.on_inbound = lambda message: _modem_inbound(services, message)
            slot.provider.on_status_report = lambda report: _modem_report(services, report)
            slot.provider.on_network_time = functools.partial(
                services.clock_check.network_time, slot.provider.name
            )
            found.append(slot.provider)
    return found


async def _modem_inbound(services: Services, message: ModemInbound) -> None:
    # Before the modem deletes it from the SIM: stored first, so a crash loses nothing.
    await services.inbound.receive(
        Received(
            source="modem",
            sender=message.sender,
            body=message.text,
            provider_message_id=message.key,
        )
    )


async def _modem_report(services: Services, report: ModemReport) -> None:
    await services.receipts.apply(
        SegmentReport(
            provider="modem",
            reference=str(report.message_reference),
            recipient=report.recipient,
            delivered=report.delivered,
            failed=report.failed,
            status_code=report.status,
        )
    )


def api_context(services: Services, settings: Settings, clock: Clock, api_token: str) -> ApiContext:
    """What the HTTP API's routes see: the services, the settings and where health comes from."""
    router, db = services.router, services.db
    return ApiContext(
        db=db,
        clock=clock,
        api_token=api_token,
        version=__version__,
        started_at=clock.now(),
        started_monotonic=clock.monotonic(),
        max_body_bytes=settings.api.max_body_bytes,
        cors_origins=settings.api.cors_origins,
        health_sources={
            "sms": lambda: sms_health(router, db, services.chain.left_out),
            "push": lambda: push_health(router),
            "email": lambda: email_health(router),
            # The queues' depth and ETA, and the spending cap.
            "outbox": services.outbox_watch.health,
            "tgtg": services.tgtg.health,
            # Open owner alerts, for `shopbell doctor` and the TUI's dashboard.
            "owner": services.owner.health,
            # The start-up clock check and the network's time (docs/clock.md).
            "clock": services.clock_check.health,
        },
        settings=settings,
        outbox=services.outbox,
        push=services.push,
        otp=services.otp,
        tgtg=services.tgtg,
        backoffice=services.backoffice,
        metrics=services.metrics,
        inbound=services.inbound,
        receipts=services.receipts,
    )


async def log_chain(services: Services) -> None:
    """The start log's account of the providers: which are used, which left out and why."""
    chain = services.chain
    for name, why in chain.left_out.items():
        log.info("sms provider %s left out: %s", name, why)
    if chain.console_only:
        log.warning(
            "sms: no real provider is configured: messages (one-time codes included) are "
            "printed to this log, not sent; configure [twilio] or [fast2sms]"
        )
    else:
        log.info("sms chain: %s", " -> ".join(chain.used))
    for name, health in (await services.router.health()).items():
        detail = f" ({health.detail})" if health.detail else ""
        log.info("provider %s: %s%s", name, health.state, detail)
