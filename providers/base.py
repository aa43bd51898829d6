"""The one small interface every provider has, and the errors it may raise at its edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

HealthState = Literal["ok", "degraded", "down", "unconfigured"]


class ProviderError(Exception):
    """A send did not go through. `str(e)` is safe to log and store: it never holds a secret.

    `code` is the provider's own error code when it gave one (Twilio 21211, CMS 500, ...).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientError(ProviderError):
    """It may work later: timeouts, 5xx, 429, a busy modem. Retry with backoff, then fail over.

    `retry_after` is the provider's own hint in seconds (Retry-After), when it gave one.
    """

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RecipientError(ProviderError):
    """The recipient cannot get this message from anyone: invalid number, dead push token.

    Failed at once, never retried. `opted_out` is True when the provider says the recipient
    unsubscribed (Twilio 21610), so the daemon can record the opt-out.
    """

    def __init__(self, message: str, *, code: str | None = None, opted_out: bool = False) -> None:
        super().__init__(message, code=code)
        self.opted_out = opted_out


class ProviderDown(ProviderError):
    """The provider itself is unusable: bad credentials, account suspended, modem unplugged.

    Opens the circuit breaker for this provider and fails over at once.
    """


class NotForThisProvider(ProviderError):
    """This provider cannot carry this message (e.g. Fast2SMS and a non-Indian number), but
    another one in the chain may: skip to the next provider without counting a failure."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What a provider needs to send one message; built from the outbox row by the daemon."""

    message_id: int
    channel: str
    recipient: str
    body: str = field(repr=False)  # an OTP message's body is the code
    kind: str = "manual"
    subject: str | None = None
    # Seconds after which the network should drop the message rather than deliver it late.
    validity_seconds: int | None = None
    encoding: str | None = None
    segments: int | None = None
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted the message; its own id lets delivery receipts find it again."""

    provider_message_id: str | None = None
    segments: int | None = None
    # True when acceptance already means delivered, so no receipt will come.
    delivered: bool = False
    detail: str = ""
    # The provider's reference of each segment, in order, when it reports per segment (a
    # modem's TP-MR): delivery reports come per segment and are matched by these.
    parts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """How a provider is doing, for /api/health and `shopbell doctor`."""

    state: HealthState
    detail: str = ""


class Provider(Protocol):
    """Send, health, close: all the daemon's router knows of a provider."""

    name: str
    channel: str
    # False for the console: it only pretends to send (the OTP rules depend on it).
    delivers: bool

    async def send(self, message: Outgoing) -> SendResult:
        """Send one message; raise a ProviderError subclass when it did not go through."""
        ...

    async def health(self) -> ProviderHealth:
        """A cheap check of whether sends can work now (no message sent)."""
        ...

    async def close(self) -> None:
        """Release connections and threads; idempotent."""
        ...
