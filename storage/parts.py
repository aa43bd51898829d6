"""Per-segment delivery reports (a modem's): each segment's report, then the message's state."""

from __future__ import annotations

import sqlite_utils

from storage.receipts import ReceiptResult, advance


def apply_part_report(
    db: sqlite_utils.Database,
    *,
    provider: str,
    reference: str,
    recipient: str,
    delivered: bool,
    failed: bool,
    status_code: int,
    now: str,
    sent_after: str,
) -> ReceiptResult:
    """Record one segment's status report and move its message when the report decides it.

    The reference wraps (a modem's TP-MR is one byte), so the segment is the newest one with
    this provider, reference and recipient sent after `sent_after` that has no report yet.
    The message is delivered when every segment is, and undelivered as soon as one fails for
    good; a pending report ("SMSC still trying") changes nothing.
    """
    row = db.execute(
        "SELECT id, message_id FROM message_parts WHERE provider = ? AND reference = ? "
        "AND recipient = ? AND sent_at >= ? AND status = 'sent' ORDER BY id DESC LIMIT 1",
        [provider, reference, recipient, sent_after],
    ).fetchone()
    if row is None:
        return ReceiptResult(message_id=None, moved=False, state=None)
    part_id, message_id = int(row[0]), int(row[1])
    if not delivered and not failed:
        return ReceiptResult(message_id=message_id, moved=False, state=None)
    db.execute(
        "UPDATE message_parts SET status = ?, status_code = ?, reported_at = ? WHERE id = ?",
        ["delivered" if delivered else "failed", status_code, now, part_id],
    )
    counts = dict(
        db.execute(
            "SELECT status, count(*) FROM message_parts WHERE message_id = ? GROUP BY status",
            [message_id],
        ).fetchall()
    )
    code = f"0x{status_code:02X}"
    if counts.get("failed"):
        return advance(
            db,
            message_id,
            "undelivered",
            provider=provider,
            error_code=code,
            detail=f"status report {code}: the network could not deliver a segment",
            now=now,
        )
    if not counts.get("sent"):
        return advance(
            db,
            message_id,
            "delivered",
            provider=provider,
            error_code=None,
            detail="status report: every segment delivered",
            now=now,
        )
    return ReceiptResult(message_id=message_id, moved=False, state=None)
