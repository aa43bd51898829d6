"""Inbound SMS from any source: write it down, apply STOP / START / HELP (and R / C, reserve
by reply, when it is on), answer the sender.

The one entry for every source (Twilio's webhook, the modem, whatever comes next) is
`InboundService.receive`. A source either carries the answer itself (Twilio: in the
webhook's TwiML, and it confirms STOP/START on its own) or needs it sent (the modem: through
the outbox); `Received.answers_inline` says which, and the service does the rest.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import phonenumbers
import sqlite_utils

from daemon.runtime.clock import Clock, utc_iso
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from providers.sms_text import analyze
from storage.database import Database
from storage.inbound import log_direct_reply, mark_handled, record_inbound
from storage.optouts import is_e164, opt_in, opt_out
from storage.subscribers import by_phone

if TYPE_CHECKING:
    from daemon.services.tgtg.reserve import Reservations

logger = logging.getLogger(__name__)

KeywordKind = Literal["stop", "start", "help", "reserve", "cancel"]
InboundKind = Literal["stop", "start", "help", "reserve", "cancel", "message", "duplicate"]

# Twilio's default keywords for long codes (docs/twilio.md, "Opt-out keywords"), REVOKE and
# OPTOUT from its newer docs. Kept in step with Twilio's own handling so our local flag mirrors
# its blocklist.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
# Reserve by reply ([tgtg] reserve_by_reply): "R" reserves a bag of the latest alert, "C"
# gives the reservation up. Single letters, because CANCEL is an opt-out word to carriers
# and Twilio (it stays one above), and only for subscribers who opted in.
RESERVE_KEYWORD = "R"
CANCEL_KEYWORD = "C"

STOP_CONFIRMATION = "You will get no more messages. Reply START to resume."
START_CONFIRMATION = "You will get messages again. Reply STOP to stop."
OPT_OUT_REASON = "recipient opted out (replied {keyword})"


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    """A keyword message: what it asks for and the word as matched (upper case, e.g. "STOP")."""

    kind: KeywordKind
    word: str


def _is_edge_noise(char: str) -> bool:
    # Whitespace and punctuation of any script ("Stop.", "¡STOP!", "«stop»").
    return char.isspace() or unicodedata.category(char).startswith("P")


def match_keyword(body: str, *, reserve: bool = False) -> KeywordMatch | None:
    """The keyword a message is, or None for an ordinary message; with `reserve`, "R" and
    "C" are keywords too, matched the same way.

    A keyword is the whole message: one word, any case, with whitespace and punctuation around
    it ignored ("stop", " Stop ", "Stop." and "STOP!" all opt out; "STOP PLEASE" and "S.T.O.P"
    do not). Twilio documents exact single words; we also accept surrounding punctuation
    because a phone's keyboard often adds a full stop, and honouring an opt-out Twilio did not
    see only makes us quieter than Twilio, never louder.
    """
    start, end = 0, len(body)
    while start < end and _is_edge_noise(body[start]):
        start += 1
    while end > start and _is_edge_noise(body[end - 1]):
        end -= 1
    word = body[start:end].upper()
    if word in OPT_OUT_KEYWORDS:
        return KeywordMatch("stop", word)
    if word in OPT_IN_KEYWORDS:
        return KeywordMatch("start", word)
    if word in HELP_KEYWORDS:
        return KeywordMatch("help", word)
    if reserve and word == RESERVE_KEYWORD:
        return KeywordMatch("reserve", word)
    if reserve and word == CANCEL_KEYWORD:
        return KeywordMatch("cancel", word)
    return None


def normalise_sender(sender: str, default_region: str = "") -> str:
    """`sender` in E.164 when phonenumbers can read it as a possible number, else as given.

    Lenient on purpose (possible, not valid): the number has already texted us, so refusing it
    would lose the message, and an alphanumeric or short-code sender is kept as it came.
    """
    raw = sender.strip()
    try:
        number = phonenumbers.parse(raw, default_region.upper() or None)
    except phonenumbers.NumberParseException:
        return sender
    if not phonenumbers.is_possible_number(number):
        return sender
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class InboundResult:
    """What handling one inbound SMS did, for the caller to answer the sender.

    `reply` is the text to answer with (HELP's help text), whoever carries it: Twilio's webhook
    puts it in TwiML, the modem sends it through the outbox. `confirmation` is the opt-out or
    opt-in confirmation for sources that must send their own (the modem); Twilio already sent
    one, so its webhook ignores it. The caller decides who sends what.
    """

    kind: InboundKind
    reply: str | None
    inbound_id: int
    confirmation: str | None = None
    # The sender as stored (E.164 when it could be read) and the subscriber it belongs to.
    sender: str = ""
    subscriber_id: int | None = None
    keyword: str | None = None
    cancelled_message_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Received:
    """One SMS as a source hands it over."""

    source: str  # "twilio", "modem": stored with the message, and the reply's provider
    sender: str
    body: str
    # The source's own id for the message: a second delivery of the same id does nothing.
    provider_message_id: str | None
    recipient: str | None = None
    # True when the source carries the answer back itself (Twilio's webhook, in TwiML).
    answers_inline: bool = False


class InboundService:
    """Records inbound SMS, applies their keywords and answers, each message in one transaction."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        help_text: str,
        *,
        default_region: str = "",
        outbox: Outbox | None = None,
        reservations: Reservations | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._help_text = help_text
        self._default_region = default_region
        # Sends the answers of sources that cannot carry them (the modem); None: none can.
        self._outbox = outbox
        # Reserve by reply, when [tgtg] reserve_by_reply is on; None: R and C are ordinary.
        self._reservations = reservations

    async def receive(self, sms: Received) -> InboundResult:
        """The one entry: record, apply the keyword, and see that the sender gets its answer.

        An "R" or "C" (reserve by reply) is recorded first, then answered with what TGTG did,
        so both roads carry the same answer the same way as HELP's.

        For an inline source the reply (HELP's text) is written down as sent before the
        caller returns it, so no reply goes out unrecorded; the source confirms STOP/START
        itself. Otherwise the reply and the confirmation go out through the outbox.
        """
        result = await self.handle(
            source=sms.source,
            sender=sms.sender,
            recipient=sms.recipient,
            body=sms.body,
            provider_message_id=sms.provider_message_id,
        )
        logger.info("inbound: SMS from %s via %s (%s)", result.sender, sms.source, result.kind)
        result = await self._reserve(result)
        if sms.answers_inline:
            if result.reply:
                await self._log_inline_reply(sms.source, result, result.reply)
        else:
            await self._send_answers(sms, result)
        return result

    async def _reserve(self, result: InboundResult) -> InboundResult:
        """R or C: ask TGTG (outside the message's transaction: it is a slow call) and make
        the outcome the reply, which then goes back like any other."""
        reservations = self._reservations
        if reservations is None or result.subscriber_id is None:
            return result
        if result.kind == "reserve":
            return replace(result, reply=await reservations.reserve(result.subscriber_id))
        if result.kind == "cancel":
            return replace(result, reply=await reservations.cancel(result.subscriber_id))
        return result

    async def _log_inline_reply(self, source: str, result: InboundResult, reply: str) -> None:
        cost = analyze(reply)
        now = utc_iso(self._clock.now())
        await self._db.write(
            lambda db: log_direct_reply(
                db,
                recipient=result.sender,
                body=reply,
                provider=source,
                now=now,
                subscriber_id=result.subscriber_id,
                encoding=cost.encoding,
                segments=cost.segments,
            )
        )

    async def _send_answers(self, sms: Received, result: InboundResult) -> None:
        answers = [text for text in (result.reply, result.confirmation) if text]
        outbox = self._outbox
        if answers and outbox is None:
            logger.warning("inbound: no outbox to answer %s via %s", result.sender, sms.source)
            return
        for number, text in enumerate(answers if outbox is not None else ()):
            try:
                await outbox.enqueue(
                    EnqueueRequest(
                        channel="sms",
                        recipient=result.sender,
                        body=text,
                        kind="reply",
                        subscriber_id=result.subscriber_id,
                        # One answer per received message, however often the source repeats it.
                        idempotency_key=f"{sms.source}-reply:{sms.provider_message_id}:{number}",
                    )
                )
            except EnqueueError as exc:
                logger.warning("inbound: cannot answer %s: %s", result.sender, exc)

    async def handle(
        self,
        *,
        source: str,
        sender: str,
        recipient: str | None,
        body: str,
        provider_message_id: str | None,
    ) -> InboundResult:
        """Write the message down and apply its keyword; a message seen before does nothing."""
        normalised = normalise_sender(sender, self._default_region)
        found = match_keyword(body, reserve=self._reservations is not None)
        now = utc_iso(self._clock.now())

        def work(db: sqlite_utils.Database) -> InboundResult:
            match = found
            if match is not None and match.kind in ("reserve", "cancel"):
                # Only a subscriber who opted in (and is not opted out) reserves by reply;
                # for anyone else "R" and "C" are ordinary messages.
                subscriber = by_phone(db, normalised) if is_e164(normalised) else None
                if subscriber is None or not subscriber.reserve_by_reply or subscriber.opted_out_at:
                    match = None
            inbound, created = record_inbound(
                db,
                source=source,
                sender=normalised,
                recipient=recipient,
                body=body,
                provider_message_id=provider_message_id,
                received_at=now,
                keyword=match.word if match else None,
            )
            if not created:
                return InboundResult(
                    kind="duplicate",
                    reply=None,
                    inbound_id=inbound.id,
                    sender=inbound.sender,
                    subscriber_id=inbound.subscriber_id,
                    keyword=inbound.keyword,
                )
            result = self._apply(db, inbound.id, normalised, match, inbound.subscriber_id, now)
            mark_handled(db, inbound.id, now, subscriber_id=result.subscriber_id)
            return result

        result = await self._db.write(work)
        if result.kind == "duplicate":
            logger.info(
                "inbound %s message %s was handled before; ignored", source, provider_message_id
            )
        elif result.kind == "stop":
            logger.info(
                "%s from %s: opted out, %d queued messages cancelled",
                result.keyword,
                result.sender,
                len(result.cancelled_message_ids),
            )
        elif result.kind == "start":
            logger.info("%s from %s: opted in", result.keyword, result.sender)
        return result

    def _apply(
        self,
        db: sqlite_utils.Database,
        inbound_id: int,
        sender: str,
        match: KeywordMatch | None,
        subscriber_id: int | None,
        now: str,
    ) -> InboundResult:
        result = InboundResult(
            kind="message",
            reply=None,
            inbound_id=inbound_id,
            sender=sender,
            subscriber_id=subscriber_id,
            keyword=match.word if match else None,
        )
        if match is None:
            return result
        if match.kind in ("reserve", "cancel"):
            # Answered by `receive` once TGTG has: a network call has no place in this
            # transaction.
            return replace(result, kind=match.kind)
        if match.kind == "help":
            # Answered even when opted out: a HELP reply is asked for, not sent unbidden, and
            # carriers require that HELP always gets one.
            return replace(result, kind="help", reply=self._help_text)
        if not is_e164(sender):
            # No subscriber row can hold such a sender, and nothing can be sent to it either.
            logger.warning(
                "inbound %s from %r is not a phone number; the keyword was not applied",
                match.word,
                sender,
            )
            return result
        if match.kind == "stop":
            outcome = opt_out(db, sender, now, reason=OPT_OUT_REASON.format(keyword=match.word))
            # Confirmed every time, not only the first: someone who sends STOP again most
            # likely missed the first confirmation, and it is the one message still allowed.
            return replace(
                result,
                kind="stop",
                confirmation=STOP_CONFIRMATION,
                subscriber_id=outcome.subscriber_id,
                cancelled_message_ids=outcome.cancelled_message_ids,
            )
        changed = opt_in(db, sender, now)
        # Confirmed only when it changed something: "YES" is also how people answer ordinary
        # questions, and "you will get messages again" would puzzle someone never opted out.
        return replace(result, kind="start", confirmation=START_CONFIRMATION if changed else None)
