"""Write a message: SMS to a number, a subscriber or all subscribers; push to tokens or a topic."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from tui.client import ApiClient, ApiError, Unreachable
from tui.modals.confirm import ConfirmModal
from tui.records import RecordError

if TYPE_CHECKING:
    from tui.app import ShopbellApp

Target = Literal["number", "subscriber", "all", "tokens", "topic"]
TARGETS: tuple[tuple[str, Target], ...] = (
    ("SMS to a number", "number"),
    ("SMS to a subscriber", "subscriber"),
    ("SMS to all subscribers", "all"),
    ("Push to device tokens", "tokens"),
    ("Push to a topic", "topic"),
)
# Which input holds the recipient for each target; the API's field names map onto them.
TARGET_FIELD = {
    "number": "to",
    "subscriber": "subscriber",
    "all": None,
    "tokens": "tokens",
    "topic": "topic",
}
FIELD_ERROR_LABEL = {
    "to": "to",
    "subscriber": "to",
    "tokens": "to",
    "topic": "to",
    "title": "title",
    "body": "body",
}


@dataclass(frozen=True, slots=True)
class SubscriberChoice:
    """A subscriber who can get an SMS: who, and the number."""

    id: int
    name: str
    phone: str

    @property
    def label(self) -> str:
        return f"{self.name or 'subscriber ' + str(self.id)} ({self.phone})"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What the form will send: the text, a title for a push, and where it goes: a phone
    number (`to`), device tokens or a topic."""

    body: str
    to: str = ""
    tokens: tuple[str, ...] = ()
    topic: str = ""
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """The modal sent it itself: what to tell the shopkeeper, and the new message ids."""

    summary: str
    message_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Broadcast:
    """An SMS to every subscriber, for the screen to count, confirm and send.

    `broadcast_id` makes each subscriber's idempotency key, so sending it again never doubles.
    """

    body: str
    broadcast_id: str


ComposeOutcome = Sent | Broadcast


class ComposeModal(ModalScreen[ComposeOutcome | None]):
    """A form that keeps what was typed and shows the daemon's objection beside the field."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]
    DEFAULT_CSS = """
    ComposeModal {
        align: center middle;
    }
    #compose {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $background 80%;
        background: $surface;
        padding: 0 1;
    }
    #compose Input, #compose Select {
        width: 1fr;
    }
    #compose .error {
        color: $error;
        height: auto;
        padding: 0 1;
    }
    #compose-buttons {
        height: 3;
        align-horizontal: right;
    }
    #compose-buttons Button {
        margin-left: 1;
    }
    """

    def __init__(
        self, subscribers: Sequence[SubscriberChoice] = (), target: Target = "number"
    ) -> None:
        super().__init__()
        self.subscribers = list(subscribers)
        self.initial_target: Target = target

    @property
    def api(self) -> ApiClient:
        app: ShopbellApp = self.app  # type: ignore[assignment]
        return app.api

    def compose(self) -> ComposeResult:
        with Vertical(id="compose"):
            yield Label("New message", id="compose-title")
            yield Select(list(TARGETS), value=self.initial_target, allow_blank=False, id="target")
            yield Input(placeholder="phone number, e.g. +15005550006", id="to")
            yield Select(
                [(s.label, s.id) for s in self.subscribers],
                prompt="pick a subscriber" if self.subscribers else "no subscriber has a phone",
                id="subscriber",
            )
            yield Input(placeholder="device tokens, separated by commas", id="tokens")
            yield Input(placeholder="topic, e.g. deals", id="topic")
            yield Label("", id="error-to", classes="error")
            yield Input(placeholder="title", id="title")
            yield Label("", id="error-title", classes="error")
            yield Input(placeholder="message text", id="body")
            yield Label("", id="error-body", classes="error")
            yield Label("", id="error-form", classes="error")
            with Horizontal(id="compose-buttons"):
                yield Button("Send", id="send", variant="primary")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self._show_target(self.initial_target)

    @property
    def target(self) -> Target:
        value = self.query_one("#target", Select).value
        return value if isinstance(value, str) else "number"  # type: ignore[return-value]

    @on(Select.Changed, "#target")
    def _target_changed(self, event: Select.Changed) -> None:
        self._show_target(self.target)

    def _show_target(self, target: Target) -> None:
        for name in ("to", "subscriber", "tokens", "topic"):
            self.query_one(f"#{name}").display = TARGET_FIELD[target] == name
        self.query_one("#title").display = target in ("tokens", "topic")
        self._clear_errors()
        field = TARGET_FIELD[target]
        self.query_one(f"#{field or 'body'}").focus()

    def _clear_errors(self) -> None:
        for label in self.query(".error").results(Label):
            label.update("")
            label.display = False

    def _error(self, field: str, rule: str) -> None:
        # "tokens.0" (the first token) is shown beside the tokens field.
        where = FIELD_ERROR_LABEL.get(field.split(".", 1)[0], "form")
        label = self.query_one(f"#error-{where}", Label)
        label.update(rule if field == "form" else f"{field}: {rule}")
        label.display = True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "close":
            self.dismiss(None)
        elif event.button.id == "send":
            self.action_send()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_send()

    def action_send(self) -> None:
        self._clear_errors()
        target = self.target
        body = self.query_one("#body", Input).value.strip()
        if not body:
            self._error("body", "write the message text")
            return
        if target == "all":
            self.dismiss(Broadcast(body=body, broadcast_id=uuid.uuid4().hex[:12]))
            return
        if target == "number":
            to = self.query_one("#to", Input).value.strip()
            if not to:
                self._error("to", "write a phone number, e.g. +15005550006")
                return
            self.send(target, Outgoing(body, to=to))
        elif target == "subscriber":
            picked = self.query_one("#subscriber", Select).value
            chosen = next((s for s in self.subscribers if s.id == picked), None)
            if chosen is None:
                self._error("subscriber", "pick a subscriber")
                return
            self.send(target, Outgoing(body, to=chosen.phone), chosen.label)
        elif target == "tokens":
            tokens = [t for t in re.split(r"[,\s]+", self.query_one("#tokens", Input).value) if t]
            if not tokens:
                self._error("tokens", "give at least one device token")
                return
            title = self.query_one("#title", Input).value.strip() or None
            self.send(target, Outgoing(body, tokens=tuple(tokens), title=title))
        else:
            topic = self.query_one("#topic", Input).value.strip()
            if not topic:
                self._error("topic", "name the topic, e.g. deals")
                return
            title = self.query_one("#title", Input).value.strip() or None
            payload = Outgoing(body, topic=topic, title=title)
            self.app.push_screen(
                ConfirmModal(
                    f"Push this to every device subscribed to the topic '{topic}'?\n"
                    "It cannot be taken back.",
                    yes="Push it",
                ),
                lambda yes: self.send(target, payload) if yes else None,
            )

    @work(exclusive=True, group="compose-send", exit_on_error=False)
    async def send(self, target: Target, out: Outgoing, who: str = "") -> None:
        """Send it; a refusal stays in the form beside its field, with what was typed kept."""
        button = self.query_one("#send", Button)
        button.disabled = True
        try:
            if target in ("number", "subscriber"):
                message = (await self.api.send_sms(out.to, out.body)).message
                to = who or message.recipient
                note = f"SMS {message.id} to {to} is {message.status}"
                self.dismiss(Sent(note, (message.id,)))
            else:
                if target == "topic":
                    pushed = await self.api.push_to_topic(out.topic, out.body, title=out.title)
                    where = f"topic {out.topic}"
                else:
                    pushed = await self.api.push_to_tokens(out.tokens, out.body, title=out.title)
                    where = f"{len(out.tokens)} device(s)"
                ids = tuple(outcome.message_id for outcome in pushed.outcomes)
                note = f"push {pushed.notification.id} to {where}: {len(ids)} message(s)"
                self.dismiss(Sent(note, ids))
        except ApiError as exc:
            fields = exc.fields
            if not fields:
                self._error("form", exc.message)
            for name, rule in fields.items():
                self._error(name, rule)
        except (Unreachable, RecordError) as exc:
            self._error("form", str(exc))
        finally:
            button.disabled = False
