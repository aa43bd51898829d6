"""The FCM provider against the local fake FCM and OAuth endpoint: the real pyfcm, the real
google-auth JWT grant, the wire format, error mapping, retries, the shared token, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.base import (
    NotForThisProvider,
    Outgoing,
    ProviderDown,
    RecipientError,
    TransientError,
)
from providers.fcm import FcmProvider, ServiceAccountError
from providers.fcm.client import RETRY_TOTAL
from providers.fcm.provider import OUTAGE_AFTER, RETRY_AFTER_CAP_SECONDS
from storage.push import TOPIC_PREFIX as STORAGE_TOPIC_PREFIX
from tests.helpers import free_port
from tests.peers.fcm import CLIENT_EMAIL, PROJECT_ID, SCOPE, TOKEN_PATH, Fault, FcmPeer

TOKEN = "dyimeAKczeP3UJ8ynvI1I2:APA91bHQFAK2d28Tyfg89zqWVrPynCCEXF9eNnRW705fFxEdDE4klEBsq"


@pytest.fixture
def peer() -> Iterator[FcmPeer]:
    with FcmPeer() as fake:
        yield fake


@pytest.fixture
def account(peer: FcmPeer, tmp_path: Path) -> Path:
    return peer.write_service_account(tmp_path / "service-account.json")


@pytest.fixture
async def make_provider(peer: FcmPeer, account: Path) -> AsyncIterator[Callable[..., FcmProvider]]:
    made: list[FcmProvider] = []

    def make(**changes: Any) -> FcmProvider:
        options: dict[str, Any] = {
            "service_account_file": str(account),
            "base_url": peer.base_url,
            "timeout_seconds": 2.0,
            "concurrency": 4,
        }
        options.update(changes)
        provider = FcmProvider(**options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


def push(recipient: str = TOKEN, body: str = "Bags are in", **extra: Any) -> Outgoing:
    return Outgoing(message_id=1, channel="push", recipient=recipient, body=body, **extra)


async def test_sends_one_v1_message_with_the_services_token(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    result = await provider.send(push(subject="Fresh bread", data={"store": "12", "kind": "bag"}))
    [sent] = peer.received
    assert sent.project == PROJECT_ID
    assert sent.token == TOKEN and sent.topic is None
    assert sent.message["notification"] == {"title": "Fresh bread", "body": "Bags are in"}
    assert sent.message["data"] == {"store": "12", "kind": "bag"}
    assert not sent.validate_only
    # The token came from the real JWT-bearer grant, signed with the file's key.
    [grant] = peer.grants
    assert grant.status == 200 and grant.issuer == CLIENT_EMAIL and grant.scope == SCOPE
    assert sent.access_token == grant.access_token
    assert result.provider_message_id == sent.name
    assert result.provider_message_id.startswith(f"projects/{PROJECT_ID}/messages/")
    assert not result.delivered


async def test_data_values_go_as_strings(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    # Outgoing.data is typed str, but a caller's ints must not reach FCM (it answers 400).
    await make_provider().send(push(data={"count": 3, "ok": True}))  # type: ignore[dict-item]
    assert peer.received[0].status == 200
    assert peer.received[0].message["data"] == {"count": "3", "ok": "True"}


async def test_a_topic_goes_to_the_topic(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    await make_provider().send(push(recipient="topic:news", subject="News"))
    [sent] = peer.received
    assert sent.topic == "news" and sent.token is None
    assert "token" not in sent.message
    assert STORAGE_TOPIC_PREFIX == "topic:"  # the outbox writes topics the way we read them


async def test_a_dead_token_is_a_recipient_error_that_says_so(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    peer.script(Fault.dead(), match="gone")
    with pytest.raises(RecipientError) as caught:
        await make_provider().send(push(recipient="gone"))
    assert caught.value.opted_out
    assert caught.value.code == "UNREGISTERED"
    assert "404" in str(caught.value)


async def test_a_malformed_token_is_dead_but_a_bad_payload_is_not(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    peer.script(Fault.malformed(), match="not-a-token")
    with pytest.raises(RecipientError) as malformed:
        await provider.send(push(recipient="not-a-token"))
    assert malformed.value.opted_out and malformed.value.code == "INVALID_ARGUMENT"
    peer.script(Fault.bad_payload(), match="fine-token")
    with pytest.raises(RecipientError) as ours:
        await provider.send(push(recipient="fine-token"))
    # Our message was wrong, not the token: keep the token.
    assert not ours.value.opted_out


async def test_a_token_of_another_project_is_dead_but_iam_refusal_is_ours(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    peer.script(Fault.sender_mismatch(), match="theirs")
    with pytest.raises(RecipientError) as mismatch:
        await provider.send(push(recipient="theirs"))
    assert mismatch.value.opted_out and mismatch.value.code == "SENDER_ID_MISMATCH"
    peer.script(Fault.permission_denied(), match="anyone")
    with pytest.raises(ProviderDown) as denied:
        await provider.send(push(recipient="anyone"))
    assert denied.value.code == "PERMISSION_DENIED"


async def test_a_topic_is_never_dead(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    peer.script(Fault.dead(), match="/topics/ghost")
    with pytest.raises(RecipientError) as caught:
        await make_provider().send(push(recipient="topic:ghost"))
    assert not caught.value.opted_out


async def test_a_404_that_is_not_googles_means_base_url_is_wrong(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    peer.script(Fault(404, html=True))
    with pytest.raises(ProviderDown):
        await make_provider().send(push())


async def test_quota_is_transient_with_retry_after_bounded(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    peer.script(Fault.quota(retry_after="7"), times=1)
    with pytest.raises(TransientError) as quota:
        await provider.send(push())
    assert quota.value.retry_after == 7.0 and quota.value.code == "QUOTA_EXCEEDED"
    # Not slept on by the client: one request, the wait is the outbox's.
    assert len(peer.received) == 1
    peer.script(Fault.quota(retry_after="86400"), times=1)
    with pytest.raises(TransientError) as long_wait:
        await provider.send(push())
    assert long_wait.value.retry_after == RETRY_AFTER_CAP_SECONDS


async def test_503_is_retried_a_bounded_number_of_times_then_transient(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    # pyfcm's default adapter would retry this ten times over minutes, sleeping Retry-After.
    peer.script(Fault.unavailable(retry_after="120"))
    with pytest.raises(TransientError) as caught:
        await provider.send(push())
    assert len(peer.received) == 1 + RETRY_TOTAL
    assert caught.value.retry_after == 120.0
    peer.clear()
    peer.script(Fault.unavailable(), times=1)
    result = await provider.send(push())
    assert [s.status for s in peer.received] == [503, 200]
    assert result.provider_message_id == peer.received[-1].name


async def test_500_is_transient_without_an_adapter_retry(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    peer.script(Fault.internal(), times=1)
    with pytest.raises(TransientError) as caught:
        await make_provider().send(push())
    assert caught.value.code == "INTERNAL"
    assert len(peer.received) == 1


async def test_an_expired_access_token_is_renewed_once_and_the_send_repeated(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    await provider.send(push())
    first = peer.issued_tokens
    peer.expire_access_token()
    await provider.send(push(recipient="second-device"))
    statuses = [(s.token, s.status) for s in peer.received]
    assert statuses == [(TOKEN, 200), ("second-device", 401), ("second-device", 200)]
    assert len(peer.issued_tokens) == 2
    assert peer.received[1].access_token == first[0]
    assert peer.received[2].access_token == peer.issued_tokens[1]
    assert provider.token_refreshes == 2


async def test_one_access_token_is_shared_by_every_thread(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider(concurrency=8)
    await asyncio.gather(*(provider.send(push(recipient=f"device-{n}")) for n in range(40)))
    assert len(peer.accepted) == 40
    # pyfcm alone fetches one per worker thread.
    assert len(peer.grants) == 1
    assert {s.access_token for s in peer.received} == set(peer.issued_tokens)


async def test_revoked_credentials_are_provider_down_after_one_fresh_token(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    await provider.send(push())
    peer.reject_access_tokens = True
    with pytest.raises(ProviderDown) as caught:
        await provider.send(push())
    assert "401" in str(caught.value)
    assert len(peer.grants) == 2


async def test_a_refused_key_is_provider_down_and_health_says_so(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    peer.script(Fault.grant_refused(400, "invalid_grant"), match=TOKEN_PATH)
    provider = make_provider()
    with pytest.raises(ProviderDown) as caught:
        await provider.send(push())
    assert "invalid_grant" in str(caught.value)
    assert caught.value.code == "OAUTH"
    assert peer.received == []
    health = await provider.health()
    assert health.state == "down" and "invalid_grant" in health.detail


async def test_an_unreachable_token_endpoint_is_transient(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider], tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/token"
    account = peer.write_service_account(tmp_path / "elsewhere.json", token_uri=closed)
    provider = make_provider(service_account_file=str(account))
    with pytest.raises(TransientError):
        await provider.send(push())
    assert (await provider.health()).state == "degraded"


async def test_a_hanging_fcm_is_a_timeout(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    peer.script(Fault.slow(5), times=1)
    with pytest.raises(TransientError) as caught:
        await make_provider(timeout_seconds=0.3).send(push())
    assert "in time" in str(caught.value)


async def test_health_gets_a_token_and_sends_nothing(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    health = await provider.health()
    assert health.state == "ok"
    assert PROJECT_ID in health.detail and CLIENT_EMAIL in health.detail
    assert peer.received == [] and len(peer.grants) == 1
    await provider.health()
    assert len(peer.grants) == 1  # cached, and the token is still good


async def test_the_project_id_setting_wins_over_the_files(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider], tmp_path: Path
) -> None:
    account = peer.write_service_account(tmp_path / "other.json", project_id="someone-else")
    provider = make_provider(service_account_file=str(account), project_id=PROJECT_ID)
    await provider.send(push())
    assert peer.received[0].project == PROJECT_ID
    wrong = make_provider(service_account_file=str(account))
    with pytest.raises(ProviderDown):
        await wrong.send(push())


async def test_it_sends_push_only_and_not_after_close(
    make_provider: Callable[..., FcmProvider],
) -> None:
    provider = make_provider()
    with pytest.raises(NotForThisProvider):
        await provider.send(Outgoing(1, "sms", "+33612345678", "hi"))
    await provider.close()
    await provider.close()
    with pytest.raises(TransientError):
        await provider.send(push())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON (line 1"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "authorized_user"}', 'not "service_account"'),
        ('{"type": "service_account", "client_email": "a@b"}', "missing private_key, token_uri"),
    ],
)
def test_an_unusable_service_account_file_is_a_clear_error(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ServiceAccountError) as caught:
        FcmProvider(service_account_file=str(path))
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_broken_private_key_is_named_but_never_shown(
    peer: FcmPeer, account: Path, tmp_path: Path
) -> None:
    info = json.loads(account.read_text())
    secret_line = info["private_key"].splitlines()[5]
    info["private_key"] = info["private_key"].replace(secret_line, secret_line[::-1])
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(info))
    with pytest.raises(ServiceAccountError) as caught:
        FcmProvider(service_account_file=str(broken))
    assert "private_key cannot be loaded" in str(caught.value)
    assert secret_line not in str(caught.value) and secret_line[::-1] not in str(caught.value)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(ServiceAccountError, match="is a folder"):
        FcmProvider(service_account_file=str(folder))
    missing_project = tmp_path / "noproject.json"
    info = json.loads(account.read_text())
    del info["project_id"]
    missing_project.write_text(json.dumps(info))
    with pytest.raises(ServiceAccountError, match="project id"):
        FcmProvider(service_account_file=str(missing_project))


def test_base_url_must_be_plain_http(account: Path) -> None:
    with pytest.raises(ValueError, match="http"):
        FcmProvider(service_account_file=str(account), base_url="fcm.googleapis.com")
    with pytest.raises(ValueError, match="user name or password"):
        FcmProvider(service_account_file=str(account), base_url="https://u:p@fcm.example")


async def test_no_key_or_token_reaches_an_error_or_a_log(
    peer: FcmPeer,
    make_provider: Callable[..., FcmProvider],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make_provider()
    errors: list[str] = []
    await provider.send(push())
    peer.expire_access_token()
    for fault in (Fault.dead(), Fault.quota(), Fault.unavailable(), Fault.permission_denied()):
        peer.script(fault, times=1 + RETRY_TOTAL)
        try:
            await provider.send(push())
        except Exception as exc:
            errors.append(str(exc))
    peer.reject_access_tokens = True
    try:
        await provider.send(push())
    except ProviderDown as exc:
        errors.append(str(exc))
    errors.append((await provider.health()).detail)
    assert len(errors) >= 6
    key_lines = [line for line in peer.private_key_pem.splitlines() if "-----" not in line]
    secrets = [*peer.issued_tokens, *key_lines]
    assert len(peer.issued_tokens) >= 2
    seen = caplog.text + "\n".join(errors)
    leaked = [secret for secret in secrets if secret in seen]
    assert leaked == []


async def test_fcm_gone_for_good_turns_into_provider_down_until_it_answers(
    peer: FcmPeer, make_provider: Callable[..., FcmProvider]
) -> None:
    provider = make_provider()
    await provider.health()  # a token in hand, so only FCM itself is missing below
    peer.stop()
    errors: list[Exception] = []
    for _ in range(OUTAGE_AFTER):
        try:
            await provider.send(push())
        except Exception as exc:
            errors.append(exc)
    # Isolated failures are the message's to retry; a run of them means FCM is down, so the
    # outbox rests FCM and keeps the pushes instead of failing them.
    assert [type(e) for e in errors] == [TransientError] * (OUTAGE_AFTER - 1) + [ProviderDown]
    assert "FCM looks down" in str(errors[-1])
    peer.start()
    await provider.send(push())
    peer.script(Fault.internal(), times=1)
    with pytest.raises(TransientError):  # the success started the count again
        await provider.send(push())
