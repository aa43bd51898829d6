"""Sign-up and login: who may create which role, argon2 hashes, throttled failures."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.backoffice.passwords import Passwords, check_password
from daemon.backoffice.roles import Actor, may_create
from daemon.backoffice.tokens import TokenIssuer
from daemon.clock import Clock, utc_iso
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
            raise AccountError(422, f"password: {problem}", field="password")
        password_hash = self._passwords.hash(password)
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
        """Check a password; one refusal whether the name, the password or the role is wrong."""
        now = self._clock.now()
        account = await self._db.execute(lambda db: store.find_account(db, login))
        if account is None:
            self._check_unknown_lock(login, now)
            self._passwords.burn(password)
            self._fail_unknown(login, now)
            raise AccountError(401, LOGIN_REFUSED)
        if account.locked_until is not None and account.locked_until > now:
            raise _throttled(account.locked_until, now)
        ok = self._passwords.verify(account.password_hash, password)
        if not ok or account.disabled_at is not None or (staff_only and account.role == "customer"):
            if ok:
                # The right password: not a guess, so it does not count toward the lock.
                raise AccountError(401, LOGIN_REFUSED)
            delay = lock_for(account.failed_logins + 1)
            until = utc_iso(now + delay) if delay else None
            await self._db.write(
                lambda db: store.record_login_failure(
                    db, account.id, locked_until=until, now=utc_iso(now)
                )
            )
            raise AccountError(401, LOGIN_REFUSED)
        new_hash = (
            self._passwords.hash(password)
            if self._passwords.needs_rehash(account.password_hash)
            else None
        )

        def succeed(db: object) -> Account:
            if new_hash:
                store.set_password_hash(db, account.id, new_hash, now=utc_iso(now))  # type: ignore[arg-type]
            store.record_login_success(db, account.id, now=utc_iso(now))  # type: ignore[arg-type]
            fresh = store.get_account(db, account.id)  # type: ignore[arg-type]
            assert fresh is not None
            return fresh

        fresh = await self._db.write(succeed)
        token, expires = self.tokens.issue(actor_of(fresh))
        return LoginResult(token=token, expires_at=expires, account=fresh)

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

    def _check_unknown_lock(self, login: str, now: datetime) -> None:
        _, until = self._unknown.get(login.casefold(), (0, None))
        if until is not None and until > now:
            raise _throttled(until, now)

    def _fail_unknown(self, login: str, now: datetime) -> None:
        key = login.casefold()
        failures = self._unknown.pop(key, (0, None))[0] + 1
        delay = lock_for(failures)
        self._unknown[key] = (failures, now + delay if delay else None)
        while len(self._unknown) > UNKNOWN_NAMES_KEPT:
            self._unknown.popitem(last=False)


def actor_of(account: Account) -> Actor:
    return Actor(account_id=account.id, username=account.username, role=account.role)


def _throttled(until: datetime, now: datetime) -> AccountError:
    wait = max(1, int((until - now).total_seconds() + 0.999))
    return AccountError(429, f"too many failed logins; try again in {wait}s", retry_after=wait)
