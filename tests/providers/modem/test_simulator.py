"""The modem simulator over a real pty, driven with pyserial as a driver would drive it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import serial
import serial_asyncio_fast

from providers.modem import pdu
from providers.modem.simulator import (
    REGISTRATION_SECONDS,
    ModemSimulator,
    run_simulator,
)
from providers.modem.simulator_profiles import PROFILES

NOW = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
REPLY_TIMEOUT = 2.0
# Long enough for the simulator (same loop) to answer; "nothing arrives" checks wait this long.
QUIET = 0.1
CUSTOMER = "+4915199999999"
SENDER = "+4917612345678"


def _is_final(line: str) -> bool:
    return line in ("OK", "ERROR", "COMMAND NOT SUPPORT") or line.startswith(
        ("+CME ERROR:", "+CMS ERROR:")
    )


class Port:
    """The driver's end: a pyserial-asyncio-fast connection with small read helpers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, path: str) -> Port:
        reader, writer = await serial_asyncio_fast.open_serial_connection(url=path)
        return cls(reader, writer)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_until(self, token: bytes) -> bytes:
        async with asyncio.timeout(REPLY_TIMEOUT):
            return await self.reader.readuntil(token)

    async def line(self) -> str:
        """The next non-empty line."""
        while True:
            text = (await self.read_until(b"\n")).decode("latin-1").strip()
            if text:
                return text

    async def until_final(self) -> list[str]:
        lines = [await self.line()]
        while not _is_final(lines[-1]):
            lines.append(await self.line())
        return lines

    async def command(self, line: str) -> list[str]:
        """Send one command line; every non-empty line up to the final result code."""
        await self.write(line.encode("latin-1") + b"\r")
        return await self.until_final()

    async def quiet(self, seconds: float = QUIET) -> bytes:
        """Whatever arrives within `seconds` (b"" when the modem stays silent)."""
        data = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    data += await self.reader.read(4096)
            except TimeoutError:
                break
        return data

    async def send(self, part: pdu.SubmitPart) -> list[str]:
        """A whole AT+CMGS exchange for one segment; the lines after the PDU."""
        await self.write(f"AT+CMGS={part.tpdu_length}\r".encode())
        await self.read_until(b"> ")
        await self.write(part.pdu.encode() + b"\x1a")
        return await self.until_final()

    def close(self) -> None:
        self.writer.close()


OpenModem = Callable[..., Awaitable[tuple[ModemSimulator, Port]]]


@pytest.fixture
async def open_modem(tmp_path: Path) -> AsyncIterator[OpenModem]:
    """Start a simulator (or the one given) behind a symlink and connect a Port to it."""
    opened: list[tuple[ModemSimulator, Port]] = []

    async def open_(
        sim: ModemSimulator | None = None, *, echo: bool = False, **options: Any
    ) -> tuple[ModemSimulator, Port]:
        if sim is None:
            options.setdefault("link", tmp_path / f"modem{len(opened)}")
            options.setdefault("clock", lambda: NOW)
            sim = ModemSimulator(**options)
        path = await sim.start()
        port = await Port.open(path)
        opened.append((sim, port))
        if not echo:
            assert await port.command("ATE0") == ["ATE0", "OK"]
        return sim, port

    yield open_
    for sim, port in opened:
        port.close()
        await sim.stop()


async def _enable_indications(port: Port, ds: int = 2) -> None:
    assert await port.command("AT+CMEE=1") == ["OK"]
    assert await port.command(f"AT+CNMI=2,1,0,{ds},0") == ["OK"]


# --- echo, result codes, command lines ----------------------------------------------------


async def test_echo_is_on_until_ate0_and_back_with_ate1(open_modem: OpenModem) -> None:
    _, port = await open_modem(echo=True)

    assert await port.command("AT") == ["AT", "OK"]
    assert await port.command("ATE0") == ["ATE0", "OK"]
    assert await port.command("AT") == ["OK"]
    assert await port.command("ATE1") == ["OK"]
    assert await port.command("AT+CSQ") == ["AT+CSQ", "+CSQ: 20,99", "OK"]


async def test_atz_brings_echo_and_plain_errors_back(open_modem: OpenModem) -> None:
    _, port = await open_modem()
    assert await port.command("AT+CMEE=1") == ["OK"]

    assert await port.command("ATZ") == ["OK"]

    assert await port.command("AT+CMGR=9") == ["AT+CMGR=9", "ERROR"]


async def test_cmee_chooses_plain_numeric_or_verbose_errors(open_modem: OpenModem) -> None:
    _, port = await open_modem()

    assert await port.command("AT+CMGR=5") == ["ERROR"]
    assert await port.command("AT+CMEE=1") == ["OK"]
    assert await port.command("AT+CMGR=5") == ["+CMS ERROR: 321"]
    assert await port.command("AT+CMEE=2") == ["OK"]
    assert await port.command("AT+CMGR=5") == ["+CMS ERROR: invalid memory index"]
    assert await port.command("AT+CMEE?") == ["+CMEE: 2", "OK"]


async def test_unknown_commands_and_other_vendors_commands_are_errors(
    open_modem: OpenModem,
) -> None:
    _, port = await open_modem()

    assert await port.command("AT+NOPE") == ["ERROR"]
    assert await port.command("AT^CURC=0") == ["ERROR"]
    assert await port.command("AT+ZCDRUN=8") == ["ERROR"]


async def test_a_line_runs_chained_commands_with_one_final_code(open_modem: OpenModem) -> None:
    _, port = await open_modem()

    assert await port.command("ATE0V1Q0") == ["OK"]
    assert await port.command("AT+CMEE=1;+CSQ;+CMGF?") == ["+CSQ: 20,99", "+CMGF: 0", "OK"]
    assert await port.command("ATS3?") == ["013", "OK"]
    # The first error ends the line: the second command never runs.
    assert await port.command("AT+CMGF=1;+CSQ") == ["+CMS ERROR: 303"]


async def test_identity_and_network(open_modem: OpenModem) -> None:
    _, port = await open_modem(operator="Shop Net", signal_rssi=17)

    assert await port.command("AT+CGMI;+CGMM;+CGMR") == [
        "Shopbell",
        "Modem Simulator",
        "1.0",
        "OK",
    ]
    assert await port.command("AT+CGSN") == ["356938035643809", "OK"]
    assert await port.command("AT+CIMI") == ["262019876543210", "OK"]
    assert await port.command("AT+CFUN?") == ["+CFUN: 1", "OK"]
    assert await port.command("AT+CREG?") == ["+CREG: 0,1", "OK"]
    assert await port.command("AT+CREG=2;+CREG?") == ['+CREG: 2,1,"00A1","0000B2C3",2', "OK"]
    assert await port.command("AT+COPS=3,0;+COPS?") == ['+COPS: 0,0,"Shop Net",2', "OK"]
    assert await port.command("AT+CSQ") == ["+CSQ: 17,99", "OK"]
    assert await port.command("AT+CSCA?") == ['+CSCA: "+4917600000000",145', "OK"]
    assert await port.command("AT+CNUM") == ['+CNUM: ,"+4915112345678",145', "OK"]


async def test_esc_and_cr_at_connect_do_nothing(open_modem: OpenModem) -> None:
    sim, port = await open_modem()

    await port.write(b"\x1b\r")

    assert await port.quiet() == b""
    assert await port.command("AT") == ["OK"]
    assert sim.commands == ["ATE0", "AT"]


async def test_noise_without_at_is_ignored(open_modem: OpenModem) -> None:
    sim, port = await open_modem()

    await port.write(b"\x00\xff0011000B91\r")

    assert await port.quiet() == b""
    assert await port.command("AT") == ["OK"]
    assert sim.commands == ["ATE0", "AT"]


# --- SIM PIN ------------------------------------------------------------------------------


async def test_a_pin_locked_sim_refuses_sim_commands_until_the_pin(
    open_modem: OpenModem,
) -> None:
    sim, port = await open_modem(pin="1234")
    assert await port.command("AT+CMEE=1") == ["OK"]

    assert await port.command("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert await port.command("AT+CMGL=4") == ["+CME ERROR: 11"]
    assert await port.command("AT+CGMI") == ["Shopbell", "OK"]
    assert await port.command("AT+CREG?") == ["+CREG: 0,0", "OK"]
    assert await port.command('AT+CPIN="1234"') == ["OK"]

    assert await port.command("AT+CPIN?") == ["+CPIN: READY", "OK"]
    assert await port.command("AT+CMGL=4") == ["OK"]
    assert sim.pin_attempts == 1
    assert 'AT+CPIN="****"' in sim.commands
    assert not any("1234" in command for command in sim.commands)


async def test_the_network_registers_a_moment_after_the_pin(open_modem: OpenModem) -> None:
    _, port = await open_modem(pin="1234")
    assert await port.command("AT+CREG=1") == ["OK"]

    assert await port.command('AT+CPIN="1234"') == ["OK"]

    assert await port.line() == "+CREG: 2"
    assert await port.command("AT+CREG?") == ["+CREG: 1,2", "OK"]
    assert await port.line() == "+CREG: 1"
    assert await port.command("AT+CREG?") == ["+CREG: 1,1", "OK"]


async def test_three_wrong_pins_lock_the_sim_until_the_puk(open_modem: OpenModem) -> None:
    sim, port = await open_modem(pin="1234")
    assert await port.command("AT+CMEE=1") == ["OK"]

    for _ in range(3):
        assert await port.command('AT+CPIN="0000"') == ["+CME ERROR: 16"]

    assert await port.command("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
    assert await port.command("AT+CMGL=4") == ["+CME ERROR: 12"]
    assert await port.command('AT+CPIN="1234"') == ["+CME ERROR: 12"]
    assert await port.command('AT+CPIN="12345678","4321"') == ["OK"]
    assert await port.command("AT+CPIN?") == ["+CPIN: READY", "OK"]
    assert sim.pin_attempts == 5
    assert 'AT+CPIN="****","****"' in sim.commands


async def test_a_pin_for_a_sim_that_wants_none_is_refused(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    assert await port.command("AT+CMEE=1") == ["OK"]

    assert await port.command('AT+CPIN="1234"') == ["+CME ERROR: 3"]
    assert sim.pin_attempts == 1


async def test_a_missing_sim(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    assert await port.command("AT+CMEE=1") == ["OK"]

    sim.remove_sim()

    assert await port.command("AT+CPIN?") == ["+CME ERROR: 10"]
    assert await port.command("AT+CSCA?") == ["+CME ERROR: 10"]
    assert await port.command('AT+CPIN="1234"') == ["+CME ERROR: 10"]


# --- sending ------------------------------------------------------------------------------


async def test_a_send_answers_a_reference_and_records_the_message(open_modem: OpenModem) -> None:
    sim, port = await open_modem(status_reports="none")
    first, second = (
        pdu.encode_submit(CUSTOMER, "Your order is ready"),
        pdu.encode_submit(CUSTOMER, "Pick it up today"),
    )

    assert await port.send(first[0]) == ["+CMGS: 0", "OK"]
    assert await port.send(second[0]) == ["+CMGS: 1", "OK"]

    assert [message.message_reference for message in sim.sent] == [0, 1]
    assert sim.sent[0].submit.text == "Your order is ready"
    assert sim.sent[0].submit.number == CUSTOMER
    assert sim.sent[0].pdu == first[0].pdu
    assert sim.sent[0].at == NOW


async def test_a_long_message_is_sent_segment_by_segment(open_modem: OpenModem) -> None:
    sim, port = await open_modem(status_reports="none")
    parts = pdu.encode_submit(CUSTOMER, "x" * 200, concat_ref=7)

    answers = [await port.send(part) for part in parts]

    assert answers == [["+CMGS: 0", "OK"], ["+CMGS: 1", "OK"]]
    assert [message.submit.concat for message in sim.sent] == [
        pdu.Concat(7, 2, 1, 8),
        pdu.Concat(7, 2, 2, 8),
    ]


async def test_the_prompt_is_not_line_terminated(open_modem: OpenModem) -> None:
    _, port = await open_modem()
    part = pdu.encode_submit(CUSTOMER, "hi")[0]

    await port.write(f"AT+CMGS={part.tpdu_length}\r".encode())

    assert await port.read_until(b"> ") == b"\r\n> "
    assert await port.quiet() == b""


async def test_a_wrong_length_or_a_bad_pdu_is_cms_304(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    assert await port.command("AT+CMEE=1") == ["OK"]
    part = pdu.encode_submit(CUSTOMER, "hi")[0]

    await port.write(f"AT+CMGS={part.tpdu_length + 1}\r".encode())
    await port.read_until(b"> ")
    await port.write(part.pdu.encode() + b"\x1a")
    assert await port.until_final() == ["+CMS ERROR: 304"]

    await port.write(b"AT+CMGS=3\r")
    await port.read_until(b"> ")
    await port.write(b"00ZZ11\x1a")
    assert await port.until_final() == ["+CMS ERROR: 304"]

    assert sim.sent == []


async def test_esc_abandons_the_message(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    part = pdu.encode_submit(CUSTOMER, "never mind")[0]

    await port.write(f"AT+CMGS={part.tpdu_length}\r".encode())
    await port.read_until(b"> ")
    await port.write(part.pdu[:10].encode() + b"\x1b")

    assert await port.until_final() == ["OK"]
    assert await port.command("AT") == ["OK"]
    assert sim.sent == []


async def test_a_driver_that_died_at_the_prompt_is_rescued_by_esc(
    open_modem: OpenModem,
) -> None:
    # Gammu's reason for ESC+CR at connect (docs/gsm.md, "Opening the port"): the modem still
    # waits for text.
    sim, port = await open_modem()
    await port.write(b"AT+CMGS=20\r")
    await port.read_until(b"> ")

    await port.write(b"AT\r")
    assert await port.quiet() == b""  # swallowed as message text
    await port.write(b"\x1b\r")

    assert await port.until_final() == ["OK"]
    assert await port.command("AT") == ["OK"]
    assert sim.sent == []


async def test_sends_wait_for_the_latency_one_after_another(open_modem: OpenModem) -> None:
    sim, port = await open_modem(send_latency=0.05, status_reports="none")
    parts = pdu.encode_submit(CUSTOMER, "y" * 300)
    loop = asyncio.get_running_loop()

    started = loop.time()
    for part in parts:
        await port.send(part)

    assert len(parts) == 2
    assert loop.time() - started >= 0.1
    assert len(sim.sent) == 2


async def test_no_network_refuses_the_send(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    assert await port.command("AT+CMEE=1") == ["OK"]

    sim.set_registration(3)

    assert await port.command("AT+CREG?") == ["+CREG: 0,3", "OK"]
    assert await port.send(pdu.encode_submit(CUSTOMER, "hi")[0]) == ["+CMS ERROR: 331"]
    sim.set_registration(None)
    assert await port.send(pdu.encode_submit(CUSTOMER, "hi")[0]) == ["+CMGS: 0", "OK"]


# --- status reports -----------------------------------------------------------------------


async def test_a_status_report_is_stored_and_announced_with_cdsi(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    await _enable_indications(port, ds=2)

    assert await port.send(pdu.encode_submit(CUSTOMER, "hi")[0]) == ["+CMGS: 0", "OK"]

    assert await port.line() == '+CDSI: "SR",1'
    assert await port.command('AT+CPMS="SR"') == ["+CPMS: 1,30,0,30,0,30", "OK"]
    header, body, ok = await port.command("AT+CMGR=1")
    report = pdu.decode(body, smsc=True)
    assert isinstance(report, pdu.StatusReport)
    assert (report.message_reference, report.number, report.status) == (0, CUSTOMER, 0)
    assert report.timestamp == NOW
    assert header == f"+CMGR: 0,,{len(body) // 2 - 1 - int(body[:2], 16)}"
    assert ok == "OK"
    assert await port.command("AT+CMGD=1") == ["OK"]
    assert sim.deleted_reports == [1]
    assert sim.stored_reports == {}
    assert sim.reports == [body]


async def test_a_failed_report_arrives_inline_with_cds(open_modem: OpenModem) -> None:
    _, port = await open_modem(status_reports="failed")
    await _enable_indications(port, ds=1)

    await port.send(pdu.encode_submit(CUSTOMER, "hi")[0])

    header = await port.line()
    body = await port.line()
    report = pdu.decode(body, smsc=True)
    assert header == f"+CDS: {len(body) // 2 - 1 - int(body[:2], 16)}"
    assert isinstance(report, pdu.StatusReport)
    assert report.failed


async def test_each_segment_gets_its_own_report(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    await _enable_indications(port, ds=2)

    for part in pdu.encode_submit(CUSTOMER, "z" * 200):
        await port.send(part)

    lines = {await port.line(), await port.line()}
    assert lines == {'+CDSI: "SR",1', '+CDSI: "SR",2'}
    reports = [pdu.decode(report, smsc=True) for report in sim.reports]
    references = [r.message_reference for r in reports if isinstance(r, pdu.StatusReport)]
    assert sorted(references) == [0, 1]


async def test_no_report_unless_requested_and_enabled(open_modem: OpenModem) -> None:
    sim, port = await open_modem(report_delay=0.01)
    await _enable_indications(port, ds=2)

    await port.send(pdu.encode_submit(CUSTOMER, "hi", status_report=False)[0])
    sim.status_reports = "none"
    await port.send(pdu.encode_submit(CUSTOMER, "hi")[0])

    assert await port.quiet() == b""
    assert sim.reports == []


# --- receiving ----------------------------------------------------------------------------


async def test_an_inbound_sms_is_announced_read_and_deleted(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    await _enable_indications(port)

    assert sim.receive(SENDER, "Is the shop open?") == [1]

    assert await port.line() == '+CMTI: "SM",1'
    header, body, ok = await port.command("AT+CMGR=1")
    message = pdu.decode(body, smsc=True)
    assert isinstance(message, pdu.Deliver)
    assert (message.number, message.text, message.timestamp) == (SENDER, "Is the shop open?", NOW)
    assert message.smsc == "+4917600000000"
    assert header == f"+CMGR: 0,,{len(body) // 2 - 9}"  # SCA: length octet + 8 octets
    assert ok == "OK"
    assert (await port.command("AT+CMGR=1"))[0].startswith("+CMGR: 1,,")
    assert await port.command("AT+CMGD=1,0") == ["OK"]
    assert sim.deleted == [1]
    assert sim.stored == {}


async def test_a_long_inbound_text_arrives_in_parts(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    await _enable_indications(port)

    assert sim.receive(SENDER, "w" * 300) == [1, 2]

    assert [await port.line(), await port.line()] == ['+CMTI: "SM",1', '+CMTI: "SM",2']
    parts = [pdu.decode(sim.stored[index], smsc=True) for index in (1, 2)]
    assert all(isinstance(part, pdu.Deliver) for part in parts)
    concats = [part.concat for part in parts if isinstance(part, pdu.Deliver)]
    assert [(c.total, c.seq) for c in concats if c] == [(2, 1), (2, 2)]
    assert concats[0] is not None and concats[1] is not None
    assert concats[0].ref == concats[1].ref


async def test_a_direct_inbound_sms_comes_with_cmt_and_is_not_stored(
    open_modem: OpenModem,
) -> None:
    sim, port = await open_modem()
    await _enable_indications(port)
    assert await port.command("AT+CSMS=1") == ["+CSMS: 1,1,1", "OK"]

    assert sim.receive(SENDER, "hello", mode="direct") == []

    header = await port.line()
    message = pdu.decode(await port.line(), smsc=True)
    assert header.startswith("+CMT: ,")
    assert isinstance(message, pdu.Deliver) and message.text == "hello"
    assert sim.stored == {}
    assert await port.command("AT+CNMA") == ["OK"]
    assert await port.command("AT+CNMA") == ["+CMS ERROR: 340"]


async def test_no_cmti_before_cnmi_asks_for_it(open_modem: OpenModem) -> None:
    sim, port = await open_modem()

    assert sim.receive(SENDER, "quiet") == [1]

    assert await port.quiet() == b""
    assert 1 in sim.stored


async def test_preloaded_messages_are_listed_with_cmgl(open_modem: OpenModem) -> None:
    sim = ModemSimulator(clock=lambda: NOW)
    assert sim.preload(SENDER, "first") == [1]
    assert sim.preload("+4930123456", "second") == [2]
    _, port = await open_modem(sim)

    assert await port.command("AT+CPMS?") == ['+CPMS: "SM",2,30,"SM",2,30,"SM",2,30', "OK"]
    listing = await port.command("AT+CMGL=4")

    assert listing[0].startswith("+CMGL: 1,0,,") and listing[2].startswith("+CMGL: 2,0,,")
    texts = [pdu.decode(listing[i], smsc=True) for i in (1, 3)]
    assert [(m.number, m.text) for m in texts if isinstance(m, pdu.Deliver)] == [
        (SENDER, "first"),
        ("+4930123456", "second"),
    ]
    assert listing[4] == "OK"
    # Listed once, they are read now: the unread listing is empty.
    assert await port.command("AT+CMGL=0") == ["OK"]
    assert (await port.command("AT+CMGL=1"))[0].startswith("+CMGL: 1,1,,")


async def test_a_full_memory_holds_messages_until_a_slot_is_free(open_modem: OpenModem) -> None:
    sim, port = await open_modem(storage_slots=1)
    await _enable_indications(port)

    assert sim.receive(SENDER, "one") == [1]
    assert sim.receive(SENDER, "two") == []
    assert await port.line() == '+CMTI: "SM",1'
    assert await port.quiet() == b""

    assert await port.command("AT+CMGD=1") == ["OK"]

    assert await port.line() == '+CMTI: "SM",1'
    message = pdu.decode(sim.stored[1], smsc=True)
    assert isinstance(message, pdu.Deliver) and message.text == "two"


# --- unplug and replug --------------------------------------------------------------------


async def test_unplug_ends_the_port_and_replug_brings_it_back(
    open_modem: OpenModem, tmp_path: Path
) -> None:
    link = tmp_path / "ttyModem"
    sim, port = await open_modem(link=link)
    await _enable_indications(port)
    sim.receive(SENDER, "before")
    assert await port.line() == '+CMTI: "SM",1'

    await sim.unplug()

    assert not link.exists() and not link.is_symlink()
    with pytest.raises(serial.SerialException):
        async with asyncio.timeout(REPLY_TIMEOUT):
            await port.reader.read(100)
    sim.receive(SENDER, "while away")  # stored; nobody hears the +CMTI

    await sim.replug()

    assert os.readlink(link).startswith("/dev/pts/")
    again = await Port.open(str(link))
    try:
        # A power cycle: echo is back on and the errors are plain again.
        assert await again.command("AT") == ["AT", "OK"]
        assert await again.command("ATE0") == ["ATE0", "OK"]
        listing = await again.command("AT+CMGL=4")
        texts = [pdu.decode(line, smsc=True) for line in listing[1:-1:2]]
        assert [m.text for m in texts if isinstance(m, pdu.Deliver)] == ["before", "while away"]
    finally:
        again.close()


async def test_unplug_mid_send_sends_nothing(open_modem: OpenModem) -> None:
    sim, port = await open_modem(send_latency=0.2)
    part = pdu.encode_submit(CUSTOMER, "lost in the cable")[0]
    await port.write(f"AT+CMGS={part.tpdu_length}\r".encode())
    await port.read_until(b"> ")
    await port.write(part.pdu.encode() + b"\x1a")
    await asyncio.sleep(0.05)

    await sim.unplug()

    with pytest.raises(serial.SerialException):
        await port.until_final()
    assert sim.sent == []


async def test_a_plain_pyserial_reader_sees_the_unplug_as_serial_exception(
    open_modem: OpenModem,
) -> None:
    sim, _ = await open_modem()
    blocking = serial.Serial(sim.path, timeout=REPLY_TIMEOUT)
    try:
        pending = asyncio.create_task(asyncio.to_thread(blocking.read, 100))
        await asyncio.sleep(0.05)

        await sim.unplug()

        with pytest.raises(serial.SerialException):
            await pending
        with pytest.raises(serial.SerialException):
            blocking.write(b"AT\r")
    finally:
        blocking.close()


# --- scripted faults ----------------------------------------------------------------------


async def test_fail_next_answers_the_scripted_error_n_times(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    sim.fail_next("AT+CSQ", "+CME ERROR: 14", times=2)

    assert await port.command("AT+CSQ") == ["+CME ERROR: 14"]
    assert await port.command("AT+CSQ") == ["+CME ERROR: 14"]
    assert await port.command("AT+CSQ") == ["+CSQ: 20,99", "OK"]


async def test_fail_next_on_cmgs_refuses_after_the_pdu(open_modem: OpenModem) -> None:
    sim, port = await open_modem(status_reports="none")
    sim.fail_next("AT+CMGS", "+CMS ERROR: 500")
    part = pdu.encode_submit(CUSTOMER, "hi")[0]

    assert await port.send(part) == ["+CMS ERROR: 500"]
    assert sim.sent == []
    assert await port.send(part) == ["+CMGS: 0", "OK"]


async def test_fail_recipient_refuses_every_send_to_that_number(open_modem: OpenModem) -> None:
    sim, port = await open_modem(status_reports="none")
    sim.fail_recipient("+49 151 99999999", "+CMS ERROR: 1")

    for _ in range(2):
        assert await port.send(pdu.encode_submit(CUSTOMER, "hi")[0]) == ["+CMS ERROR: 1"]
    assert await port.send(pdu.encode_submit("+4930123456", "hi")[0]) == ["+CMGS: 0", "OK"]
    assert [message.submit.number for message in sim.sent] == ["+4930123456"]


async def test_silent_next_leaves_one_command_unanswered(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    sim.silent_next("AT+CSQ")

    await port.write(b"AT+CSQ\r")

    assert await port.quiet() == b""
    assert await port.command("AT+CSQ") == ["+CSQ: 20,99", "OK"]
    assert sim.commands[-2:] == ["AT+CSQ", "AT+CSQ"]


async def test_slow_prompt_delays_the_prompt(open_modem: OpenModem) -> None:
    sim, port = await open_modem()
    sim.slow_prompt(0.2)
    loop = asyncio.get_running_loop()

    started = loop.time()
    await port.write(b"AT+CMGS=20\r")
    assert await port.quiet() == b""
    await port.read_until(b"> ")

    assert loop.time() - started >= 0.2
    await port.write(b"\x1b")
    assert await port.until_final() == ["OK"]


async def test_urc_before_prompt_arrives_between_command_and_prompt(
    open_modem: OpenModem,
) -> None:
    sim, port = await open_modem()
    sim.urc_before_prompt('+CMTI: "SM",3')
    part = pdu.encode_submit(CUSTOMER, "hi")[0]

    await port.write(f"AT+CMGS={part.tpdu_length}\r".encode())

    assert await port.read_until(b"> ") == b'\r\n+CMTI: "SM",3\r\n\r\n> '
    await port.write(part.pdu.encode() + b"\x1a")
    assert await port.until_final() == ["+CMGS: 0", "OK"]


async def test_garbage_goes_out_as_is(open_modem: OpenModem) -> None:
    sim, port = await open_modem()

    sim.garbage(b"\x00\xff+CMT")

    assert await port.read_until(b"+CMT") == b"\x00\xff+CMT"
    assert await port.quiet() == b""
    assert await port.command("AT") == ["OK"]


# --- vendor profiles ----------------------------------------------------------------------

INIT = ["AT+CMEE=1", "AT+CFUN?", "AT+CGMI", "AT+CSQ", "AT+CMGF=0", "AT+CPMS=?", "AT+CNMI=?"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_every_profile_answers_an_init_sequence(open_modem: OpenModem, profile: str) -> None:
    _, port = await open_modem(profile=profile)

    for command in INIT:
        assert (await port.command(command))[-1] == "OK", command


async def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="huawei"):
        ModemSimulator(profile="nokia")


async def test_huawei_says_command_not_support_and_chatters_until_curc(
    open_modem: OpenModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = dataclasses.replace(PROFILES["huawei"], urc_interval=0.02)
    monkeypatch.setitem(PROFILES, "huawei", fast)
    _, port = await open_modem(profile="huawei")

    # The chatter starts at once, so a ^RSSI may come before the answer on a busy machine.
    lines = await port.command("AT+NOPE")
    assert [line for line in lines if not line.startswith("^")] == ["COMMAND NOT SUPPORT"]
    early = "".join(f"{line}\r\n" for line in lines if line.startswith("^")).encode()
    noise = early + await port.read_until(b"^BOOT")
    assert b"^RSSI:20\r\n" in noise and b"^MODE:5,4\r\n" in noise
    await port.write(b"AT^CURC=0\r")
    await port.read_until(b"OK\r\n")

    assert await port.quiet() == b""
    assert await port.command("AT^PORTSEL=1") == ["OK"]


async def test_zte_refuses_everything_until_the_pin(open_modem: OpenModem) -> None:
    _, port = await open_modem(profile="zte", pin="1234", echo=True)

    assert await port.command("ATZ") == ["ATZ", "ERROR"]
    assert await port.command("AT") == ["AT", "ERROR"]
    assert await port.command("AT+CPIN?") == ["AT+CPIN?", "+CPIN: SIM PIN", "OK"]
    assert await port.command('AT+CPIN="1234"') == ['AT+CPIN="1234"', "OK"]

    assert await port.command("ATE0") == ["ATE0", "OK"]
    assert await port.command("AT+CMEE=1") == ["OK"]
    # SIM busy once right after unlocking, then the SMSC.
    assert await port.command("AT+CSCA?") == ["+CME ERROR: 14"]
    assert await port.command("AT+CSCA?") == ['+CSCA: "+4917600000000",145', "OK"]
    assert await port.command("AT+ZCDRUN=8;+ZOPRT=5") == ["OK"]


async def test_zte_interleaves_urcs_before_the_prompt_and_reads_without_stat(
    open_modem: OpenModem,
) -> None:
    sim, port = await open_modem(profile="zte", operator="Shop Net")
    part = pdu.encode_submit(CUSTOMER, "hi")[0]

    await port.write(f"AT+CMGS={part.tpdu_length}\r".encode())
    before_prompt = await port.read_until(b"> ")
    await port.write(part.pdu.encode() + b"\x1a")
    assert await port.until_final() == ["+CMGS: 0", "OK"]

    assert b'+ZDONR: "Shop Net",262,99,"CS_PS","ROAM_OFF"\r\n' in before_prompt
    assert b'+ZPASR: "UMTS"\r\n' in before_prompt
    sim.receive(SENDER, "hi")
    assert (await port.command("AT+CMGR=1"))[0].startswith("+CMGR: ,,")


async def test_zte_forgets_the_smsc_when_csmp_is_written(open_modem: OpenModem) -> None:
    _, port = await open_modem(profile="zte")
    assert await port.command("AT+CMEE=1") == ["OK"]
    await port.command("AT+CSCA?")  # the SIM-busy one

    assert await port.command("AT+CSMP=17,167,0,0") == ["OK"]

    assert await port.command("AT+CSCA?") == ['+CSCA: "",129', "OK"]
    assert await port.send(pdu.encode_submit(CUSTOMER, "hi")[0]) == ["+CMS ERROR: 330"]
    assert await port.command('AT+CSCA="+4917600000000",145') == ["OK"]
    assert await port.send(pdu.encode_submit(CUSTOMER, "hi")[0]) == ["+CMGS: 0", "OK"]


async def test_wavecom_cpin_has_no_ok_and_cfun_is_followed_by_515(
    open_modem: OpenModem,
) -> None:
    _, port = await open_modem(profile="wavecom")
    assert await port.command("AT+CMEE=1") == ["OK"]

    await port.write(b"AT+CPIN?\r")
    assert await port.read_until(b"READY\r\n") == b"\r\n+CPIN: READY\r\n"
    assert await port.quiet() == b""

    assert await port.command("AT+CFUN?") == ["+CFUN: 0", "OK"]
    assert await port.command("AT+CREG?") == ["+CREG: 0,0", "OK"]
    assert await port.command("AT+CFUN=1") == ["OK"]
    assert await port.command("AT+CSQ") == ["+CME ERROR: 515"]
    await asyncio.sleep(PROFILES["wavecom"].busy_after_cfun)
    assert await port.command("AT+CSQ") == ["+CSQ: 20,99", "OK"]
    await asyncio.sleep(REGISTRATION_SECONDS)
    assert await port.command("AT+CREG?") == ["+CREG: 0,1", "OK"]


async def test_wavecom_identity_and_two_memory_cpms(open_modem: OpenModem) -> None:
    _, port = await open_modem(profile="wavecom")
    assert await port.command("AT+CMEE=1") == ["OK"]

    await port.write(b"AT+CGMI\r")
    assert await port.read_until(b"OK\r\n") == b"\r\n WAVECOM MODEM\r\n\r\nOK\r\n"
    assert await port.command("AT+CGMR") == ["ERROR"]
    assert await port.command('AT+CPMS="SM","SM","SM"') == ["+CMS ERROR: 302"]
    assert await port.command('AT+CPMS="SM","SM"') == ["+CPMS: 0,30,0,30", "OK"]
    assert await port.command("AT+CEREG?") == ["ERROR"]


async def test_sierra_registers_on_lte_only(open_modem: OpenModem) -> None:
    _, port = await open_modem(profile="sierra")

    assert await port.command("AT+CREG?") == ["+CREG: 0,0", "OK"]
    assert await port.command("AT+CEREG?") == ["+CEREG: 0,1", "OK"]
    assert await port.command("AT+CFUN?") == ["+CFUN: 1,0", "OK"]
    assert await port.command("AT+COPS?") == ['+COPS: 0,0,"Sim Telecom",7', "OK"]
    assert await port.send(pdu.encode_submit(CUSTOMER, "hi")[0]) == ["+CMGS: 0", "OK"]


async def test_simcom_and_quectel_identities(open_modem: OpenModem) -> None:
    _, simcom = await open_modem(profile="simcom")
    _, quectel = await open_modem(profile="quectel")

    assert await simcom.command("AT+CGMM;+CGMR") == [
        "SIMCOM_SIM800L",
        "Revision:1418B04SIM800L24",
        "OK",
    ]
    assert await simcom.command("AT+CEREG?") == ["ERROR"]
    assert await quectel.command("AT+CGMI;+CGMM") == ["Quectel", "EC25", "OK"]
    assert await quectel.command("AT+CEREG?") == ["+CEREG: 0,1", "OK"]


# --- standalone ---------------------------------------------------------------------------


async def test_run_simulator_prints_the_path_and_serves_until_cancelled(tmp_path: Path) -> None:
    link = tmp_path / "modem"
    sim = ModemSimulator(link=link)
    printed: list[str] = []
    ready = asyncio.Event()

    def print_path(path: str) -> None:
        printed.append(path)
        ready.set()

    serving = asyncio.create_task(run_simulator(sim, print_path=print_path))
    async with asyncio.timeout(REPLY_TIMEOUT):
        await ready.wait()
    port = await Port.open(printed[0])

    assert printed == [str(link)]
    assert await port.command("AT") == ["AT", "OK"]

    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    port.close()
    assert not link.is_symlink()
    assert not sim.connected
