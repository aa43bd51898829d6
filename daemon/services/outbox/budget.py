"""The spending cap: SMS segments a day and a month ([sms] budget_per_day, budget_per_month).

A segment counts when its message is queued (that is when the shop commits to paying for
it); a cancelled message, or one that failed with no provider taking it, gives it back at the
next recount. At 100 % the API's sends and every kind the daemon sends that is not in
`[sms] budget_exempt` are refused with 503 until the period ends; exempt kinds (one-time
codes, replies, owner alerts, reports by default) go on and are still counted, so a bug, a
hook loop or OTP pumping cannot spend the shop's credit unseen.

The running totals live here, touched only on the database thread (inside the write that
queues a message, and by `recount`), so the check costs no query per message; they are
recounted from the messages table when a period starts and by the `outbox-watch` job (which
also corrects what a retry or a cancel changed meanwhile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import sqlite_utils

from daemon.runtime.clock import utc_iso
from daemon.runtime.durations import human_duration
from storage.messages import sms_segments_since

Period = Literal["day", "month"]
Origin = Literal["api", "daemon"]


class BudgetSpent(Exception):
    """A message would pass the spending cap; the text says which, how much is used, and
    when sending resumes."""

    def __init__(self, text: str, retry_after: int) -> None:
        super().__init__(text)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class BudgetRules:
    """[sms] budget_per_day, budget_per_month (segments; 0: no cap), the price of a segment
    in the shop's currency, the warning level and the exempt kinds."""

    per_day: int = 0
    per_month: int = 0
    price_per_segment: float = 0.0
    currency: str = ""
    warn_percent: int = 80
    exempt: frozenset[str] = frozenset({"otp", "reply", "system", "report"})
    timezone: str = "UTC"

    @property
    def on(self) -> bool:
        return bool(self.per_day or self.per_month)


@dataclass(frozen=True, slots=True)
class Spend:
    """One period's use: segments queued since it started, against its cap."""

    period: Period
    starts: datetime
    ends: datetime
    segments: int
    limit: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.segments / self.limit if self.limit else None

    @property
    def spent(self) -> bool:
        return 0 < self.limit <= self.segments


@dataclass(frozen=True, slots=True)
class BudgetState:
    """The budget as health, the TUI and the owner's alert show it."""

    day: Spend
    month: Spend
    rules: BudgetRules

    @property
    def state(self) -> Literal["off", "ok", "warn", "spent"]:
        if not self.rules.on:
            return "off"
        if self.day.spent or self.month.spent:
            return "spent"
        percents = [p for p in (self.day.percent, self.month.percent) if p is not None]
        return "warn" if max(percents) >= self.rules.warn_percent else "ok"

    def money(self, segments: int) -> str:
        """`segments` at the configured price ("" when no price is set)."""
        if not self.rules.price_per_segment:
            return ""
        return f"{segments * self.rules.price_per_segment:,.2f} {self.rules.currency}".strip()

    def describe(self, spend: Spend) -> str:
        """ "412 of 500 segments today (82 %, 41.20 INR)"."""
        when = "today" if spend.period == "day" else "this month"
        money = self.money(spend.segments)
        extra = f", {money}" if money else ""
        return (
            f"{spend.segments:,} of {spend.limit:,} segments {when} "
            f"({spend.percent or 0:.0f} %{extra})"
        )

    @property
    def capped(self) -> list[Spend]:
        return [spend for spend in (self.day, self.month) if spend.limit]


class Budget:
    """Running totals of the day's and the month's segments, and the cap's check."""

    def __init__(self, rules: BudgetRules) -> None:
        self.rules = rules
        self._zone = ZoneInfo(rules.timezone)
        # (period start, segments) per period; replaced whole, so a reader on another thread
        # sees one consistent pair.
        self._totals: dict[Period, tuple[datetime, int]] = {}

    def check(
        self,
        conn: sqlite_utils.Database,
        kind: str,
        origin: Origin,
        segments: int,
        now: datetime,
    ) -> None:
        """Raise BudgetSpent when `segments` more of `kind` would pass a cap. Runs in the
        write transaction that queues the message."""
        if not self.rules.on:
            return
        state = self._current(conn, now)
        if origin == "daemon" and kind in self.rules.exempt:
            return
        for spend in state.capped:
            if spend.segments + segments > spend.limit:
                retry = min(31 * 86_400, max(1, math.ceil((spend.ends - now).total_seconds())))
                key = "budget_per_day" if spend.period == "day" else "budget_per_month"
                resumes = "at midnight" if spend.period == "day" else "on the 1st"
                raise BudgetSpent(
                    f"the SMS budget is spent: {state.describe(spend)} ([sms] {key}); this "
                    f"message needs {segments}; sending resumes {resumes} (in "
                    f"{human_duration(retry)}); one-time codes and the owner's alerts still "
                    "go out",
                    retry,
                )

    def charge(self, segments: int) -> None:
        """Count `segments` just queued (on the database thread, after the insert)."""
        for period, (start, used) in list(self._totals.items()):
            self._totals[period] = (start, used + segments)

    def refund(self, segments: int, created_at: datetime) -> None:
        """Give back a cancelled SMS's segments to the periods it was counted in (no query: a
        flood cancelled by hand must not recount the month for each message)."""
        for period, (start, used) in list(self._totals.items()):
            if created_at >= start:
                self._totals[period] = (start, max(0, used - segments))

    def recount(self, conn: sqlite_utils.Database, now: datetime) -> BudgetState:
        """Count both periods again from the messages table (on the database thread)."""
        day, month = self._bounds(now)
        for period, (start, _) in (("day", day), ("month", month)):
            self._totals[period] = (start, sms_segments_since(conn, utc_iso(start)))
        return self.state(now)

    def state(self, now: datetime) -> BudgetState:
        """The totals as last counted; a period that has just begun and was not recounted
        yet shows 0."""
        day, month = self._bounds(now)
        return BudgetState(
            day=self._spend("day", day, self.rules.per_day),
            month=self._spend("month", month, self.rules.per_month),
            rules=self.rules,
        )

    def _spend(self, period: Period, bounds: tuple[datetime, datetime], limit: int) -> Spend:
        counted = self._totals.get(period)
        used = counted[1] if counted is not None and counted[0] == bounds[0] else 0
        return Spend(period, bounds[0], bounds[1], used, limit)

    def _current(self, conn: sqlite_utils.Database, now: datetime) -> BudgetState:
        """The totals, recounted first when a period has begun since they were counted."""
        starts = tuple(bounds[0] for bounds in self._bounds(now))
        counted = tuple(self._totals.get(period, (None, 0))[0] for period in ("day", "month"))
        return self.recount(conn, now) if counted != starts else self.state(now)

    def _bounds(self, now: datetime) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
        """(start, end) of the shop's day and month around `now`, as UTC times."""
        local = now.astimezone(self._zone)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        day_end = (day_start + timedelta(days=1, hours=2)).replace(hour=0)
        month_start = day_start.replace(day=1)
        month_end = (month_start + timedelta(days=32)).replace(day=1)
        return (
            (_utc(day_start), _utc(day_end)),
            (_utc(month_start), _utc(month_end)),
        )


def _utc(moment: datetime) -> datetime:
    # A local wall time (ZoneInfo works out its offset, DST included) as a UTC instant.
    return moment.astimezone(UTC)
