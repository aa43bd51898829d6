"""The one table of scheduled jobs: what runs when, by fixed id.

Each job's id names its row in `job_runs` (the dashboard's Jobs panel and `shopbell doctor`
read it); a missed run of a daily job (the machine was off or asleep) still runs within its
grace time after. Times of day are in [shop] timezone.
"""

from __future__ import annotations

import functools
from datetime import time
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from daemon.app.services import Services
from daemon.config import Settings
from daemon.runtime.scheduler import JobSpec
from daemon.services.backoffice import report_mail

PROVIDER_CHECK_MINUTES = 5
DISK_CHECK_MINUTES = 10
OUTBOX_WATCH_SECONDS = 60
# A missed report (the machine was off) still goes out within the hour after.
REPORT_GRACE_SECONDS = 3600
# A missed nightly backup or clean-up still runs within six hours.
NIGHTLY_GRACE_SECONDS = 6 * 3600


def scheduled_jobs(settings: Settings, services: Services) -> list[JobSpec]:
    zone = ZoneInfo(settings.shop.timezone)
    reports = settings.reports
    return [
        JobSpec(
            "provider-health",
            functools.partial(_check_providers, services),
            IntervalTrigger(minutes=PROVIDER_CHECK_MINUTES),
        ),
        JobSpec(
            "otp-sweep",
            services.otp.sweep,
            IntervalTrigger(seconds=settings.otp.sweep_seconds),
        ),
        # One job for every TGTG account: the request budget is per IP, so one place spreads
        # the polls inside it (daemon/services/tgtg/watcher.py).
        JobSpec(
            "tgtg-poll",
            services.tgtg.tick,
            IntervalTrigger(seconds=settings.tgtg.tick_seconds),
            # Every few seconds: each account's own last poll is in tgtg_accounts; only a
            # failing tick is written to job_runs.
            record_ok=False,
        ),
        # Yesterday's report every morning; last week's on [reports] weekly_on.
        JobSpec(
            "report-daily",
            functools.partial(_send_report, services, settings, "daily"),
            _at(reports.daily_at, zone),
            misfire_grace_seconds=REPORT_GRACE_SECONDS,
        ),
        JobSpec(
            "report-weekly",
            functools.partial(_send_report, services, settings, "weekly"),
            _at(reports.daily_at, zone, day_of_week=reports.weekly_on),
            misfire_grace_seconds=REPORT_GRACE_SECONDS,
        ),
        JobSpec(
            "backup",
            services.backups.run,
            _at(settings.backup.at, zone),
            misfire_grace_seconds=NIGHTLY_GRACE_SECONDS,
        ),
        JobSpec(
            "retention",
            services.retention.run,
            _at(settings.retention.at, zone),
            misfire_grace_seconds=NIGHTLY_GRACE_SECONDS,
        ),
        JobSpec("disk-check", services.disk.run, IntervalTrigger(minutes=DISK_CHECK_MINUTES)),
        # The SMS budget recounted and the queues' ETA looked at: the owner told when either
        # needs them (daemon/services/care/outbox_watch.py).
        JobSpec(
            "outbox-watch",
            services.outbox_watch.run,
            IntervalTrigger(seconds=OUTBOX_WATCH_SECONDS),
        ),
    ]


def _at(moment: str, zone: ZoneInfo, *, day_of_week: str | None = None) -> CronTrigger:
    """Every day (or on one day of the week) at `moment` ("HH:MM") in `zone`."""
    at = time.fromisoformat(moment)
    return CronTrigger(day_of_week=day_of_week, hour=at.hour, minute=at.minute, timezone=zone)


async def _check_providers(services: Services) -> str:
    """Every provider's health; a long outage or a locked SIM becomes an owner alert."""
    health = await services.router.health()
    await services.provider_watch.observe(health)
    return ", ".join(f"{name} {h.state}" for name, h in sorted(health.items()))


async def _send_report(services: Services, settings: Settings, kind: str) -> str:
    """Build and store the report of the period that ended yesterday, and queue it."""
    done = await report_mail.run(
        services.backoffice,
        services.outbox,
        settings,
        kind,  # type: ignore[arg-type]
    )
    return (
        f"{kind} report {report_mail.span(done.report)} stored (id {done.stored.id}); "
        f"{len(done.message_ids)} messages queued"
    )
