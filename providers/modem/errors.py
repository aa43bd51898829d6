"""What can go wrong between us and a GSM modem, as exception classes the provider maps."""

from __future__ import annotations

from typing import Literal

# How the modem said no: a bare ERROR, a numbered +CME/+CMS ERROR, or a vendor word such as
# Huawei's COMMAND NOT SUPPORT.
ErrorKind = Literal["error", "cme", "cms", "vendor"]


def redact(command: str) -> str:
    """The command as it may be logged: a PIN or PUK in AT+CPIN=... is hidden."""
    if command.upper().startswith(("AT+CPIN=", "AT+CPWD=", "AT+CLCK=")):
        return command[: command.index("=") + 1] + "<hidden>"
    return command


class ModemError(Exception):
    """Base of every modem failure; `str(e)` is safe to log (it never holds a PIN or a PDU)."""


class AtError(ModemError):
    """A command ended in an error final result code.

    `kind` says which family, `code` is the number of +CME/+CMS ERROR (None for a bare ERROR,
    a vendor word or a verbose CMEE=2 text), `line` is the final line as the modem sent it.
    """

    def __init__(self, kind: ErrorKind, code: int | None, line: str, *, command: str = "") -> None:
        self.kind = kind
        self.code = code
        self.line = line
        self.command = redact(command)
        where = f"{self.command} answered " if command else ""
        super().__init__(f"{where}{line}")

    def is_cme(self, *codes: int) -> bool:
        return self.kind == "cme" and self.code in codes

    def is_cms(self, *codes: int) -> bool:
        return self.kind == "cms" and self.code in codes


class AtTimeout(ModemError):
    """No final result code (or no `> ` prompt) within the command's timeout.

    `written` is True when the PDU of an AT+CMGS had already gone to the modem: then the
    message may or may not have been sent (the outcome is unknown).
    """

    def __init__(
        self, command: str, seconds: float, *, phase: str = "answer", written: bool = False
    ) -> None:
        self.command = redact(command)
        self.seconds = seconds
        self.phase = phase
        self.written = written
        super().__init__(f"no {phase} to {self.command} within {seconds:g} s")


class PortGone(ModemError):
    """The serial port could not be opened, or it went away (EOF, EIO: the stick was unplugged).

    `written` is True when it happened after the PDU of an AT+CMGS was written (outcome unknown).
    """

    def __init__(self, message: str, *, written: bool = False) -> None:
        super().__init__(message)
        self.written = written


class NotReady(ModemError):
    """The driver cannot do this in its current state; `state` says which it is in
    ("disconnected", "initialising", ...), `detail` why."""

    def __init__(self, state: str, detail: str) -> None:
        super().__init__(f"{state}: {detail}" if detail else state)
        self.state = state
        self.detail = detail


class SimLocked(NotReady):
    """The SIM needs a PIN or PUK we may not enter, or our PIN was rejected (never retried)."""


class SimMissing(NotReady):
    """No usable SIM: not inserted, failed, or the wrong card (CME 10/13/15)."""


class NoNetwork(NotReady):
    """The modem is not registered with a network (CREG/CEREG stat other than 1 or 5)."""


class InitFailed(ModemError):
    """Initialisation hit an answer it cannot work with (e.g. PDU mode refused)."""
