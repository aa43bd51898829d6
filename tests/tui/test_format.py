"""The TUI writes an amount as the daemon does: in the shop currency's own digits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon.services.backoffice import money as daemon_money
from tui.format import money


@given(
    st.integers(min_value=-daemon_money.MAX_MINOR, max_value=daemon_money.MAX_MINOR),
    st.sampled_from(["INR", "EUR", "JPY", "KRW", "KWD", "BHD"]),
)
def test_an_amount_reads_as_the_api_writes_it(minor: int, currency: str) -> None:
    shown = money(minor, currency, label=False).replace(",", "")
    assert shown == daemon_money.to_text(minor, currency)


def test_a_yen_shop_sees_yen_not_hundredths() -> None:
    assert money(150_000, "JPY") == "150,000 JPY"  # not "1,500.00 JPY"
    assert money(1_250, "KWD") == "1.250 KWD"
    assert money(1_250, "INR") == "12.50 INR"
    assert money(-5, "INR", label=False) == "-0.05"
    assert money(None, "JPY") == "—"
