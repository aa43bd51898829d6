"""The OTP rules, pure: make a code, bind it to its purpose and phone, judge sends and tries.

Defaults after NIST SP 800-63B-4 (at least 6 random digits from an approved generator, used
once, valid at most 10 minutes, failures rate limited) and OWASP ASVS (V6.5, V6.6; only a
keyed hash of the code is kept, compared in constant time). Nothing here reads the clock or
the database: callers pass the time and the rows in.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from storage.models import OtpCode

PURPOSES = ("login", "signup", "verify-phone")
KEY_BYTES = 32

# What became of the latest code for a phone and purpose, as verify and status see it.
CodeState = Literal["none", "live", "used", "locked", "expired"]


class InvalidCode(ValueError):
    """The text given as a code cannot be one: wrong length, or not the digits 0-9."""


@dataclass(frozen=True)
class SendAllowance:
    """Whether a code may be sent now; if not, how many whole seconds until it may."""

    allowed: bool
    retry_after: int
    sends_left: int
    reason: str = ""


@dataclass(frozen=True)
class OtpPolicy:
    """How long codes are, how long they live, how often they may be tried and sent."""

    code_length: int = 6
    validity_seconds: int = 300
    max_attempts: int = 5
    sends_per_window: int = 3
    window_seconds: int = 600
    resend_wait_seconds: int = 30

    def __post_init__(self) -> None:
        if not 6 <= self.code_length <= 10:
            raise ValueError("code_length must be 6 to 10 digits")
        if self.validity_seconds <= 0 or self.window_seconds <= 0:
            raise ValueError("validity_seconds and window_seconds must be positive")
        if self.max_attempts < 1 or self.sends_per_window < 1:
            raise ValueError("max_attempts and sends_per_window must be at least 1")
        if self.resend_wait_seconds < 0:
            raise ValueError("resend_wait_seconds must not be negative")

    # -- codes -----------------------------------------------------------------------------

    def new_code(self) -> str:
        """A fresh code: `code_length` decimal digits from the OS's CSPRNG (`secrets`)."""
        return f"{secrets.randbelow(10**self.code_length):0{self.code_length}d}"

    def read_code(self, text: str) -> str:
        """The code in `text` (surrounding spaces ignored), or InvalidCode saying why not.

        Only the ASCII digits 0-9 count: Arabic-Indic or full-width digits are digits to
        str.isdigit() too, but letting them through would make several texts one code.
        """
        code = text.strip(" \t\r\n")
        if re.fullmatch(rf"[0-9]{{{self.code_length}}}", code) is not None:
            return code
        if not all("0" <= char <= "9" for char in code):
            raise InvalidCode(f"must be {self.code_length} digits 0-9, and only those")
        raise InvalidCode(f"must be exactly {self.code_length} digits, not {len(code)}")

    def expires_at(self, sent_at: datetime) -> datetime:
        return sent_at + timedelta(seconds=self.validity_seconds)

    # -- state -----------------------------------------------------------------------------

    def state(
        self, code: OtpCode | None, now: datetime, age_seconds: float | None = None
    ) -> CodeState:
        """What the latest code is now. A code is live while now < expires_at and, whatever
        the wall clock did since it was sent (docs/clock.md), it is never live longer than
        validity_seconds: with `age_seconds` (its age on the monotonic clock, known for the
        codes this process sent) that age decides too; without it, a clock now earlier than
        the code's own sending time has stepped back past it, so its age is unknown and the
        code counts as expired.
        """
        if code is None:
            return "none"
        if code.consumed_at is not None:
            return "used"
        if code.attempts >= self.max_attempts:
            return "locked"
        if now >= code.expires_at:
            return "expired"
        if age_seconds is not None:
            if age_seconds >= self.validity_seconds:
                return "expired"
        elif now < code.created_at:
            return "expired"
        return "live"

    def seconds_left(self, code: OtpCode, now: datetime, age_seconds: float | None = None) -> float:
        """How long a live code still lives: by the wall clock, and never past its lifetime
        on the monotonic clock."""
        left = (code.expires_at - now).total_seconds()
        if age_seconds is not None:
            left = min(left, self.validity_seconds - age_seconds)
        return max(0.0, left)

    def attempts_left(self, code: OtpCode) -> int:
        return max(0, self.max_attempts - code.attempts)

    # -- sending ---------------------------------------------------------------------------

    def send_allowance(self, sent_at: Sequence[datetime], now: datetime) -> SendAllowance:
        """May a code go to a phone that was sent codes at `sent_at` (any order, any purpose)?

        Two rules: `resend_wait_seconds` between two sends, and at most `sends_per_window`
        sends in any `window_seconds` (sliding: a send exactly a window ago no longer counts).
        retry_after is the whole number of seconds after which both rules allow a send.
        """
        window = timedelta(seconds=self.window_seconds)
        # A send stamped later than now was made before the clock stepped back: it happened
        # at the latest now, so it still counts, but a wait never grows by the step.
        recent = sorted(min(moment, now) for moment in sent_at if moment > now - window)
        sends_left = max(0, self.sends_per_window - len(recent))
        waits: list[tuple[float, str]] = []
        if recent:
            ready = recent[-1] + timedelta(seconds=self.resend_wait_seconds)
            if ready > now:
                waits.append(
                    (
                        (ready - now).total_seconds(),
                        f"wait {self.resend_wait_seconds}s between two codes",
                    )
                )
        if len(recent) >= self.sends_per_window:
            # The oldest send that has to leave the window before one more fits in it.
            leaving = recent[len(recent) - self.sends_per_window]
            waits.append(
                (
                    (leaving + window - now).total_seconds(),
                    f"at most {self.sends_per_window} codes in {_duration(self.window_seconds)}",
                )
            )
        if not waits:
            return SendAllowance(allowed=True, retry_after=0, sends_left=sends_left)
        seconds, reason = max(waits)
        return SendAllowance(
            allowed=False,
            retry_after=max(1, math.ceil(seconds)),
            sends_left=sends_left,
            reason=reason,
        )


def code_mac(key: bytes, purpose: str, phone: str, code: str) -> str:
    """HMAC-SHA256 of purpose|phone|code under the server key, as hex: what is stored.

    Six digits are a million values, so a plain hash is reversed offline at once; the key,
    kept out of the database, is what protects a stolen copy of the table. Binding the
    purpose and the phone means a code made for one can never match another.
    """
    if len(key) < KEY_BYTES:
        raise ValueError(f"the OTP key must be at least {KEY_BYTES} bytes")
    message = f"{purpose}|{phone}|{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def code_matches(key: bytes, code: OtpCode, given: str) -> bool:
    """True when `given` is the code stored as `code.code_hmac`, compared in constant time."""
    expected = code_mac(key, code.purpose, code.phone, given)
    return hmac.compare_digest(expected.encode("ascii"), code.code_hmac.encode("ascii"))


def _duration(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds}s"
