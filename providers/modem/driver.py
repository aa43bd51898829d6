"""The modem driver: connect, initialise, keep it ready, and reconnect when the port comes back.

`ModemDriver` owns one `AtChannel` at a time. A supervisor task opens the port, runs the
initialisation (docs/gsm.md, "Initialisation"), then watches the modem (signal, registration,
a stuck modem) until the port goes away, and starts over with exponential backoff. What the modem
announces on its own (new messages, status reports) is put on `events` for the provider.

States (`ModemState`), as `health()` shows them:

    disconnected --open--> initialising --SIM ok, registered--> ready
                               |   |                              |  ^
                               |   +--no registration in time--> no network
                               +--SIM--> sim locked | sim puk | pin rejected | sim missing
    any state --port gone / init failed / modem stuck--> disconnected (retry with backoff)
    any state --close()--> closed

The PIN is entered at most once per driver: a rejected PIN is never sent again, not even after
a reconnect (three wrong PINs lock the SIM to its PUK); only a new driver (a restart with a
corrected config) tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from providers.modem.at import CR, ESC, AtChannel, Urc
from providers.modem.config import ModemConfig
from providers.modem.errors import (
    AtError,
    AtTimeout,
    InitFailed,
    ModemError,
    NoNetwork,
    NotReady,
    PortGone,
    SimLocked,
    SimMissing,
)

logger = logging.getLogger(__name__)

# CME codes around the SIM (27.007 §9.2): what each means for the state machine.
CME_SIM_MISSING = frozenset({10, 13, 15})
CME_PIN_NEEDED = frozenset({11, 17})
CME_PUK_NEEDED = frozenset({12, 18})
# SIM busy (14) right after unlocking, Wavecom's "busy, init in progress" (515), CMS 314:
# wait and ask again (python-gsmmodem adds 0.2 s to its delay each time it sees one).
BUSY_STEP_SECONDS = 0.2
# ...for up to this long. Not a setting: a SIM still busy after that is stuck rather than
# slow; initialisation then fails and starts over after a reconnect, which gives a slow one
# the same time again.
BUSY_TIMEOUT_SECONDS = 20.0
# The first wait before reopening a port that went away, doubling up to
# [modem] reconnect_max_seconds. Not a setting: a replugged stick is usually back within a
# second, and how long the daemon keeps trying quickly is what the maximum already decides.
RECONNECT_MIN_SECONDS = 0.5
# Three timeouts in a row: the modem is stuck; reopen the port (gammu and smstools reconnect
# after repeated errors).
WATCHDOG_TIMEOUTS = 3
# How often registration is asked for while the modem has no network.
REGISTRATION_POLL_SECONDS = 1.0
# 27.007 +CREG/+CEREG <stat>: 1 registered home, 5 registered roaming.
REGISTERED = frozenset({1, 5})
REGISTRATION_WORDS = {
    0: "not searching",
    2: "searching",
    3: "registration denied",
    4: "unknown",
}
# New-message indications, best first (docs/gsm.md, "New-message indications"): store
# everything on the modem and announce it (+CMTI, +CDSI); then inline reports (+CDS); then no
# reports at all.
CNMI_CHOICES = ("AT+CNMI=2,1,0,2,0", "AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,0,0", "AT+CNMI=1,1,0,0,0")
# Memories for received messages, best first (python-gsmmodem prefers ME, then SM).
MEMORY_PREFERENCE = ("ME", "SM", "MT")
STATUS_REPORT_MEMORY = "SR"
# +CCLK: "yy/MM/dd,hh:mm:ss±zz" (27.007 §8.15): local time, zz its offset from UTC in
# quarter hours. Some modems leave out the zone; then the offset is unknown and not used.
CCLK_PATTERN = re.compile(
    r'"?(\d{2})/(\d{2})/(\d{2}),(\d{2}):(\d{2}):(\d{2})(?:([+-])(\d{1,2}))?"?'
)
# A modem that never heard the network's time answers its own start date (SIMCom's
# 2004/01/01, Quectel's 1980/01/06 or 2000/01/01 on some firmware): anything before this
# year is not the network's time.
EARLIEST_NETWORK_YEAR = 2024
# Lines a modem prints when it has just restarted: its settings (PDU mode, CNMI) are gone.
RESTART_URCS = frozenset({"RDY", "^SYSSTART"})


class ModemState(StrEnum):
    DISCONNECTED = "disconnected"
    INITIALISING = "initialising"
    SIM_LOCKED = "sim locked"
    SIM_PUK = "sim puk"
    PIN_REJECTED = "pin rejected"
    SIM_MISSING = "sim missing"
    NO_NETWORK = "no network"
    READY = "ready"
    CLOSED = "closed"


# States in which the SIM is usable, so stored messages can be read and deleted.
SIM_READY_STATES = frozenset({ModemState.READY, ModemState.NO_NETWORK})
# States that wait for the operator; the driver keeps the port and checks the SIM now and then.
PARKED_STATES = frozenset(
    {ModemState.SIM_LOCKED, ModemState.SIM_PUK, ModemState.PIN_REJECTED, ModemState.SIM_MISSING}
)


@dataclass(frozen=True, slots=True)
class ModemInfo:
    """What the modem told us about itself, for health and logs."""

    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str = ""
    operator: str = ""
    signal_dbm: int | None = None
    smsc: str = ""
    registration: int | None = None
    # The network's time (UTC) as the modem's clock had it once registered (AT+CCLK?), and
    # nothing when the modem does not know it.
    network_time: datetime | None = None

    @property
    def name(self) -> str:
        """'Quectel EC25'; the model alone when it already names its maker."""
        maker = self.manufacturer.split(",")[0].strip()
        # "SIMCOM_Ltd" + "SIMCOM_SIM800L": the model already carries the maker's name.
        brand = re.split(r"[^A-Za-z0-9]", maker)[0]
        if brand and self.model.lower().startswith(brand.lower()):
            return self.model
        return " ".join(part for part in (maker, self.model) if part) or "modem"


@dataclass(frozen=True, slots=True)
class StoredPdu:
    """One message in the modem's memory: its index, <stat>, TPDU length and PDU hex."""

    index: int
    stat: int | None
    length: int | None
    pdu: str
    memory: str | None

    @property
    def has_smsc(self) -> bool | None:
        """True when the PDU starts with the SMSC address (its octets exceed <length>)."""
        return _has_smsc(self.pdu, self.length)


# Events for the provider, in the order the modem announced them.
@dataclass(frozen=True, slots=True)
class Ready:
    """Initialisation finished, the first time or after a reconnect, and the SIM is usable
    (with or without a network): read every stored message."""


@dataclass(frozen=True, slots=True)
class NewStored:
    """+CMTI: a message was stored at `index` of `memory`."""

    memory: str | None
    index: int


@dataclass(frozen=True, slots=True)
class NewReport:
    """+CDSI: a status report was stored at `index` of `memory`."""

    memory: str | None
    index: int


@dataclass(frozen=True, slots=True)
class DirectMessage:
    """+CMT: a message routed straight to us; it is not stored on the modem."""

    pdu: str
    length: int | None

    @property
    def has_smsc(self) -> bool | None:
        return _has_smsc(self.pdu, self.length)


@dataclass(frozen=True, slots=True)
class DirectReport:
    """+CDS: a status report routed straight to us; not stored either."""

    pdu: str
    length: int | None

    @property
    def has_smsc(self) -> bool | None:
        return _has_smsc(self.pdu, self.length)


ModemEvent = Ready | NewStored | NewReport | DirectMessage | DirectReport


class PduPart(Protocol):
    """What send_pdu needs of pdu.SubmitPart."""

    @property
    def pdu(self) -> str: ...

    @property
    def tpdu_length(self) -> int: ...


class ModemDriver:
    """One GSM modem on one serial port. `start()` returns at once; the port may come later.

    It reads its settings from `config` under their config names: `command_timeout_seconds`
    for plain commands and the `> ` prompt, `send_timeout_seconds` for the answer to a PDU,
    `boot_timeout_seconds` for the first answer after opening the port,
    `registration_timeout_seconds` before "no network" is declared (registration is still
    watched), `signal_seconds` between two checks of a ready modem (signal, registration).
    Reconnects back off from `RECONNECT_MIN_SECONDS` doubling to `reconnect_max_seconds`.
    """

    def __init__(self, config: ModemConfig) -> None:
        self.config = config
        self.port = config.port
        self._pin = config.pin or None
        self._smsc = config.smsc or None
        self._reconnect_max = max(config.reconnect_max_seconds, RECONNECT_MIN_SECONDS)
        self.events: asyncio.Queue[ModemEvent] = asyncio.Queue()
        self.info = ModemInfo()
        self._state = ModemState.DISCONNECTED
        self._detail = f"{config.port}: not opened yet"
        self._state_changed = asyncio.Event()
        self._channel: AtChannel | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._pin_attempts = 0
        self._pin_rejected = False
        self._timeouts = 0
        # Memories: the one selected for reading and receiving, and every memory worth
        # listing at start (messages already on the SIM, status reports).
        self._memory: str | None = None
        self._memories: tuple[str | None, ...] = (None,)
        self._report_memory: str | None = None
        self._storage_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        # +CDSI URCs seen so far: the provider compares it with what it has read, to know how
        # many status reports sit in the modem's memory waiting to be read.
        self.reports_announced = 0
        # How status reports reach us, from the AT+CNMI the modem took: "stored" (+CDSI),
        # "inline" (+CDS) or "silent" (kept in its memory unannounced, or not at all).
        self.report_routing = "silent"
        # Told the network's time once per connection, after registration (AT+CCLK?).
        self.on_network_time: Callable[[datetime], None] | None = None
        self._asked_time = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background (the modem may be absent: health says so)."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._supervise(), name=f"modem {self.port}")

    async def close(self) -> None:
        """Stop the supervisor and close the port; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
        self._set_state(ModemState.CLOSED, "closed")

    @property
    def state(self) -> ModemState:
        return self._state

    @property
    def detail(self) -> str:
        return self._detail

    @property
    def pin_rejected(self) -> bool:
        return self._pin_rejected

    @property
    def pin_attempts(self) -> int:
        """How many times this driver sent the PIN (once per SIM boot at most)."""
        return self._pin_attempts

    @property
    def report_memory(self) -> str | None:
        """Where the modem keeps status reports: "SR" when it has that memory, else None (the
        memory messages are read from)."""
        return self._report_memory

    async def wait_for_state(self, *states: ModemState, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until the driver is in one of `states`; False on timeout."""
        wanted = set(states)
        try:
            async with asyncio.timeout(timeout):
                while self._state not in wanted:
                    self._state_changed.clear()
                    await self._state_changed.wait()
        except TimeoutError:
            return False
        return True

    # -- what the provider calls ------------------------------------------------------------

    async def send_pdu(self, part: PduPart) -> int | None:
        """Send one SMS-SUBMIT segment; return the modem's message reference (0-255).

        None only when the modem said OK without a +CMGS line (then the message went out but
        no status report can be matched to it).
        """
        channel = self._require(ModemState.READY)
        try:
            lines = await channel.send_pdu(
                part.tpdu_length,
                part.pdu,
                prompt_timeout=self.config.command_timeout_seconds,
                answer_timeout=self.config.send_timeout_seconds,
            )
        except AtTimeout:
            self._note_timeout(channel)
            raise
        except AtError as exc:
            self._timeouts = 0
            if exc.is_cms(331) or exc.is_cme(30):
                self._lost_network(str(exc))
            raise
        self._timeouts = 0
        for line in lines:
            if line.startswith("+CMGS:"):
                value = line.partition(":")[2].split(",")[0].strip()
                if value.isdigit():
                    return int(value)
        logger.warning("modem accepted a message without a +CMGS reference: %s", lines)
        return None

    async def list_stored(self) -> list[StoredPdu]:
        """Every message in every memory worth reading (AT+CMGL=4, "all" in PDU mode)."""
        self._require(*SIM_READY_STATES)
        found: list[StoredPdu] = []
        async with self._storage_lock:
            for memory in self._memories:
                try:
                    async with self._in_memory(memory):
                        lines = await self._command(
                            "AT+CMGL=4", seconds=self.config.send_timeout_seconds
                        )
                except AtError as exc:
                    # An empty memory answers CMS 321 on some modems; a missing one errors.
                    logger.debug("listing %s: %s", memory or "the current memory", exc)
                    continue
                found.extend(_parse_listing(lines, memory))
        return found

    async def read(self, index: int, memory: str | None = None) -> StoredPdu | None:
        """The message at `index` (AT+CMGR), or None when that slot is empty."""
        self._require(*SIM_READY_STATES)
        async with self._storage_lock, self._in_memory(memory):
            try:
                lines = await self._command(f"AT+CMGR={index}")
            except AtError as exc:
                if exc.kind == "cms" and exc.code in (321, 320):  # invalid index: empty
                    return None
                raise
        return _parse_read(lines, index, memory)

    async def drain(self, memory: str | None, take: Callable[[StoredPdu], Awaitable[bool]]) -> int:
        """List every message in `memory` (AT+CMGL=4) and hand each to `take`; delete those
        it returns True for. One selection of the memory for the whole batch, so reading a
        burst of status reports costs one command each (the AT+CMGD) plus three. Returns how
        many were deleted."""
        self._require(*SIM_READY_STATES)
        deleted = 0
        async with self._storage_lock, self._in_memory(memory):
            try:
                lines = await self._command("AT+CMGL=4", seconds=self.config.send_timeout_seconds)
            except AtError as exc:
                # An empty memory answers CMS 321 on some modems.
                logger.debug("listing %s: %s", memory or "the current memory", exc)
                return 0
            for item in _parse_listing(lines, memory):
                if not await take(item):
                    continue
                try:
                    await self._command(f"AT+CMGD={item.index}")
                except AtError as exc:
                    if not (exc.kind == "cms" and exc.code == 321):  # 321: already gone
                        raise
                deleted += 1
        return deleted

    async def delete(self, index: int, memory: str | None = None) -> None:
        """Delete one stored message (AT+CMGD=<i>: the one-argument form Siemens accepts)."""
        self._require(*SIM_READY_STATES)
        async with self._storage_lock, self._in_memory(memory):
            try:
                await self._command(f"AT+CMGD={index}")
            except AtError as exc:
                if exc.kind == "cms" and exc.code == 321:  # already gone
                    logger.debug("AT+CMGD=%d: already empty", index)
                    return
                raise

    async def signal(self) -> int | None:
        """Ask the modem for its signal (AT+CSQ) now; dBm, or None when unknown."""
        self._require(*SIM_READY_STATES)
        await self._refresh_signal()
        return self.info.signal_dbm

    async def check_mode(self) -> bool:
        """True when the modem is still in PDU mode. After a silent reset it is back in text
        mode and every PDU looks invalid to it (CMS 304): then reopen and initialise again."""
        try:
            channel = self._require(*SIM_READY_STATES)
            lines = await self._command("AT+CMGF?")
        except ModemError:
            return True  # cannot tell: do not blame the modem
        mode = _first_value(lines, "+CMGF")
        if mode.strip() == "0":
            return True
        logger.warning(
            "modem on %s left PDU mode (AT+CMGF? = %s): initialising again", self.port, mode
        )
        await channel.close()
        return False

    # -- supervisor -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        while not self._closed:
            try:
                channel = await AtChannel.open(
                    self.port,
                    baudrate=self.config.baudrate,
                    on_urc=self._on_urc,
                    on_gone=self._on_gone,
                )
            except PortGone as exc:
                self._set_state(ModemState.DISCONNECTED, f"{exc}; retrying in {delay:g} s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._reconnect_max)
                continue
            self._channel = channel
            self._timeouts = 0
            self._asked_time = False
            reason = f"{self.port}: the modem went away"
            try:
                self._set_state(ModemState.INITIALISING, f"initialising the modem on {self.port}")
                await self._initialise(channel)
                # A settled state (ready, no network, or waiting for the operator): the next
                # outage starts its backoff from the bottom again.
                delay = RECONNECT_MIN_SECONDS
                await self._watch(channel)
                if channel.error is not None:
                    reason = str(channel.error)
            except PortGone as exc:
                reason = str(exc)
            except (AtError, AtTimeout, InitFailed) as exc:
                reason = f"{self.port}: initialisation failed: {exc}"
                logger.warning("modem %s", reason)
            except Exception as exc:
                # A bug (or an answer nobody foresaw) must not leave the driver for dead:
                # log it and start over like after any other failure.
                reason = f"{self.port}: the driver failed: {exc!r}"
                logger.exception("modem on %s: the driver failed", self.port)
            finally:
                self._channel = None
                await channel.close()
            if self._closed:
                break
            self._set_state(ModemState.DISCONNECTED, f"{reason}; retrying in {delay:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max)

    async def _watch(self, channel: AtChannel) -> None:
        """Until the port goes: refresh the signal, follow registration, check a parked SIM."""
        while not self._closed and channel.connected:
            if self._state is ModemState.NO_NETWORK:
                interval = REGISTRATION_POLL_SECONDS
            else:
                interval = self.config.signal_seconds
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await channel.gone.wait()
            if not channel.connected:
                return
            try:
                if self._state is ModemState.READY:
                    await self._refresh_signal()
                    if not await self._registered():
                        self._lost_network("the modem lost its network")
                elif self._state is ModemState.NO_NETWORK:
                    if await self._registered():
                        await self._become_ready()
                elif self._state in PARKED_STATES and await self._sim_ready_now():
                    # The operator unlocked the SIM some other way: carry on from there.
                    self._set_state(ModemState.INITIALISING, "the SIM is ready now")
                    await self._initialise(channel, unlocked=True)
            except AtError as exc:
                logger.debug("modem check: %s", exc)
            except AtTimeout as exc:
                logger.debug("modem check: %s", exc)
                if self._timeouts >= WATCHDOG_TIMEOUTS:
                    logger.warning("modem on %s stopped answering; reopening the port", self.port)
                    return

    # -- initialisation (docs/gsm.md, "Initialisation") ------------------------------------

    async def _initialise(self, channel: AtChannel, *, unlocked: bool = False) -> None:
        if not unlocked:
            await self._wake(channel)
            await self._basic_settings()
            if not await self._unlock_sim():
                return
            # Modems that refuse everything until the PIN is in (ZTE) refused these too.
            await self._basic_settings()
        await self._identify()
        await self._vendor_quirks()
        await self._radio_on()
        await self._busy_retry("AT+CMGF=0", also_plain_error=True)
        await self._service_centre()
        await self._select_storage()
        await self._new_message_indications()
        await self._wait_registration()
        # The SIM is usable (registered or not): stored messages can be read now.
        self.events.put_nowait(Ready())

    async def _wake(self, channel: AtChannel) -> None:
        # A process that died between AT+CMGS and Ctrl-Z leaves the modem at its `> ` prompt,
        # where our next command would become message text: ESC abandons it (gammu does
        # this on every connect).
        await channel.write_raw(ESC + CR, swallow=0)
        # A bare AT wakes some devices and flushes what a previous session left (gammu).
        # Its answer, and any answer to the ESC, is thrown away: whichever final comes first
        # ends it, the other arrives with no command waiting while we wait for the line to
        # go quiet, and is dropped.
        with contextlib.suppress(AtError, AtTimeout):
            await channel.command("AT", seconds=min(1.0, self.config.command_timeout_seconds))
        await channel.settle()
        deadline = time.monotonic() + self.config.boot_timeout_seconds
        while True:
            try:
                await channel.command("AT", seconds=min(1.0, self.config.command_timeout_seconds))
                return
            except AtError:
                # Any answer means it is alive: some modems refuse even AT until the PIN.
                return
            except AtTimeout:
                if time.monotonic() >= deadline:
                    raise InitFailed(
                        f"no answer to AT within {self.config.boot_timeout_seconds:g} s"
                    ) from None
            await asyncio.sleep(0.5)

    async def _basic_settings(self) -> None:
        # Echo off (python-gsmmodem's choice; the reader also skips an echoed command), and
        # numeric error codes, or verbose ones where numeric are refused.
        await self._optional("ATE0")
        if not await self._optional("AT+CMEE=1"):
            await self._optional("AT+CMEE=2")

    async def _unlock_sim(self) -> bool:
        """Enter the PIN if needed (once, ever). False when the SIM parks the driver."""
        status = await self._pin_status()
        if status == "READY":
            return True
        if status == "SIM PIN":
            if self._pin_rejected:
                self._park(
                    ModemState.PIN_REJECTED,
                    "the PIN in the config was rejected before and is not tried again",
                )
                return False
            if self._pin is None:
                self._park(ModemState.SIM_LOCKED, "the SIM needs its PIN and none is configured")
                return False
            # Once per boot of the SIM: a replugged stick asks again for the PIN it accepted
            # before, and gets it; a PIN it rejected is never sent again (above).
            self._pin_attempts += 1
            try:
                # Exactly once: no busy retry here, whatever the answer.
                await self._command(
                    f'AT+CPIN="{self._pin}"', seconds=max(self.config.command_timeout_seconds, 10)
                )
            except AtError as exc:
                self._pin_rejected = True
                self._park(ModemState.PIN_REJECTED, f"the SIM rejected the PIN ({exc.line})")
                return False
            status = await self._pin_status()
            if status == "READY":
                logger.info("modem on %s: SIM unlocked", self.port)
                return True
            if status == "SIM PIN":
                self._pin_rejected = True
                self._park(ModemState.PIN_REJECTED, "the SIM still asks for its PIN")
                return False
        if status == "SIM PUK":
            self._park(ModemState.SIM_PUK, "the SIM needs its PUK (too many wrong PINs)")
            return False
        if status == "SIM MISSING":
            self._park(ModemState.SIM_MISSING, "no usable SIM card (not inserted or failed)")
            return False
        self._park(ModemState.SIM_LOCKED, f"the SIM asks for {status}")
        return False

    async def _pin_status(self) -> str:
        """'READY', 'SIM PIN', 'SIM PUK', 'SIM MISSING' or the modem's own words."""
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        step = 0.0
        while True:
            try:
                # Wavecom ends +CPIN: READY without OK: take the line after a short grace.
                lines = await self._command("AT+CPIN?", lenient_prefix="+CPIN")
            except AtError as exc:
                if exc.kind == "cme" and exc.code in CME_SIM_MISSING:
                    return "SIM MISSING"
                if exc.kind == "cme" and exc.code in CME_PIN_NEEDED:
                    return "SIM PIN"
                if exc.kind == "cme" and exc.code in CME_PUK_NEEDED:
                    return "SIM PUK"
                if _is_busy(exc) and time.monotonic() < deadline:
                    step += BUSY_STEP_SECONDS
                    await asyncio.sleep(step)
                    continue
                if exc.kind == "cme" and exc.code is None and "SIM" in exc.line.upper():
                    return "SIM MISSING" if "NOT INSERTED" in exc.line.upper() else exc.line
                raise
            value = _first_value(lines, "+CPIN").strip().upper()
            if not value:
                raise InitFailed(f"AT+CPIN? gave no status: {lines}")
            return value

    async def _sim_ready_now(self) -> bool:
        try:
            return await self._pin_status() == "READY"
        except InitFailed:
            return False

    async def _identify(self) -> None:
        values = {}
        for command in ("AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+CGSN"):
            try:
                lines = await self._busy_retry(command)
            except AtError:
                values[command] = ""
                continue
            values[command] = _identity_value(lines, command[2:])
        imei = re.search(r"\d{14,17}", values["AT+CGSN"])
        self.info = replace(
            self.info,
            manufacturer=values["AT+CGMI"],
            model=values["AT+CGMM"],
            revision=values["AT+CGMR"],
            imei=imei.group(0) if imei else values["AT+CGSN"],
        )
        logger.info(
            "modem on %s: %s (firmware %s)", self.port, self.info.name, self.info.revision or "?"
        )

    async def _vendor_quirks(self) -> None:
        maker = self.info.manufacturer.lower()
        if "huawei" in maker:
            # Silence ^RSSI/^MODE/^BOOT (gammu's HUAWEI_INIT); the reader copes with them
            # anyway, this only saves noise.
            await self._optional("AT^CURC=0")
        elif "zte" in maker:
            # Turn off the fake CD-ROM and keep the stick online (gammu's ZTE_INIT).
            await self._optional("AT+ZCDRUN=8")
            await self._optional("AT+ZOPRT=5")

    async def _radio_on(self) -> None:
        try:
            lines = await self._busy_retry("AT+CFUN?")
        except AtError:
            return  # not supported: assume the radio is on
        # Some modems answer "+CFUN: 1,0"; only the first field is the power level.
        level = _first_value(lines, "+CFUN").split(",")[0].strip()
        if level == "1":
            return
        logger.info("modem on %s: radio off (CFUN %s); switching it on", self.port, level or "?")
        await self._busy_retry("AT+CFUN=1", seconds=max(self.config.command_timeout_seconds, 15.0))

    async def _service_centre(self) -> None:
        try:
            lines = await self._busy_retry("AT+CSCA?")
        except AtError as exc:
            logger.debug("AT+CSCA?: %s", exc)
            lines = []
        current = _quoted(_first_value(lines, "+CSCA"))
        if self._smsc and _digits(current) != _digits(self._smsc):
            kind = 145 if self._smsc.startswith("+") else 129
            await self._busy_retry(f'AT+CSCA="{self._smsc}",{kind}')
            current = self._smsc
        elif not current:
            logger.warning(
                "modem on %s has no SMS centre number (AT+CSCA); sends will fail with CMS 330 "
                "until one is configured",
                self.port,
            )
        self.info = replace(self.info, smsc=current)

    async def _select_storage(self) -> None:
        try:
            lines = await self._busy_retry("AT+CPMS=?")
        except AtError as exc:
            logger.debug("AT+CPMS=?: %s; keeping the modem's memories", exc)
            self._memory, self._memories, self._report_memory = None, (None,), None
            return
        slots = _parse_cpms_test(lines)
        if not slots or not slots[0]:
            self._memory, self._memories, self._report_memory = None, (None,), None
            return
        read = slots[0]
        receive = slots[2] if len(slots) > 2 else read
        chosen = next(
            (m for m in MEMORY_PREFERENCE if m in read and m in receive),
            next((m for m in MEMORY_PREFERENCE if m in read), None),
        )
        if chosen is None:
            self._memory, self._memories, self._report_memory = None, (None,), None
            return
        arguments = []
        for slot in slots[:3]:
            arguments.append(chosen if chosen in slot else slot[0])
        try:
            await self._busy_retry("AT+CPMS=" + ",".join(f'"{m}"' for m in arguments))
        except AtError as exc:
            logger.debug("AT+CPMS: %s; keeping the modem's memories", exc)
            self._memory, self._memories, self._report_memory = None, (None,), None
            return
        self._memory = chosen
        # Messages may already sit in the SIM while we receive into ME (and the other way
        # round); MT is both. Status reports stored in SR are listed too.
        memories: list[str | None] = [chosen]
        if chosen != "MT":
            memories += [m for m in ("SM", "ME") if m in read and m != chosen]
        self._report_memory = STATUS_REPORT_MEMORY if STATUS_REPORT_MEMORY in read else None
        if self._report_memory:
            memories.append(self._report_memory)
        self._memories = tuple(memories)

    async def _new_message_indications(self) -> None:
        self.report_routing = "silent"
        for command in CNMI_CHOICES:
            if await self._optional(command, busy=True):
                ds = command.split(",")[3]  # AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>
                self.report_routing = {"2": "stored", "1": "inline"}.get(ds, "silent")
                return
        logger.warning(
            "modem on %s refused every AT+CNMI setting: new messages are only found by polling",
            self.port,
        )

    async def _wait_registration(self) -> None:
        deadline = time.monotonic() + self.config.registration_timeout_seconds
        # Quick at first (a modem that was registered a moment ago), then once a second as
        # python-gsmmodem does.
        pause = 0.1
        while not await self._registered():
            if time.monotonic() >= deadline:
                word = REGISTRATION_WORDS.get(self.info.registration or 0, "not registered")
                await self._refresh_signal()
                self._set_state(
                    ModemState.NO_NETWORK,
                    f"not registered with a network ({word}) after "
                    f"{self.config.registration_timeout_seconds:g} s",
                )
                return
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, REGISTRATION_POLL_SECONDS)
        await self._become_ready()

    async def _become_ready(self) -> None:
        await self._optional("AT+COPS=3,0")
        with contextlib.suppress(AtError):
            lines = await self._command("AT+COPS?")
            self.info = replace(self.info, operator=_quoted(_first_value(lines, "+COPS")))
        await self._refresh_signal()
        await self._network_time()
        self._set_state(ModemState.READY, "ready")

    async def _network_time(self) -> None:
        """Ask the modem's clock once per connection (AT+CCLK?, 27.007 §8.15), after asking it
        to follow the network's time (AT+CTZU=1, §8.41). Many modems refuse one or both, or
        never hear the time from their network: then nothing is known, and nothing is said."""
        if self._asked_time:
            return
        self._asked_time = True
        try:
            await self._optional("AT+CTZU=1")
            lines = await self._command("AT+CCLK?")
        except (AtError, AtTimeout) as exc:
            # Only a nicety: a refusal or a slow answer must not hold up being ready.
            logger.debug("AT+CCLK?: %s", exc)
            return
        moment = parse_cclk(_first_value(lines, "+CCLK"))
        if moment is None:
            logger.debug("modem on %s: no network time in %s", self.port, lines)
            return
        self.info = replace(self.info, network_time=moment)
        logger.info("modem on %s: network time %s UTC", self.port, f"{moment:%Y-%m-%d %H:%M:%S}")
        if self.on_network_time is not None:
            try:
                self.on_network_time(moment)
            except Exception:
                logger.exception("modem on %s: the network time observer failed", self.port)

    async def _registered(self) -> bool:
        """Registered (home or roaming) by +CREG, else by +CEREG (LTE-only modules)."""
        best: int | None = None
        for command, prefix in (("AT+CREG?", "+CREG"), ("AT+CEREG?", "+CEREG")):
            try:
                lines = await self._command(command)
            except AtError:
                continue
            fields = _first_value(lines, prefix).split(",")
            # The answer is <n>,<stat>[,...]; a bare <stat> from a few modems.
            raw = fields[1] if len(fields) > 1 else fields[0]
            raw = raw.strip()
            if not raw.isdigit():
                continue
            stat = int(raw)
            if stat in REGISTERED:
                self.info = replace(self.info, registration=stat)
                return True
            if best is None or stat != 0:
                best = stat
        self.info = replace(self.info, registration=best)
        return False

    async def _refresh_signal(self) -> None:
        try:
            lines = await self._command("AT+CSQ")
        except AtError:
            return
        rssi = _first_value(lines, "+CSQ").split(",")[0].strip()
        dbm = -113 + 2 * int(rssi) if rssi.isdigit() and int(rssi) <= 31 else None
        self.info = replace(self.info, signal_dbm=dbm)

    # -- plumbing ---------------------------------------------------------------------------

    async def _command(
        self, command: str, *, seconds: float | None = None, lenient_prefix: str | None = None
    ) -> list[str]:
        channel = self._channel
        if channel is None:
            raise PortGone(f"{self.port}: not connected")
        try:
            lines = await channel.command(
                command,
                seconds=self.config.command_timeout_seconds if seconds is None else seconds,
                lenient_prefix=lenient_prefix,
            )
        except AtTimeout:
            self._note_timeout(channel)
            raise
        except AtError:
            self._timeouts = 0
            raise
        self._timeouts = 0
        return lines

    async def _busy_retry(
        self, command: str, *, seconds: float | None = None, also_plain_error: bool = False
    ) -> list[str]:
        """Run a command, asking again while the SIM or modem says it is busy (CME 14/515,
        CMS 314). With `also_plain_error`, a bare ERROR is retried too: SIMCom modules answer
        SMS commands with ERROR until they print "SMS Ready"."""
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        step = 0.0
        while True:
            try:
                return await self._command(command, seconds=seconds)
            except AtError as exc:
                retry = _is_busy(exc) or (also_plain_error and exc.kind == "error")
                if not retry or time.monotonic() >= deadline:
                    raise
                step += BUSY_STEP_SECONDS
                logger.debug("%s: %s; asking again in %.1f s", command, exc.line, step)
                await asyncio.sleep(step)

    async def _optional(self, command: str, *, busy: bool = False) -> bool:
        """A command whose refusal changes nothing; True when it answered OK."""
        try:
            if busy:
                await self._busy_retry(command)
            else:
                await self._command(command)
        except AtError as exc:
            logger.debug("%s refused: %s", command, exc.line)
            return False
        return True

    @contextlib.asynccontextmanager
    async def _in_memory(self, memory: str | None) -> AsyncIterator[None]:
        """Select `memory` for reading and deleting, and the usual one again afterwards."""
        if memory is None or memory == self._memory:
            yield
            return
        await self._command(f'AT+CPMS="{memory}"')
        try:
            yield
        finally:
            if self._memory is not None and self._channel is not None:
                with contextlib.suppress(ModemError):
                    await self._command(f'AT+CPMS="{self._memory}"')

    def _require(self, *states: ModemState) -> AtChannel:
        channel = self._channel
        if self._state in states and channel is not None and channel.connected:
            return channel
        state, detail = self._state, self._detail
        if state is ModemState.NO_NETWORK:
            raise NoNetwork(state.value, detail)
        if state is ModemState.SIM_MISSING:
            raise SimMissing(state.value, detail)
        if state in PARKED_STATES:
            raise SimLocked(state.value, detail)
        raise NotReady(state.value, detail)

    def _note_timeout(self, channel: AtChannel) -> None:
        self._timeouts += 1
        if self._timeouts >= WATCHDOG_TIMEOUTS and channel.connected:
            logger.warning(
                "modem on %s: %d timeouts in a row; reopening the port", self.port, self._timeouts
            )
            # Closing sets `gone`, which ends _watch; the supervisor reconnects.
            self._spawn(channel.close())

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        # The loop keeps only weak references to tasks.
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _lost_network(self, why: str) -> None:
        if self._state is ModemState.READY:
            self._set_state(ModemState.NO_NETWORK, why)

    def _park(self, state: ModemState, detail: str) -> None:
        self._set_state(state, detail)

    def _set_state(self, state: ModemState, detail: str) -> None:
        previous = self._state
        self._state, self._detail = state, detail
        self._state_changed.set()
        if state is previous:
            return
        # An outage is logged once when it starts and once when it ends.
        if state is ModemState.READY:
            logger.info("modem on %s is ready: %s", self.port, self.info.name)
        elif state in (ModemState.INITIALISING, ModemState.CLOSED):
            logger.debug("modem on %s: %s", self.port, detail)
        else:
            logger.warning("modem on %s: %s: %s", self.port, state.value, detail)

    def _on_gone(self, error: PortGone) -> None:
        """Called by the reader the moment the port fails: sends must see it at once."""
        if not self._closed:
            self._set_state(ModemState.DISCONNECTED, f"{error}; reconnecting")

    def _on_urc(self, urc: Urc) -> None:
        """Called by the reader task for every URC: turn the ones we act on into events."""
        name = urc.name
        if name in ("+CMTI", "+CDSI"):
            memory, index = _memory_index(urc.value)
            if index is None:
                logger.debug("unreadable %s", urc.line)
                return
            event: ModemEvent = (
                NewStored(memory, index) if name == "+CMTI" else NewReport(memory, index)
            )
            if name == "+CDSI":
                self.reports_announced += 1
            self.events.put_nowait(event)
        elif name in ("+CMT", "+CDS") and urc.pdu:
            length = _last_int(urc.value)
            if name == "+CMT":
                self.events.put_nowait(DirectMessage(urc.pdu, length))
            else:
                self.events.put_nowait(DirectReport(urc.pdu, length))
        elif name in RESTART_URCS and self._state in SIM_READY_STATES:
            # The modem restarted under us (power glitch): PDU mode and CNMI are gone.
            channel = self._channel
            logger.warning("modem on %s restarted (%s); initialising again", self.port, urc.line)
            if channel is not None:
                self._spawn(channel.close())
        else:
            logger.debug("URC %s", urc.line)


# -- parsing helpers -------------------------------------------------------------------------


def parse_cclk(value: str) -> datetime | None:
    """The UTC time in a +CCLK answer ("26/03/10,14:05:09+04"), or None when it holds no
    zone, is malformed, or is too old to come from the network (a modem's default date)."""
    found = CCLK_PATTERN.fullmatch(value.strip())
    if found is None or found.group(7) is None:
        return None
    yy, month, day, hour, minute, second = (int(found.group(n)) for n in range(1, 7))
    quarters = int(found.group(8)) * (1 if found.group(7) == "+" else -1)
    if not -56 <= quarters <= 56:  # UTC-14:00 to UTC+14:00
        return None
    try:
        local = datetime(2000 + yy, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    moment = local - timedelta(minutes=15 * quarters)
    return moment if moment.year >= EARLIEST_NETWORK_YEAR else None


def _is_busy(exc: AtError) -> bool:
    return exc.is_cme(14, 515) or exc.is_cms(314)


def _has_smsc(pdu: str, length: int | None) -> bool | None:
    if length is None:
        return None
    return len(pdu) // 2 > length


def _first_value(lines: Iterable[str], prefix: str) -> str:
    """The text after '<prefix>:' in the first line that has it, else ''."""
    for line in lines:
        if line.startswith(prefix + ":"):
            return line[len(prefix) + 1 :].strip()
    return ""


def _identity_value(lines: list[str], name: str) -> str:
    for line in lines:
        text = line.strip()
        if text.startswith(name + ":"):
            text = text[len(name) + 1 :].strip()
        if text:
            return " ".join(text.strip('"').split())
    return ""


def _quoted(value: str) -> str:
    """The first quoted string in `value` ('' when there is none)."""
    match = re.search(r'"([^"]*)"', value)
    return match.group(1).strip() if match else ""


def _digits(number: str | None) -> str:
    return re.sub(r"\D", "", number or "")


def _last_int(value: str) -> int | None:
    tail = value.split(",")[-1].strip()
    return int(tail) if tail.isdigit() else None


def _memory_index(value: str) -> tuple[str | None, int | None]:
    """('SM', 5) for '"SM",5'."""
    fields = [field.strip() for field in value.split(",")]
    index = int(fields[-1]) if fields and fields[-1].isdigit() else None
    memory = fields[0].strip('"') if len(fields) > 1 else None
    return memory or None, index


def _parse_cpms_test(lines: list[str]) -> list[list[str]]:
    """[['ME','MT','SM','SR'], [...], [...]] from '+CPMS: ("ME","MT",...),(...),(...)'."""
    value = _first_value(lines, "+CPMS")
    groups = re.findall(r"\(([^()]*)\)", value)
    return [re.findall(r'"([^"]+)"', group) for group in groups]


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _parse_listing(lines: list[str], memory: str | None) -> list[StoredPdu]:
    """+CMGL: <index>,<stat>,[<alpha>],<length> then the PDU line, per message."""
    found = []
    header: list[str] | None = None
    for line in lines:
        if line.startswith("+CMGL:"):
            header = line[6:].split(",")
            continue
        if header is None:
            continue
        index = _int_or_none(header[0])
        if index is not None:
            stat = _int_or_none(header[1]) if len(header) > 1 else None
            found.append(StoredPdu(index, stat, _int_or_none(header[-1]), line.upper(), memory))
        header = None
    return found


def _parse_read(lines: list[str], index: int, memory: str | None) -> StoredPdu | None:
    """+CMGR: <stat>,[<alpha>],<length> then the PDU line; ZTE leaves <stat> empty."""
    header: list[str] | None = None
    for line in lines:
        if line.startswith("+CMGR:"):
            header = line[6:].split(",")
            continue
        if header is not None and line:
            return StoredPdu(
                index, _int_or_none(header[0]), _int_or_none(header[-1]), line.upper(), memory
            )
    return None
