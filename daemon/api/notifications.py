"""Push over HTTP: the SMS/FCM backend's /notifications/tokens and /notifications/topic, and the
canonical /api/v1/notifications and /api/v1/push-tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.api.messages import refused
from daemon.services.outbox.service import EnqueueError
from daemon.services.push import MAX_TOKEN_LENGTH, MAX_TOKENS, PushQueued, PushService
from storage.models import Message, Notification, PushToken
from storage.push import (
    NotificationSummary,
    get_notification,
    get_token,
    list_notifications,
    list_tokens,
    notification_counts,
    notification_messages,
)

router = APIRouter()

Ctx = Annotated[ApiContext, Depends(get_ctx)]
# Ids fit SQLite's INTEGER: a larger number is a 400 naming the field, not an OverflowError.
RowId = Annotated[int, PathParam(ge=1, le=2**62)]
# Types only here (the JSON must be text, a list, ...); the rules FCM sets (sizes, topic
# names, token shapes) are the push service's, so every caller meets the same ones.
Token = Annotated[StrictStr, Field(max_length=MAX_TOKEN_LENGTH)]
Tokens = Annotated[list[Token], Field(min_length=1, max_length=MAX_TOKENS)]
Text = Annotated[StrictStr, Field(max_length=8192)]
Data = dict[StrictStr, StrictStr]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokensRequest(_Body):
    """The SMS/FCM backend's request: one notification to many device tokens."""

    model_config = ConfigDict(extra="ignore")  # its clients may send more; it ignored them

    tokens: Tokens = Field(description="device tokens (one token as a plain string also works)")
    title: Text
    body: Text

    @field_validator("tokens", mode="before")
    @classmethod
    def _one_token(cls, value: Any) -> Any:
        # A list, as the backend's README says; its code also took one token as a string.
        # Wrapped before validation, so a bad value gets the list's one clear rule.
        return [value] if isinstance(value, str) else value


class TokensResponse(BaseModel):
    success: bool = True
    notification_id: int


class TopicRequest(_Body):
    """The SMS/FCM backend's request: one notification to an FCM topic."""

    model_config = ConfigDict(extra="ignore")

    topic: Annotated[StrictStr, Field(max_length=1000)]
    title: Text
    body: Text


class TopicResponse(BaseModel):
    success: bool = True


class NotificationCreate(_Body):
    """A push to device tokens, to a topic, or to a subscriber's devices (exactly one)."""

    tokens: Tokens | None = None
    topic: Annotated[StrictStr, Field(max_length=1000)] | None = None
    subscriber_id: int | None = Field(default=None, ge=1, le=2**62)
    title: Text | None = None
    body: Text
    data: Data | None = None
    kind: Literal["manual", "alert", "system"] = "manual"
    idempotency_key: Annotated[StrictStr, Field(min_length=1, max_length=180)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> NotificationCreate:
        given = [n for n in ("tokens", "topic", "subscriber_id") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of tokens, topic and subscriber_id")
        return self


class NotificationOut(BaseModel):
    """A notification with how many of its messages are in each state."""

    id: int
    target: str
    topic: str | None
    title: str | None
    body: str | None
    data: dict[str, Any] | None
    created_at: datetime
    messages: int
    by_status: dict[str, int]

    @classmethod
    def of(cls, notification: Notification, counts: dict[str, int]) -> NotificationOut:
        return cls(
            id=notification.id,
            target=notification.target,
            topic=notification.topic,
            title=notification.title,
            body=notification.body,
            data=notification.data,
            created_at=notification.created_at,
            messages=sum(counts.values()),
            by_status=counts,
        )

    @classmethod
    def summary(cls, summary: NotificationSummary) -> NotificationOut:
        return cls.of(summary.notification, dict(summary.counts))


class OutcomeOut(BaseModel):
    """One token's (or the topic's) message and how it went."""

    message_id: int
    recipient: str
    status: str
    provider: str | None
    provider_message_id: str | None
    attempts: int
    last_error: str | None
    error_code: str | None
    sent_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, message: Message) -> OutcomeOut:
        return cls(
            message_id=message.id,
            recipient=message.recipient,
            status=message.status,
            provider=message.provider,
            provider_message_id=message.provider_message_id,
            attempts=message.attempts,
            last_error=message.last_error,
            error_code=message.error_code,
            sent_at=message.sent_at,
            updated_at=message.updated_at,
        )


class NotificationDetail(BaseModel):
    success: bool = True
    created: bool = True
    notification: NotificationOut
    outcomes: list[OutcomeOut]


class NotificationPage(BaseModel):
    success: bool = True
    notifications: list[NotificationOut]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


class PushTokenCreate(_Body):
    """A device registering (or registering again) its FCM token."""

    token: Token
    subscriber_id: int | None = Field(default=None, ge=1, le=2**62)
    platform: Literal["android", "ios", "web"] | None = None


class PushTokenOut(BaseModel):
    id: int
    token: str
    subscriber_id: int | None
    platform: str | None
    created_at: datetime
    last_seen_at: datetime | None
    valid: bool
    invalid_at: datetime | None
    invalid_reason: str | None

    @classmethod
    def of(cls, row: PushToken) -> PushTokenOut:
        return cls(
            id=row.id,
            token=row.token,
            subscriber_id=row.subscriber_id,
            platform=row.platform,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            valid=row.invalid_at is None,
            invalid_at=row.invalid_at,
            invalid_reason=row.invalid_reason,
        )


class PushTokenSaved(BaseModel):
    success: bool = True
    created: bool
    token: PushTokenOut


class PushTokenDeleted(BaseModel):
    success: bool = True
    token: PushTokenOut
    cancelled_message_ids: list[int]


class PushTokenPage(BaseModel):
    success: bool = True
    tokens: list[PushTokenOut]
    next_before: int | None


def _push(ctx: ApiContext) -> PushService:
    if ctx.push is None:
        raise ApiError(503, "push notifications are not running")
    return ctx.push


def _detail(queued: PushQueued) -> NotificationDetail:
    counts: dict[str, int] = {}
    for message in queued.messages:
        counts[message.status] = counts.get(message.status, 0) + 1
    return NotificationDetail(
        created=queued.created,
        notification=NotificationOut.of(queued.notification, counts),
        outcomes=[OutcomeOut.of(m) for m in queued.messages],
    )


# -- the SMS/FCM backend's endpoints ------------------------------------------------------------


@router.post(
    "/notifications/tokens",
    summary="Push to device tokens (the FCM backend's)",
    responses=errors_for(503),
)
async def post_tokens(request: TokensRequest, ctx: Ctx) -> TokensResponse:
    try:
        queued = await _push(ctx).send_to_tokens(
            request.tokens, request.title, request.body, origin="api"
        )
    except EnqueueError as exc:
        raise refused(exc) from None
    return TokensResponse(notification_id=queued.notification.id)


@router.post(
    "/notifications/topic",
    summary="Push to an FCM topic (the FCM backend's)",
    responses=errors_for(503),
)
async def post_topic(request: TopicRequest, ctx: Ctx) -> TopicResponse:
    try:
        await _push(ctx).send_to_topic(request.topic, request.title, request.body, origin="api")
    except EnqueueError as exc:
        raise refused(exc) from None
    return TopicResponse()


# -- canonical --------------------------------------------------------------------------------


@router.post(
    "/api/v1/notifications",
    status_code=201,
    summary="Send a push notification",
    responses={
        200: {"model": NotificationDetail, "description": "Sent before under this idempotency key"},
        **errors_for((404, "No such subscriber"), 409, 503),
    },
)
async def create_notification(
    request: NotificationCreate, response: Response, ctx: Ctx
) -> NotificationDetail:
    push = _push(ctx)
    try:
        if request.tokens is not None:
            queued = await push.send_to_tokens(
                request.tokens,
                request.title,
                request.body,
                request.data,
                kind=request.kind,
                idempotency_key=request.idempotency_key,
                origin="api",
            )
        elif request.topic is not None:
            queued = await push.send_to_topic(
                request.topic,
                request.title,
                request.body,
                request.data,
                kind=request.kind,
                idempotency_key=request.idempotency_key,
                origin="api",
            )
        else:
            assert request.subscriber_id is not None
            found = await push.notify_subscriber(
                request.subscriber_id,
                request.title,
                request.body,
                request.data,
                kind=request.kind,
                idempotency_key=request.idempotency_key,
                origin="api",
            )
            if found is None:
                raise ApiError(
                    409,
                    f"subscriber_id: subscriber {request.subscriber_id} gets no push (push "
                    "channel off, opted out, or no valid device token)",
                )
            queued = found
    except EnqueueError as exc:
        raise refused(exc) from None
    if not queued.created:
        response.status_code = 200
    return _detail(queued)


@router.get("/api/v1/notifications", summary="List push notifications, newest first")
async def get_notifications(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="id to page back from")] = None,
) -> NotificationPage:
    rows = await ctx.db.execute(
        lambda conn: list_notifications(conn, limit=limit, before_id=before)
    )
    next_before = rows[-1].notification.id if len(rows) == limit else None
    return NotificationPage(
        notifications=[NotificationOut.summary(row) for row in rows], next_before=next_before
    )


@router.get(
    "/api/v1/notifications/{notification_id}",
    summary="One push notification with each token's outcome",
    responses=errors_for(404),
)
async def get_one_notification(notification_id: RowId, ctx: Ctx) -> NotificationDetail:
    def read(conn: Any) -> tuple[Notification | None, list[Message], dict[str, int]]:
        counts = notification_counts(conn, [notification_id]).get(notification_id, {})
        return (
            get_notification(conn, notification_id),
            notification_messages(conn, notification_id),
            counts,
        )

    notification, messages, counts = await ctx.db.execute(read)
    if notification is None:
        raise ApiError(404, f"no notification {notification_id}")
    return NotificationDetail(
        notification=NotificationOut.of(notification, counts),
        outcomes=[OutcomeOut.of(m) for m in messages],
    )


@router.post(
    "/api/v1/push-tokens",
    status_code=201,
    summary="Register a device's push token",
    responses={200: {"model": PushTokenSaved, "description": "Registered before: refreshed"}},
)
async def register_token(request: PushTokenCreate, response: Response, ctx: Ctx) -> PushTokenSaved:
    try:
        row, created = await _push(ctx).register(
            request.token, subscriber_id=request.subscriber_id, platform=request.platform
        )
    except EnqueueError as exc:
        raise refused(exc) from None
    if not created:
        response.status_code = 200
    return PushTokenSaved(created=created, token=PushTokenOut.of(row))


@router.get("/api/v1/push-tokens", summary="List push tokens, newest first")
async def get_tokens(
    ctx: Ctx,
    subscriber_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    valid: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> PushTokenPage:
    rows = await ctx.db.execute(
        lambda conn: list_tokens(
            conn, subscriber_id=subscriber_id, valid=valid, limit=limit, before_id=before
        )
    )
    next_before = rows[-1].id if len(rows) == limit else None
    return PushTokenPage(tokens=[PushTokenOut.of(r) for r in rows], next_before=next_before)


@router.get("/api/v1/push-tokens/{token_id}", summary="One push token", responses=errors_for(404))
async def get_one_token(token_id: RowId, ctx: Ctx) -> PushTokenSaved:
    row = await ctx.db.execute(lambda conn: get_token(conn, token_id))
    if row is None:
        raise ApiError(404, f"no push token {token_id}")
    return PushTokenSaved(created=False, token=PushTokenOut.of(row))


@router.delete(
    "/api/v1/push-tokens/{token_id}",
    summary="Forget a push token (its queued pushes cancelled)",
    responses=errors_for(404),
)
async def delete_token(token_id: RowId, ctx: Ctx) -> PushTokenDeleted:
    try:
        row, cancelled = await _push(ctx).delete(token_id)
    except LookupError:
        raise ApiError(404, f"no push token {token_id}") from None
    return PushTokenDeleted(token=PushTokenOut.of(row), cancelled_message_ids=list(cancelled))
