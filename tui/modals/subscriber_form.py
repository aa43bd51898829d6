"""Add or edit a subscriber: name, phone, e-mail, channels, and the TGTG items they watch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tui.modals.form import FormField, FormModal
from tui.records import Subscriber, SubscriberDetails


def _items(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())


class SubscriberFormModal(FormModal[Subscriber]):
    """Dismisses with the subscriber as the daemon saved it, or None when cancelled."""

    def __init__(
        self,
        subscriber: Subscriber | None,
        save: Callable[[SubscriberDetails], Awaitable[Subscriber]],
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
        title = f"Edit {s.name or s.phone or f'subscriber {s.id}'}" if s else "Add a subscriber"
        super().__init__(title, fields, lambda values: save(self.details_of(values)))

    @staticmethod
    def details_of(values: dict[str, str]) -> SubscriberDetails:
        """What was typed, as the record the client sends."""
        watch = values.get("watch_items")
        return SubscriberDetails(
            name=values["name"],
            phone=values["phone"],
            email=values["email"],
            channels=_items(values["channels"]),
            watch_items=_items(watch) if watch is not None else None,
        )
