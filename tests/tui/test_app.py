"""The app's frame: modes by key and palette, the daemon going away and coming back."""

from __future__ import annotations

from tests.helpers import free_port
from tests.tui.conftest import LiveDaemon, make_app
from tests.tui.conftest import until as _until
from tui.modals.confirm import ConfirmModal
from tui.widgets.connection_bar import ConnectionBar


async def test_number_keys_and_palette_switch_modes(live_daemon: LiveDaemon) -> None:
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(lambda: app.connected, pilot)
        for key, mode in (("2", "subscribers"), ("3", "inventory"), ("4", "orders")):
            await pilot.press(key)
            assert app.current_mode == mode
        await pilot.press("5")
        assert app.current_mode == "messages"
        await pilot.press("ctrl+p")
        await pilot.press(*"go to dashboard")
        await pilot.press("enter")
        await _until(lambda: app.current_mode == "dashboard", pilot)


async def test_theme_toggles_between_dark_and_light(live_daemon: LiveDaemon) -> None:
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        before = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != before
        await pilot.press("ctrl+t")
        assert app.theme == before


async def test_a_missing_daemon_is_explained_and_the_app_offers_to_start_it(
    live_daemon: LiveDaemon,
) -> None:
    starts: list[str] = []

    def start() -> str:
        starts.append("start")
        live_daemon.start()
        return "started"

    app = make_app(live_daemon.url, start_daemon=start)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(lambda: app.connected, pilot)
        bar = app.screen.query_one(ConnectionBar)
        assert not bar.display
        live_daemon.stop()
        await _until(lambda: app.connected is False, pilot)
        await _until(lambda: isinstance(app.screen, ConfirmModal), pilot)
        # The shopkeeper reads why, behind the question.
        assert "cannot reach the daemon at" in app.problem
        assert "retrying" in app.problem
        await pilot.press("y")
        await _until(lambda: app.connected, pilot, seconds=25)
        assert starts == ["start"]
        assert app.problem == ""
        assert not app.screen.query_one(ConnectionBar).display


async def test_declining_to_start_keeps_retrying_and_finds_the_daemon_later(
    live_daemon: LiveDaemon,
) -> None:
    live_daemon.stop()
    app = make_app(live_daemon.url, start_daemon=lambda: "never")
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(lambda: isinstance(app.screen, ConfirmModal), pilot)
        await pilot.press("escape")
        bar = app.screen.query_one(ConnectionBar)
        await _until(lambda: bar.display, pilot)
        assert "nothing answers there" in str(bar.render())
        live_daemon.start()  # someone started it by hand
        await _until(lambda: app.connected, pilot, seconds=25)
        await _until(lambda: not bar.display, pilot)


async def test_a_wrong_token_is_named_as_the_problem(live_daemon: LiveDaemon) -> None:
    app = make_app(live_daemon.url, token="not-the-token")
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(lambda: app.connected is False, pilot)
        assert "refused the API token" in app.problem


async def test_a_remote_daemon_that_is_down_is_not_offered_a_start() -> None:
    app = make_app(f"http://127.0.0.1:{free_port()}", start_daemon=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(lambda: app.connected is False, pilot)
        await pilot.pause(0.5)
        assert not isinstance(app.screen, ConfirmModal)
