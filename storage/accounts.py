"""Accounts: customers and staff who log in, their password hashes and failed-login counters.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`) or read (`Database.execute`).
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from storage.models import Account


class AccountExistsError(Exception):
    """The username or e-mail is already taken; `field` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is already taken")
        self.field = field


def insert_account(
    db: sqlite_utils.Database,
    *,
    username: str,
    password_hash: str,
    role: str,
    now: str,
    email: str | None = None,
    phone: str | None = None,
    full_name: str | None = None,
) -> Account:
    """Write a new account; raise AccountExistsError when the username or e-mail is taken."""
    try:
        cursor = db.execute(
            "INSERT INTO accounts (username, email, phone, full_name, password_hash, role, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [username, email, phone, full_name, password_hash, role, now, now],
        )
    except sqlite3.IntegrityError as exc:
        text = str(exc)
        if "accounts.email" in text:
            raise AccountExistsError("email") from None
        if "accounts.username" in text:
            raise AccountExistsError("username") from None
        raise
    account = get_account(db, int(cursor.lastrowid or 0))
    assert account is not None
    return account


def get_account(db: sqlite_utils.Database, account_id: int) -> Account | None:
    rows = list(db.query("SELECT * FROM accounts WHERE id = ?", [account_id]))
    return Account.from_row(rows[0]) if rows else None


def find_account(db: sqlite_utils.Database, login: str) -> Account | None:
    """The account whose username or e-mail is `login` (either, case-insensitively)."""
    rows = list(
        db.query(
            "SELECT * FROM accounts WHERE username = ? OR email = ? ORDER BY id LIMIT 1",
            [login, login],
        )
    )
    return Account.from_row(rows[0]) if rows else None


def list_accounts(
    db: sqlite_utils.Database, *, role: str | None = None, limit: int = 100, offset: int = 0
) -> list[Account]:
    where, params = ("WHERE role = ?", [role]) if role else ("", [])
    rows = db.query(
        f"SELECT * FROM accounts {where} ORDER BY id LIMIT ? OFFSET ?",  # noqa: S608 -- fixed text
        [*params, limit, offset],
    )
    return [Account.from_row(row) for row in rows]


def record_login_failure(
    db: sqlite_utils.Database, account_id: int, *, locked_until: str | None, now: str
) -> None:
    """Count one failed login (the caller read the count and the lock in this transaction)."""
    db.execute(
        "UPDATE accounts SET failed_logins = failed_logins + 1, locked_until = ?, updated_at = ? "
        "WHERE id = ?",
        [locked_until, now, account_id],
    )


def refund_login_failure(
    db: sqlite_utils.Database,
    account_id: int,
    *,
    set_until: str | None,
    previous_until: str | None,
    now: str,
) -> None:
    """Undo one record_login_failure() made in advance for a try that was no guess after all.

    The lock goes back to `previous_until` only if it is still the `set_until` that failure
    wrote: a lock set since by another try stands.
    """
    db.execute(
        "UPDATE accounts SET failed_logins = MAX(failed_logins - 1, 0), "
        "locked_until = CASE WHEN locked_until IS ? THEN ? ELSE locked_until END, "
        "updated_at = ? WHERE id = ?",
        [set_until, previous_until, now, account_id],
    )


def record_login_success(db: sqlite_utils.Database, account_id: int, *, now: str) -> None:
    db.execute(
        "UPDATE accounts SET failed_logins = 0, locked_until = NULL, updated_at = ? WHERE id = ?",
        [now, account_id],
    )


def set_password_hash(
    db: sqlite_utils.Database, account_id: int, password_hash: str, *, now: str
) -> None:
    db.execute(
        "UPDATE accounts SET password_hash = ?, updated_at = ? WHERE id = ?",
        [password_hash, now, account_id],
    )
