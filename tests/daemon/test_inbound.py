"""Inbound SMS: the keyword rules, sender numbers, and the service's one transaction per message."""

from __future__ import annotations

from typing import Any

import pytest
import sqlite_utils

from daemon.runtime.clock import ManualClock
from daemon.services import inbound as inbound_module
from daemon.services.inbound import (
    START_CONFIRMATION,
    STOP_CONFIRMATION,
    InboundResult,
    InboundService,
    KeywordMatch,
    match_keyword,
    normalise_sender,
)
from storage.database import Database
from storage.messages import PRIORITY, NewMessage, get_message, insert_message
from storage.optouts import is_opted_out

HELP = "Corner Shop alerts. Reply STOP to stop."
PHONE = "+447700900123"
SHOP = "+447700900999"

# Keyword rules


@pytest.mark.parametrize(
    "word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
)
def test_opt_out_words(word: str) -> None:
    assert match_keyword(word) == KeywordMatch("stop", word)


@pytest.mark.parametrize("word", ["START", "YES", "UNSTOP"])
def test_opt_in_words(word: str) -> None:
    assert match_keyword(word) == KeywordMatch("start", word)


@pytest.mark.parametrize("word", ["HELP", "INFO"])
def test_help_words(word: str) -> None:
    assert match_keyword(word) == KeywordMatch("help", word)


@pytest.mark.parametrize(
    "body",
    ["stop", "Stop", " STOP ", "\tstop\n", "Stop.", "STOP!", "¡stop!", "«Stop»", "'stop'"],
)
def test_case_space_and_surrounding_punctuation_are_ignored(body: str) -> None:
    assert match_keyword(body) == KeywordMatch("stop", "STOP")


@pytest.mark.parametrize(
    "body",
    [
        "STOP PLEASE",
        "please stop",
        "S.T.O.P",
        "STOPP",
        "stop-it",
        "",
        "   ",
        "...",
        "HELP ME",
        "yes please",
        "Is the shop open?",
    ],
)
def test_anything_else_is_an_ordinary_message(body: str) -> None:
    assert match_keyword(body) is None


# Sender numbers


@pytest.mark.parametrize(
    ("sender", "region", "expected"),
    [
        ("+447700900123", "", "+447700900123"),
        ("+44 7700 900123", "", "+447700900123"),
        ("07700 900123", "GB", "+447700900123"),
        ("07700900123", "", "07700900123"),  # no region: cannot know the country
        ("VODAFONE", "GB", "VODAFONE"),  # alphanumeric sender id
        ("12", "GB", "12"),  # not a possible number
    ],
)
def test_normalise_sender(sender: str, region: str, expected: str) -> None:
    assert normalise_sender(sender, region) == expected


# The service


@pytest.fixture
def service(db: Database, clock: ManualClock) -> InboundService:
    return InboundService(db, clock, HELP, default_region="GB")


async def handle(service: InboundService, body: str, **over: Any) -> InboundResult:
    fields: dict[str, Any] = {
        "source": "modem",
        "sender": PHONE,
        "recipient": SHOP,
        "body": body,
        "provider_message_id": None,
    } | over
    return await service.handle(**fields)


async def queue_sms(db: Database, recipient: str = PHONE) -> int:
    new = NewMessage(
        channel="sms", recipient=recipient, body="Bags!", kind="alert", priority=PRIORITY["alert"]
    )
    message, _ = await db.write(
        lambda conn: insert_message(conn, new, "2026-01-01T11:00:00.000000+00:00")
    )
    return message.id


async def inbound_rows(db: Database) -> list[dict[str, Any]]:
    return await db.execute(lambda conn: list(conn.query("SELECT * FROM inbound_messages")))


async def test_stop_opts_out_cancels_and_offers_a_confirmation(
    service: InboundService, db: Database
) -> None:
    queued = await queue_sms(db)

    result = await handle(service, "Stop")

    assert result.kind == "stop"
    assert result.reply is None
    assert result.confirmation == STOP_CONFIRMATION
    assert result.cancelled_message_ids == (queued,)
    assert result.keyword == "STOP"
    assert result.subscriber_id is not None
    assert await db.execute(lambda conn: is_opted_out(conn, PHONE))
    message = await db.execute(lambda conn: get_message(conn, queued))
    assert message is not None and message.status == "cancelled"
    (row,) = await inbound_rows(db)
    assert row["id"] == result.inbound_id
    assert row["subscriber_id"] == result.subscriber_id
    assert row["handled_at"] == "2026-01-01T12:00:00.000000+00:00"


async def test_repeated_stop_is_confirmed_again(service: InboundService) -> None:
    await handle(service, "STOP")
    again = await handle(service, "STOP")
    assert (again.kind, again.confirmation) == ("stop", STOP_CONFIRMATION)


async def test_start_after_stop_opts_in_with_confirmation(
    service: InboundService, db: Database
) -> None:
    await handle(service, "STOP")

    result = await handle(service, "unstop")

    assert (result.kind, result.reply, result.confirmation) == ("start", None, START_CONFIRMATION)
    assert not await db.execute(lambda conn: is_opted_out(conn, PHONE))


async def test_yes_from_someone_never_opted_out_gets_no_confirmation(
    service: InboundService,
) -> None:
    result = await handle(service, "Yes!")
    assert (result.kind, result.confirmation) == ("start", None)


async def test_help_replies_with_the_help_text(service: InboundService, db: Database) -> None:
    result = await handle(service, "info")

    assert (result.kind, result.reply, result.confirmation) == ("help", HELP, None)
    assert not await db.execute(lambda conn: is_opted_out(conn, PHONE))


async def test_ordinary_message_is_recorded_and_handled(
    service: InboundService, db: Database
) -> None:
    result = await handle(service, "STOP PLEASE")

    assert (result.kind, result.reply, result.confirmation) == ("message", None, None)
    (row,) = await inbound_rows(db)
    assert row["body"] == "STOP PLEASE" and row["keyword"] is None
    assert row["handled_at"] is not None
    assert not await db.execute(lambda conn: is_opted_out(conn, PHONE))


async def test_same_provider_id_is_a_duplicate(service: InboundService, db: Database) -> None:
    first = await handle(service, "STOP", source="twilio", provider_message_id="SM1")
    queued_since = await queue_sms(db)

    again = await handle(service, "STOP", source="twilio", provider_message_id="SM1")

    assert again.kind == "duplicate"
    assert (again.reply, again.confirmation) == (None, None)
    assert again.inbound_id == first.inbound_id
    message = await db.execute(lambda conn: get_message(conn, queued_since))
    assert message is not None and message.status == "queued"


async def test_sender_is_stored_in_e164(service: InboundService, db: Database) -> None:
    result = await handle(service, "STOP", sender="07700 900123")

    assert result.sender == PHONE
    (row,) = await inbound_rows(db)
    assert row["sender"] == PHONE
    assert await db.execute(lambda conn: is_opted_out(conn, PHONE))


async def test_unreadable_sender_is_kept_and_no_opt_out_is_made(
    service: InboundService, db: Database
) -> None:
    result = await handle(service, "STOP", sender="VODAFONE")

    assert result.kind == "message"
    assert result.confirmation is None
    (row,) = await inbound_rows(db)
    assert (row["sender"], row["keyword"]) == ("VODAFONE", "STOP")
    subscribers = await db.execute(
        lambda conn: conn.execute("SELECT count(*) FROM subscribers").fetchone()[0]
    )
    assert subscribers == 0


async def test_unreadable_sender_still_gets_help(service: InboundService) -> None:
    result = await handle(service, "HELP", sender="VODAFONE")
    assert (result.kind, result.reply) == ("help", HELP)


async def test_record_and_keyword_are_one_transaction(
    service: InboundService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_opt_out(conn: sqlite_utils.Database, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(inbound_module, "opt_out", broken_opt_out)

    with pytest.raises(RuntimeError):
        await handle(service, "STOP", source="twilio", provider_message_id="SM1")

    # Not even the inbound row: Twilio's retry must find nothing and handle it afresh.
    assert await inbound_rows(db) == []
