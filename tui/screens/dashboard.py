"""The dashboard mode: the daemon, its providers, the outbox, TGTG and the jobs at a glance."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Static

from tui.format import ago, parse_time, when
from tui.records import Health, Shop, Stats, TgtgAccount
from tui.screens.base import ModeScreen
from tui.widgets.hourly_sparkline import HourlySparkline
from tui.widgets.job_table import JobTable
from tui.widgets.owner_panel import OwnerPanel
from tui.widgets.provider_table import ProviderTable
from tui.widgets.queue_panel import QueuePanel
from tui.widgets.tgtg_table import TgtgTable

# The dashboard reloads itself this often while it is the screen in front.
REFRESH_SECONDS = 5.0
# Below this many columns the panels stack instead of standing side by side.
WIDE_COLUMNS = 110
W = TypeVar("W", bound=Widget)


def shop_zone(shop: Shop) -> ZoneInfo:
    """The shop's time zone; UTC if it names none we know."""
    try:
        return ZoneInfo(shop.timezone or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


class DashboardScreen(ModeScreen):
    """What the shopkeeper glances at: is everything working, and what went out today."""

    TITLE = "Dashboard"
    BINDINGS = [Binding("r", "refresh_dashboard", "Refresh")]
    # A class attribute so a test can make the timer quick without waiting seconds.
    refresh_seconds = REFRESH_SECONDS
    DEFAULT_CSS = """
    DashboardScreen #uptime { padding: 0 1; height: auto; }
    DashboardScreen .panel {
        border: round $primary 50%;
        border-title-color: $text-accent;
        height: auto;
    }
    DashboardScreen .row { height: auto; }
    DashboardScreen .row > * { width: 1fr; height: auto; }
    /* Provider details (modem signal and operator, why a SIM is locked) need the room. */
    DashboardScreen .row > Vertical { width: 50; }
    DashboardScreen DataTable { scrollbar-size-horizontal: 0; }
    DashboardScreen.-narrow .row { layout: vertical; }
    DashboardScreen.-narrow .row > * { width: 100%; }
    """

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="dash"):
            yield Static("asking the daemon…", id="uptime")
            yield OwnerPanel(id="owner")
            with Horizontal(classes="row"):
                with Vertical():
                    yield self._panel(QueuePanel(id="queue"), "Queue · today")
                    yield self._panel(HourlySparkline(id="hourly"), "Messages per hour, last 24 h")
                yield self._panel(ProviderTable(id="providers"), "Providers")
            # Their detail columns need the whole width: one under the other at any size.
            yield self._panel(JobTable(id="jobs"), "Jobs")
            yield self._panel(TgtgTable(id="tgtg"), "TGTG accounts")

    @staticmethod
    def _panel(widget: W, title: str) -> W:
        widget.add_class("panel")
        widget.border_title = title
        return widget

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(self.refresh_seconds, self._tick)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < WIDE_COLUMNS, "-narrow")

    def _tick(self) -> None:
        # Only the screen in front reloads, and only while the daemon answers: the app's
        # health check finds it again and then calls refresh_data itself.
        if self.is_current and self.shop.connected:
            self.refresh_data()

    def refresh_data(self) -> None:
        self.load_dashboard()

    def action_refresh_dashboard(self) -> None:
        self.refresh_data()

    @work(exclusive=True, group="dashboard-load", exit_on_error=False)
    async def load_dashboard(self) -> None:
        health, stats, accounts = await asyncio.gather(
            self._health(), self.api.stats(), self.api.tgtg_accounts()
        )
        self.show(health, stats, accounts)

    async def _health(self) -> Health:
        # The app asks for the health every few seconds; its last answer is fresh enough, and a
        # fresh one is fetched only before the first.
        return self.shop.health or await self.api.health()

    def show(self, health: Health, stats: Stats, accounts: Sequence[TgtgAccount]) -> None:
        """Hand each panel its part of the answers."""
        now = self.shop.clock().astimezone(shop_zone(stats.shop))
        self.query_one("#uptime", Static).update(self._uptime(health, stats.shop, now))
        components = health.components
        self.query_one(OwnerPanel).show_owner(components.get("owner"), now)
        self.query_one(QueuePanel).show_stats(stats.queue, stats.today, components.get("outbox"))
        self.query_one(ProviderTable).show_health(components)
        if stats.hourly:
            first = parse_time(stats.hourly[0].start)
            assert first is not None
            self.query_one(HourlySparkline).show_counts(
                [hour.count for hour in stats.hourly],
                first.astimezone(now.tzinfo).strftime("%H:%M"),
                "now",
            )
        self.query_one(JobTable).show_jobs(stats.jobs, now)
        self.query_one(TgtgTable).show_accounts(accounts, now)

    @staticmethod
    def _uptime(health: Health, shop: Shop, now: datetime) -> str:
        started = ""
        if health.time and health.uptime_seconds is not None:
            moment = parse_time(health.time)
            assert moment is not None
            started = (moment - timedelta(seconds=health.uptime_seconds)).isoformat()
        status = health.status or "?"
        mark = "[green]●[/]" if status == "ok" else "[dark_orange]●[/]"
        return (
            f"{mark} [b]{escape(shop.name or 'shopbell')}[/b]  "
            f"daemon {escape(health.version or '?')} "
            f"up since {when(started, now)} ({ago(started, now)})  ·  {status}  ·  "
            f"{shop.timezone}"
        )
