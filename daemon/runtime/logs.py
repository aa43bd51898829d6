"""Logging: one clear line per event on stderr (journald-aware) and in an optional rotating file,
with secrets masked."""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from daemon.runtime.paths import FILE_MODE, PathError, ensure_private_dir

if TYPE_CHECKING:
    from daemon.config import Settings

MASK = "********"
# journald stamps every line itself and reads the level from the <N> prefix (sd-daemon(3)),
# so neither a timestamp nor the level name is repeated.
JOURNAL_FORMAT = "%(name)s: %(message)s"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LIBRARIES = ("granian.access", "httpx", "httpcore", "apscheduler")
# syslog priorities (sd-daemon(3)'s SD_ERR ... SD_DEBUG) for Python's levels.
_PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
_CRITICAL_PRIORITY = 2
_DEBUG_PRIORITY = 7


def syslog_priority(levelno: int) -> int:
    """The <N> journald reads for a Python level."""
    if levelno >= logging.CRITICAL:
        return _CRITICAL_PRIORITY
    for floor, priority in _PRIORITIES:
        if levelno >= floor:
            return priority
    return _DEBUG_PRIORITY


def is_journal_stream(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True when `stream` is the journal stream systemd set up ($JOURNAL_STREAM is its
    "device:inode", systemd.exec(5)); a shell started under systemd inherits the variable
    with its own stderr on a terminal, and gets the plain format."""
    expected = environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{info.st_dev}:{info.st_ino}"


class RedactingFormatter(logging.Formatter):
    """Masks every configured secret in the final line, tracebacks included."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


class JournalFormatter(RedactingFormatter):
    """sd-daemon(3) lines: every line of a record (tracebacks too) starts with its <N>."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler whose files are created 0600: a log is for the owner only."""

    def _open(self) -> TextIO:  # type: ignore[override]
        fd = os.open(
            self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE
        )
        # A file left from before (or made by hand) is made private too.
        if stat.S_IMODE(os.fstat(fd).st_mode) & ~FILE_MODE:
            os.fchmod(fd, FILE_MODE)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def log_file_path(settings: Settings) -> Path | None:
    """[logging] file, a relative path taken inside the data folder; None when off."""
    if not settings.logging.file:
        return None
    path = Path(settings.logging.file).expanduser()
    return path if path.is_absolute() else settings.data_dir / path


def setup_logging(
    level: str,
    secrets: Iterable[str] = (),
    *,
    file: Path | None = None,
    max_bytes: int = 10_485_760,
    backups: int = 5,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send every log line to stderr at `level`, and to a rotating `file` when given, masking
    `secrets` in both; raise PathError when the file's folder cannot be made private."""
    stream = sys.stderr if stream is None else stream
    environ = os.environ if environ is None else environ
    secrets = tuple(secrets)
    handler: logging.Handler = logging.StreamHandler(stream)
    if is_journal_stream(stream, environ):
        handler.setFormatter(JournalFormatter(JOURNAL_FORMAT, secrets))
    else:
        handler.setFormatter(RedactingFormatter(CONSOLE_FORMAT, secrets))
    handlers = [handler]
    if file is not None:
        ensure_private_dir(file.parent, purpose="log folder")
        try:
            # Writes go to the page cache, not the disk: cheap enough for the event loop.
            to_file = PrivateRotatingFileHandler(
                file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        except OSError as exc:
            raise PathError(f"cannot open the log file {file}: {exc.strerror}") from None
        to_file.setFormatter(RedactingFormatter(CONSOLE_FORMAT, secrets))
        handlers.append(to_file)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old.formatter, RedactingFormatter):
            old.close()  # ours: a log file is released; others (pytest's) are not ours to close
    for new in handlers:
        root.addHandler(new)
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def update_logging(level: str, secrets: Iterable[str]) -> None:
    """Apply a reloaded config to a running daemon (SIGHUP): level and secrets to mask."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if isinstance(handler.formatter, RedactingFormatter):
            handler.formatter.update(secrets)
