"""Push notifications: checks them against FCM's rules, writes them to the outbox, prunes
dead tokens, and reaches a subscriber on every device they registered."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from daemon.runtime.clock import Clock, utc_iso
from daemon.services.outbox.backpressure import Backpressure, QueueFull
from daemon.services.outbox.budget import Origin
from daemon.services.outbox.service import EnqueueError
from storage.database import Database
from storage.messages import PRIORITY
from storage.models import Message, Notification, PushToken
from storage.push import (
    TOPIC_PREFIX,
    NewPush,
    delete_token,
    get_notification,
    get_subscriber,
    messages_by_key,
    push_to_tokens,
    push_to_topic,
    register_token,
    valid_tokens_of,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# FCM takes at most 4096 bytes of payload per message, title, body and data together
# ("Maximum payload for both message types is 4096 bytes", FCM's message-types guide).
MAX_PAYLOAD_BYTES = 4096
# A notification to tokens is one message per token; FCM's own multicast stops at 1000 too.
MAX_TOKENS = 1000
# Registration tokens are about 160 characters today; anything far longer is not one.
MAX_TOKEN_LENGTH = 1024
# FCM topic names: "[a-zA-Z0-9-_.~%]+" (FCM's topic-messaging guide); 900 is the legacy
# API's bound on a "/topics/..." target, kept as a sanity limit.
TOPIC_PATTERN = re.compile(r"[a-zA-Z0-9\-_.~%]+")
MAX_TOPIC_LENGTH = 900
# FCM refuses these data keys: "from", "message_type", and any starting with google or gcm.
RESERVED_DATA_KEYS = frozenset({"from", "message_type", "notification"})
RESERVED_DATA_PREFIXES = ("google", "gcm")
PUSH_KINDS = ("manual", "alert", "system", "report")


@dataclass(frozen=True)
class PushQueued:
    """A push written down: its notification and its messages (one per token, or one)."""

    notification: Notification
    messages: tuple[Message, ...]
    # False when an idempotency key matched an earlier push: these are that push's messages.
    created: bool = True


@dataclass(frozen=True)
class PushContent:
    """A checked title, body and data payload."""

    title: str | None
    body: str
    data: dict[str, str]


def check_content(title: str | None, body: str, data: Mapping[str, Any] | None) -> PushContent:
    """Refuse what FCM would refuse, naming the field and the rule (EnqueueError)."""
    if title is not None and not isinstance(title, str):
        raise EnqueueError("title", "must be text")
    if not isinstance(body, str):
        raise EnqueueError("body", "must be text")
    if not body.strip():
        raise EnqueueError("body", "must not be empty")
    for name, text in (("title", title or ""), ("body", body)):
        if "\x00" in text:
            raise EnqueueError(name, "must not contain NUL characters")
    payload: dict[str, str] = {}
    for key, value in (data or {}).items():
        if not isinstance(key, str) or not key:
            raise EnqueueError("data", "keys must be non-empty text")
        if not isinstance(value, str):
            # FCM takes only string values (it answers 400 TYPE_STRING otherwise).
            raise EnqueueError(f"data.{key}", "must be text (FCM takes only string values)")
        lowered = key.lower()
        if lowered in RESERVED_DATA_KEYS or lowered.startswith(RESERVED_DATA_PREFIXES):
            raise EnqueueError(
                f"data.{key}",
                'is a key FCM reserves ("from", "message_type", "notification", or starting '
                'with "google" or "gcm")',
            )
        payload[key] = value
    sizes = {
        "title": len((title or "").encode("utf-8")),
        "body": len(body.encode("utf-8")),
        "data": sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in payload.items()),
    }
    for name, size in sizes.items():
        if size > MAX_PAYLOAD_BYTES:
            raise EnqueueError(
                name,
                f"is {size} bytes in UTF-8; FCM takes at most {MAX_PAYLOAD_BYTES} bytes for a "
                "message's title, body and data together",
            )
    total = sum(sizes.values())
    if total > MAX_PAYLOAD_BYTES:
        raise EnqueueError(
            "body",
            f"title, body and data together are {total} bytes in UTF-8; FCM takes at most "
            f"{MAX_PAYLOAD_BYTES}",
        )
    return PushContent(title or None, body, payload)


def check_token(token: object, field: str = "token") -> str:
    """A registration token as FCM issues them: text, of a sane length, no spaces."""
    if not isinstance(token, str):
        raise EnqueueError(field, "must be text")
    if not token:
        raise EnqueueError(field, "must not be empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise EnqueueError(
            field, f"is {len(token)} characters; a registration token is at most {MAX_TOKEN_LENGTH}"
        )
    if not token.isascii() or not token.isprintable() or " " in token:
        raise EnqueueError(field, "must be printable ASCII without spaces (an FCM token)")
    if token.startswith(TOPIC_PREFIX):
        raise EnqueueError(field, f"must not start with {TOPIC_PREFIX!r} (that names a topic)")
    return token


def check_tokens(tokens: object, field: str = "tokens") -> list[str]:
    """A non-empty list of at most MAX_TOKENS tokens; repeats are sent once."""
    if not isinstance(tokens, list | tuple):
        raise EnqueueError(field, "must be a list of registration tokens")
    if not tokens:
        raise EnqueueError(field, "must hold at least one token")
    if len(tokens) > MAX_TOKENS:
        raise EnqueueError(field, f"holds {len(tokens)} tokens; at most {MAX_TOKENS} at once")
    checked = [check_token(token, f"{field}[{index}]") for index, token in enumerate(tokens)]
    return list(dict.fromkeys(checked))


def check_topic(topic: object, field: str = "topic") -> str:
    """An FCM topic name; "/topics/news" is taken as "news" (the legacy API's form)."""
    if not isinstance(topic, str):
        raise EnqueueError(field, "must be text")
    name = topic.removeprefix("/topics/")
    if not name:
        raise EnqueueError(field, "must not be empty")
    if len(name) > MAX_TOPIC_LENGTH:
        raise EnqueueError(field, f"is longer than {MAX_TOPIC_LENGTH} characters")
    if not TOPIC_PATTERN.fullmatch(name):
        raise EnqueueError(field, "may hold only letters, digits and - _ . ~ % (FCM's topic names)")
    return name


class PushService:
    """Writes pushes to the outbox (one message per token) and looks after device tokens."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        wake: Callable[[], None] | None = None,
        backpressure: Backpressure | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._wake = wake or (lambda: None)
        # The API's pushes are held to [outbox] max_queued like its SMS; the daemon's own
        # (TGTG alerts) only counted.
        self._backpressure = backpressure

    # -- tokens ----------------------------------------------------------------------------

    async def register(
        self, token: str, *, subscriber_id: int | None = None, platform: str | None = None
    ) -> tuple[PushToken, bool]:
        """Add or refresh a device token (a dead one becomes valid again); (row, created)."""
        token = check_token(token)
        now = utc_iso(self._clock.now())

        def write(conn):  # type: ignore[no-untyped-def]
            if subscriber_id is not None and get_subscriber(conn, subscriber_id) is None:
                raise EnqueueError("subscriber_id", f"no subscriber {subscriber_id}")
            return register_token(conn, token, now, subscriber_id=subscriber_id, platform=platform)

        row, created = await self._db.write(write)
        log.info(
            "push: token %d %s%s",
            row.id,
            "registered" if created else "registered again",
            f" for subscriber {subscriber_id}" if subscriber_id is not None else "",
        )
        return row, created

    async def delete(self, token_id: int) -> tuple[PushToken, tuple[int, ...]]:
        """Forget a token and cancel its queued pushes; LookupError if there is no such id."""
        now = utc_iso(self._clock.now())
        deleted = await self._db.write(lambda conn: delete_token(conn, token_id, now))
        if deleted is None:
            raise LookupError(f"no push token {token_id}")
        return deleted

    # -- sending ---------------------------------------------------------------------------

    async def send_to_tokens(
        self,
        tokens: Sequence[str],
        title: str | None,
        body: str,
        data: Mapping[str, Any] | None = None,
        *,
        kind: str = "manual",
        subscriber_id: int | None = None,
        idempotency_key: str | None = None,
        origin: Origin = "daemon",
    ) -> PushQueued:
        """One notification, one queued message per distinct token, in one transaction."""
        checked = check_tokens(tokens)
        content = check_content(title, body, data)
        push = self._push(content, kind, subscriber_id, idempotency_key)
        now = utc_iso(self._clock.now())

        def write(conn):  # type: ignore[no-untyped-def]
            if idempotency_key is not None:
                earlier = _earlier(conn, idempotency_key)
                if earlier is not None:
                    return earlier
            self._admit(conn, kind, origin, len(set(checked)))
            notification, messages = push_to_tokens(conn, checked, push, now)
            return PushQueued(notification, tuple(messages))

        queued = await self._write(write)
        if queued.created:
            self._wake()
            skipped = sum(1 for m in queued.messages if m.status == "cancelled")
            log.info(
                "push: notification %d to %d tokens queued%s",
                queued.notification.id,
                len(queued.messages),
                f" ({skipped} invalid tokens skipped)" if skipped else "",
            )
        return queued

    async def send_to_topic(
        self,
        topic: str,
        title: str | None,
        body: str,
        data: Mapping[str, Any] | None = None,
        *,
        kind: str = "manual",
        idempotency_key: str | None = None,
        origin: Origin = "daemon",
    ) -> PushQueued:
        """One notification and its one message to an FCM topic."""
        name = check_topic(topic)
        content = check_content(title, body, data)
        push = self._push(content, kind, None, idempotency_key)
        now = utc_iso(self._clock.now())

        def write(conn):  # type: ignore[no-untyped-def]
            if idempotency_key is not None:
                earlier = _earlier(conn, idempotency_key, topic=True)
                if earlier is not None:
                    return earlier
            self._admit(conn, kind, origin, 1)
            notification, message = push_to_topic(conn, name, push, now)
            return PushQueued(notification, (message,))

        queued = await self._write(write)
        if queued.created:
            self._wake()
            log.info("push: notification %d to topic %s queued", queued.notification.id, name)
        return queued

    async def notify_subscriber(
        self,
        subscriber_id: int,
        title: str | None,
        body: str,
        data: Mapping[str, Any] | None = None,
        *,
        kind: str = "alert",
        idempotency_key: str | None = None,
        origin: Origin = "daemon",
    ) -> PushQueued | None:
        """Push to every valid token of a subscriber who has the push channel on.

        None, and nothing written, when they have no push channel, opted out, or have no valid
        token: the caller (TGTG alerts) then relies on their other channels. EnqueueError
        (404) when there is no such subscriber. With `idempotency_key`, a repeat returns the
        first push (one alert per rising edge, whatever the retries).
        """
        content = check_content(title, body, data)
        push = self._push(content, kind, subscriber_id, idempotency_key)
        now = utc_iso(self._clock.now())

        def write(conn):  # type: ignore[no-untyped-def]
            subscriber = get_subscriber(conn, subscriber_id)
            if subscriber is None:
                raise EnqueueError("subscriber_id", f"no subscriber {subscriber_id}", status=404)
            if idempotency_key is not None:
                earlier = _earlier(conn, idempotency_key)
                if earlier is not None:
                    return earlier
            if "push" not in subscriber.channels or subscriber.opted_out_at is not None:
                return None
            tokens = [row.token for row in valid_tokens_of(conn, subscriber_id)]
            if not tokens:
                return None
            self._admit(conn, kind, origin, len(tokens))
            notification, messages = push_to_tokens(conn, tokens, push, now)
            return PushQueued(notification, tuple(messages))

        queued = await self._write(write)
        if queued is not None and queued.created:
            self._wake()
            log.info(
                "push: notification %d to subscriber %d on %d devices queued",
                queued.notification.id,
                subscriber_id,
                len(queued.messages),
            )
        return queued

    def _admit(self, conn: Any, kind: str, origin: Origin, count: int) -> None:
        if self._backpressure is not None and origin == "api":
            self._backpressure.check(conn, "push", kind, count)

    async def _write(self, write: Callable[[Any], _T]) -> _T:
        try:
            return await self._db.write(write)
        except QueueFull as exc:
            raise EnqueueError("", str(exc), status=503, retry_after=exc.retry_after) from None

    def _push(
        self,
        content: PushContent,
        kind: str,
        subscriber_id: int | None,
        idempotency_key: str | None,
    ) -> NewPush:
        if kind not in PUSH_KINDS:
            raise EnqueueError("kind", f"must be one of {', '.join(PUSH_KINDS)}")
        if idempotency_key is not None and not (0 < len(idempotency_key) <= 180):
            raise EnqueueError("idempotency_key", "must be 1 to 180 characters")
        return NewPush(
            title=content.title,
            body=content.body,
            data=content.data or None,
            kind=kind,
            priority=PRIORITY[kind],
            subscriber_id=subscriber_id,
            idempotency_prefix=f"push:{idempotency_key}" if idempotency_key else None,
        )


def _earlier(conn: Any, key: str, *, topic: bool = False) -> PushQueued | None:
    """The push written earlier under this idempotency key, if any.

    Its messages' keys are "push:<key>:<token id>" (or "push:<key>:topic"); the suffix is
    checked so that key "a" never finds the push of key "a:1".
    """
    prefix = f"push:{key}"

    def ours(message: Message) -> bool:
        suffix = (message.idempotency_key or "")[len(prefix) + 1 :]
        return suffix == "topic" if topic else suffix.isdigit()

    messages = [message for message in messages_by_key(conn, prefix) if ours(message)]
    if not messages or messages[0].notification_id is None:
        return None
    notification = get_notification(conn, messages[0].notification_id)
    if notification is None:
        return None
    return PushQueued(notification, tuple(messages), created=False)
