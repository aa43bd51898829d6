"""The alert rule (TGTG Scanner's): one alert per rising edge of items_available, 0 to more.

A first sighting, a change between positive counts and a drop to 0 are not edges; a sell-out
followed by a restock is a new one.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.sms_text import analyze
from providers.tgtg.client import Observation

SMS_SEGMENT_GSM7 = 160
SMS_SEGMENT_UCS2 = 70
MIN_NAME = 8


def is_rising_edge(previous: int | None, current: int) -> bool:
    """True for 0 -> >0; None (never seen before) is a first sighting, not an edge."""
    return previous == 0 and current > 0


def edge_key(subscriber_id: int, item_id: str, zero_since: str, last_alert: str | None) -> str:
    """The idempotency key of one edge: the subscriber, the item, when the stored 0 was last
    written and when the last alert was. A retry, or a crash before the count is stored, gives
    the same key; the next edge (after a new 0 and a new alert) a different one."""
    return f"tgtg:{subscriber_id}:{item_id}:{zero_since}:{last_alert or '-'}"


def price_text(item: Observation) -> str | None:
    if item.price_minor is None:
        return None
    amount = item.price_minor / 10**item.price_decimals
    return f"{amount:.{item.price_decimals}f} {item.currency or ''}".strip()


def pickup_text(item: Observation, fallback_zone: str = "UTC") -> str | None:
    """The pickup window in the store's time zone, e.g. "22/11 18:00-18:30"."""
    if item.pickup_start is None or item.pickup_end is None:
        return None
    try:
        zone = ZoneInfo(item.store_time_zone or fallback_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(fallback_zone)
    start: datetime = item.pickup_start.astimezone(zone)
    end: datetime = item.pickup_end.astimezone(zone)
    return f"{start:%d/%m %H:%M}-{end:%H:%M}"


def alert_text(item: Observation, fallback_zone: str = "UTC") -> str:
    """The alert: store, count, price, pickup window, link; one GSM-7 segment where it can
    (the store name is shortened first, since the count, time and link matter more)."""
    bags = f"{item.items_available} bag{'s' if item.items_available != 1 else ''}"
    details = [bags]
    if (price := price_text(item)) is not None:
        details.append(price)
    if (pickup := pickup_text(item, fallback_zone)) is not None:
        details.append(f"pickup {pickup}")
    tail = f": {', '.join(details)} {item.sharing_url}"
    name = item.display_name or item.store_name or f"item {item.item_id}"
    while True:
        text = name + tail
        checked = analyze(text)
        if checked.segments == 1 or len(name.rstrip(".")) <= MIN_NAME:
            return text
        single = SMS_SEGMENT_GSM7 if checked.encoding == "gsm7" else SMS_SEGMENT_UCS2
        keep = max(MIN_NAME, len(name.rstrip(".")) - max(1, checked.units - single) - 1)
        name = name[:keep].rstrip() + "."
