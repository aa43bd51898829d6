"""Sign-up and login: who may create which role, argon2 hashes, throttled failures."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

import sqlite_utils

from daemon.runtime.clock import Clock, utc_iso
from daemon.services.backoffice.passwords import Passwords, PasswordsBusy, check_password
from daemon.services.backoffice.roles import Actor, may_create
from daemon.services.backoffice.tokens import TokenIssuer
from storage import accounts as store
from storage.database import Database
from storage.models import Account, Role

log = logging.getLogger(__name__)

# Failures allowed before a login name is locked, then how long: doubling to a ceiling.
FREE_FAILURES = 5
LOCK_BASE = timedelta(seconds=30)
LOCK_MAX = timedelta(minutes=15)
# Unknown names are throttled too (in memory), else the throttle would tell who exists.
UNKNOWN_NAMES_KEPT = 10_000

LOGIN_REFUSED = "invalid username or password"
# Seconds a client is told to wait when the password hashing is full (PasswordsBusy).
BUSY_RETRY = 1


class AccountError(Exception):
    """A sign-up or login refused; `status` is the HTTP status, `field` what was wrong."""

    def __init__(
        self, status: int, message: str, *, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    expires_at: datetime
    account: Account


def lock_for(failures: int) -> timedelta | None:
    """How long a name is locked after `failures` consecutive failures."""
    if failures < FREE_FAILURES:
        return None
    # The exponent is capped: a bot's millionth failure must not overflow timedelta.
    return min(LOCK_BASE * (2 ** min(failures - FREE_FAILURES, 20)), LOCK_MAX)


class AccountService:
    """Accounts through the database thread; the API and the CLI both use it."""

    def __init__(
        self, db: Database, clock: Clock, passwords: Passwords, tokens: TokenIssuer
    ) -> None:
        self._db = db
        self._clock = clock
        self._passwords = passwords
        self.tokens = tokens
        self._unknown: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()

    async def create(
        self,
        *,
        username: str,
        password: str,
        role: Role,
        by: Actor | None,
        email: str | None = None,
        phone: str | None = None,
        full_name: str | None = None,
    ) -> Account:
        """Create an account if `by` may create `role` (None: self sign-up, customers only)."""
        if not may_create(by.role if by else None, role):
            who = "signing up yourself" if by is None else f"a {by.role}"
            raise AccountError(403, f"{who} cannot create a {role} account", field="role")
        problem = check_password(password)
        if problem:
            raise AccountError(400, f"password: {problem}", field="password")
        try:
            password_hash = await self._passwords.hash_off_loop(password)
        except PasswordsBusy as exc:
            raise _busy(exc) from None
        now = utc_iso(self._clock.now())
        try:
            account = await self._db.write(
                lambda db: store.insert_account(
                    db,
                    username=username,
                    password_hash=password_hash,
                    role=role,
                    now=now,
                    email=email,
                    phone=phone,
                    full_name=full_name,
                )
            )
        except store.AccountExistsError as exc:
            raise AccountError(409, f"{exc.field} is already taken", field=exc.field) from None
        log.info(
            "accounts: %s created %s account %d", by.username if by else "sign-up", role, account.id
        )
        return account

    async def login(self, login: str, password: str, *, staff_only: bool = False) -> LoginResult:
        """Check a password; one refusal whether the name, the password or the role is wrong.

        Each try is counted as a failure *before* its password is checked, in the same
        transaction that reads the lock (a reservation), and handed back only if it turns out
        not to be a guess. So parallel tries are counted one after the other and end as the
        same tries sent in sequence would: FREE_FAILURES checks, then the lock, whatever
        the concurrency. A try refused by the lock costs no hash.
        """
        now = self._clock.now()
        attempt = await self._db.write(lambda db: _reserve_attempt(db, login, now))
        if attempt is None:
            await self._login_nobody(login, password, now)
        if attempt.refused_until is not None:
            raise _throttled(attempt.refused_until, now)
        account = attempt.account
        try:
            ok = await self._passwords.verify_off_loop(account.password_hash, password)
        except PasswordsBusy as exc:
            # Not checked, so not a guess: the try is handed back.
            await self._refund(attempt, now)
            raise _busy(exc) from None
        if not ok:
            # Already counted (and the lock already set) by the reservation.
            raise AccountError(401, LOGIN_REFUSED)
        if account.disabled_at is not None or (staff_only and account.role == "customer"):
            # The right password: not a guess, so it does not count toward the lock.
            await self._refund(attempt, now)
            raise AccountError(401, LOGIN_REFUSED)
        new_hash: str | None = None
        if self._passwords.needs_rehash(account.password_hash):
            try:
                new_hash = await self._passwords.hash_off_loop(password)
            except PasswordsBusy:
                # The old hash still verifies; the upgrade waits for a quieter login.
                log.info("accounts: rehash of account %d put off (hashing busy)", account.id)

        def succeed(db: sqlite_utils.Database) -> Account:
            if new_hash:
                store.set_password_hash(db, account.id, new_hash, now=utc_iso(now))
            store.record_login_success(db, account.id, now=utc_iso(now))
            fresh = store.get_account(db, account.id)
            assert fresh is not None
            return fresh

        fresh = await self._db.write(succeed)
        token, expires = self.tokens.issue(actor_of(fresh))
        return LoginResult(token=token, expires_at=expires, account=fresh)

    async def _login_nobody(self, login: str, password: str, now: datetime) -> NoReturn:
        """The refusal for a name nobody has, at the cost of a wrong password's check."""
        reserved = self._reserve_unknown(login, now)
        try:
            await self._passwords.burn_off_loop(password)
        except PasswordsBusy as exc:
            self._refund_unknown(login, reserved)
            raise _busy(exc) from None
        raise AccountError(401, LOGIN_REFUSED)

    async def _refund(self, attempt: _Attempt, now: datetime) -> None:
        account_id, stamp = attempt.account.id, utc_iso(now)
        await self._db.write(
            lambda db: store.refund_login_failure(
                db,
                account_id,
                set_until=attempt.set_until,
                previous_until=attempt.previous_until,
                now=stamp,
            )
        )

    async def current(self, actor: Actor) -> Actor | None:
        """`actor` as the database has it now (role changes apply at once); None if gone."""
        if actor.account_id is None:
            return actor
        account_id = actor.account_id
        account = await self._db.execute(lambda db: store.get_account(db, account_id))
        if account is None or account.disabled_at is not None:
            return None
        return actor_of(account)

    async def get(self, account_id: int) -> Account | None:
        return await self._db.execute(lambda db: store.get_account(db, account_id))

    async def list(self, *, role: str | None, limit: int, offset: int) -> list[Account]:
        return await self._db.execute(
            lambda db: store.list_accounts(db, role=role, limit=limit, offset=offset)
        )

    def _reserve_unknown(self, login: str, now: datetime) -> _UnknownTry:
        """Count a try at a name nobody has, or raise the lock's refusal.

        In memory and with no await inside, so it is atomic on the event loop, like the
        database's reservation for real accounts.
        """
        key = login.casefold()
        failures, until = self._unknown.pop(key, (0, None))
        if until is not None and until > now:
            self._unknown[key] = (failures, until)
            raise _throttled(until, now)
        delay = lock_for(failures + 1)
        counted = (failures + 1, now + delay if delay else None)
        self._unknown[key] = counted
        while len(self._unknown) > UNKNOWN_NAMES_KEPT:
            self._unknown.popitem(last=False)
        return _UnknownTry(before=(failures, until), counted=counted)

    def _refund_unknown(self, login: str, reserved: _UnknownTry) -> None:
        key = login.casefold()
        # Only if no other try has changed the entry since: theirs stands.
        if self._unknown.get(key) == reserved.counted:
            self._unknown[key] = reserved.before


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A login try counted in advance: the account as it was, and what the count did."""

    account: Account
    # Set when the account was already locked: nothing was counted, the try is refused.
    refused_until: datetime | None = None
    # The lock this try's failure set (None: none yet) and the one it replaced, to undo it.
    set_until: str | None = None
    previous_until: str | None = None


@dataclass(frozen=True, slots=True)
class _UnknownTry:
    """A try at a name nobody has: the throttle entry before it and the one it wrote."""

    before: tuple[int, datetime | None]
    counted: tuple[int, datetime | None]


def _reserve_attempt(db: sqlite_utils.Database, login: str, now: datetime) -> _Attempt | None:
    """In the database thread, in one write transaction: find, check the lock, count a try.

    The read and the write are one transaction in the one database thread, so no other try
    can read the count in between: that is what makes the lock hold under concurrency.
    """
    account = store.find_account(db, login)
    if account is None:
        return None
    if account.locked_until is not None and account.locked_until > now:
        return _Attempt(account=account, refused_until=account.locked_until)
    delay = lock_for(account.failed_logins + 1)
    until = utc_iso(now + delay) if delay else None
    previous = utc_iso(account.locked_until) if account.locked_until else None
    store.record_login_failure(db, account.id, locked_until=until, now=utc_iso(now))
    return _Attempt(account=account, set_until=until, previous_until=previous)


def actor_of(account: Account) -> Actor:
    return Actor(account_id=account.id, username=account.username, role=account.role)


def _throttled(until: datetime, now: datetime) -> AccountError:
    wait = max(1, int((until - now).total_seconds() + 0.999))
    return AccountError(429, f"too many failed logins; try again in {wait}s", retry_after=wait)


def _busy(exc: PasswordsBusy) -> AccountError:
    # 503, not 429: the server is overloaded, this client did nothing wrong (the TGTG
    # routes answer their "busy" the same way). Retry-After: the queue drains in well under
    # a second when it is full.
    # Debug, not info: a flood of logins would otherwise flood the journal as well.
    log.debug("accounts: password check refused: %s", exc)
    return AccountError(
        503, f"busy checking passwords; try again in {BUSY_RETRY}s", retry_after=BUSY_RETRY
    )
