"""How the app writes times, money and counts for a person to read."""

from __future__ import annotations

from datetime import datetime

from storage.currency import minor_digits


def parse_time(text: str | None) -> datetime | None:
    """An API timestamp (ISO-8601 with a zone) as an aware datetime; None stays None."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def when(text: str | None, now: datetime) -> str:
    """Local wall time; the date only when it is not today."""
    moment = parse_time(text)
    if moment is None:
        return "—"
    local = moment.astimezone(now.tzinfo)
    if local.date() == now.astimezone(now.tzinfo).date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def ago(text: str | None, now: datetime) -> str:
    """How long ago, in the largest unit that fits: '42 s', '5 min', '3 h', '2 d'."""
    moment = parse_time(text)
    if moment is None:
        return "—"
    return span((now - moment).total_seconds())


def span(seconds: float) -> str:
    """A duration in the largest unit that fits: '42 s', '5 min', '3 h', '2 d'."""
    whole = max(0, int(seconds))
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if whole >= size:
            return f"{whole // size} {unit}"
    return f"{whole} s"


def money(minor: int | None, currency: str = "", *, label: bool = True) -> str:
    """Integer minor units as '12.50 INR', '1,500 JPY' or '1.250 KWD': the currency's own
    digits (two when it is not known); `label=False` leaves its code out."""
    if minor is None:
        return "—"
    digits = minor_digits(currency) if currency else 2
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    text = f"{sign}{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    return f"{text} {currency}".rstrip() if label else text
