"""The watcher: drives e-mail logins, polls each account's favourites inside one request budget
per IP, backs off on 429/5xx/403, and turns rising edges into alerts through the outbox.

One scheduled job (`tgtg-poll`) ticks every few seconds and polls the accounts that are due,
instead of one job per account: TGTG's limit is per IP, so only one place can keep the budget,
and a due account that finds the budget spent simply waits for the next tick.

Announced sales windows get their own timer (`start`/`stop`): one poll of the item alone just
after the window opens, from a slice of the budget that regular polls may not spend, so bags
that go live at the window are seen within seconds, not at the next regular poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.runtime.clock import Clock, utc_iso
from daemon.services.outbox.service import Outbox
from daemon.services.owner import OwnerAlerts
from daemon.services.push import PushService
from daemon.services.tgtg.alerts import Alerts
from daemon.services.tgtg.budget import Budget
from providers.tgtg.client import (
    ACCESS_TOKEN_LIFETIME_SECONDS,
    MAX_PAGES,
    PAGE_SIZE,
    Observation,
    OnCookie,
    OnRotate,
    Order,
    TgtgClient,
    Tokens,
)
from providers.tgtg.errors import (
    TgtgBlocked,
    TgtgError,
    TgtgLoginError,
    TgtgRateLimited,
    TgtgUnauthorized,
)
from storage import tgtg as rows
from storage.database import Database
from storage.models import TgtgAccount

log = logging.getLogger(__name__)
JITTER = 0.1
BACKOFF_BASE_SECONDS = 30.0
MAX_BLOCK_SECONDS = 6 * 3600.0
# The window poll runs this long after the announced opening: bags go live at the second, and
# one second covers a clock slightly behind TGTG's.
WINDOW_DELAY_SECONDS = 1.0
# While the count is still 0 and the window fresh, a few more polls this far apart (a store's
# bags sometimes appear a few seconds late); each is one request from the reserve.
WINDOW_RETRY_SECONDS = 4.0
WINDOW_ATTEMPTS = 3
WINDOW_FRESH_SECONDS = 30.0
# Shortest wait of the window timer when a due window finds no budget or no account yet.
WINDOW_HOLD_SECONDS = 0.5


def blocked_key(account_id: int) -> str:
    """The owner alert's key for a TGTG block of one account."""
    return f"tgtg-blocked:{account_id}"


class NoAccount(Exception):
    """The subscriber has no TGTG login the watcher can use now (none, not finished, failed,
    or backing off)."""


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
    timezone: str = "UTC"
    # Alert SMS of opted-in subscribers offer "reply R" (daemon/services/tgtg/reserve.py).
    reserve_by_reply: bool = False


@dataclass
class _Window:
    """An announced sales window of one item, and the poll planned for it."""

    item_id: str
    opens: datetime
    due: datetime
    account_id: int
    attempts: int = 0


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

    # Time allowed to stop: the timer only finishes a window poll under way.
    STOP_SECONDS = 2.0

    def __init__(
        self,
        db: Database,
        clock: Clock,
        client: TgtgClient,
        settings: WatcherSettings,
        *,
        outbox: Outbox | None = None,
        push: PushService | None = None,
        owner: OwnerAlerts | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.client = client
        self.settings = settings
        self._owner = owner
        # Observations into alerts: the rising-edge rule, the channels, the opt-outs.
        self.alerts = Alerts(
            db,
            clock,
            settings.timezone,
            outbox=outbox,
            push=push,
            offer_reservations=settings.reserve_by_reply,
        )
        self._rng = rng or random.Random()
        self.budget = Budget(settings.requests_per_minute, clock)
        self._hours = parse_hours(settings.active_hours)
        self._zone = ZoneInfo(settings.timezone)
        self._next_due: dict[int, float] = {}
        # Announced sales windows by item: one observation serves every subscriber, so one
        # window poll per item, whichever account announced it.
        self._windows: dict[str, _Window] = {}
        self._was_active: bool | None = None
        # One call at a time per account: a window poll and a regular poll of the same account
        # must not both refresh its tokens (the second would spend a rotated refresh token).
        self._busy: dict[int, asyncio.Lock] = {}
        # Accounts whose tokens this watcher got or refreshed itself. Tokens it found stored
        # are refreshed before their first use, as the reference refreshes at every start
        # with stored tokens (docs/tgtg.md, "Tokens").
        self._fresh: set[int] = set()
        self._window_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._stopping = False

    # -- login ---------------------------------------------------------------------------------

    async def start_login(self, subscriber_id: int, email: str) -> TgtgAccount:
        """authByEmail; the account is pending until the PIN or the link in the e-mail."""
        known = await self._db.execute(lambda c: rows.account_of(c, subscriber_id))
        # A new login of a known account keeps its cookies: the same device logs in again.
        started = await self._counted(
            self.client.auth_by_email(email, known.cookie if known else None)
        )
        now = utc_iso(self._clock.now())
        account = await self._db.write(
            lambda c: rows.start_login(
                c, subscriber_id, email, started.polling_id, now, cookie=started.cookie
            )
        )
        self._next_due[account.id] = self._clock.monotonic() + self.settings.poll_seconds
        log.info("tgtg: login started for subscriber %d; waiting for the PIN", subscriber_id)
        return account

    async def submit_pin(self, subscriber_id: int, pin: str) -> TgtgAccount:
        account = await self._db.execute(lambda c: rows.account_of(c, subscriber_id))
        if account is None or account.state != "pending" or not account.polling_id:
            raise LoginStateError("no login is waiting for a PIN; start one first")
        tokens = await self._counted(
            self.client.auth_by_pin(
                account.email,
                account.polling_id,
                pin,
                account.cookie,
                self._cookie_keeper(account.id),
            )
        )
        await self._save(account.id, tokens, activate=True)
        self._next_due[account.id] = 0.0
        log.info("tgtg: subscriber %d logged in with the PIN", subscriber_id)
        # A new login also ends a block the owner was told about (start_login resets it).
        await self._unblocked(account)
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
        """The scheduled job: poll due sales windows, then the due accounts while the budget
        (less its window reserve) lasts."""
        now = self._clock.now()
        active = self.in_active_hours(now)
        if active != self._was_active:
            if self._was_active is not None or not active:
                log.info("tgtg: %s active hours", "inside" if active else "outside")
            self._was_active = active
        if not active:
            return "outside active hours"
        windows = await self.poll_windows()
        accounts = await self._db.execute(rows.accounts)
        polled = deferred = 0
        mono = self._clock.monotonic()
        for account in accounts:
            if not self._pollable(account, now) or self._next_due.get(account.id, 0.0) > mono:
                continue
            if not self.budget.available():
                deferred += 1
                continue
            self._next_due[account.id] = mono + self.settings.poll_seconds * self._rng.uniform(
                1 - JITTER, 1 + JITTER
            )
            await self.poll(account)
            polled += 1
        extra = f", {windows} window polls" if windows else ""
        return f"polled {polled}, deferred {deferred}{extra} (budget {self.budget.used()}/min)"

    @staticmethod
    def _pollable(account: TgtgAccount, now: datetime) -> bool:
        if account.state in ("disabled", "error"):
            return False
        if account.state == "pending" and not account.polling_id:
            return False
        return account.backoff_until is None or account.backoff_until <= now

    def _lock(self, account_id: int) -> asyncio.Lock:
        return self._busy.setdefault(account_id, asyncio.Lock())

    async def poll(self, account: TgtgAccount) -> None:
        """One poll of one account: the login's polling, or its favourites."""
        async with self._lock(account.id):
            # Read again under the lock: a window poll may have rotated the tokens meanwhile.
            fresh = await self._db.execute(lambda c: rows.get_account(c, account.id))
            if fresh is None:
                return
            await self._poll(fresh)

    async def _poll(self, account: TgtgAccount) -> None:
        now = self._clock.now()
        if account.state == "pending" or (account.polling_id and not account.access_token):
            # A login still waiting for its link (also after a block hit it).
            await self._guarded(account, self._poll_login(account))
            return
        observations = await self._guarded(account, self._favorites(account, now))
        if observations is None:
            return
        # A list cut at the client's page limit may leave favourites out: forget none then.
        whole = len(observations) < MAX_PAGES * PAGE_SIZE
        await self.alerts.observe(account.subscriber_id, observations, complete=whole)
        self._note_windows(account.id, observations, now)
        await self._succeeded(account)

    async def _guarded(self, account: TgtgAccount, call: Awaitable[Any]) -> Any:
        """Run one TGTG call of `account`; a failure is recorded (back-off, block, new login
        needed) and gives None."""
        try:
            return await call
        except TgtgBlocked as exc:
            await self._blocked(account, exc)
        except TgtgRateLimited as exc:
            await self._back_off(account, exc, exc.retry_after)
        except (TgtgUnauthorized, TgtgLoginError) as exc:
            await self._set(account, "error", f"{exc.message}; log in again", None, None)
            log.warning("tgtg: account %d needs a new login: %s", account.id, exc)
        except TgtgError as exc:
            await self._back_off(account, exc, None)
        return None

    async def _succeeded(self, account: TgtgAccount) -> None:
        stamp = utc_iso(self._clock.now())
        await self._db.write(lambda c: rows.record_poll(c, account.id, stamp, success=True))
        if account.state == "blocked" or account.failures:
            await self._set(account, "active", None, None, 0)
            log.info("tgtg: account %d works again", account.id)
        if account.state == "blocked":
            await self._unblocked(account)

    async def _poll_login(self, account: TgtgAccount) -> None:
        assert account.polling_id is not None
        tokens = await self._counted(
            self.client.auth_by_polling(
                account.email, account.polling_id, account.cookie, self._cookie_keeper(account.id)
            )
        )
        if tokens is None:
            return
        await self._save(account.id, tokens, activate=True)
        log.info("tgtg: account %d logged in (link confirmed)", account.id)
        await self._unblocked(account)

    async def _credentials(self, account: TgtgAccount, now: datetime) -> tuple[Tokens, OnRotate]:
        """The account's tokens, refreshed first when this watcher has not refreshed them
        yet (a start with stored tokens) or their 4 hours are up, and the callback that
        persists a rotation."""
        if not account.access_token or not account.refresh_token:
            raise TgtgLoginError(0, "no tokens")

        async def rotate(tokens: Tokens) -> None:
            await self._save(account.id, tokens)
            log.info("tgtg: account %d tokens refreshed", account.id)

        tokens = Tokens(account.access_token, account.refresh_token, account.cookie)
        expires = account.access_token_expires_at
        if account.id not in self._fresh or expires is None or expires <= now:
            tokens = await self._counted(
                self.client.refresh(tokens, self._cookie_keeper(account.id))
            )
            await rotate(tokens)
        return tokens, rotate

    def _cookie_keeper(self, account_id: int) -> OnCookie:
        async def keep(cookie: str) -> None:
            stamp = utc_iso(self._clock.now())
            await self._db.write(lambda c: rows.save_cookie(c, account_id, cookie, stamp))

        return keep

    async def _favorites(self, account: TgtgAccount, now: datetime) -> list[Observation]:
        credentials, rotate = await self._credentials(account, now)
        observations, _ = await self._counted(
            self.client.favorites(credentials, rotate, self._cookie_keeper(account.id))
        )
        return observations

    async def _one_item(self, account: TgtgAccount, item_id: str, now: datetime) -> Observation:
        credentials, rotate = await self._credentials(account, now)
        observation, _ = await self._counted(
            self.client.item(credentials, item_id, rotate, self._cookie_keeper(account.id))
        )
        return observation

    # -- orders (reserve by reply) ---------------------------------------------------------------

    async def create_order(self, subscriber_id: int, item_id: str) -> Order:
        """Reserve one bag of the item on the subscriber's own account, with the same
        credentials handling, per-account lock and request budget as a poll. Raises
        TgtgError (TgtgOrderRefused when TGTG says no); NoAccount without a usable login."""
        account = await self._order_account(subscriber_id)
        async with self._lock(account.id):
            fresh = await self._order_account(subscriber_id)
            credentials, rotate = await self._credentials(fresh, self._clock.now())
            order, _ = await self._counted(
                self.client.create_order(
                    credentials, item_id, rotate, self._cookie_keeper(fresh.id), count=1
                )
            )
        return order

    async def abort_order(self, subscriber_id: int, order_id: str) -> None:
        """Give the subscriber's unpaid order up (TgtgOrderRefused when it is not open)."""
        account = await self._order_account(subscriber_id)
        async with self._lock(account.id):
            fresh = await self._order_account(subscriber_id)
            credentials, rotate = await self._credentials(fresh, self._clock.now())
            await self._counted(
                self.client.abort_order(
                    credentials, order_id, rotate, self._cookie_keeper(fresh.id)
                )
            )

    async def _order_account(self, subscriber_id: int) -> TgtgAccount:
        account = await self._db.execute(lambda c: rows.account_of(c, subscriber_id))
        if account is None or account.state != "active" or not account.refresh_token:
            raise NoAccount("no working TGTG login for this subscriber")
        if account.backoff_until is not None and account.backoff_until > self._clock.now():
            raise NoAccount("TGTG is refusing the shop's requests for now")
        return account

    # -- sales windows -------------------------------------------------------------------------

    def _note_windows(
        self, account_id: int, observations: list[Observation], now: datetime
    ) -> None:
        """Plan a poll just after each newly announced sales window."""
        delay = timedelta(seconds=WINDOW_DELAY_SECONDS)
        planned = False
        for o in observations:
            opens = o.next_sales_window
            if opens is None or opens + delay <= now:
                continue
            known = self._windows.get(o.item_id)
            if known is not None and known.opens == opens:
                continue
            self._windows[o.item_id] = _Window(o.item_id, opens, opens + delay, account_id)
            log.info("tgtg: item %s: sales window at %s; a poll then", o.item_id, utc_iso(opens))
            planned = True
        if planned:
            self._wake.set()

    def next_window_at(self) -> datetime | None:
        """When the next planned sales-window poll is due (None with none planned)."""
        return min((w.due for w in self._windows.values()), default=None)

    async def poll_windows(self) -> int:
        """Poll every item whose sales window is due, each alone, from the whole budget
        (its reserve included). Returns the number of polls."""
        async with self._window_lock:
            now = self._clock.now()
            due = sorted((w for w in self._windows.values() if w.due <= now), key=lambda w: w.due)
            if due and not self.in_active_hours(now):
                for window in due:  # no calls outside active hours, and the window is past
                    del self._windows[window.item_id]
                return 0
            polled = 0
            for window in due:
                if not self.budget.available(window=True):
                    hold = timedelta(seconds=max(WINDOW_HOLD_SECONDS, self.budget.free_in()))
                    for waiting in due[due.index(window) :]:
                        waiting.due = now + hold
                    log.info("tgtg: window polls wait %.1fs for the budget", hold.total_seconds())
                    break
                if await self._poll_window(window, now):
                    polled += 1
            return polled

    async def _poll_window(self, window: _Window, now: datetime) -> bool:
        account = await self._window_account(window, now)
        if account is None or window.attempts >= WINDOW_ATTEMPTS:
            if account is None:
                log.info("tgtg: item %s: no account can poll its sales window", window.item_id)
            self._windows.pop(window.item_id, None)
            return False
        window.attempts += 1
        # The next try's time is set before the call, so a poll that raises is not repeated
        # at once by the timer.
        window.due = now + timedelta(seconds=WINDOW_RETRY_SECONDS)
        log.info(
            "tgtg: item %s: extra poll for an announced sales window (try %d, account %d)",
            window.item_id,
            window.attempts,
            account.id,
        )
        async with self._lock(account.id):
            # Read again under the lock: a regular poll may have rotated the tokens meanwhile.
            fresh = await self._db.execute(lambda c: rows.get_account(c, account.id))
            if fresh is None or not self._pollable(fresh, now):
                return False
            account = fresh
            observation = await self._guarded(account, self._one_item(account, window.item_id, now))
        if observation is not None:
            await self.alerts.observe(account.subscriber_id, [observation])
            await self._succeeded(account)
        later = self._clock.now()
        young = later < window.opens + timedelta(seconds=WINDOW_FRESH_SECONDS)
        still_zero = observation is None or observation.items_available == 0
        if still_zero and young and window.attempts < WINDOW_ATTEMPTS:
            window.due = later + timedelta(seconds=WINDOW_RETRY_SECONDS)
        else:
            self._windows.pop(window.item_id, None)
        if observation is not None:
            self._note_windows(account.id, [observation], later)
        return True

    async def _window_account(self, window: _Window, now: datetime) -> TgtgAccount | None:
        """The account that announced the window, else any other whose subscriber has the
        item among the favourites; only one that is logged in and not backing off."""
        found = await self._db.execute(lambda c: rows.accounts_watching(c, window.item_id))
        found.sort(key=lambda a: a.id != window.account_id)
        for account in found:
            if account.state == "active" and account.refresh_token and self._pollable(account, now):
                return account
        return None

    def start(self) -> None:
        """Start the sales-window timer; inside the running loop."""
        if self._timer is None:
            self._stopping = False
            self._timer = asyncio.get_running_loop().create_task(
                self._run_timer(), name="tgtg-windows"
            )

    async def stop(self) -> None:
        """Stop the timer, letting a window poll under way finish."""
        if self._timer is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await self._timer
        finally:
            self._timer = None

    async def _run_timer(self) -> None:
        # Sleeps until the next planned window poll by the injected clock (a newly planned,
        # earlier window wakes it), so the poll does not wait for the next regular tick.
        while not self._stopping:
            due = self.next_window_at()
            delay = None if due is None else (due - self._clock.now()).total_seconds()
            if delay is None or delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                continue
            try:
                await self.poll_windows()
            except Exception:
                # The timer must outlive one bad poll; the regular tick still runs.
                log.exception("tgtg: a sales-window poll failed")
                await asyncio.sleep(WINDOW_HOLD_SECONDS)

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
        if account.state != "blocked":
            log.error(
                "tgtg: account %d is blocked by TGTG (403); backing off %.0fs", account.id, wait
            )
        # Asked on every block, not only the first: OwnerAlerts sends once per key until
        # cleared (also across restarts), and retries one its hourly limit held back.
        await self._tell_owner_blocked(account, wait)

    async def _tell_owner_blocked(self, account: TgtgAccount, wait: float) -> None:
        text = (
            f"shopbell: TGTG blocked the watcher (account {account.id}, {account.email}). "
            f"Alerts are paused; retrying in {wait / 60:.0f} min."
        )
        if self._owner is None:
            log.warning("tgtg: no owner alerts to tell: %s", text)
            return
        await self._owner.alert(
            blocked_key(account.id), text, subject="shopbell: TGTG blocked the watcher"
        )

    async def _unblocked(self, account: TgtgAccount) -> None:
        """The account works again: close its block alert, if any (with a note to the owner
        when the alert went out); a no-op otherwise."""
        if self._owner is not None:
            await self._owner.clear(
                blocked_key(account.id),
                f"shopbell: TGTG watching works again for account {account.id} ({account.email}).",
            )

    async def account_removed(self, account: TgtgAccount) -> None:
        """The account's subscriber was deleted (the account with it): stop tracking it and
        close its block alert, so /api/health and the owner are not left with an alert
        nobody can clear."""
        self._next_due.pop(account.id, None)
        self._fresh.discard(account.id)
        if self._owner is not None:
            await self._owner.clear(blocked_key(account.id))

    # -- helpers -------------------------------------------------------------------------------

    async def _counted(self, call: Any) -> Any:
        before = self.client.requests
        try:
            return await call
        finally:
            self.budget.spend(self.client.requests - before)

    async def _save(self, account_id: int, tokens: Tokens, *, activate: bool = False) -> None:
        now = self._clock.now()
        # Refreshed again after the reference's 4 hours, or sooner if TGTG said so.
        lifetime = min(
            tokens.ttl_seconds or ACCESS_TOKEN_LIFETIME_SECONDS, ACCESS_TOKEN_LIFETIME_SECONDS
        )
        expires = utc_iso(now + timedelta(seconds=lifetime))
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
        self._fresh.add(account_id)

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
                "reserved_for_sales_windows": self.budget.reserve,
            },
            "sales_windows_planned": len(self._windows),
            "active_hours": self.settings.active_hours or "always",
            "in_active_hours": self.in_active_hours(self._clock.now()),
        }
