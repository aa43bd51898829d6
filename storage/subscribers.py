"""Subscribers: the people who get TGTG alerts, created, changed, listed and deleted.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlite_utils

from storage.models import Subscriber

# The columns a caller may set; anything else is refused.
FIELDS = (
    "name",
    "email",
    "phone",
    "channels",
    "opted_out_at",
    "verified_at",
    "watch_items",
    "price_drop_alerts",
    "reserve_by_reply",
)


class DuplicatePhone(ValueError):
    """Another subscriber already has this phone number (subscribers.phone is unique)."""


def get(db: sqlite_utils.Database, subscriber_id: int) -> Subscriber | None:
    rows = list(db.query("SELECT * FROM subscribers WHERE id = ?", [subscriber_id]))
    return Subscriber.from_row(rows[0]) if rows else None


def get_many(db: sqlite_utils.Database, ids: Collection[int]) -> dict[int, Subscriber]:
    """Subscribers by id in one query (an edge's fan-out reads a thousand at once)."""
    found: dict[int, Subscriber] = {}
    wanted = sorted(set(ids))
    # In chunks: SQLite caps the number of parameters of one statement.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in db.query(f"SELECT * FROM subscribers WHERE id IN ({marks})", chunk):  # noqa: S608
            found[int(row["id"])] = Subscriber.from_row(row)
    return found


def by_phone(db: sqlite_utils.Database, phone: str) -> Subscriber | None:
    rows = list(db.query("SELECT * FROM subscribers WHERE phone = ?", [phone]))
    return Subscriber.from_row(rows[0]) if rows else None


def by_email(db: sqlite_utils.Database, email: str) -> Subscriber | None:
    rows = list(
        db.query(
            "SELECT * FROM subscribers WHERE lower(email) = lower(?) ORDER BY id LIMIT 1", [email]
        )
    )
    return Subscriber.from_row(rows[0]) if rows else None


def list_all(
    db: sqlite_utils.Database, *, limit: int = 100, after_id: int = 0, query: str = ""
) -> list[Subscriber]:
    """By id from `after_id`; with `query`, only those whose name, e-mail or phone holds every
    word of it (case aside for ASCII letters, as SQLite's LIKE)."""
    where = ["id > ?"]
    args: list[object] = [after_id]
    for word in query.split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(
            "(coalesce(name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))"
            " LIKE ? ESCAPE '\\'"
        )
        args.append(f"%{escaped}%")
    sql = f"SELECT * FROM subscribers WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"  # noqa: S608 -- fixed clauses
    return [Subscriber.from_row(row) for row in db.query(sql, [*args, limit])]


def create(db: sqlite_utils.Database, values: Mapping[str, Any], now: str) -> Subscriber:
    """Insert a subscriber; DuplicatePhone when the number is taken."""
    row = _columns(values)
    row.setdefault("channels", json.dumps(["sms"]))
    if row.get("phone") and by_phone(db, row["phone"]) is not None:
        raise DuplicatePhone(f"phone {row['phone']} belongs to another subscriber")
    names = [*row, "created_at", "updated_at"]
    cursor = db.execute(
        f"INSERT INTO subscribers ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",  # noqa: S608 -- names from FIELDS
        [*row.values(), now, now],
    )
    created = get(db, int(cursor.lastrowid or 0))
    assert created is not None
    return created


def update(
    db: sqlite_utils.Database, subscriber_id: int, values: Mapping[str, Any], now: str
) -> Subscriber | None:
    """Change the given columns; None when there is no such subscriber."""
    row = _columns(values)
    if row.get("phone"):
        other = by_phone(db, row["phone"])
        if other is not None and other.id != subscriber_id:
            raise DuplicatePhone(f"phone {row['phone']} belongs to another subscriber")
    if row:
        sets = ", ".join(f"{name} = ?" for name in row)
        db.execute(
            f"UPDATE subscribers SET {sets}, updated_at = ? WHERE id = ?",  # noqa: S608 -- names from FIELDS
            [*row.values(), now, subscriber_id],
        )
    return get(db, subscriber_id)


def delete(db: sqlite_utils.Database, subscriber_id: int) -> bool:
    """Delete a subscriber (their TGTG account and favourites go with them)."""
    return db.execute("DELETE FROM subscribers WHERE id = ?", [subscriber_id]).rowcount > 0


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown subscriber fields: {', '.join(sorted(unknown))}")
    row = dict(values)
    if "channels" in row and not isinstance(row["channels"], str):
        row["channels"] = json.dumps(list(_channels(row["channels"])))
    if "watch_items" in row and not isinstance(row["watch_items"], str):
        row["watch_items"] = json.dumps(list(dict.fromkeys(str(i) for i in row["watch_items"])))
    for flag in ("price_drop_alerts", "reserve_by_reply"):
        if flag in row:
            row[flag] = int(bool(row[flag]))
    return row


def _channels(channels: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(channels))
