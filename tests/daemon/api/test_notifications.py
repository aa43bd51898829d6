"""The push endpoints: the FCM backend's two, the canonical notifications and push tokens, and
bad input answered 400 naming the field and the rule, with nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from daemon.runtime.clock import ManualClock
from daemon.services.push import MAX_TOKEN_LENGTH, MAX_TOKENS, PushService
from storage.database import Database
from storage.push import invalidate_token
from tests.daemon.api.support import bearer, client_for
from tests.storage import factories as f

TOKEN = "dyimeAKczeP3UJ8ynvI1I2:APA91bHQFAK2d28Tyfg89zqWVrPynCCEXF9eNnRW705fFxEdDE4klEBsq"


@pytest.fixture
async def client(
    make_app: Callable[..., FastAPI], db: Database, clock: ManualClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(push=PushService(db, clock), max_body_bytes=1_048_576)
    async with client_for(app) as http:
        http.headers.update(bearer())
        yield http


async def counts(db: Database) -> dict[str, int]:
    def read(conn: Any) -> dict[str, int]:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("notifications", "messages", "push_tokens")
        }

    return await db.execute(read)


async def test_notifications_tokens_keeps_the_backends_shape(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post(
        "/notifications/tokens",
        json={"tokens": [TOKEN, "second-token"], "title": "Notification Title", "body": "Hi"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"success": True, "notification_id": body["notification_id"]}
    assert await counts(db) == {"notifications": 1, "messages": 2, "push_tokens": 2}
    detail = (await client.get(f"/api/v1/notifications/{body['notification_id']}")).json()
    assert detail["notification"]["target"] == "tokens"
    assert detail["notification"]["title"] == "Notification Title"
    assert [o["recipient"] for o in detail["outcomes"]] == [TOKEN, "second-token"]
    assert {o["status"] for o in detail["outcomes"]} == {"queued"}
    assert detail["notification"]["by_status"] == {"queued": 2}


async def test_notifications_tokens_takes_one_token_as_a_string(
    client: httpx.AsyncClient, db: Database
) -> None:
    # The backend's README says a list; its code also sent to one token given as a string.
    response = await client.post(
        "/notifications/tokens", json={"tokens": TOKEN, "title": "T", "body": "Hi"}
    )
    assert response.status_code == 200, response.text
    detail = (
        await client.get(f"/api/v1/notifications/{response.json()['notification_id']}")
    ).json()
    assert [o["recipient"] for o in detail["outcomes"]] == [TOKEN]
    assert await counts(db) == {"notifications": 1, "messages": 1, "push_tokens": 1}


async def test_notifications_topic_keeps_the_backends_shape(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post(
        "/notifications/topic", json={"topic": "news", "title": "T", "body": "Topic body"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    listed = (await client.get("/api/v1/notifications")).json()["notifications"]
    assert [(n["target"], n["topic"], n["messages"]) for n in listed] == [("topic", "news", 1)]
    detail = (await client.get(f"/api/v1/notifications/{listed[0]['id']}")).json()
    assert detail["outcomes"][0]["recipient"] == "topic:news"


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        ({"tokens": [], "title": "t", "body": "b"}, "body.tokens", "at least 1"),
        ({"tokens": {"a": "b"}, "title": "t", "body": "b"}, "body.tokens", "valid list"),
        ({"tokens": "", "title": "t", "body": "b"}, "body.tokens[0]", "must not be empty"),
        ({"tokens": [TOKEN, 42], "title": "t", "body": "b"}, "body.tokens[1]", "valid string"),
        ({"tokens": [None], "title": "t", "body": "b"}, "body.tokens[0]", "valid string"),
        (
            {"tokens": ["x" * (MAX_TOKEN_LENGTH + 1)], "title": "t", "body": "b"},
            "body.tokens[0]",
            f"at most {MAX_TOKEN_LENGTH} characters",
        ),
        (
            {"tokens": ["t"] * (MAX_TOKENS + 1), "title": "t", "body": "b"},
            "body.tokens",
            f"at most {MAX_TOKENS} items",
        ),
        ({"tokens": ["has space"], "title": "t", "body": "b"}, "body.tokens[0]", "spaces"),
        ({"tokens": [TOKEN], "title": "t" * 4097, "body": "b"}, "body.title", "4096 bytes"),
        ({"tokens": [TOKEN], "title": "t", "body": "é" * 2049}, "body.body", "4098 bytes"),
        (
            {"tokens": [TOKEN], "title": "t" * 2100, "body": "b" * 2100},
            "body.body",
            "together",
        ),
        ({"tokens": [TOKEN], "title": "t", "body": "  "}, "body.body", "must not be empty"),
        ({"tokens": [TOKEN], "title": 5, "body": "b"}, "body.title", "valid string"),
        ({"tokens": [TOKEN], "body": "b"}, "body.title", "field required"),
    ],
)
async def test_bad_token_pushes_are_400_naming_the_field_and_store_nothing(
    client: httpx.AsyncClient, db: Database, payload: dict[str, Any], field: str, rule: str
) -> None:
    response = await client.post("/notifications/tokens", json=payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False and body["error"] == 400
    assert body["message"].startswith(field.removeprefix("body.")) or field in body["message"]
    assert any(e["field"] == field and rule in e["rule"] for e in body["errors"]), body
    assert await counts(db) == {"notifications": 0, "messages": 0, "push_tokens": 0}


@pytest.mark.parametrize(
    ("topic", "rule"),
    [("", "must not be empty"), ("two words", "letters, digits"), ("a/b", "letters, digits")],
)
async def test_bad_topics_are_400(
    client: httpx.AsyncClient, db: Database, topic: str, rule: str
) -> None:
    response = await client.post(
        "/notifications/topic", json={"topic": topic, "title": "t", "body": "b"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("topic:")
    assert rule in response.json()["message"]
    assert await counts(db) == {"notifications": 0, "messages": 0, "push_tokens": 0}


async def test_the_canonical_create_takes_data_and_one_target(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await client.post(
        "/api/v1/notifications",
        json={"tokens": [TOKEN], "body": "Bags", "data": {"store": "12"}, "kind": "alert"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["created"] and body["notification"]["data"] == {"store": "12"}
    assert body["notification"]["title"] is None
    assert body["outcomes"][0]["recipient"] == TOKEN
    two = await client.post(
        "/api/v1/notifications", json={"tokens": [TOKEN], "topic": "news", "body": "b"}
    )
    assert two.status_code == 400 and "exactly one of" in two.json()["message"]
    none = await client.post("/api/v1/notifications", json={"body": "b"})
    assert none.status_code == 400
    numbers = await client.post(
        "/api/v1/notifications", json={"topic": "news", "body": "b", "data": {"n": 1}}
    )
    assert numbers.status_code == 400 and "body.data.n" in numbers.json()["message"]
    reserved = await client.post(
        "/api/v1/notifications", json={"topic": "news", "body": "b", "data": {"from": "x"}}
    )
    assert reserved.status_code == 400 and "reserves" in reserved.json()["message"]
    assert (await counts(db))["notifications"] == 1


async def test_an_idempotency_key_returns_the_first_push(client: httpx.AsyncClient) -> None:
    request = {"tokens": [TOKEN, "b-token"], "body": "Once", "idempotency_key": "order-77"}
    first = await client.post("/api/v1/notifications", json=request)
    again = await client.post("/api/v1/notifications", json=request)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["notification"]["id"] == first.json()["notification"]["id"]
    listed = (await client.get("/api/v1/notifications")).json()["notifications"]
    assert len(listed) == 1


async def test_a_subscribers_push_goes_to_their_valid_tokens(
    client: httpx.AsyncClient, db: Database
) -> None:
    subscriber_id = await db.write(lambda c: f.insert(c, "subscribers", f.subscriber()))
    nobody = await client.post("/api/v1/notifications", json={"subscriber_id": 999, "body": "x"})
    assert nobody.status_code == 404
    no_tokens = await client.post(
        "/api/v1/notifications", json={"subscriber_id": subscriber_id, "body": "x"}
    )
    assert no_tokens.status_code == 409
    await client.post("/api/v1/push-tokens", json={"token": TOKEN, "subscriber_id": subscriber_id})
    sent = await client.post(
        "/api/v1/notifications", json={"subscriber_id": subscriber_id, "body": "Bags"}
    )
    assert sent.status_code == 201
    assert [o["recipient"] for o in sent.json()["outcomes"]] == [TOKEN]


async def test_push_tokens_register_list_delete(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    first = await client.post("/api/v1/push-tokens", json={"token": TOKEN, "platform": "android"})
    assert first.status_code == 201 and first.json()["created"]
    token_id = first.json()["token"]["id"]
    now = clock.now().isoformat()
    await db.write(lambda c: invalidate_token(c, TOKEN, now, reason="fcm: UNREGISTERED"))
    listed = (await client.get("/api/v1/push-tokens", params={"valid": "false"})).json()
    assert [(t["id"], t["valid"], t["invalid_reason"]) for t in listed["tokens"]] == [
        (token_id, False, "fcm: UNREGISTERED")
    ]
    again = await client.post("/api/v1/push-tokens", json={"token": TOKEN})
    assert again.status_code == 200 and not again.json()["created"]
    assert again.json()["token"]["valid"] and again.json()["token"]["platform"] == "android"
    assert (await client.get("/api/v1/push-tokens", params={"valid": "true"})).json()["tokens"]
    await client.post("/notifications/tokens", json={"tokens": [TOKEN], "title": "", "body": "b"})
    deleted = await client.delete(f"/api/v1/push-tokens/{token_id}")
    assert deleted.status_code == 200
    assert len(deleted.json()["cancelled_message_ids"]) == 1
    assert (await client.delete(f"/api/v1/push-tokens/{token_id}")).status_code == 404
    assert (await client.get(f"/api/v1/push-tokens/{token_id}")).status_code == 404
    unknown = await client.post("/api/v1/push-tokens", json={"token": "x", "subscriber_id": 42})
    assert unknown.status_code == 400 and "subscriber_id" in unknown.json()["message"]
    bad = await client.post("/api/v1/push-tokens", json={"token": 12345})
    assert bad.status_code == 400 and "body.token" in bad.json()["message"]


async def test_a_missing_notification_is_404_and_pages_work(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/notifications/1")).status_code == 404
    for n in range(3):
        await client.post("/notifications/topic", json={"topic": f"t{n}", "title": "", "body": "b"})
    page = (await client.get("/api/v1/notifications", params={"limit": 2})).json()
    assert [n["topic"] for n in page["notifications"]] == ["t2", "t1"]
    rest = (
        await client.get(
            "/api/v1/notifications", params={"limit": 2, "before": page["next_before"]}
        )
    ).json()
    assert [n["topic"] for n in rest["notifications"]] == ["t0"]
    assert rest["next_before"] is None


async def test_push_needs_the_api_token(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("POST", "/notifications/tokens"),
        ("POST", "/notifications/topic"),
        ("GET", "/api/v1/notifications"),
        ("GET", "/api/v1/push-tokens"),
    ):
        response = await client.request(method, path, headers={"Authorization": ""})
        assert response.status_code == 401, path


async def test_without_the_push_service_it_says_so(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app()) as http:
        response = await http.post(
            "/notifications/topic",
            json={"topic": "news", "title": "t", "body": "b"},
            headers=bearer(),
        )
    assert response.status_code == 503
