"""`shopbell user add`, `products import|export` and `report`, on the database file itself.

On the file, not over HTTP, because the first owner is made on a fresh install, before any
login exists and whether or not the daemon runs; the daemon's own connection and this one
share the file safely (WAL, busy timeout), as `shopbell db migrate` does.
"""

from __future__ import annotations

from datetime import date

import sqlite_utils

from daemon.config import Settings
from daemon.runtime.clock import SystemClock, utc_iso
from daemon.runtime.paths import ensure_private_dir
from daemon.services.backoffice import report_mail
from daemon.services.backoffice.accounts import AccountService
from daemon.services.backoffice.catalog_csv import ProductRow
from daemon.services.backoffice.passwords import Passwords
from daemon.services.backoffice.roles import API_TOKEN_ACTOR
from daemon.services.backoffice.sales_report import ReportKind
from daemon.services.backoffice.service import build_backoffice
from daemon.services.backoffice.tokens import KEY_FILENAME, TokenIssuer, ensure_jwt_key
from daemon.services.outbox.service import Outbox
from storage import products
from storage.database import Database
from storage.models import Account, Product, Report, Role


async def add_user(
    settings: Settings,
    *,
    username: str,
    password: str,
    role: Role,
    email: str | None = None,
    phone: str | None = None,
    full_name: str | None = None,
) -> Account:
    """Create the account (any role: whoever runs this owns the data folder).

    Raises AccountError (taken, weak password), PathError or StorageError.
    """
    clock = SystemClock()
    db = await _open(settings)
    try:
        tokens = TokenIssuer(ensure_jwt_key(settings.data_dir / KEY_FILENAME), clock)
        service = AccountService(db, clock, Passwords(), tokens)
        return await service.create(
            username=username,
            password=password,
            role=role,
            by=API_TOKEN_ACTOR,
            email=email,
            phone=phone,
            full_name=full_name,
        )
    finally:
        await db.close()


async def import_products(settings: Settings, rows: list[ProductRow]) -> tuple[int, int]:
    """Write checked rows in one transaction: all or nothing. Returns (created, updated)."""
    now = utc_iso(SystemClock().now())

    def write_all(db: sqlite_utils.Database) -> tuple[int, int]:
        created = 0
        for row in rows:
            created += products.upsert_by_sku(
                db,
                sku=row.sku,
                name=row.name,
                price_minor=row.price_minor,
                now=now,
                brand=row.brand,
                category=row.category,
                stock=row.stock,
                active=row.active,
            )
        return created, len(rows) - created

    db = await _open(settings)
    try:
        return await db.write(write_all)
    finally:
        await db.close()


async def export_products(settings: Settings) -> list[Product]:
    db = await _open(settings)
    try:
        return await db.execute(products.all_products)
    finally:
        await db.close()


async def _open(settings: Settings) -> Database:
    ensure_private_dir(settings.data_dir)
    ensure_private_dir(settings.database_path.parent, purpose="database folder")
    db = Database(settings.database_path, busy_timeout_ms=settings.database.busy_timeout_ms)
    await db.open(migrate=True)
    return db


async def run_report(
    settings: Settings, kind: ReportKind, day: date | None, *, send: bool = False
) -> tuple[str, Report, tuple[int, ...]]:
    """Build, store and return (as text) a daily or weekly report; default: yesterday's.

    With `send`, the e-mails and the owner's SMS are queued in the outbox of this database
    file, as the scheduled job does; the running daemon's dispatcher sends them at its next
    look at the queue (within [outbox] lease_seconds / 2), or the daemon at its next start.
    Returns the queued messages' ids too.
    """
    db = await _open(settings)
    try:
        clock = SystemClock()
        office = build_backoffice(settings, db, clock)
        outbox = None
        if send:
            outbox = Outbox(
                db,
                clock,
                default_region=settings.sms.default_region,
                max_segments=settings.sms.max_segments,
            )
        done = await report_mail.run(office, outbox, settings, kind, day)
        return done.text, done.stored, done.message_ids
    finally:
        await db.close()
