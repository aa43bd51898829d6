"""Sales per day as a horizontal bar chart drawn with text blocks (no plotting dependency)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

# Eighths of a cell, so a bar's end shows finer steps than whole characters.
EIGHTHS = " ▏▎▍▌▋▊▉"
# What the labels and figures beside a bar take: "Thu 19 " and " 12,345.00".
BAR_MIN = 4


@dataclass(frozen=True)
class DaySales:
    """One day's bar: its label, its total in minor units, and the total as shown."""

    label: str
    total_minor: int
    shown: str
    orders: int


def bar(value: int, peak: int, width: int) -> str:
    """`value` of `peak` as a bar `width` cells long at most, in eighths of a cell."""
    if peak <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = max(1, round(value * width * 8 / peak))
    whole, part = divmod(eighths, 8)
    return "█" * whole + (EIGHTHS[part] if part else "")


class SalesChart(Static):
    """Days top to bottom (oldest first), each with a bar as long as its sales."""

    DEFAULT_CSS = """
    SalesChart { height: auto; padding: 0 1; }
    """

    days: list[DaySales] = []

    def show_days(self, days: list[DaySales]) -> None:
        self.days = list(days)
        self.refresh_chart()

    def on_resize(self) -> None:
        self.refresh_chart()

    def refresh_chart(self) -> None:
        if not self.days:
            self.update(Text("no sales in these days", style="dim"))
            return
        # As many of the latest days as there are lines; the peak is of those shown.
        height = self.content_size.height
        days = self.days[-height:] if height > 0 else self.days
        peak = max(day.total_minor for day in days)
        label_width = max(len(day.label) for day in days)
        shown_width = max(len(day.shown) for day in days)
        # The rest of the line is the bar, less the two spaces between the columns.
        room = max(BAR_MIN, self.content_size.width - label_width - shown_width - 2)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=label_width)
        grid.add_column(width=room, no_wrap=True)
        grid.add_column(justify="right", width=shown_width)
        for day in days:
            grid.add_row(
                Text(day.label, style="bold" if day is days[-1] else ""),
                Text(bar(day.total_minor, peak, room), style="green"),
                Text(day.shown, style="" if day.total_minor else "dim"),
            )
        self.update(grid)
