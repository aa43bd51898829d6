"""An AT command channel over a serial port: one command in flight, URCs routed aside.

A reader task splits what the modem sends into lines and decides for each one whether it
belongs to the command that is waiting (response lines, the final result code, the `> `
prompt of AT+CMGS) or is an unsolicited result code (URC), which goes to the `on_urc`
callback. The rules (docs/gsm.md, "Talking AT"): a line arriving while no command
waits is a URC; so is a line with a known URC prefix while a command waits, unless it is the
command's own answer (`+CREG:` answers AT+CREG?). `+CMT:` and `+CDS:` carry their PDU on the
next line, which is taken with them.

Written by hand on asyncio streams: python-gsmmodem has the same split but runs it in a
thread with blocking pyserial, and pyserial-asyncio-fast gives only the byte stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial
import serial_asyncio_fast

from providers.modem.errors import AtError, AtTimeout, ErrorKind, PortGone, redact

logger = logging.getLogger(__name__)

CR = "\r"
CTRL_Z = "\x1a"
ESC = "\x1b"

# Timeouts (docs/gsm.md, "Sending a segment"): 5 s for plain commands and for the `> `
# prompt, 35 s (python-gsmmodem; gammu waits 30) for the answer to the PDU of AT+CMGS.
COMMAND_TIMEOUT = 5.0
SEND_TIMEOUT = 35.0
# After ESC abandons a message the modem may still answer OK/ERROR for it; wait this long so
# that answer is not taken for the next command's.
ESCAPE_SETTLE = 0.3
# A line this long without CR/LF is garbage (the longest real line, a PDU, is < 400 chars).
MAX_LINE = 2048
READ_CHUNK = 1024

# Final result codes that end a command successfully / with an error. Vendor words: Huawei
# E1752 answers unknown commands with COMMAND NOT SUPPORT (docs/gsm.md, "Vendor quirks"); the
# V.250 call words (§5.7.1) end a command too and must not leave it waiting.
FINAL_OK = frozenset({"OK"})
FINAL_ERROR = frozenset({"ERROR"})
FINAL_VENDOR = frozenset(
    {"COMMAND NOT SUPPORT", "TOO MANY PARAMETERS", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE"}
)

# Prefixes (the part before ':') or whole lines that modems send on their own. While a command
# waits they are still URCs, unless the command asked for exactly that prefix.
URC_PREFIXES = frozenset(
    {
        "+CMTI",
        "+CMT",
        "+CDS",
        "+CDSI",
        "+CBM",
        "+CBMI",
        "+CREG",
        "+CGREG",
        "+CEREG",
        "+C5GREG",
        "+CUSD",
        "+CRING",
        "+CLIP",
        "+CCWA",
        "+CIEV",
        "+CPIN",
        "+CTZV",
        "+CTZE",
        "+PACSP",
        "+STIN",
        "+QIND",
        "+QUSIM",
        "+ZDONR",
        "+ZPASR",
        "+ZUSIMR",
        "+ZEND",
        "+ZSTR",
        "^RSSI",
        "^HCSQ",
        "^MODE",
        "^BOOT",
        "^SRVST",
        "^SIMST",
        "^STIN",
        "^DSFLOWRPT",
        "^RSSILVL",
        "^CEND",
        "^ORIG",
        "^CONF",
        "^CONN",
        "^SYSSTART",
        "*PSUTTZ",
        "DST",
    }
)
URC_LINES = frozenset({"RING", "RDY", "SMS Ready", "Call Ready", "PB DONE", "^SYSSTART"})
# URCs whose PDU follows on the next line.
URC_WITH_PDU = frozenset({"+CMT", "+CDS"})

_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class Urc:
    """One unsolicited result code: `name` is its prefix ("+CMTI", "RING"), `line` the whole
    line, `pdu` the hex PDU line that followed a +CMT or +CDS."""

    name: str
    line: str
    pdu: str | None = None

    @property
    def value(self) -> str:
        """What follows the prefix and its colon, stripped ("\"SM\",5" for +CMTI)."""
        _, _, rest = self.line.partition(":")
        return rest.strip()


@dataclass(slots=True)
class _Waiter:
    """The command in flight: what it sent, what it collected, how it ended."""

    command: str
    future: asyncio.Future[list[str]]
    prefix: str | None
    prompt: asyncio.Future[None] | None = None
    lines: list[str] = field(default_factory=list)
    # Wavecom answers AT+CPIN? with +CPIN: READY and no OK (docs/gsm.md, "Vendor quirks"): a
    # line with this prefix ends the command when no final follows within `lenient_grace`.
    lenient_prefix: str | None = None
    lenient_grace: float = 0.0
    lenient_timer: asyncio.TimerHandle | None = None
    echo: set[str] = field(default_factory=set)


def prefix_of(line: str) -> str:
    """'+CMTI' for '+CMTI: "SM",5'; the whole line when it has no colon."""
    head, sep, _ = line.partition(":")
    return head.strip() if sep else line.strip()


def command_prefix(command: str) -> str | None:
    """The answer prefix a command asks for: '+CREG' for 'AT+CREG?', None for 'ATE0'."""
    body = command.strip()
    if body[:2].upper() != "AT":
        return None
    body = body[2:]
    if not body or body[0] not in "+^*$!%#":
        return None
    end = len(body)
    for i, char in enumerate(body[1:], start=1):
        if char in "=?":
            end = i
            break
    return body[:end].upper()


def parse_final(line: str) -> tuple[bool, ErrorKind | None, int | None] | None:
    """(ok, kind, code) when the line is a final result code, else None."""
    if line in FINAL_OK:
        return True, None, None
    if line in FINAL_ERROR:
        return False, "error", None
    if line in FINAL_VENDOR:
        return False, "vendor", None
    markers: tuple[tuple[str, ErrorKind], ...] = (("+CME ERROR:", "cme"), ("+CMS ERROR:", "cms"))
    for marker, kind in markers:
        if line.startswith(marker):
            text = line[len(marker) :].strip()
            return False, kind, int(text) if text.isdigit() else None
    return None


def _is_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and all(char in _HEX for char in text)


def _clean(raw: bytes) -> str | None:
    """The line as text, or None when it is garbage (not ASCII, control characters)."""
    # NUL padding shows up around a USB modem's reset; Ctrl-Z/ESC come back in echoed sends.
    raw = raw.replace(b"\x00", b"").replace(b"\x1a", b"").replace(b"\x1b", b"")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if any((ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F for char in text):
        return None
    return text.strip()


class AtChannel:
    """One open serial port speaking AT. Use `open()`; `command()` and `send_pdu()` take turns.

    `on_urc` is called from the reader task for every URC; it must not block (queue the work).
    `on_gone` is called once when the port goes away; `gone` is set at the same moment.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        port: str = "",
        on_urc: Callable[[Urc], None] | None = None,
        on_gone: Callable[[PortGone], None] | None = None,
    ) -> None:
        self.port = port
        self._reader = reader
        self._writer = writer
        self._on_urc = on_urc
        self._on_gone = on_gone
        self._lock = asyncio.Lock()
        self._waiter: _Waiter | None = None
        self._buffer = bytearray()
        # True while the rest of an overlong line is still coming in (to be thrown away).
        self._overlong = False
        # A +CMT/+CDS whose PDU line has not arrived yet.
        self._pending_pdu_urc: tuple[str, str] | None = None
        self._gone_error: PortGone | None = None
        self.gone = asyncio.Event()
        self.last_received = time.monotonic()
        self._closing = False
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"at-reader {port}")

    @classmethod
    async def open(
        cls,
        port: str,
        *,
        baudrate: int = 115200,
        on_urc: Callable[[Urc], None] | None = None,
        on_gone: Callable[[PortGone], None] | None = None,
    ) -> AtChannel:
        """Open the port (8N1, exclusive so a second process cannot talk over us)."""
        try:
            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=port, baudrate=baudrate, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            # pyserial's text repeats the port and the errno; the errno's words are enough.
            code = getattr(exc, "errno", None)
            if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                # exclusive=True: another process (a second shopbell, minicom) holds it.
                reason = "in use by another program"
            elif isinstance(code, int):
                reason = os.strerror(code)
            else:
                reason = str(exc)
            raise PortGone(f"cannot open {port}: {reason}") from exc
        return cls(reader, writer, port=port, on_urc=on_urc, on_gone=on_gone)

    @property
    def connected(self) -> bool:
        return self._gone_error is None and not self._closing

    @property
    def error(self) -> PortGone | None:
        """Why the port went away (None while it is there, or after a plain close())."""
        return self._gone_error

    async def command(
        self,
        command: str,
        *,
        seconds: float = COMMAND_TIMEOUT,
        lenient_prefix: str | None = None,
        lenient_grace: float = 0.5,
    ) -> list[str]:
        """Send one command; return its response lines (no echo, no final) on OK.

        Raises AtError on an error final, AtTimeout when none came in time, PortGone.
        """
        async with self._lock:
            waiter = self._start(command)
            waiter.lenient_prefix = lenient_prefix
            waiter.lenient_grace = lenient_grace
            try:
                await self._write(command + CR)
                return await self._await(waiter.future, command, seconds, phase="answer")
            finally:
                self._finish(waiter)

    async def send_pdu(
        self,
        tpdu_length: int,
        pdu: str,
        *,
        prompt_timeout: float = COMMAND_TIMEOUT,
        answer_timeout: float = SEND_TIMEOUT,
    ) -> list[str]:
        """AT+CMGS=<n>, wait for `> `, write the PDU and Ctrl-Z, return the answer lines.

        No other command runs in between (the lock is held throughout: docs/gsm.md, "Sending a
        segment").
        When the prompt does not come, ESC abandons the message and AtTimeout(written=False)
        says nothing was sent. A timeout after the PDU went out is AtTimeout(written=True).
        """
        command = f"AT+CMGS={tpdu_length}"
        async with self._lock:
            waiter = self._start(command)
            loop = asyncio.get_running_loop()
            waiter.prompt = loop.create_future()
            waiter.echo.add(pdu)
            try:
                await self._write(command + CR)
                await self._await_prompt(waiter, command, prompt_timeout)
                try:
                    await self._write(pdu + CTRL_Z)
                except PortGone as exc:
                    raise PortGone(str(exc), written=True) from exc
                try:
                    return await self._await(waiter.future, command, answer_timeout, phase="answer")
                except AtTimeout as exc:
                    raise AtTimeout(command, answer_timeout, phase="answer", written=True) from exc
                except PortGone as exc:
                    raise PortGone(str(exc), written=True) from exc
            finally:
                self._finish(waiter)

    async def write_raw(self, data: str, *, swallow: float = ESCAPE_SETTLE) -> None:
        """Write bytes outside any command (ESC+CR at connect).

        A final the modem sends for them within `swallow` seconds is swallowed here rather
        than taken by the next command; 0 when the caller resynchronises some other way.
        """
        async with self._lock:
            waiter = self._start("<raw>")
            try:
                await self._write(data)
                if swallow > 0:
                    with contextlib.suppress(AtError, AtTimeout):
                        await self._await(waiter.future, "<raw>", swallow, phase="answer")
            finally:
                self._finish(waiter)

    async def settle(self, quiet: float = 0.1, limit: float = 1.0) -> None:
        """Wait until the modem has said nothing for `quiet` seconds (at most `limit`)."""
        deadline = time.monotonic() + limit
        while not self.gone.is_set():
            now = time.monotonic()
            idle = now - self.last_received
            if idle >= quiet or now >= deadline:
                return
            await asyncio.sleep(min(quiet - idle, deadline - now))

    async def close(self) -> None:
        """Stop the reader and close the port without flushing (the modem may be gone)."""
        if self._closing:
            return
        self._closing = True
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader_task
        transport = self._writer.transport
        # abort(), not close(): close() drains the output first, which can block on a hung
        # modem. A transport that hit a read error is closing itself already; aborting it
        # again would run its teardown twice.
        if not transport.is_closing():
            transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        self._fail_waiter(PortGone(f"{self.port} closed"))
        self.gone.set()

    # -- the command side -------------------------------------------------------------------

    def _start(self, command: str) -> _Waiter:
        if self._gone_error is not None:
            raise PortGone(str(self._gone_error))
        if self._closing:
            raise PortGone(f"{self.port} closed")
        loop = asyncio.get_running_loop()
        waiter = _Waiter(command, loop.create_future(), command_prefix(command))
        waiter.echo.add(command.strip())
        self._waiter = waiter
        return waiter

    def _finish(self, waiter: _Waiter) -> None:
        if waiter.lenient_timer is not None:
            waiter.lenient_timer.cancel()
        if self._waiter is waiter:
            self._waiter = None
        # A failure nobody awaited (the reader failed it after our timeout) must not be
        # reported as "exception never retrieved".
        for future in (waiter.future, waiter.prompt):
            if future is not None and future.done() and not future.cancelled():
                future.exception()

    async def _write(self, text: str) -> None:
        if self._gone_error is not None:
            raise PortGone(str(self._gone_error))
        try:
            self._writer.write(text.encode("ascii"))
            await self._writer.drain()
        except (ConnectionError, OSError, serial.SerialException, RuntimeError) as exc:
            raise PortGone(f"{self.port}: write failed: {exc}") from exc
        # The transport drops writes silently once it is closing: check again.
        if self._gone_error is not None:
            raise PortGone(str(self._gone_error))

    async def _await(
        self, future: asyncio.Future[list[str]], command: str, seconds: float, *, phase: str
    ) -> list[str]:
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.shield(future)
        except TimeoutError:
            raise AtTimeout(command, seconds, phase=phase) from None

    async def _await_prompt(self, waiter: _Waiter, command: str, seconds: float) -> None:
        assert waiter.prompt is not None
        either: set[asyncio.Future[Any]] = {waiter.prompt, waiter.future}
        done, _ = await asyncio.wait(either, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        if waiter.future in done:
            # An error final: the modem refused AT+CMGS (+CMS ERROR), nothing was sent. This
            # raises AtError (or PortGone).
            lines = waiter.future.result()
            # OK without a prompt: we are out of step with the modem (that OK answered
            # something earlier), and the prompt may still come. Abandon it as if missing.
            await self._abandon(waiter, command)
            answer = " | ".join([*lines, "OK"])
            raise AtError("error", None, f"no prompt: {answer}", command=command)
        if waiter.prompt in done:
            return
        logger.debug("no > prompt for %s within %g s; sending ESC", redact(command), seconds)
        await self._abandon(waiter, command)
        raise AtTimeout(command, seconds, phase="prompt", written=False)

    async def _abandon(self, waiter: _Waiter, command: str) -> None:
        """ESC, so a modem sitting at the prompt does not take our next command as message
        text (gammu does the same), and swallow the modem's answer to it."""
        waiter.prompt = None
        waiter.lines = []
        waiter.future = asyncio.get_running_loop().create_future()
        with contextlib.suppress(PortGone):
            await self._write(ESC)
        with contextlib.suppress(AtError, AtTimeout, PortGone):
            await self._await(waiter.future, command, ESCAPE_SETTLE, phase="answer")

    def _fail_waiter(self, error: Exception) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        for future in (waiter.prompt, waiter.future):
            if future is not None and not future.done():
                future.set_exception(error)

    # -- the reader side --------------------------------------------------------------------

    async def _read_loop(self) -> None:
        error: PortGone
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    error = PortGone(f"{self.port}: end of file (modem gone?)")
                    break
                self.last_received = time.monotonic()
                self._buffer += data
                self._process()
        except asyncio.CancelledError:
            raise
        except (OSError, serial.SerialException) as exc:
            error = PortGone(f"{self.port}: {exc}")
        except Exception as exc:  # a bug in our parsing must not leave waiters hanging
            logger.exception("AT reader on %s failed", self.port)
            error = PortGone(f"{self.port}: reader failed: {exc!r}")
        self._gone(error)

    def _gone(self, error: PortGone) -> None:
        if self._gone_error is not None:
            return
        self._gone_error = error
        self._fail_waiter(error)
        self.gone.set()
        if self._on_gone is not None and not self._closing:
            self._on_gone(error)

    def _process(self) -> None:
        buffer = self._buffer
        while buffer:
            if self._take_prompt():
                continue
            ends = [i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0]
            if not ends:
                if len(buffer) > MAX_LINE:
                    logger.debug("discarding %d bytes without a line end", len(buffer))
                    buffer.clear()
                    self._overlong = True
                break
            end = min(ends)
            raw = bytes(buffer[:end])
            del buffer[: end + 1]
            if self._overlong:
                # The tail of a line already thrown away as too long.
                self._overlong = False
                continue
            if not raw.strip():
                continue
            line = _clean(raw)
            if line is None:
                logger.debug("discarding garbage line %r", raw[:80])
                continue
            if line:
                self._handle_line(line)

    def _take_prompt(self) -> bool:
        """Consume the `> ` prompt when AT+CMGS waits for it (it has no line end)."""
        waiter = self._waiter
        if waiter is None or waiter.prompt is None or waiter.prompt.done():
            return False
        buffer = self._buffer
        start = 0
        while start < len(buffer) and buffer[start] in b"\r\n":
            start += 1
        if start >= len(buffer) or buffer[start] != ord(">"):
            return False
        end = start + 1
        if end < len(buffer) and buffer[end] == ord(" "):
            end += 1
        del buffer[:end]
        waiter.prompt.set_result(None)
        return True

    def _handle_line(self, line: str) -> None:
        if self._pending_pdu_urc is not None:
            name, urc_line = self._pending_pdu_urc
            self._pending_pdu_urc = None
            if _is_hex(line):
                self._emit(Urc(name, urc_line, line.upper()))
                return
            # Truncated: the PDU never came. Drop the URC and treat this line on its own.
            logger.debug("%s without its PDU line (got %r); dropped", urc_line, line[:80])

        waiter = self._waiter
        prefix = prefix_of(line)
        if prefix in URC_WITH_PDU and (waiter is None or waiter.prefix != prefix):
            self._pending_pdu_urc = (prefix, line)
            return
        if waiter is None or waiter.future.done():
            self._stray(line, prefix)
            return
        if line in waiter.echo:
            return
        if (prefix in URC_PREFIXES and prefix != waiter.prefix) or line in URC_LINES:
            self._emit(Urc(prefix, line))
            return
        final = parse_final(line)
        if final is None:
            waiter.lines.append(line)
            if waiter.lenient_prefix and prefix == waiter.lenient_prefix:
                self._arm_lenient(waiter)
            return
        ok, kind, code = final
        if ok:
            waiter.future.set_result(waiter.lines)
        else:
            assert kind is not None
            waiter.future.set_exception(AtError(kind, code, line, command=waiter.command))

    def _arm_lenient(self, waiter: _Waiter) -> None:
        if waiter.lenient_timer is not None:
            return
        loop = asyncio.get_running_loop()

        def finish() -> None:
            if not waiter.future.done():
                logger.debug(
                    "%s: no final; taking %s as its answer", redact(waiter.command), waiter.lines
                )
                waiter.future.set_result(waiter.lines)

        waiter.lenient_timer = loop.call_later(waiter.lenient_grace, finish)

    def _stray(self, line: str, prefix: str) -> None:
        """A line while no command waits: a URC, or a late answer to a timed-out command."""
        if parse_final(line) is not None:
            logger.debug("final %r with no command waiting; discarded", line)
            return
        self._emit(Urc(prefix, line))

    def _emit(self, urc: Urc) -> None:
        if self._on_urc is None:
            logger.debug("URC %r (no handler)", urc.line)
            return
        try:
            self._on_urc(urc)
        except Exception:
            logger.exception("URC handler failed on %r", urc.line)
