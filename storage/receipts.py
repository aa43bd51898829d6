"""Delivery receipts: a provider's status for a sent message, applied by a monotonic state machine.

Receipts come late, twice, or out of order (Twilio says so of its status callbacks), so a
message only ever moves forward, by rank:

    queued < sending < sent < {delivered, undelivered, failed}

The three final states rank equal and the first one wins: a final state is never overwritten,
not even by another final state (Twilio may report `undelivered` after `delivered` when a
carrier's report arrives late; the first report is the one the shopkeeper already saw acted on).
A receipt that does not move the message forward is a no-op: no update, no event.

Only a message the outbox already recorded as `sent` (or later) can move. The outbox writes
`sent` when the provider's API accepted the message, so the receipts for earlier steps
(Twilio's queued/accepted/scheduled/sending, and `sent` itself) never change anything; and a
message back in `queued`/`sending` (retried by hand) or `cancelled` is a new attempt that a
late receipt about the old one must not touch.

Twilio's `canceled` (a scheduled message cancelled at Twilio before it went out) becomes
`failed`, not our `cancelled`: ours means "stopped here before any provider saw it", while this
message was accepted and then not sent, which the shopkeeper should see as a failure (and may
retry). `read` (other channels) implies delivered. Statuses this module does not know
(`receiving`, `partially_delivered`, anything new) change nothing.

Every function takes the connection of the database thread and runs inside the caller's
transaction (`Database.write`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from storage.messages import add_event

# Our states by how far along they are; finals rank equal (the first final wins).
RANK = {
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
}
FINAL_RANK = 3

# A provider's status word -> our state. Twilio's words; the modem's status reports and other
# providers map to the same words at their edge.
STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
    "cancelled": "failed",
}

# What Twilio's delivery error codes mean, for the event detail and last_error. Receipts carry
# only the number; these are the codes that arrive on status callbacks
# (https://www.twilio.com/docs/api/errors). Others are shown as the bare code.
TWILIO_DELIVERY_ERRORS = {
    "21610": "recipient unsubscribed (replied STOP)",
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "handset unreachable",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier",
    "30008": "unknown error",
    "30009": "missing inbound segment",
    "30010": "message price exceeds max price",
    "30034": "sender number not registered (US A2P 10DLC)",
}


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    """What a receipt did: the message it is about (None when unknown), whether it moved it,
    and the message's state afterwards (None when unknown)."""

    message_id: int | None
    moved: bool
    state: str | None


def describe_error(provider: str, error_code: str | None) -> str | None:
    """'ErrorCode 30003: handset unreachable', or None without a code."""
    if not error_code:
        return None
    meaning = TWILIO_DELIVERY_ERRORS.get(error_code) if provider == "twilio" else None
    return f"ErrorCode {error_code}: {meaning}" if meaning else f"ErrorCode {error_code}"


def apply_receipt(
    db: sqlite_utils.Database,
    *,
    provider: str,
    provider_message_id: str,
    status: str,
    error_code: str | None,
    now: str,
) -> ReceiptResult:
    """Move the message `provider` knows as `provider_message_id` to `status`, if that is forward.

    A real move updates the message (delivered_at on delivery; error_code and last_error when
    the receipt has a code) and appends one message_events row with the provider and the code.
    """
    # Newest first: a modem's references wrap around at 255, so the latest use of an id is
    # the message the receipt is about.
    row = db.execute(
        "SELECT id, status FROM messages WHERE provider = ? AND provider_message_id = ? "
        "ORDER BY id DESC LIMIT 1",
        [provider, provider_message_id],
    ).fetchone()
    if row is None:
        return ReceiptResult(message_id=None, moved=False, state=None)
    return advance(
        db,
        int(row[0]),
        status,
        provider=provider,
        error_code=error_code,
        detail=describe_error(provider, error_code),
        now=now,
    )


def advance(
    db: sqlite_utils.Database,
    message_id: int,
    status: str,
    *,
    provider: str,
    error_code: str | None,
    detail: str | None,
    now: str,
) -> ReceiptResult:
    """Move message `message_id` to the state a receipt's `status` word means, if forward."""
    row = db.execute("SELECT status FROM messages WHERE id = ?", [message_id]).fetchone()
    if row is None:
        return ReceiptResult(message_id=None, moved=False, state=None)
    current = str(row[0])
    target = STATUS_MAP.get(status.strip().lower())
    current_rank = RANK.get(current)
    if (
        target is None
        or current_rank is None  # cancelled: never reached a provider in this attempt
        or current_rank < RANK["sent"]  # queued/sending again: a new attempt, not this receipt's
        # Finals rank equal, so a final state is never left and the first final wins.
        or RANK[target] <= current_rank
    ):
        return ReceiptResult(message_id=message_id, moved=False, state=current)

    db.execute(
        "UPDATE messages SET status = ?, updated_at = ?, "
        "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, "
        "error_code = coalesce(?, error_code), last_error = coalesce(?, last_error) "
        "WHERE id = ?",
        [target, now, target, now, error_code, detail, message_id],
    )
    add_event(
        db,
        message_id,
        target,
        now,
        provider=provider,
        detail=detail or f"delivery receipt: {status}",
    )
    return ReceiptResult(message_id=message_id, moved=True, state=target)


# -- per-segment delivery reports (a modem's) ----------------------------------------------


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
