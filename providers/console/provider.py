"""The development fallback: logs each message and marks it sent; nothing leaves the PC."""

from __future__ import annotations

import itertools
import logging

from providers.base import Outgoing, ProviderHealth, SendResult

log = logging.getLogger(__name__)


class ConsoleProvider:
    """Prints messages to the log. `reveal_codes` is False whenever a real provider is
    configured, so an OTP code is never written to a log on a production machine."""

    name = "console"
    delivers = False

    def __init__(self, *, channel: str = "sms", reveal_codes: bool = True) -> None:
        self.channel = channel
        self.reveal_codes = reveal_codes
        self._ids = itertools.count(1)

    async def send(self, message: Outgoing) -> SendResult:
        body = message.body
        if message.kind == "otp" and not self.reveal_codes:
            body = "(one-time code hidden: a real SMS provider is configured)"
        log.info(
            "console %s to %s (message %d, %s): %s",
            self.channel,
            message.recipient,
            message.message_id,
            message.kind,
            body,
        )
        return SendResult(
            provider_message_id=f"console-{next(self._ids)}",
            segments=message.segments,
            detail="printed to the console; not sent to a phone",
        )

    async def health(self) -> ProviderHealth:
        return ProviderHealth("ok", "prints messages to the log; nothing reaches a phone")

    async def close(self) -> None:
        return None
