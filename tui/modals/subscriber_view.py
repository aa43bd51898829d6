"""A subscriber's detail in a modal, for terminals too narrow to show it beside the table."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.widgets.subscriber_detail import SubscriberDetail, SubscriberFile


class SubscriberViewModal(ModalScreen[None]):
    """Read-only; Escape or Enter closes it and the mode's keys act on the same subscriber."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]
    DEFAULT_CSS = """
    SubscriberViewModal {
        align: center middle;
    }
    SubscriberViewModal > VerticalScroll {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary 60%;
        background: $surface;
        padding: 0 1;
    }
    SubscriberViewModal .hint {
        color: $text-muted;
    }
    """

    def __init__(self, file: SubscriberFile, now: datetime) -> None:
        super().__init__()
        self.file = file
        self.now = now

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            detail = SubscriberDetail(id="detail-modal")
            detail.now = self.now
            detail.file = self.file
            yield detail
            yield Static("Esc closes", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
