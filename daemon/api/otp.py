"""One-time codes over HTTP: the OTP backend's send-otp, verify-otp and otp-status.

Public (daemon/api/access.py): the OTP backend's browser front end (QuickCart) posts straight
from the page, with no token. What keeps them safe to leave open: `[limits] otp_sends` per
client address, `[otp]`'s per-phone resend wait and window, its calling-code allow-list
against SMS pumping, and a few tries per code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.services.otp.service import OtpError, OtpService

router = APIRouter()

Ctx = Annotated[ApiContext, Depends(get_ctx)]
Purpose = Literal["login", "signup", "verify-phone"]
# QuickCart's client (src/services/smsService.js) sends `phoneNumber`: 10 digits without
# the country code, which `[sms] default_region` (e.g. "IN") completes.
PHONE_ALIASES = AliasChoices("phone", "phoneNumber")
PHONE_HELP = "E.164, e.g. +33612345678, or national digits with [sms] default_region set"


class _Body(BaseModel):
    # The OTP backend's clients may send more than these; it ignored the rest, so do we.
    model_config = ConfigDict(extra="ignore")


class SendOtpRequest(_Body):
    phone: str = Field(
        min_length=1, max_length=40, validation_alias=PHONE_ALIASES, description=PHONE_HELP
    )
    purpose: Purpose = "login"


class VerifyOtpRequest(_Body):
    phone: str = Field(
        min_length=1, max_length=40, validation_alias=PHONE_ALIASES, description=PHONE_HELP
    )
    otp: str = Field(min_length=1, max_length=64, description="the code, as text: 6 digits 0-9")
    purpose: Purpose = "login"

    @field_validator("otp", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            # A number loses its leading zeros: 012345 would arrive as 12345.
            raise ValueError('must be a string of digits, e.g. "012345", not a number')
        return value


class SendOtpResponse(BaseModel):
    success: bool = True
    message: str
    phone: str
    purpose: str
    status: str = Field(description="the SMS's state in the outbox: queued, not delivered yet")
    message_id: int
    expires_in: int
    sends_left: int
    resend_in: int


class VerifyOtpResponse(BaseModel):
    success: bool = True
    message: str
    phone: str
    purpose: str
    verified: bool = True


class SeedOtpStatus(BaseModel):
    """The OTP backend's own answer (QuickCart's `data`): is a code live, for how long."""

    exists: bool
    expires_in: int = Field(description="seconds until the live code expires; 0 when none")


class OtpStatusResponse(BaseModel):
    success: bool = True
    # The OTP backend's keys, kept beside shopbell's so its clients read what they did.
    data: SeedOtpStatus
    phone: str
    purpose: str
    pending: bool
    expires_in: int | None = Field(description="seconds until the pending code expires")
    attempts_left: int | None
    sends_left: int = Field(description="codes this number may still be sent in the window")
    resend_in: int = Field(description="seconds until another code may be sent")
    delivery: str | None = Field(description="the pending code's SMS: queued, sent, failed...")


def _service(ctx: ApiContext) -> OtpService:
    if ctx.otp is None:
        raise ApiError(503, "one-time codes are not available (the daemon is starting)")
    return ctx.otp


def _refused(exc: OtpError, where: str = "body") -> ApiError:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    if not exc.field:
        # The outbox takes nothing now (a spent budget): the reason alone, no field to blame.
        return ApiError(exc.status, exc.rule, headers=headers, **exc.extra)
    return ApiError(
        exc.status,
        f"{exc.field}: {exc.rule}",
        headers=headers,
        errors=[{"field": f"{where}.{exc.field}", "rule": exc.rule}],
        **exc.extra,
    )


@router.post(
    "/api/send-otp",
    summary="Send a one-time code by SMS (the OTP backend's endpoint)",
    responses=errors_for(
        (409, "The number opted out of SMS (replied STOP)"),
        (429, "Codes asked for too often, for this number or from this address"),
        503,
    ),
)
async def send_otp(request: SendOtpRequest, ctx: Ctx) -> SendOtpResponse:
    try:
        sent = await _service(ctx).send(request.phone, request.purpose)
    except OtpError as exc:
        raise _refused(exc) from None
    return SendOtpResponse(
        message=f"a code for {sent.phone} is {sent.status} for sending by SMS; "
        f"it expires in {sent.expires_in}s",
        phone=sent.phone,
        purpose=sent.purpose,
        status=sent.status,
        message_id=sent.message_id,
        expires_in=sent.expires_in,
        sends_left=sent.sends_left,
        resend_in=sent.resend_in,
    )


@router.post("/api/verify-otp", summary="Check a one-time code (once; a few tries at most)")
async def verify_otp(request: VerifyOtpRequest, ctx: Ctx) -> VerifyOtpResponse:
    try:
        verified = await _service(ctx).verify(request.phone, request.otp, request.purpose)
    except OtpError as exc:
        raise _refused(exc) from None
    return VerifyOtpResponse(
        message="code verified", phone=verified.phone, purpose=verified.purpose
    )


@router.get("/api/otp-status/{phone}", summary="Is a code pending for this number (never the code)")
async def otp_status(
    phone: Annotated[str, Path(max_length=40)],
    ctx: Ctx,
    purpose: Annotated[Purpose, Query()] = "login",
) -> OtpStatusResponse:
    try:
        found = await _service(ctx).status(phone, purpose)
    except OtpError as exc:
        where = "path" if exc.field == "phone" else "query"
        raise _refused(exc, where) from None
    return OtpStatusResponse(
        data=SeedOtpStatus(exists=found.pending, expires_in=found.expires_in or 0),
        phone=found.phone,
        purpose=found.purpose,
        pending=found.pending,
        expires_in=found.expires_in,
        attempts_left=found.attempts_left,
        sends_left=found.sends_left,
        resend_in=found.resend_in,
        delivery=found.delivery,
    )
