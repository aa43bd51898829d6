"""What needs the owner now: the daemon's open owner alerts (the health answer's "owner")."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from tui.format import ago, when
from tui.records import Component

# Beyond this many, one line says how many more (the panel sits above everything else).
SHOWN = 4


class OwnerPanel(Static):
    """Hidden while nothing needs the owner; else one line per open alert, oldest first.

    An alert closes itself when its cause is over (the provider answers again, the disk has
    room...); the hint says where the whole story is.
    """

    DEFAULT_CSS = """
    OwnerPanel { height: auto; padding: 0 1; border: round $warning; display: none; }
    """

    def on_mount(self) -> None:
        self.border_title = "Needs you"

    def show_owner(self, component: Component | None, now: datetime) -> None:
        """`component` is the health answer's "owner" (None: a daemon without one)."""
        alerts = sorted(component.open_alerts if component else (), key=lambda a: a.raised_at or "")
        self.display = bool(alerts)
        if not alerts:
            return
        text = Text()
        for alert in alerts[:SHOWN]:
            raised = alert.raised_at or ""
            text.append("● ", style="dark_orange")
            text.append(alert.subject or alert.key or "?", style="bold")
            text.append(f"  since {when(raised, now)} ({ago(raised, now)})\n", style="dim")
        if len(alerts) > SHOWN:
            text.append(f"… and {len(alerts) - SHOWN} more\n", style="dim")
        if component is not None and not component.reachable:
            text.append("No [owner] phone or e-mail is set: these are only in the log.\n")
        text.append("Each closes by itself once fixed; `shopbell doctor` says what to do.")
        self.update(text)
