"""The message log as a table, newest first, fed page by page by its screen."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from tui.format import when
from tui.records import LoggedMessage

# Rows left below the cursor (or the view) when the next older page is asked for: far enough
# ahead that scrolling with the keyboard seldom waits for it.
NEAR_END_ROWS = 30
# Colours that read on the dark and on the light theme alike (plain yellow and cyan vanish on
# white).
STATUS_STYLE = {
    "queued": "dark_orange",
    "sending": "dodger_blue2",
    "sent": "green",
    "delivered": "bold green",
    "undelivered": "magenta",
    "failed": "bold red",
    "cancelled": "dim",
}
# Column key → (title, width); the text column takes what is left.
COLUMNS = {
    "id": ("ID", 7),
    "when": ("When", 11),
    "status": ("Status", 11),
    "channel": ("Ch", 4),
    "kind": ("Kind", 6),
    "to": ("To", 13),
    "text": ("Text", 20),
}
MIN_TEXT_WIDTH = 10


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


class MessageTable(DataTable[Any]):
    """Rows keyed by message id, newest first. It holds only the pages it was given."""

    DEFAULT_CSS = """
    MessageTable {
        height: 1fr;
    }
    """

    class NearEnd(Message):
        """The shopkeeper is close to the last loaded row: time for the next older page."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.now: datetime | None = None
        self.messages: dict[int, LoggedMessage] = {}

    def on_mount(self) -> None:
        for key, (title, width) in COLUMNS.items():
            self.add_column(title, key=key, width=width)

    def on_resize(self) -> None:
        self._fit_text_column()

    def _fit_text_column(self) -> None:
        if "text" not in self.columns:
            return
        fixed = sum(w for k, (_, w) in COLUMNS.items() if k != "text")
        padding = 2 * self.cell_padding * len(COLUMNS)
        # One column more for the vertical scrollbar, which shows once rows overflow.
        width = max(MIN_TEXT_WIDTH, self.size.width - fixed - padding - 2)
        column = self.columns["text"]
        if column.width != width:
            column.width = width
            self.refresh(layout=True)
            self._require_update_dimensions = True

    @property
    def newest_id(self) -> int | None:
        return max(self.messages) if self.messages else None

    @property
    def oldest_id(self) -> int | None:
        return min(self.messages) if self.messages else None

    @property
    def highlighted(self) -> LoggedMessage | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key
        return self.messages.get(int(key.value)) if key.value is not None else None

    def clear_messages(self) -> None:
        self.messages.clear()
        self.clear()

    def _cells(self, message: LoggedMessage) -> list[object]:
        now = self.now
        moment = when(message.created_at, now) if now is not None else message.created_at
        text = message.body.replace("\n", " ")
        if message.subject:
            text = f"{message.subject}: {text}"
        return [
            Text(str(message.id), justify="right"),
            moment[5:] if len(moment) == 16 else moment,  # "11-20 10:30": no year in a row
            status_text(message.status),
            message.channel,
            message.kind,
            message.recipient,
            text,
        ]

    def append_older(self, messages: Iterable[LoggedMessage]) -> int:
        """Add a page of older messages at the bottom; ones already shown are updated."""
        added = 0
        for message in messages:
            if message.id in self.messages:
                self.update_message(message)
                continue
            self.messages[message.id] = message
            self.add_row(*self._cells(message), key=str(message.id))
            added += 1
        return added

    def merge_newer(self, messages: Iterable[LoggedMessage]) -> int:
        """Put messages newer than the shown ones on top; known ones get their new status."""
        fresh: list[LoggedMessage] = []
        for message in messages:
            if message.id in self.messages:
                self.update_message(message)
            else:
                fresh.append(message)
        if not fresh:
            return 0
        at_top = self.cursor_row <= 0
        kept = self.highlighted
        for message in fresh:
            self.messages[message.id] = message
            self.add_row(*self._cells(message), key=str(message.id))
        # DataTable only appends: order the rows by id again, newest first.
        self.sort("id", key=lambda cell: int(str(cell)), reverse=True)
        if at_top:
            self.move_cursor(row=0)
        elif kept is not None:
            self.move_cursor(row=self.get_row_index(str(kept.id)))
        return len(fresh)

    def update_message(self, message: LoggedMessage) -> None:
        old = self.messages.get(message.id)
        if old is None:
            return
        self.messages[message.id] = message
        if old.status != message.status:
            self.update_cell(str(message.id), "status", status_text(message.status))

    def visible_ids(self) -> list[int]:
        """Ids of the rows on screen now (for refreshing their status)."""
        first = int(self.scroll_y)
        last = first + self.scrollable_content_region.height
        ids: list[int] = []
        for index in range(max(0, first - 1), min(self.row_count, last)):
            key: RowKey = self.ordered_rows[index].key
            if key.value is not None:
                ids.append(int(key.value))
        return ids

    def near_end(self) -> bool:
        """Whether the cursor or the view is within NEAR_END_ROWS of the last row."""
        if not self.row_count:
            return False
        last_seen = max(self.cursor_row, int(self.scroll_y) + self.size.height)
        return last_seen >= self.row_count - NEAR_END_ROWS

    def watch_cursor_coordinate(self, old: Any, new: Any) -> None:
        super().watch_cursor_coordinate(old, new)
        if self.near_end():
            self.post_message(self.NearEnd())

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.near_end():
            self.post_message(self.NearEnd())
