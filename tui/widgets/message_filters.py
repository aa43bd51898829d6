"""The message log's filters: status, channel, kind, recipient and a time range."""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid
from textual.message import Message
from textual.widgets import Input, Select

STATUSES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "cancelled")
CHANNELS = ("sms", "push", "email")
KINDS = ("otp", "alert", "manual", "report", "reply", "system")
TIME_HELP = "2026-11-20, 2026-11-20 14:00, or 30m / 2h / 3d ago"


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What the shopkeeper asked to see; empty means any. Times as typed (see TIME_HELP)."""

    status: str = ""
    channel: str = ""
    kind: str = ""
    recipient: str = ""
    since: str = ""
    until: str = ""

    def describe(self) -> str:
        parts = [
            f"{name} {value}"
            for name in ("status", "channel", "kind", "recipient", "since", "until")
            if (value := getattr(self, name))
        ]
        return ", ".join(parts) if parts else "none"


class MessageFilters(Grid):
    """Three choices and three fields; each change posts `Changed` with the whole filter."""

    DEFAULT_CSS = """
    MessageFilters {
        grid-size: 3 2;
        grid-columns: 1fr 1fr 1fr;
        grid-rows: 3 3;
        height: 6;
        display: none;
    }
    MessageFilters Select, MessageFilters Input {
        width: 1fr;
    }
    """

    class Changed(Message):
        def __init__(self, value: MessageFilter) -> None:
            super().__init__()
            self.value = value

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.value = MessageFilter()

    def compose(self) -> ComposeResult:
        yield _select("status", STATUSES)
        yield _select("channel", CHANNELS)
        yield _select("kind", KINDS)
        yield Input(placeholder="recipient (phone, token)", id="filter-recipient")
        yield Input(placeholder="since, e.g. 2h", id="filter-since", tooltip=TIME_HELP)
        yield Input(placeholder="until, e.g. 2026-11-20", id="filter-until", tooltip=TIME_HELP)

    @on(Select.Changed)
    def _choice(self, event: Select.Changed) -> None:
        event.stop()
        name = str(event.select.id).removeprefix("filter-")
        value = "" if event.value is Select.NULL else str(event.value)
        self._set(name, value)

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        # Text filters apply on Enter, not per key: every keystroke would restart paging.
        event.stop()
        name = str(event.input.id).removeprefix("filter-")
        self._set(name, event.value.strip())

    def _set(self, name: str, value: str) -> None:
        if getattr(self.value, name) == value:
            return
        self.value = replace(self.value, **{name: value})
        self.post_message(self.Changed(self.value))

    def clear_all(self) -> None:
        """Back to no filter (posts one Changed)."""
        with self.prevent(Select.Changed):
            for select in self.query(Select):
                select.clear()
        for field in self.query(Input):
            field.value = ""
        if self.value != MessageFilter():
            self.value = MessageFilter()
            self.post_message(self.Changed(self.value))


def _select(name: str, values: tuple[str, ...]) -> Select[str]:
    return Select(
        [(value, value) for value in values],
        prompt=f"any {name}",
        id=f"filter-{name}",
    )
