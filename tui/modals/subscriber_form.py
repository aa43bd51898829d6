"""Add or edit a subscriber: name, phone, e-mail, channels, and the TGTG items they watch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from storage.models import Subscriber
from tui.modals.form import FormField, FormModal


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


class SubscriberFormModal(FormModal[Subscriber]):
    """Dismisses with the subscriber as the daemon saved it, or None when cancelled."""

    def __init__(
        self,
        subscriber: Subscriber | None,
        save: Callable[[dict[str, Any]], Awaitable[Subscriber]],
        *,
        watch_items: bool = True,
    ) -> None:
        s = subscriber
        fields = [
            FormField("name", "Name", (s.name or "") if s else ""),
            FormField("phone", "Phone", (s.phone or "") if s else "", "+33612345678"),
            FormField("email", "E-mail", (s.email or "") if s else "", "ana@example.com"),
            FormField("channels", "Channels", ", ".join(s.channels) if s else "sms", "sms, push"),
        ]
        # Older daemons have no watch list; the field appears only when the API knows it.
        if watch_items:
            value = ", ".join(s.watch_items) if s else ""
            fields.append(FormField("watch_items", "Watch items", value, "empty: every favourite"))
        self.editing = s is not None
        title = f"Edit {s.name or s.phone or f'subscriber {s.id}'}" if s else "Add a subscriber"
        super().__init__(title, fields, lambda values: save(self.body_of(values)))

    def body_of(self, values: dict[str, str]) -> dict[str, Any]:
        """The API's body: empty text clears a field when editing and is left out when adding."""
        body: dict[str, Any] = {}
        for name in ("name", "phone", "email"):
            if values[name] or self.editing:
                body[name] = values[name] or None
        body["channels"] = _items(values["channels"])
        if "watch_items" in values:
            body["watch_items"] = _items(values["watch_items"])
        return body
