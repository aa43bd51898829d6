"""Fixtures for the OTP tests: the service on a real database, an outbox, a manual clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from daemon.runtime.clock import ManualClock
from daemon.services.otp.policy import OtpPolicy
from daemon.services.otp.service import OtpService
from daemon.services.outbox.service import Outbox
from storage.database import Database
from tests.daemon.otp.support import KEY


@pytest.fixture
def outbox(db: Database, clock: ManualClock) -> Outbox:
    return Outbox(db, clock)


@pytest.fixture
def make_service(db: Database, clock: ManualClock, outbox: Outbox) -> Callable[..., OtpService]:
    def make(**policy: Any) -> OtpService:
        return OtpService(db, clock, outbox, KEY, OtpPolicy(**policy), shop_name="Corner Shop")

    return make


@pytest.fixture
def service(make_service: Callable[..., OtpService]) -> OtpService:
    return make_service()
