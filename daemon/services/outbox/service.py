"""Enqueue: the one way anything is sent; it checks, writes down, and wakes the dispatcher."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from daemon.runtime.clock import Clock, utc_iso
from daemon.services.outbox.backpressure import Backpressure, QueueFull
from daemon.services.outbox.budget import Budget, BudgetSpent, Origin
from daemon.services.outbox.sealing import Sealer
from providers.sms_text import analyze
from storage.database import Database
from storage.messages import (
    PRIORITY,
    IdempotencyConflict,
    NewMessage,
    by_idempotency_key,
    cancel_message,
    count_recent_to,
    insert_message,
    retry_message,
)
from storage.models import Message, parse_time
from storage.optouts import is_opted_out
from storage.phones import InvalidPhone, to_e164
from storage.push import invalid_token

log = logging.getLogger(__name__)

CHANNELS = ("sms", "push", "email")
MAX_IDEMPOTENCY_KEY = 200
# An e-mail address, plainly: one @, a dot in the domain, no spaces, brackets or separators.
_EMAIL = re.compile(r"[^@\s<>,;]{1,64}@[^@\s<>,;]+\.[^@\s<>,;]+")


class EnqueueError(ValueError):
    """A message was refused before being written; names the field and the rule broken, or
    (field "") says why the outbox takes no more now (a full queue, a spent budget)."""

    def __init__(
        self, field: str, rule: str, *, status: int = 400, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{field}: {rule}" if field else rule)
        self.field = field
        self.rule = rule
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class EnqueueRequest:
    """What a caller wants sent."""

    channel: str
    recipient: str
    body: str
    kind: str = "manual"
    subject: str | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    subscriber_id: int | None = None
    notification_id: int | None = None
    validity_seconds: int | None = None
    # At most this many messages to this recipient in the last minute (the SMS backend's
    # per-contact limit); checked in the same transaction as the insert, so concurrent
    # requests cannot slip past it.
    per_minute_limit: int | None = None
    # "api": asked for through the HTTP API, so held to [outbox] max_queued and to the
    # spending cap; "daemon": the daemon's own (alerts, codes, replies), only counted by the
    # queue limits and exempt from the cap for the kinds in [sms] budget_exempt.
    origin: Origin = "daemon"


@dataclass(frozen=True)
class Enqueued:
    message: Message
    created: bool


class Outbox:
    """Validates and writes messages down; the dispatcher does the sending."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        default_region: str = "",
        max_segments: int = 10,
        wake: Callable[[], None] | None = None,
        sealer: Sealer | None = None,
        backpressure: Backpressure | None = None,
        budget: Budget | None = None,
    ) -> None:
        self._db = db
        self.backpressure = backpressure
        self.budget = budget
        self._clock = clock
        # One-time codes are stored sealed (daemon/services/outbox/sealing.py) when given.
        self._sealer = sealer
        self._region = default_region
        self._max_segments = max_segments
        self._wake = wake or (lambda: None)

    def normalise_phone(self, text: str, field: str = "recipient") -> str:
        try:
            return to_e164(text, self._region)
        except InvalidPhone as exc:
            raise EnqueueError(field, str(exc)) from None

    async def enqueue(self, request: EnqueueRequest) -> Enqueued:
        """Write the message down as queued (or return the one with the same idempotency key)."""
        new = self._check(request)
        if self._sealer is not None and new.kind == "otp":
            new = replace(new, body=self._sealer.seal(new.body))
        moment = self._clock.now()
        now = utc_iso(moment)
        limit = request.per_minute_limit

        def write(conn):  # type: ignore[no-untyped-def]
            if limit:
                since = moment - timedelta(minutes=1)
                count, oldest = count_recent_to(conn, new.channel, new.recipient, utc_iso(since))
                if count >= limit:
                    wait = 60.0
                    if oldest is not None:
                        wait = (parse_time(oldest) - since).total_seconds()
                    seconds = max(1, math.ceil(wait))
                    raise EnqueueError(
                        "recipient",
                        f"at most {limit} messages a minute to {new.recipient}; try again in "
                        f"{seconds}s",
                        status=429,
                        retry_after=seconds,
                    )
            if new.channel == "sms" and new.kind != "reply" and is_opted_out(conn, new.recipient):
                raise EnqueueError(
                    "recipient",
                    f"{new.recipient} has opted out (replied STOP); they get nothing until "
                    "they reply START",
                    status=409,
                )
            if new.channel == "push" and (dead := invalid_token(conn, new.recipient)):
                raise EnqueueError(
                    "recipient",
                    f"push token {dead.id} is invalid ({dead.invalid_reason}); it gets nothing "
                    "until the app registers it again",
                    status=409,
                )
            # A repeat of a message already queued is answered as before, whatever the
            # queue or the budget say now.
            key = new.idempotency_key
            if key is None or by_idempotency_key(conn, key) is None:
                self._admit(conn, new, request.origin, moment)
            message, created = insert_message(conn, new, now)
            if created and self.budget is not None and new.channel == "sms":
                self.budget.charge(new.segments or 1)
            return message, created

        try:
            message, created = await self._db.write(write)
        except IdempotencyConflict as exc:
            raise EnqueueError("idempotency_key", str(exc), status=409) from None
        except (QueueFull, BudgetSpent) as exc:
            # 503: the request is right and may succeed later (RFC 9110 15.6.4).
            raise EnqueueError("", str(exc), status=503, retry_after=exc.retry_after) from None
        if created:
            self._wake()
        return Enqueued(message, created)

    def _admit(self, conn: Any, new: NewMessage, origin: Origin, moment: datetime) -> None:
        """The spending cap for every SMS, the queue limits for the API's sends; raises
        BudgetSpent or QueueFull. On the database thread, inside the write."""
        if self.budget is not None and new.channel == "sms":
            self.budget.check(conn, new.kind, origin, new.segments or 1, moment)
        if self.backpressure is not None and origin == "api":
            self.backpressure.check(conn, new.channel, new.kind)

    def _check(self, request: EnqueueRequest) -> NewMessage:
        if request.channel not in CHANNELS:
            raise EnqueueError("channel", f"must be one of {', '.join(CHANNELS)}")
        if request.kind not in PRIORITY:
            raise EnqueueError("kind", f"must be one of {', '.join(PRIORITY)}")
        body = request.body
        if not body.strip():
            raise EnqueueError("body", "must not be empty")
        if "\x00" in body:
            raise EnqueueError("body", "must not contain NUL characters")
        key = request.idempotency_key
        if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
            raise EnqueueError("idempotency_key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        if request.validity_seconds is not None and request.validity_seconds <= 0:
            raise EnqueueError("validity_seconds", "must be a positive number of seconds")
        encoding: str | None = None
        segments: int | None = None
        recipient = request.recipient
        if request.channel == "sms":
            recipient = self.normalise_phone(recipient)
            text = analyze(body)
            if text.segments > self._max_segments:
                raise EnqueueError(
                    "body",
                    f"is {text.segments} SMS segments long ({text.units} "
                    f"{'characters' if text.encoding == 'gsm7' else 'UCS-2 units'}, "
                    f"{text.encoding.upper()}); at most {self._max_segments} are allowed "
                    "([sms] max_segments)",
                )
            encoding, segments = text.encoding, text.segments
        elif request.channel == "email":
            recipient = recipient.strip()
            if not _EMAIL.fullmatch(recipient):
                raise EnqueueError("recipient", "must be an e-mail address like shop@example.com")
        elif not recipient.strip():
            raise EnqueueError("recipient", "must not be empty")
        priority = request.priority if request.priority is not None else PRIORITY[request.kind]
        return NewMessage(
            channel=request.channel,
            recipient=recipient,
            body=body,
            kind=request.kind,
            priority=priority,
            subject=request.subject,
            idempotency_key=key,
            subscriber_id=request.subscriber_id,
            notification_id=request.notification_id,
            encoding=encoding,
            segments=segments,
            validity_seconds=request.validity_seconds,
        )

    async def cancel(self, message_id: int, reason: str = "cancelled by hand") -> Message:
        moment = self._clock.now()
        budget = self.budget

        def write(conn):  # type: ignore[no-untyped-def]
            message = cancel_message(conn, message_id, reason, utc_iso(moment))
            if budget is not None and message.channel == "sms":
                # A cancelled SMS gives its segments back at once.
                budget.refund(message.segments or 1, message.created_at)
            return message

        return await self._db.write(write)

    async def retry(self, message_id: int) -> Message:
        moment = self._clock.now()
        budget = self.budget

        def write(conn):  # type: ignore[no-untyped-def]
            message = retry_message(conn, message_id, utc_iso(moment))
            if budget is not None and message.channel == "sms":
                # Sent again: counted again, today.
                budget.charge(message.segments or 1)
            return message

        message = await self._db.write(write)
        self._wake()
        return message
