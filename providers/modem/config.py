"""ModemConfig: every setting the modem provider and its driver use, in one frozen record."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True, slots=True, kw_only=True)
class ModemConfig:
    """The [modem] settings, named as the config names them and read under those names by
    `ModemProvider` and `ModemDriver` alike (config.toml says what each one means).

    No defaults here: config.toml and `daemon.config.ModemSettings` hold them, and
    `daemon.app.wiring.modem_config` builds this record from them. What a shop never needs to
    tune is a constant next to the code that uses it (`RECONNECT_MIN_SECONDS`,
    `BUSY_TIMEOUT_SECONDS` in driver.py), with the reason there.
    """

    # The connection.
    port: str
    baudrate: int
    pin: str = field(repr=False)  # empty when the SIM asks for none; never in a log line
    smsc: str  # empty: the one the SIM knows
    # Sending.
    segments_per_minute: float
    segments_burst: int
    send_timeout_seconds: float
    status_reports: bool
    # Receiving.
    multipart_timeout_seconds: float
    poll_seconds: float
    # Talking to the modem and keeping it up.
    command_timeout_seconds: float
    boot_timeout_seconds: float
    registration_timeout_seconds: float
    signal_seconds: float
    reconnect_max_seconds: float

    def __post_init__(self) -> None:
        if not self.port:
            raise ValueError("the modem needs a serial port")
        if self.segments_per_minute <= 0:
            raise ValueError("modem segments_per_minute must be above 0")
        if self.segments_burst < 1:
            raise ValueError("modem segments_burst must be at least 1")
        for item in fields(self):
            if item.name.endswith("_seconds") and getattr(self, item.name) <= 0:
                raise ValueError(f"modem {item.name} must be above 0")
