"""TGTG accounts (tokens, login and polling state) and favourites (the last count per item).

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`): new tokens are one UPDATE, so a rotated refresh token and its
cookie are stored together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils

from storage.models import Favorite, TgtgAccount


@dataclass(frozen=True, slots=True)
class Seen:
    """One item as a poll saw it (times as stored: UTC ISO-8601 text)."""

    item_id: str
    store_name: str | None
    display_name: str | None
    items_available: int
    pickup_start: str | None = None
    pickup_end: str | None = None
    price_minor: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Previous:
    """A subscriber's stored count for an item before an observation, and when it was set."""

    subscriber_id: int
    item_id: str
    items_available: int
    updated_at: str
    last_alerted_at: str | None
    price_minor: int | None = None


# -- accounts ---------------------------------------------------------------------------------


def account_of(db: sqlite_utils.Database, subscriber_id: int) -> TgtgAccount | None:
    rows = list(db.query("SELECT * FROM tgtg_accounts WHERE subscriber_id = ?", [subscriber_id]))
    return TgtgAccount.from_row(rows[0]) if rows else None


def get_account(db: sqlite_utils.Database, account_id: int) -> TgtgAccount | None:
    rows = list(db.query("SELECT * FROM tgtg_accounts WHERE id = ?", [account_id]))
    return TgtgAccount.from_row(rows[0]) if rows else None


def accounts(db: sqlite_utils.Database) -> list[TgtgAccount]:
    return [
        TgtgAccount.from_row(row) for row in db.query("SELECT * FROM tgtg_accounts ORDER BY id")
    ]


def count_by_state(db: sqlite_utils.Database) -> dict[str, int]:
    rows = db.execute("SELECT state, count(*) FROM tgtg_accounts GROUP BY state").fetchall()
    return {str(state): int(n) for state, n in rows}


def start_login(
    db: sqlite_utils.Database,
    subscriber_id: int,
    email: str,
    polling_id: str,
    now: str,
    *,
    cookie: str | None = None,
) -> TgtgAccount:
    """Create or reset the subscriber's account as pending, waiting for the PIN or the click.

    Tokens of an earlier login are kept until the new one succeeds. `cookie` is what the
    login's first call left (DataDome's among them): its next calls send it back.
    """
    db.execute(
        "INSERT INTO tgtg_accounts (subscriber_id, email, state, state_detail, polling_id, "
        "cookie, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?) "
        "ON CONFLICT (subscriber_id) DO UPDATE SET email = excluded.email, state = 'pending', "
        "state_detail = excluded.state_detail, polling_id = excluded.polling_id, "
        "cookie = coalesce(excluded.cookie, cookie), "
        "backoff_until = NULL, failures = 0, updated_at = excluded.updated_at",
        [
            subscriber_id,
            email,
            "waiting for the PIN or the link in the e-mail",
            polling_id,
            cookie,
            now,
            now,
        ],
    )
    account = account_of(db, subscriber_id)
    assert account is not None
    return account


def save_tokens(
    db: sqlite_utils.Database,
    account_id: int,
    *,
    access_token: str,
    refresh_token: str,
    cookie: str | None,
    expires_at: str | None,
    now: str,
    activate: bool = False,
) -> None:
    """Store a login's or a refresh's tokens in one statement (rotation is atomic)."""
    state = ", state = 'active', state_detail = NULL, polling_id = NULL" if activate else ""
    sql = (
        "UPDATE tgtg_accounts SET access_token = ?, refresh_token = ?, "
        "cookie = coalesce(?, cookie), access_token_expires_at = ?, updated_at = ?"
    )
    db.execute(
        sql + state + " WHERE id = ?",
        [access_token, refresh_token, cookie, expires_at, now, account_id],
    )


def save_cookie(db: sqlite_utils.Database, account_id: int, cookie: str, now: str) -> None:
    """Keep the account's cookies as a Cookie header (DataDome's among them), to send them
    back; "" when they were dropped (after a DataDome challenge)."""
    db.execute(
        "UPDATE tgtg_accounts SET cookie = ?, updated_at = ? WHERE id = ?",
        [cookie or None, now, account_id],
    )


def accounts_watching(db: sqlite_utils.Database, item_id: str) -> list[TgtgAccount]:
    """The accounts whose subscriber has this item among the favourites (active ones first):
    any of them can ask TGTG for the item alone."""
    rows = db.query(
        "SELECT a.* FROM tgtg_accounts a JOIN favorites f ON f.subscriber_id = a.subscriber_id "
        "WHERE f.item_id = ? ORDER BY a.state != 'active', a.id",
        [item_id],
    )
    return [TgtgAccount.from_row(row) for row in rows]


def set_state(
    db: sqlite_utils.Database,
    account_id: int,
    state: str,
    detail: str | None,
    now: str,
    *,
    backoff_until: str | None = None,
    failures: int | None = None,
) -> None:
    db.execute(
        "UPDATE tgtg_accounts SET state = ?, state_detail = ?, backoff_until = ?, "
        "failures = coalesce(?, failures), updated_at = ? WHERE id = ?",
        [state, detail, backoff_until, failures, now, account_id],
    )


def record_poll(db: sqlite_utils.Database, account_id: int, now: str, *, success: bool) -> None:
    success_sql = ", last_success_at = ?, failures = 0, backoff_until = NULL" if success else ""
    db.execute(
        f"UPDATE tgtg_accounts SET last_poll_at = ?{success_sql} WHERE id = ?",  # noqa: S608
        [now, now, account_id] if success else [now, account_id],
    )


# -- favourites -------------------------------------------------------------------------------


def favorites_of(db: sqlite_utils.Database, subscriber_id: int | None = None) -> list[Favorite]:
    if subscriber_id is None:
        rows = db.query("SELECT * FROM favorites ORDER BY subscriber_id, item_id")
    else:
        rows = db.query(
            "SELECT * FROM favorites WHERE subscriber_id = ? ORDER BY item_id", [subscriber_id]
        )
    return [Favorite.from_row(row) for row in rows]


def previous_counts(db: sqlite_utils.Database, item_ids: Sequence[str]) -> list[Previous]:
    """Every subscriber's stored count for these items: one observation serves them all."""
    if not item_ids:
        return []
    marks = ", ".join("?" * len(item_ids))
    rows = db.execute(
        "SELECT subscriber_id, item_id, items_available, updated_at, last_alerted_at, "  # noqa: S608
        f"price_minor FROM favorites WHERE item_id IN ({marks}) ORDER BY subscriber_id, item_id",
        list(item_ids),
    ).fetchall()
    return [Previous(int(r[0]), str(r[1]), int(r[2]), str(r[3]), r[4], r[5]) for r in rows]


def forget_dropped(db: sqlite_utils.Database, subscriber_id: int, kept: Sequence[str]) -> list[str]:
    """Delete the subscriber's favourites that are not in `kept` (the whole list a poll just
    saw): an item unfavourited in the app is no longer watched, and one favourited again
    later starts as a first sighting. Returns the item ids dropped."""
    # Without a kept item every favourite goes (`NOT IN ()` is not SQL, `NOT IN (NULL)` never
    # matches).
    where = f"AND item_id NOT IN ({', '.join('?' * len(kept))})" if kept else ""
    args = [subscriber_id, *kept]
    dropped = [
        str(r[0])
        for r in db.execute(
            f"SELECT item_id FROM favorites WHERE subscriber_id = ? {where}",  # noqa: S608
            args,
        ).fetchall()
    ]
    if dropped:
        db.execute(f"DELETE FROM favorites WHERE subscriber_id = ? {where}", args)  # noqa: S608
    return dropped


def apply_observations(
    db: sqlite_utils.Database,
    subscriber_id: int,
    seen: Sequence[Seen],
    now: str,
    *,
    alerted: Sequence[tuple[int, str]] = (),
) -> None:
    """Store the counts seen: the polled subscriber's favourites are created or updated, and
    every other subscriber's row for the same item takes the same count. `alerted` pairs
    (subscriber, item) get last_alerted_at = now."""
    for item in seen:
        bags = 1 if item.items_available > 0 else 0
        values = [
            item.store_name,
            item.display_name,
            item.items_available,
            bags,
            item.pickup_start,
            item.pickup_end,
            item.price_minor,
            item.currency,
        ]
        db.execute(
            "INSERT INTO favorites (subscriber_id, item_id, store_name, display_name, "
            "items_available, bags_available, pickup_start, pickup_end, price_minor, currency, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (subscriber_id, item_id) DO NOTHING",
            [subscriber_id, item.item_id, *values, now, now],
        )
        db.execute(
            "UPDATE favorites SET store_name = ?, display_name = ?, items_available = ?, "
            "bags_available = ?, pickup_start = ?, pickup_end = ?, price_minor = ?, "
            "currency = ?, updated_at = ? WHERE item_id = ?",
            [*values, now, item.item_id],
        )
    for alerted_subscriber, item_id in alerted:
        db.execute(
            "UPDATE favorites SET last_alerted_at = ? WHERE subscriber_id = ? AND item_id = ?",
            [now, alerted_subscriber, item_id],
        )
