"""The shopbell terminal app: five modes over the daemon's API, and the link to the daemon."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from tui.client import ApiClient, ApiError, Unreachable
from tui.modals.confirm import ConfirmModal
from tui.records import Health, RecordError
from tui.screens.dashboard import DashboardScreen
from tui.screens.inventory import InventoryScreen
from tui.screens.messages import MessagesScreen
from tui.screens.orders import OrdersScreen
from tui.screens.subscribers import SubscribersScreen

# How often the app asks the daemon whether it is there; also the retry pace when it is not.
HEALTH_SECONDS = 2.0
MODE_TITLES = {
    "dashboard": "Dashboard",
    "subscribers": "Subscribers",
    "inventory": "Inventory",
    "orders": "Orders and reports",
    "messages": "Messages",
}


class ShopbellApp(App[None]):
    """The shopkeeper's console. It receives its API client: tests hand it one of their own."""

    TITLE = "shopbell"
    CSS_PATH = "styles/app.tcss"
    MODES = {
        "dashboard": DashboardScreen,
        "subscribers": SubscribersScreen,
        "inventory": InventoryScreen,
        "orders": OrdersScreen,
        "messages": MessagesScreen,
    }
    DEFAULT_MODE = "dashboard"
    # The mode keys stay out of the footer: at 80 columns it has room for the screen's own
    # actions only. The header names the mode, the palette (ctrl+p) lists every mode.
    BINDINGS = [
        Binding("1", "switch_mode('dashboard')", "Dashboard", show=False),
        Binding("2", "switch_mode('subscribers')", "Subscribers", show=False),
        Binding("3", "switch_mode('inventory')", "Inventory", show=False),
        Binding("4", "switch_mode('orders')", "Orders", show=False),
        Binding("5", "switch_mode('messages')", "Messages", show=False),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    # None until the first answer; then whether the daemon answered the last health check.
    connected: reactive[bool | None] = reactive(None)
    problem: reactive[str] = reactive("")

    def __init__(
        self,
        api: ApiClient,
        *,
        local: bool = True,
        start_daemon: Callable[[], str] | None = None,
        clock: Callable[[], datetime] | None = None,
        health_seconds: float = HEALTH_SECONDS,
    ) -> None:
        super().__init__()
        self.api = api
        self.local = local
        self.start_daemon = start_daemon
        self.clock = clock or (lambda: datetime.now(UTC))
        self.health: Health | None = None
        self._health_seconds = health_seconds
        self._offered_start = False
        self._token_ok = False

    def on_mount(self) -> None:
        self.check_connection()
        self.set_interval(self._health_seconds, self.check_connection)

    async def on_unmount(self) -> None:
        await self.api.close()

    @work(exclusive=True, group="health", exit_on_error=False)
    async def check_connection(self) -> None:
        """Ask for the health; remember the answer; say plainly when the daemon is not there."""
        try:
            self.health = await self.api.health()
            if not self._token_ok:
                # Health is public; one small authenticated read proves the token once a visit.
                await self.api.check_token()
                self._token_ok = True
        except Unreachable as exc:
            self.note_unreachable(exc)
            return
        except RecordError as exc:
            # The daemon is there but speaks another version of the API: say so, keep asking.
            self.connected = False
            self.problem = str(exc)
            return
        except ApiError as exc:
            # 503 still carries the health report: the daemon is there, a part of it is not.
            if exc.status == 401:
                self.connected = False
                self.problem = "the daemon refused the API token (check [tui] token or --token)"
                return
            if exc.status != 503:
                self.connected = False
                self.problem = f"the daemon answered: {exc.message}"
                return
        self.problem = ""
        self.connected = True
        self._offered_start = False

    def note_unreachable(self, exc: Unreachable) -> None:
        """Any worker that could not reach the daemon reports here; the app keeps retrying."""
        self.connected = False
        self._token_ok = False
        self.problem = f"{exc}; retrying every {self._health_seconds:g} s"
        if exc.refused and self.local and self.start_daemon and not self._offered_start:
            self._offered_start = True
            self.push_screen(
                ConfirmModal(
                    f"The shopbell daemon is not running at {exc.url}.\nStart it now?",
                    yes="Start it",
                    no="Not now",
                ),
                self._maybe_start,
            )

    def _maybe_start(self, start: bool | None) -> None:
        if start and self.start_daemon is not None:
            try:
                said = self.start_daemon()
            except OSError as exc:
                self.notify(f"could not start the daemon: {exc}", severity="error")
                return
            self.notify(said, title="Starting the daemon")

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def get_system_commands(self, screen: Screen[object]):  # type: ignore[no-untyped-def]
        yield from super().get_system_commands(screen)
        for mode, title in MODE_TITLES.items():
            yield SystemCommand(
                f"Go to {title}",
                f"Switch to the {title.lower()} mode",
                lambda mode=mode: self.switch_mode(mode),
            )
        yield SystemCommand("Toggle light/dark theme", "Switch theme", self.action_toggle_theme)
