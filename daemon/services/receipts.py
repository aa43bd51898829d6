"""Delivery receipts from any provider: the one entry that applies them to the message log.

A provider reports either the whole message by its own id (Twilio's status callbacks) or one
segment by the reference it gave it (a modem's status reports, 3GPP TS 23.040's
SMS-STATUS-REPORT). Both move a message only forward (storage/receipts.py says how); a
receipt for a message this database does not know is logged and dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import sqlite_utils

from daemon.config import Settings
from daemon.runtime.clock import Clock, utc_iso
from storage.database import Database
from storage.receipts import ReceiptResult, apply_part_report, apply_receipt

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MessageReceipt:
    """The provider's status for a whole message it knows by `provider_message_id`."""

    provider: str
    provider_message_id: str
    status: str
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """The network's report on one segment, known by the reference the provider gave it."""

    provider: str
    reference: str
    recipient: str
    delivered: bool
    failed: bool
    status_code: int


Receipt = MessageReceipt | SegmentReport


class Receipts:
    """Applies receipts, each in one write transaction."""

    def __init__(self, db: Database, clock: Clock, *, segment_window: timedelta) -> None:
        self._db = db
        self._clock = clock
        # A segment's reference wraps (one byte on a modem): only segments sent this recently
        # can be the one a report is about.
        self._segment_window = segment_window

    async def apply(self, receipt: Receipt) -> ReceiptResult:
        now = self._clock.now()

        def work(db: sqlite_utils.Database) -> ReceiptResult:
            if isinstance(receipt, MessageReceipt):
                return apply_receipt(
                    db,
                    provider=receipt.provider,
                    provider_message_id=receipt.provider_message_id,
                    status=receipt.status,
                    error_code=receipt.error_code,
                    now=utc_iso(now),
                )
            return apply_part_report(
                db,
                provider=receipt.provider,
                reference=receipt.reference,
                recipient=receipt.recipient,
                delivered=receipt.delivered,
                failed=receipt.failed,
                status_code=receipt.status_code,
                now=utc_iso(now),
                sent_after=utc_iso(now - self._segment_window),
            )

        result = await self._db.write(work)
        if result.message_id is None:
            # Not an error: a message from before this database, or another program's.
            logger.info(
                "%s receipt %s matches no message; ignored", receipt.provider, _about(receipt)
            )
        elif result.moved:
            logger.debug(
                "message %d is now %s (%s)", result.message_id, result.state, receipt.provider
            )
        return result


def _about(receipt: Receipt) -> str:
    if isinstance(receipt, MessageReceipt):
        return f"{receipt.status} for {receipt.provider_message_id}"
    return f"for reference {receipt.reference} to {receipt.recipient}"


def build_receipts(db: Database, clock: Clock, settings: Settings) -> Receipts:
    """The daemon's receipts entry, with the modem's report window from its settings."""
    return Receipts(db, clock, segment_window=timedelta(hours=settings.modem.report_window_hours))
