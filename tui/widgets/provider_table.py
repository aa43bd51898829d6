"""The providers of every channel and how each is doing, from /api/health's components."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

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

    def show_health(self, components: dict[str, Any]) -> None:
        """Replace the rows with the providers in `components` (the health answer's)."""
        self.clear()
        for channel in CHANNELS:
            component = components.get(channel) or {}
            providers = component.get("providers") or {}
            if not providers:
                detail = component.get("detail") or "not configured"
                self.add_row(channel, "—", state_text(component.get("state", "down")), detail)
                continue
            for name, health in providers.items():
                state = str(health.get("state", "down"))
                self.add_row(channel, name, state_text(state), str(health.get("detail") or ""))
