"""FCM: push notifications to app tokens and topics through Firebase's HTTP v1 API."""

from providers.fcm.client import ServiceAccountError, load_service_account
from providers.fcm.provider import TOPIC_PREFIX, FcmProvider

__all__ = ["TOPIC_PREFIX", "FcmProvider", "ServiceAccountError", "load_service_account"]
