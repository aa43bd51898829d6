"""The alert rule and the alert's text, as pure functions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from daemon.services.tgtg.rule import (
    RESERVE_OFFER,
    alert_mail,
    alert_subject,
    alert_text,
    edge_key,
    email_key,
    is_price_drop,
    is_rising_edge,
    price_drop_key,
)
from providers.sms_text import analyze
from providers.tgtg.client import Observation


def item(name: str = "Bakery Blue (Magic Bag)", count: int = 3, **changes: object) -> Observation:
    values: dict[str, object] = {
        "item_id": "774625",
        "store_name": "Bakery Blue",
        "display_name": name,
        "items_available": count,
        "pickup_start": datetime(2026, 11, 22, 17, 0, tzinfo=UTC),
        "pickup_end": datetime(2026, 11, 22, 17, 30, tzinfo=UTC),
        "price_minor": 399,
        "price_decimals": 2,
        "currency": "EUR",
        "store_time_zone": "Europe/Berlin",
        "sharing_url": "https://share.toogoodtogo.com/item/774625",
    } | changes
    return Observation(**values)  # type: ignore[arg-type]


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=30))
def test_alerts_are_exactly_the_zero_to_positive_steps(counts: list[int]) -> None:
    previous: int | None = None
    alerts = 0
    for count in counts:
        alerts += is_rising_edge(previous, count)
        previous = count
    expected = sum(1 for a, b in itertools.pairwise(counts) if a == 0 and b > 0)
    assert alerts == expected


def test_first_sighting_is_not_an_edge() -> None:
    assert not is_rising_edge(None, 4)
    assert is_rising_edge(0, 1)
    assert not is_rising_edge(2, 3) and not is_rising_edge(3, 0)


def test_edge_keys_differ_per_edge() -> None:
    assert edge_key(1, "9", "t0", None) != edge_key(1, "9", "t0", "t1")
    assert edge_key(1, "9", "t0", None) != edge_key(2, "9", "t0", None)


def test_the_email_key_of_an_edge_is_not_its_sms_or_push_key() -> None:
    for key in (edge_key(1, "9", "t0", None), price_drop_key(1, "9", "t0", 299)):
        assert email_key(key) != key  # the SMS takes the key itself
        assert not email_key(key).startswith("push:")  # push messages: "push:<key>:<token>"
        assert email_key(key) == email_key(key)
    assert email_key(edge_key(1, "9", "t0", None)) != email_key(edge_key(1, "9", "t0", "t1"))


def test_the_text_names_store_count_price_window_and_link() -> None:
    text = alert_text(item())
    assert text == (
        "Bakery Blue (Magic Bag): 3 bags, 3.99 EUR, pickup 22/11 18:00-18:30 "
        "https://share.toogoodtogo.com/item/774625"
    )
    assert "1 bag," in alert_text(item(count=1))


def test_a_long_store_name_is_shortened_to_one_segment() -> None:
    long_name = "The Very Long Name Of A Neighbourhood Bakery And Coffee House " * 3
    text = alert_text(item(name=long_name))
    assert analyze(text).segments == 1
    assert text.startswith("The Very Long") and text.endswith("/item/774625")
    assert "3 bags, 3.99 EUR, pickup 22/11 18:00-18:30" in text


def test_the_reserve_offer_ends_the_sms_and_it_stays_one_segment() -> None:
    text = alert_text(item(), reserve=True)
    assert text == (
        "Bakery Blue (Magic Bag): 3 bags, 3.99 EUR, pickup 22/11 18:00-18:30 "
        "https://share.toogoodtogo.com/item/774625 Reply R to reserve 1."
    )
    assert analyze(text).segments == 1
    long = alert_text(item(name="The Very Long Name Of A Neighbourhood Bakery " * 3), reserve=True)
    assert analyze(long).segments == 1 and long.endswith(RESERVE_OFFER)
    assert "Reply R" not in alert_text(item())


def test_missing_price_and_window_are_left_out() -> None:
    text = alert_text(item(price_minor=None, pickup_start=None, pickup_end=None))
    assert text == "Bakery Blue (Magic Bag): 3 bags https://share.toogoodtogo.com/item/774625"


def test_a_price_drop_counts_only_while_bags_are_there() -> None:
    assert is_price_drop(2, 399, 1, 299)
    assert not is_price_drop(2, 399, 2, 399) and not is_price_drop(2, 299, 2, 349)
    assert not is_price_drop(0, 399, 2, 299)  # that is a rising edge, alerted as such
    assert not is_price_drop(2, 399, 0, 299)  # sold out
    assert not is_price_drop(2, None, 2, 299) and not is_price_drop(2, 399, 2, None)


def test_the_price_drop_text_gives_new_and_old_price_in_one_segment() -> None:
    text = alert_text(item(price_minor=249), was_minor=399)
    assert text == (
        "Bakery Blue (Magic Bag): price down to 2.49 EUR (was 3.99 EUR), 3 bags, "
        "pickup 22/11 18:00-18:30 https://share.toogoodtogo.com/item/774625"
    )
    assert analyze(text).segments == 1
    long = alert_text(item(name="Neighbourhood Bakery And Coffee House " * 4), was_minor=399)
    assert analyze(long).segments == 1 and "(was 3.99 EUR)" in long


def test_the_email_names_store_count_price_window_and_link() -> None:
    mail = alert_mail(item(), "Asia/Kolkata")
    assert mail.subject == "Bakery Blue (Magic Bag): bags available"
    assert mail.text == (
        "Bakery Blue (Magic Bag): 3 bags available\n"
        "\n"
        "Store: Bakery Blue\n"
        "Bags: 3\n"
        "Price: 3.99 EUR\n"
        "Pick-up: 22/11 18:00-18:30 (Europe/Berlin)\n"
        "Link: https://share.toogoodtogo.com/item/774625\n"
    )
    assert "<h2>Bakery Blue (Magic Bag): 3 bags available</h2>" in mail.html
    for cell in ("Bakery Blue", "3", "3.99 EUR", "22/11 18:00-18:30 (Europe/Berlin)"):
        assert f"<td>{cell}</td>" in mail.html
    url = "https://share.toogoodtogo.com/item/774625"
    assert f'<a href="{url}">{url}</a>' in mail.html


def test_the_email_window_falls_back_to_the_shops_zone() -> None:
    mail = alert_mail(item(store_time_zone=None), "Asia/Kolkata")
    assert "Pick-up: 22/11 22:30-23:00 (Asia/Kolkata)\n" in mail.text


def test_the_email_escapes_what_tgtg_sends() -> None:
    mail = alert_mail(
        item(
            name='Soap <script>alert("x")</script>',
            store_name="Café <b>&</b>",
            sharing_url='https://share.toogoodtogo.com/item/1?a=1&b="2"',
        )
    )
    assert "<script>" not in mail.html and "<b>" not in mail.html
    assert "Soap &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in mail.html
    assert "<td>Café &lt;b&gt;&amp;&lt;/b&gt;</td>" in mail.html
    assert 'href="https://share.toogoodtogo.com/item/1?a=1&amp;b=&quot;2&quot;"' in mail.html
    # The text part is plain text: shown as it came.
    assert "Store: Café <b>&</b>\n" in mail.text
    # Not a web address: shown, never a link.
    odd = alert_mail(item(sharing_url="javascript:alert(1)"))
    assert "<a " not in odd.html and "<td>javascript:alert(1)</td>" in odd.html


def test_the_email_subject_is_one_line() -> None:
    assert alert_subject(item(name="Bakery\r\nBlue\t Bag")) == "Bakery Blue Bag: bags available"
    assert alert_subject(item(name="", store_name="")) == "item 774625: bags available"
    assert alert_subject(item(name="", store_name="Bakery Blue")) == "Bakery Blue: bags available"


def test_the_email_leaves_out_a_missing_price_window_and_link() -> None:
    mail = alert_mail(
        item(count=1, price_minor=None, pickup_start=None, pickup_end=None, sharing_url="")
    )
    assert mail.text == "Bakery Blue (Magic Bag): 1 bag available\n\nStore: Bakery Blue\nBags: 1\n"
    assert "Price" not in mail.html and "Pick-up" not in mail.html and "Link" not in mail.html


def test_the_price_drop_email_gives_new_and_old_price() -> None:
    mail = alert_mail(item(price_minor=249), was_minor=399)
    assert mail.subject == "Bakery Blue (Magic Bag): price down"
    assert mail.text.startswith(
        "Bakery Blue (Magic Bag): price down to 2.49 EUR (was 3.99 EUR)\n\n"
    )
    assert "Bags: 3\nPrice: 2.49 EUR (was 3.99 EUR)\n" in mail.text
    assert "<td>2.49 EUR (was 3.99 EUR)</td>" in mail.html
