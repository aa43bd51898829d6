"""Twilio as an SMS provider: sends through the sync twilio client in threads, maps its errors."""

from __future__ import annotations

import base64
import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

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
from providers.blocking import BlockingPool, PoolClosed
from providers.twilio.client import (
    TWILIO_API_URL,
    ApiError,
    BadAnswer,
    BadSetting,
    TransportError,
    TwilioWire,
    WireError,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Twilio's bounds for ValidityPeriod, in seconds.
VALIDITY_MIN = 1
VALIDITY_MAX = 36_000
# The outer asyncio guard fires this long after the HTTP timeout. requests' read timeout bounds
# each socket wait, not the whole exchange, so a server trickling bytes could outlast it.
GUARD_SLACK_SECONDS = 2.0
# health() asks Twilio at most this often; /api/health may be polled far more often.
HEALTH_CACHE_SECONDS = 30.0

# Twilio error codes (docs/twilio.md, "Error codes") and what they mean for the outbox.
# The recipient cannot get SMS from us: fail at once, never retry, no failover.
RECIPIENT_CODES = frozenset({21211, 21614, 21635, 30004, 30005, 30006})
OPTED_OUT_CODE = 21610
# Worth another try later: Twilio's concurrency limit, an unreachable handset, "unknown".
TRANSIENT_CODES = frozenset({20429, 30003, 30008})
# The account or its configured sender is unusable for every message: open the breaker.
# 20003 authenticate, 20404 no such account (the URL holds the account SID), 21212 invalid
# From number.
PROVIDER_DOWN_CODES = frozenset({20003, 20404, 21212})
# This destination is out of reach *for this account* (21408 geo permission off for the
# region, 21612 cannot route to this number, 21606 this From cannot reach this destination).
# Configuration, not the recipient's fault -- but it depends on the destination, so one
# foreign number must not open the breaker for every domestic one: another provider (the
# modem) may carry it.
NOT_FOR_US_CODES = frozenset({21408, 21612, 21606})

_FINAL_WORDS = "; Twilio may have accepted it"


class TwilioProvider:
    """SMS through Twilio's Messages API.

    Sends from `messaging_service_sid` when set (the service picks the number), else from
    `from_number`. Each send is one POST, never retried here: the outbox retries.
    """

    name = "twilio"
    channel = "sms"
    delivers = True

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str = "",
        messaging_service_sid: str = "",
        base_url: str = TWILIO_API_URL,
        timeout_seconds: float = 10.0,
        status_callback_url: str | None = None,
        concurrency: int = 4,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs an account SID and an auth token")
        if not (from_number or messaging_service_sid):
            raise ValueError("Twilio needs a from_number or a messaging_service_sid")
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"Twilio base_url {base_url!r} is not an http(s) URL")
        if url.username or url.password:
            # It would show in logs and error text; Twilio's credentials go in Basic auth.
            raise ValueError("Twilio base_url must not hold a user name or password")
        if timeout_seconds <= 0:
            raise ValueError("Twilio timeout_seconds must be above 0")
        if concurrency < 1:
            raise ValueError("[twilio] concurrency must be at least 1")
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._status_callback_url = status_callback_url or None
        # Error text is built by us, but a proxy could echo anything back: scrub the token in
        # both its plain and its Basic-auth forms from every message that leaves this class.
        basic = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._secrets = (auth_token, basic)
        self._wire = TwilioWire(
            account_sid=account_sid,
            auth_token=auth_token,
            base_url=base_url,
            timeout_seconds=timeout_seconds,
        )
        # Our own pool rather than asyncio.to_thread: a burst of sends must not starve the
        # loop's default executor (getaddrinfo and every other to_thread in the daemon share
        # it), and each of our threads keeps one keep-alive session.
        self._pool = BlockingPool("twilio", concurrency, timeout_seconds + GUARD_SLACK_SECONDS)
        self._health: tuple[float, ProviderHealth] | None = None
        self._closed = False

    @property
    def sender(self) -> str:
        """Who messages come from, as shown in health and logs."""
        if self._messaging_service_sid:
            return f"Messaging Service {self._messaging_service_sid}"
        return self._from_number

    async def send(self, message: Outgoing) -> SendResult:
        """POST the message to Twilio once; raise a ProviderError subclass if it did not go."""
        if message.channel != "sms":
            raise NotForThisProvider(f"Twilio sends SMS, not {message.channel}")
        call = functools.partial(
            self._wire.create_message,
            to=message.recipient,
            body=message.body,
            # A Messaging Service picks its own sender; From alongside it must be one of the
            # service's numbers, so send only one of the two.
            from_=None if self._messaging_service_sid else self._from_number,
            messaging_service_sid=self._messaging_service_sid or None,
            status_callback=self._status_callback_url,
            validity_period=_validity(message.validity_seconds),
            # Checked in twilio 9.13's create(): Twilio's traffic shaping prioritises OTPs.
            message_intent="otp" if message.kind == "otp" else None,
        )
        try:
            created = await self._in_thread(call)
        except WireError as exc:
            error = self._map(exc)
            logger.debug("twilio send of message %s failed: %s", message.message_id, error)
            raise error from exc
        return SendResult(
            provider_message_id=created.sid,
            segments=created.num_segments,
            detail=f"Twilio status {created.status}" if created.status else "",
        )

    async def health(self) -> ProviderHealth:
        """GET the account resource: checks reachability, credentials and account status.

        Sends nothing and costs nothing; cached for HEALTH_CACHE_SECONDS.
        """
        now = time.monotonic()
        if self._health is not None and now - self._health[0] < HEALTH_CACHE_SECONDS:
            return self._health[1]
        try:
            status = await self._in_thread(self._wire.fetch_account_status)
        except WireError as exc:
            error = self._map(exc)
            state = "degraded" if isinstance(error, TransientError) else "down"
            health = ProviderHealth(state, f"{self.sender}: {error}")
        else:
            if status in ("", "active"):
                health = ProviderHealth("ok", f"sending as {self.sender}")
            else:
                health = ProviderHealth("down", f"the Twilio account is {status}")
        self._health = (time.monotonic(), health)
        return health

    async def close(self) -> None:
        """Stop taking sends, let the ones on the wire finish (bounded), close the sessions."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()
        self._wire.close()

    async def _in_thread(self, call: Callable[[], T]) -> T:
        """Run a blocking wire call on our pool, bounded by the guard timeout."""
        try:
            return await self._pool.run(call)
        except PoolClosed:
            raise TransportError(
                "the Twilio provider is closed", timed_out=False, maybe_sent=False
            ) from None
        except TimeoutError:
            raise TransportError(
                f"no answer from Twilio within {self._pool.guard_seconds:g} s",
                timed_out=True,
                maybe_sent=True,
            ) from None

    def _map(self, exc: WireError) -> ProviderError:
        """Our error class for a wire failure (the table in docs/twilio.md, "Error codes")."""
        if isinstance(exc, ApiError):
            return self._map_api_error(exc)
        if isinstance(exc, TransportError):
            text = str(exc) + (_FINAL_WORDS if exc.maybe_sent else "")
            return TransientError(self._scrub(text))
        if isinstance(exc, BadSetting | BadAnswer):
            # Retrying will not fix a wrong address or whatever answers at it.
            return ProviderDown(self._scrub(str(exc)))
        return ProviderDown(self._scrub(f"Twilio failed: {type(exc).__name__}"))

    def _map_api_error(self, exc: ApiError) -> ProviderError:
        status, code = exc.status, exc.code
        code_text = str(code) if code is not None else None
        text = f"Twilio answered HTTP {status}"
        if code is not None:
            text += f", error {code}"
        if exc.detail:
            text += f": {exc.detail}"
        text = self._scrub(text)
        if code == OPTED_OUT_CODE:
            return RecipientError(text, code=code_text, opted_out=True)
        if code in RECIPIENT_CODES:
            return RecipientError(text, code=code_text)
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            # A 5xx is ambiguous (Twilio may have created the message); the outbox decides
            # whether that is worth a retry.
            if status >= 500:
                text += _FINAL_WORDS
            return TransientError(text, code=code_text, retry_after=exc.retry_after)
        if code in PROVIDER_DOWN_CODES or status in (401, 403, 404):
            return ProviderDown(text, code=code_text)
        if code in NOT_FOR_US_CODES:
            return NotForThisProvider(text, code=code_text)
        if 400 <= status < 500:
            # An unknown 4xx. RecipientError would fail the message for good and, if the cause
            # is really ours (a new account-level restriction), silently fail *every* message
            # while the backup providers sit idle. ProviderDown would let one odd message (a
            # user-supplied number Twilio rejects in a way we do not know) open the breaker for
            # all traffic -- repeatable by anyone who can sign up a number. NotForThisProvider
            # hands just this message to the next provider and counts no failure: nothing is
            # lost, nobody can switch Twilio off, and the error text is on the message's event.
            return NotForThisProvider(text, code=code_text)
        # 1xx/3xx: a redirect means base_url points at the wrong place.
        return ProviderDown(text, code=code_text)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def _validity(seconds: int | None) -> int | None:
    if seconds is None:
        return None
    return min(VALIDITY_MAX, max(VALIDITY_MIN, int(seconds)))
