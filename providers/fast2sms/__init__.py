"""Fast2SMS: SMS to Indian numbers over its bulkV2 HTTP API."""

from providers.fast2sms.provider import Fast2SmsProvider

__all__ = ["Fast2SmsProvider"]
