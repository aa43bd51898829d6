"""The Fast2SMS provider against a real local fake of Fast2SMS, through a real httpx client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from providers.base import (
    NotForThisProvider,
    Outgoing,
    Provider,
    ProviderDown,
    ProviderError,
    RecipientError,
    TransientError,
)
from providers.fast2sms import Fast2SmsProvider
from tests.helpers import free_port, wait_until_async
from tests.peers.fast2sms import API_KEY, Fast2SmsPeer, Fault

INDIAN = "+919876543210"
HINDI = "आपका ऑर्डर तैयार है"


@pytest.fixture
def peer() -> Iterator[Fast2SmsPeer]:
    with Fast2SmsPeer() as peer:
        yield peer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy in the environment must not catch requests to 127.0.0.1.
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def make_provider(
    http: httpx.AsyncClient,
    peer: Fast2SmsPeer,
    *,
    api_key: str = API_KEY,
    route: str = "q",
    sender_id: str = "",
    timeout_seconds: float = 5.0,
) -> Fast2SmsProvider:
    return Fast2SmsProvider(
        http=http,
        api_key=api_key,
        base_url=peer.base_url,
        route=route,
        sender_id=sender_id,
        timeout_seconds=timeout_seconds,
    )


@pytest.fixture
def provider(http: httpx.AsyncClient, peer: Fast2SmsPeer) -> Fast2SmsProvider:
    return make_provider(http, peer)


def outgoing(
    recipient: str = INDIAN,
    body: str = "Your order is ready",
    data: Mapping[str, str] | None = None,
) -> Outgoing:
    return Outgoing(
        message_id=1, channel="sms", recipient=recipient, body=body, data=dict(data or {})
    )


async def test_it_is_a_provider(provider: Fast2SmsProvider) -> None:
    as_provider: Provider = provider
    assert (as_provider.name, as_provider.channel, as_provider.delivers) == (
        "fast2sms",
        "sms",
        True,
    )


async def test_happy_path_posts_ten_digits_text_and_key_header(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer
) -> None:
    result = await provider.send(outgoing(body="Your order is ready"))

    [request] = peer.received
    assert (request.method, request.path) == ("POST", "/dev/bulkV2")
    assert request.headers["authorization"] == API_KEY
    assert request.query == {}  # the key is never in the URL
    assert request.body == {
        "route": "q",
        "message": "Your order is ready",
        "language": "english",
        "flash": 0,
        "numbers": "9876543210",
    }
    assert result.provider_message_id == "fake000001"
    assert result.segments == 1
    assert result.delivered is False


async def test_hindi_text_goes_as_unicode_and_counts_ucs2_segments(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer
) -> None:
    body = HINDI * 4  # 76 UTF-16 units: over 70, so two segments
    result = await provider.send(outgoing(body=body))

    [request] = peer.received
    assert request.body["language"] == "unicode"
    assert request.body["message"] == body
    assert result.segments == 2


async def test_gsm7_extension_characters_stay_english(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer
) -> None:
    await provider.send(outgoing(body="Offer: 10€ off {today} [only]"))
    assert peer.received[0].body["language"] == "english"


@pytest.mark.parametrize(
    "recipient",
    [
        "+14155550100",  # not India
        "+44917654321000",
        "+9198765432",  # too short
        "+9198765432100",  # too long
        "9876543210",  # not E.164
        "+91 9876543210",
        "+919876543210 ",
        # Devanagari digits are digits to \d, not to Fast2SMS.
        "+91" + "".join(chr(0x0966 + int(digit)) for digit in "9876543210"),
    ],
)
async def test_a_number_that_is_not_indian_is_not_for_this_provider_and_not_sent(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer, recipient: str
) -> None:
    with pytest.raises(NotForThisProvider):
        await provider.send(outgoing(recipient=recipient))
    assert peer.received == []


@pytest.mark.parametrize(
    ("answer", "error_class", "code"),
    [
        (Fault.server_error(500), TransientError, None),
        (Fault.server_error(503), TransientError, None),
        (Fault.too_many("7"), TransientError, None),
        (Fault.bad_key(), ProviderDown, "412"),
        (
            Fault.refused(413, "Authorization Key Disabled", http_status=401),
            ProviderDown,
            "413",
        ),
        (Fault(401, None), ProviderDown, None),
        (Fault(403, {"message": "Forbidden"}), ProviderDown, None),
        (Fault.refused(411, "Invalid Numbers"), RecipientError, "411"),
        (Fault.refused(996, "Before using OTP SMS API, complete KYC."), ProviderDown, "996"),
        (Fault.refused(416, "You don't have sufficient wallet balance"), ProviderDown, "416"),
        (Fault.refused(406, "Invalid Sender ID"), ProviderDown, "406"),
        (Fault.refused(407, "Invalid words used in message"), NotForThisProvider, "407"),
        (Fault.refused(417, "Use english letters"), NotForThisProvider, "417"),
        (Fault.refused(995, "Spamming detected"), TransientError, "995"),
        (Fault.refused(4242, "Something new"), ProviderDown, "4242"),
        # A `return: false` inside an HTTP 200 is still a failure.
        (
            Fault(200, {"return": False, "status_code": 411, "message": "x"}),
            RecipientError,
            "411",
        ),
        (Fault(200, {"return": False, "message": "odd"}), ProviderDown, None),
        (Fault(404, {"message": "Not Found"}), ProviderDown, None),
    ],
)
async def test_each_answer_maps_to_its_error_class(
    provider: Fast2SmsProvider,
    peer: Fast2SmsPeer,
    answer: Fault,
    error_class: type[ProviderError],
    code: str | None,
) -> None:
    peer.script(answer)
    with pytest.raises(ProviderError) as caught:
        await provider.send(outgoing())
    assert type(caught.value) is error_class
    assert caught.value.code == code
    assert len(peer.received) == 1


async def test_an_unknown_refusal_keeps_fast2sms_words(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer
) -> None:
    peer.script(Fault.refused(4242, "Something new happened"))
    with pytest.raises(ProviderDown, match="Something new happened"):
        await provider.send(outgoing())


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("inf", None)],
)
async def test_429_passes_retry_after_on(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer, retry_after: str, expected: float | None
) -> None:
    peer.script(Fault.too_many(retry_after))
    with pytest.raises(TransientError) as caught:
        await provider.send(outgoing())
    assert caught.value.retry_after == expected


async def test_429_retry_after_as_an_http_date(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer
) -> None:
    in_an_hour = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    peer.script(Fault.too_many(in_an_hour))
    with pytest.raises(TransientError) as caught:
        await provider.send(outgoing())
    assert caught.value.retry_after is not None
    assert 3000 < caught.value.retry_after <= 3600


async def test_a_wrong_key_is_provider_down_and_health_says_so_until_a_success(
    http: httpx.AsyncClient, peer: Fast2SmsPeer
) -> None:
    wrong = make_provider(http, peer, api_key="not-the-key")
    with pytest.raises(ProviderDown):
        await wrong.send(outgoing())
    assert (await wrong.health()).state == "down"

    right = make_provider(http, peer)
    peer.script(Fault.refused(416, "You don't have sufficient wallet balance"), times=1)
    with pytest.raises(ProviderDown):
        await right.send(outgoing())
    health = await right.health()
    assert health.state == "down"
    assert "416" in health.detail
    await right.send(outgoing())
    assert (await right.health()).state == "ok"


async def test_the_peer_fails_per_number_and_for_a_number_of_times(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer
) -> None:
    peer.script(Fault.refused(411, "Invalid Numbers"), match="9000000001")
    peer.script(Fault.server_error(503), times=1)

    with pytest.raises(TransientError):
        await provider.send(outgoing(recipient="+919000000002"))
    await provider.send(outgoing(recipient="+919000000002"))
    with pytest.raises(RecipientError):
        await provider.send(outgoing(recipient="+919000000001"))
    assert [r.numbers for r in peer.received] == [["9000000002"]] * 2 + [["9000000001"]]


async def test_concurrent_sends_are_all_recorded_with_distinct_ids(
    provider: Fast2SmsProvider, peer: Fast2SmsPeer
) -> None:
    results = await asyncio.gather(
        *(provider.send(outgoing(recipient=f"+91900000000{i}")) for i in range(8))
    )
    assert len({r.provider_message_id for r in results}) == 8
    recorded = await wait_until_async(
        lambda: len(peer.received) >= 8 and peer.received, "8 requests at the fake"
    )
    assert sorted(r.numbers[0] for r in recorded) == [f"900000000{i}" for i in range(8)]


async def test_a_stalled_answer_is_a_bounded_transient_error(
    http: httpx.AsyncClient, peer: Fast2SmsPeer
) -> None:
    provider = make_provider(http, peer, timeout_seconds=0.2)
    peer.script(Fault.slow(30))
    # The guard only stops a hang from blocking the suite; the provider's own timeout must fire.
    async with asyncio.timeout(10):
        with pytest.raises(TransientError, match="in time"):
            await provider.send(outgoing())
    assert len(peer.received) == 1


async def test_connection_refused_is_transient(http: httpx.AsyncClient) -> None:
    provider = Fast2SmsProvider(
        http=http, api_key=API_KEY, base_url=f"http://127.0.0.1:{free_port()}/dev/"
    )
    with pytest.raises(TransientError, match="unreachable"):
        await provider.send(outgoing())


async def test_the_key_is_never_in_errors_or_logs(
    http: httpx.AsyncClient, peer: Fast2SmsPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make_provider(http, peer, timeout_seconds=0.2)
    answers = [
        Fault.bad_key(),
        Fault.refused(412, f"Invalid key {API_KEY}"),  # a peer that echoes the key back
        Fault.refused(4242, f"unknown, key={API_KEY}"),
        Fault.too_many(),
        Fault.server_error(500),
        Fault.slow(30),
    ]
    errors: list[ProviderError] = []
    for answer in answers:
        peer.script(answer, times=1)
        with pytest.raises(ProviderError) as caught:
            await provider.send(outgoing())
        errors.append(caught.value)
    refused = Fast2SmsProvider(
        http=http, api_key=API_KEY, base_url=f"http://127.0.0.1:{free_port()}/"
    )
    with pytest.raises(ProviderError) as caught:
        await refused.send(outgoing())
    errors.append(caught.value)
    await provider.send(outgoing())

    assert "bulkV2" in caplog.text  # the log really was captured (httpx logs each request)
    assert API_KEY not in caplog.text
    for error in errors:
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error.args)
    assert API_KEY not in (await provider.health()).detail


async def test_health_makes_no_network_call(http: httpx.AsyncClient, peer: Fast2SmsPeer) -> None:
    assert (await make_provider(http, peer).health()).state == "ok"
    assert (await make_provider(http, peer, api_key="").health()).state == "unconfigured"
    assert peer.received == []


async def test_no_key_is_provider_down_without_a_request(
    http: httpx.AsyncClient, peer: Fast2SmsPeer
) -> None:
    with pytest.raises(ProviderDown, match="no API key"):
        await make_provider(http, peer, api_key="").send(outgoing())
    assert peer.received == []


async def test_close_is_idempotent_and_leaves_the_shared_client_usable(
    provider: Fast2SmsProvider, http: httpx.AsyncClient, peer: Fast2SmsPeer
) -> None:
    await provider.send(outgoing())
    await provider.close()
    await provider.close()

    assert not http.is_closed
    response = await http.post(
        peer.base_url + "bulkV2",
        json={"route": "q", "message": "m", "numbers": "9876543210"},
        headers={"authorization": API_KEY},
    )
    assert response.json()["return"] is True
    with pytest.raises(ProviderDown):
        await provider.send(outgoing())
    assert len(peer.received) == 2
    assert (await provider.health()).state == "down"


async def test_dlt_route_sends_sender_template_and_values(
    http: httpx.AsyncClient, peer: Fast2SmsPeer
) -> None:
    provider = make_provider(http, peer, route="dlt", sender_id="SHOPBL")
    result = await provider.send(
        outgoing(
            body="Your OTP is 123456",
            data={"dlt_template_id": "185903", "dlt_variables": "123456|5"},
        )
    )
    [request] = peer.received
    assert request.body == {
        "route": "dlt",
        "sender_id": "SHOPBL",
        "message": "185903",
        "variables_values": "123456|5",
        "flash": 0,
        "numbers": "9876543210",
    }
    assert result.segments is None


async def test_dlt_route_without_a_template_is_not_for_this_provider(
    http: httpx.AsyncClient, peer: Fast2SmsPeer
) -> None:
    provider = make_provider(http, peer, route="dlt", sender_id="SHOPBL")
    with pytest.raises(NotForThisProvider):
        await provider.send(outgoing())
    assert peer.received == []


async def test_dlt_route_without_a_sender_id_is_provider_down(
    http: httpx.AsyncClient, peer: Fast2SmsPeer
) -> None:
    provider = make_provider(http, peer, route="dlt")
    with pytest.raises(ProviderDown, match="sender_id"):
        await provider.send(outgoing(data={"dlt_template_id": "185903"}))
    assert peer.received == []


async def test_an_unknown_route_is_refused_at_construction(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="route"):
        Fast2SmsProvider(http=http, api_key=API_KEY, route="otp")


async def test_the_peer_also_reads_form_bodies(peer: Fast2SmsPeer, http: httpx.AsyncClient) -> None:
    response = await http.post(
        peer.base_url + "bulkV2",
        data={"route": "q", "message": "m", "numbers": "9876543210,9876543211"},
        headers={"authorization": API_KEY},
    )
    assert response.json()["return"] is True
    assert peer.received[0].numbers == ["9876543210", "9876543211"]
