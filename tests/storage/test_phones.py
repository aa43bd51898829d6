"""Phone numbers normalised to E.164, or refused with the reason."""

from __future__ import annotations

import pytest

from storage.phones import InvalidPhone, to_e164


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+33 6 12 34 56 78", "", "+33612345678"),
        ("+201009129288", "", "+201009129288"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("  +91 98765 43210 ", "", "+919876543210"),
    ],
)
def test_normalised(text: str, region: str, expected: str) -> None:
    assert to_e164(text, region) == expected


@pytest.mark.parametrize(
    ("text", "region", "reason"),
    [
        ("", "", "is empty"),
        ("0612345678", "", "has no country code"),
        ("+33 12", "", "not a valid number"),
        ("hello", "FR", "not a phone number"),
        ("+999 123456789", "", "not a phone number"),
        ("+" + "1" * 40, "", "too long"),
    ],
)
def test_refused_with_reason(text: str, region: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        to_e164(text, region)
    assert reason in str(caught.value)
