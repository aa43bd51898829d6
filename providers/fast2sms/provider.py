"""Fast2SMS as a Provider: Indian numbers only, its answers mapped to our error classes."""

from __future__ import annotations

import logging
import re

import httpx

from providers.base import (
    NotForThisProvider,
    Outgoing,
    ProviderDown,
    ProviderError,
    ProviderHealth,
    RecipientError,
    SendResult,
    TransientError,
)
from providers.fast2sms.client import Fast2SmsClient, Reply, dlt_body, quick_sms_body
from providers.retry_after import parse_retry_after
from providers.sms_text import analyze

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.fast2sms.com/dev/"
ROUTES = ("q", "dlt")

# Fast2SMS carries Indian mobile numbers only; it wants them as 10 bare digits.
# [0-9], not \d: \d would let other scripts' digits through.
_INDIAN_NUMBER = re.compile(r"\+91([0-9]{10})")

# Outgoing.data keys for route "dlt" (our assumption; see _dlt_request).
DLT_TEMPLATE_KEY = "dlt_template_id"
DLT_VARIABLES_KEY = "dlt_variables"

# Fast2SMS's status codes in a `"return": false` answer, from its published error list, by
# what they mean for the router. Any code not listed is ProviderDown: an error we do not
# understand should stop this provider and fail over, not spin in a retry loop.
#
# The recipient cannot get an SMS from anyone: 411 "Invalid Numbers".
_RECIPIENT_CODES = frozenset({411})
# This message cannot go through Fast2SMS, but another provider may carry it, and Fast2SMS
# itself is fine for other messages: 407 "Invalid words used in message" (its content filter),
# 417 "Use english letters or change language to unicode" (its idea of "english" is narrower
# than GSM-7).
_MESSAGE_CODES = frozenset({407, 417})
# 995 "Spamming detected (sending multiple SMS to same number is not allowed)": a throttle on
# one number that passes with time, so back off and retry, then fail over.
_TRANSIENT_CODES = frozenset({995})
# Everything else is ProviderDown, on purpose for these: 409 route not enabled, 412 bad key,
# 413 key disabled, 414 IP blacklisted, 415 account disabled, 416 wallet empty, 996 account
# (KYC/website) verification not complete, 999 minimum recharge not done; and 401-406, 408, 410,
# 418-426, 500, 990, 997, 998, which say our request or DLT setup is wrong. None of them heals
# by retrying; each needs the shopkeeper, and the open breaker plus health() tell them so.

_MAX_DETAIL = 200


class Fast2SmsProvider:
    """SMS through Fast2SMS's bulkV2 API, on route "q" (free text) or "dlt" (templates)."""

    name = "fast2sms"
    channel = "sms"
    delivers = True

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        route: str = "q",
        sender_id: str = "",
        timeout_seconds: float = 10.0,
    ) -> None:
        if route not in ROUTES:
            raise ValueError(f"fast2sms route must be one of {ROUTES}, not {route!r}")
        if timeout_seconds <= 0:
            raise ValueError("fast2sms timeout_seconds must be positive")
        self._api_key = api_key
        self._route = route
        self._sender_id = sender_id
        self._client = Fast2SmsClient(
            http=http, api_key=api_key, base_url=base_url, timeout_seconds=timeout_seconds
        )
        self._closed = False
        # The detail of the last ProviderDown, cleared by the next success: health() reports it
        # without a network call.
        self._down_detail: str | None = None

    async def send(self, message: Outgoing) -> SendResult:
        if self._closed:
            raise ProviderDown("fast2sms provider is closed")
        match = _INDIAN_NUMBER.fullmatch(message.recipient)
        if match is None:
            # Checked before anything else, so a non-Indian number never reaches Fast2SMS.
            raise NotForThisProvider("Fast2SMS reaches Indian (+91) mobile numbers only")
        if not self._api_key:
            raise self._down(ProviderDown("fast2sms has no API key configured"))
        number = match.group(1)
        if self._route == "q":
            if not message.body:
                raise NotForThisProvider("Fast2SMS does not send an empty message")
            text = analyze(message.body)
            body = quick_sms_body(
                number=number, message=message.body, unicode=text.encoding == "ucs2"
            )
            segments: int | None = text.segments
        else:
            body = self._dlt_request(message, number)
            segments = None  # the template's text, and so its length, is known to Fast2SMS only

        try:
            reply = await self._client.bulk_v2(body)
        except (TimeoutError, httpx.TimeoutException) as exc:
            # Fast2SMS may have accepted it before we gave up: a retry can send it twice, which
            # the outbox's at-least-once contract allows.
            raise TransientError("Fast2SMS did not answer in time") from exc
        except httpx.UnsupportedProtocol as exc:
            raise self._down(
                ProviderDown(self._safe(f"fast2sms base_url is not usable: {exc}"))
            ) from exc
        except httpx.TransportError as exc:
            # Connection refused, reset, DNS: the network or Fast2SMS is away for now.
            raise TransientError(
                self._safe(f"Fast2SMS unreachable: {type(exc).__name__}: {exc}")
            ) from exc
        except httpx.HTTPError as exc:
            raise self._down(
                ProviderDown(self._safe(f"Fast2SMS request failed: {type(exc).__name__}: {exc}"))
            ) from exc

        if reply.accepted and 200 <= reply.http_status < 300:
            self._down_detail = None
            logger.debug("fast2sms accepted message %s as %s", message.message_id, reply.request_id)
            return SendResult(
                provider_message_id=reply.request_id,
                segments=segments,
                delivered=False,
                detail=self._safe(reply.message),
            )
        error = self._error_for(reply)
        logger.debug(
            "fast2sms refused message %s: %s (%s)",
            message.message_id,
            type(error).__name__,
            error,
        )
        if isinstance(error, ProviderDown):
            self._down(error)
        raise error

    async def health(self) -> ProviderHealth:
        # No network call: the wallet endpoint wants the key in the query string, which httpx
        # logs, and a send is the only other probe. Report what the last send taught us.
        if self._closed:
            return ProviderHealth("down", "closed")
        if not self._api_key:
            return ProviderHealth("unconfigured", "no API key")
        if self._down_detail is not None:
            return ProviderHealth("down", self._down_detail)
        return ProviderHealth("ok")

    async def close(self) -> None:
        # The httpx client is the daemon's: it closes it, once, after every provider.
        self._closed = True

    def _dlt_request(self, message: Outgoing, number: str) -> dict[str, object]:
        # Assumed shape: the outbox puts Fast2SMS's message id of a registered DLT template in
        # data["dlt_template_id"] and its values, "|"-separated, in data["dlt_variables"]; the
        # body is not sent (the template holds the text). A message without a template cannot
        # go this way, but another provider can carry its plain text.
        template_id = message.data.get(DLT_TEMPLATE_KEY, "")
        if not template_id:
            raise NotForThisProvider("Fast2SMS route dlt needs a DLT template id")
        if not self._sender_id:
            raise self._down(ProviderDown("fast2sms route dlt needs a sender_id"))
        return dlt_body(
            number=number,
            sender_id=self._sender_id,
            template_id=template_id,
            variables_values=message.data.get(DLT_VARIABLES_KEY, ""),
        )

    def _error_for(self, reply: Reply) -> ProviderError:
        said = self._safe(reply.message) or "no message"
        code = reply.status_code
        code_text = str(code) if code is not None else None
        status = reply.http_status
        if status == 429:
            return TransientError(
                f"Fast2SMS rate limit (HTTP 429): {said}",
                code=code_text,
                retry_after=parse_retry_after(reply.retry_after),
            )
        if status >= 500 or status == 408:
            # Their server or a proxy in front of it is in trouble; their body codes are not
            # trusted here (code 500 means a DLT blacklisting only in a 4xx answer).
            return TransientError(f"Fast2SMS server error (HTTP {status}): {said}", code=code_text)
        if code is not None:
            detail = f"Fast2SMS error {code} (HTTP {status}): {said}"
            if code in _RECIPIENT_CODES:
                return RecipientError(detail, code=code_text)
            if code in _MESSAGE_CODES:
                return NotForThisProvider(detail, code=code_text)
            if code in _TRANSIENT_CODES:
                return TransientError(detail, code=code_text)
            return ProviderDown(detail, code=code_text)
        if status in (401, 403):
            return ProviderDown(f"Fast2SMS refused the API key (HTTP {status})")
        if 200 <= status < 300 and reply.json_body:
            # `"return": false` with no code: unknown, so stop rather than retry.
            return ProviderDown(f"Fast2SMS did not accept the message: {said}")
        # A redirect, an HTML page from a proxy, any other 4xx: not Fast2SMS as we know it.
        return ProviderDown(f"unexpected answer from Fast2SMS (HTTP {status}): {said}")

    def _down(self, error: ProviderDown) -> ProviderDown:
        self._down_detail = str(error)
        return error

    def _safe(self, text: str) -> str:
        """`text` fit for logs and the database: no API key, not unbounded."""
        if self._api_key:
            text = text.replace(self._api_key, "[api key]")
        if len(text) > _MAX_DETAIL:
            text = text[: _MAX_DETAIL - 1] + "…"
        return text
