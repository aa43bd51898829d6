"""Money as integer minor units of the shop's currency, and back to decimal text.

The digits of each currency are ISO 4217's (storage/currency.py, shared with the TUI).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from storage.currency import minor_digits

__all__ = ["MAX_MINOR", "minor_digits", "to_minor", "to_text"]

# A bound well inside SQLite's 64-bit integers, so a total of many lines cannot overflow.
MAX_MINOR = 10**13


def to_minor(value: object, currency: str) -> int:
    """A price given as a number or decimal text (e.g. 12.5, "12.50") in minor units.

    Raises ValueError, with a sentence for the API, for negatives, non-numbers and prices
    with more decimals than the currency has.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be a number like 12.50")
    try:
        # str() first: a float's repr is its shortest exact text (12.5, not 12.4999...).
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("must be a number like 12.50") from None
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    if amount < 0:
        raise ValueError("must not be negative")
    digits = minor_digits(currency)
    minor = amount.scaleb(digits)
    if minor != minor.to_integral_value():
        raise ValueError(f"has more decimals than {currency.upper()} has ({digits})")
    result = int(minor)
    if result > MAX_MINOR:
        raise ValueError("is too large")
    return result


def to_text(minor: int, currency: str) -> str:
    """Minor units as decimal text with the currency's digits: 1250 INR -> "12.50"."""
    digits = minor_digits(currency)
    return str(Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))
