"""The watcher: drives e-mail logins, polls each account's favourites inside one request budget
per IP, backs off on 429/5xx/403, and turns rising edges into alerts through the outbox.

One scheduled job (`tgtg-poll`) ticks every few seconds and polls the accounts that are due,
instead of one job per account: TGTG's limit is per IP, so only one place can keep the budget,
and a due account that finds the budget spent simply waits for the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.clock import Clock, utc_iso
from daemon.outbox.service import EnqueueError, EnqueueRequest, Outbox
from daemon.push import PushService
from daemon.tgtg.rule import alert_text, edge_key, is_rising_edge
from providers.tgtg.client import Observation, TgtgClient, Tokens
from providers.tgtg.errors import (
    TgtgBlocked,
    TgtgError,
    TgtgLoginError,
    TgtgRateLimited,
    TgtgUnauthorized,
)
from storage import subscribers as subscriber_rows
from storage import tgtg as rows
from storage.database import Database
from storage.models import Subscriber, TgtgAccount

log = logging.getLogger(__name__)

JITTER = 0.1
WINDOW_SECONDS = 60.0
BACKOFF_BASE_SECONDS = 30.0
# An extra poll this long after an announced sales window opens (bags go live at the second).
WINDOW_DELAY_SECONDS = 2.0
MAX_BLOCK_SECONDS = 6 * 3600.0


class LoginStateError(Exception):
    """A PIN was given for an account that is not waiting for one."""


@dataclass(frozen=True)
class WatcherSettings:
    """What the watcher reads from [tgtg] and [shop]."""

    poll_seconds: float = 60.0
    requests_per_minute: int = 10
    active_hours: str = ""
    backoff_max_seconds: float = 900.0
    blocked_seconds: float = 600.0
    owner_phone: str = ""
    timezone: str = "UTC"


class Budget:
    """Requests to TGTG in the last minute, across every account (the limit is per IP)."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()

    def _trim(self) -> None:
        horizon = self._clock.monotonic() - WINDOW_SECONDS
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()

    def used(self) -> int:
        self._trim()
        return len(self._sent)

    def available(self) -> bool:
        return self.used() < self.per_minute

    def spend(self, requests: int) -> None:
        now = self._clock.monotonic()
        self._sent.extend([now] * requests)


def parse_hours(text: str) -> tuple[time, time] | None:
    """ "07:00-22:00" as (start, end); empty is always active. Raises ValueError."""
    if not text.strip():
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not a window like '07:00-22:00'")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


class Watcher:
    """The TGTG side of the daemon; `tick` is its scheduled job."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        client: TgtgClient,
        settings: WatcherSettings,
        *,
        outbox: Outbox | None = None,
        push: PushService | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.client = client
        self.settings = settings
        self._outbox = outbox
        self._push = push
        self._rng = rng or random.Random()
        self.budget = Budget(settings.requests_per_minute, clock)
        self._hours = parse_hours(settings.active_hours)
        self._zone = ZoneInfo(settings.timezone)
        self._next_due: dict[int, float] = {}
        # Announced sales windows per account: an extra poll just after the earliest one.
        self._windows: dict[int, datetime] = {}
        self._was_active: bool | None = None

    # -- login ---------------------------------------------------------------------------------

    async def start_login(self, subscriber_id: int, email: str) -> TgtgAccount:
        """authByEmail; the account is pending until the PIN or the link in the e-mail."""
        polling_id = await self._counted(self.client.auth_by_email(email))
        now = utc_iso(self._clock.now())
        account = await self._db.write(
            lambda c: rows.start_login(c, subscriber_id, email, polling_id, now)
        )
        self._next_due[account.id] = self._clock.monotonic() + self.settings.poll_seconds
        log.info("tgtg: login started for subscriber %d; waiting for the PIN", subscriber_id)
        return account

    async def submit_pin(self, subscriber_id: int, pin: str) -> TgtgAccount:
        account = await self._db.execute(lambda c: rows.account_of(c, subscriber_id))
        if account is None or account.state != "pending" or not account.polling_id:
            raise LoginStateError("no login is waiting for a PIN; start one first")
        tokens = await self._counted(
            self.client.auth_by_pin(account.email, account.polling_id, pin)
        )
        await self._save(account.id, tokens, activate=True)
        self._next_due[account.id] = 0.0
        log.info("tgtg: subscriber %d logged in with the PIN", subscriber_id)
        updated = await self._db.execute(lambda c: rows.get_account(c, account.id))
        assert updated is not None
        return updated

    # -- polling -------------------------------------------------------------------------------

    def in_active_hours(self, moment: datetime) -> bool:
        if self._hours is None:
            return True
        start, end = self._hours
        local = moment.astimezone(self._zone).time()
        if start <= end:
            return start <= local < end
        return local >= start or local < end  # a window across midnight

    async def tick(self) -> str:
        """The scheduled job: poll the due accounts while the budget lasts."""
        now = self._clock.now()
        active = self.in_active_hours(now)
        if active != self._was_active:
            if self._was_active is not None or not active:
                log.info("tgtg: %s active hours", "inside" if active else "outside")
            self._was_active = active
        if not active:
            return "outside active hours"
        accounts = await self._db.execute(rows.accounts)
        polled = deferred = 0
        mono = self._clock.monotonic()
        # Accounts with an announced sales window just opened go first: a drop then is seen
        # within seconds; regular polls can wait for the next tick's share of the budget.
        accounts.sort(key=lambda a: not (a.id in self._windows and self._windows[a.id] <= now))
        for account in accounts:
            window = self._windows.get(account.id)
            window_due = window is not None and window <= now
            regular_due = self._next_due.get(account.id, 0.0) <= mono
            if not self._pollable(account, now) or not (regular_due or window_due):
                continue
            if not self.budget.available():
                deferred += 1
                continue
            self._next_due[account.id] = mono + self.settings.poll_seconds * self._rng.uniform(
                1 - JITTER, 1 + JITTER
            )
            if window_due:
                del self._windows[account.id]
                log.info("tgtg: account %d: extra poll for an announced sales window", account.id)
            await self.poll(account)
            polled += 1
        return f"polled {polled}, deferred {deferred} (budget {self.budget.used()}/min)"

    @staticmethod
    def _pollable(account: TgtgAccount, now: datetime) -> bool:
        if account.state in ("disabled", "error"):
            return False
        if account.state == "pending" and not account.polling_id:
            return False
        return account.backoff_until is None or account.backoff_until <= now

    async def poll(self, account: TgtgAccount) -> None:
        """One poll of one account: the login's polling, or its favourites."""
        now = self._clock.now()
        try:
            if account.state == "pending" or (account.polling_id and not account.access_token):
                # A login still waiting for its link (also after a block hit it).
                await self._poll_login(account)
                return
            observations = await self._favorites(account, now)
        except TgtgBlocked as exc:
            await self._blocked(account, exc)
            return
        except TgtgRateLimited as exc:
            await self._back_off(account, exc, exc.retry_after)
            return
        except (TgtgUnauthorized, TgtgLoginError) as exc:
            await self._set(account, "error", f"{exc.message}; log in again", None, None)
            log.warning("tgtg: account %d needs a new login: %s", account.id, exc)
            return
        except TgtgError as exc:
            await self._back_off(account, exc, None)
            return
        await self.observe(account.subscriber_id, observations)
        self._note_windows(account.id, observations, now)
        stamp = utc_iso(self._clock.now())
        await self._db.write(lambda c: rows.record_poll(c, account.id, stamp, success=True))
        if account.state == "blocked" or account.failures:
            await self._set(account, "active", None, None, 0)
            log.info("tgtg: account %d works again", account.id)

    def _note_windows(
        self, account_id: int, observations: list[Observation], now: datetime
    ) -> None:
        delay = timedelta(seconds=WINDOW_DELAY_SECONDS)
        upcoming = [
            o.next_sales_window + delay
            for o in observations
            if o.next_sales_window is not None and o.next_sales_window + delay > now
        ]
        if upcoming:
            self._windows[account_id] = min(upcoming)
        else:
            self._windows.pop(account_id, None)

    async def _poll_login(self, account: TgtgAccount) -> None:
        assert account.polling_id is not None
        tokens = await self._counted(self.client.auth_by_polling(account.email, account.polling_id))
        if tokens is None:
            return
        await self._save(account.id, tokens, activate=True)
        log.info("tgtg: account %d logged in (link confirmed)", account.id)

    async def _favorites(self, account: TgtgAccount, now: datetime) -> list[Observation]:
        if not account.access_token or not account.refresh_token:
            raise TgtgLoginError(0, "no tokens")

        async def rotate(tokens: Tokens) -> None:
            await self._save(account.id, tokens)
            log.info("tgtg: account %d tokens refreshed", account.id)

        credentials = (account.access_token, account.refresh_token, account.cookie)
        expires = account.access_token_expires_at
        if expires is not None and expires <= now:
            tokens = await self._counted(self.client.refresh(account.refresh_token, account.cookie))
            await rotate(tokens)
            credentials = (tokens.access_token, tokens.refresh_token, tokens.cookie)
        observations, _ = await self._counted(self.client.favorites(credentials, rotate))
        return observations

    async def observe(self, subscriber_id: int, observations: list[Observation]) -> int:
        """Apply one account's observations to every subscriber watching those items; alert
        on each rising edge (before storing the counts, so a crash in between re-alerts with
        the same idempotency key instead of missing). Returns the number of edges."""
        by_id = {o.item_id: o for o in observations if o.item_id}
        previous = await self._db.execute(lambda c: rows.previous_counts(c, list(by_id)))
        edges = [
            p
            for p in previous
            if is_rising_edge(p.items_available, by_id[p.item_id].items_available)
        ]
        ids = [edge.subscriber_id for edge in edges]
        # One read for every subscriber, then the alerts enqueued together, so the database
        # thread commits them in a few groups instead of one fsync per alert.
        subscribers = await self._db.execute(lambda c: {i: subscriber_rows.get(c, i) for i in ids})
        await asyncio.gather(
            *(
                self._alert(
                    subscriber,
                    by_id[edge.item_id],
                    edge_key(
                        edge.subscriber_id, edge.item_id, edge.updated_at, edge.last_alerted_at
                    ),
                )
                for edge in edges
                if (subscriber := subscribers.get(edge.subscriber_id)) is not None
            )
        )
        seen = [_seen(o) for o in by_id.values()]
        alerted = [(e.subscriber_id, e.item_id) for e in edges]
        now = utc_iso(self._clock.now())
        await self._db.write(
            lambda c: rows.apply_observations(c, subscriber_id, seen, now, alerted=alerted)
        )
        return len(edges)

    async def _alert(self, subscriber: Subscriber, item: Observation, key: str) -> None:
        if subscriber.opted_out_at is not None:
            return
        text = alert_text(item, self.settings.timezone)
        if "sms" in subscriber.channels and subscriber.phone and self._outbox is not None:
            try:
                await self._outbox.enqueue(
                    EnqueueRequest(
                        channel="sms",
                        recipient=subscriber.phone,
                        body=text,
                        kind="alert",
                        subscriber_id=subscriber.id,
                        idempotency_key=key,
                    )
                )
            except EnqueueError as exc:
                log.info("tgtg: no SMS alert to subscriber %d: %s", subscriber.id, exc)
        if "push" in subscriber.channels and self._push is not None:
            try:
                await self._push.notify_subscriber(
                    subscriber.id,
                    f"{item.display_name or item.store_name}: bags available",
                    text,
                    {"item_id": item.item_id, "url": item.sharing_url},
                    kind="alert",
                    idempotency_key=key,
                )
            except EnqueueError as exc:
                log.info("tgtg: no push alert to subscriber %d: %s", subscriber.id, exc)
        log.info("tgtg: alert for item %s to subscriber %d", item.item_id, subscriber.id)

    # -- failures ------------------------------------------------------------------------------

    async def _back_off(
        self, account: TgtgAccount, exc: TgtgError, retry_after: float | None
    ) -> None:
        failures = account.failures + 1
        wait = min(self.settings.backoff_max_seconds, BACKOFF_BASE_SECONDS * 2 ** (failures - 1))
        if retry_after is not None:
            wait = max(wait, retry_after)
        until = self._clock.now() + timedelta(seconds=wait)
        state = "blocked" if account.state == "blocked" else account.state
        await self._set(account, state, f"{exc.message}; next try in {wait:.0f}s", until, failures)
        log.warning("tgtg: account %d: %s; backing off %.0fs", account.id, exc, wait)

    async def _blocked(self, account: TgtgAccount, exc: TgtgBlocked) -> None:
        failures = account.failures + 1
        wait = min(MAX_BLOCK_SECONDS, self.settings.blocked_seconds * 2 ** min(failures - 1, 6))
        now = self._clock.now()
        until = now + timedelta(seconds=wait)
        detail = f"blocked by TGTG (captcha); next try in {wait:.0f}s"
        await self._set(account, "blocked", detail, until, failures)
        if account.state == "blocked":
            return  # the owner heard about this block when it started
        log.error("tgtg: account %d is blocked by TGTG (403); backing off %.0fs", account.id, wait)
        await self._tell_owner(
            f"shopbell: TGTG blocked the watcher (account {account.id}, {account.email}). "
            f"Alerts are paused; retrying in {wait / 60:.0f} min.",
            f"tgtg-blocked:{account.id}:{utc_iso(now)}",
        )

    async def _tell_owner(self, text: str, key: str) -> None:
        phone = self.settings.owner_phone
        if not phone or self._outbox is None:
            log.warning("tgtg: no [tgtg] owner_phone configured to tell: %s", text)
            return
        try:
            await self._outbox.enqueue(
                EnqueueRequest(
                    channel="sms", recipient=phone, body=text, kind="system", idempotency_key=key
                )
            )
        except EnqueueError as exc:
            log.warning("tgtg: cannot tell the owner: %s", exc)

    # -- helpers -------------------------------------------------------------------------------

    async def _counted(self, call: Any) -> Any:
        before = self.client.requests
        try:
            return await call
        finally:
            self.budget.spend(self.client.requests - before)

    async def _save(self, account_id: int, tokens: Tokens, *, activate: bool = False) -> None:
        now = self._clock.now()
        expires = (
            utc_iso(now + timedelta(seconds=tokens.ttl_seconds)) if tokens.ttl_seconds else None
        )
        stamp = utc_iso(now)
        await self._db.write(
            lambda c: rows.save_tokens(
                c,
                account_id,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                cookie=tokens.cookie,
                expires_at=expires,
                now=stamp,
                activate=activate,
            )
        )

    async def _set(
        self,
        account: TgtgAccount,
        state: str,
        detail: str | None,
        until: datetime | None,
        failures: int | None,
    ) -> None:
        now = utc_iso(self._clock.now())
        backoff = utc_iso(until) if until else None
        await self._db.write(
            lambda c: rows.set_state(
                c, account.id, state, detail, now, backoff_until=backoff, failures=failures
            )
        )

    async def health(self) -> dict[str, object]:
        counts = await self._db.execute(rows.count_by_state)
        troubled = counts.get("blocked", 0) + counts.get("error", 0)
        return {
            "state": "degraded" if troubled else "ok",
            "accounts": counts,
            "budget": {
                "requests_per_minute": self.budget.per_minute,
                "used_last_minute": self.budget.used(),
            },
            "active_hours": self.settings.active_hours or "always",
            "in_active_hours": self.in_active_hours(self._clock.now()),
        }


def _seen(item: Observation) -> rows.Seen:
    return rows.Seen(
        item_id=item.item_id,
        store_name=item.store_name or None,
        display_name=item.display_name or None,
        items_available=item.items_available,
        pickup_start=utc_iso(item.pickup_start) if item.pickup_start else None,
        pickup_end=utc_iso(item.pickup_end) if item.pickup_end else None,
        price_minor=item.price_minor,
        currency=item.currency if item.currency and len(item.currency) == 3 else None,
    )
