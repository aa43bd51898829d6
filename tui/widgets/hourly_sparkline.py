"""Messages per hour over the last 24 hours: a sparkline with the hours it spans and its peak."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


class HourlySparkline(Vertical):
    """Textual's Sparkline over 24 counts (oldest first) and a line saying what it shows."""

    DEFAULT_CSS = """
    HourlySparkline { height: auto; }
    HourlySparkline Sparkline { height: 2; margin: 0 1; }
    HourlySparkline Label { color: $text-muted; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Sparkline([], summary_function=max)
        yield Label("no messages yet", id="hourly-caption")

    def show_counts(self, counts: list[int], first_hour: str, last_hour: str) -> None:
        """`counts` per hour, oldest first; the hours are local "HH:MM" labels of the ends."""
        self.counts = list(counts)
        self.query_one(Sparkline).data = self.counts
        total, peak = sum(counts), max(counts, default=0)
        self.query_one(Label).update(
            f"{first_hour} → {last_hour}  ·  {total:,} messages  ·  peak {peak:,} an hour"
        )
