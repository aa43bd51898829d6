"""TGTG failures as our own error classes, so the watcher never sees an httpx exception."""

from __future__ import annotations


class TgtgError(Exception):
    """A TGTG call failed; `status` is the HTTP status (0 when no answer came)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"TGTG {status or 'unreachable'}: {message}")
        self.status = status
        self.message = message


class TgtgUnauthorized(TgtgError):
    """401: the access token is expired or was invalidated; refresh and retry once."""


class TgtgBlocked(TgtgError):
    """403: a DataDome captcha/bot block of this IP or device; back off for minutes."""


class TgtgRateLimited(TgtgError):
    """429 or 5xx (or no answer): transient; `retry_after` seconds when the server said."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(status, message)
        self.retry_after = retry_after


class TgtgOrderRefused(TgtgError):
    """TGTG answered an order call 200 with a state other than SUCCESS (the bag is gone, the
    order is no longer open, ...); `state` is what it said."""

    def __init__(self, state: str) -> None:
        super().__init__(200, f"order refused ({state})")
        self.state = state


class TgtgLoginError(TgtgError):
    """The e-mail login cannot go on (no account for the e-mail, wrong PIN, expired request)."""
