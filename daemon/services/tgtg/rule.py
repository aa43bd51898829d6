"""The alert rule (TGTG Scanner's): one alert per rising edge of items_available, 0 to more.

A first sighting, a change between positive counts and a drop to 0 are not edges; a sell-out
followed by a restock is a new one. Opt-in extras: a price drop while bags are available, and
a watch list that limits alerts to some items. The alert's wording (SMS, push title, e-mail)
is here too.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.sms_text import analyze
from providers.tgtg.client import Observation
from storage.models import Subscriber

SMS_SEGMENT_GSM7 = 160
SMS_SEGMENT_UCS2 = 70
MIN_NAME = 8
BAGS_AVAILABLE = "bags available"
PRICE_DOWN = "price down"
# The end of an alert SMS to a subscriber who opted in to reserve by reply (GSM-7, so it
# costs characters, not a switch to UCS-2; the name is shortened first to make room).
RESERVE_OFFER = " Reply R to reserve 1."
# Only these become a link in the HTML part; anything else is shown as text.
LINK_SCHEMES = ("https://", "http://")


@dataclass(frozen=True, slots=True)
class AlertMail:
    """One alert as an e-mail: its subject, its plain-text part and its HTML part."""

    subject: str
    text: str
    html: str


def is_rising_edge(previous: int | None, current: int) -> bool:
    """True for 0 -> >0; None (never seen before) is a first sighting, not an edge."""
    return previous == 0 and current > 0


def is_price_drop(
    previous_count: int, previous_price: int | None, count: int, price: int | None
) -> bool:
    """The price went down since the last observation while bags were there, then and now
    (the ask in TGTG Scanner's #430/#634: only while bags are available)."""
    if previous_price is None or price is None:
        return False
    return previous_count > 0 and count > 0 and price < previous_price


def watches(subscriber: Subscriber, item_id: str) -> bool:
    """Whether the subscriber wants alerts for the item: an empty watch list means all."""
    return not subscriber.watch_items or item_id in subscriber.watch_items


def price_drop_key(subscriber_id: int, item_id: str, seen_at: str, price_minor: int) -> str:
    """The idempotency key of one price drop: the observation it is compared with (its time)
    and the new price; a retry gives the same key, the next drop another."""
    return f"tgtg-price:{subscriber_id}:{item_id}:{seen_at}:{price_minor}"


def edge_key(subscriber_id: int, item_id: str, zero_since: str, last_alert: str | None) -> str:
    """The idempotency key of one edge: the subscriber, the item, when the stored 0 was last
    written and when the last alert was. A retry, or a crash before the count is stored, gives
    the same key; the next edge (after a new 0 and a new alert) a different one."""
    return f"tgtg:{subscriber_id}:{item_id}:{zero_since}:{last_alert or '-'}"


def email_key(key: str) -> str:
    """The e-mail alert's idempotency key for an edge's (or a price drop's) `key`. Keys are
    unique per message: the SMS takes `key` itself and each push message "push:<key>:<token>",
    so the e-mail needs its own."""
    return f"email:{key}"


def price_text(item: Observation, minor: int | None = None) -> str | None:
    minor = item.price_minor if minor is None else minor
    if minor is None:
        return None
    amount = minor / 10**item.price_decimals
    return f"{amount:.{item.price_decimals}f} {item.currency or ''}".strip()


def pickup_text(
    item: Observation, fallback_zone: str = "UTC", *, name_zone: bool = False
) -> str | None:
    """The pickup window in the store's time zone (the shop's when TGTG gives none), e.g.
    "22/11 18:00-18:30"; with `name_zone`, "22/11 18:00-18:30 (Europe/Berlin)"."""
    if item.pickup_start is None or item.pickup_end is None:
        return None
    try:
        zone = ZoneInfo(item.store_time_zone or fallback_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(fallback_zone)
    start: datetime = item.pickup_start.astimezone(zone)
    end: datetime = item.pickup_end.astimezone(zone)
    window = f"{start:%d/%m %H:%M}-{end:%H:%M}"
    return f"{window} ({zone.key})" if name_zone else window


def item_name(item: Observation) -> str:
    """The item's name on one line: the display name, else the store's, else its id."""
    name = " ".join((item.display_name or item.store_name).split())
    return name or f"item {item.item_id}"


def alert_subject(item: Observation, was_minor: int | None = None) -> str:
    """The push title and the e-mail subject: "<item>: bags available" (or "price down")."""
    return f"{item_name(item)}: {BAGS_AVAILABLE if was_minor is None else PRICE_DOWN}"


def alert_mail(
    item: Observation, fallback_zone: str = "UTC", was_minor: int | None = None
) -> AlertMail:
    """The alert as an e-mail: a headline, then one line each for the store, the bags, the
    price, the pickup window (its time zone named) and the link; missing ones are left out.
    The HTML part says the same, every value escaped."""
    bags = f"{item.items_available} bag{'s' if item.items_available != 1 else ''}"
    price = price_text(item)
    if was_minor is not None and price is not None:
        price = f"{price} (was {price_text(item, was_minor)})"
        headline = f"{item_name(item)}: price down to {price}"
    else:
        headline = f"{item_name(item)}: {bags} available"
    fields = [("Store", " ".join(item.store_name.split())), ("Bags", str(item.items_available))]
    if price is not None:
        fields.append(("Price", price))
    if (pickup := pickup_text(item, fallback_zone, name_zone=True)) is not None:
        fields.append(("Pick-up", pickup))
    fields = [(label, value) for label, value in fields if value]
    url = item.sharing_url.strip()
    lines = [headline, "", *(f"{label}: {value}" for label, value in fields)]
    rows = [
        f'<tr><th align="left">{label}</th><td>{html.escape(value)}</td></tr>'
        for label, value in fields
    ]
    if url:
        lines.append(f"Link: {url}")
        shown = html.escape(url)
        link = f'<a href="{shown}">{shown}</a>' if url.startswith(LINK_SCHEMES) else shown
        rows.append(f'<tr><th align="left">Link</th><td>{link}</td></tr>')
    page = (
        f"<html><body>\n<h2>{html.escape(headline)}</h2>\n<table>\n"
        + "\n".join(rows)
        + "\n</table>\n</body></html>\n"
    )
    return AlertMail(
        subject=alert_subject(item, was_minor), text="\n".join(lines) + "\n", html=page
    )


def alert_text(
    item: Observation,
    fallback_zone: str = "UTC",
    was_minor: int | None = None,
    *,
    reserve: bool = False,
) -> str:
    """The alert: store, count, price, pickup window, link; one GSM-7 segment where it can
    (the store name is shortened first, since the count, time and link matter more). With
    `was_minor` it is a price-drop alert: the new price first, then the old one. With
    `reserve` it ends offering "reply R" (RESERVE_OFFER)."""
    bags = f"{item.items_available} bag{'s' if item.items_available != 1 else ''}"
    details = [bags]
    if was_minor is not None:
        details = [f"price down to {price_text(item)} (was {price_text(item, was_minor)})", bags]
    elif (price := price_text(item)) is not None:
        details.append(price)
    if (pickup := pickup_text(item, fallback_zone)) is not None:
        details.append(f"pickup {pickup}")
    tail = f": {', '.join(details)} {item.sharing_url}" + (RESERVE_OFFER if reserve else "")
    name = item.display_name or item.store_name or f"item {item.item_id}"
    while True:
        text = name + tail
        checked = analyze(text)
        if checked.segments == 1 or len(name.rstrip(".")) <= MIN_NAME:
            return text
        single = SMS_SEGMENT_GSM7 if checked.encoding == "gsm7" else SMS_SEGMENT_UCS2
        keep = max(MIN_NAME, len(name.rstrip(".")) - max(1, checked.units - single) - 1)
        name = name[:keep].rstrip() + "."
