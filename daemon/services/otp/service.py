"""One-time codes: send one through the outbox, verify it once, say where a phone stands.

The code itself exists in plain text only in this process's memory while it is made and
sent: the outbox row holds it sealed (daemon/services/outbox/sealing.py) until the provider
has it, and the sweep then blanks that row's body. The table keeps an HMAC of it; logs never
see it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from daemon.config import OTP_DEFAULT_TEXT, OtpSettings, check_otp_text
from daemon.runtime.clock import Clock, utc_iso
from daemon.services.otp.countries import allowed_calling_codes, destination_refusal
from daemon.services.otp.key import KEY_FILENAME, ensure_otp_key
from daemon.services.otp.policy import (
    PURPOSES,
    InvalidCode,
    OtpPolicy,
    SendAllowance,
    code_mac,
    code_matches,
)
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from storage import otp as rows
from storage.database import Database
from storage.models import OtpCode, parse_time
from storage.optouts import is_opted_out

log = logging.getLogger(__name__)

Reason = Literal["wrong", "none", "used", "expired", "locked"]

_REFUSALS: dict[str, str] = {
    "none": "no code is pending for this number; ask for one first",
    "used": "this code was already used; ask for a new one",
    "expired": "the code has expired; ask for a new one",
    "locked": "too many wrong tries; this code no longer works, ask for a new one",
}


class OtpError(Exception):
    """A request about codes was refused; names the field, the rule, the HTTP status."""

    def __init__(
        self,
        field: str,
        rule: str,
        *,
        status: int = 400,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{field}: {rule}" if field else rule)
        self.field = field
        self.rule = rule
        self.status = status
        self.retry_after = retry_after
        self.extra = extra or {}


class VerifyFailed(OtpError):
    """The code was not accepted: wrong, or there is no live code to check it against."""

    def __init__(self, reason: Reason, attempts_left: int) -> None:
        if reason == "wrong":
            rule = (
                f"wrong code; {attempts_left} {'try' if attempts_left == 1 else 'tries'} left"
                if attempts_left
                else "wrong code; no tries left, ask for a new one"
            )
        else:
            rule = _REFUSALS[reason]
        super().__init__(
            "otp", rule, status=400, extra={"reason": reason, "attempts_left": attempts_left}
        )
        self.reason = reason
        self.attempts_left = attempts_left


@dataclass(frozen=True)
class SendResult:
    """A code was made and its SMS written to the outbox (queued, not yet delivered)."""

    phone: str
    purpose: str
    message_id: int
    status: str
    expires_at: datetime
    expires_in: int
    sends_left: int
    resend_in: int


@dataclass(frozen=True)
class VerifyResult:
    phone: str
    purpose: str


@dataclass(frozen=True)
class OtpStatus:
    """Where a phone and purpose stand; never the code."""

    phone: str
    purpose: str
    pending: bool
    expires_in: int | None
    attempts_left: int | None
    sends_left: int
    resend_in: int
    delivery: str | None


def policy_from(settings: OtpSettings) -> OtpPolicy:
    return OtpPolicy(
        code_length=settings.code_length,
        validity_seconds=settings.validity_seconds,
        max_attempts=settings.max_attempts,
        sends_per_window=settings.sends_per_window,
        window_seconds=settings.window_seconds,
        resend_wait_seconds=settings.resend_wait_seconds,
    )


class OtpService:
    """Sends, verifies and reports on one-time codes; the policy decides, storage keeps."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        outbox: Outbox,
        key: bytes,
        policy: OtpPolicy | None = None,
        *,
        shop_name: str = "My Shop",
        text: str = OTP_DEFAULT_TEXT,
        calling_codes: frozenset[int] = frozenset(),
    ) -> None:
        self._db = db
        # Where codes may go (daemon/services/otp/countries.py); empty: any country.
        self._calling_codes = calling_codes
        self._clock = clock
        self._outbox = outbox
        self._key = key
        self.policy = policy or OtpPolicy()
        self._shop = shop_name
        self._text = check_otp_text(text)
        # The codes this process sent: id -> (created_at as stored, monotonic time sent,
        # phone). A code lives no longer than its lifetime on this clock, and the send limits
        # count real time, whatever the wall clock does (docs/clock.md); the sweep ends codes
        # in the table once their lifetime is over.
        self._issued: dict[int, tuple[str, float, str]] = {}
        self._born = clock.monotonic()

    def __repr__(self) -> str:
        return f"<OtpService {self.policy}>"  # never the key

    # -- send --------------------------------------------------------------------------------

    async def send(self, phone_text: str, purpose: str = "login") -> SendResult:
        """Make a code for this phone and purpose, replacing any live one, and queue its SMS.

        Raises OtpError: 400 for a bad phone or purpose, 429 (with retry_after) when the
        phone was sent codes too recently or too often, 409 when it opted out of SMS.
        """
        phone = self._phone(phone_text)
        self._check_purpose(purpose)
        refusal = destination_refusal(phone, self._calling_codes)
        if refusal is not None:
            raise OtpError("phone", refusal)
        policy = self.policy
        now = self._clock.now()
        sent_monotonic = self._clock.monotonic()
        code = policy.new_code()
        mac = code_mac(self._key, purpose, phone, code)
        since = utc_iso(now - timedelta(seconds=policy.window_seconds))

        def reserve(conn: Any) -> tuple[OtpCode, SendAllowance]:
            # The limit check and the new row are one transaction, so two sends at the same
            # moment cannot both pass the limit.
            sent = self._send_times(rows.sent_since(conn, phone, since), phone, now)
            allowance = policy.send_allowance(sent, now)
            if not allowance.allowed:
                raise OtpError(
                    "phone",
                    f"{allowance.reason}; try again in {allowance.retry_after}s",
                    status=429,
                    retry_after=allowance.retry_after,
                    extra={
                        "retry_after": allowance.retry_after,
                        "sends_left": allowance.sends_left,
                    },
                )
            if is_opted_out(conn, phone):
                raise OtpError(
                    "phone",
                    f"{phone} has opted out of SMS (replied STOP); it gets no codes until it "
                    "replies START",
                    status=409,
                )
            stamp = utc_iso(now)
            rows.close_live_codes(conn, phone, purpose, stamp, "replaced by a newer code")
            new = rows.insert_code(
                conn,
                phone=phone,
                purpose=purpose,
                code_hmac=mac,
                now=stamp,
                expires_at=utc_iso(policy.expires_at(now)),
            )
            return new, policy.send_allowance([*sent, now], now)

        row, after = await self._db.write(reserve)
        self._issued[row.id] = (utc_iso(row.created_at), sent_monotonic, phone)
        body = self._text.format(
            code=code, shop=self._shop, minutes=max(1, policy.validity_seconds // 60)
        )
        try:
            enqueued = await self._outbox.enqueue(
                EnqueueRequest(
                    channel="sms",
                    recipient=phone,
                    body=body,
                    kind="otp",
                    # The network drops the SMS once the code is dead, rather than deliver
                    # it late: Twilio's ValidityPeriod, the modem's TP-VP.
                    validity_seconds=policy.validity_seconds,
                    # The row id with its time: SQLite reuses the ids of swept rows.
                    idempotency_key=f"otp-{row.id}@{utc_iso(row.created_at)}",
                )
            )
        except EnqueueError as exc:
            # Not written to the outbox: the code does not count as a send.
            await self._db.write(lambda conn: rows.delete_code(conn, row.id))
            self._issued.pop(row.id, None)
            field = "phone" if exc.field == "recipient" else exc.field
            raise OtpError(
                field, exc.rule, status=exc.status, retry_after=exc.retry_after
            ) from None
        message = enqueued.message
        await self._db.write(lambda conn: rows.link_message(conn, row.id, message.id))
        log.info("otp: %s code %d for %s queued as message %d", purpose, row.id, phone, message.id)
        return SendResult(
            phone=phone,
            purpose=purpose,
            message_id=message.id,
            status=message.status,
            expires_at=row.expires_at,
            expires_in=policy.validity_seconds,
            sends_left=after.sends_left,
            resend_in=after.retry_after,
        )

    # -- verify ------------------------------------------------------------------------------

    async def verify(self, phone_text: str, code_text: str, purpose: str = "login") -> VerifyResult:
        """Accept the code once, if it is the live code for this phone and purpose.

        Raises OtpError (400) for a malformed phone, purpose or code, which does not count
        as a try, and VerifyFailed (400) for a wrong code or no live code. The check and its
        consequence (a try counted, or the code used up and the phone marked verified) are
        one transaction: of two verifies of one code, exactly one succeeds.
        """
        phone = self._phone(phone_text)
        self._check_purpose(purpose)
        try:
            given = self.policy.read_code(code_text)
        except InvalidCode as exc:
            raise OtpError("otp", str(exc)) from None
        policy, key = self.policy, self._key
        now = self._clock.now()
        stamp = utc_iso(now)
        age = self._age_of

        def attempt(conn: Any) -> tuple[Reason | None, int]:
            code = rows.latest_code(conn, phone, purpose)
            if code is None:
                return "none", 0
            state = policy.state(code, now, age(code))
            if state != "live":
                # No try is left on a code that cannot be used any more, whatever its count.
                return state, 0  # type: ignore[return-value]
            if code_matches(key, code, given):
                if not rows.consume_code(conn, code.id, stamp):
                    return "used", 0
                rows.mark_phone_verified(conn, phone, stamp)
                return None, policy.attempts_left(code)
            attempts = rows.record_wrong_attempt(
                conn, code.id, stamp, close=code.attempts + 1 >= policy.max_attempts
            )
            return "wrong", max(0, policy.max_attempts - attempts)

        reason, attempts_left = await self._db.write(attempt)
        if reason is not None:
            log.info(
                "otp: %s code for %s refused (%s, %d tries left)",
                purpose,
                phone,
                reason,
                attempts_left,
            )
            raise VerifyFailed(reason, attempts_left)
        log.info("otp: %s code for %s verified", purpose, phone)
        return VerifyResult(phone=phone, purpose=purpose)

    # -- status ------------------------------------------------------------------------------

    async def status(self, phone_text: str, purpose: str = "login") -> OtpStatus:
        """Pending or not, expires in, tries left, sends left: the same shape for any phone."""
        phone = self._phone(phone_text)
        self._check_purpose(purpose)
        policy = self.policy
        now = self._clock.now()
        since = utc_iso(now - timedelta(seconds=policy.window_seconds))

        def read(conn: Any) -> tuple[OtpCode | None, list[str], str | None]:
            code = rows.latest_code(conn, phone, purpose)
            delivery = None
            if code is not None and code.message_id is not None:
                delivery = rows.message_status(conn, code.message_id)
            return code, rows.sent_since(conn, phone, since), delivery

        code, sent, delivery = await self._db.execute(read)
        allowance = policy.send_allowance(self._send_times(sent, phone, now), now)
        age = None if code is None else self._age_of(code)
        pending = code is not None and policy.state(code, now, age) == "live"
        return OtpStatus(
            phone=phone,
            purpose=purpose,
            pending=pending,
            expires_in=math.ceil(policy.seconds_left(code, now, age)) if pending and code else None,
            attempts_left=policy.attempts_left(code) if pending and code else None,
            sends_left=allowance.sends_left,
            resend_in=allowance.retry_after,
            delivery=delivery if pending else None,
        )

    # -- sweep -------------------------------------------------------------------------------

    async def sweep(self) -> str:
        """The scheduled expiry sweep; returns the detail recorded in job_runs."""
        now = self._clock.now()
        forget = now - timedelta(seconds=self.policy.window_seconds)
        # Codes whose lifetime is over on the monotonic clock end in the table too, so a wall
        # clock that stepped back keeps none alive (here or after a restart).
        mono = self._clock.monotonic()
        policy = self.policy
        done = [
            (code_id, created)
            for code_id, (created, sent, _) in self._issued.items()
            if mono - sent >= policy.validity_seconds
        ]
        # Kept while the send limits still count them.
        forgotten = [
            code_id
            for code_id, (_, sent, _) in self._issued.items()
            if mono - sent >= max(policy.validity_seconds, policy.window_seconds)
        ]

        def tidy(conn: Any) -> tuple[rows.SweepResult, int]:
            ended = rows.end_codes(conn, done, utc_iso(now))
            return rows.sweep(conn, utc_iso(now), utc_iso(forget)), ended

        result, ended = await self._db.write(tidy)
        for code_id in forgotten:
            self._issued.pop(code_id, None)
        if ended:
            log.warning(
                "otp: ended %d codes whose lifetime ran out while the wall clock stepped back",
                ended,
            )
        return (
            f"removed {result.removed} spent codes, cancelled {result.cancelled} unsent, "
            f"blanked {result.redacted} sent texts"
        )

    # -- helpers -----------------------------------------------------------------------------

    def _send_times(self, stamps: list[str], phone: str, now: datetime) -> list[datetime]:
        """When codes went to `phone`, in real time as far as it is known: from the monotonic
        clock for the codes this process sent (also those a step forward of the wall clock
        hid from `stamps`); a stamp later than now (the clock stepped back since) from an
        earlier run counts as made when this process started, at the latest."""
        mono = self._clock.monotonic()
        known = {created: sent for created, sent, to in self._issued.values() if to == phone}
        times = [now - timedelta(seconds=mono - sent) for sent in known.values()]
        started = now - timedelta(seconds=mono - self._born)
        for stamp in stamps:
            if stamp in known:
                continue
            moment = parse_time(stamp)
            times.append(min(moment, started) if moment > now else moment)
        return times

    def _age_of(self, code: OtpCode) -> float | None:
        """Seconds since this process sent `code`, on the monotonic clock; None for a code an
        earlier run sent (or a reused id)."""
        issued = self._issued.get(code.id)
        if issued is None or issued[0] != utc_iso(code.created_at):
            return None
        return self._clock.monotonic() - issued[1]

    def _phone(self, text: str) -> str:
        try:
            return self._outbox.normalise_phone(text, field="phone")
        except EnqueueError as exc:
            raise OtpError(exc.field, exc.rule) from None

    @staticmethod
    def _check_purpose(purpose: str) -> None:
        if purpose not in PURPOSES:
            raise OtpError("purpose", f"must be one of {', '.join(PURPOSES)}")


def build_otp_service(
    settings_otp: OtpSettings,
    data_dir: Path,
    db: Database,
    clock: Clock,
    outbox: Outbox,
    *,
    shop_name: str,
    default_region: str = "",
) -> OtpService:
    """The daemon's OTP service, with the key from the data folder (made on first start).

    Raises PathError when the key cannot be read or made.
    """
    key = ensure_otp_key(data_dir / KEY_FILENAME)
    calling_codes = allowed_calling_codes(settings_otp.countries, default_region)
    if not calling_codes:
        log.warning(
            "otp: codes may be sent to any country; set [otp] countries (or [sms] "
            "default_region) so the public send route cannot be used for SMS pumping"
        )
    return OtpService(
        db,
        clock,
        outbox,
        key,
        policy_from(settings_otp),
        shop_name=shop_name,
        text=settings_otp.text,
        calling_codes=calling_codes,
    )
