"""Subscribers over HTTP: /api/v1/subscribers and the TGTG alerts backend's
POST /submit_subscriber_info and GET /process_subscriber/{subscriber_id}."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.api.tgtg import AccountOut, tgtg_failure
from daemon.runtime.clock import utc_iso
from providers.tgtg.errors import TgtgError
from storage import subscribers as rows
from storage.models import Subscriber, TgtgAccount
from storage.phones import InvalidPhone, to_e164
from storage.tgtg import account_of

log = logging.getLogger(__name__)
router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]
# Ids fit SQLite's INTEGER: a larger number is a 400 naming the field, not an OverflowError.
SubscriberId = Annotated[int, PathParam(ge=1, le=2**62)]
ChannelName = Literal["sms", "push", "email"]
MAX_WATCH_ITEMS = 200
# A TGTG item id is a digit string; its share link (what the app's "share" gives) ends in it.
ITEM_ID = re.compile(r"(?:https?://share\.toogoodtogo\.com/item/)?([0-9]{1,20})/?")


def item_ids(values: list[str]) -> list[str]:
    """Item ids (or share links) as ids, in order, once each; ValueError names the bad one."""
    ids: list[str] = []
    for n, value in enumerate(values):
        match = ITEM_ID.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                f"item {n + 1} ({value[:60]!r}) is not a TGTG item id: give its digits or its "
                "share.toogoodtogo.com/item/... link"
            )
        ids.append(match.group(1))
    return list(dict.fromkeys(ids))


class SubscriberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=120)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=40)
    channels: list[ChannelName] | None = None
    opted_out: bool | None = None
    verified: bool | None = None
    watch_items: list[str] | None = Field(
        default=None,
        max_length=MAX_WATCH_ITEMS,
        description="TGTG item ids (or share links) to alert for; empty: every favourite",
    )
    price_drop_alerts: bool | None = Field(
        default=None, description="Also alert when an available item's price goes down"
    )
    reserve_by_reply: bool | None = Field(
        default=None,
        description='Alert SMS offer "reply R" to reserve one bag on their own TGTG account '
        "(with [tgtg] reserve_by_reply on)",
    )

    @field_validator("watch_items")
    @classmethod
    def _item_ids(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else item_ids(value)


class SubscriberOut(BaseModel):
    id: int
    name: str | None
    email: str | None
    phone: str | None
    channels: list[str]
    opted_out: bool
    opted_out_at: datetime | None
    verified: bool
    verified_at: datetime | None
    watch_items: list[str]
    price_drop_alerts: bool
    reserve_by_reply: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Subscriber) -> SubscriberOut:
        return cls(
            id=s.id,
            name=s.name,
            email=s.email,
            phone=s.phone,
            channels=list(s.channels),
            opted_out=s.opted_out_at is not None,
            opted_out_at=s.opted_out_at,
            verified=s.verified_at is not None,
            verified_at=s.verified_at,
            watch_items=list(s.watch_items),
            price_drop_alerts=s.price_drop_alerts,
            reserve_by_reply=s.reserve_by_reply,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class SubscriberDetail(BaseModel):
    success: bool = True
    subscriber: SubscriberOut
    tgtg: AccountOut | None = None


class SubscriberPage(BaseModel):
    success: bool = True
    subscribers: list[SubscriberOut]
    next_after: int | None


class SubmitInfo(BaseModel):
    """The TGTG alerts backend's request."""

    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    # The shipped front end (src/Signup.js) sends `phoneNumber`, older ones `phone_number`;
    # both as 10-11 US digits without "+", which `[sms] default_region` (e.g. "US") completes.
    phone_number: str = Field(
        min_length=1,
        max_length=40,
        validation_alias=AliasChoices("phone_number", "phoneNumber"),
        description="E.164, or national digits with [sms] default_region set",
    )


# The front end reads a `status` field of the body (not the HTTP status): 201 means done.
SEED_DONE: Final = 201
SEED_FAILED: Final = 500


class SubmitInfoOut(BaseModel):
    success: bool = True
    # The TGTG alerts backend's keys: its front end goes on to /process_subscriber/{id}
    # only when `status` is 201, with this id.
    subscriber_id: int
    status: Literal[201] = SEED_DONE
    created: bool
    subscriber: SubscriberOut
    tgtg: AccountOut | None
    message: str


LoginState = Literal["none", "pending", "active", "blocked", "error", "disabled"]


class ProcessSubscriberOut(BaseModel):
    """The TGTG login's state, and nothing else about the subscriber: the route is public and
    its ids are counted from 1, so e-mail, phone and TGTG error texts stay out."""

    success: bool = Field(description="true once the TGTG login is done")
    # The TGTG alerts backend's keys: its front end shows `message` unless `status` is 201.
    status: Literal[201, 500]
    message: str
    state: LoginState = Field(description='"none": no login started (or no such subscriber)')


def _phone(ctx: ApiContext, text: str, field: str = "phone") -> str:
    try:
        return to_e164(text, ctx.settings.sms.default_region)
    except InvalidPhone as exc:
        raise ApiError(
            400, f"{field}: {exc}", errors=[{"field": f"body.{field}", "rule": str(exc)}]
        ) from None


def _values(ctx: ApiContext, body: SubscriberIn, now: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("name", "email"):
        if name in body.model_fields_set:
            values[name] = getattr(body, name)
    if body.channels is not None:
        values["channels"] = body.channels
    if "phone" in body.model_fields_set:
        values["phone"] = _phone(ctx, body.phone) if body.phone else None
    if body.opted_out is not None:
        values["opted_out_at"] = now if body.opted_out else None
    if body.verified is not None:
        values["verified_at"] = now if body.verified else None
    if body.watch_items is not None:
        values["watch_items"] = body.watch_items
    if body.price_drop_alerts is not None:
        values["price_drop_alerts"] = body.price_drop_alerts
    if body.reserve_by_reply is not None:
        values["reserve_by_reply"] = body.reserve_by_reply
    return values


async def _detail(ctx: ApiContext, subscriber: Subscriber) -> SubscriberDetail:
    account = await ctx.db.execute(lambda c: account_of(c, subscriber.id))
    return SubscriberDetail(
        subscriber=SubscriberOut.of(subscriber), tgtg=AccountOut.of(account) if account else None
    )


@router.get("/api/v1/subscribers", summary="List subscribers by id")
async def list_subscribers(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[int, Query(ge=0, le=2**62, description="id to page on from")] = 0,
    q: Annotated[
        str,
        Query(
            max_length=100,
            description="only subscribers whose name, e-mail or phone holds every word of it",
        ),
    ] = "",
) -> SubscriberPage:
    found = await ctx.db.execute(lambda c: rows.list_all(c, limit=limit, after_id=after, query=q))
    return SubscriberPage(
        subscribers=[SubscriberOut.of(s) for s in found],
        next_after=found[-1].id if len(found) == limit else None,
    )


@router.post(
    "/api/v1/subscribers",
    status_code=201,
    summary="Create a subscriber",
    responses=errors_for((409, "Another subscriber has this phone")),
)
async def create_subscriber(body: SubscriberIn, ctx: Ctx) -> SubscriberDetail:
    now = utc_iso(ctx.clock.now())
    values = _values(ctx, body, now)
    try:
        created = await ctx.db.write(lambda c: rows.create(c, values, now))
    except rows.DuplicatePhone as exc:
        raise ApiError(409, str(exc)) from None
    return await _detail(ctx, created)


@router.get(
    "/api/v1/subscribers/{subscriber_id}",
    summary="One subscriber and TGTG state",
    responses=errors_for(404),
)
async def get_subscriber(subscriber_id: SubscriberId, ctx: Ctx) -> SubscriberDetail:
    found = await ctx.db.execute(lambda c: rows.get(c, subscriber_id))
    if found is None:
        raise ApiError(404, f"no subscriber {subscriber_id}")
    return await _detail(ctx, found)


@router.patch(
    "/api/v1/subscribers/{subscriber_id}",
    summary="Change a subscriber",
    responses=errors_for(404, (409, "Another subscriber has this phone")),
)
async def update_subscriber(
    subscriber_id: SubscriberId, body: SubscriberIn, ctx: Ctx
) -> SubscriberDetail:
    now = utc_iso(ctx.clock.now())
    values = _values(ctx, body, now)
    try:
        updated = await ctx.db.write(lambda c: rows.update(c, subscriber_id, values, now))
    except rows.DuplicatePhone as exc:
        raise ApiError(409, str(exc)) from None
    if updated is None:
        raise ApiError(404, f"no subscriber {subscriber_id}")
    return await _detail(ctx, updated)


@router.delete(
    "/api/v1/subscribers/{subscriber_id}",
    status_code=204,
    summary="Delete a subscriber",
    responses=errors_for(404),
)
async def delete_subscriber(subscriber_id: SubscriberId, ctx: Ctx) -> Response:
    def delete(conn: Any) -> tuple[bool, TgtgAccount | None]:
        account = account_of(conn, subscriber_id)  # deleted with the subscriber (cascade)
        return rows.delete(conn, subscriber_id), account

    deleted, account = await ctx.db.write(delete)
    if not deleted:
        raise ApiError(404, f"no subscriber {subscriber_id}")
    if account is not None and ctx.tgtg is not None:
        await ctx.tgtg.account_removed(account)
    return Response(status_code=204)


@router.post(
    "/submit_subscriber_info",
    summary="Subscribe (the TGTG alerts backend's endpoint)",
    responses=errors_for((409, "Another subscriber has this phone")),
)
async def submit_subscriber_info(body: SubmitInfo, ctx: Ctx) -> SubmitInfoOut:
    """Create or update the subscriber with this phone (or e-mail), then start the TGTG login
    for the e-mail: TGTG mails a PIN, which goes to POST /api/v1/subscribers/{id}/tgtg/pin."""
    phone = _phone(ctx, body.phone_number, "phone_number")
    now = utc_iso(ctx.clock.now())

    def upsert(conn: Any) -> tuple[Subscriber, bool]:
        found = rows.by_phone(conn, phone) or rows.by_email(conn, body.email)
        if found is None:
            return rows.create(conn, {"email": body.email, "phone": phone}, now), True
        updated = rows.update(conn, found.id, {"email": body.email, "phone": phone}, now)
        assert updated is not None
        return updated, False

    try:
        subscriber, created = await ctx.db.write(upsert)
    except rows.DuplicatePhone as exc:
        raise ApiError(409, str(exc)) from None
    account = None
    message = "saved; the TGTG watcher is not running"
    if ctx.tgtg is not None:
        try:
            account = AccountOut.of(await ctx.tgtg.start_login(subscriber.id, body.email))
            message = "saved; enter the PIN TGTG sent to the e-mail address"
        except TgtgError as exc:
            error = tgtg_failure(exc)
            message = f"saved, but the TGTG login could not start: {error.message}"
    return SubmitInfoOut(
        subscriber_id=subscriber.id,
        created=created,
        subscriber=SubscriberOut.of(subscriber),
        tgtg=account,
        message=message,
    )


# What the front end shows for each state (it shows `message` as an error unless 201).
_LOGIN_MESSAGES: dict[LoginState, str] = {
    "none": "no TGTG login was started for this subscriber; submit the form again",
    "pending": "waiting for the TGTG login: open the e-mail TGTG sent and click its link "
    "(or give its PIN to the shop)",
    "active": "Subscriber information added successfully",
    "blocked": "TGTG is refusing requests from the shop for now; the login goes on later",
    "error": "the TGTG login failed; submit the form again",
    "disabled": "alerts for this subscriber are switched off",
}


@router.get(
    "/process_subscriber/{subscriber_id}",
    summary="The TGTG login's state (the TGTG alerts backend's endpoint)",
)
async def process_subscriber(subscriber_id: SubscriberId, ctx: Ctx) -> ProcessSubscriberOut:
    """The state of the login /submit_subscriber_info started, read from the database.

    The old backend ran the TGTG login inside this request (blocking until the link in the
    e-mail was clicked); here /submit_subscriber_info starts it and the watcher finishes it,
    so this only reads: a public route must not let a stranger start TGTG calls or hold a
    request open. Always HTTP 200, as the old backend answered, and the same answer for an
    unknown id as for a subscriber with no login, so it does not tell which ids exist.
    """
    account = await ctx.db.execute(lambda c: account_of(c, subscriber_id))
    state: LoginState = "none" if account is None else account.state
    done = state == "active"
    return ProcessSubscriberOut(
        success=done,
        status=SEED_DONE if done else SEED_FAILED,
        message=_LOGIN_MESSAGES[state],
        state=state,
    )
