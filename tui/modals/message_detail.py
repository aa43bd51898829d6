"""One message in full with its history of events; offers retry or cancel where they apply."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static

from tui.format import when
from tui.records import LoggedMessage, MessageEvent
from tui.widgets.message_table import status_text

DetailAction = Literal["retry", "cancel"]
RETRYABLE = ("failed", "undelivered", "cancelled")


class MessageDetailModal(ModalScreen[DetailAction | None]):
    """Dismisses with "retry" or "cancel" when the shopkeeper asks for one, else None."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("r", "choose('retry')", "Retry"),
        Binding("c", "choose('cancel')", "Cancel it"),
    ]
    DEFAULT_CSS = """
    MessageDetailModal {
        align: center middle;
    }
    #detail {
        width: 90%;
        max-width: 110;
        height: 90%;
        border: thick $background 80%;
        background: $surface;
        padding: 0 1;
    }
    #detail-facts {
        height: auto;
        max-height: 10;
    }
    #detail-events {
        height: 1fr;
        min-height: 4;
    }
    #detail-buttons {
        height: 3;
        align-horizontal: right;
    }
    #detail-buttons Button {
        margin-left: 1;
    }
    """

    def __init__(
        self, message: LoggedMessage, events: Sequence[MessageEvent], now: datetime
    ) -> None:
        super().__init__()
        self.message = message
        self.events = list(events)
        self.now = now

    def compose(self) -> ComposeResult:
        m = self.message
        with Vertical(id="detail"):
            facts = Text()
            facts.append(f"Message {m.id}  ", style="bold")
            facts.append_text(status_text(m.status))
            facts.append(f"  {m.channel} {m.kind} to {m.recipient}\n")
            facts.append(f"created {when(m.created_at, self.now)}")
            if m.sent_at:
                facts.append(f"  sent {when(m.sent_at, self.now)}")
            if m.delivered_at:
                facts.append(f"  delivered {when(m.delivered_at, self.now)}")
            facts.append(f"  attempts {m.attempts}")
            if m.provider:
                facts.append(f"  via {m.provider}")
            if m.segments:
                facts.append(f"  {m.segments} segment(s) {m.encoding or ''}".rstrip())
            if m.last_error:
                facts.append(f"\nlast error: {m.last_error}", style="red")
            facts.append("\n")
            if m.subject:
                facts.append(f"{m.subject}\n", style="bold")
            facts.append(m.body)
            with VerticalScroll(id="detail-facts"):
                yield Static(facts)
            table: DataTable[Any] = DataTable(id="detail-events", cursor_type="row")
            yield table
            with Horizontal(id="detail-buttons"):
                if m.status in RETRYABLE:
                    yield Button("Retry", id="retry", variant="primary")
                if m.status == "queued":
                    yield Button("Cancel message", id="cancel", variant="error")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        table = self.query_one("#detail-events", DataTable)
        table.add_columns("At", "State", "Provider", "Detail")
        for event in self.events:
            table.add_row(
                when(event.at, self.now),
                status_text(event.state),
                event.provider or "",
                event.detail or "",
            )
        table.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "close":
            self.dismiss(None)
        else:
            self.action_choose(str(event.button.id))

    def action_choose(self, what: str) -> None:
        if what == "retry" and self.message.status in RETRYABLE:
            self.dismiss("retry")
        elif what == "cancel" and self.message.status == "queued":
            self.dismiss("cancel")
        else:
            self.notify(
                f"message {self.message.id} is {self.message.status}: "
                + (
                    "only a queued message can be cancelled"
                    if what == "cancel"
                    else "only failed, undelivered or cancelled messages can be retried"
                ),
                severity="warning",
            )
