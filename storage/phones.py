"""Phone numbers: parsed and normalised to E.164 with phonenumbers, refused in plain words."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    """The text is not a phone number that can receive an SMS; the message says why."""


def to_e164(text: str, default_region: str = "") -> str:
    """`text` as +<country><number>; numbers without + use `default_region` (e.g. "FR")."""
    raw = text.strip()
    if not raw:
        raise InvalidPhone("is empty; give a number like +33612345678")
    if len(raw) > 32:
        raise InvalidPhone("is too long to be a phone number")
    region = default_region.upper() or None
    if not raw.startswith("+") and region is None:
        raise InvalidPhone(
            f"{raw!r} has no country code; write it as +<country><number> "
            "(or set [sms] default_region)"
        )
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number ({_reason(exc)})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{raw!r} is not a valid number in its country")
    # Landlines are not refused here: many countries cannot tell them from mobiles by the
    # number alone; the provider says so (Twilio 21614) and the message fails then.
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _reason(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(exc.error_type, "cannot be read")
