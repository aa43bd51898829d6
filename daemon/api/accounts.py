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

from daemon.api.auth import PRINCIPAL_API_TOKEN
from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.services.backoffice.accounts import AccountError
from daemon.services.backoffice.roles import API_TOKEN_ACTOR, Actor, Permission, can
from daemon.services.backoffice.service import BackOffice
from storage.models import Account, Role

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(get_ctx)]

SIGNUP_PATHS = ("/signup", "/store/signup", "/api/users/register", "/register")
LOGIN_PATHS = ("/login", "/store/login", "/api/users/login")

# No spaces or control characters: a login name is typed at a till and in URLs.
USERNAME_PATTERN = r"^[^\s\x00-\x1f\x7f]{3,64}$"


class _Body(BaseModel):
    # The old backends' clients may send more than these; they ignored the rest, so do we.
    model_config = ConfigDict(extra="ignore")


class SignupRequest(_Body):
    """shopbell's names, and the supermarket backend's capitalised keys as aliases."""

    username: str = Field(
        pattern=USERNAME_PATTERN,
        description="3-64 characters, no spaces; default: the email address",
    )
    password: str = Field(
        min_length=1, max_length=1024, validation_alias=AliasChoices("password", "Password")
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
        validation_alias=AliasChoices("email", "Email_ID"),
    )
    phone: str | None = Field(
        default=None, max_length=40, validation_alias=AliasChoices("phone", "Contact_Number")
    )
    full_name: str | None = Field(
        default=None, max_length=200, validation_alias=AliasChoices("full_name", "name")
    )
    role: Role | None = Field(
        default=None,
        validation_alias=AliasChoices("role", "designation", "Designation"),
        description="customer unless a staff login (or the API token) asks for more",
    )

    @model_validator(mode="before")
    @classmethod
    def _supermarket_keys(cls, data: Any) -> Any:
        """Fill what the supermarket backend's sign-up body (processor.py) leaves implicit.

        Its Postman requests send First_Name and Last_Name, no username, a designation
        typed as people write it ("Manager") and sometimes the phone as a JSON number.
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if not any(key in data for key in ("full_name", "name")):
            parts = [data.get("First_Name"), data.get("Last_Name")]
            words = [str(part).strip() for part in parts if isinstance(part, str) and part.strip()]
            if words:
                data["full_name"] = " ".join(words)
        # The rule for a body without a username: the email address as sent is the login
        # name (it is unique, as emails are, and it is what these clients log in with).
        if "username" not in data:
            email = data.get("email", data.get("Email_ID"))
            if isinstance(email, str) and email.strip():
                data["username"] = email.strip()
        for key in ("role", "designation", "Designation"):
            if isinstance(data.get(key), str):
                data[key] = data[key].strip().lower()
        for key in ("phone", "Contact_Number"):
            if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
                data[key] = str(data[key])
        return data


class LoginRequest(_Body):
    username: str | None = Field(default=None, min_length=1, max_length=254)
    # Email_ID and Password: the supermarket backend's login body (app.py).
    email: str | None = Field(
        default=None,
        min_length=1,
        max_length=254,
        validation_alias=AliasChoices("email", "Email_ID"),
    )
    password: str = Field(
        min_length=1, max_length=1024, validation_alias=AliasChoices("password", "Password")
    )

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
    # The old backends' clients read these at the top level: the supermarket's store/login
    # answered user_id, the ElectroPorts front end (Login.jsx) stores role and refresh_token.
    role: str = Field(description="the same as user.role")
    user_id: int = Field(description="the same as user.id")
    refresh_token: str = Field(
        description="the access token again: there are no refresh tokens; log in anew "
        "when it expires (ElectroPorts' front end only stores this one)"
    )

    @model_validator(mode="before")
    @classmethod
    def _top_level_copies(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        user = data.get("user")
        if isinstance(user, AccountOut):
            data = {"role": user.role, "user_id": user.id, **data}
        if "access_token" in data:
            data = {"refresh_token": data["access_token"], **data}
        return data


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

SIGNUP_ERRORS = errors_for(
    (401, "The login token sent along is no longer valid"),
    (403, "This caller may not create an account of that role"),
    (409, "The username, e-mail or phone is already taken"),
    503,
)
LOGIN_ERRORS = errors_for(
    (401, "Wrong login or password, or this account may not log in here"),
    (429, "Too many failed logins, or logins from this address; Retry-After says when"),
    503,
)


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


@router.post(
    "/signup",
    status_code=201,
    summary="Customer sign-up (supermarket backend)",
    responses=SIGNUP_ERRORS,
)
async def signup(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    return await _signup(request, ctx, body, "customer")


@router.post(
    "/login",
    summary="Log in (supermarket backend): a JWT",
    responses=LOGIN_ERRORS,
)
async def login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    return await _login(ctx, body, staff_only=False)


@router.post(
    "/store/signup",
    status_code=201,
    summary="Staff sign-up: an owner's or manager's token",
    responses=SIGNUP_ERRORS,
)
async def store_signup(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    return await _signup(request, ctx, body, "cashier")


@router.post(
    "/store/login",
    summary="Staff login (supermarket backend): a JWT",
    responses=LOGIN_ERRORS,
)
async def store_login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    return await _login(ctx, body, staff_only=True)


@router.post(
    "/api/users/register",
    status_code=201,
    summary="Register (shop API)",
    responses=SIGNUP_ERRORS,
)
async def users_register(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    return await _signup(request, ctx, body, "customer")


@router.post(
    "/api/users/login",
    summary="Log in (shop API): a JWT",
    responses=LOGIN_ERRORS,
)
async def users_login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    return await _login(ctx, body, staff_only=False)


@router.post(
    "/api/v1/accounts",
    status_code=201,
    summary="Create an account (any role allowed)",
    responses=SIGNUP_ERRORS,
)
async def create_account(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    return await _signup(request, ctx, body, "customer")


@router.post(
    "/api/v1/accounts/login",
    summary="Log in: a JWT",
    responses=LOGIN_ERRORS,
)
async def account_login(body: LoginRequest, ctx: Ctx) -> LoginResponse:
    return await _login(ctx, body, staff_only=False)


@router.get(
    "/api/v1/accounts",
    summary="List accounts (managers and owners)",
    responses=errors_for(403),
)
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


@router.get(
    "/api/v1/accounts/me",
    summary="The logged-in account",
    responses=errors_for((404, "The API token is not an account, or the account is gone")),
)
async def me(request: Request, ctx: Ctx) -> AccountResponse:
    return AccountResponse(account=AccountOut.of(await _own_account(request, ctx)))


async def _own_account(request: Request, ctx: ApiContext) -> Account:
    """The caller's own account; 404 for the API token, which is none."""
    actor = await require_actor(request, ctx)
    if actor.account_id is None:
        raise ApiError(404, "the API token is not an account")
    account = await backoffice(ctx).accounts.get(actor.account_id)
    if account is None:
        raise ApiError(404, "no such account")
    return account


# -- the ElectroPorts front end's own paths ------------------------------------------------
# Its shipped code calls these, not the README's /api/users/...: SignUp.jsx posts /register,
# Profile.jsx reads /user.


@router.post(
    "/register",
    status_code=201,
    summary="Register (ElectroPorts front end)",
    responses=SIGNUP_ERRORS,
)
async def register(request: Request, body: SignupRequest, ctx: Ctx) -> SignupResponse:
    # Its form also sends confirmPassword; the page compares the two itself, so it is ignored.
    return await _signup(request, ctx, body, "customer")


class UserProfile(BaseModel):
    """The login's own account in the ElectroPorts backend's shape, plus shopbell's fields."""

    success: bool = True
    id: int
    username: str
    email: str | None
    role: str
    # shopbell keeps no pictures; the keys are there because the page reads them.
    image_url: None = None
    imageUrl: None = None  # the name Profile.jsx reads
    name: str = Field(description="the full name, or the username when there is none")
    full_name: str | None
    phone: str | None
    created_at: str


@router.get(
    "/user",
    summary="The logged-in account (ElectroPorts front end)",
    responses=errors_for((404, "The API token is not an account, or the account is gone")),
)
async def user_profile(request: Request, ctx: Ctx) -> UserProfile:
    account = await _own_account(request, ctx)
    return UserProfile(
        id=account.id,
        username=account.username,
        email=account.email,
        role=account.role,
        name=account.full_name or account.username,
        full_name=account.full_name,
        phone=account.phone,
        created_at=account.created_at.isoformat(),
    )
