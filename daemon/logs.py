"""Logging: one clear line per event on stderr, journald-friendly, with secrets masked."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable

MASK = "********"
# journald stamps every line itself; a second timestamp only wastes the width of the screen.
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LIBRARIES = ("uvicorn.access", "httpx", "httpcore", "apscheduler")


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


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Send every log line to stderr at `level`, masking `secrets`."""
    fmt = JOURNAL_FORMAT if os.environ.get("JOURNAL_STREAM") else CONSOLE_FORMAT
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(fmt, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
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
