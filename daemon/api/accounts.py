"""Accounts over HTTP: sign-up and login of both old backends, and /api/v1/accounts.

Sign-up and login are public; a sign-up route still reads an optional bearer token,
because creating staff needs an owner's or a manager's login (or the API token). The
supermarket backend's /signup and /login, its store staff's /store/signup and /store/login,
and the shop API's /api/users/register and /api/users/login all land here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from daemon.api.auth import PRINCIPAL_API_TOKEN, register_login_prefix, register_public_prefix
from daemon.api.context import ApiContext, get_ctx
from daemon.api.errors import ApiError
from daemon.backoffice.accounts import AccountError
from daemon.backoffice.roles import API_TOKEN_ACTOR, Actor, Permission, can
from daemon.backoffice.service import BackOffice
from storage.models import Account, Role

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]

SIGNUP_PATHS = ("/signup", "/store/signup", "/api/users/register")
LOGIN_PATHS = ("/login", "/store/login", "/api/users/login")
for _path in (*SIGNUP_PATHS, *LOGIN_PATHS):
    register_public_prefix(_path, methods=["POST"])
    register_login_prefix(_path)
# POST /api/v1/accounts (create) and /api/v1/accounts/login check who asks themselves.
register_public_prefix("/api/v1/accounts", methods=["POST"])
register_login_prefix("/api/v1/accounts")

# No spaces or control characters: a login name is typed at a till and in URLs.
USERNAME_PATTERN = r"^[^\s\x00-\x1f\x7f]{3,64}$"


class _Body(BaseModel):
    # The old backends' clients may send more than these; they ignored the rest, so do we.
    model_config = ConfigDict(extra="ignore")


class SignupRequest(_Body):
    username: str = Field(pattern=USERNAME_PATTERN, description="3-64 characters, no spaces")
    password: str = Field(min_length=1, max_length=1024)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=40)
    full_name: str | None = Field(
        default=None, max_length=200, validation_alias=AliasChoices("full_name", "name")
    )
    role: Role | None = Field(
        default=None,
        validation_alias=AliasChoices("role", "designation"),
        description="customer unless a staff login (or the API token) asks for more",
    )


class LoginRequest(_Body):
    username: str | None = Field(default=None, min_length=1, max_length=254)
    email: str | None = Field(default=None, min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _one_name(self) -> LoginRequest:
        if not (self.username or self.email):
            raise ValueError("give username or email")
        return self

    @property
    def login(self) -> str:
        return self.username or self.email or ""


class AccountOut(BaseModel):
    id: int
    username: str
    email: str | None
    phone: str | None
    full_name: str | None
    role: str
    created_at: str

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            username=account.username,
            email=account.email,
            phone=account.phone,
            full_name=account.full_name,
            role=account.role,
            created_at=account.created_at.isoformat(),
        )


class SignupResponse(BaseModel):
    success: bool = True
    message: str
    user: AccountOut


class LoginResponse(BaseModel):
    success: bool = True
    message: str = "logged in"
    access_token: str
    token_type: str = "bearer"  # noqa: S105 -- the OAuth token type, not a secret
    expires_in: int = Field(description="seconds the token stays valid")
    user: AccountOut


class AccountsResponse(BaseModel):
    success: bool = True
    accounts: list[AccountOut]


class AccountResponse(BaseModel):
    success: bool = True
    account: AccountOut


# -- helpers the other back-office routes share ------------------------------------------


def backoffice(ctx: ApiContext) -> BackOffice:
    if ctx.backoffice is None:
        raise ApiError(503, "the back office is not available (the daemon is starting)")
    return ctx.backoffice


async def current_actor(request: Request, ctx: ApiContext) -> Actor | None:
    """Who sent the request: the API token, an account from its login token, or nobody."""
    principal = getattr(request.state, "principal", None)
    if principal == PRINCIPAL_API_TOKEN:
        return API_TOKEN_ACTOR
    if isinstance(principal, Actor):
        # The database's view, so a role change or a disabled account applies at once.
        fresh = await backoffice(ctx).accounts.current(principal)
        if fresh is None:
            raise ApiError(401, "this login is no longer valid; log in again")
        return fresh
    return None


async def require_actor(
    request: Request, ctx: ApiContext, permission: Permission | None = None
) -> Actor:
    """The actor, refused with 401 when nobody is logged in and 403 without `permission`."""
    actor = await current_actor(request, ctx)
    if actor is None:
        raise ApiError(401, "log in first: send Authorization: Bearer <token>")
    if permission is not None and not can(actor.role, permission):
        raise ApiError(403, f"a {actor.role} may not do this ({permission})")
    return actor


def account_error(exc: AccountError) -> ApiError:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    extra: dict[str, Any] = {}
    if exc.field:
        extra["errors"] = [{"field": f"body.{exc.field}", "rule": exc.message}]
    return ApiError(exc.status, exc.message, headers=headers, **extra)


# -- routes ------------------------------------------------------------------------------


async def _signup(
    request: Request, ctx: ApiContext, body: SignupRequest, default_role: Role
) -> SignupResponse:
    office = backoffice(ctx)
    by = await current_actor(request, ctx)
    role = body.role or default_role
    try:
        account = await office.accounts.create(
            username=body.username,
            password=body.password,
            role=role,
            by=by,
            email=body.email,
            phone=body.phone,
            full_name=body.full_name,
        )
    except AccountError as exc:
        raise account_error(exc) from None
    return SignupResponse(message=f"{role} account created", user=AccountOut.of(account))


async def _login(ctx: ApiContext, body: LoginRequest, *, staff_only: bool) -> LoginResponse:
    office = backoffice(ctx)
    try:
        result = await office.accounts.login(body.login, body.password, staff_only=staff_only)
    except AccountError as exc:
        raise account_error(exc) from None
    expires_in = int((result.expires_at - office.clock.now()).total_seconds())
    return LoginResponse(
        access_token=result.token, expires_in=expires_in, user=AccountOut.of(result.account)
    )


@router.post("/signup", status_code=201, summary="Customer sign-up (supermarket backend)")
async def signup(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    return await _signup(request, ctx, body, "customer")


@router.post("/login", summary="Log in (supermarket backend): a JWT")
async def login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    return await _login(ctx, body, staff_only=False)


@router.post(
    "/store/signup", status_code=201, summary="Staff sign-up: an owner's or manager's token"
)
async def store_signup(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    return await _signup(request, ctx, body, "cashier")


@router.post("/store/login", summary="Staff login (supermarket backend): a JWT")
async def store_login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    return await _login(ctx, body, staff_only=True)


@router.post("/api/users/register", status_code=201, summary="Register (shop API)")
async def users_register(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    return await _signup(request, ctx, body, "customer")


@router.post("/api/users/login", summary="Log in (shop API): a JWT")
async def users_login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    return await _login(ctx, body, staff_only=False)


@router.post("/api/v1/accounts", status_code=201, summary="Create an account (any role allowed)")
async def create_account(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    return await _signup(request, ctx, body, "customer")


@router.post("/api/v1/accounts/login", summary="Log in: a JWT")
async def account_login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    return await _login(ctx, body, staff_only=False)


@router.get("/api/v1/accounts", summary="List accounts (managers and owners)")
async def list_accounts(
    request: Request,
    ctx: Ctx,
    role: Annotated[Role | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> AccountsResponse:
    await require_actor(request, ctx, "accounts.read")
    found = await backoffice(ctx).accounts.list(role=role, limit=limit, offset=offset)
    return AccountsResponse(accounts=[AccountOut.of(account) for account in found])


@router.get("/api/v1/accounts/me", summary="The logged-in account")
async def me(request: Request, ctx: Ctx) -> AccountResponse:
    actor = await require_actor(request, ctx)
    if actor.account_id is None:
        raise ApiError(404, "the API token is not an account")
    account = await backoffice(ctx).accounts.get(actor.account_id)
    if account is None:
        raise ApiError(404, "no such account")
    return AccountResponse(account=AccountOut.of(account))
