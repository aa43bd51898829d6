"""TwilioProvider and the Twilio webhook helpers, against the fake Twilio in tests.peers.twilio."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from providers.base import (
    NotForThisProvider,
    Outgoing,
    ProviderDown,
    ProviderError,
    RecipientError,
    TransientError,
)
from providers.twilio import (
    InboundSms,
    StatusCallback,
    TwilioProvider,
    is_valid_signature,
    public_request_url,
    twiml,
)
from providers.twilio.client import TransportError, TwilioWire
from tests.helpers import free_port
from tests.peers.twilio import Fault, TwilioPeer, num_segments

FROM = "+15005550006"
TO = "+15551230001"
CALLBACK = "https://shop.example.com/twilio/status"

MakeProvider = Callable[..., TwilioProvider]


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client honours proxy variables, which would send 127.0.0.1 traffic elsewhere; and
    # the CA bundle variables would change what the TLS tests trust.
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def peer() -> Iterator[TwilioPeer]:
    with TwilioPeer() as started:
        yield started


@pytest.fixture
async def make_provider(peer: TwilioPeer) -> AsyncIterator[MakeProvider]:
    made: list[TwilioProvider] = []

    def make(**overrides: Any) -> TwilioProvider:
        settings: dict[str, Any] = {
            "account_sid": peer.account_sid,
            "auth_token": peer.auth_token,
            "from_number": FROM,
            "base_url": peer.base_url,
            "timeout_seconds": 2.0,
        }
        provider = TwilioProvider(**(settings | overrides))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


def sms(recipient: str = TO, body: str = "Your bag is ready", **fields: Any) -> Outgoing:
    return Outgoing(message_id=1, channel="sms", recipient=recipient, body=body, **fields)


# -- sending -------------------------------------------------------------------------------------


async def test_send_posts_what_twilio_expects(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    provider = make_provider(status_callback_url=CALLBACK)

    result = await provider.send(sms(validity_seconds=300))

    [received] = peer.received
    assert received.method == "POST"
    assert received.path == f"/2010-04-01/Accounts/{peer.account_sid}/Messages.json"
    assert received.auth_user == peer.account_sid
    assert received.form == {
        "To": TO,
        "From": FROM,
        "Body": "Your bag is ready",
        "StatusCallback": CALLBACK,
        "ValidityPeriod": "300",
    }
    assert result.provider_message_id == received.sid
    assert result.provider_message_id.startswith("SM") and len(result.provider_message_id) == 34
    assert result.segments == 1
    assert result.delivered is False


async def test_unset_options_are_not_sent(peer: TwilioPeer, make_provider: MakeProvider) -> None:
    await make_provider().send(sms())

    assert set(peer.sent[0].form) == {"To", "From", "Body"}


async def test_otp_asks_for_otp_traffic_shaping(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    await make_provider().send(sms(kind="otp", body="Your code is 123456"))

    assert peer.sent[0].form["MessageIntent"] == "otp"


@pytest.mark.parametrize(("seconds", "sent"), [(0, "1"), (-5, "1"), (99_999, "36000")])
async def test_validity_is_clamped_to_twilios_range(
    peer: TwilioPeer, make_provider: MakeProvider, seconds: int, sent: str
) -> None:
    await make_provider().send(sms(validity_seconds=seconds))

    assert peer.sent[0].form["ValidityPeriod"] == sent


async def test_messaging_service_replaces_from(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    provider = make_provider(from_number=FROM, messaging_service_sid="MG" + "a" * 32)

    result = await provider.send(sms())

    form = peer.sent[0].form
    assert form["MessagingServiceSid"] == "MG" + "a" * 32
    assert "From" not in form
    # Twilio says "0" segments until the service has picked a number: unknown, not zero.
    assert result.segments is None


async def test_long_bodies_report_their_segments(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    result = await make_provider().send(sms(body="x" * 161))

    assert result.segments == 2


async def test_other_channels_are_not_for_twilio(make_provider: MakeProvider) -> None:
    with pytest.raises(NotForThisProvider):
        await make_provider().send(
            Outgoing(message_id=1, channel="push", recipient="tok", body="hi")
        )


def test_construction_refuses_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="from_number or a messaging_service_sid"):
        TwilioProvider(account_sid="AC1", auth_token="t")
    with pytest.raises(ValueError, match="auth token"):
        TwilioProvider(account_sid="AC1", auth_token="", from_number=FROM)
    with pytest.raises(ValueError, match="not an http"):
        TwilioProvider(account_sid="AC1", auth_token="t", from_number=FROM, base_url="api.x")
    with pytest.raises(ValueError, match="user name or password"):
        TwilioProvider(
            account_sid="AC1", auth_token="t", from_number=FROM, base_url="https://u:p@gw.example"
        )


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["legacy", "problem"])
@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (21211, 400, RecipientError),
        (21614, 400, RecipientError),
        (21635, 400, RecipientError),
        (30005, 400, RecipientError),
        (20429, 429, TransientError),
        (30003, 400, TransientError),
        (20003, 401, ProviderDown),
        (20404, 404, ProviderDown),
        (21212, 400, ProviderDown),
        (21408, 400, NotForThisProvider),
        (21612, 400, NotForThisProvider),
        (21617, 400, NotForThisProvider),  # not in our table: hand over this message only
    ],
)
async def test_twilio_errors_map_to_our_classes(
    peer: TwilioPeer,
    make_provider: MakeProvider,
    code: int,
    status: int,
    expected: type[ProviderError],
    shape: Literal["legacy", "problem"],
) -> None:
    peer.script(Fault.error(code, status, "Nope", shape=shape))

    with pytest.raises(ProviderError) as raised:
        await make_provider().send(sms())

    assert type(raised.value) is expected
    assert raised.value.code == str(code)
    assert f"error {code}" in str(raised.value)
    assert "Nope" in str(raised.value)
    assert "\x1b" not in str(raised.value)  # no ANSI colour from twilio's __str__


@pytest.mark.parametrize("shape", ["legacy", "problem"])
async def test_opt_out_is_a_recipient_error_that_says_so(
    peer: TwilioPeer, make_provider: MakeProvider, shape: Literal["legacy", "problem"]
) -> None:
    peer.script(Fault.error(21610, shape=shape), match=TO)

    with pytest.raises(RecipientError) as raised:
        await make_provider().send(sms())

    assert raised.value.opted_out is True
    assert raised.value.code == "21610"


async def test_invalid_number_is_not_an_opt_out(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    peer.script(Fault.error(21211), match=TO)

    with pytest.raises(RecipientError) as raised:
        await make_provider().send(sms())

    assert raised.value.opted_out is False


async def test_429_carries_retry_after(peer: TwilioPeer, make_provider: MakeProvider) -> None:
    peer.script(Fault.too_many(retry_after="7"))

    with pytest.raises(TransientError) as raised:
        await make_provider().send(sms())

    assert raised.value.retry_after == 7.0
    assert raised.value.code == "20429"


async def test_html_500_is_transient_without_a_code(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    peer.script(Fault.server_error(500))

    with pytest.raises(TransientError) as raised:
        await make_provider().send(sms())

    assert raised.value.code is None
    assert raised.value.retry_after is None
    assert "HTTP 500" in str(raised.value)
    assert "<html>" not in str(raised.value)
    assert "may have accepted" in str(raised.value)  # a 5xx is ambiguous


async def test_503_honours_retry_after(peer: TwilioPeer, make_provider: MakeProvider) -> None:
    peer.script(Fault.server_error(503, retry_after="2"))

    with pytest.raises(TransientError) as raised:
        await make_provider().send(sms())

    assert raised.value.retry_after == 2.0


async def test_wrong_credentials_are_provider_down(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    with pytest.raises(ProviderDown) as raised:
        await make_provider(auth_token="not-the-token").send(sms())

    assert raised.value.code == "20003"
    assert peer.received[0].status == 401


async def test_one_failure_is_one_request_never_a_library_retry(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    peer.script(Fault.server_error(500), times=2)

    for _ in range(2):
        with pytest.raises(TransientError):
            await provider.send(sms())
    result = await provider.send(sms())

    assert [r.status for r in peer.received] == [500, 500, 201]
    assert result.provider_message_id == peer.received[2].sid


async def test_a_hang_times_out_as_transient(peer: TwilioPeer, make_provider: MakeProvider) -> None:
    peer.script(Fault.slow(30))
    provider = make_provider(timeout_seconds=0.3)

    started = time.monotonic()
    with pytest.raises(TransientError) as raised:
        await provider.send(sms())

    # Far below the 30 s the fake would take: the timeout, not the answer, ended it.
    assert time.monotonic() - started < 10
    assert "did not answer in time" in str(raised.value)
    assert len(peer.received) == 1  # it did arrive: Twilio may have accepted it


async def test_service_gone_is_transient(peer: TwilioPeer, make_provider: MakeProvider) -> None:
    provider = make_provider()
    await provider.send(sms())  # a kept-alive connection now exists
    peer.stop()

    with pytest.raises(TransientError) as raised:
        await provider.send(sms())

    assert "could not reach Twilio" in str(raised.value)


async def test_a_2xx_that_is_not_twilio_is_provider_down(make_provider: MakeProvider) -> None:
    with stub_server(200, "<html>Welcome to the hotel wifi</html>") as stub:
        provider = make_provider(base_url=stub.url)
        with pytest.raises(ProviderDown, match="not Twilio's JSON"):
            await provider.send(sms())


async def test_the_token_never_shows(
    peer: TwilioPeer, make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"{peer.account_sid}:{peer.auth_token}".encode()).decode()
    provider = make_provider(timeout_seconds=0.3)
    # A hostile proxy echoing the credentials back in its error text.
    peer.script(Fault.error(21211, message=f"bad {peer.auth_token} {basic}"), times=1)
    for reply in (Fault.error(21610, shape="problem"), Fault.server_error(), Fault.slow(5)):
        peer.script(reply, times=1)
    peer.script(Fault.too_many(), times=1)

    errors: list[ProviderError] = []
    for _ in range(5):
        with pytest.raises(ProviderError) as raised:
            await provider.send(sms())
        errors.append(raised.value)
    with pytest.raises(ProviderDown) as raised:
        await make_provider(auth_token=peer.auth_token + "x").send(sms())
    errors.append(raised.value)
    peer.stop()
    with pytest.raises(TransientError) as raised:
        await provider.send(sms())
    errors.append(raised.value)

    assert {type(e) for e in errors} == {RecipientError, TransientError, ProviderDown}
    assert any("***" in str(e) for e in errors)
    for error in errors:
        assert peer.auth_token not in str(error) and peer.auth_token not in repr(error)
        assert basic not in str(error)
    assert caplog.records  # the wire does log (at DEBUG): check what it logs
    assert peer.auth_token not in caplog.text
    assert basic not in caplog.text


async def test_many_concurrent_sends_each_arrive_once(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    provider = make_provider(concurrency=8)
    messages = [sms(body=f"message {n}") for n in range(50)]

    results = await asyncio.gather(*(provider.send(m) for m in messages))

    bodies = sorted(r.form["Body"] for r in peer.received)
    assert bodies == sorted(m.body for m in messages)
    assert {r.provider_message_id for r in results} == {r.sid for r in peer.sent}
    assert len({r.provider_message_id for r in results}) == 50


async def test_a_slow_send_does_not_hold_up_the_others(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    provider = make_provider(concurrency=2, timeout_seconds=5)
    peer.script(Fault.slow(1.5), match="+15550000000")

    slow = asyncio.ensure_future(provider.send(sms(recipient="+15550000000")))
    await asyncio.sleep(0.2)
    quick = await asyncio.gather(*(provider.send(sms()) for _ in range(5)))

    assert not slow.done()  # five sends went through the second thread meanwhile
    assert len(quick) == 5
    assert (await slow).provider_message_id is not None


# -- the HTTP client under twilio: no retries, no redirects, proxies, TLS ------------------


async def test_twilio_headers_and_basic_auth_go_out_as_twilio_builds_them(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    await make_provider().send(sms(body="Café & co"))

    [received] = peer.received
    headers = {name.lower(): value for name, value in received.headers.items()}
    basic = base64.b64encode(f"{peer.account_sid}:{peer.auth_token}".encode()).decode()
    assert headers["authorization"] == f"Basic {basic}"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("twilio-python/")
    assert headers["x-twilio-client"].startswith("python-")
    assert received.form["Body"] == "Café & co"


@pytest.mark.parametrize(
    "reply",
    [Fault.server_error(503, retry_after="0"), Fault.too_many(retry_after="0")],
    ids=["503", "429"],
)
async def test_a_retry_after_answer_is_not_retried_by_the_library(
    peer: TwilioPeer, make_provider: MakeProvider, reply: Fault
) -> None:
    # urllib3 retries 503 and 429 answers that carry Retry-After when retries are on.
    peer.script(reply, times=1)

    with pytest.raises(TransientError) as raised:
        await make_provider().send(sms())

    assert raised.value.retry_after == 0.0
    assert len(peer.received) == 1


async def test_a_dropped_connection_is_one_request_that_may_have_arrived(
    make_provider: MakeProvider,
) -> None:
    with stub_server(0, "", drop=True) as stub, pytest.raises(TransientError) as raised:
        await make_provider(base_url=stub.url).send(sms())

    assert len(stub.received) == 1  # never retried on a fresh connection
    assert "connection dropped" in str(raised.value)
    assert "may have accepted" in str(raised.value)


async def test_a_refused_connection_was_not_sent(make_provider: MakeProvider) -> None:
    with pytest.raises(TransientError) as raised:
        await make_provider(base_url=f"http://127.0.0.1:{free_port()}").send(sms())

    assert "connection refused" in str(raised.value)
    assert "may have accepted" not in str(raised.value)


async def test_a_redirect_is_not_followed(peer: TwilioPeer, make_provider: MakeProvider) -> None:
    location = f"{peer.base_url}{peer.messages_path}"
    with (
        stub_server(307, "", headers={"Location": location}) as stub,
        pytest.raises(ProviderDown) as raised,
    ):
        await make_provider(base_url=stub.url).send(sms())

    assert "HTTP 307" in str(raised.value)
    assert len(stub.received) == 1
    assert peer.received == []


async def test_a_base_url_with_a_path_is_a_prefix(make_provider: MakeProvider) -> None:
    # A gateway that mounts Twilio under a path, as "https://gw.example/twilio/".
    with stub_server(201, MESSAGE_JSON) as stub:
        result = await make_provider(base_url=f"{stub.url}/twilio/").send(sms())

    [(path, _, _)] = stub.received
    assert path.startswith("/twilio/2010-04-01/Accounts/AC")
    assert path.endswith("/Messages.json")
    assert result.provider_message_id == "SM" + "f" * 32


async def test_a_send_logs_nothing_at_info(
    make_provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    # twilio's HTTP client logs each request in about ten INFO lines; a shop reads its log.
    caplog.set_level(logging.INFO)

    await make_provider().send(sms())

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


async def test_the_proxy_from_the_environment_carries_the_request(
    make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stub_server(201, MESSAGE_JSON) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        monkeypatch.setenv("no_proxy", "")
        result = await make_provider(base_url="http://twilio.invalid").send(sms())

    [(path, _, form)] = proxy.received
    # Forwarded as an absolute URL: the proxy, not us, resolves twilio.invalid.
    assert path.startswith("http://twilio.invalid/2010-04-01/Accounts/")
    assert ("To", TO) in form
    assert result.provider_message_id == "SM" + "f" * 32


async def test_no_proxy_skips_the_proxy(
    peer: TwilioPeer, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    await make_provider().send(sms())

    assert len(peer.sent) == 1


async def test_a_dead_proxy_means_not_sent(
    make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")

    with pytest.raises(TransientError) as raised:
        await make_provider(base_url="http://twilio.invalid").send(sms())

    assert "through the proxy" in str(raised.value)
    assert "may have accepted" not in str(raised.value)


def test_a_closed_wire_sends_nothing(peer: TwilioPeer) -> None:
    wire = TwilioWire(
        account_sid=peer.account_sid,
        auth_token=peer.auth_token,
        base_url=peer.base_url,
        timeout_seconds=1,
    )
    wire.create_message(to=TO, body="before", from_=FROM)
    wire.close()

    with pytest.raises(TransportError) as raised:
        wire.create_message(to=TO, body="after", from_=FROM)  # this thread's client, closed

    assert raised.value.maybe_sent is False
    assert [r.form["Body"] for r in peer.received] == ["before"]


async def test_a_ca_bundle_that_cannot_load_is_provider_down(
    make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    provider = make_provider(base_url=f"https://127.0.0.1:{free_port()}")

    with pytest.raises(ProviderDown, match="CA certificates"):
        await provider.send(sms())
    assert (await provider.health()).state == "down"


async def test_tls_trusts_the_requests_ca_bundle(
    make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    with stub_server(201, MESSAGE_JSON, tls=server_side) as stub:
        # certifi's bundle (the default, as with requests) does not know our certificate.
        with pytest.raises(TransientError, match="TLS failed"):
            await make_provider(base_url=stub.url).send(sms())
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        result = await make_provider(base_url=stub.url).send(sms())

    assert result.provider_message_id == "SM" + "f" * 32
    assert len(stub.received) == 1  # the failed handshake sent nothing


# -- health and close --------------------------------------------------------------------------


async def test_health_ok_shows_the_sender(make_provider: MakeProvider) -> None:
    health = await make_provider().health()

    assert health.state == "ok"
    assert FROM in health.detail


async def test_health_names_the_messaging_service(make_provider: MakeProvider) -> None:
    health = await make_provider(messaging_service_sid="MG" + "b" * 32).health()

    assert "MG" + "b" * 32 in health.detail


async def test_health_down_with_wrong_credentials(make_provider: MakeProvider) -> None:
    health = await make_provider(auth_token="wrong").health()

    assert health.state == "down"
    assert "20003" in health.detail


async def test_health_down_when_account_suspended(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    peer.account_status = "suspended"

    health = await make_provider().health()

    assert (health.state, health.detail) == ("down", "the Twilio account is suspended")


async def test_health_degraded_when_unreachable(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    peer.stop()

    health = await make_provider().health()

    assert health.state == "degraded"


async def test_health_sends_nothing(peer: TwilioPeer, make_provider: MakeProvider) -> None:
    provider = make_provider()
    await provider.health()
    await provider.health()  # cached

    assert [r.method for r in peer.received] == ["GET"]
    assert peer.sent == []


async def test_close_is_idempotent_and_final(make_provider: MakeProvider) -> None:
    provider = make_provider()
    await provider.send(sms())

    await provider.close()
    await provider.close()

    with pytest.raises(TransientError, match="closed"):
        await provider.send(sms())


async def test_twilio_env_vars_cannot_redirect_the_client(
    peer: TwilioPeer, make_provider: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # twilio's Client reads TWILIO_REGION/TWILIO_EDGE whenever `environment` is falsy, and
    # would then send to a regional host instead of base_url.
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")

    await make_provider().send(sms())

    assert len(peer.sent) == 1


# -- webhooks ----------------------------------------------------------------------------------

TOKEN = "webhook-token-123"
PUBLIC = "https://shop.example.com/twilio/status?tenant=1"
LOCAL = "http://127.0.0.1:8765/twilio/status?tenant=1"
FORM = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "To": TO, "From": FROM}


def signed(url: str, form: Any, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def test_signature_against_the_public_url_passes() -> None:
    assert is_valid_signature(TOKEN, PUBLIC, FORM, signed(PUBLIC, FORM))


def test_signature_against_the_local_url_fails() -> None:
    assert not is_valid_signature(TOKEN, LOCAL, FORM, signed(PUBLIC, FORM))


def test_signature_fails_when_a_field_changes_or_appears() -> None:
    signature = signed(PUBLIC, FORM)

    assert not is_valid_signature(TOKEN, PUBLIC, FORM | {"MessageStatus": "failed"}, signature)
    assert not is_valid_signature(TOKEN, PUBLIC, FORM | {"ErrorCode": "30003"}, signature)


def test_signature_fails_with_another_token() -> None:
    assert not is_valid_signature(TOKEN, PUBLIC, FORM, signed(PUBLIC, FORM, token="other"))


@pytest.mark.parametrize("header", [None, "", "bm90IGEgc2lnbmF0dXJl"])
def test_missing_or_bogus_signature_fails(header: str | None) -> None:
    assert not is_valid_signature(TOKEN, PUBLIC, FORM, header)


def test_signature_covers_every_value_of_a_repeated_field() -> None:
    pairs = [("Body", "hi"), ("MediaUrl", "https://a"), ("MediaUrl", "https://b")]

    class MultiDict(dict[str, list[str]]):
        def getall(self, key: str) -> list[str]:
            return self[key]

    signature = signed(PUBLIC, MultiDict({"Body": ["hi"], "MediaUrl": ["https://a", "https://b"]}))

    assert is_valid_signature(TOKEN, PUBLIC, pairs, signature)
    assert not is_valid_signature(TOKEN, PUBLIC, pairs[:2], signature)


def test_public_request_url_keeps_path_and_query() -> None:
    assert public_request_url("https://shop.example.com", LOCAL) == PUBLIC
    assert public_request_url("https://shop.example.com/", LOCAL) == PUBLIC
    assert public_request_url("https://x.example/shop", "http://127.0.0.1:1/sms") == (
        "https://x.example/shop/sms"
    )
    assert public_request_url(None, LOCAL) == LOCAL
    assert public_request_url("", LOCAL) == LOCAL


def test_peer_callbacks_are_signed_for_the_public_url(peer: TwilioPeer) -> None:
    form = FORM | {"MessageStatus": "undelivered", "ErrorCode": "30005"}
    with stub_server(204, "") as stub:
        status, _ = peer.callback(f"{stub.url}/twilio/status?tenant=1", form, signed_url=PUBLIC)
    [(path, signature, received)] = stub.received

    assert status == 204
    local = f"{stub.url}{path}"
    assert public_request_url("https://shop.example.com", local) == PUBLIC
    assert is_valid_signature(peer.auth_token, PUBLIC, received, signature)
    assert not is_valid_signature(peer.auth_token, local, received, signature)
    assert StatusCallback.from_form(received).error_code == "30005"


async def test_status_form_describes_a_sent_message(
    peer: TwilioPeer, make_provider: MakeProvider
) -> None:
    result = await make_provider().send(sms())
    assert result.provider_message_id is not None

    callback = StatusCallback.from_form(peer.status_form(result.provider_message_id, "delivered"))

    assert callback.message_sid == result.provider_message_id
    assert (callback.status, callback.error_code, callback.final) == ("delivered", None, True)
    assert (callback.to_number, callback.from_number) == (TO, FROM)


def test_status_callback_parses_errors_and_non_final_states() -> None:
    failed = StatusCallback.from_form(FORM | {"MessageStatus": "undelivered", "ErrorCode": "30003"})
    sent = StatusCallback.from_form(FORM | {"MessageStatus": "sent", "ErrorCode": ""})

    assert (failed.status, failed.error_code, failed.final) == ("undelivered", "30003", True)
    assert (sent.error_code, sent.final) == (None, False)
    with pytest.raises(ValueError, match="MessageStatus"):
        StatusCallback.from_form({"MessageSid": "SM1"})


def test_inbound_sms_parses_the_form(peer: TwilioPeer) -> None:
    form = peer.inbound_form("+15557654321", "STOP") | {"MessagingServiceSid": "MG1"}

    inbound = InboundSms.from_form(form)

    assert inbound.message_sid == form["MessageSid"]
    assert (inbound.from_number, inbound.to_number, inbound.body) == ("+15557654321", FROM, "STOP")
    assert (inbound.num_segments, inbound.num_media) == (1, 0)
    assert inbound.account_sid == peer.account_sid
    assert inbound.messaging_service_sid == "MG1"
    assert "STOP" not in repr(inbound)  # bodies can hold codes
    with pytest.raises(ValueError, match="MessageSid"):
        InboundSms.from_form({"From": "+1555", "Body": "hi"})


def test_twiml_escapes_and_can_be_empty() -> None:
    assert twiml(None).endswith("<Response />")
    assert twiml("").endswith("<Response />")
    answer = twiml("Reply <STOP> & you're out\x01")
    assert answer.endswith(
        "<Response><Message>Reply &lt;STOP&gt; &amp; you're out</Message></Response>"
    )
    assert answer.startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_fake_counts_segments_like_twilio() -> None:
    assert num_segments("a" * 160) == 1
    assert num_segments("a" * 161) == 2
    assert num_segments("{" * 80) == 1  # extension characters cost two septets
    assert num_segments("é" * 160) == 1  # é is in GSM-7
    assert num_segments("ś" * 70) == 1
    assert num_segments("ś" * 71) == 2


# -- helpers ---------------------------------------------------------------------------------


MESSAGE_JSON = json.dumps({"sid": "SM" + "f" * 32, "status": "queued", "num_segments": "1"})


@dataclass
class Stub:
    """A one-answer HTTP server: whatever else may sit at base_url, or a webhook receiver."""

    url: str
    # (path with query, X-Twilio-Signature, form pairs) per request
    received: list[tuple[str, str | None, list[tuple[str, str]]]] = field(default_factory=list)


@contextmanager
def stub_server(
    status: int,
    body: str,
    *,
    headers: dict[str, str] | None = None,
    drop: bool = False,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Stub]:
    """Answers every POST with `status` and `body`; `drop` closes the connection unanswered."""
    received: list[tuple[str, str | None, list[tuple[str, str]]]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)
            received.append((self.path, self.headers.get("X-Twilio-Signature"), form))
            if drop:
                self.close_connection = True
                return
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> tuple[socket.socket, Any]:
            conn, address = super().get_request()
            if tls is not None:
                conn = tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            return conn, address

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a refused TLS handshake is expected in the TLS tests

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if tls is not None else "http"
    try:
        yield Stub(f"{scheme}://127.0.0.1:{server.server_address[1]}", received)
    finally:
        server.shutdown()
        server.server_close()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no public CA vouches for, and its key."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shopbell test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
