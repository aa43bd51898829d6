"""Ask which report to send now (daily or weekly, and of which day) before sending it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet


@dataclass(frozen=True)
class ReportRequest:
    """What to send: the kind, and a day in its period (None: the last whole one)."""

    kind: str
    day: date | None


class SendReportModal(ModalScreen[ReportRequest | None]):
    """The confirmation before a report goes out: kind, optional day, Send or Cancel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SendReportModal { align: center middle; }
    SendReportModal #send-report {
        width: 62; height: auto; padding: 0 1;
        border: thick $background 80%; background: $surface;
    }
    SendReportModal #send-question { width: 1fr; margin: 1 0 0 0; }
    SendReportModal RadioSet { layout: horizontal; width: 1fr; }
    SendReportModal #day { width: 1fr; }
    SendReportModal #day-error { color: $error; height: auto; }
    SendReportModal #send-buttons { height: auto; margin: 1 0 0 0; }
    SendReportModal #send-buttons Button { width: 1fr; }
    """

    def __init__(self, today: date) -> None:
        super().__init__()
        self.today = today

    def compose(self) -> ComposeResult:
        with Vertical(id="send-report"):
            # markup=False: "[reports]" is the config section's name, not a style.
            yield Label(
                "Send a sales report now to the [reports] recipients and owner_phone?",
                id="send-question",
                markup=False,
            )
            with RadioSet(id="kind"):
                yield RadioButton("daily", value=True, id="daily")
                yield RadioButton("weekly", id="weekly")
            yield Input(placeholder="day, YYYY-MM-DD (empty: the last whole day or week)", id="day")
            yield Label("", id="day-error")
            with Horizontal(id="send-buttons"):
                yield Button("Send", variant="primary", id="send")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(RadioSet).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            self.action_send()
        else:
            self.dismiss(None)

    def on_input_submitted(self) -> None:
        self.action_send()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_send(self) -> None:
        text = self.query_one("#day", Input).value.strip()
        error = self.query_one("#day-error", Label)
        day: date | None = None
        if text:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                error.update("day: not a date like 2026-11-19")
                return
            if day > self.today:
                error.update(f"day: must not be after today ({self.today.isoformat()})")
                return
        kind = "weekly" if self.query_one("#weekly", RadioButton).value else "daily"
        self.dismiss(ReportRequest(kind, day))
