"""`shopbell report daily|weekly`: figures by the shop's days, stored once per period."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from daemon.admin.cli import cli
from daemon.config import load_config
from daemon.runtime.clock import utc_iso
from daemon.services.backoffice.sales_report import period
from storage import orders, products
from storage.connection import open_for_writing
from storage.migrations import apply


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        '[shop]\nname = "Corner Shop"\ntimezone = "Asia/Kolkata"\ncurrency = "INR"\n'
    )
    (tmp_path / "data").mkdir()
    db = open_for_writing(load_config(path).settings.database_path)
    try:
        apply(db)
        db.execute(
            "INSERT INTO accounts (username, password_hash, role, created_at, updated_at) "
            "VALUES ('asha', 'x', 'customer', '2026-01-01', '2026-01-01')"
        )
        then = utc_iso(datetime(2026, 1, 1, tzinfo=UTC))
        shampoo = products.insert_product(
            db, sku="S", name="Shampoo", price_minor=60000, now=then, stock=100, category="shampoo"
        ).id
        # 2026-01-12 is a Monday. 23:30 and 00:15 in Kolkata, either side of midnight.
        for moment, quantity in (
            (datetime(2026, 1, 12, 18, 0, tzinfo=UTC), 1),  # Mon 12th 23:30
            (datetime(2026, 1, 12, 18, 45, tzinfo=UTC), 2),  # Tue 13th 00:15
            (datetime(2026, 1, 18, 18, 29, tzinfo=UTC), 1),  # Sun 18th 23:59
            (datetime(2026, 1, 18, 18, 30, tzinfo=UTC), 5),  # Mon 19th 00:00: next week
        ):
            orders.place_order(db, account_id=1, items=[(shampoo, quantity)], now=utc_iso(moment))
    finally:
        db.close()
    return path


def shopbell(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def test_a_daily_report_counts_the_shop_day(config: Path) -> None:
    result = shopbell(config, "report", "daily", "--date", "2026-01-13")
    assert result.exit_code == 0, result.output
    assert "Corner Shop: daily sales report, 2026-01-13" in result.output
    assert "orders: 1\n" in result.output
    assert "items sold: 2\n" in result.output
    assert "sales: 1200.00 INR" in result.output
    assert "asha on 2026-01-13: 1200.00 INR" in result.output


def test_a_weekly_report_runs_monday_to_sunday_and_is_stored_once(config: Path) -> None:
    result = shopbell(config, "report", "weekly", "--date", "2026-01-15", "--json")
    assert result.exit_code == 0, result.output
    stored = json.loads(result.output)
    assert (stored["start"], stored["end"]) == ("2026-01-12", "2026-01-18")
    assert stored["orders"] == 3
    assert stored["items"] == 4
    assert stored["total_minor"] == 240000
    assert [d["orders"] for d in stored["days"]] == [1, 1, 0, 0, 0, 0, 1]
    assert stored["high_value_users"] == [
        {"account_id": 1, "username": "asha", "day": "2026-01-13", "spent_minor": 120000}
    ]
    shopbell(config, "report", "weekly", "--date", "2026-01-12")
    db = open_for_writing(load_config(config).settings.database_path)
    try:
        rows = db.execute("SELECT kind, period_start, period_end FROM reports").fetchall()
    finally:
        db.close()
    assert [tuple(row) for row in rows] == [
        ("weekly", "2026-01-11T18:30:00.000000+00:00", "2026-01-18T18:30:00.000000+00:00")
    ]


def test_periods() -> None:
    assert period("daily", date(2026, 1, 14)) == (date(2026, 1, 14), date(2026, 1, 14))
    assert period("weekly", date(2026, 1, 18)) == (date(2026, 1, 12), date(2026, 1, 18))
    assert period("weekly", date(2026, 1, 19)) == (date(2026, 1, 19), date(2026, 1, 25))
