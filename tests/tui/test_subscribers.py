"""The subscribers mode against a real daemon: add, edit, opt out, delete, OTP, TGTG login."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.widgets import Input

from tests.daemon.conftest import REPO
from tests.helpers import free_port
from tests.peers.tgtg import PIN, TgtgPeer
from tests.tui.conftest import TOKEN, LiveDaemon, make_app
from tests.tui.conftest import until as _until
from tui.app import ShopbellApp
from tui.modals.confirm import ConfirmModal
from tui.modals.form import FormModal
from tui.modals.subscriber_view import SubscriberViewModal
from tui.screens.subscribers import SubscribersScreen
from tui.widgets.subscriber_detail import SubscriberDetail
from tui.widgets.subscriber_table import SubscriberTable

PHONE = "+33612345678"
EMAIL = "ana@example.com"


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """One daemon for this file's tests (a start costs seconds); each test empties it first."""
    import os

    folder = tmp_path_factory.mktemp("subscribers")
    port = free_port()
    config = folder / "config.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{folder / "data"}"\n\n[api]\nport = {port}\ntoken = "{TOKEN}"\n\n'
        '[shop]\nname = "Corner Shop"\ntimezone = "UTC"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    live = LiveDaemon(f"http://127.0.0.1:{port}", TOKEN, port, config, env)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def live_daemon(shared_daemon: LiveDaemon) -> LiveDaemon:
    """The shared daemon with no subscribers left from an earlier test."""
    headers = {"Authorization": f"Bearer {shared_daemon.token}"}
    for subscriber in _subscribers(shared_daemon):
        url = f"{shared_daemon.url}/api/v1/subscribers/{subscriber['id']}"
        assert httpx.delete(url, headers=headers, timeout=10).status_code == 204
    return shared_daemon


def _rows(app: ShopbellApp) -> list[list[str]]:
    table = app.screen.query_one(SubscriberTable)
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


def _subscribers(live: LiveDaemon) -> list[dict[str, Any]]:
    return list(live.api("GET", "/api/v1/subscribers")["subscribers"])


async def _open(app: ShopbellApp, pilot: Any, rows: int) -> SubscribersScreen:
    await _until(lambda: app.connected, pilot)
    await pilot.press("2")
    await _until(lambda: isinstance(app.screen, SubscribersScreen), pilot)
    await _until(lambda: app.screen.query_one(SubscriberTable).row_count == rows, pilot)
    assert isinstance(app.screen, SubscribersScreen)
    return app.screen


async def _type(pilot: Any, app: ShopbellApp, field: str, text: str) -> None:
    box = app.screen.query_one(f"#field-{field}", Input)
    box.value = text
    await pilot.pause()


def _detail_text(app: ShopbellApp) -> str:
    pane = app.screen.query_one(SubscriberDetail)
    return _plain(pane)


def _plain(widget: Any) -> str:
    from rich.console import Console

    console = Console(width=100, record=True)
    # The renderable the widget was last given, printed as the terminal would show it.
    console.print(widget.content)
    return console.export_text()


async def test_a_bad_phone_is_refused_next_to_its_field_then_the_fixed_one_is_saved(
    live_daemon: LiveDaemon,
) -> None:
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=0)
        await pilot.press("a")
        await _until(lambda: isinstance(app.screen, FormModal), pilot)
        form = app.screen
        await _type(pilot, app, "name", "Ana Lopez")
        await _type(pilot, app, "phone", "0612")
        await _type(pilot, app, "email", EMAIL)
        await pilot.press("ctrl+s")
        await _until(lambda: "phone" in form.errors(), pilot)
        assert "country code" in form.errors()["phone"]
        assert app.screen is form  # still open, values kept
        assert form.values()["name"] == "Ana Lopez"
        assert _subscribers(live_daemon) == []
        await _type(pilot, app, "phone", PHONE)
        await pilot.press("ctrl+s")
        await _until(lambda: isinstance(app.screen, SubscribersScreen), pilot)
        await _until(lambda: len(_rows(app)) == 1, pilot)
        assert _rows(app)[0][:3] == ["Ana Lopez", PHONE, EMAIL]
        [saved] = _subscribers(live_daemon)
        assert (saved["name"], saved["phone"], saved["email"]) == ("Ana Lopez", PHONE, EMAIL)


async def test_edit_then_opt_out_and_back_in(live_daemon: LiveDaemon) -> None:
    live_daemon.api("POST", "/api/v1/subscribers", json={"name": "Ana", "phone": PHONE})
    app = make_app(live_daemon.url)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, rows=1)
        await pilot.press("e")
        await _until(lambda: isinstance(app.screen, FormModal), pilot)
        await _type(pilot, app, "name", "Ana Lopez")
        await _type(pilot, app, "email", EMAIL)
        await pilot.press("enter")
        await _until(lambda: _rows(app) and _rows(app)[0][0] == "Ana Lopez", pilot)
        assert _subscribers(live_daemon)[0]["email"] == EMAIL

        await pilot.press("o")
        await _until(lambda: _rows(app)[0][3] == "opted out", pilot)
        assert _subscribers(live_daemon)[0]["opted_out"] is True
        await _until(lambda: re.search(r"Opted out +no", _detail_text(app)) is None, pilot)
        await pilot.press("o")
        await _until(lambda: _rows(app)[0][3] == "unverified", pilot)
        assert _subscribers(live_daemon)[0]["opted_out"] is False


async def test_delete_asks_first_and_escape_keeps_the_subscriber(live_daemon: LiveDaemon) -> None:
    live_daemon.api("POST", "/api/v1/subscribers", json={"name": "Ana", "phone": PHONE})
    live_daemon.api("POST", "/api/v1/subscribers", json={"name": "Bo", "phone": "+33612345679"})
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=2)
        await pilot.press("d")
        await _until(lambda: isinstance(app.screen, ConfirmModal), pilot)
        assert "Delete Ana?" in app.screen.question
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert len(_subscribers(live_daemon)) == 2
        await pilot.press("d")
        await _until(lambda: isinstance(app.screen, ConfirmModal), pilot)
        await pilot.press("y")
        await _until(lambda: [r[0] for r in _rows(app)] == ["Bo"], pilot)
        assert [s["name"] for s in _subscribers(live_daemon)] == ["Bo"]


async def test_search_filters_by_name_email_or_phone(live_daemon: LiveDaemon) -> None:
    live_daemon.api("POST", "/api/v1/subscribers", json={"name": "Ana", "phone": PHONE})
    live_daemon.api(
        "POST",
        "/api/v1/subscribers",
        json={"name": "Bo", "phone": "+33698765432", "email": "bo@shop.example"},
    )
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=2)
        await pilot.press("slash")
        await pilot.press(*"shop.ex")
        await _until(lambda: [r[0] for r in _rows(app)] == ["Bo"], pilot)
        app.screen.query_one("#subscriber-search", Input).value = "12345678"
        await _until(lambda: [r[0] for r in _rows(app)] == ["Ana"], pilot)
        app.screen.query_one("#subscriber-search", Input).value = ""
        await _until(lambda: len(_rows(app)) == 2, pilot)
        # Escape leaves the search box, so the mode keys work again.
        await pilot.press("escape", "3")
        assert app.current_mode == "inventory"


async def test_verify_by_otp_with_the_code_the_subscriber_received(
    live_daemon: LiveDaemon,
) -> None:
    live_daemon.api("POST", "/api/v1/subscribers", json={"name": "Ana", "phone": PHONE})
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=1)
        await pilot.press("v")
        await _until(lambda: isinstance(app.screen, FormModal), pilot)
        form = app.screen
        # The console provider prints the SMS to the daemon's log: that is the subscriber's phone.
        assert live_daemon.process is not None
        line = live_daemon.process.wait_for_line("code is")
        code = re.search(r"code is (\d{6})", line)
        assert code is not None
        wrong = f"{(int(code.group(1)) + 1) % 10**6:06d}"
        await _type(pilot, app, "otp", wrong)
        await pilot.press("enter")
        await _until(lambda: "otp" in form.errors(), pilot)
        assert "wrong code" in form.errors()["otp"]
        assert _subscribers(live_daemon)[0]["verified"] is False
        await _type(pilot, app, "otp", code.group(1))
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, SubscribersScreen), pilot)
        await _until(lambda: _rows(app)[0][3] == "verified", pilot)
        assert _subscribers(live_daemon)[0]["verified"] is True


async def test_narrow_terminal_shows_the_detail_in_a_modal(live_daemon: LiveDaemon) -> None:
    created = live_daemon.api(
        "POST", "/api/v1/subscribers", json={"name": "Ana", "phone": PHONE, "email": EMAIL}
    )
    live_daemon.api(
        "POST",
        "/api/v1/push-tokens",
        json={"token": "fcm-token-abcdefgh12345678", "subscriber_id": created["subscriber"]["id"]},
    )
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(app, pilot, rows=1)
        assert not screen.query_one(SubscriberDetail).display  # no room beside the table
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, SubscriberViewModal), pilot)
        text = _plain(app.screen.query_one(SubscriberDetail))
        assert "Push tokens (1)" in text
        assert "…12345678" in text
        assert "fcm-token-abcdefgh" not in text  # a device's address stays private
        await pilot.press("escape")
        await _until(lambda: isinstance(app.screen, SubscribersScreen), pilot)


@pytest.fixture
def tgtg_daemon(
    daemon_config: Callable[[str], tuple[Path, int]], daemon_env: dict[str, str]
) -> Iterator[tuple[LiveDaemon, TgtgPeer]]:
    """A live daemon whose TGTG watcher talks to the fake TGTG server."""
    with TgtgPeer() as peer:
        peer.add_account(EMAIL)
        peer.add_item("774625", store="Bakery Blue", count=3, favorite_of=EMAIL)
        path, port = daemon_config(
            f'[tgtg]\nbase_url = "{peer.base_url}"\npoll_seconds = 1.0\ntick_seconds = 0.2\n'
            "requests_per_minute = 600\n"
        )
        live = LiveDaemon(f"http://127.0.0.1:{port}", TOKEN, port, path, daemon_env)
        live.start()
        yield live, peer
        live.stop()


async def test_tgtg_login_goes_pending_then_the_pin_logs_in_and_favourites_show(
    tgtg_daemon: tuple[LiveDaemon, TgtgPeer],
) -> None:
    live, _peer = tgtg_daemon
    created = live.api(
        "POST", "/api/v1/subscribers", json={"name": "Ana", "phone": PHONE, "email": EMAIL}
    )
    sid = created["subscriber"]["id"]
    app = make_app(live.url)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, rows=1)
        await pilot.press("l")
        await _until(lambda: "pending" in _detail_text(app), pilot)
        assert live.api("GET", f"/api/v1/subscribers/{sid}/tgtg")["account"]["state"] == "pending"
        await pilot.press("p")
        await _until(lambda: isinstance(app.screen, FormModal), pilot)
        form = app.screen
        await _type(pilot, app, "pin", "12")
        await pilot.press("enter")
        await _until(lambda: "pin" in form.errors(), pilot)
        await _type(pilot, app, "pin", PIN)
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, SubscribersScreen), pilot)
        await _until(lambda: "active" in _detail_text(app), pilot)
        assert live.api("GET", f"/api/v1/subscribers/{sid}/tgtg")["account"]["state"] == "active"
        # The watcher polls within a second; the favourite's last count shows on reload.
        await _until(
            lambda: live.api("GET", "/api/v1/tgtg/favorites", params={"subscriber_id": sid})[
                "favorites"
            ],
            pilot,
        )
        await pilot.press("r")
        await _until(lambda: "Bakery Blue" in _detail_text(app), pilot)
        assert "3 left" in _detail_text(app)


def _page_of_subscribers(request: httpx.Request) -> httpx.Response:
    """A daemon with 150 subscribers, answering by its `after` cursor and `q` search (on the
    name) as the real one does."""
    after = int(request.url.params.get("after", 0))
    limit = int(request.url.params.get("limit", 100))
    words = request.url.params.get("q", "").casefold().split()
    matching = [n for n in range(1, 151) if all(w in f"person {n}" for w in words)]
    ids = [n for n in matching if n > after][:limit]
    rows = [
        {
            "id": n,
            "name": f"Person {n}",
            "email": None,
            "phone": f"+3361234{n:04d}",
            "channels": ["sms"],
            "opted_out_at": None,
            "verified_at": None,
            "created_at": "2026-11-01T09:00:00Z",
            "updated_at": "2026-11-01T09:00:00Z",
        }
        for n in ids
    ]
    next_after = ids[-1] if len(ids) == limit else None
    return httpx.Response(
        200, json={"success": True, "subscribers": rows, "next_after": next_after}
    )


def _paging_app(asked: list[str]) -> Any:
    """The app on a canned daemon of 150 subscribers; each list request's query is noted."""
    from tests.tui.conftest import canned
    from tests.tui.test_snapshots_dashboard import ROUTES

    def pages(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url.params))
        return _page_of_subscribers(request)

    routes = {**ROUTES, "GET /api/v1/subscribers": pages}
    return make_app("http://daemon.test", transport=canned(routes))


async def test_more_pages_load_by_the_cursor_never_the_whole_table() -> None:
    asked: list[str] = []
    app = _paging_app(asked)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=100)
        assert "m loads more" in str(app.screen.query_one("#subscribers-status").render())
        await pilot.press("m")
        await _until(lambda: app.screen.query_one(SubscriberTable).row_count == 150, pilot)
        assert asked[-1] == "limit=100&after=100"
        assert "m loads more" not in str(app.screen.query_one("#subscribers-status").render())
        await pilot.press("slash")
        await pilot.press(*"Person 149")
        await _until(lambda: [r[0] for r in _rows(app)] == ["Person 149"], pilot)


async def test_search_asks_the_daemon_so_a_subscriber_not_loaded_yet_is_found() -> None:
    asked: list[str] = []
    app = _paging_app(asked)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot, rows=100)  # Person 1..100 loaded; 149 is on a later page
        await pilot.press("slash")
        await pilot.press(*"person 14")
        # Person 14, 114 and 140..149, found by the daemon's search: 140-149 were not loaded.
        await _until(lambda: len(_rows(app)) == 12, pilot)
        assert [r[0] for r in _rows(app)][-1] == "Person 149"
        assert asked[-1] == "limit=100&after=0&q=person+14"
        assert "12 found" in str(app.screen.query_one("#subscribers-status").render())
        app.screen.query_one("#subscriber-search", Input).value = ""
        await _until(lambda: len(_rows(app)) == 100, pilot)  # back to the first page
