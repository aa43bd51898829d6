"""Type the one-time code the subscriber received, to prove the phone number is theirs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tui.modals.form import FormField, FormModal


@dataclass(frozen=True, slots=True)
class Verified:
    """The daemon accepted the code for this phone."""

    phone: str


class OtpVerifyModal(FormModal[Verified]):
    """Dismisses with Verified once the daemon accepts the code; a wrong code stays here."""

    def __init__(
        self, phone: str, expires_in: int, check: Callable[[str], Awaitable[Verified]]
    ) -> None:
        minutes = max(1, expires_in // 60)
        super().__init__(
            f"Verify {phone}",
            [FormField("otp", "Code", placeholder="6 digits")],
            lambda values: check(values["otp"]),
            note=f"A code was sent by SMS to {phone}; it expires in {minutes} min.",
            submit="Verify",
        )
