"""The subscribers table: opted-out ones marked, the cursor kept across reloads."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from tui.records import Subscriber


def status_of(subscriber: Subscriber) -> Text:
    """Opted out outranks verified: an opted-out number gets nothing whatever else is true."""
    if subscriber.opted_out_at is not None:
        return Text("opted out", style="bold red")
    if subscriber.verified_at is not None:
        return Text("verified", style="green")
    return Text("unverified", style="dim")


class SubscriberTable(DataTable[str | Text]):
    """Rows keyed by subscriber id; `show` replaces them and keeps the highlighted subscriber."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_column("Name", key="name")
        self.add_column("Phone", key="phone")
        self.add_column("E-mail", key="email")
        self.add_column("Status", key="status")

    def show(self, subscribers: Sequence[Subscriber]) -> None:
        keep = self.highlighted_id
        self.clear()
        for subscriber in subscribers:
            self.add_row(
                subscriber.name or "—",
                subscriber.phone or "—",
                subscriber.email or "—",
                status_of(subscriber),
                key=str(subscriber.id),
            )
        if keep is not None and str(keep) in self.rows:
            self.move_cursor(row=self.get_row_index(str(keep)))

    @property
    def highlighted_id(self) -> int | None:
        """The id of the subscriber under the cursor, or None when the table is empty."""
        if not self.row_count:
            return None
        key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return int(key.value) if key.value is not None else None
