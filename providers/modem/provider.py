"""The GSM modem as an SMS provider: sends segments, maps modem errors, hands inbound SMS up.

Inbound messages are persist-then-delete (gammu-smsd, smstools3): a message leaves the modem's
memory only after `on_inbound` returned for it; if it raises, the message stays and is read
again at the next reconcile (`AT+CMGL`), at every (re)connect and every `poll_seconds`. The
same message read twice has the same `key`, so the daemon records it once.

Send errors (docs/gsm.md, "Error codes"), as `_map_error` applies them:

    CMS 1, 21, 27, 28, 30 (number unassigned, rejected, unknown...)  RecipientError
    CMS 8, 10, 50 (barring, not subscribed)                          ProviderDown
    CMS 330 (SMSC unknown), 331 / CME 30 (no network),
    SIM missing/PIN/PUK (CMS 310-318, CME 10-18), port gone,
    a send while not ready (disconnected, SIM, no network)           ProviderDown
    CMS 96, 111, 304, 305 (PDU refused as invalid)                   NotForThisProvider,
        or TransientError when the modem turns out to have left PDU mode (see _encoder_error)
    CMS 302, 303 (not allowed / supported)                           ProviderDown,
        or TransientError when the modem left PDU mode
    CMS 38, 41, 42, 47, 300, 314, 332, 500, CME 14, 515, plain
    ERROR, vendor finals, unknown codes, timeouts, initialising      TransientError
A timeout or an unplug after the PDU was written says "the outcome is unknown: it may have
been sent" in its message: the outbox may then send it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from providers.base import (
    NotForThisProvider,
    Outgoing,
    ProviderDown,
    ProviderError,
    ProviderHealth,
    RecipientError,
    SendResult,
    TransientError,
)
from providers.modem.config import ModemConfig
from providers.modem.driver import (
    SIM_READY_STATES,
    DirectMessage,
    DirectReport,
    ModemDriver,
    ModemEvent,
    ModemState,
    NewReport,
    NewStored,
    Ready,
    StoredPdu,
)
from providers.modem.errors import AtError, AtTimeout, ModemError, NotReady, PortGone
from providers.modem.pdu import (
    Deliver,
    PduError,
    StatusReport,
    Submit,
    SubmitPart,
    decode,
    encode_submit,
)

logger = logging.getLogger(__name__)

# What the modem's +CMS ERROR codes mean for the outbox (docs/gsm.md, "Error codes").
# The recipient cannot get SMS: unassigned number, transfer rejected, destination out of
# service / unidentified / unknown subscriber.
RECIPIENT_CMS = frozenset({1, 21, 27, 28, 30})
# The SIM's account cannot send: operator barring, call barred, not subscribed.
ACCOUNT_CMS = frozenset({8, 10, 50})
# The modem or network found our PDU invalid: invalid mandatory information, protocol error,
# invalid PDU / text parameter. See _encoder_error for why this is NotForThisProvider.
ENCODER_CMS = frozenset({96, 111, 304, 305})
# Operation not allowed / not supported: a modem that lost PDU mode, or cannot send SMS.
UNSUPPORTED_CMS = frozenset({302, 303})
# SMSC address unknown (fix +CSCA), no network service.
SMSC_UNKNOWN_CMS = 330
NO_NETWORK_CMS = frozenset({331})
NO_NETWORK_CME = frozenset({30})
# SIM missing, locked or wrong (27.005 §3.2.5; 27.007 §9.2).
SIM_CMS = frozenset({310, 311, 312, 313, 315, 316, 317, 318})
SIM_CME = frozenset({10, 11, 12, 13, 15, 16, 17, 18})
# Busy: ask again soon.
BUSY_CMS = frozenset({314})
BUSY_CME = frozenset({14, 515})
BUSY_RETRY_AFTER = 1.0
# A send while the modem initialises: worth another try in a few seconds.
INITIALISING_RETRY_AFTER = 5.0
# How long a send waits for an initialising modem before giving up for now.
INITIALISING_WAIT_SECONDS = 10.0
# States that end the wait: the modem will not be sending soon.
NOT_SENDING_STATES = (
    ModemState.DISCONNECTED,
    ModemState.SIM_LOCKED,
    ModemState.SIM_PUK,
    ModemState.PIN_REJECTED,
    ModemState.SIM_MISSING,
    ModemState.NO_NETWORK,
    ModemState.CLOSED,
)
# The outer guard of one segment, beyond the prompt and answer timeouts it already has: the
# wait for the channel (a CMGL running) must not hang a send either.
SEND_GUARD_SLACK = 10.0
# A multipart message that could not be handed up (or deleted) is tried again this much later
# (or after poll_seconds, if that is sooner).
RETRY_SECONDS = 30.0
# A +CMTI whose slot read empty is looked for again by a full reconcile this much later.
RECHECK_SECONDS = 1.0
# Keys of inbound messages already handed up, so one whose AT+CMGD failed is deleted on the
# next read without being handed up twice.
COMMITTED_MEMORY = 1024
# Messages we could not hand up and that are not on the modem (+CMT, +CDS): kept this many.
UNSTORED_LIMIT = 256
# A send waits while this many stored status reports are announced (+CDSI) and not read yet:
# each segment brings one more, and a modem whose report memory is full drops them, leaving
# those messages `sent` for ever. Well below the 10-50 slots report memories have; a few, so
# sends and reading take turns in batches rather than one command each.
REPORTS_HIGH_WATER = 4
# ...but never longer than this: reading reports that hangs must not stop sending.
REPORTS_WAIT_SECONDS = 5.0
_NUMBER = re.compile(r"\+?[0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class ModemInbound:
    """One received SMS, reassembled. `key` is stable across reads of the same message (the
    sha1 of its sorted part PDUs): use it as the provider message id to record it once."""

    sender: str
    text: str
    received_at: datetime  # the service centre time stamp of its first part, with its offset
    parts: int
    partial: bool
    key: str


@dataclass(frozen=True, slots=True)
class ModemReport:
    """A status report: what became of the segment the modem numbered `message_reference`.

    `delivered` and `failed` are both False while the service centre still tries (TP-ST
    0x20-0x3F). `at` is the discharge time; `submitted_at` when the SMSC took the segment.
    """

    message_reference: int
    recipient: str
    delivered: bool
    failed: bool
    status: int
    at: datetime
    submitted_at: datetime | None = None


@dataclass(slots=True)
class _Part:
    """One inbound part: where it sits on the modem (index None: +CMT, not stored)."""

    pdu: str
    deliver: Deliver
    index: int | None
    memory: str | None

    @property
    def seq(self) -> int:
        return self.deliver.concat.seq if self.deliver.concat else 1


@dataclass(slots=True)
class _Group:
    """The parts of one concatenated message seen so far."""

    total: int
    first_seen: float
    parts: dict[int, _Part] = field(default_factory=dict)
    retry_at: float = 0.0


GroupKey = tuple[str, int, int, int]


class _TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; take() waits for one (FIFO)."""

    def __init__(self, rate: float, burst: float, monotonic: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = max(1.0, burst)
        self._tokens = self._burst
        self._monotonic = monotonic
        self._stamp = monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = self._monotonic()
                self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)


class ModemProvider:
    """SMS through a GSM/LTE modem on a serial port; also a source of inbound SMS.

    `start()` connects in the background and returns at once: the daemon starts without the
    modem, and health() says what is missing. `config` is the [modem] section whole, shared
    with the driver; `monotonic` is the clock of the rate limit and the inbound timers.
    """

    name = "modem"
    channel = "sms"
    delivers = True

    def __init__(
        self, config: ModemConfig, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.port = config.port
        self._send_guard = (
            config.command_timeout_seconds + config.send_timeout_seconds + SEND_GUARD_SLACK
        )
        self._monotonic = monotonic
        self.driver = ModemDriver(config)
        self._bucket = _TokenBucket(
            config.segments_per_minute / 60.0, config.segments_burst, monotonic
        )
        self._send_lock = asyncio.Lock()
        # A rolling concatenation reference: random at start so a restart does not reuse the
        # last ones (a phone would merge parts of two messages with the same reference).
        self._concat_ref = random.randrange(256)
        self.on_inbound: Callable[[ModemInbound], Awaitable[None]] | None = None
        self.on_status_report: Callable[[ModemReport], Awaitable[None]] | None = None
        self._groups: dict[GroupKey, _Group] = {}
        self._committed: OrderedDict[str, None] = OrderedDict()
        # Handed-up failures not stored on the modem (+CMT / +CDS), retried at each reconcile.
        self._unstored: list[tuple[str, int | None, str]] = []
        self._undecodable: set[str] = set()
        self._next_reconcile: float | None = None
        # The driver's +CDSI count that the pump has read the report memory after; set when
        # it moves, for sends waiting on it.
        self._reports_read = 0
        self._reports_moved = asyncio.Event()
        # Segments sent while the modem keeps reports without announcing them (AT+CNMI with
        # <ds> 0): each may have left one in its memory, read by asking the pump.
        self._unannounced = 0
        self._read_asked = False
        self._warned_no_handler = False
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = False

    # -- Provider ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background; returns at once."""
        if self._closed or self._pump_task is not None:
            return
        self._pump_task = asyncio.create_task(self._pump(), name="modem inbound")
        await self.driver.start()

    async def send(self, message: Outgoing) -> SendResult:
        """One AT+CMGS per segment under the rate limit; raise a ProviderError if it failed."""
        if message.channel != "sms":
            raise NotForThisProvider(f"the modem sends SMS, not {message.channel}")
        if self.driver.state is ModemState.INITIALISING:
            # A modem that is coming up (start, replug) is usually ready within seconds:
            # waiting a bounded while keeps it busy instead of pushing the queue back.
            await self.driver.wait_for_state(
                ModemState.READY, *NOT_SENDING_STATES, timeout=INITIALISING_WAIT_SECONDS
            )
        self._check_ready()
        if not _NUMBER.fullmatch(message.recipient.strip()):
            raise RecipientError(f"{message.recipient!r} is not a phone number a modem can dial")
        async with self._send_lock:
            self._check_ready()
            parts = self._encode(message)
            references: list[int | None] = []
            for part in parts:
                await self._let_reports_in()
                await self._bucket.take()
                try:
                    async with asyncio.timeout(self._send_guard):
                        references.append(await self.driver.send_pdu(part))
                    if self.config.status_reports and self.driver.report_routing == "silent":
                        self._unannounced += 1
                except TimeoutError:
                    raise TransientError(
                        f"no answer from the modem within {self._send_guard:g} s; the outcome is "
                        "unknown: it may have been sent" + _progress(len(references), len(parts))
                    ) from None
                except ModemError as exc:
                    raise await self._map_error(exc, len(references), len(parts)) from exc
        texts = tuple("" if ref is None else str(ref) for ref in references)
        first = references[0]
        return SendResult(
            provider_message_id=None if first is None else str(first),
            segments=len(parts),
            detail=f"{len(parts)} segment(s) via {self.driver.info.name}, "
            f"message reference(s) {', '.join(texts)}",
            parts=texts,
        )

    @property
    def on_network_time(self) -> Callable[[datetime], None] | None:
        """Told the network's time (UTC) when the modem knows it, once per connection."""
        return self.driver.on_network_time

    @on_network_time.setter
    def on_network_time(self, observer: Callable[[datetime], None] | None) -> None:
        self.driver.on_network_time = observer

    async def health(self) -> ProviderHealth:
        """The driver's state and what the modem last told us; never talks to the modem."""
        driver = self.driver
        info = driver.info
        state = driver.state
        signal = "signal unknown" if info.signal_dbm is None else f"signal {info.signal_dbm} dBm"
        if state is ModemState.READY:
            operator = info.operator or "unknown operator"
            return ProviderHealth("ok", f"ready: {info.name}, {operator}, {signal}")
        if state is ModemState.INITIALISING:
            return ProviderHealth("degraded", f"initialising: {driver.detail}")
        if state is ModemState.NO_NETWORK:
            return ProviderHealth("down", f"no network: {driver.detail}; {info.name}, {signal}")
        if state is ModemState.PIN_REJECTED:
            return ProviderHealth(
                "down",
                f"sim locked: PIN rejected, not retried ({driver.detail}); enter the right PIN "
                "in [modem] pin and restart shopbell (another wrong PIN may lock the SIM to "
                "its PUK)",
            )
        if state is ModemState.SIM_LOCKED:
            return ProviderHealth(
                "down",
                f"sim locked: {driver.detail}; enter it in [modem] pin and restart shopbell",
            )
        if state is ModemState.SIM_PUK:
            return ProviderHealth(
                "down",
                f"sim locked: {driver.detail}; unlock it with its PUK in a phone, then restart "
                "shopbell",
            )
        if state is ModemState.SIM_MISSING:
            return ProviderHealth("down", f"sim missing: {driver.detail}")
        return ProviderHealth("down", f"{state.value}: {driver.detail}")

    async def close(self) -> None:
        """Stop the inbound work and close the port; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        await self.driver.close()

    # -- sending ----------------------------------------------------------------------------

    def _check_ready(self) -> None:
        """Fail at once when the modem cannot send: a send never waits for a modem."""
        if self._closed:
            raise ProviderDown("the modem provider is closed")
        state = self.driver.state
        if state is ModemState.READY:
            return
        if state is ModemState.INITIALISING:
            raise TransientError(
                f"the modem is initialising: {self.driver.detail}",
                retry_after=INITIALISING_RETRY_AFTER,
            )
        raise ProviderDown(f"modem {state.value}: {self.driver.detail}")

    async def _let_reports_in(self) -> None:
        """Before a segment, let the pump read the status reports waiting in the modem's
        memory when there are many (bounded): in a fast burst the reports come back as fast as
        the segments go, and reading one takes more commands than sending one."""
        if self._reports_waiting() < REPORTS_HIGH_WATER:
            return
        if self._unannounced and not self._read_asked:
            # Nothing announces these: ask the pump to read the report memory.
            self._read_asked = True
            self.driver.events.put_nowait(NewReport(self.driver.report_memory, 0))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REPORTS_WAIT_SECONDS):
                while self._reports_waiting() >= REPORTS_HIGH_WATER:
                    self._reports_moved.clear()
                    await self._reports_moved.wait()

    def _reports_waiting(self) -> int:
        return self._reports_announced() - self._reports_read

    def _reports_announced(self) -> int:
        return self.driver.reports_announced + self._unannounced

    def _encode(self, message: Outgoing) -> list[SubmitPart]:
        ref = self._concat_ref
        try:
            parts = encode_submit(
                message.recipient.strip(),
                message.body,
                concat_ref=ref,
                ref_bits=8,
                status_report=self.config.status_reports,
                validity_seconds=message.validity_seconds,
            )
        except ValueError as exc:
            # The number was checked above; what is left (a text of more than 255 segments, a
            # validity out of range) is this provider's limit, not the recipient's.
            raise NotForThisProvider(f"the modem cannot encode this message: {exc}") from exc
        if len(parts) > 1:
            self._concat_ref = (ref + 1) % 256
        return parts

    async def _map_error(self, exc: ModemError, sent: int, total: int) -> ProviderError:
        """Our error class for a failed segment (docs/gsm.md, "Error codes")."""
        progress = _progress(sent, total)
        if isinstance(exc, NotReady):
            if exc.state == ModemState.INITIALISING.value:
                return TransientError(
                    f"the modem is initialising{progress}", retry_after=INITIALISING_RETRY_AFTER
                )
            return ProviderDown(f"modem {exc}{progress}")
        if isinstance(exc, PortGone):
            if exc.written:
                return ProviderDown(
                    f"the modem went away after the message was written ({exc}); the outcome "
                    f"is unknown: it may have been sent{progress}"
                )
            return ProviderDown(f"the modem went away ({exc}){progress}")
        if isinstance(exc, AtTimeout):
            if exc.written:
                return TransientError(
                    f"{exc}; the outcome is unknown: it may have been sent{progress}"
                )
            return TransientError(f"{exc}; nothing was sent{progress}")
        if not isinstance(exc, AtError):
            return TransientError(f"modem: {exc}{progress}")
        code = _code(exc)
        text = f"the modem answered {exc.line}{progress}"
        if exc.kind == "cms" and exc.code in RECIPIENT_CMS:
            return RecipientError(text, code=code)
        if exc.kind == "cms" and exc.code in ACCOUNT_CMS:
            return ProviderDown(f"{text}: the SIM's account may not send SMS", code=code)
        if exc.kind == "cms" and exc.code in ENCODER_CMS:
            return await self._encoder_error(exc, text, code)
        if exc.kind == "cms" and exc.code in UNSUPPORTED_CMS:
            if not await self.driver.check_mode():
                return TransientError(f"{text}: the modem had reset; initialising it again")
            return ProviderDown(f"{text}: the modem does not send SMS this way", code=code)
        if exc.kind == "cms" and exc.code == SMSC_UNKNOWN_CMS:
            return ProviderDown(f"{text}: set the SMS centre number in [modem] smsc", code=code)
        if (exc.kind == "cms" and exc.code in NO_NETWORK_CMS) or (
            exc.kind == "cme" and exc.code in NO_NETWORK_CME
        ):
            return ProviderDown(f"{text}: no network", code=code)
        if (exc.kind == "cms" and exc.code in SIM_CMS) or (
            exc.kind == "cme" and exc.code in SIM_CME
        ):
            return ProviderDown(f"{text}: SIM missing or locked", code=code)
        busy = (exc.kind == "cms" and exc.code in BUSY_CMS) or (
            exc.kind == "cme" and exc.code in BUSY_CME
        )
        # 38/41/42/47 network trouble, 300 ME failure, 332 network timeout, 500 unknown,
        # plain ERROR, vendor words, codes we do not know: worth another try later.
        return TransientError(text, code=code, retry_after=BUSY_RETRY_AFTER if busy else None)

    async def _encoder_error(self, exc: AtError, text: str, code: str) -> ProviderError:
        """CMS 96/111/304/305: the PDU was refused as invalid.

        Two causes. The modem reset itself and is back in text mode (every PDU is invalid to
        it): check AT+CMGF?, re-initialise, and retry the message (TransientError). Or our
        encoder produced a PDU this network refuses for this message: retrying the same PDU
        fails the same way, so not TransientError; ProviderDown would let one odd message
        switch the modem off for all traffic, again and again; RecipientError would fail a
        message another provider (whose encoder is not ours) can deliver. NotForThisProvider
        hands just this message to the next provider without counting a failure.
        """
        if not await self.driver.check_mode():
            return TransientError(f"{text}: the modem had reset; initialising it again")
        logger.error(
            "the modem refused a PDU as invalid (%s): an encoder bug; handing the message to the "
            "next provider",
            exc.line,
        )
        return NotForThisProvider(f"{text}: the modem found our PDU invalid", code=code)

    # -- receiving --------------------------------------------------------------------------

    async def _pump(self) -> None:
        """All inbound work, in turn: URC events, reconciles, multipart timeouts.

        Events that queued up meanwhile are taken together, and the status reports they
        announce read in one pass over the report memory, so a burst of +CDSI costs one
        listing and a delete each, not a read, a delete and four memory switches each.
        """
        events = self.driver.events
        while True:
            batch: list[ModemEvent] = []
            wait = self._seconds_to_next_job()
            try:
                async with asyncio.timeout(wait):
                    batch.append(await events.get())
            except TimeoutError:
                pass
            while not events.empty():
                batch.append(events.get_nowait())
            # Every +CDSI counted so far is in this batch, so its reports are read below.
            announced = self._reports_announced()
            if any(isinstance(event, NewReport) for event in batch):
                self._read_asked = False
            report_memories: dict[str | None, None] = {}
            for event in batch:
                if isinstance(event, NewReport):
                    report_memories[event.memory] = None
                else:
                    await self._guarded(self._handle(event))
            for memory in report_memories:
                await self._guarded(self._read_reports(memory))
            if announced != self._reports_read:
                # Read, or failed and left on the modem for the next reconcile: either way,
                # sends stop waiting for them.
                self._reports_read = announced
                self._reports_moved.set()
            await self._guarded(self._housekeeping())

    async def _guarded(self, work: Awaitable[None]) -> None:
        """Run one piece of inbound work; a failure is logged and the pump goes on."""
        try:
            await work
        except (NotReady, PortGone) as exc:
            # The modem went away mid-way; everything unfinished is read again after the
            # reconnect.
            logger.debug("inbound work stopped: %s", exc)
        except ModemError as exc:
            logger.warning("modem inbound work failed: %s", exc)
        except Exception:
            logger.exception("modem inbound work failed")

    async def _housekeeping(self) -> None:
        await self._flush_expired()
        if self._next_reconcile is not None and self._monotonic() >= self._next_reconcile:
            if self.driver.state in SIM_READY_STATES:
                await self._reconcile()
            else:
                # The Ready event after the reconnect brings the next one.
                self._next_reconcile = None

    def _seconds_to_next_job(self) -> float | None:
        deadlines = [group.retry_at or self._expiry(group) for group in self._groups.values()]
        if self._next_reconcile is not None:
            deadlines.append(self._next_reconcile)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self._monotonic())

    def _expiry(self, group: _Group) -> float:
        return group.first_seen + self.config.multipart_timeout_seconds

    async def _handle(self, event: ModemEvent) -> None:
        if isinstance(event, Ready):
            await self._reconcile()
        elif isinstance(event, NewReport):
            await self._read_reports(event.memory)
        elif isinstance(event, NewStored):
            stored = await self.driver.read(event.index, event.memory)
            if stored is not None:
                await self._take_stored(stored)
            else:
                # Announced but not found: an answer out of step (noise on the line) or a
                # slow modem. Look at the whole memory again soon rather than in poll_seconds.
                soon = self._monotonic() + RECHECK_SECONDS
                if self._next_reconcile is None or soon < self._next_reconcile:
                    self._next_reconcile = soon
        elif isinstance(event, DirectMessage):
            await self._take_unstored("deliver", event.length, event.pdu)
        elif isinstance(event, DirectReport):
            await self._take_unstored("report", event.length, event.pdu)

    async def _read_reports(self, memory: str | None) -> None:
        """Hand up every status report stored in `memory`; delete each once recorded (one
        not recorded stays, and is read again with the next)."""

        async def take(item: StoredPdu) -> bool:
            decoded = self._decode(item.pdu, item.has_smsc)
            if not isinstance(decoded, StatusReport):
                # A received message sharing the memory: its own +CMTI brings it up.
                return False
            return await self._report(decoded)

        await self.driver.drain(memory, take)

    async def _reconcile(self) -> None:
        """Read every stored message (URCs get lost while we are away) and hand them up."""
        self._next_reconcile = self._monotonic() + self.config.poll_seconds
        stored = await self.driver.list_stored()
        on_modem = {(item.memory, item.index) for item in stored}
        # A part that is no longer listed was deleted behind our back; its index may now hold
        # another message.
        for key, group in list(self._groups.items()):
            for seq, part in list(group.parts.items()):
                if part.index is not None and (part.memory, part.index) not in on_modem:
                    del group.parts[seq]
            if not group.parts:
                del self._groups[key]
        for item in stored:
            await self._take_stored(item)
        for key in list(self._groups):
            pending = self._groups.get(key)
            if pending is not None and len(pending.parts) >= pending.total:
                await self._commit_group(key, partial=False)
        retry, self._unstored = self._unstored, []
        for kind, length, pdu in retry:
            await self._take_unstored(kind, length, pdu)

    async def _take_stored(self, item: StoredPdu) -> None:
        decoded = self._decode(item.pdu, item.has_smsc)
        if decoded is None or isinstance(decoded, Submit):
            return  # undecodable (kept, logged once) or one of our own stored SUBMITs
        if isinstance(decoded, StatusReport):
            if await self._report(decoded):
                await self.driver.delete(item.index, item.memory)
            return
        await self._add_part(_Part(item.pdu, decoded, item.index, item.memory))

    async def _take_unstored(self, kind: str, length: int | None, pdu: str) -> None:
        """A +CMT / +CDS: on no modem memory, so a failed hand-up is kept here for a retry."""
        has_smsc = None if length is None else len(pdu) // 2 > length
        decoded = self._decode(pdu, has_smsc)
        if isinstance(decoded, StatusReport):
            if not await self._report(decoded):
                self._keep_unstored(kind, length, pdu)
        elif isinstance(decoded, Deliver):
            await self._add_part(_Part(pdu, decoded, None, None))

    def _keep_unstored(self, kind: str, length: int | None, pdu: str) -> None:
        if len(self._unstored) >= UNSTORED_LIMIT:
            logger.error("dropping an inbound %s held in memory: too many pending", kind)
            self._unstored.pop(0)
        self._unstored.append((kind, length, pdu))

    def _decode(self, pdu: str, has_smsc: bool | None) -> Deliver | StatusReport | Submit | None:
        try:
            return decode(pdu, smsc=has_smsc)
        except PduError as exc:
            if pdu not in self._undecodable:
                self._undecodable.add(pdu)
                # Never deleted: it stays on the modem for a person (or a fixed decoder).
                logger.warning("cannot decode a message on the modem (%s); left there", exc)
            return None

    async def _add_part(self, part: _Part) -> None:
        concat = part.deliver.concat
        if concat is None or concat.total <= 1:
            await self._commit([part], partial=False)
            return
        key: GroupKey = (part.deliver.number, concat.ref, concat.total, concat.ref_bits)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(total=concat.total, first_seen=self._monotonic())
        present = group.parts.get(concat.seq)
        if present is not None and present.pdu != part.pdu:
            # The same reference reused for a new message while an old one sat incomplete:
            # let the old one go as it is, then start the new one.
            await self._commit_group(key, partial=True)
            group = self._groups.setdefault(
                key, _Group(total=concat.total, first_seen=self._monotonic())
            )
        group.parts[concat.seq] = part
        if len(group.parts) >= group.total:
            await self._commit_group(key, partial=False)

    async def _flush_expired(self) -> None:
        now = self._monotonic()
        for key, group in list(self._groups.items()):
            due = group.retry_at or self._expiry(group)
            if now >= due:
                await self._commit_group(key, partial=len(group.parts) < group.total)

    async def _commit_group(self, key: GroupKey, *, partial: bool) -> None:
        group = self._groups.get(key)
        if group is None:
            return
        parts = [group.parts[seq] for seq in sorted(group.parts)]
        # If this fails, try again later, not on every turn of the pump.
        retry_at = self._monotonic() + min(self.config.poll_seconds, RETRY_SECONDS)
        try:
            committed = await self._commit(parts, partial=partial)
        except ModemError:
            group.retry_at = retry_at
            raise
        if committed:
            self._groups.pop(key, None)
        else:
            group.retry_at = retry_at

    async def _commit(self, parts: list[_Part], *, partial: bool) -> bool:
        """Hand the message up, then delete its parts from the modem. False if not handed up."""
        key = hashlib.sha1(  # noqa: S324 - an identifier, not a security measure
            "".join(sorted(part.pdu.upper() for part in parts)).encode("ascii")
        ).hexdigest()
        if key not in self._committed:
            if self.on_inbound is None:
                if not self._warned_no_handler:
                    self._warned_no_handler = True
                    logger.warning("no handler for inbound SMS: they stay on the modem")
                self._keep_direct(parts)
                return False
            first = parts[0].deliver
            inbound = ModemInbound(
                sender=first.number,
                text="".join(part.deliver.text for part in parts),
                received_at=first.timestamp,
                parts=len(parts),
                partial=partial,
                key=key,
            )
            try:
                await self.on_inbound(inbound)
            except Exception:
                logger.warning(
                    "recording an inbound SMS failed; it stays on the modem and is read again",
                    exc_info=True,
                )
                self._keep_direct(parts)
                return False
            self._committed[key] = None
            while len(self._committed) > COMMITTED_MEMORY:
                self._committed.popitem(last=False)
        for part in parts:
            if part.index is not None:
                try:
                    await self.driver.delete(part.index, part.memory)
                except AtError as exc:
                    # Recorded already: the next read deletes it without handing it up again.
                    logger.warning("deleting message %d from the modem failed: %s", part.index, exc)
        return True

    def _keep_direct(self, parts: list[_Part]) -> None:
        """A single +CMT that could not be handed up lives only here until the next try."""
        if len(parts) == 1 and parts[0].index is None and parts[0].deliver.concat is None:
            self._keep_unstored("deliver", None, parts[0].pdu)

    async def _report(self, report: StatusReport) -> bool:
        """Hand a status report up; True when it may be deleted."""
        if self.on_status_report is None:
            # Nobody matches reports: keeping them would only fill the SR memory.
            return True
        try:
            await self.on_status_report(
                ModemReport(
                    message_reference=report.message_reference,
                    recipient=report.number,
                    delivered=report.delivered,
                    failed=report.failed,
                    status=report.status,
                    at=report.discharge,
                    submitted_at=report.timestamp,
                )
            )
        except Exception:
            logger.warning(
                "recording a status report failed; it is read again later", exc_info=True
            )
            return False
        return True


def _code(exc: AtError) -> str:
    if exc.kind in ("cms", "cme") and exc.code is not None:
        return f"{exc.kind.upper()} {exc.code}"
    return exc.line


def _progress(sent: int, total: int) -> str:
    if total <= 1:
        return ""
    return f" ({sent} of {total} segments had gone out)"
