"""A GSM modem on a pseudo-terminal: the AT subset in docs/gsm.md, vendor quirks and faults.

The simulator owns the master side of a pty and answers what a driver writes to the slave
side, on the asyncio loop it was started in (tests run it in the loop of the code under test;
`shopbell modem simulate` runs it on its own). One task reads command lines and answers them
in order, so a slow AT+CMGS keeps the modem busy exactly like a real one (docs/gsm.md,
"Sending a segment");
URCs and status reports come from timers and may land between any two answers.

What the SIM holds (stored messages, status reports, PIN tries) survives `unplug()`/`replug()`;
what the modem holds (echo, CMEE, CNMI, PIN entered, radio on) is reset as after a power cycle,
so a driver must initialise again after it reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import re
import time
import tty
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from providers.modem import pdu as pdu_codec
from providers.modem.simulator_profiles import PROFILES, Profile

logger = logging.getLogger(__name__)

CR = 0x0D
LF = 0x0A
BACKSPACE = 0x08
CTRL_Z = 0x1A
ESC = 0x1B
READ_CHUNK = 4096
# A modem's command buffer is finite: noise that never ends in CR is thrown away at this size.
MAX_LINE = 4096
# Output nobody reads (port closed, Huawei URCs piling up) is dropped beyond this.
MAX_PENDING_OUTPUT = 1 << 16

PIN_TRIES = 3
# The PUK that unlocks a SIM after three wrong PINs: AT+CPIN="12345678","<new pin>".
DEFAULT_PUK = "12345678"
# How long the radio "searches" after AT+CFUN=1 or the PIN before it is registered, so a
# driver's registration wait really waits.
REGISTRATION_SECONDS = 0.2
OPERATOR_NUMERIC = "26299"
LAC = "00A1"
CELL_ID = "0000B2C3"
# TP-ST of the status reports (TS 23.040 §9.2.3.15): delivered, or a permanent error
# ("incompatible destination") when the simulator is told reports fail.
REPORT_STATUS = {"delivered": 0x00, "failed": 0x41}

SimState = Literal["READY", "SIM PIN", "SIM PUK", "NO SIM"]
# +CME ERROR a SIM-touching command gets in each state (TS 27.007 §9.2.1).
SIM_STATE_ERROR = {"SIM PIN": 11, "SIM PUK": 12, "NO SIM": 10}
# Commands that need an unlocked SIM; the rest (identity, radio, signal, settings) work
# without one, as on most modems.
NEEDS_SIM = frozenset(
    {
        "+CIMI",
        "+CNUM",
        "+COPS",
        "+CSCA",
        "+CSMP",
        "+CPMS",
        "+CNMI",
        "+CSMS",
        "+CNMA",
        "+CMMS",
        "+CMGS",
        "+CMGL",
        "+CMGR",
        "+CMGD",
    }
)

# Verbose texts for AT+CMEE=2 (27.007 §9.2 and 27.005 §3.2.5; 515 is Wavecom's).
CME_TEXT = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    14: "SIM busy",
    16: "incorrect password",
    515: "Please wait, init or command processing in progress",
}
CMS_TEXT = {
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    321: "invalid memory index",
    330: "SMSC address unknown",
    331: "no network service",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}
# (mode, mt, bm, ds, bfr) values AT+CNMI accepts, as its =? answer lists them.
CNMI_RANGES = ({0, 1, 2, 3}, {0, 1, 2, 3}, {0, 2}, {0, 1, 2}, {0, 1})
CNMI_TEST = "+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)"
# What an S-register query answers when never set (V.250 defaults: CR, LF, backspace).
S_REGISTER_DEFAULTS = {3: 13, 4: 10, 5: 8}


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One segment the "network" accepted: the reference the modem gave it and what it held."""

    message_reference: int
    submit: pdu_codec.Submit
    pdu: str
    at: datetime


@dataclass(frozen=True, slots=True)
class _Command:
    """One command of a command line: `text` is "AT" + the command as typed (for scripting
    matches), `name` is upper-cased ("+CMGS", "E", "&F", "" for a bare AT), `op` is "" (run),
    "?" (read), "=?" (test) or "=" (set, with `value`)."""

    text: str
    name: str
    op: str
    value: str

    @property
    def args(self) -> list[str]:
        return _split_args(self.value)


@dataclass(frozen=True, slots=True)
class _Reply:
    """Information lines and a final result code; final None = the modem sends none (Wavecom)."""

    lines: tuple[str, ...] = ()
    final: str | None = "OK"


@dataclass(slots=True)
class _Failure:
    """A scripted answer for the next `times` commands starting with `prefix`."""

    prefix: str
    reply: str
    times: int


@dataclass(frozen=True, slots=True)
class _SendRequest:
    """AT+CMGS=<length> was accepted: the prompt and the PDU exchange follow."""

    length: int


_Outcome = _Reply | _SendRequest | None  # None: the command is never answered
_Handler = Callable[[_Command], _Outcome]
OK = _Reply()
SYNTAX_ERROR = _Reply(final="ERROR")


class _Memory:
    """One message store ("SM", "SR"): numbered slots from 1, each a PDU and whether it was read."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.messages: dict[int, str] = {}
        self.read: set[int] = set()

    def add(self, pdu: str) -> int | None:
        """The slot the PDU went into, or None when the memory is full."""
        for index in range(1, self.slots + 1):
            if index not in self.messages:
                self.messages[index] = pdu
                self.read.discard(index)
                return index
        return None

    def stat(self, index: int) -> int:
        """27.005 <stat>: 0 received unread, 1 received read."""
        return 1 if index in self.read else 0

    def remove(self, index: int) -> bool:
        self.read.discard(index)
        return self.messages.pop(index, None) is not None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ModemSimulator:
    """A scriptable GSM modem behind a pty path; see the module docstring for the life cycle."""

    def __init__(
        self,
        *,
        link: Path | None = None,
        profile: str = "generic",
        pin: str | None = None,
        send_latency: float = 0.0,
        smsc: str = "+4917600000000",
        own_number: str = "+4915112345678",
        operator: str = "Sim Telecom",
        signal_rssi: int = 20,
        status_reports: Literal["delivered", "failed", "none"] = "delivered",
        report_delay: float = 0.05,
        storage_slots: int = 30,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown modem profile {profile!r}; known: {', '.join(PROFILES)}")
        self.profile: Profile = PROFILES[profile]
        self.link = link
        self.send_latency = send_latency
        self.smsc = smsc
        self.own_number = own_number
        self.operator = operator
        self.signal_rssi = signal_rssi
        # Read when each report falls due, so a test may change it between sends.
        self.status_reports = status_reports
        self.report_delay = report_delay
        self._clock = clock or _utc_now
        # The time the "network" gives (AT+CCLK?): the simulator's clock moved by this offset
        # (a test offers a time ahead of the machine's), in this zone (quarter hours east of
        # UTC, as +CCLK writes it); None: the modem never heard it and answers its own
        # start date, as a real one does.
        self.network_time_offset: timedelta | None = timedelta(0)
        self.network_zone_quarters = 4
        self.path = ""

        # The SIM (and the modem's report memory): survives unplug/replug.
        self._pin = pin
        self._pin_tries = PIN_TRIES
        self._sim_present = True
        self._sm = _Memory(storage_slots)
        self._sr = _Memory(storage_slots)
        self._bm = _Memory(0)
        # Inbound PDUs the network holds back while the memory is full (docs/gsm.md,
        # "Message storage").
        self._held: list[str] = []
        self._next_mr = 0
        self._next_concat_ref = 1

        # What happened, for assertions.
        self.sent: list[SentMessage] = []
        self.stored: dict[int, str] = self._sm.messages
        self.stored_reports: dict[int, str] = self._sr.messages
        self.deleted: list[int] = []
        self.deleted_reports: list[int] = []
        self.reports: list[str] = []
        self.commands: list[str] = []
        self.pin_attempts = 0

        # Scripted faults, each used once unless said otherwise.
        self._failures: list[_Failure] = []
        self._recipient_failures: dict[str, str] = {}
        self._silent: list[str] = []
        self._slow_prompt = 0.0
        self._prompt_urcs_once: list[str] = []
        self._registration_override: int | None = None
        self._chaos: tuple[float, tuple[str, ...], random.Random] | None = None
        self.chaos_refusals = 0

        # The device: present between start/replug and unplug/stop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._data = asyncio.Event()
        self._writer_armed = False
        self._tasks: set[asyncio.Task[None]] = set()
        # Network-side timers (status reports, registration): they outlive an unplug.
        self._timers: set[asyncio.TimerHandle] = set()

        self._handlers: dict[str, _Handler] = self._build_handlers()
        self._power_up()

    # --- life cycle -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the device is plugged in (between start/replug and unplug/stop)."""
        return self._master is not None

    async def start(self) -> str:
        """Open the pty and serve; returns the path a driver opens (the link when given)."""
        if self._loop is not None:
            raise RuntimeError("the simulator is already started")
        self._loop = asyncio.get_running_loop()
        self._power_up()
        self._plug_in()
        return self.path

    async def stop(self) -> None:
        """Unplug for good and cancel every timer; safe to call twice."""
        await self._pull_out()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._loop = None

    async def unplug(self) -> None:
        """The USB device disappears: both pty ends close (the driver's reads hit EOF, its
        writes EIO) and the link is removed. Whatever the modem was doing is lost; a CMGS whose
        answer was not written yet did not send."""
        await self._pull_out()

    async def replug(self) -> None:
        """The device comes back on a new pty, freshly powered up; the link points at it."""
        if self._loop is None:
            raise RuntimeError("start the simulator before replugging it")
        await self._pull_out()
        self._power_up()
        self._plug_in()

    def _plug_in(self) -> None:
        assert self._loop is not None
        master, slave = os.openpty()
        # Raw and no echo on the tty itself: echo is the modem's job (ATE0/ATE1). The slave
        # end stays open here so the pty lives on while the driver closes and reopens it.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._inbuf.clear()
        self._outbuf.clear()
        self._data = asyncio.Event()
        name = os.ttyname(slave)
        if self.link is not None:
            _point_link(self.link, name)
        self.path = str(self.link) if self.link is not None else name
        self._loop.add_reader(master, self._on_readable)
        self._spawn(self._serve())
        if self.profile.periodic_urcs:
            self._spawn(self._emit_periodic_urcs())
        logger.info("modem simulator (%s) on %s", self.profile.name, self.path)

    async def _pull_out(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._master is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._master)
                self._loop.remove_writer(self._master)
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        self._writer_armed = False
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()

    def _power_up(self) -> None:
        """The state of a modem that has just been switched on (the SIM keeps its own)."""
        self._reset_settings()
        self._csms = 0
        self._cmms = 0
        self._cgsms = 1
        self._ctzu = 0
        self._cops_format = 0
        self._mems = ["SM"] * len(self._cpms_groups())
        self._curc = True
        self._awaiting_cnma = False
        self._busy_until = 0.0
        self._csca_busy = self.profile.csca_busy_once
        self._radio_on = self.profile.radio_on_at_boot
        if not self._sim_present:
            self._sim_state: SimState = "NO SIM"
        elif self._pin_tries == 0:
            self._sim_state = "SIM PUK"
        elif self._pin is not None:
            self._sim_state = "SIM PIN"
        else:
            self._sim_state = "READY"
        # Registered at once when the modem boots with radio and SIM ready.
        self._registered_at = time.monotonic()
        self._announced = self._registration()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _later(self, delay: float, callback: Callable[..., None], *args: object) -> None:
        """Run `callback` after `delay` on the network side (it outlives an unplug)."""
        if self._loop is None:
            return

        def fire() -> None:
            self._timers.discard(handle)
            callback(*args)

        handle = self._loop.call_later(delay, fire)
        self._timers.add(handle)

    # --- scripting --------------------------------------------------------------------------

    def fail_next(self, command_prefix: str, reply: str, *, times: int = 1) -> None:
        """Answer the next `times` commands starting with `command_prefix` ("AT+CMGS") with
        `reply`, verbatim. For AT+CMGS the prompt and PDU exchange happen first and `reply`
        replaces the +CMGS answer (a network refusal after send_latency); nothing is sent."""
        self._failures.append(_Failure(command_prefix.upper(), reply, times))

    def fail_recipient(self, number: str, reply: str) -> None:
        """Every AT+CMGS to `number` (compared by digits) answers `reply` after the PDU."""
        self._recipient_failures[_digits(number)] = reply

    def chaos(self, rate: float, replies: list[str], *, seed: int = 0) -> None:
        """Refuse a random share `rate` of AT+CMGS sends (after the PDU, nothing sent) with one
        of `replies` ("+CMS ERROR: 42"), picked at random (seeded); rate 0 turns it off.
        `chaos_refusals` counts them."""
        self._chaos = (rate, tuple(replies), random.Random(seed)) if rate > 0 else None

    def _chaos_refusal(self) -> str | None:
        if self._chaos is None:
            return None
        rate, replies, rng = self._chaos
        if rng.random() >= rate:
            return None
        self.chaos_refusals += 1
        return rng.choice(replies)

    def garbage(self, data: bytes) -> None:
        """Emit raw bytes now: truncated lines, binary noise."""
        self._write(data)

    def slow_prompt(self, seconds: float) -> None:
        """Wait this long before the `> ` of the next AT+CMGS."""
        self._slow_prompt = seconds

    def silent_next(self, command_prefix: str) -> None:
        """Never answer the next command starting with `command_prefix` (a hung modem). Later
        commands are answered again."""
        self._silent.append(command_prefix.upper())

    def urc_before_prompt(self, line: str) -> None:
        """Emit `line` between the next AT+CMGS=<n> and its `> ` prompt."""
        self._prompt_urcs_once.append(line)

    def set_registration(self, stat: int | None) -> None:
        """Force the +CREG/+CEREG <stat> (0 not searching, 2 searching, 3 denied...): "no
        network" faults. None returns to the simulated registration."""
        self._registration_override = stat
        self._announce_registration()

    def remove_sim(self) -> None:
        """Pull the SIM out: +CPIN? answers +CME ERROR: 10 and SIM commands fail with it."""
        self._sim_present = False
        self._sim_state = "NO SIM"
        self._announce_registration()

    def receive(
        self, sender: str, text: str, *, mode: Literal["stored", "direct"] = "stored"
    ) -> list[int]:
        """An SMS arrives from `sender`; a long text arrives as several parts.

        "stored": each part goes into the receive memory and is announced with +CMTI when
        AT+CNMI's <mt> asks for it; returns the indices (a full memory holds parts back until
        a slot is deleted, and those are not in the list). "direct": each part is routed to
        the driver as `+CMT: ,<length>` and its PDU, never stored (unless the device is
        unplugged: then it is stored, as the network would retry); returns [].
        """
        pdus = self._deliver_pdus(sender, text)
        if mode == "direct" and self.connected:
            for pdu in pdus:
                self._urc(f"+CMT: ,{_tpdu_length(pdu)}", pdu)
            # With AT+CSMS=1 the driver must acknowledge with AT+CNMA (TS 27.005 §3.4.4).
            self._awaiting_cnma = self._csms == 1
            return []
        indices: list[int] = []
        for pdu in pdus:
            index = self._store_inbound(pdu)
            if index is None:
                self._held.append(pdu)
            else:
                indices.append(index)
        return indices

    def preload(self, sender: str, text: str) -> list[int]:
        """Messages already on the SIM (no URC): what AT+CMGL finds when the driver starts."""
        indices = [self._sm.add(pdu) for pdu in self._deliver_pdus(sender, text)]
        if None in indices:
            raise ValueError("the SIM is full")
        return [index for index in indices if index is not None]

    def _deliver_pdus(self, sender: str, text: str) -> list[str]:
        ref = self._next_concat_ref
        self._next_concat_ref = ref % 255 + 1
        return pdu_codec.encode_deliver(
            sender, text, self._clock(), smsc=self.smsc or None, concat_ref=ref
        )

    def _store_inbound(self, pdu: str) -> int | None:
        """Store in the receive memory and announce (+CMTI when <mt> asks); None when full."""
        memory_name = self._mems[-1]
        index = self._memory(memory_name).add(pdu)
        if index is not None and self._cnmi[1] != 0:
            self._urc(f'+CMTI: "{memory_name}",{index}')
        return index

    def _release_held(self) -> None:
        """A slot was freed: the network delivers what it held back, oldest first."""
        while self._held and self._store_inbound(self._held[0]) is not None:
            self._held.pop(0)

    # --- the wire ---------------------------------------------------------------------------

    def _on_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as error:
            # EIO without any slave open cannot happen while we hold one; stop spinning if it does.
            logger.warning("modem simulator: reading the pty failed: %s", error)
            if self._loop is not None:
                self._loop.remove_reader(self._master)
            return
        self._inbuf += data
        self._data.set()

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        if len(self._outbuf) + len(data) > MAX_PENDING_OUTPUT:
            logger.debug("modem simulator: nobody reads, %d bytes dropped", len(data))
            return
        self._outbuf += data
        self._flush()

    def _flush(self) -> None:
        if self._master is None:
            return
        try:
            written = os.write(self._master, self._outbuf) if self._outbuf else 0
        except BlockingIOError:
            written = 0
        except OSError as error:
            logger.warning("modem simulator: writing the pty failed: %s", error)
            self._outbuf.clear()
            written = 0
        del self._outbuf[:written]
        assert self._loop is not None
        if self._outbuf and not self._writer_armed:
            self._loop.add_writer(self._master, self._flush)
            self._writer_armed = True
        elif not self._outbuf and self._writer_armed:
            self._loop.remove_writer(self._master)
            self._writer_armed = False

    def _reply(self, lines: tuple[str, ...] | list[str], final: str | None) -> None:
        text = ""
        if lines:
            text += "\r\n" + "\r\n".join(lines) + "\r\n"
        if final is not None:
            text += f"\r\n{final}\r\n"
        self._write(text.encode("latin-1"))

    def _urc(self, line: str, pdu: str | None = None) -> None:
        text = f"\r\n{line}\r\n" + (f"{pdu}\r\n" if pdu is not None else "")
        self._write(text.encode("latin-1"))

    async def _read_until(self, stops: bytes) -> tuple[bytes, int]:
        """The bytes before the first of `stops`, and which stop it was."""
        while True:
            found = [at for at in (self._inbuf.find(stop) for stop in stops) if at >= 0]
            if found:
                end = min(found)
                data, stop = bytes(self._inbuf[:end]), self._inbuf[end]
                del self._inbuf[: end + 1]
                return data, stop
            if len(self._inbuf) > MAX_LINE:
                self._inbuf.clear()
            self._data.clear()
            await self._data.wait()

    async def _serve(self) -> None:
        while True:
            raw, stop = await self._read_until(bytes([CR, ESC]))
            if stop == ESC:
                # ESC throws away a half-typed line; gammu's ESC+CR at connect ends here.
                continue
            if self._echo:
                self._write(raw + b"\r")
            try:
                await self._run_line(_edit(raw))
            except Exception:
                logger.exception("modem simulator: a command crashed")
                self._reply((), "ERROR")

    # --- command lines ----------------------------------------------------------------------

    async def _run_line(self, text: str) -> None:
        start = text.upper().find("AT")
        if start < 0:
            return  # no "AT": a modem ignores it (noise, a bare CR)
        line = text[start:].strip()
        self.commands.append(_mask_pin(line))
        try:
            commands = _split_commands(line[2:]) or [_Command("AT", "", "", "")]
        except ValueError:
            self._reply((), "ERROR")
            return
        lines: list[str] = []
        for command in commands:
            outcome = self._dispatch(command)
            if outcome is None:
                logger.info("modem simulator: %s left unanswered (silent_next)", command.text)
                return
            if isinstance(outcome, _SendRequest):
                # AT+CMGS takes over the line: what follows it in a chain is text now.
                self._reply(lines, None)
                await self._send(command, outcome.length)
                return
            lines += outcome.lines
            if outcome.final != "OK":
                self._reply(lines, outcome.final)
                return
        self._reply(lines, "OK")

    def _dispatch(self, command: _Command) -> _Outcome:
        if self._take(self._silent, command.text):
            return None
        is_send = command.name == "+CMGS" and command.op == "="
        if not is_send:
            scripted = self._take_failure(command.text)
            if scripted is not None:
                return _Reply(final=scripted)
        refused = self._gate(command)
        if refused is not None:
            return refused
        handler = self._handlers.get(command.name)
        if handler is None:
            return _Reply(final=self.profile.unknown_reply)
        return handler(command)

    def _gate(self, command: _Command) -> _Reply | None:
        """The refusals that come before any command runs: Wavecom's init, a locked SIM."""
        if time.monotonic() < self._busy_until:
            return self._cme(515)
        if self._sim_state == "READY" or command.name == "+CPIN":
            return None
        if self.profile.pin_gates_everything or command.name in NEEDS_SIM:
            return self._cme(SIM_STATE_ERROR[self._sim_state])
        return None

    @staticmethod
    def _take(prefixes: list[str], text: str) -> bool:
        for i, prefix in enumerate(prefixes):
            if text.upper().startswith(prefix):
                del prefixes[i]
                return True
        return False

    def _take_failure(self, text: str) -> str | None:
        for failure in self._failures:
            if text.upper().startswith(failure.prefix):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure.reply
        return None

    def _error(self, kind: Literal["CME", "CMS"], code: int) -> _Reply:
        """An error final code as AT+CMEE asks: plain ERROR (0), numeric (1), verbose (2)."""
        if self._cmee == 0:
            return _Reply(final="ERROR")
        if self._cmee == 2:
            texts = CME_TEXT if kind == "CME" else CMS_TEXT
            return _Reply(final=f"+{kind} ERROR: {texts.get(code, 'unknown error')}")
        return _Reply(final=f"+{kind} ERROR: {code}")

    def _cme(self, code: int) -> _Reply:
        return self._error("CME", code)

    def _cms(self, code: int) -> _Reply:
        return self._error("CMS", code)

    # --- sending ----------------------------------------------------------------------------

    async def _send(self, command: _Command, length: int) -> None:
        """AT+CMGS=<length>: prompt, PDU up to Ctrl-Z (ESC abandons), then the network."""
        urcs = [line.format(operator=self.operator) for line in self.profile.prompt_urcs]
        urcs += self._prompt_urcs_once
        self._prompt_urcs_once = []
        for line in urcs:
            self._urc(line)
        if self._slow_prompt:
            delay, self._slow_prompt = self._slow_prompt, 0.0
            await asyncio.sleep(delay)
        self._write(b"\r\n> ")
        raw, stop = await self._read_until(bytes([CTRL_Z, ESC]))
        if self._echo:
            self._write(raw)
        if stop == ESC:
            self._reply((), "OK")
            return
        pdu = "".join(raw.decode("latin-1").split())
        submit = _check_submit(pdu, length)
        if submit is None:
            self._reply((), self._cms(304).final)
            return
        scripted = self._take_failure(command.text) or self._chaos_refusal()
        if self.send_latency:
            await asyncio.sleep(self.send_latency)
        refusal = scripted or self._recipient_failures.get(_digits(submit.number))
        if refusal is not None:
            self._reply((), refusal)
        elif not self._registered():
            self._reply((), self._cms(331).final)
        elif submit.smsc is None and not self.smsc:
            self._reply((), self._cms(330).final)
        else:
            reference = self._next_mr
            self._next_mr = (reference + 1) % 256
            sent_at = self._clock()
            self.sent.append(SentMessage(reference, submit, pdu, sent_at))
            self._reply((f"+CMGS: {reference}",), "OK")
            if submit.status_report_requested and self.status_reports != "none":
                self._later(self.report_delay, self._report_arrives, reference, submit, sent_at)

    def _report_arrives(self, reference: int, submit: pdu_codec.Submit, sent_at: datetime) -> None:
        if self.status_reports == "none":
            return
        report = pdu_codec.encode_status_report(
            message_reference=reference,
            recipient=submit.number,
            timestamp=sent_at,
            discharge=self._clock(),
            status=REPORT_STATUS[self.status_reports],
            smsc=self.smsc or None,
        )
        self.reports.append(report)
        ds = self._cnmi[3]
        if ds == 1 and self.connected:
            self._urc(f"+CDS: {_tpdu_length(report)}", report)
            return
        # ds=2 stores and announces; ds=0 (or nobody connected) stores silently.
        index = self._sr.add(report)
        if index is None:
            logger.info("modem simulator: SR memory full, status report dropped")
        elif ds == 2:
            self._urc(f'+CDSI: "SR",{index}')

    # --- registration -----------------------------------------------------------------------

    def _base_stat(self) -> int:
        if self._registration_override is not None:
            return self._registration_override
        if not (self._radio_on and self._sim_state == "READY"):
            return 0
        return 1 if time.monotonic() >= self._registered_at else 2

    def _registration(self) -> tuple[int, int]:
        """(+CREG stat, +CEREG stat): an LTE-only module has no CS registration, a 2G/3G one
        no EPS registration."""
        stat = self._base_stat()
        creg = 0 if self.profile.lte_only else stat
        cereg = stat if self.profile.access_tech == 7 else 0
        return creg, cereg

    def _registered(self) -> bool:
        return any(stat in (1, 5) for stat in self._registration())

    def _start_registration(self) -> None:
        self._registered_at = time.monotonic() + REGISTRATION_SECONDS
        # Announced from timers so the URC follows the OK of the command that caused it.
        self._later(0, self._announce_registration)
        self._later(REGISTRATION_SECONDS + 0.01, self._announce_registration)

    def _announce_registration(self) -> None:
        creg, cereg = self._registration()
        old_creg, old_cereg = self._announced
        self._announced = (creg, cereg)
        if creg != old_creg and self._creg_n:
            self._urc("+CREG: " + self._reg_fields(creg, self._creg_n, urc=True))
        if cereg != old_cereg and self._cereg_n and self.profile.has_cereg:
            self._urc("+CEREG: " + self._reg_fields(cereg, self._cereg_n, urc=True))

    def _reg_fields(self, stat: int, n: int, *, urc: bool) -> str:
        fields = [str(stat)] if urc else [str(n), str(stat)]
        if n == 2 and stat in (1, 5):
            fields += [f'"{LAC}"', f'"{CELL_ID}"', str(self.profile.access_tech)]
        return ",".join(fields)

    # --- handlers ---------------------------------------------------------------------------

    def _build_handlers(self) -> dict[str, _Handler]:
        handlers: dict[str, _Handler] = {
            "": lambda command: OK,
            "E": self._cmd_echo,
            "V": lambda command: OK if command.value in ("", "1") else SYNTAX_ERROR,
            "Q": lambda command: OK if command.value in ("", "0") else SYNTAX_ERROR,
            "Z": self._cmd_reset,
            "&F": self._cmd_reset,
            "&C": lambda command: OK,
            "&D": lambda command: OK,
            "S": self._cmd_s_register,
            "I": self._cmd_info,
            "+CMEE": self._cmd_cmee,
            "+CPIN": self._cmd_cpin,
            "+CFUN": self._cmd_cfun,
            "+CGMI": self._identity(lambda: self.profile.manufacturer),
            "+GMI": self._identity(lambda: self.profile.manufacturer),
            "+CGMM": self._identity(lambda: self.profile.model),
            "+GMM": self._identity(lambda: self.profile.model),
            "+CGMR": self._identity(lambda: self.profile.revision),
            "+GMR": self._identity(lambda: self.profile.revision),
            "+CGSN": self._identity(lambda: self.profile.imei),
            "+GSN": self._identity(lambda: self.profile.imei),
            "+CIMI": self._identity(lambda: self.profile.imsi),
            "+CNUM": lambda command: _Reply((f'+CNUM: ,"{self.own_number}",145',)),
            "+CREG": self._cmd_creg,
            "+CGREG": self._cmd_creg,
            "+COPS": self._cmd_cops,
            "+CSQ": self._cmd_csq,
            "+CMGF": self._cmd_cmgf,
            "+CSCS": self._cmd_cscs,
            "+CSCA": self._cmd_csca,
            "+CSMP": self._cmd_csmp,
            "+CPMS": self._cmd_cpms,
            "+CNMI": self._cmd_cnmi,
            "+CSMS": self._cmd_csms,
            "+CNMA": self._cmd_cnma,
            "+CMMS": self._setting("_cmms", "+CMMS", range(3)),
            "+CGSMS": self._setting("_cgsms", "+CGSMS", range(4)),
            "+CMGS": self._cmd_cmgs,
            "+CMGL": self._cmd_cmgl,
            "+CMGR": self._cmd_cmgr,
            "+CMGD": self._cmd_cmgd,
            "+CCLK": self._cmd_cclk,
            "+CTZU": self._setting("_ctzu", "+CTZU", range(2)),
        }
        if self.profile.has_cereg:
            handlers["+CEREG"] = self._cmd_creg
        # Vendor init commands (gammu's HUAWEI_INIT / ZTE_INIT) exist only on their vendor's
        # sticks; ^CURC=0 also silences Huawei's periodic URCs.
        for name in self.profile.vendor_commands:
            handlers[name] = lambda command: OK
        if "^CURC" in self.profile.vendor_commands:
            handlers["^CURC"] = self._cmd_curc
        return handlers

    def _identity(self, value: Callable[[], str | None]) -> _Handler:
        def handle(command: _Command) -> _Outcome:
            if command.op == "=?":
                return OK
            text = value()
            return SYNTAX_ERROR if text is None or command.op else _Reply((text,))

        return handle

    def _setting(self, attribute: str, name: str, allowed: range) -> _Handler:
        """A numeric setting the simulator only remembers (AT+CMMS, AT+CGSMS)."""

        def handle(command: _Command) -> _Outcome:
            if command.op == "?":
                return _Reply((f"{name}: {getattr(self, attribute)}",))
            if command.op == "=?":
                return _Reply((f"{name}: ({allowed.start}-{allowed.stop - 1})",))
            value = _int(command.value)
            if command.op != "=" or value not in allowed:
                return SYNTAX_ERROR
            setattr(self, attribute, value)
            return OK

        return handle

    def _cmd_cclk(self, command: _Command) -> _Outcome:
        """AT+CCLK? (27.007 §8.15): "yy/MM/dd,hh:mm:ss±zz", local time and its zone in
        quarter hours; a modem without the network's time gives its own start date."""
        if command.op == "=?":
            return OK
        if command.op != "?":
            return self._cme(4) if command.op == "=" else SYNTAX_ERROR
        quarters = self.network_zone_quarters
        if self.network_time_offset is None:
            local, quarters = datetime(2004, 1, 1, 0, 0, 12, tzinfo=UTC), 0
        else:
            moment = self._clock() + self.network_time_offset
            local = moment.astimezone(UTC) + timedelta(minutes=15 * quarters)
        sign = "+" if quarters >= 0 else "-"
        return _Reply((f'+CCLK: "{local:%y/%m/%d,%H:%M:%S}{sign}{abs(quarters):02d}"',))

    def _cmd_echo(self, command: _Command) -> _Outcome:
        if command.value not in ("", "0", "1"):
            return SYNTAX_ERROR
        self._echo = command.value == "1"
        return OK

    def _cmd_reset(self, command: _Command) -> _Outcome:
        # ATZ / AT&F bring back the power-up settings, not the power-up SIM or radio state.
        self._reset_settings()
        return OK

    def _reset_settings(self) -> None:
        self._echo = True
        self._cmee = 0
        self._cnmi = [0, 0, 0, 0, 0]
        self._creg_n = self._cereg_n = 0

    def _cmd_s_register(self, command: _Command) -> _Outcome:
        register = _int(command.value)
        if register is None:
            return SYNTAX_ERROR
        if command.op == "?":
            return _Reply((f"{S_REGISTER_DEFAULTS.get(register, 0):03d}",))
        return OK  # accepted and ignored: the simulator always ends lines with CR LF

    def _cmd_info(self, command: _Command) -> _Outcome:
        lines = [self.profile.manufacturer.strip(), self.profile.model.strip()]
        if self.profile.revision:
            lines.append(f"Revision: {self.profile.revision}")
        return _Reply(tuple(lines))

    def _cmd_cmee(self, command: _Command) -> _Outcome:
        if command.op == "?":
            return _Reply((f"+CMEE: {self._cmee}",))
        if command.op == "=?":
            return _Reply(("+CMEE: (0-2)",))
        value = _int(command.value)
        if command.op != "=" or value not in (0, 1, 2):
            return SYNTAX_ERROR
        self._cmee = value
        return OK

    def _cmd_cpin(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            return OK
        if command.op == "?":
            if self._sim_state == "NO SIM":
                return self._cme(10)
            # Wavecom: no OK after +CPIN (docs/gsm.md, "Vendor quirks").
            return _Reply((f"+CPIN: {self._sim_state}",), "OK" if self.profile.cpin_ok else None)
        if command.op != "=":
            return SYNTAX_ERROR
        args = command.args
        # Every PIN the driver types counts, accepted or not: a driver must never retry one.
        self.pin_attempts += 1
        if self._sim_state == "SIM PIN" and len(args) == 1:
            if args[0] == self._pin:
                self._unlock()
                return OK
            self._pin_tries -= 1
            if self._pin_tries == 0:
                self._sim_state = "SIM PUK"
            return self._cme(16)
        if self._sim_state == "SIM PUK" and len(args) == 2:
            if args[0] != DEFAULT_PUK:
                return self._cme(16)
            self._pin, self._pin_tries = args[1], PIN_TRIES
            self._unlock()
            return OK
        if self._sim_state in SIM_STATE_ERROR:
            # No SIM (10), or a lone PIN where the PUK is due (12).
            return self._cme(SIM_STATE_ERROR[self._sim_state])
        return self._cme(3)  # a PIN for a SIM that does not ask for one

    def _unlock(self) -> None:
        self._sim_state = "READY"
        self._pin_tries = PIN_TRIES
        if self._radio_on:
            self._start_registration()

    def _cmd_cfun(self, command: _Command) -> _Outcome:
        if command.op == "?":
            return _Reply((f"+CFUN: {int(self._radio_on)}{self.profile.cfun_suffix}",))
        if command.op == "=?":
            return _Reply(("+CFUN: (0,1,4),(0-1)",))
        args = command.args
        level = _int(args[0]) if args else None
        if command.op != "=" or level not in (0, 1, 4):
            return SYNTAX_ERROR
        was_on, self._radio_on = self._radio_on, level == 1
        if self._radio_on:
            if self.profile.busy_after_cfun:
                # Wavecom: +CME ERROR: 515 "init in progress" for a while (docs/gsm.md,
                # "Vendor quirks").
                self._busy_until = time.monotonic() + self.profile.busy_after_cfun
            if not was_on and self._sim_state == "READY":
                self._start_registration()
        else:
            self._later(0, self._announce_registration)
        return OK

    def _cmd_creg(self, command: _Command) -> _Outcome:
        name = command.name
        creg, cereg = self._registration()
        stat = cereg if name == "+CEREG" else creg
        attribute = "_cereg_n" if name == "+CEREG" else "_creg_n"
        if command.op == "?":
            fields = self._reg_fields(stat, getattr(self, attribute), urc=False)
            return _Reply((f"{name}: {fields}",))
        if command.op == "=?":
            return _Reply((f"{name}: (0-2)",))
        value = _int(command.value)
        if command.op != "=" or value not in (0, 1, 2):
            return SYNTAX_ERROR
        if name != "+CGREG":
            setattr(self, attribute, value)
        return OK

    def _cmd_cops(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            entry = f'(2,"{self.operator}","{self.operator[:8]}","{OPERATOR_NUMERIC}",'
            return _Reply((f"+COPS: {entry}{self.profile.access_tech}),,(0-4),(0-2)",))
        if command.op == "?":
            if not self._registered():
                return _Reply(("+COPS: 0",))
            name = (self.operator, self.operator[:8], OPERATOR_NUMERIC)[self._cops_format]
            act = self.profile.access_tech
            return _Reply((f'+COPS: 0,{self._cops_format},"{name}",{act}',))
        args = command.args
        if command.op != "=" or not args or _int(args[0]) not in (0, 1, 2, 3, 4):
            return SYNTAX_ERROR
        if args[0] == "3":
            # AT+COPS=3,<format> only chooses how AT+COPS? names the operator.
            form = _int(args[1]) if len(args) > 1 else None
            if form not in (0, 1, 2):
                return SYNTAX_ERROR
            self._cops_format = form
        return OK

    def _cmd_csq(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            return _Reply(("+CSQ: (0-31,99),(0-7,99)",))
        rssi = self.signal_rssi if self._radio_on else 99
        return _Reply((f"+CSQ: {rssi},99",))

    def _cmd_cmgf(self, command: _Command) -> _Outcome:
        if command.op == "?":
            return _Reply(("+CMGF: 0",))
        if command.op == "=?":
            return _Reply(("+CMGF: (0)",))
        if command.op == "=" and command.value == "0":
            return OK
        # Text mode is not simulated: the shopbell driver only speaks PDU mode.
        return self._cms(303)

    def _cmd_cscs(self, command: _Command) -> _Outcome:
        if command.op == "?":
            return _Reply(('+CSCS: "GSM"',))
        if command.op == "=?":
            return _Reply(('+CSCS: ("GSM","IRA","UCS2")',))
        return OK  # the character set does not matter in PDU mode

    def _cmd_csca(self, command: _Command) -> _Outcome:
        if command.op == "?":
            if self._csca_busy:
                # ZTE/M6280: SIM busy right after the SIM became ready (docs/gsm.md,
                # "Vendor quirks").
                self._csca_busy = False
                return self._cme(14)
            kind = 145 if self.smsc.startswith("+") else 129
            return _Reply((f'+CSCA: "{self.smsc}",{kind}',))
        if command.op == "=?":
            return OK
        args = command.args
        if command.op != "=" or not args:
            return SYNTAX_ERROR
        self.smsc = args[0]
        return OK

    def _cmd_csmp(self, command: _Command) -> _Outcome:
        if command.op == "?":
            return _Reply(("+CSMP: 17,167,0,0",))
        if command.op == "=" and self.profile.csmp_clears_smsc:
            # ZTE/Qualcomm forget the SMSC here (docs/gsm.md, "Vendor quirks").
            self.smsc = ""
        return OK

    def _cpms_groups(self) -> list[list[str]]:
        """The memories allowed per AT+CPMS position, read from the profile's =? answer."""
        groups = re.findall(r"\(([^()]*)\)", self.profile.cpms_test)
        return [re.findall(r'"(\w+)"', group) for group in groups]

    def _memory(self, name: str) -> _Memory:
        # "ME" and "MT" are the same store as "SM" here: one index space, so `stored` sees
        # every inbound message whatever the driver selects. Reports live in "SR".
        return {"SR": self._sr, "BM": self._bm}.get(name, self._sm)

    def _cpms_counts(self) -> list[str]:
        counts = []
        for name in self._mems:
            memory = self._memory(name)
            counts += [str(len(memory.messages)), str(memory.slots)]
        return counts

    def _cmd_cpms(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            return _Reply((self.profile.cpms_test,))
        if command.op == "?":
            fields = []
            for name in self._mems:
                memory = self._memory(name)
                fields += [f'"{name}"', str(len(memory.messages)), str(memory.slots)]
            return _Reply(("+CPMS: " + ",".join(fields),))
        args = command.args
        groups = self._cpms_groups()
        if command.op != "=" or not args or len(args) > self.profile.cpms_max_args:
            return self._cms(302)
        for position, name in enumerate(args):
            if name and name.upper() not in groups[position]:
                return self._cms(302)
        for position, name in enumerate(args):
            if name:
                self._mems[position] = name.upper()
        return _Reply(("+CPMS: " + ",".join(self._cpms_counts()),))

    def _cmd_cnmi(self, command: _Command) -> _Outcome:
        if command.op == "?":
            return _Reply(("+CNMI: " + ",".join(map(str, self._cnmi)),))
        if command.op == "=?":
            return _Reply((CNMI_TEST,))
        args = command.args
        if command.op != "=" or not args or len(args) > len(CNMI_RANGES):
            return SYNTAX_ERROR
        values: list[int] = []
        for position, arg in enumerate(args):
            value = _int(arg) if arg else self._cnmi[position]
            if value not in CNMI_RANGES[position]:
                return self._cms(303)
            values.append(value)
        self._cnmi[: len(values)] = values
        return OK

    def _cmd_csms(self, command: _Command) -> _Outcome:
        if command.op == "?":
            return _Reply((f"+CSMS: {self._csms},1,1,1",))
        if command.op == "=?":
            return _Reply(("+CSMS: (0,1)",))
        value = _int(command.value)
        if command.op != "=" or value not in (0, 1):
            return SYNTAX_ERROR
        self._csms = value
        return _Reply(("+CSMS: 1,1,1",))

    def _cmd_cnma(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            return OK
        if not self._awaiting_cnma:
            return self._cms(340)
        self._awaiting_cnma = False
        return OK

    def _cmd_curc(self, command: _Command) -> _Outcome:
        if command.op == "?":
            return _Reply((f"^CURC: {int(self._curc)}",))
        if command.op != "=" or command.value not in ("0", "1"):
            return SYNTAX_ERROR
        self._curc = command.value == "1"
        return OK

    def _cmd_cmgs(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            return OK
        length = _int(command.args[0]) if command.op == "=" and command.args else None
        if length is None:
            return self._cms(304)
        return _SendRequest(length)

    def _cmd_cmgl(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            return _Reply(("+CMGL: (0-4)",))
        wanted = _int(command.value) if command.op == "=" else 0
        if wanted not in (0, 1, 2, 3, 4):
            return self._cms(302)  # "ALL" and friends are text-mode words
        memory = self._memory(self._mems[0])
        lines: list[str] = []
        listed: list[int] = []
        for index in sorted(memory.messages):
            stat = memory.stat(index)
            if wanted in (4, stat):
                pdu = memory.messages[index]
                lines += [f"+CMGL: {index},{stat},,{_tpdu_length(pdu)}", pdu]
                listed.append(index)
        memory.read.update(listed)
        return _Reply(tuple(lines))

    def _cmd_cmgr(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            return OK
        index = _int(command.value) if command.op == "=" else None
        memory = self._memory(self._mems[0])
        if index is None:
            return SYNTAX_ERROR
        if index not in memory.messages:
            return self._cms(321)
        pdu = memory.messages[index]
        stat = "" if self.profile.cmgr_empty_stat else str(memory.stat(index))
        memory.read.add(index)
        return _Reply((f"+CMGR: {stat},,{_tpdu_length(pdu)}", pdu))

    def _cmd_cmgd(self, command: _Command) -> _Outcome:
        if command.op == "=?":
            return _Reply((f"+CMGD: (1-{self._sm.slots}),(0-4)",))
        args = command.args
        index = _int(args[0]) if command.op == "=" and args else None
        flag = _int(args[1]) if len(args) > 1 else 0
        memory = self._memory(self._mems[0])
        if flag not in (0, 1, 2, 3, 4):
            return SYNTAX_ERROR
        if flag == 0:
            if index is None or not 1 <= index <= memory.slots:
                return self._cms(321)
            targets = [index]
        else:
            # <delflag> 1-3 delete the read ones (and sent/unsent, which our stores never
            # hold), 4 everything.
            targets = sorted(i for i in memory.messages if flag == 4 or i in memory.read)
        log = self.deleted_reports if memory is self._sr else self.deleted
        for target in targets:
            if memory.remove(target):
                log.append(target)
        # After the OK, as a real network's redelivery would come.
        self._later(0, self._release_held)
        return OK

    # --- Huawei noise -----------------------------------------------------------------------

    async def _emit_periodic_urcs(self) -> None:
        for line in itertools.cycle(self.profile.periodic_urcs):
            await asyncio.sleep(self.profile.urc_interval)
            if self._curc:
                self._urc(line.format(rssi=self.signal_rssi if self._radio_on else 99))


async def run_simulator(sim: ModemSimulator, *, print_path: Callable[[str], None]) -> None:
    """Start `sim`, print the path to point `[providers.modem] port` at, serve until cancelled."""
    path = await sim.start()
    print_path(path)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


# --- helpers --------------------------------------------------------------------------------


def _point_link(link: Path, target: str) -> None:
    """Make `link` a symlink to `target`, atomically (a reader never sees it missing)."""
    if link.exists() and not link.is_symlink():
        raise ValueError(f"{link} exists and is not a symlink; the simulator will not replace it")
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    os.symlink(target, temporary)
    os.replace(temporary, link)


def _edit(raw: bytes) -> str:
    """The command line as the modem reads it: LF and NUL dropped, backspaces applied."""
    chars: list[str] = []
    for byte in raw:
        if byte == BACKSPACE:
            if chars:
                chars.pop()
        elif byte not in (LF, 0):
            chars.append(chr(byte))
    return "".join(chars)


def _split_commands(body: str) -> list[_Command]:
    """Split what follows "AT" into commands: basic ones (E0, Z, &F, S0=0) run together,
    extended ones (+CMGF=0, ^CURC=0) end at ";". Raises ValueError on what is neither."""
    commands: list[_Command] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char in " ;":
            i += 1
        elif char in "+^$%*#!":
            end = i
            quoted = False
            while end < len(body) and (quoted or body[end] != ";"):
                quoted ^= body[end] == '"'
                end += 1
            commands.append(_extended(body[i:end].strip()))
            i = end + 1
        elif char.isalpha() or char == "&":
            command, i = _basic(body, i)
            commands.append(command)
        else:
            raise ValueError(f"cannot parse {body[i:]!r}")
    return commands


def _extended(text: str) -> _Command:
    match = re.fullmatch(r"([+^$%*#!][A-Za-z0-9]*)(=\?|\?|=)?(.*)", text, re.DOTALL)
    assert match is not None  # the pattern accepts every string starting with a marker
    name, op, value = match.group(1).upper(), match.group(2) or "", match.group(3)
    if value and op != "=":
        raise ValueError(f"cannot parse {text!r}")
    return _Command("AT" + text, name, op, value.strip())


def _basic(body: str, start: int) -> tuple[_Command, int]:
    """One basic command at `start` (E0, Z, &F, S7=60, S3?) and where the next one starts."""
    width = 2 if body[start] == "&" else 1
    name = body[start : start + width].upper()
    if not name[-1:].isalpha():
        raise ValueError(f"cannot parse {body[start:]!r}")
    end = _skip_digits(body, start + width)
    value, op = body[start + width : end], ""
    if name == "S":
        # S-registers: the digits name the register, then "?" or "=<value>".
        if body.startswith("?", end):
            op, end = "?", end + 1
        elif body.startswith("=", end):
            op, end = "=", _skip_digits(body, end + 1)
    return _Command("AT" + body[start:end], name, op, value), end


def _skip_digits(text: str, at: int) -> int:
    while at < len(text) and text[at].isdigit():
        at += 1
    return at


def _split_args(value: str) -> list[str]:
    """Comma-separated arguments with their quotes removed ('"SM","ME"' -> ["SM", "ME"])."""
    if not value:
        return []
    args: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    args.append("".join(current).strip())
    return args


def _mask_pin(line: str) -> str:
    """The command line with every PIN/PUK of AT+CPIN= replaced by "****"."""

    def mask(match: re.Match[str]) -> str:
        count = len(_split_args(match.group(2)))
        return match.group(1) + ",".join(['"****"'] * count)

    return re.sub(r"(?i)(\+CPIN=)([^;]*)", mask, line)


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _digits(number: str) -> str:
    return "".join(char for char in number if char.isdigit())


def _tpdu_length(pdu: str) -> int:
    """Octets after the SC address: the <length> of +CMGL, +CMGR, +CMT, +CDS and AT+CMGS."""
    return len(pdu) // 2 - 1 - int(pdu[:2], 16)


def _check_submit(pdu: str, length: int) -> pdu_codec.Submit | None:
    """The SMS-SUBMIT in `pdu` when it is one and AT+CMGS announced its length right."""
    try:
        octets = bytes.fromhex(pdu)
    except ValueError:
        return None
    if not octets or len(octets) - 1 - octets[0] != length:
        return None
    try:
        decoded = pdu_codec.decode(pdu, smsc=True)
    except pdu_codec.PduError:
        return None
    return decoded if isinstance(decoded, pdu_codec.Submit) else None
