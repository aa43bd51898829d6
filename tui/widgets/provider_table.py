"""The providers of every channel and how each is doing, from the health answer's components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tui.records import Component

# The channels shown, in this order; each component lists its providers under "providers".
CHANNELS = ("sms", "push", "email")
STATE_STYLE = {"ok": "green", "degraded": "dark_orange", "down": "bold red"}


def state_text(state: str) -> Text:
    """A state word coloured so ok / degraded / down read at a glance in both themes."""
    return Text(state, style=STATE_STYLE.get(state, ""))


class ProviderTable(DataTable[Any]):
    """One row per provider: channel, name, state, and its detail (modem signal, operator...)."""

    DEFAULT_CSS = """
    ProviderTable { height: auto; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.show_cursor = False
        self.add_columns("channel", "provider", "state", "detail")

    def show_health(self, components: Mapping[str, Component]) -> None:
        """Replace the rows with the providers in `components` (the health answer's)."""
        self.clear()
        for channel in CHANNELS:
            component = components.get(channel)
            if component is None or not component.providers:
                detail = (component.detail if component else None) or "not configured"
                state = component.state if component else "down"
                self.add_row(channel, "—", state_text(state), detail)
                continue
            for name, health in component.providers.items():
                self.add_row(channel, name, state_text(health.state), health.detail or "")
