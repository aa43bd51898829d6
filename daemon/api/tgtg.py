"""TGTG over HTTP: a subscriber's login (start, PIN), account state, and watched favourites."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.services.tgtg.watcher import LoginStateError, Watcher
from providers.tgtg.errors import TgtgBlocked, TgtgError, TgtgLoginError, TgtgRateLimited
from storage import subscribers as subscriber_rows
from storage.models import Favorite, TgtgAccount
from storage.tgtg import account_of, accounts, favorites_of

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]
# Ids fit SQLite's INTEGER: a larger number is a 400 naming the field, not an OverflowError.
SubscriberId = Annotated[int, PathParam(ge=1, le=2**62)]


class AccountOut(BaseModel):
    """An account's state; never its tokens or cookie."""

    id: int
    subscriber_id: int
    email: str
    state: str
    state_detail: str | None
    logged_in: bool
    last_poll_at: datetime | None
    last_success_at: datetime | None
    backoff_until: datetime | None
    failures: int

    @classmethod
    def of(cls, a: TgtgAccount) -> AccountOut:
        return cls(
            id=a.id,
            subscriber_id=a.subscriber_id,
            email=a.email,
            state=a.state,
            state_detail=a.state_detail,
            logged_in=bool(a.refresh_token),
            last_poll_at=a.last_poll_at,
            last_success_at=a.last_success_at,
            backoff_until=a.backoff_until,
            failures=a.failures,
        )


class FavoriteOut(BaseModel):
    subscriber_id: int
    item_id: str
    store_name: str | None
    display_name: str | None
    items_available: int
    pickup_start: datetime | None
    pickup_end: datetime | None
    price_minor: int | None
    currency: str | None
    last_alerted_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, f: Favorite) -> FavoriteOut:
        return cls(**{name: getattr(f, name) for name in cls.model_fields})


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: str = Field(pattern=r"^[0-9]{4,8}$")


class AccountDetail(BaseModel):
    success: bool = True
    account: AccountOut
    favorites: list[FavoriteOut] = []


class AccountList(BaseModel):
    success: bool = True
    accounts: list[AccountOut]


class FavoriteList(BaseModel):
    success: bool = True
    favorites: list[FavoriteOut]


TGTG_FAILED = (502, "TGTG answered with an error")


def tgtg_failure(exc: TgtgError) -> ApiError:
    """A TGTG failure as the API's error."""
    if isinstance(exc, TgtgLoginError):
        return ApiError(400, f"TGTG refused the login: {exc.message}")
    if isinstance(exc, TgtgBlocked):
        return ApiError(503, "TGTG is blocking requests from here (captcha); try later")
    if isinstance(exc, TgtgRateLimited):
        wait = str(int(exc.retry_after or 60))
        return ApiError(503, f"TGTG is busy: {exc.message}", headers={"Retry-After": wait})
    return ApiError(502, f"TGTG answered {exc.status}: {exc.message}")


def _watcher(ctx: ApiContext) -> Watcher:
    if ctx.tgtg is None:
        raise ApiError(503, "the TGTG watcher is not running")
    return ctx.tgtg


@router.post(
    "/api/v1/subscribers/{subscriber_id}/tgtg/login",
    status_code=202,
    summary="Start the TGTG e-mail login (TGTG mails a PIN and a link)",
    responses=errors_for(404, TGTG_FAILED, 503),
)
async def start_login(subscriber_id: SubscriberId, body: LoginIn, ctx: Ctx) -> AccountDetail:
    watcher = _watcher(ctx)
    subscriber = await ctx.db.execute(lambda c: subscriber_rows.get(c, subscriber_id))
    if subscriber is None:
        raise ApiError(404, f"no subscriber {subscriber_id}")
    email = body.email or subscriber.email
    if not email:
        raise ApiError(400, "email: the subscriber has none; give one")
    try:
        account = await watcher.start_login(subscriber_id, email)
    except TgtgError as exc:
        raise tgtg_failure(exc) from None
    return AccountDetail(account=AccountOut.of(account))


@router.post(
    "/api/v1/subscribers/{subscriber_id}/tgtg/pin",
    summary="Finish the login",
    responses=errors_for((409, "No TGTG login waits for a PIN"), TGTG_FAILED, 503),
)
async def submit_pin(subscriber_id: SubscriberId, body: PinIn, ctx: Ctx) -> AccountDetail:
    watcher = _watcher(ctx)
    try:
        account = await watcher.submit_pin(subscriber_id, body.pin)
    except LoginStateError as exc:
        raise ApiError(409, str(exc)) from None
    except TgtgError as exc:
        raise tgtg_failure(exc) from None
    return AccountDetail(account=AccountOut.of(account))


@router.get(
    "/api/v1/subscribers/{subscriber_id}/tgtg",
    summary="TGTG state and favourites",
    responses=errors_for((404, "No such subscriber, or no TGTG login")),
)
async def get_account(subscriber_id: SubscriberId, ctx: Ctx) -> AccountDetail:
    account = await ctx.db.execute(lambda c: account_of(c, subscriber_id))
    if account is None:
        raise ApiError(404, f"subscriber {subscriber_id} has no TGTG login")
    favorites = await ctx.db.execute(lambda c: favorites_of(c, subscriber_id))
    return AccountDetail(
        account=AccountOut.of(account), favorites=[FavoriteOut.of(f) for f in favorites]
    )


@router.get("/api/v1/tgtg/accounts", summary="Every TGTG account and its state")
async def list_accounts(ctx: Ctx) -> AccountList:
    found = await ctx.db.execute(accounts)
    return AccountList(accounts=[AccountOut.of(a) for a in found])


@router.get("/api/v1/tgtg/favorites", summary="Watched items with their last counts")
async def list_favorites(
    ctx: Ctx, subscriber_id: Annotated[int | None, Query(ge=1, le=2**62)] = None
) -> FavoriteList:
    found = await ctx.db.execute(lambda c: favorites_of(c, subscriber_id))
    return FavoriteList(favorites=[FavoriteOut.of(f) for f in found])
