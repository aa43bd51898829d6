"""What every mode screen shares: header, connection bar, footer, and worker error handling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import Worker, WorkerState

from tui.client import ApiClient, ApiError, Unreachable
from tui.records import RecordError
from tui.widgets.connection_bar import ConnectionBar

if TYPE_CHECKING:
    from tui.app import ShopbellApp


class ModeScreen(Screen[None]):
    """A mode of the app. Subclasses yield their body from `compose_body` and load their data
    in `refresh_data`, through `self.api` in workers (`@work(group=..., exclusive=True,
    exit_on_error=False)`); a failed worker lands in one handler here."""

    TITLE = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield ConnectionBar(id="connection")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def shop(self) -> ShopbellApp:
        return self.app  # type: ignore[return-value]

    @property
    def api(self) -> ApiClient:
        return self.shop.api

    def on_mount(self) -> None:
        # The header reads "shopbell — <mode>".
        self.title = self.app.title
        self.sub_title = self.TITLE
        self.watch(self.app, "problem", self._show_problem)
        self.watch(self.app, "connected", self._connection_changed, init=False)
        self.refresh_data()

    def on_screen_resume(self) -> None:
        # Coming back to a mode shows today's figures, not the ones from when it was left.
        if self.is_mounted:
            self.refresh_data()

    def refresh_data(self) -> None:
        """Load what the screen shows; called on mount, on resume and on reconnect."""

    def _show_problem(self, problem: str) -> None:
        self.query_one(ConnectionBar).problem = problem

    def _connection_changed(self, was: bool | None, now: bool | None) -> None:
        if now and was is False:
            self.refresh_data()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a screen's failed worker is explained to the shopkeeper."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, Unreachable):
            self.shop.note_unreachable(error)
        elif isinstance(error, ApiError):
            self.notify(error.message, title="The daemon refused", severity="error")
        elif isinstance(error, RecordError):
            self.notify(str(error), title="The daemon's answer does not fit", severity="error")
        else:
            self.notify(f"{type(error).__name__}: {error}", title="Error", severity="error")
