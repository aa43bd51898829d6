"""FCM as the push provider: sends through pyfcm in its own threads, maps FCM's errors."""

from __future__ import annotations

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
from providers.fcm.client import (
    FCM_BASE_URL,
    RETRY_BACKOFF_MAX,
    RETRY_TOTAL,
    TOKEN_ATTEMPTS,
    TOKEN_BACKOFF_SECONDS,
    ApiError,
    AuthError,
    BadAnswer,
    FcmWire,
    TransportError,
    WireError,
    load_service_account,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A push message's recipient is a device token, or this prefix and an FCM topic name.
TOPIC_PREFIX = "topic:"
# The longest wait we let FCM's Retry-After ask of the outbox.
RETRY_AFTER_CAP_SECONDS = 300.0
GUARD_SLACK_SECONDS = 2.0
HEALTH_CACHE_SECONDS = 30.0
# After this many sends in a row fail for want of FCM itself (unreachable, 5xx, no token),
# FCM counts as down: ProviderDown rests it (the breaker) and pushes wait in the outbox
# rather than each using up its tries and failing. One answer from FCM resets the count.
OUTAGE_AFTER = 3
# The FCM errors that mean this token will never work again (docs/fcm.md, "Dead tokens").
DEAD_TOKEN_TEXT = "not a valid fcm registration token"  # noqa: S105 -- FCM wording


class FcmProvider:
    """Push notifications through FCM's HTTP v1 API, one request per token or topic.

    The service-account file is read at construction: a missing or broken file raises
    ValueError (ServiceAccountError) with a plain reason, so the daemon can say so at start.
    """

    name = "fcm"
    channel = "push"
    delivers = True

    def __init__(
        self,
        *,
        service_account_file: str,
        project_id: str = "",
        base_url: str = FCM_BASE_URL,
        timeout_seconds: float = 10.0,
        concurrency: int = 8,
    ) -> None:
        if not service_account_file:
            raise ValueError("FCM needs a service-account file")
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"FCM base_url {base_url!r} is not an http(s) URL")
        if url.username or url.password:
            raise ValueError("FCM base_url must not hold a user name or password")
        if timeout_seconds <= 0:
            raise ValueError("FCM timeout_seconds must be above 0")
        if concurrency < 1:
            raise ValueError("[fcm] concurrency must be at least 1")
        account = load_service_account(service_account_file, project_id)
        self.project_id = account.project_id
        self.client_email = account.client_email
        self._wire = FcmWire(
            account=account,
            base_url=base_url,
            timeout_seconds=timeout_seconds,
            pool_size=concurrency,
        )
        # Worst case of one call: the token endpoint's tries, then the send's tries, each
        # bounded by the timeout, plus their waits. requests' timeout bounds each socket
        # wait, not the exchange, hence the outer guard.
        guard = (
            timeout_seconds * (TOKEN_ATTEMPTS + RETRY_TOTAL + 2)
            + TOKEN_BACKOFF_SECONDS
            + RETRY_BACKOFF_MAX * RETRY_TOTAL
            + GUARD_SLACK_SECONDS
        )
        # Our own pool, as for Twilio: a burst of sends must not starve the loop's default
        # executor, and each thread keeps its keep-alive session.
        self._pool = BlockingPool("fcm", concurrency, guard)
        self._health: tuple[float, ProviderHealth] | None = None
        self._failures_in_a_row = 0
        self._closed = False

    @property
    def token_refreshes(self) -> int:
        """How many OAuth tokens were fetched (one is shared by every thread)."""
        return self._wire.token_refreshes

    async def send(self, message: Outgoing) -> SendResult:
        """Send one push to one token or topic; raise a ProviderError subclass if it did not go."""
        if message.channel != "push":
            raise NotForThisProvider(f"FCM sends push notifications, not {message.channel}")
        topic = None
        token: str | None = message.recipient
        if message.recipient.startswith(TOPIC_PREFIX):
            topic, token = message.recipient[len(TOPIC_PREFIX) :], None
        call = functools.partial(
            self._wire.send,
            token=token,
            topic=topic,
            title=message.subject,
            body=message.body,
            data=message.data,
        )
        try:
            name = await self._in_thread(call)
        except WireError as exc:
            error = self._outage(exc, self._map(exc, to_topic=topic is not None))
            logger.debug("fcm send of message %s failed: %s", message.message_id, error)
            raise error from None
        self._failures_in_a_row = 0
        return SendResult(provider_message_id=name, detail="accepted by FCM")

    def _outage(self, exc: WireError, error: ProviderError) -> ProviderError:
        """Count failures that are FCM's own; enough in a row turn into ProviderDown."""
        fcm_failed = isinstance(exc, TransportError) or (
            isinstance(exc, AuthError) and exc.retryable
        )
        if isinstance(exc, ApiError):
            fcm_failed = exc.status >= 500
        if not fcm_failed:
            self._failures_in_a_row = 0  # FCM answered: it is up
            return error
        self._failures_in_a_row += 1
        if self._failures_in_a_row < OUTAGE_AFTER or not isinstance(error, TransientError):
            return error
        return ProviderDown(
            f"{error} ({self._failures_in_a_row} sends in a row failed: FCM looks down)",
            code=error.code,
        )

    async def health(self) -> ProviderHealth:
        """Get an access token (sends nothing): proves the key, the account and the network.

        Cached for HEALTH_CACHE_SECONDS; the token itself is reused until it nears expiry.
        """
        now = time.monotonic()
        if self._health is not None and now - self._health[0] < HEALTH_CACHE_SECONDS:
            return self._health[1]
        try:
            await self._in_thread(self._wire.ensure_token)
        except WireError as exc:
            error = self._map(exc, to_topic=False)
            state = "degraded" if isinstance(error, TransientError) else "down"
            health = ProviderHealth(state, f"project {self.project_id}: {error}")
        else:
            health = ProviderHealth("ok", f"project {self.project_id} as {self.client_email}")
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
            raise TransportError("the FCM provider is closed") from None
        except TimeoutError:
            raise TransportError(
                f"no answer from FCM within {self._pool.guard_seconds:g} s"
            ) from None

    def _map(self, exc: WireError, *, to_topic: bool) -> ProviderError:
        """Our error class for a wire failure (docs/fcm.md, "Error codes")."""
        if isinstance(exc, ApiError):
            return self._map_api_error(exc, to_topic=to_topic)
        if isinstance(exc, AuthError):
            text = self._scrub(str(exc))
            if exc.retryable:
                return TransientError(text, code="OAUTH")
            return ProviderDown(text, code="OAUTH")
        if isinstance(exc, TransportError):
            return TransientError(self._scrub(str(exc)))
        if isinstance(exc, BadAnswer):
            return ProviderDown(self._scrub(str(exc)))
        return ProviderDown(f"FCM failed: {type(exc).__name__}")

    def _map_api_error(self, exc: ApiError, *, to_topic: bool) -> ProviderError:
        status = exc.status
        code = exc.error_code or exc.error_status or str(status)
        text = f"FCM answered HTTP {status}"
        if exc.error_code or exc.error_status:
            text += f" {code}"
        if exc.detail:
            text += f": {exc.detail}"
        text = self._scrub(text)
        # Only a token can be dead; a topic simply has no subscribers or a bad name.
        dead = not to_topic
        if status == 404:
            if exc.error_code == "UNREGISTERED" or (exc.google and exc.error_status == "NOT_FOUND"):
                return RecipientError(
                    f"{text} (the token is no longer registered)",
                    code="UNREGISTERED",
                    opted_out=dead,
                )
            # Not Google's answer: base_url points somewhere that is not FCM.
            return ProviderDown(text, code=code)
        if status == 400:
            if DEAD_TOKEN_TEXT in exc.detail.lower() or exc.error_code == "INVALID_REGISTRATION":
                return RecipientError(
                    f"{text} (the token is malformed)", code="INVALID_ARGUMENT", opted_out=dead
                )
            # Something in the message itself (a bad data key, too big): ours, not the
            # token's. Retrying will not help and no other provider would take it.
            return RecipientError(text, code=code)
        if status == 401:
            if exc.error_code == "THIRD_PARTY_AUTH_ERROR" or exc.reason == "THIRD_PARTY_AUTH_ERROR":
                # The APNs certificate or web-push key in Firebase: only some devices.
                return RecipientError(text, code="THIRD_PARTY_AUTH_ERROR")
            return ProviderDown(f"{text} (check the service account)", code=code)
        if status == 403:
            if exc.error_code == "SENDER_ID_MISMATCH":
                return RecipientError(
                    f"{text} (the token belongs to another Firebase project)",
                    code="SENDER_ID_MISMATCH",
                    opted_out=dead,
                )
            return ProviderDown(
                f"{text} (the service account may not send for project {self.project_id})",
                code=code,
            )
        if status in (408, 429) or status >= 500:
            retry_after = exc.retry_after
            if retry_after is not None:
                retry_after = min(retry_after, RETRY_AFTER_CAP_SECONDS)
            return TransientError(text, code=code, retry_after=retry_after)
        if 400 <= status < 500:
            return RecipientError(text, code=code)
        return ProviderDown(text, code=code)

    def _scrub(self, text: str) -> str:
        for secret in self._wire.secrets():
            if secret:
                text = text.replace(secret, "***")
        return text
