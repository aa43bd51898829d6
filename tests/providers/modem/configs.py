"""A ModemConfig for tests against the simulator: config.toml's defaults, timings shortened."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from providers.modem.config import ModemConfig


def fast_config(port: str, **changes: Any) -> ModemConfig:
    """The simulator answers in milliseconds: waits of seconds would only slow the tests."""
    config = ModemConfig(
        port=port,
        baudrate=115200,
        pin="",
        smsc="",
        segments_per_minute=60_000.0,
        segments_burst=3,
        send_timeout_seconds=2.0,
        status_reports=True,
        multipart_timeout_seconds=600.0,
        poll_seconds=60.0,
        command_timeout_seconds=1.0,
        boot_timeout_seconds=3.0,
        registration_timeout_seconds=2.0,
        signal_seconds=60.0,
        reconnect_max_seconds=0.2,
    )
    return replace(config, **changes)
