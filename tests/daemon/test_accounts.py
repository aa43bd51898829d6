"""The back office's pure parts: money, tokens, roles, the throttle, and `shopbell user add`."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import jwt
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from daemon.admin.cli import cli
from daemon.config import load_config
from daemon.runtime.clock import ManualClock
from daemon.runtime.paths import PathError
from daemon.services.backoffice import money, periods
from daemon.services.backoffice.accounts import FREE_FAILURES, LOCK_MAX, lock_for
from daemon.services.backoffice.roles import ROLES, Actor, can, designation_matches, may_create
from daemon.services.backoffice.tokens import TokenIssuer, ensure_jwt_key
from storage.connection import open_for_writing

KEY = b"k" * 32


@given(st.integers(min_value=0, max_value=money.MAX_MINOR), st.sampled_from(["INR", "JPY", "KWD"]))
def test_minor_units_round_trip(minor: int, currency: str) -> None:
    assert money.to_minor(money.to_text(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("12.5", "INR", 1250),
        (12.5, "INR", 1250),
        (7, "JPY", 7),
        ("1.234", "KWD", 1234),
        (0, "EUR", 0),
    ],
)
def test_to_minor(value: object, currency: str, expected: int) -> None:
    assert money.to_minor(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency"),
    [("12.345", "INR"), ("1.5", "JPY"), ("-1", "INR"), ("nan", "INR"), (True, "INR"), ("", "INR")],
)
def test_to_minor_refuses(value: object, currency: str) -> None:
    with pytest.raises(ValueError):
        money.to_minor(value, currency)


def test_to_text() -> None:
    assert money.to_text(100000, "INR") == "1000.00"
    assert money.to_text(5, "KWD") == "0.005"
    assert money.to_text(150, "JPY") == "150"
    assert Decimal(money.to_text(1, "INR")) == Decimal("0.01")


def test_tokens_round_trip_and_expire() -> None:
    clock = ManualClock()
    issuer = TokenIssuer(KEY, clock, ttl=timedelta(minutes=15))
    token, expires = issuer.issue(Actor(account_id=7, username="asha", role="manager"))
    assert expires == clock.now() + timedelta(minutes=15)
    assert issuer.verify(token) == Actor(account_id=7, username="asha", role="manager")
    clock.advance(15 * 60 - 1)
    assert issuer.verify(token) is not None
    clock.advance(1)
    assert issuer.verify(token) is None


@pytest.mark.parametrize("algorithm", ["none", "HS512", "HS384"])
def test_other_algorithms_are_refused(algorithm: str) -> None:
    clock = ManualClock()
    now = int(clock.now().timestamp())
    claims = {"iss": "shopbell", "sub": "1", "role": "owner", "iat": now, "exp": now + 60}
    # The right key, long enough for each algorithm: only the algorithm is wrong.
    token = jwt.encode(claims, None if algorithm == "none" else KEY * 2, algorithm=algorithm)
    assert TokenIssuer(KEY * 2, clock).verify(token) is None


@pytest.mark.parametrize(
    "changes",
    [{"role": "god"}, {"sub": "abc"}, {"iss": "elsewhere"}, {"exp": None}, {"sub": None}],
)
def test_tokens_with_bad_claims_are_refused(changes: dict[str, object]) -> None:
    clock = ManualClock()
    now = int(clock.now().timestamp())
    claims: dict[str, object] = {"iss": "shopbell", "sub": "1", "role": "owner", "iat": now}
    claims["exp"] = now + 60
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    assert TokenIssuer(KEY, clock).verify(jwt.encode(claims, KEY, algorithm="HS256")) is None


def test_the_signing_key_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "jwt_key"
    key = ensure_jwt_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_jwt_key(path) == key
    path.write_text("damaged\n")
    with pytest.raises(PathError, match="log in again"):
        ensure_jwt_key(path)


def test_role_table() -> None:
    assert not can("cashier", "products.write")
    assert can("manager", "products.write")
    assert not can("customer", "orders.read_all")
    assert may_create(None, "customer")
    for role in ROLES:
        if role != "customer":
            assert not may_create(None, role)
            assert not may_create("customer", role)
            assert not may_create("cashier", role)
        assert may_create("owner", role)
    assert may_create("manager", "cashier")
    assert not may_create("manager", "manager")
    assert not may_create("manager", "owner")
    assert designation_matches("Manager", "manager")
    assert designation_matches("admin", "owner")
    assert designation_matches("staff", "cashier")
    assert not designation_matches("manager", "cashier")
    assert not designation_matches("staff", "customer")


def test_lock_grows_then_stops() -> None:
    assert lock_for(FREE_FAILURES - 1) is None
    assert lock_for(FREE_FAILURES) == timedelta(seconds=30)
    assert lock_for(FREE_FAILURES + 1) == timedelta(seconds=60)
    assert lock_for(FREE_FAILURES + 50) == LOCK_MAX


def test_days_across_dst() -> None:
    paris = ZoneInfo("Europe/Paris")
    start, end = periods.days_range(date(2026, 3, 29), date(2026, 3, 29), paris)
    # The day the clocks go forward has 23 hours.
    assert start == "2026-03-28T23:00:00.000000+00:00"
    assert end == "2026-03-29T22:00:00.000000+00:00"
    now = datetime(2026, 1, 10, 23, 30, tzinfo=UTC)
    assert periods.last_days(now, 7, ZoneInfo("Asia/Kolkata")) == (
        date(2026, 1, 5),
        date(2026, 1, 11),
    )


def test_user_add_makes_the_first_owner_on_a_fresh_install(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n')
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--config", str(config), "user", "add", "boss", "--role", "owner", "--password-stdin"],
        input="a long enough password\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "boss (owner)" in result.output
    settings = load_config(config).settings
    db = open_for_writing(settings.database_path)
    try:
        row = db.execute("SELECT username, role, password_hash FROM accounts").fetchone()
    finally:
        db.close()
    assert row[:2] == ("boss", "owner")
    assert row[2].startswith("$argon2id$")
    assert stat.S_IMODE((settings.data_dir / "jwt_key").stat().st_mode) == 0o600

    again = runner.invoke(
        cli,
        ["--config", str(config), "user", "add", "BOSS", "--password-stdin"],
        input="a long enough password\n",
    )
    assert again.exit_code == 1
    assert "already taken" in again.output
    weak = runner.invoke(
        cli, ["--config", str(config), "user", "add", "x2", "--password-stdin"], input="short\n"
    )
    assert weak.exit_code == 1
    assert "at least 8" in weak.output
