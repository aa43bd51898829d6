"""ModemDriver against the modem simulator: init per vendor profile, SIM and PIN, reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import serial_asyncio_fast

from providers.modem.driver import ModemDriver, ModemState, Ready
from providers.modem.pdu import Deliver, decode, encode_submit
from providers.modem.simulator import ModemSimulator
from tests.providers.modem.configs import fast_config

PIN = "1234"
TO = "+4915112340000"
PROFILES = ["generic", "huawei", "zte", "wavecom", "sierra", "quectel", "simcom"]

MakeSim = Callable[..., Awaitable[ModemSimulator]]
MakeDriver = Callable[..., Awaitable[ModemDriver]]


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "modem"


@pytest.fixture
async def make_sim(link: Path) -> AsyncIterator[MakeSim]:
    made: list[ModemSimulator] = []

    async def make(**settings: Any) -> ModemSimulator:
        sim = ModemSimulator(link=link, **settings)
        made.append(sim)
        await sim.start()
        return sim

    yield make
    for sim in made:
        await sim.stop()


@pytest.fixture
async def make_driver(link: Path) -> AsyncIterator[MakeDriver]:
    made: list[ModemDriver] = []

    async def make(**settings: Any) -> ModemDriver:
        # The signal checked often, so tests see the driver's watch at work.
        driver = ModemDriver(fast_config(str(link), **({"signal_seconds": 0.2} | settings)))
        made.append(driver)
        await driver.start()
        return driver

    yield make
    for driver in made:
        await driver.close()


async def settled(driver: ModemDriver, *states: ModemState, seconds: float = 8.0) -> ModemState:
    wanted = states or (ModemState.READY,)
    assert await driver.wait_for_state(*wanted, timeout=seconds), (driver.state, driver.detail)
    return driver.state


def ready_events(driver: ModemDriver) -> int:
    count = 0
    while not driver.events.empty():
        count += isinstance(driver.events.get_nowait(), Ready)
    return count


@pytest.mark.parametrize("profile", PROFILES)
async def test_every_profile_initialises_to_ready(make_sim, make_driver, profile) -> None:
    sim = await make_sim(profile=profile)
    driver = await make_driver()
    await settled(driver)
    info = driver.info
    assert info.imei == "356938035643809"
    assert info.model and info.manufacturer == sim.profile.manufacturer.strip()
    assert info.operator == "Sim Telecom"
    assert info.signal_dbm == -73
    assert info.smsc == "+4917600000000"
    assert "AT+CMGF=0" in sim.commands
    assert any(command.startswith("AT+CNMI=2,1,0,") for command in sim.commands)
    assert ready_events(driver) == 1
    # And it sends.
    reference = await driver.send_pdu(encode_submit(TO, f"hello from {profile}")[0])
    assert reference == sim.sent[0].message_reference
    assert sim.sent[0].submit.text == f"hello from {profile}"


@pytest.mark.parametrize(
    ("profile", "quirks"),
    [
        ("huawei", ["AT^CURC=0"]),
        ("zte", ["AT+ZCDRUN=8", "AT+ZOPRT=5"]),
        ("wavecom", ["AT+CFUN=1"]),  # its radio is off at power-up
    ],
)
async def test_vendor_quirks_are_sent(make_sim, make_driver, profile, quirks) -> None:
    sim = await make_sim(profile=profile)
    driver = await make_driver()
    await settled(driver)
    for command in quirks:
        assert command in sim.commands


async def test_quirks_of_one_vendor_are_not_sent_to_another(make_sim, make_driver) -> None:
    sim = await make_sim(profile="quectel")
    driver = await make_driver()
    await settled(driver)
    assert not [c for c in sim.commands if c.startswith(("AT^CURC", "AT+ZCDRUN", "AT+ZOPRT"))]


async def test_lte_only_module_registers_by_cereg(make_sim, make_driver) -> None:
    sim = await make_sim(profile="sierra")
    driver = await make_driver()
    await settled(driver)
    assert "AT+CEREG?" in sim.commands
    assert driver.info.registration == 1


# -- the SIM ----------------------------------------------------------------------------------


async def test_the_pin_is_entered_once(make_sim, make_driver) -> None:
    sim = await make_sim(pin=PIN)
    driver = await make_driver(pin=PIN)
    await settled(driver)
    assert sim.pin_attempts == 1
    assert driver.pin_attempts == 1


async def test_pin_first_modem_initialises_after_the_pin(make_sim, make_driver) -> None:
    # ZTE refuses even ATE0 and AT+CMEE until the PIN is in: they are sent again after it.
    sim = await make_sim(profile="zte", pin=PIN)
    driver = await make_driver(pin=PIN)
    await settled(driver)
    assert sim.pin_attempts == 1
    assert sim.commands.count("ATE0") == 2


async def test_a_wrong_pin_is_never_retried(make_sim, make_driver) -> None:
    sim = await make_sim(pin=PIN)
    driver = await make_driver(pin="0000")
    assert await settled(driver, ModemState.PIN_REJECTED) is ModemState.PIN_REJECTED
    assert "rejected" in driver.detail
    assert driver.pin_rejected
    await asyncio.sleep(0.5)  # the watcher polls the SIM, but never sends the PIN
    assert sim.pin_attempts == 1
    # Not even after the stick is replugged and the driver initialises again.
    await sim.unplug()
    await settled(driver, ModemState.DISCONNECTED)
    await sim.replug()
    await settled(driver, ModemState.PIN_REJECTED)
    assert sim.pin_attempts == 1
    assert sim.commands.count("AT+CPIN?") >= 2


async def test_a_pin_the_sim_accepted_is_entered_again_after_replug(make_sim, make_driver) -> None:
    sim = await make_sim(pin=PIN)
    driver = await make_driver(pin=PIN)
    await settled(driver)
    await sim.unplug()
    await settled(driver, ModemState.DISCONNECTED)
    await sim.replug()  # a power cycle: the SIM asks for its PIN again
    await settled(driver)
    assert sim.pin_attempts == 2


async def test_locked_sim_without_a_pin_waits_for_the_operator(make_sim, make_driver) -> None:
    sim = await make_sim(pin=PIN)
    driver = await make_driver()
    await settled(driver, ModemState.SIM_LOCKED)
    assert "PIN" in driver.detail
    assert sim.pin_attempts == 0


async def test_sim_puk(make_sim, make_driver) -> None:
    sim = await make_sim(pin=PIN)
    # Three restarts, each with the same wrong PIN in its config: each tries once.
    for _ in range(3):
        driver = await make_driver(pin="0000")
        await settled(driver, ModemState.PIN_REJECTED)
        await driver.close()
    assert sim.pin_attempts == 3
    driver = await make_driver(pin=PIN)
    await settled(driver, ModemState.SIM_PUK)
    assert "PUK" in driver.detail
    assert sim.pin_attempts == 3


async def test_sim_missing(make_sim, make_driver) -> None:
    sim = await make_sim()
    sim.remove_sim()
    driver = await make_driver()
    await settled(driver, ModemState.SIM_MISSING)


# -- network ----------------------------------------------------------------------------------


async def test_no_network_then_registration(make_sim, make_driver) -> None:
    sim = await make_sim()
    sim.set_registration(3)  # denied
    driver = await make_driver(registration_timeout_seconds=0.3)
    await settled(driver, ModemState.NO_NETWORK)
    assert "registration denied" in driver.detail
    # The SIM is usable without a network: stored messages can be read already.
    assert ready_events(driver) == 1
    assert await driver.list_stored() == []
    with pytest.raises(Exception, match="no network"):
        await driver.send_pdu(encode_submit(TO, "hello")[0])
    sim.set_registration(None)
    await settled(driver)
    await driver.send_pdu(encode_submit(TO, "hello")[0])


# -- connecting and reconnecting --------------------------------------------------------------


async def test_esc_at_connect_ends_a_send_left_half_finished(make_sim, make_driver) -> None:
    sim = await make_sim()
    # A previous process typed AT+CMGS, got its prompt and died before Ctrl-Z.
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=sim.path)
    writer.write(b"AT+CMGS=20\r")
    await asyncio.wait_for(reader.readuntil(b"> "), 2.0)
    writer.transport.abort()
    await asyncio.sleep(0.05)

    driver = await make_driver()
    await settled(driver)
    # Nothing went out: ESC abandoned the message rather than our commands becoming its text.
    assert sim.sent == []
    await driver.send_pdu(encode_submit(TO, "hello")[0])
    assert [sent.submit.text for sent in sim.sent] == ["hello"]


async def test_a_missing_port_backs_off_until_it_appears(link, make_sim, make_driver) -> None:
    driver = await make_driver()
    await settled(driver, ModemState.DISCONNECTED)
    await asyncio.sleep(0.3)
    assert "cannot open" in driver.detail and "retrying in" in driver.detail
    await make_sim()
    await settled(driver)


async def test_reconnect_after_unplug_initialises_again(make_sim, make_driver) -> None:
    sim = await make_sim()
    driver = await make_driver()
    await settled(driver)
    assert ready_events(driver) == 1
    await sim.unplug()
    await settled(driver, ModemState.DISCONNECTED)
    await asyncio.sleep(0.3)  # a few failed attempts while the port is away
    await sim.replug()
    await settled(driver)
    assert ready_events(driver) == 1  # the provider re-reads stored messages on it
    assert sim.commands.count("AT+CMGF=0") == 2
    await driver.send_pdu(encode_submit(TO, "after replug")[0])


async def test_a_modem_restart_is_noticed_and_initialised_again(make_sim, make_driver) -> None:
    sim = await make_sim(profile="quectel")
    driver = await make_driver()
    await settled(driver)
    sim.garbage(b"\r\nRDY\r\n")  # what a Quectel prints after it rebooted
    await asyncio.sleep(0.1)
    await settled(driver)
    assert sim.commands.count("AT+CMGF=0") == 2


async def test_a_stuck_modem_is_reopened(make_sim, make_driver) -> None:
    sim = await make_sim()
    driver = await make_driver(command_timeout_seconds=0.2, signal_seconds=60.0)
    await settled(driver)
    for _ in range(3):
        sim.silent_next("AT+CSQ")
        with pytest.raises(Exception, match="no answer"):
            await driver.signal()
    await settled(driver, ModemState.DISCONNECTED, ModemState.INITIALISING)
    await settled(driver)
    assert sim.commands.count("AT+CMGF=0") == 2


# -- storage ----------------------------------------------------------------------------------


async def test_list_read_delete(make_sim, make_driver) -> None:
    sim = await make_sim(profile="zte")  # ZTE: +CMGR: ,,<length> (empty <stat>)
    first, second = sim.preload("+4915199999999", "one")[0], sim.preload("Shop", "two")[0]
    driver = await make_driver()
    await settled(driver)
    listed = await driver.list_stored()
    by_index = {item.index: item for item in listed}
    assert {first, second} <= set(by_index)
    read = await driver.read(second)
    assert read is not None and read.stat is None and read.pdu == by_index[second].pdu
    message = decode(read.pdu, smsc=read.has_smsc)
    assert isinstance(message, Deliver) and (message.number, message.text) == ("Shop", "two")
    await driver.delete(first)
    assert sim.deleted == [first]
    assert await driver.read(first) is None
    await driver.delete(first)  # gone already: not an error
    assert await driver.check_mode()
