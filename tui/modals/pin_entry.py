"""Enter the PIN Too Good To Go mailed, to finish a subscriber's TGTG login."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tui.modals.form import FormField, FormModal
from tui.records import TgtgAccount


class PinEntryModal(FormModal[TgtgAccount]):
    """Dismisses with the login's new state once TGTG took the PIN."""

    def __init__(self, email: str, submit: Callable[[str], Awaitable[TgtgAccount]]) -> None:
        super().__init__(
            "TGTG login",
            [FormField("pin", "PIN", placeholder="from the TGTG e-mail")],
            lambda values: submit(values["pin"]),
            note=f"TGTG mailed a PIN to {email}.",
            submit="Log in",
        )
