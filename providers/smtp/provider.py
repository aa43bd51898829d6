"""SMTP as a Provider for the outbox's `email` channel, its replies mapped to our errors.

How the HTML travels: the outbox row's body is either plain text, sent as text with a
simple HTML copy (escaped, in <pre>), or a JSON object {"text": ..., "html": ...} made by
`email_body`, sent as multipart/alternative with both parts. One column, no schema change.
"""

from __future__ import annotations

import html
import json
import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from providers.base import (
    Outgoing,
    ProviderDown,
    ProviderError,
    ProviderHealth,
    RecipientError,
    SendResult,
    TransientError,
)

if TYPE_CHECKING:
    import aiosmtplib

logger = logging.getLogger(__name__)

# The body is JSON with these keys when the sender made an HTML part itself.
_JSON_KEYS = frozenset({"text", "html"})
# Permanent refusals of a recipient: mailbox unknown or not allowed, address syntax.
_RECIPIENT_CODES = frozenset({550, 551, 553, 501})
_MAX_DETAIL = 200


def email_body(text: str, html_part: str) -> str:
    """The outbox body of an e-mail with both a text and an HTML part."""
    return json.dumps({"text": text, "html": html_part}, ensure_ascii=False)


def split_body(body: str) -> tuple[str, str]:
    """(text, html) of an outbox body: JSON from `email_body`, or plain text."""
    if body.startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if (
            isinstance(parsed, dict)
            and set(parsed) == _JSON_KEYS
            and all(isinstance(v, str) for v in parsed.values())
        ):
            return parsed["text"], parsed["html"]
    return body, f"<html><body><pre>{html.escape(body)}</pre></body></html>"


class SmtpProvider:
    """E-mail through one SMTP server; one connection per message (reports are few)."""

    name = "smtp"
    channel = "email"
    delivers = True

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        tls: bool = False,
        timeout_seconds: float = 30.0,
    ) -> None:
        if starttls and tls:
            raise ValueError("smtp: use starttls or tls, not both")
        self._host = host
        self._port = port
        self._from = from_address
        self._username = username
        self._password = password
        self._starttls = starttls
        self._tls = tls
        self._timeout = timeout_seconds
        self._closed = False
        self._down_detail: str | None = None

    async def send(self, message: Outgoing) -> SendResult:
        if self._closed:
            raise ProviderDown("smtp provider is closed")
        text, html_part = split_body(message.body)
        mail = EmailMessage()
        mail["From"] = self._from
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or "(no subject)"
        mail["Date"] = formatdate(localtime=False)
        domain = self._from.rpartition("@")[2] or None
        mail["Message-ID"] = make_msgid(domain=domain)
        mail.set_content(text)
        mail.add_alternative(html_part, subtype="html")
        # Here, not at the top: every daemon imports this module (reports), and aiosmtplib
        # is needed only when a mail goes out (bench/idle_memory.py says what it costs).
        import aiosmtplib

        try:
            _responses, said = await aiosmtplib.send(
                mail,
                hostname=self._host,
                port=self._port,
                username=self._username or None,
                password=self._password or None,
                start_tls=self._starttls,
                use_tls=self._tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPException as exc:
            raise self._error_for(exc) from exc
        except (TimeoutError, OSError) as exc:
            # The server is not there as a whole: rest it (the breaker) so reports wait for it
            # to come back instead of failing after a few quick tries.
            raise self._down(ProviderDown(self._safe(f"SMTP server unreachable: {exc}"))) from exc
        self._down_detail = None
        return SendResult(
            provider_message_id=str(mail["Message-ID"]),
            delivered=False,
            detail=self._safe(said),
        )

    def _error_for(self, exc: aiosmtplib.SMTPException) -> ProviderError:
        import aiosmtplib

        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            # One recipient per message: its refusal says it all.
            first = exc.recipients[0] if exc.recipients else None
            if first is not None:
                return self._error_for(first)
            return TransientError("SMTP server refused the recipient")
        if isinstance(exc, aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPServerDisconnected):
            return TransientError(self._safe(f"SMTP server: {type(exc).__name__}: {exc}"))
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return self._down(ProviderDown(f"SMTP server refused the login ({exc.code})"))
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            code = exc.code
            detail = self._safe(f"SMTP {code}: {exc.message}")
            if 400 <= code < 500:
                return TransientError(detail, code=str(code))
            if code in _RECIPIENT_CODES and isinstance(exc, aiosmtplib.SMTPRecipientRefused):
                return RecipientError(detail, code=str(code))
            if code == 535:
                return self._down(ProviderDown(detail, code=str(code)))
            return self._down(ProviderDown(detail, code=str(code)))
        if isinstance(exc, aiosmtplib.SMTPConnectError):
            return self._down(ProviderDown(self._safe(f"SMTP server unreachable: {exc}")))
        # STARTTLS not supported, or anything we do not know: the setup needs a look.
        return self._down(ProviderDown(self._safe(f"SMTP: {type(exc).__name__}: {exc}")))

    async def health(self) -> ProviderHealth:
        if self._closed:
            return ProviderHealth("down", "closed")
        if self._down_detail is not None:
            return ProviderHealth("down", self._down_detail)
        return ProviderHealth("ok")

    async def close(self) -> None:
        self._closed = True

    def _down(self, error: ProviderDown) -> ProviderDown:
        self._down_detail = str(error)
        return error

    def _safe(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "[password]")
        if len(text) > _MAX_DETAIL:
            text = text[: _MAX_DETAIL - 1] + "…"
        return text
