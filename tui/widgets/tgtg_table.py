"""The TGTG accounts the watcher polls, each with its state and when it last polled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tui.format import ago
from tui.records import TgtgAccount

STATE_STYLE = {
    "active": "green",
    "pending": "dark_orange",
    "blocked": "bold red",
    "error": "red",
    "disabled": "dim",
}


class TgtgTable(DataTable[Any]):
    """One row per TGTG account (ApiClient.tgtg_accounts): e-mail, state, last poll."""

    DEFAULT_CSS = """
    TgtgTable { height: auto; max-height: 12; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.show_cursor = False
        self.add_columns("account", "state", "last poll", "fails", "detail")

    def show_accounts(self, accounts: Sequence[TgtgAccount], now: datetime) -> None:
        self.clear()
        if not accounts:
            self.add_row("no TGTG accounts", "", "", "", "")
            return
        for account in accounts:
            last = account.last_poll_at
            self.add_row(
                account.email,
                Text(account.state, style=STATE_STYLE.get(account.state, "")),
                f"{ago(last, now)} ago" if last else "never",
                str(account.failures),
                account.state_detail or "",
            )
