"""Twilio's webhooks: inbound SMS at /sms (the TGTG backend's path) and status callbacks."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daemon.api.context import ApiContext, get_ctx
from daemon.api.error_docs import errors_for
from daemon.api.errors import ApiError
from daemon.services.inbound import InboundService, Received
from daemon.services.receipts import MessageReceipt, Receipts, build_receipts
from providers.twilio.webhook import (
    SIGNATURE_HEADER,
    InboundSms,
    StatusCallback,
    is_valid_signature,
    public_request_url,
    twiml,
)

logger = logging.getLogger(__name__)

SMS_PATH = "/sms"
STATUS_PATH = "/twilio/status"
FORM_TYPE = "application/x-www-form-urlencoded"
NOT_CONFIGURED_MESSAGE = (
    "Twilio webhooks are refused: [twilio] auth_token is not set, so their signatures "
    "cannot be checked"
)
BAD_SIGNATURE_MESSAGE = "invalid or missing X-Twilio-Signature"

# These routes check Twilio's signature themselves instead of the bearer token.

router = APIRouter(tags=["webhooks"])

Ctx = Annotated[ApiContext, Depends(get_ctx)]
FormPairs = list[tuple[str, str]]
# Read raw (the signature covers every pair as sent), so FastAPI cannot see it: said here.
TWILIO_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The form Twilio posts, signed in X-Twilio-Signature",
        "content": {
            FORM_TYPE: {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}
        },
    }
}
TWILIO_ERRORS = errors_for(
    (403, "Not signed with [twilio] auth_token (or it is not set)"),
    (415, f"The body is not {FORM_TYPE}, as Twilio posts"),
)


def inbound_service(ctx: ApiContext) -> InboundService:
    """The daemon's one inbound entry; an app built without a daemon (tests) makes its own once."""
    if ctx.inbound is None:
        ctx.inbound = InboundService(
            ctx.db,
            ctx.clock,
            ctx.settings.sms.help_text,
            default_region=ctx.settings.sms.default_region,
            outbox=ctx.outbox,
        )
    return ctx.inbound


def receipts_service(ctx: ApiContext) -> Receipts:
    """The daemon's one receipts entry; an app built without a daemon (tests) makes its own once."""
    if ctx.receipts is None:
        ctx.receipts = build_receipts(ctx.db, ctx.clock, ctx.settings)
    return ctx.receipts


async def signed_form(request: Request, ctx: ApiContext) -> FormPairs:
    """Every posted field, once the request is proven to come from Twilio; else ApiError 403.

    Nothing is read into the database before this passes, so a forged request stores nothing.
    """
    auth_token = ctx.settings.twilio.auth_token.get_secret_value()
    if not auth_token:
        # Never accept unsigned webhooks: anyone could opt numbers out or fake receipts.
        raise ApiError(403, NOT_CONFIGURED_MESSAGE)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise ApiError(415, f"expected a {FORM_TYPE} body, as Twilio posts")
    # Parsed with the standard library: Starlette's request.form() needs python-multipart, a
    # dependency for a body shape (multipart) Twilio never sends. Blank values are kept, and
    # repeated names stay separate pairs, because the signature covers all of them.
    body = (await request.body()).decode("utf-8", errors="replace")
    pairs = parse_qsl(body, keep_blank_values=True)
    url = public_request_url(ctx.settings.api.public_url or None, str(request.url))
    if not is_valid_signature(auth_token, url, pairs, request.headers.get(SIGNATURE_HEADER)):
        client = request.client.host if request.client else "?"
        logger.warning(
            "refused %s from %s: %s (checked against %s)",
            request.url.path,
            client,
            BAD_SIGNATURE_MESSAGE,
            url,
        )
        raise ApiError(403, BAD_SIGNATURE_MESSAGE)
    return pairs


@router.post(
    SMS_PATH,
    summary="Twilio's incoming-SMS webhook: records the message, applies STOP/START/HELP",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "TwiML"}, **TWILIO_ERRORS},
    openapi_extra=TWILIO_FORM,
)
async def incoming_sms(request: Request, ctx: Ctx) -> Response:
    pairs = await signed_form(request, ctx)
    try:
        sms = InboundSms.from_form(pairs)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    # Twilio carries the reply in the TwiML below and confirms STOP/START itself (docs/twilio.md,
    # "Incoming SMS webhook" and "Opt-out keywords"): the inbound entry writes the reply down
    # before this answer leaves, so if that write fails Twilio gets a 500 and no reply goes out
    # unrecorded.
    result = await inbound_service(ctx).receive(
        Received(
            source="twilio",
            sender=sms.from_number,
            recipient=sms.to_number or None,
            body=sms.body,
            provider_message_id=sms.message_sid,
            answers_inline=True,
        )
    )
    return Response(twiml(result.reply), media_type="application/xml")


@router.post(
    STATUS_PATH,
    summary="Twilio's status callback: moves a sent message to delivered, undelivered or failed",
    responses=TWILIO_ERRORS,
    openapi_extra=TWILIO_FORM,
)
async def status_callback(request: Request, ctx: Ctx) -> JSONResponse:
    pairs = await signed_form(request, ctx)
    try:
        callback = StatusCallback.from_form(pairs)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    # 200 whatever it matched: an error would only make Twilio retry a callback we cannot
    # use (a message from before this database, or sent by another program on the account).
    await receipts_service(ctx).apply(
        MessageReceipt(
            provider="twilio",
            provider_message_id=callback.message_sid,
            status=callback.status,
            error_code=callback.error_code,
        )
    )
    return JSONResponse({"success": True})
