"""AtChannel against the modem simulator over a real pty: finals, URCs, prompt, faults."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from providers.modem.at import AtChannel, Urc, command_prefix, parse_final
from providers.modem.errors import AtError, AtTimeout, PortGone
from providers.modem.pdu import encode_submit
from providers.modem.simulator import ModemSimulator
from tests.helpers import wait_until_async

TO = "+4915112340000"

MakeSim = Callable[..., Awaitable[ModemSimulator]]


class Opened:
    """A channel plus every URC it routed aside."""

    def __init__(self, channel: AtChannel, urcs: list[Urc]) -> None:
        self.channel = channel
        self.urcs = urcs

    def names(self) -> list[str]:
        return [urc.name for urc in self.urcs]


@pytest.fixture
async def make_sim(tmp_path: Path) -> AsyncIterator[MakeSim]:
    made: list[ModemSimulator] = []

    async def make(**settings: Any) -> ModemSimulator:
        sim = ModemSimulator(link=tmp_path / f"modem{len(made)}", **settings)
        made.append(sim)
        await sim.start()
        return sim

    yield make
    for sim in made:
        await sim.stop()


@pytest.fixture
async def open_channel() -> AsyncIterator[Callable[[ModemSimulator], Awaitable[Opened]]]:
    opened: list[AtChannel] = []

    async def open_(sim: ModemSimulator, *, setup: bool = True) -> Opened:
        urcs: list[Urc] = []
        channel = await AtChannel.open(sim.path, on_urc=urcs.append)
        opened.append(channel)
        if setup:
            for command in ("ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,2,0"):
                await channel.command(command)
        return Opened(channel, urcs)

    yield open_
    for channel in opened:
        await channel.close()


# -- pure helpers -----------------------------------------------------------------------------


def test_final_codes_are_told_apart() -> None:
    assert parse_final("OK") == (True, None, None)
    assert parse_final("ERROR") == (False, "error", None)
    assert parse_final("+CME ERROR: 14") == (False, "cme", 14)
    assert parse_final("+CMS ERROR: 500") == (False, "cms", 500)
    assert parse_final("+CME ERROR: SIM busy") == (False, "cme", None)
    assert parse_final("COMMAND NOT SUPPORT") == (False, "vendor", None)
    assert parse_final("NO CARRIER") == (False, "vendor", None)
    assert parse_final("+CMGS: 5") is None
    assert parse_final("OKAY") is None


def test_command_prefix_names_the_answer_a_command_asks_for() -> None:
    assert command_prefix("AT+CREG?") == "+CREG"
    assert command_prefix("AT+CMGS=23") == "+CMGS"
    assert command_prefix("AT^CURC=0") == "^CURC"
    assert command_prefix("ATE0") is None
    assert command_prefix("AT") is None


# -- commands and finals ----------------------------------------------------------------------


async def test_a_command_returns_its_lines_without_echo_or_final(make_sim, open_channel) -> None:
    sim = await make_sim()
    opened = await open_channel(sim, setup=False)
    # The simulator echoes until ATE0: the echoed command is not an answer line.
    assert await opened.channel.command("AT+CGMI") == ["Shopbell"]
    await opened.channel.command("ATE0")
    assert await opened.channel.command("AT+CSQ") == ["+CSQ: 20,99"]
    assert await opened.channel.command("AT+CREG?") == ["+CREG: 0,1"]  # its own, not a URC
    assert opened.urcs == []


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        ("ERROR", "error", None),
        ("+CME ERROR: 14", "cme", 14),
        ("+CMS ERROR: 500", "cms", 500),
        ("COMMAND NOT SUPPORT", "vendor", None),
        ("NO CARRIER", "vendor", None),
        ("+CME ERROR: SIM busy", "cme", None),
    ],
)
async def test_error_finals_raise_at_error(make_sim, open_channel, reply, kind, code) -> None:
    sim = await make_sim()
    opened = await open_channel(sim)
    sim.fail_next("AT+CSQ", reply)
    with pytest.raises(AtError) as caught:
        await opened.channel.command("AT+CSQ")
    assert (caught.value.kind, caught.value.code, caught.value.line) == (kind, code, reply)
    # The channel is in step afterwards.
    assert await opened.channel.command("AT+CSQ") == ["+CSQ: 20,99"]


async def test_huawei_command_not_support_is_a_final(make_sim, open_channel) -> None:
    sim = await make_sim(profile="huawei")
    opened = await open_channel(sim)
    with pytest.raises(AtError) as caught:
        await opened.channel.command("AT+ZOPRT=5", seconds=1.0)
    assert caught.value.kind == "vendor"


async def test_wavecom_cpin_without_ok_ends_after_the_grace(make_sim, open_channel) -> None:
    sim = await make_sim(profile="wavecom")
    opened = await open_channel(sim, setup=False)
    lines = await opened.channel.command(
        "AT+CPIN?", seconds=2.0, lenient_prefix="+CPIN", lenient_grace=0.1
    )
    assert lines == ["+CPIN: READY"]
    assert await opened.channel.command("AT") == []


async def test_a_pin_never_appears_in_an_error(make_sim, open_channel) -> None:
    sim = await make_sim(pin="1234")
    opened = await open_channel(sim, setup=False)
    await opened.channel.command("AT+CMEE=1")
    with pytest.raises(AtError) as caught:
        await opened.channel.command('AT+CPIN="9999"')
    assert "9999" not in str(caught.value)
    assert caught.value.code == 16


# -- URCs -------------------------------------------------------------------------------------


async def test_urcs_between_commands_go_to_the_handler(make_sim, open_channel) -> None:
    sim = await make_sim()
    opened = await open_channel(sim)
    sim.receive("+4915199999999", "hello")
    sim.receive("+4915199999999", "direct", mode="direct")
    await wait_until_async(lambda: len(opened.urcs) == 2, "len(opened.urcs) == 2", timeout=3.0)
    stored, direct = opened.urcs
    assert (stored.name, stored.value) == ("+CMTI", '"SM",1')
    assert direct.name == "+CMT"
    assert direct.pdu is not None and direct.pdu == direct.pdu.upper()


async def test_urcs_while_a_command_waits_do_not_disturb_it(make_sim, open_channel) -> None:
    sim = await make_sim(send_latency=0.3)
    opened = await open_channel(sim)
    part = encode_submit(TO, "hello")[0]
    sending = asyncio.create_task(opened.channel.send_pdu(part.tpdu_length, part.pdu))
    await wait_until_async(
        lambda: any(c.startswith("AT+CMGS") for c in sim.commands),
        'any(c.startswith("AT+CMGS") for c in sim.commands)',
        timeout=3.0,
    )
    await asyncio.sleep(0.1)  # the PDU is in; the "network" takes its time
    sim.receive("+4915199999999", "while you wait")
    assert await sending == ["+CMGS: 0"]
    assert "+CMTI" in opened.names()


async def test_huawei_noise_during_commands_is_routed_aside(make_sim, open_channel) -> None:
    sim = await make_sim(profile="huawei")
    opened = await open_channel(sim)
    for _ in range(5):
        assert await opened.channel.command("AT+CSQ") == ["+CSQ: 20,99"]
        await asyncio.sleep(0.15)
    await wait_until_async(
        lambda: {"^RSSI", "^MODE", "^BOOT"} <= set(opened.names()),
        '{"^RSSI", "^MODE", "^BOOT"} <= set(opened.names())',
        timeout=3.0,
    )


async def test_urcs_between_cmgs_and_its_prompt(make_sim, open_channel) -> None:
    sim = await make_sim(profile="zte")  # +ZDONR / +ZPASR before every prompt
    opened = await open_channel(sim)
    sim.urc_before_prompt('+CMTI: "SM",7')
    sim.urc_before_prompt("RING")
    part = encode_submit(TO, "hello")[0]
    assert await opened.channel.send_pdu(part.tpdu_length, part.pdu) == ["+CMGS: 0"]
    assert opened.names() == ["+ZDONR", "+ZPASR", "+CMTI", "RING"]
    assert sim.sent[0].submit.text == "hello"


async def test_a_refused_cmgs_raises_without_writing_the_pdu(make_sim, open_channel) -> None:
    sim = await make_sim()
    opened = await open_channel(sim)
    part = encode_submit(TO, "hello")[0]
    sim.remove_sim()
    with pytest.raises(AtError) as caught:
        await opened.channel.send_pdu(part.tpdu_length, part.pdu)
    assert caught.value.kind == "cme" and caught.value.code == 10
    assert sim.sent == []


# -- garbage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "noise",
    [
        b"\xff\xfe\x00\x81\x9f\r\n",  # binary noise
        b"\r\n\x07\x01junk\x02\r\n",  # control characters
        b"\x00\x00\x00",  # NULs with no line end
        b"x" * 5000,  # a "line" longer than any modem's
        b"\r\n+CMT: ,24\r\n",  # a +CMT whose PDU line never comes
        b"\r\n+CMTI: \r\n",  # a URC cut short
        b"\r\n> \r\n",  # a prompt nobody asked for
        b"\r\nOK\r\n\r\n+CMS ERROR: 500\r\n",  # finals with no command waiting
    ],
)
async def test_garbage_never_breaks_the_reader(make_sim, open_channel, noise) -> None:
    sim = await make_sim()
    opened = await open_channel(sim)
    sim.garbage(noise)
    await opened.channel.settle(quiet=0.05)
    assert await opened.channel.command("AT+CSQ") == ["+CSQ: 20,99"]
    sim.receive("+4915199999999", "after the noise")
    await wait_until_async(
        lambda: "+CMTI" in opened.names(), '"+CMTI" in opened.names()', timeout=3.0
    )
    assert opened.channel.connected


async def test_random_noise_between_commands(make_sim, open_channel) -> None:
    sim = await make_sim()
    opened = await open_channel(sim)
    rng = random.Random(4)
    for _ in range(20):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        # Whatever it is, a line end closes it: the next answer starts on a line of its own,
        # as a modem's answers do.
        sim.garbage(noise.replace(b">", b"") + b"\r\n")
        await opened.channel.settle(quiet=0.02)
        assert await opened.channel.command("AT+CGSN") == ["356938035643809"]


async def test_truncated_pdu_urc_does_not_eat_the_next_final(make_sim, open_channel) -> None:
    sim = await make_sim(send_latency=0.2)
    opened = await open_channel(sim)
    part = encode_submit(TO, "hello")[0]
    sending = asyncio.create_task(opened.channel.send_pdu(part.tpdu_length, part.pdu))
    await wait_until_async(
        lambda: any(c.startswith("AT+CMGS") for c in sim.commands),
        'any(c.startswith("AT+CMGS") for c in sim.commands)',
        timeout=3.0,
    )
    await asyncio.sleep(0.05)
    sim.garbage(b"\r\n+CDS: 25\r\n")  # its PDU line is lost
    assert await sending == ["+CMGS: 0"]


# -- timeouts ---------------------------------------------------------------------------------


async def test_no_answer_is_a_timeout_and_the_channel_goes_on(make_sim, open_channel) -> None:
    sim = await make_sim()
    opened = await open_channel(sim)
    sim.silent_next("AT+CSQ")
    with pytest.raises(AtTimeout) as caught:
        await opened.channel.command("AT+CSQ", seconds=0.2)
    assert caught.value.phase == "answer" and not caught.value.written
    assert await opened.channel.command("AT+CGMM") == ["Modem Simulator"]


async def test_a_missing_prompt_is_abandoned_with_esc(make_sim, open_channel) -> None:
    sim = await make_sim()
    opened = await open_channel(sim)
    sim.slow_prompt(0.5)
    part = encode_submit(TO, "hello")[0]
    with pytest.raises(AtTimeout) as caught:
        await opened.channel.send_pdu(part.tpdu_length, part.pdu, prompt_timeout=0.1)
    assert caught.value.phase == "prompt" and not caught.value.written
    await asyncio.sleep(0.6)  # the late prompt meets our ESC
    await opened.channel.settle(quiet=0.05)
    assert sim.sent == []
    # The modem took ESC, not our next command, as the end of the message.
    assert await opened.channel.command("AT+CSQ") == ["+CSQ: 20,99"]
    assert await opened.channel.send_pdu(part.tpdu_length, part.pdu) == ["+CMGS: 0"]


async def test_no_answer_after_the_pdu_says_it_was_written(make_sim, open_channel) -> None:
    sim = await make_sim(send_latency=0.5)
    opened = await open_channel(sim)
    part = encode_submit(TO, "hello")[0]
    with pytest.raises(AtTimeout) as caught:
        await opened.channel.send_pdu(part.tpdu_length, part.pdu, answer_timeout=0.1)
    assert caught.value.written
    await asyncio.sleep(0.5)
    # The late +CMGS / OK arrive with no command waiting and are dropped.
    assert await opened.channel.command("AT+CSQ") == ["+CSQ: 20,99"]


# -- the port going away ----------------------------------------------------------------------


async def test_unplug_while_a_command_waits_raises_port_gone(make_sim, open_channel) -> None:
    sim = await make_sim()
    opened = await open_channel(sim)
    sim.silent_next("AT+CSQ")
    waiting = asyncio.create_task(opened.channel.command("AT+CSQ", seconds=5.0))
    await wait_until_async(
        lambda: "AT+CSQ" in sim.commands, '"AT+CSQ" in sim.commands', timeout=3.0
    )
    await sim.unplug()
    with pytest.raises(PortGone):
        await waiting
    assert opened.channel.gone.is_set() and not opened.channel.connected
    with pytest.raises(PortGone):
        await opened.channel.command("AT")


async def test_unplug_after_the_pdu_marks_it_written(make_sim, open_channel) -> None:
    sim = await make_sim(send_latency=1.0)
    opened = await open_channel(sim)
    part = encode_submit(TO, "hello")[0]
    sending = asyncio.create_task(opened.channel.send_pdu(part.tpdu_length, part.pdu))
    await wait_until_async(
        lambda: any(c.startswith("AT+CMGS") for c in sim.commands),
        'any(c.startswith("AT+CMGS") for c in sim.commands)',
        timeout=3.0,
    )
    await asyncio.sleep(0.1)
    await sim.unplug()
    with pytest.raises(PortGone) as caught:
        await sending
    assert caught.value.written


async def test_a_missing_port_is_port_gone(tmp_path: Path) -> None:
    with pytest.raises(PortGone):
        await AtChannel.open(str(tmp_path / "no-such-port"))


async def test_a_port_in_use_is_port_gone(make_sim, open_channel) -> None:
    sim = await make_sim()
    await open_channel(sim, setup=False)
    with pytest.raises(PortGone, match="in use by another program"):
        await AtChannel.open(sim.path)
