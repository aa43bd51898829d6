"""The outbox at a glance: how many messages wait in each state, and today's sent figures."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from tui.records import Today

# What still waits to go; everything else is told for today only.
QUEUE_ORDER = ("queued", "sending")
SEPARATOR = Text("  ·  ", style="dim")


class QueuePanel(Static):
    """Two short paragraphs that wrap to the width: the queue by state, then today's figures."""

    DEFAULT_CSS = """
    QueuePanel { height: auto; padding: 0 1; }
    """

    def show_stats(self, queue: Mapping[str, int], today: Today) -> None:
        """`queue` counts the messages waiting by their state (a state with none is left out)."""
        day = [
            ("sent", today.sent, ""),
            ("delivered", today.delivered, ""),
            ("failed", today.failed, "bold red"),
            ("undelivered", today.by_status.get("undelivered", 0), "dark_orange"),
            ("cancelled", today.by_status.get("cancelled", 0), ""),
        ]
        text = Text("Queue ", style="bold")
        for index, status in enumerate(QUEUE_ORDER):
            count = queue.get(status, 0)
            if index:
                text.append_text(SEPARATOR)
            text.append(f"{count:,}", style="bold" if count else "dim")
            text.append(f" {status}")
        text.append("\nToday ", style="bold")
        for index, (label, count, alert) in enumerate(day):
            if index:
                text.append_text(SEPARATOR)
            text.append(f"{count:,}", style=(alert or "bold") if count else "dim")
            text.append(f" {label}")
        self.update(text)
