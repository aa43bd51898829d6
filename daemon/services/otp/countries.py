"""Where one-time codes may go: against SMS pumping through the public send route.

SMS pumping ("toll fraud"): a stranger asks for codes to many numbers in a range whose
operator shares the termination fee, usually abroad or premium-rate, and the shop pays.
Codes go only to the calling codes of `[otp] countries` (by default the country of
`[sms] default_region`), and never to premium-rate or shared-cost numbers, which no
customer logs in from. The number's type comes from libphonenumber's metadata.
"""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers
from phonenumbers import PhoneNumberType

# Types whose calls or texts are billed to the sender at a premium or shared with the
# receiving operator.
_PAID_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
}


def allowed_calling_codes(countries: Iterable[str], default_region: str) -> frozenset[int]:
    """[otp] countries as numbers; empty: [sms] default_region's; empty again: any country."""
    codes = frozenset(int(code) for code in countries)
    if codes or not default_region:
        return codes
    own = phonenumbers.country_code_for_region(default_region.upper())
    return frozenset({own}) if own else frozenset()


def destination_refusal(phone: str, allowed: frozenset[int]) -> str | None:
    """Why a code may not be sent to `phone` (E.164), or None when it may."""
    number = phonenumbers.parse(phone, None)
    if allowed and number.country_code not in allowed:
        listed = ", ".join(f"+{code}" for code in sorted(allowed))
        return (
            f"codes are sent only to numbers starting {listed} ([otp] countries); "
            f"+{number.country_code} is not one of them"
        )
    kind = _PAID_TYPES.get(phonenumbers.number_type(number))
    if kind is not None:
        return f"{phone} is {kind}; codes are never sent to such numbers"
    return None
