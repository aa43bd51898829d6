"""The OTP rules on their own: codes, their format, the HMAC, the send limits, the states."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.config import check_otp_text
from daemon.services.otp.policy import (
    InvalidCode,
    OtpPolicy,
    code_mac,
    code_matches,
)
from storage.models import OtpCode
from tests.daemon.otp.support import ARABIC_INDIC, FULL_WIDTH

KEY = bytes(range(32))
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
POLICY = OtpPolicy()


def stored(code: str, **over: Any) -> OtpCode:
    fields: dict[str, Any] = {
        "id": 1,
        "phone": "+33612345678",
        "purpose": "login",
        "code_hmac": code_mac(KEY, "login", "+33612345678", code),
        "created_at": NOW,
        "expires_at": NOW + timedelta(seconds=300),
        "attempts": 0,
        "sends": 1,
        "last_sent_at": NOW,
        "consumed_at": None,
        "message_id": None,
    }
    fields.update(over)
    return OtpCode(**fields)


# -- codes ---------------------------------------------------------------------------------


@given(st.integers(min_value=6, max_value=10))
def test_new_codes_have_the_length_and_only_ascii_digits(length: int) -> None:
    code = OtpPolicy(code_length=length).new_code()
    assert len(code) == length
    assert all(char in "0123456789" for char in code)


def test_codes_come_from_secrets_and_keep_leading_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def randbelow(bound: int) -> int:
        asked.append(bound)
        return 42

    monkeypatch.setattr(secrets, "randbelow", randbelow)
    assert POLICY.new_code() == "000042"
    assert asked == [10**6]


def test_codes_are_not_all_the_same() -> None:
    assert len({POLICY.new_code() for _ in range(50)}) > 40


@pytest.mark.parametrize("text", ["123456", " 123456 ", "000000", "123456\n"])
def test_read_code_takes_six_ascii_digits(text: str) -> None:
    assert POLICY.read_code(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("12345", "exactly 6 digits, not 5"),
        ("1234567", "exactly 6 digits, not 7"),
        ("", "exactly 6 digits, not 0"),
        ("12 345", "digits 0-9"),
        ("12345a", "digits 0-9"),
        (ARABIC_INDIC, "digits 0-9"),  # isdigit() says yes to these
        (FULL_WIDTH, "digits 0-9"),
        ("12345" + FULL_WIDTH[-1], "digits 0-9"),
        ("+12345", "digits 0-9"),
        ("-12345", "digits 0-9"),
    ],
)
def test_read_code_refuses_what_is_not_six_ascii_digits(text: str, says: str) -> None:
    with pytest.raises(InvalidCode, match=says):
        POLICY.read_code(text)


@given(st.text(max_size=12))
def test_read_code_accepts_exactly_the_ascii_digit_strings(text: str) -> None:
    core = text.strip(" \t\r\n")
    good = len(core) == 6 and all(char in "0123456789" for char in core)
    try:
        assert POLICY.read_code(text) == core
        accepted = True
    except InvalidCode:
        accepted = False
    assert accepted is good


# -- the HMAC and the compare ----------------------------------------------------------------


def test_the_stored_form_is_a_keyed_hash_bound_to_purpose_and_phone() -> None:
    mac = code_mac(KEY, "login", "+33612345678", "123456")
    assert "123456" not in mac and len(mac) == 64
    assert code_mac(KEY, "login", "+33612345678", "123456") == mac
    assert code_mac(KEY, "signup", "+33612345678", "123456") != mac
    assert code_mac(KEY, "login", "+33612345679", "123456") != mac
    assert code_mac(bytes(32), "login", "+33612345678", "123456") != mac
    with pytest.raises(ValueError, match="at least 32 bytes"):
        code_mac(b"short", "login", "+33612345678", "123456")


def test_code_matches_compares_with_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    code = stored("123456")
    assert code_matches(KEY, code, "123456") is True
    assert code_matches(KEY, code, "123457") is False
    assert len(calls) == 2
    # What is compared is the stored HMAC against the HMAC of the guess, never the code.
    assert all(b == code.code_hmac.encode() for _, b in calls)
    assert all(b"123456" not in a and b"123457" not in a for a, _ in calls)


# -- states ----------------------------------------------------------------------------------


def test_a_code_is_live_until_the_instant_it_expires() -> None:
    code = stored("123456")
    assert POLICY.state(code, NOW) == "live"
    assert POLICY.state(code, NOW + timedelta(seconds=299, microseconds=999_999)) == "live"
    assert POLICY.state(code, NOW + timedelta(seconds=300)) == "expired"
    assert POLICY.state(None, NOW) == "none"
    assert POLICY.state(stored("1", consumed_at=NOW), NOW) == "used"
    assert POLICY.state(stored("1", attempts=5), NOW) == "locked"
    assert POLICY.state(stored("1", attempts=4), NOW) == "live"


# -- sending ---------------------------------------------------------------------------------


def at(*seconds: float) -> list[datetime]:
    return [NOW + timedelta(seconds=s) for s in seconds]


def test_first_send_is_allowed() -> None:
    allowance = POLICY.send_allowance([], NOW)
    assert allowance.allowed and allowance.sends_left == 3 and allowance.retry_after == 0


def test_thirty_seconds_between_sends() -> None:
    sent = at(0)
    early = POLICY.send_allowance(sent, NOW + timedelta(seconds=10))
    assert not early.allowed
    assert early.retry_after == 20
    assert early.sends_left == 2
    assert "30s between" in early.reason
    assert not POLICY.send_allowance(sent, NOW + timedelta(seconds=29.5)).allowed
    assert POLICY.send_allowance(sent, NOW + timedelta(seconds=29.5)).retry_after == 1
    assert POLICY.send_allowance(sent, NOW + timedelta(seconds=30)).allowed


def test_three_sends_per_ten_minutes_sliding() -> None:
    sent = at(0, 60, 120)
    fourth = POLICY.send_allowance(sent, NOW + timedelta(seconds=200))
    assert not fourth.allowed
    assert fourth.sends_left == 0
    assert fourth.retry_after == 400  # the send at 0 leaves the window at 600
    assert "3 codes in 10 minutes" in fourth.reason
    assert not POLICY.send_allowance(sent, NOW + timedelta(seconds=599)).allowed
    later = POLICY.send_allowance(sent, NOW + timedelta(seconds=600))
    assert later.allowed and later.sends_left == 1


def test_sends_older_than_the_window_do_not_count() -> None:
    sent = at(-3600, -1200, -601)
    allowance = POLICY.send_allowance(sent, NOW)
    assert allowance.allowed and allowance.sends_left == 3


@given(
    st.lists(st.integers(min_value=-1200, max_value=0), max_size=8),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=0, max_value=120),
)
def test_retry_after_is_exactly_when_a_send_becomes_allowed(
    offsets: list[int], per_window: int, wait: int
) -> None:
    policy = OtpPolicy(sends_per_window=per_window, resend_wait_seconds=wait)
    sent = [NOW + timedelta(seconds=s, milliseconds=250) for s in offsets]
    now = NOW + timedelta(seconds=1)
    allowance = policy.send_allowance(sent, now)
    if allowance.allowed:
        assert allowance.retry_after == 0
        return
    assert allowance.retry_after >= 1
    assert policy.send_allowance(sent, now + timedelta(seconds=allowance.retry_after)).allowed
    one_less = now + timedelta(seconds=allowance.retry_after - 1)
    assert not policy.send_allowance(sent, one_less).allowed


def test_policy_refuses_weak_settings() -> None:
    with pytest.raises(ValueError, match="6 to 10"):
        OtpPolicy(code_length=4)
    with pytest.raises(ValueError, match="at least 1"):
        OtpPolicy(max_attempts=0)


# -- the SMS text ------------------------------------------------------------------------------


def test_check_text_wants_the_code_once_and_known_fields_only() -> None:
    assert check_otp_text("{code} is your code") == "{code} is your code"
    with pytest.raises(ValueError, match="exactly once"):
        check_otp_text("Your code")
    with pytest.raises(ValueError, match="exactly once"):
        check_otp_text("{code} {code}")
    with pytest.raises(ValueError, match="unknown fields"):
        check_otp_text("{code} for {name}")
    with pytest.raises(ValueError, match="unknown fields"):
        check_otp_text("{code.__class__}")
    with pytest.raises(ValueError, match="not a text"):
        check_otp_text("{code")
