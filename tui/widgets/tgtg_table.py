"""The TGTG accounts the watcher polls, each with its state and when it last polled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tui.format import ago

STATE_STYLE = {
    "active": "green",
    "pending": "dark_orange",
    "blocked": "bold red",
    "error": "red",
    "disabled": "dim",
}


class TgtgTable(DataTable[Any]):
    """One row per TGTG account (from /api/v1/tgtg/accounts): e-mail, state, last poll."""

    DEFAULT_CSS = """
    TgtgTable { height: auto; max-height: 12; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.show_cursor = False
        self.add_columns("account", "state", "last poll", "fails", "detail")

    def show_accounts(self, accounts: list[dict[str, Any]], now: datetime) -> None:
        self.clear()
        if not accounts:
            self.add_row("no TGTG accounts", "", "", "", "")
            return
        for account in accounts:
            state = str(account.get("state", ""))
            last = account.get("last_poll_at")
            self.add_row(
                str(account.get("email", "")),
                Text(state, style=STATE_STYLE.get(state, "")),
                f"{ago(last, now)} ago" if last else "never",
                str(account.get("failures", 0)),
                str(account.get("state_detail") or ""),
            )
