"""The back office as the daemon holds it: accounts, tokens, the currency and the time zone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from daemon.config import Settings
from daemon.runtime.clock import Clock
from daemon.services.backoffice.accounts import AccountService
from daemon.services.backoffice.passwords import Passwords
from daemon.services.backoffice.tokens import KEY_FILENAME, TokenIssuer, ensure_jwt_key
from storage.database import Database

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@dataclass
class BackOffice:
    """What the back-office routes use, built once by the lifecycle (or a test)."""

    db: Database
    clock: Clock
    accounts: AccountService
    tokens: TokenIssuer
    currency: str
    zone: ZoneInfo


def build_backoffice(
    settings: Settings,
    db: Database,
    clock: Clock,
    *,
    key: bytes | None = None,
    hasher: PasswordHasher | None = None,
) -> BackOffice:
    """The back office for `settings`; the signing key comes from the data folder unless given.

    Raises PathError when the key file cannot be made or read.
    """
    if key is None:
        key = ensure_jwt_key(Path(settings.data_dir) / KEY_FILENAME)
    tokens = TokenIssuer(key, clock)
    accounts = AccountService(db, clock, Passwords(hasher), tokens)
    return BackOffice(
        db=db,
        clock=clock,
        accounts=accounts,
        tokens=tokens,
        currency=settings.shop.currency,
        zone=ZoneInfo(settings.shop.timezone),
    )
