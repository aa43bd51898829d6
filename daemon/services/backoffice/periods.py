"""Days in the shop's time zone as UTC instants, the form the database compares."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from daemon.runtime.clock import utc_iso


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight at the start of `day` (zoneinfo resolves DST gaps and folds)."""
    return datetime.combine(day, time(0), tzinfo=zone)


def days_range(first: date, last: date, zone: ZoneInfo) -> tuple[str, str]:
    """[start of `first`, start of the day after `last`) as UTC text."""
    return utc_iso(day_start(first, zone)), utc_iso(day_start(last + timedelta(days=1), zone))


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def last_days(now: datetime, days: int, zone: ZoneInfo) -> tuple[date, date]:
    """The `days` local days ending today (today included)."""
    today = local_day(now, zone)
    return today - timedelta(days=days - 1), today
