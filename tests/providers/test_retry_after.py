"""parse_retry_after: the one reading of Retry-After that Twilio, FCM and Fast2SMS share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers.retry_after import parse_retry_after

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),  # a date in the past means now
        ("Thu, 01 Jan 2026 12:00:30 -0000", 30.0),  # a date without a zone is UTC
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_dates(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds
