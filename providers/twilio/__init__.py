"""Twilio: SMS out through its Messages API, inbound SMS and delivery receipts in by webhook."""

from providers.twilio.provider import TwilioProvider
from providers.twilio.webhook import (
    InboundSms,
    StatusCallback,
    is_valid_signature,
    public_request_url,
    twiml,
)

__all__ = [
    "InboundSms",
    "StatusCallback",
    "TwilioProvider",
    "is_valid_signature",
    "public_request_url",
    "twiml",
]
