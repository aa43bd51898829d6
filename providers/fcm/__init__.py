"""FCM: push notifications to app tokens and topics through Firebase's HTTP v1 API."""

from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use (PEP 562): pyfcm and google-auth cost memory a daemon without [fcm]
# should not pay.
_EXPORTS = {
    "ServiceAccountError": "providers.fcm.client",
    "load_service_account": "providers.fcm.client",
    "TOPIC_PREFIX": "providers.fcm.provider",
    "FcmProvider": "providers.fcm.provider",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
