"""Twilio's webhooks through the real app: signatures, keywords, TwiML and delivery receipts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlite_utils
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.datastructures import MultiDict
from twilio.request_validator import RequestValidator

from daemon.api import webhooks
from daemon.api.app import create_app
from daemon.api.context import ApiContext
from daemon.config import ApiSettings, Settings, SmsSettings, TwilioSettings
from storage.database import Database
from storage.messages import PRIORITY, NewMessage, get_events, get_message, insert_message
from storage.optouts import is_opted_out
from tests.daemon.api.support import client_for

AUTH_TOKEN = "twilio-auth-token-for-tests-0001"
PUBLIC_URL = "https://shop.example.com"
LOCAL_URL = "http://testserver"
# Characters XML must escape, so the test sees the escaping.
HELP_TEXT = 'Shop & Co <help>: reply STOP to stop, "START" to resume.'
PHONE = "+447700900123"
SHOP = "+447700900999"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
SID = "SM0123456789abcdef0123456789abcdef"

Pairs = list[tuple[str, str]]


def has_route(routes: Iterable[Any], path: str) -> bool:
    """Whether `path` is routed, looking into included routers (FastAPI 0.165 nests them)."""
    for route in routes:
        if getattr(route, "path", None) == path:
            return True
        included = getattr(route, "original_router", None)
        if included is not None and has_route(included.routes, path):
            return True
    return False


def make_settings(
    *, auth_token: str = AUTH_TOKEN, public_url: str = PUBLIC_URL, help_text: str = HELP_TEXT
) -> Settings:
    return Settings(
        api=ApiSettings(public_url=public_url),
        twilio=TwilioSettings(auth_token=SecretStr(auth_token)),
        sms=SmsSettings(help_text=help_text),
    )


@pytest.fixture
def make_hook_app(make_ctx: Callable[..., ApiContext]) -> Callable[..., FastAPI]:
    def make(**settings: Any) -> FastAPI:
        app = create_app(make_ctx(settings=make_settings(**settings)))
        # Until the integrator includes the router in create_app; never twice after that.
        if not has_route(app.routes, webhooks.SMS_PATH):
            app.include_router(webhooks.router)
        return app

    return make


@pytest.fixture
async def client(make_hook_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_hook_app()) as http:
        yield http


def sign(url: str, pairs: Pairs, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, MultiDict(pairs))


def sms_form(body: str, *, sid: str = SID, sender: str = PHONE, **extra: str) -> Pairs:
    pairs = [
        ("MessageSid", sid),
        ("SmsMessageSid", sid),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", sender),
        ("To", SHOP),
        ("Body", body),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
    ]
    return pairs + list(extra.items())


def status_form(status: str, *, sid: str = SID, error_code: str | None = None) -> Pairs:
    pairs = [
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", SHOP),
        ("To", PHONE),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("ApiVersion", "2010-04-01"),
    ]
    if error_code is not None:
        pairs.append(("ErrorCode", error_code))
    return pairs


async def post(
    client: httpx.AsyncClient,
    path: str,
    pairs: Pairs,
    *,
    signed_url: str | None = None,
    signed_pairs: Pairs | None = None,
    signature: str | None = None,
    token: str = AUTH_TOKEN,
) -> httpx.Response:
    """POST the form as Twilio does, signed for PUBLIC_URL + path unless told otherwise."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is None:
        signature = sign(
            signed_url or PUBLIC_URL + path,
            pairs if signed_pairs is None else signed_pairs,
            token,
        )
    if signature:
        headers["X-Twilio-Signature"] = signature
    return await client.post(path, content=urlencode(pairs), headers=headers)


async def sms(client: httpx.AsyncClient, body: str, **kw: Any) -> httpx.Response:
    return await post(client, "/sms", sms_form(body, **kw))


async def rows(db: Database, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return await db.execute(lambda conn: list(conn.query(sql, params or [])))


async def add_subscriber(db: Database, phone: str = PHONE) -> int:
    def write(conn: sqlite_utils.Database) -> int:
        cursor = conn.execute(
            "INSERT INTO subscribers (name, phone, channels, created_at, updated_at) "
            "VALUES ('Asha', ?, '[\"sms\"]', '2026-01-01T00:00:00+00:00', "
            "'2026-01-01T00:00:00+00:00')",
            [phone],
        )
        return int(cursor.lastrowid or 0)

    return await db.write(write)


async def queue_sms(db: Database, recipient: str = PHONE) -> int:
    new = NewMessage(
        channel="sms", recipient=recipient, body="Bags!", kind="alert", priority=PRIORITY["alert"]
    )
    message, _ = await db.write(
        lambda conn: insert_message(conn, new, "2026-01-01T11:00:00.000000+00:00")
    )
    return message.id


async def sent_via_twilio(db: Database, sid: str = SID) -> int:
    message_id = await queue_sms(db)
    await db.write(
        lambda conn: conn.execute(
            "UPDATE messages SET status = 'sent', provider = 'twilio', provider_message_id = ? "
            "WHERE id = ?",
            [sid, message_id],
        )
    )
    return message_id


async def opted_out(db: Database, phone: str = PHONE) -> bool:
    return await db.execute(lambda conn: is_opted_out(conn, phone))


async def message_status(db: Database, message_id: int) -> str:
    message = await db.execute(lambda conn: get_message(conn, message_id))
    assert message is not None
    return message.status


async def event_states(db: Database, message_id: int) -> list[str]:
    events = await db.execute(lambda conn: get_events(conn, message_id))
    return [event.state for event in events]


def assert_twiml(response: httpx.Response, text: str = EMPTY_TWIML) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == text


def assert_refused(response: httpx.Response, message: str) -> None:
    assert response.status_code == 403
    assert response.json() == {"success": False, "error": 403, "message": message}


# Inbound SMS: keywords


async def test_stop_opts_out_and_cancels_queued_sms(
    client: httpx.AsyncClient, db: Database
) -> None:
    subscriber_id = await add_subscriber(db)
    queued = await queue_sms(db)
    someone_else = await queue_sms(db, "+447700900456")

    response = await sms(client, "STOP")

    # Twilio already answered with its own STOP confirmation.
    assert_twiml(response)
    assert await opted_out(db)
    assert await message_status(db, queued) == "cancelled"
    events = await db.execute(lambda conn: get_events(conn, queued))
    assert events[-1].detail == "recipient opted out (replied STOP)"
    assert await message_status(db, someone_else) == "queued"
    (inbound,) = await rows(db, "SELECT * FROM inbound_messages")
    assert inbound["keyword"] == "STOP"
    assert inbound["provider_message_id"] == SID
    assert inbound["subscriber_id"] == subscriber_id
    assert inbound["handled_at"] is not None


@pytest.mark.parametrize("body", ["stop", " Stop ", "Stop.", "unsubscribe", "QUIT!"])
async def test_stop_in_any_case_and_spacing(
    client: httpx.AsyncClient, db: Database, body: str
) -> None:
    assert_twiml(await sms(client, body))
    assert await opted_out(db)


async def test_stop_from_an_unknown_number_records_a_contact(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert_twiml(await sms(client, "STOP"))

    (row,) = await rows(db, "SELECT phone, channels, opted_out_at FROM subscribers")
    assert row["phone"] == PHONE and row["channels"] == "[]"
    assert row["opted_out_at"] is not None


async def test_stop_please_is_an_ordinary_message(client: httpx.AsyncClient, db: Database) -> None:
    queued = await queue_sms(db)

    assert_twiml(await sms(client, "STOP PLEASE"))

    assert not await opted_out(db)
    assert await message_status(db, queued) == "queued"
    (inbound,) = await rows(db, "SELECT body, keyword, handled_at FROM inbound_messages")
    assert inbound["body"] == "STOP PLEASE"
    assert inbound["keyword"] is None
    assert inbound["handled_at"] is not None


async def test_start_opts_back_in(client: httpx.AsyncClient, db: Database) -> None:
    await add_subscriber(db)
    assert_twiml(await sms(client, "STOP", sid="SM01"))
    assert await opted_out(db)

    assert_twiml(await sms(client, "start", sid="SM02"))

    assert not await opted_out(db)


@pytest.mark.parametrize("word", ["HELP", "info"])
async def test_help_answers_with_the_help_text_and_logs_the_reply(
    client: httpx.AsyncClient, db: Database, word: str
) -> None:
    subscriber_id = await add_subscriber(db)

    response = await sms(client, word)

    assert_twiml(
        response,
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
        'Shop &amp; Co &lt;help&gt;: reply STOP to stop, "START" to resume.'
        "</Message></Response>",
    )
    (reply,) = await rows(db, "SELECT * FROM messages")
    assert reply["kind"] == "reply"
    assert reply["priority"] == PRIORITY["reply"]
    assert reply["status"] == "sent"
    assert reply["provider"] == "twilio"
    assert reply["recipient"] == PHONE
    assert reply["body"] == HELP_TEXT
    assert reply["subscriber_id"] == subscriber_id
    assert (reply["encoding"], reply["segments"]) == ("gsm7", 1)
    assert await event_states(db, reply["id"]) == ["queued", "sent"]
    assert not await opted_out(db)


async def test_ordinary_message_gets_no_reply(client: httpx.AsyncClient, db: Database) -> None:
    assert_twiml(await sms(client, "Is the bakery open on Sunday?"))
    assert await rows(db, "SELECT * FROM messages") == []
    (inbound,) = await rows(db, "SELECT body FROM inbound_messages")
    assert inbound["body"] == "Is the bakery open on Sunday?"


async def test_same_message_sid_is_handled_once(client: httpx.AsyncClient, db: Database) -> None:
    assert_twiml(await sms(client, "STOP"))
    # Queued after the STOP: a second handling of the retried webhook would cancel it.
    queued_since = await queue_sms(db)

    assert_twiml(await sms(client, "STOP"))

    assert await message_status(db, queued_since) == "queued"
    assert len(await rows(db, "SELECT id FROM inbound_messages")) == 1


async def test_retried_help_is_answered_and_logged_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = await sms(client, "HELP")
    again = await sms(client, "HELP")

    assert "<Message>" in first.text
    assert_twiml(again)
    assert len(await rows(db, "SELECT id FROM messages WHERE kind = 'reply'")) == 1


# Inbound SMS: who may call


async def assert_nothing_stored(db: Database) -> None:
    for table in ("inbound_messages", "subscribers", "messages", "message_events"):
        assert await rows(db, f"SELECT id FROM {table}") == [], table


async def test_forged_signature_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, db: Database
) -> None:
    forged = sign(PUBLIC_URL + "/sms", sms_form("STOP"), token="not-the-auth-token-0000")

    response = await post(client, "/sms", sms_form("STOP"), signature=forged)

    assert_refused(response, webhooks.BAD_SIGNATURE_MESSAGE)
    await assert_nothing_stored(db)


async def test_missing_signature_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    response = await post(client, "/sms", sms_form("STOP"), signature="")

    assert_refused(response, webhooks.BAD_SIGNATURE_MESSAGE)
    await assert_nothing_stored(db)


async def test_signature_for_the_local_url_is_refused_behind_a_public_url(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await post(client, "/sms", sms_form("STOP"), signed_url=LOCAL_URL + "/sms")

    assert_refused(response, webhooks.BAD_SIGNATURE_MESSAGE)
    await assert_nothing_stored(db)


async def test_without_public_url_the_request_url_is_signed(
    make_hook_app: Callable[..., FastAPI], db: Database
) -> None:
    async with client_for(make_hook_app(public_url="")) as client:
        local = await post(client, "/sms", sms_form("STOP"), signed_url=LOCAL_URL + "/sms")
        public = await post(client, "/sms", sms_form("HELP", sid="SM02"))

    assert_twiml(local)
    assert public.status_code == 403
    assert await opted_out(db)


async def test_the_query_string_is_part_of_the_signed_url(
    client: httpx.AsyncClient, db: Database
) -> None:
    form = sms_form("STOP")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(PUBLIC_URL + "/sms?shop=main", form),
    }

    good = await client.post("/sms?shop=main", content=urlencode(form), headers=headers)
    dropped = await client.post("/sms?shop=other", content=urlencode(form), headers=headers)

    assert_twiml(good)
    assert dropped.status_code == 403


async def test_twilio_not_configured_refuses_every_webhook(
    make_hook_app: Callable[..., FastAPI], db: Database
) -> None:
    async with client_for(make_hook_app(auth_token="")) as client:
        inbound = await post(client, "/sms", sms_form("STOP"))
        status = await post(client, "/twilio/status", status_form("delivered"))

    assert_refused(inbound, webhooks.NOT_CONFIGURED_MESSAGE)
    assert_refused(status, webhooks.NOT_CONFIGURED_MESSAGE)
    assert "auth_token" in webhooks.NOT_CONFIGURED_MESSAGE
    await assert_nothing_stored(db)


async def test_unknown_fields_are_part_of_the_signature(
    client: httpx.AsyncClient, db: Database
) -> None:
    form = sms_form("STOP", FromCountry="GB", BrandNewTwilioField="x")

    signed_with = await post(client, "/sms", form)
    assert_twiml(signed_with)

    # The same extra field, added after signing (by someone else), breaks the signature.
    other = sms_form("START", sid="SM02")
    tampered = await post(
        client, "/sms", [*other, ("BrandNewTwilioField", "x")], signed_pairs=other
    )
    assert tampered.status_code == 403
    assert await opted_out(db)


async def test_repeated_fields_are_all_signed(client: httpx.AsyncClient, db: Database) -> None:
    form = [*sms_form("STOP"), ("MediaUrl", "https://a.example/1"), ("MediaUrl", "https://b/2")]

    assert_twiml(await post(client, "/sms", form))

    only_first = [*sms_form("START", sid="SM02"), ("MediaUrl", "https://a.example/1")]
    both = [*only_first, ("MediaUrl", "https://b/2")]
    tampered = await post(client, "/sms", both, signed_pairs=only_first)
    assert tampered.status_code == 403
    assert await opted_out(db)


async def test_no_bearer_token_is_needed_but_the_api_still_wants_one(
    client: httpx.AsyncClient,
) -> None:
    assert_twiml(await sms(client, "hello"))
    assert (await client.get("/api/v1/messages")).status_code == 401


async def test_a_body_that_is_not_a_form_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post("/sms", json={"Body": "STOP"}, headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 415
    await assert_nothing_stored(db)


async def test_a_signed_form_without_message_sid_is_a_bad_request(
    client: httpx.AsyncClient, db: Database
) -> None:
    form = [(name, value) for name, value in sms_form("STOP") if "Sid" not in name]

    response = await post(client, "/sms", form)

    assert response.status_code == 400
    assert response.json()["success"] is False
    await assert_nothing_stored(db)


# Status callbacks


async def status(client: httpx.AsyncClient, state: str, **kw: Any) -> httpx.Response:
    return await post(client, "/twilio/status", status_form(state, **kw))


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}


async def test_delivered_then_late_sent_stays_delivered(
    client: httpx.AsyncClient, db: Database
) -> None:
    message_id = await sent_via_twilio(db)
    before = await event_states(db, message_id)

    assert_ok(await status(client, "sent"))
    assert_ok(await status(client, "delivered"))
    assert_ok(await status(client, "sent"))

    assert await message_status(db, message_id) == "delivered"
    # One event for the one real move.
    assert await event_states(db, message_id) == [*before, "delivered"]
    message = await db.execute(lambda conn: get_message(conn, message_id))
    assert message is not None and message.delivered_at is not None


async def test_undelivered_records_the_error_code(client: httpx.AsyncClient, db: Database) -> None:
    message_id = await sent_via_twilio(db)

    assert_ok(await status(client, "undelivered", error_code="30003"))

    message = await db.execute(lambda conn: get_message(conn, message_id))
    assert message is not None
    assert (message.status, message.error_code) == ("undelivered", "30003")
    events = await db.execute(lambda conn: get_events(conn, message_id))
    assert (events[-1].state, events[-1].provider) == ("undelivered", "twilio")
    assert events[-1].detail == "ErrorCode 30003: handset unreachable"


async def test_duplicate_callback_adds_no_event(client: httpx.AsyncClient, db: Database) -> None:
    message_id = await sent_via_twilio(db)

    assert_ok(await status(client, "failed", error_code="30005"))
    after_first = await event_states(db, message_id)
    assert_ok(await status(client, "failed", error_code="30005"))

    assert await event_states(db, message_id) == after_first
    assert after_first[-1] == "failed"


async def test_unknown_sid_is_answered_200(
    client: httpx.AsyncClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="daemon.services.receipts")

    assert_ok(await status(client, "delivered", sid="SMnobodyknows"))

    assert "SMnobodyknows" in caplog.text


async def test_forged_status_callback_changes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    message_id = await sent_via_twilio(db)
    form = status_form("undelivered", error_code="30003")

    response = await post(client, "/twilio/status", form, signature="bm90IGEgc2lnbmF0dXJl")

    assert_refused(response, webhooks.BAD_SIGNATURE_MESSAGE)
    assert await message_status(db, message_id) == "sent"
