"""How many digits after the decimal point each currency has (ISO 4217's minor units).

Prices are kept as integer minor units of the shop's currency (DESIGN's data model); the
daemon turns text into them and the TUI turns them back into text with this one table.
Only the currencies that differ from 2 are listed. Written by hand: babel has the table but
is a large dependency for a dozen entries.
"""

from __future__ import annotations

_ZERO = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "UYI",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_THREE = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])


def minor_digits(currency: str) -> int:
    """Digits after the decimal point in `currency` (INR 2, JPY 0, KWD 3)."""
    code = currency.upper()
    if code in _ZERO:
        return 0
    if code in _THREE:
        return 3
    return 2
