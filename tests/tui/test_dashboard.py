"""The dashboard against a real daemon: what the shop sent shows in the queue, today's figures
and the hour's sparkline; TGTG accounts and the scheduler's jobs are listed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers.tgtg import TgtgPeer
from tests.tui.conftest import FIXED_NOW, TOKEN, LiveDaemon, canned, make_app
from tests.tui.test_app import _until
from tests.tui.test_snapshots_dashboard import HEALTH, ROUTES
from tui.screens.dashboard import DashboardScreen
from tui.widgets.hourly_sparkline import HourlySparkline
from tui.widgets.job_table import JobTable
from tui.widgets.owner_panel import OwnerPanel
from tui.widgets.provider_table import ProviderTable
from tui.widgets.queue_panel import QueuePanel
from tui.widgets.tgtg_table import TgtgTable

EMAIL = "asha@example.com"


@pytest.fixture
def tgtg_daemon(
    daemon_config: Callable[[str], tuple[Path, int]], daemon_env: dict[str, str]
) -> Iterator[LiveDaemon]:
    """A daemon whose TGTG client talks to the fake TGTG (so a login can start)."""
    with TgtgPeer() as tgtg:
        tgtg.add_account(EMAIL)
        path, port = daemon_config(f'[tgtg]\nbase_url = "{tgtg.base_url}"\n')
        live = LiveDaemon(f"http://127.0.0.1:{port}", TOKEN, port, path, daemon_env)
        live.start()
        yield live
        live.stop()


def _text(widget: Any) -> str:
    return str(widget.render())


def _cells(table: Any) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


async def test_the_dashboard_shows_what_was_sent_and_the_accounts_and_jobs(
    tgtg_daemon: LiveDaemon,
) -> None:
    live = tgtg_daemon
    for n in range(3):
        live.api("POST", "/api/v1/messages", json={"to": "+14155550100", "body": f"hello {n}"})
    subscriber = live.api(
        "POST",
        "/api/v1/subscribers",
        json={"name": "Asha", "email": EMAIL, "phone": "+14155550101"},
    )["subscriber"]
    live.api("POST", f"/api/v1/subscribers/{subscriber['id']}/tgtg/login", json={"email": EMAIL})

    app = make_app(live.url)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        queue = screen.query_one(QueuePanel)
        # The console provider "sends" at once: the three leave the queue, sent today.
        await _until(lambda: "3 sent" in _text(queue), pilot)
        assert "0 queued" in _text(queue)
        assert "3 sent" in _text(queue).split("Today")[1]

        spark = screen.query_one(HourlySparkline)
        await _until(lambda: getattr(spark, "counts", None), pilot)
        # The messages were made this hour: the last bar, the others empty.
        assert spark.counts[-1] >= 3 and sum(spark.counts[:-1]) == 0
        assert "3 messages" in _text(spark.query_one("#hourly-caption"))

        tgtg = screen.query_one(TgtgTable)
        await _until(lambda: any(EMAIL in row[0] for row in _cells(tgtg)), pilot)
        [row] = _cells(tgtg)
        assert row[1] == "pending"  # waiting for the PIN TGTG mailed

        jobs = screen.query_one(JobTable)
        await _until(lambda: jobs.row_count > 1, pilot)
        names = {row[0]: row for row in _cells(jobs)}
        assert {"otp-sweep", "report-daily", "tgtg-poll"} <= set(names)
        assert names["report-daily"][1] not in ("", "—", "paused")  # its next run is shown

        providers = _cells(screen.query_one(ProviderTable))
        assert providers[0][:3] == ["sms", "console", "ok"]
        assert any(row[0] == "email" for row in providers)

        # More sent while watching: `r` shows it without waiting for the timer.
        live.api("POST", "/api/v1/messages", json={"to": "+14155550100", "body": "one more"})
        await pilot.press("r")
        await _until(lambda: "4 sent" in _text(queue), pilot)


async def test_the_dashboard_refreshes_itself(
    live_daemon: LiveDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DashboardScreen, "refresh_seconds", 0.3)
    app = make_app(live_daemon.url)
    async with app.run_test(size=(120, 40)) as pilot:
        queue = app.screen.query_one(QueuePanel)
        await _until(lambda: "0 sent" in _text(queue), pilot)
        live_daemon.api("POST", "/api/v1/messages", json={"to": "+14155550100", "body": "hi"})
        # Nobody presses a key: the timer brings the new figure.
        await _until(lambda: "1 sent" in _text(queue), pilot)


async def test_the_dashboard_says_when_the_daemon_goes_away(live_daemon: LiveDaemon) -> None:
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        jobs = app.screen.query_one(JobTable)
        await _until(lambda: jobs.row_count > 1, pilot)
        live_daemon.stop()
        await _until(lambda: app.connected is False, pilot)
        assert "cannot reach the daemon" in app.problem


async def test_what_needs_the_owner_is_shown_first_and_only_then() -> None:
    health = dict(HEALTH)
    owner: dict[str, Any] = {"state": "ok", "detail": "nothing needs the owner", "open_alerts": []}
    health["components"] = {**HEALTH["components"], "owner": owner}
    app = make_app(
        "http://daemon.test",
        transport=canned({**ROUTES, "GET /api/health": lambda _: _json(health)}),
        clock=lambda: FIXED_NOW,
    )
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        panel = screen.query_one(OwnerPanel)
        await _until(lambda: screen.query_one(JobTable).row_count == 3, pilot)
        assert panel.display is False  # nothing open: no panel taking room
        owner["state"] = "degraded"
        owner["open_alerts"] = [
            {
                "key": "provider-down:sms",
                "subject": "Corner Shop: SMS cannot be sent",
                "raised_at": "2026-11-20T09:58:00+00:00",
                "queued_at": "2026-11-20T09:58:00+00:00",
            },
            {
                "key": "disk-low",
                "subject": "Corner Shop: the disk is nearly full",
                "raised_at": "2026-11-20T08:00:00+00:00",
                "queued_at": None,
            },
        ]
        screen.refresh_data()
        await _until(lambda: panel.display is True, pilot)
        shown = _text(panel)
        # Oldest first, with when each was raised, and what to do.
        assert shown.index("disk is nearly full") < shown.index("SMS cannot be sent")
        assert "32 min" in shown and "shopbell doctor" in shown
        assert panel.region.y < screen.query_one(ProviderTable).region.y


def _json(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=body)
