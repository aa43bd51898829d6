"""One-time codes: one row per code sent, kept only as an HMAC, closed and swept when spent.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`), so a check and the change it decides are one commit: two
verifies of one code cannot both see it unused.

A code is live while consumed_at is NULL, attempts are under the limit and now < expires_at.
Closing a code early (replaced by a new one, or out of attempts) pulls expires_at in to now,
so "is it live?" is one test everywhere and the sweep needs no other flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from storage.messages import cancel_message
from storage.models import OtpCode

# What an OTP message's body becomes once the code in it is no longer needed there.
REDACTED_BODY = "(one-time code removed)"


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep did."""

    removed: int
    cancelled: int
    redacted: int


def insert_code(
    db: sqlite_utils.Database,
    *,
    phone: str,
    purpose: str,
    code_hmac: str,
    now: str,
    expires_at: str,
) -> OtpCode:
    """Write a new code, sent once, now; the caller closes the ones it replaces."""
    cursor = db.execute(
        "INSERT INTO otp_codes (phone, purpose, code_hmac, created_at, expires_at, attempts, "
        "sends, last_sent_at) VALUES (?, ?, ?, ?, ?, 0, 1, ?)",
        [phone, purpose, code_hmac, now, expires_at, now],
    )
    code = get_code(db, int(cursor.lastrowid or 0))
    assert code is not None
    return code


def get_code(db: sqlite_utils.Database, code_id: int) -> OtpCode | None:
    rows = list(db.query("SELECT * FROM otp_codes WHERE id = ?", [code_id]))
    return OtpCode.from_row(rows[0]) if rows else None


def latest_code(db: sqlite_utils.Database, phone: str, purpose: str) -> OtpCode | None:
    """The newest code for this phone and purpose, live or not: the only one verify looks at."""
    rows = list(
        db.query(
            "SELECT * FROM otp_codes WHERE phone = ? AND purpose = ? ORDER BY id DESC LIMIT 1",
            [phone, purpose],
        )
    )
    return OtpCode.from_row(rows[0]) if rows else None


def sent_since(db: sqlite_utils.Database, phone: str, since: str) -> list[str]:
    """When codes were sent to this phone after `since`, for any purpose, oldest first."""
    rows = db.execute(
        "SELECT created_at FROM otp_codes WHERE phone = ? AND created_at > ? ORDER BY created_at",
        [phone, since],
    ).fetchall()
    return [row[0] for row in rows]


def close_live_codes(
    db: sqlite_utils.Database, phone: str, purpose: str, now: str, reason: str
) -> list[int]:
    """End every live code for this phone and purpose now (a new one replaces them).

    Their messages still queued are cancelled with `reason`: a replaced code is no use to
    anyone. Returns the ids of the codes closed.
    """
    rows = db.execute(
        "SELECT id, message_id FROM otp_codes WHERE phone = ? AND purpose = ? "
        "AND consumed_at IS NULL AND expires_at > ?",
        [phone, purpose, now],
    ).fetchall()
    for code_id, message_id in rows:
        db.execute("UPDATE otp_codes SET expires_at = ? WHERE id = ?", [now, code_id])
        if message_id is not None:
            _cancel_if_queued(db, message_id, reason, now)
    return [row[0] for row in rows]


def end_codes(db: sqlite_utils.Database, codes: list[tuple[int, str]], now: str) -> int:
    """End these codes now, each named by (id, created_at) since ids are reused: their
    lifetime ran out on the monotonic clock, whatever the wall clock says (it stepped back).
    Returns how many were still open."""
    ended = 0
    for code_id, created_at in codes:
        ended += db.execute(
            "UPDATE otp_codes SET expires_at = ? WHERE id = ? AND created_at = ? "
            "AND consumed_at IS NULL AND expires_at > ?",
            [now, code_id, created_at, now],
        ).rowcount
    return ended


def link_message(db: sqlite_utils.Database, code_id: int, message_id: int) -> None:
    db.execute("UPDATE otp_codes SET message_id = ? WHERE id = ?", [message_id, code_id])


def delete_code(db: sqlite_utils.Database, code_id: int) -> None:
    """Forget a code whose message could not be queued, so it does not count as a send."""
    db.execute("DELETE FROM otp_codes WHERE id = ?", [code_id])


def record_wrong_attempt(db: sqlite_utils.Database, code_id: int, now: str, *, close: bool) -> int:
    """Count one wrong try; with `close`, the code dies now. Returns the attempts made."""
    if close:
        db.execute(
            "UPDATE otp_codes SET attempts = attempts + 1, "
            "expires_at = min(expires_at, ?) WHERE id = ?",
            [now, code_id],
        )
    else:
        db.execute("UPDATE otp_codes SET attempts = attempts + 1 WHERE id = ?", [code_id])
    row = db.execute("SELECT attempts FROM otp_codes WHERE id = ?", [code_id]).fetchone()
    return int(row[0])


def consume_code(db: sqlite_utils.Database, code_id: int, now: str) -> bool:
    """Use the code up; False when it was not live any more (used, or expired, meanwhile)."""
    cursor = db.execute(
        "UPDATE otp_codes SET consumed_at = ? "
        "WHERE id = ? AND consumed_at IS NULL AND expires_at > ?",
        [now, code_id, now],
    )
    if cursor.rowcount:
        message_id = db.execute(
            "SELECT message_id FROM otp_codes WHERE id = ?", [code_id]
        ).fetchone()[0]
        if message_id is not None:
            _redact(db, "id = ? AND status NOT IN ('queued', 'sending')", [message_id])
    return cursor.rowcount == 1


def mark_phone_verified(db: sqlite_utils.Database, phone: str, now: str) -> bool:
    """Record on the subscriber with this phone, if there is one, that it was just proven."""
    cursor = db.execute(
        "UPDATE subscribers SET verified_at = ?, updated_at = ? WHERE phone = ?",
        [now, now, phone],
    )
    return cursor.rowcount > 0


def message_status(db: sqlite_utils.Database, message_id: int) -> str | None:
    row = db.execute("SELECT status FROM messages WHERE id = ?", [message_id]).fetchone()
    return row[0] if row else None


def sweep(db: sqlite_utils.Database, now: str, forget_before: str) -> SweepResult:
    """Tidy up after codes that can no longer be used.

    - a dead code's message still queued is cancelled (the dispatcher would also drop it once
      its validity passes, but until then the code sits in the outbox in plain text);
    - every OTP message past sending has its body replaced, so the code it carried is kept
      nowhere in plain text once the provider has it;
    - dead codes sent before `forget_before` (the start of the send-limit window) are
      deleted: nothing reads them any more. The messages table keeps the send history.
    """
    dead = "(consumed_at IS NOT NULL OR expires_at <= :now)"
    # From the few queued messages to their codes: every code of the window is not read.
    queued = db.execute(
        "SELECT id FROM messages WHERE status = 'queued' AND EXISTS "  # noqa: S608
        f"(SELECT 1 FROM otp_codes WHERE message_id = messages.id AND {dead})",
        {"now": now},
    ).fetchall()
    for (message_id,) in queued:
        _cancel_if_queued(db, message_id, "the one-time code expired before it was sent", now)
    # The terms of the partial index idx_messages_otp_not_redacted (m020), as constants, so
    # only the OTP messages not blanked yet are read.
    redacted = db.execute(
        "UPDATE messages INDEXED BY idx_messages_otp_not_redacted SET body = ? "
        "WHERE kind = 'otp' AND body <> '(one-time code removed)' "
        "AND status NOT IN ('queued', 'sending')",
        [REDACTED_BODY],
    ).rowcount
    removed = db.execute(
        f"DELETE FROM otp_codes WHERE created_at <= :before AND {dead}",  # noqa: S608
        {"now": now, "before": forget_before},
    ).rowcount
    return SweepResult(removed=removed, cancelled=len(queued), redacted=redacted)


def _redact(db: sqlite_utils.Database, where: str, params: list[object]) -> int:
    # `where` is one of this module's own constant strings; values go as parameters.
    cursor = db.execute(
        f"UPDATE messages SET body = ? WHERE {where} AND body <> ?",  # noqa: S608
        [REDACTED_BODY, *params, REDACTED_BODY],
    )
    return cursor.rowcount


def _cancel_if_queued(db: sqlite_utils.Database, message_id: int, reason: str, now: str) -> None:
    status = message_status(db, message_id)
    if status == "queued":
        cancel_message(db, message_id, reason, now)
        _redact(db, "id = ?", [message_id])
