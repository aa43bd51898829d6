"""The outbox over HTTP: the SMS backend's POST /smss and the canonical /api/v1/messages."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.runtime.clock import utc_iso
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from storage.messages import (
    MessageFilter,
    StateError,
    get_events,
    get_message,
    list_messages,
)
from storage.models import Message, MessageEvent

router = APIRouter()

Ctx = Annotated[ApiContext, Depends(get_ctx)]
# Ids fit SQLite's INTEGER: a larger number is a 400 naming the field, not an OverflowError.
MessageId = Annotated[int, PathParam(ge=1, le=2**62)]
MessageStatusName = Literal[
    "queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled"
]
KindName = Literal["otp", "alert", "manual", "report", "reply", "system"]
HIDDEN_BODY = "(hidden: one-time code)"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmssRequest(_Body):
    """The SMS backend's request: one SMS to one contact."""

    model_config = ConfigDict(extra="ignore")  # its clients may send more; it ignored them

    contact: str = Field(min_length=1, max_length=40, description="E.164, e.g. +201009129288")
    subject: str = Field(default="", max_length=200)
    message: str = Field(min_length=1, max_length=5000)


class SmssResponse(BaseModel):
    success: bool = True
    message_id: int


class MessageCreate(_Body):
    """A message to send; `to` is a phone number for SMS."""

    channel: Literal["sms"] = "sms"
    to: str = Field(min_length=1, max_length=40)
    body: str = Field(min_length=1, max_length=5000)
    subject: str | None = Field(default=None, max_length=200)
    kind: Literal["manual", "alert", "report", "system"] = "manual"
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    validity_seconds: int | None = Field(default=None, gt=0, le=7 * 86_400)


class MessageOut(BaseModel):
    """A message as the API shows it; a one-time code's text is never shown."""

    id: int
    channel: str
    recipient: str
    subject: str | None
    body: str
    kind: str
    priority: int
    status: str
    idempotency_key: str | None
    subscriber_id: int | None
    notification_id: int | None
    encoding: str | None
    segments: int | None
    provider: str | None
    provider_message_id: str | None
    attempts: int
    last_error: str | None
    error_code: str | None
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        body = HIDDEN_BODY if message.kind == "otp" else message.body
        fields = {name: getattr(message, name) for name in cls.model_fields if name != "body"}
        return cls(body=body, **fields)


class EventOut(BaseModel):
    at: datetime
    state: str
    provider: str | None
    detail: str | None

    @classmethod
    def of(cls, event: MessageEvent) -> EventOut:
        return cls(at=event.at, state=event.state, provider=event.provider, detail=event.detail)


class MessageCreated(BaseModel):
    success: bool = True
    created: bool
    message: MessageOut


class MessageDetail(BaseModel):
    success: bool = True
    message: MessageOut
    events: list[EventOut]


class MessagePage(BaseModel):
    success: bool = True
    messages: list[MessageOut]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


def _outbox(ctx: ApiContext) -> Outbox:
    if ctx.outbox is None:
        raise ApiError(503, "the outbox is not running")
    return ctx.outbox


def refused(exc: EnqueueError, rename: dict[str, str] | None = None) -> ApiError:
    """The answer to a message the outbox refused: the field and its rule, or (a full queue,
    a spent budget) the reason alone; Retry-After when waiting helps."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    if not exc.field:
        return ApiError(exc.status, exc.rule, headers=headers)
    field = (rename or {}).get(exc.field, exc.field)
    return ApiError(
        exc.status,
        f"{field}: {exc.rule}",
        headers=headers,
        errors=[{"field": f"body.{field}", "rule": exc.rule}],
    )


@router.post(
    "/smss",
    summary="Send one SMS (the SMS backend's endpoint)",
    responses=errors_for(409, 429, 503),
)
async def post_smss(request: SmssRequest, ctx: Ctx) -> SmssResponse:
    try:
        enqueued = await _outbox(ctx).enqueue(
            EnqueueRequest(
                channel="sms",
                recipient=request.contact,
                body=request.message,
                subject=request.subject or None,
                kind="manual",
                per_minute_limit=ctx.settings.sms.smss_per_minute or None,
                origin="api",
            )
        )
    except EnqueueError as exc:
        raise refused(exc, {"recipient": "contact", "body": "message"}) from None
    return SmssResponse(message_id=enqueued.message.id)


@router.post(
    "/api/v1/messages",
    status_code=201,
    summary="Enqueue a message",
    responses={
        200: {"model": MessageCreated, "description": "Queued before under this idempotency key"},
        **errors_for(409, 503),
    },
)
async def create_message(
    request: MessageCreate,
    response: Response,
    ctx: Ctx,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> MessageCreated:
    outbox = _outbox(ctx)
    try:
        enqueued = await outbox.enqueue(
            EnqueueRequest(
                channel=request.channel,
                recipient=request.to,
                body=request.body,
                subject=request.subject,
                kind=request.kind,
                idempotency_key=request.idempotency_key or idempotency_key,
                validity_seconds=request.validity_seconds,
                origin="api",
            )
        )
    except EnqueueError as exc:
        raise refused(exc, {"recipient": "to"}) from None
    if not enqueued.created:
        response.status_code = 200
    return MessageCreated(created=enqueued.created, message=MessageOut.of(enqueued.message))


@router.get("/api/v1/messages", summary="List messages, newest first")
async def get_messages(
    ctx: Ctx,
    status: MessageStatusName | None = None,
    channel: Literal["sms", "push", "email"] | None = None,
    kind: KindName | None = None,
    recipient: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[datetime | None, Query(description="created at or after (ISO-8601)")] = None,
    until: Annotated[datetime | None, Query(description="created before (ISO-8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="id to page back from")] = None,
) -> MessagePage:
    if recipient is not None and channel in (None, "sms") and ctx.outbox is not None:
        # Not a phone: match it as written (push tokens, e-mail addresses).
        with contextlib.suppress(EnqueueError):
            recipient = ctx.outbox.normalise_phone(recipient)
    where = MessageFilter(
        status=status,
        channel=channel,
        kind=kind,
        recipient=recipient,
        since=_iso(since, "since"),
        until=_iso(until, "until"),
    )
    rows = await ctx.db.execute(
        lambda conn: list_messages(conn, where, limit=limit, before_id=before)
    )
    next_before = rows[-1].id if len(rows) == limit else None
    return MessagePage(messages=[MessageOut.of(m) for m in rows], next_before=next_before)


@router.get(
    "/api/v1/messages/{message_id}",
    summary="One message with its history",
    responses=errors_for(404),
)
async def get_one(message_id: MessageId, ctx: Ctx) -> MessageDetail:
    def read(conn: Any) -> tuple[Message | None, list[MessageEvent]]:
        return get_message(conn, message_id), get_events(conn, message_id)

    message, events = await ctx.db.execute(read)
    if message is None:
        raise ApiError(404, f"no message {message_id}")
    return MessageDetail(message=MessageOut.of(message), events=[EventOut.of(e) for e in events])


@router.post(
    "/api/v1/messages/{message_id}/cancel",
    summary="Cancel a queued message",
    responses=errors_for(404, 409),
)
async def cancel(message_id: MessageId, ctx: Ctx) -> MessageDetail:
    try:
        await _outbox(ctx).cancel(message_id)
    except LookupError:
        raise ApiError(404, f"no message {message_id}") from None
    except StateError as exc:
        raise ApiError(409, str(exc)) from None
    return await get_one(message_id, ctx)


@router.post(
    "/api/v1/messages/{message_id}/retry",
    summary="Send a failed message again",
    responses=errors_for(404, 409),
)
async def retry(message_id: MessageId, ctx: Ctx) -> MessageDetail:
    try:
        await _outbox(ctx).retry(message_id)
    except LookupError:
        raise ApiError(404, f"no message {message_id}") from None
    except StateError as exc:
        raise ApiError(409, str(exc)) from None
    return await get_one(message_id, ctx)


def _iso(moment: datetime | None, name: str) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ApiError(400, f"{name}: needs a time zone, e.g. 2026-11-22T10:00:00Z")
    return utc_iso(moment)
