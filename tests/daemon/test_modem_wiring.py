"""[modem] keys reach the modem under their own names: the daemon's wiring builds the provider
from config.toml, and the modem simulator shows the keys at work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import httpx
import pytest

from daemon.app.wiring import build_router, modem_config
from daemon.config import ModemSettings, load_config
from daemon.runtime.clock import SystemClock
from providers.base import Outgoing, TransientError
from providers.modem.config import ModemConfig
from providers.modem.driver import ModemState
from providers.modem.provider import ModemProvider
from providers.modem.simulator import ModemSimulator

TO = "+4915112340000"
# [modem] keys the daemon itself reads (matching delivery reports), not the modem.
DAEMON_ONLY = {"report_window_hours"}


def no_http() -> httpx.AsyncClient:
    raise AssertionError("the modem speaks no HTTP")


def sms(body: str, message_id: int) -> Outgoing:
    return Outgoing(message_id=message_id, channel="sms", recipient=TO, body=body)


def test_the_record_has_every_modem_key_under_its_config_name() -> None:
    record = {item.name for item in fields(ModemConfig)}
    assert record == set(ModemSettings.model_fields) - DAEMON_ONLY


def test_every_key_from_config_toml_lands_in_the_record(
    write_config: Callable[..., Path],
) -> None:
    # Values unlike the defaults, so a key the builder forgot shows as a default.
    values = {
        "port": '"/dev/ttyUSB7"',
        "baudrate": "9600",
        "pin": '"4321"',
        "smsc": '"+33609001390"',
        "segments_per_minute": "7.0",
        "segments_burst": "2",
        "send_timeout_seconds": "40.0",
        "status_reports": "false",
        "multipart_timeout_seconds": "900.0",
        "poll_seconds": "30.0",
        "command_timeout_seconds": "8.0",
        "boot_timeout_seconds": "90.0",
        "registration_timeout_seconds": "180.0",
        "signal_seconds": "120.0",
        "reconnect_max_seconds": "300.0",
    }
    assert set(values) == {item.name for item in fields(ModemConfig)}
    text = "[modem]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())
    settings = load_config(write_config(text), {}).settings
    record = modem_config(settings.modem)
    defaults = modem_config(ModemSettings(port="/dev/ttyUSB0"))
    for key in values:
        assert getattr(record, key) != getattr(defaults, key), key
    assert record.pin == "4321" and "4321" not in repr(record)


async def test_burst_and_command_timeout_from_config_toml_reach_the_modem(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    sim = ModemSimulator(link=tmp_path / "modem")
    await sim.start()
    config = write_config(
        '[sms]\nchain = ["modem"]\n'
        f'[modem]\nport = "{tmp_path / "modem"}"\n'
        "segments_per_minute = 60.0\n"
        "segments_burst = 1\n"
        "command_timeout_seconds = 1.0\n"
    )
    router, _ = build_router(load_config(config, {}).settings, no_http, SystemClock())
    [slot] = router.chain("sms")
    provider = slot.provider
    assert isinstance(provider, ModemProvider)
    try:
        await provider.start()
        assert await provider.driver.wait_for_state(ModemState.READY, timeout=8.0)

        # A `> ` prompt 2 s late: the 5 s default would wait for it and send; 1 s gives up.
        sim.slow_prompt(2.0)
        with pytest.raises(TransientError, match="nothing was sent"):
            await provider.send(sms("too slow", 1))
        await asyncio.sleep(2.0)  # let the late prompt pass (ESC abandoned the message)
        assert sim.sent == []

        # One segment a second with no burst: the second waits its turn, where the default
        # burst of 3 would let both out at once.
        started = time.monotonic()
        await provider.send(sms("first", 2))
        await provider.send(sms("second", 3))
        assert time.monotonic() - started >= 0.9
        assert [sent.submit.text for sent in sim.sent] == ["first", "second"]
    finally:
        await provider.close()
        await sim.stop()
