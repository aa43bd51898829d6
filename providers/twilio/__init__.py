"""Twilio: SMS out through its Messages API, inbound SMS and delivery receipts in by webhook."""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use (PEP 562): the webhook code is needed by every daemon, the sending client
# (and the HTTP library under it) only by one with [twilio] configured.
_EXPORTS = {
    "TwilioProvider": "providers.twilio.provider",
    "InboundSms": "providers.twilio.webhook",
    "StatusCallback": "providers.twilio.webhook",
    "is_valid_signature": "providers.twilio.webhook",
    "public_request_url": "providers.twilio.webhook",
    "twiml": "providers.twilio.webhook",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
