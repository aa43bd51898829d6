"""The messages mode against a real daemon: the log, paging, filters, history, retry, cancel,
compose, broadcasts and follow mode."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.widgets import Input, Label, Select

from tests.tui.conftest import TOKEN, LiveDaemon, make_app
from tests.tui.conftest import until as _until
from tui.app import ShopbellApp
from tui.modals.compose import ComposeModal
from tui.modals.confirm import ConfirmModal
from tui.modals.message_detail import MessageDetailModal
from tui.screens.messages import PAGE_SIZE, MessagesScreen
from tui.widgets.message_table import MessageTable

# Twilio is the only SMS provider and nothing listens at its address, with a long backoff:
# every message waits in the queue (it can be cancelled).
STUCK = """
[sms]
chain = ["twilio"]
[twilio]
account_sid = "AC00000000000000000000000000000000"
auth_token = "not-a-real-secret"
from_number = "+15005550006"
base_url = "http://127.0.0.1:9"
timeout_seconds = 1.0
[outbox]
backoff_base_seconds = 3600
"""
# Twilio is the only SMS provider and it is not configured: every SMS fails at once.
FAILING = '[sms]\nchain = ["twilio"]\n'


@pytest.fixture
def other_daemon(
    daemon_config: Callable[[str], tuple[Path, int]], daemon_env: dict[str, str]
) -> Iterator[Callable[[str], LiveDaemon]]:
    started: list[LiveDaemon] = []

    def start(extra: str) -> LiveDaemon:
        path, port = daemon_config(extra)
        live = LiveDaemon(f"http://127.0.0.1:{port}", TOKEN, port, path, daemon_env)
        live.start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


def _send(live: LiveDaemon, to: str = "+15005550006", body: str = "hello", **extra: Any) -> int:
    answer = live.api("POST", "/api/v1/messages", json={"to": to, "body": body, **extra})
    return int(answer["message"]["id"])


async def _seed(live: LiveDaemon, count: int) -> None:
    """`count` messages through the API, many at once (as a busy shop's programs would)."""
    headers = {"Authorization": f"Bearer {live.token}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with gate:
                body = {"to": f"+1500555{i:04d}", "body": f"seeded {i}"}
                response = await http.post("/api/v1/messages", json=body)
                assert response.status_code == 201, response.text

        await asyncio.gather(*(one(i) for i in range(count)))


def _status(live: LiveDaemon, message_id: int) -> str:
    return str(live.api("GET", f"/api/v1/messages/{message_id}")["message"]["status"])


def _table(app: ShopbellApp) -> MessageTable:
    return app.screen.query_one(MessageTable)


def _ids(app: ShopbellApp) -> list[int]:
    return [int(str(row.key.value)) for row in _table(app).ordered_rows]


def _notes(app: ShopbellApp) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def _open(app: ShopbellApp, pilot: Any) -> MessagesScreen:
    await _until(lambda: app.connected, pilot)
    await pilot.press("5")
    await _until(lambda: isinstance(app.screen, MessagesScreen), pilot)
    screen = app.screen
    assert isinstance(screen, MessagesScreen)
    return screen


async def test_the_log_is_newest_first_and_older_pages_come_while_scrolling(
    live_daemon: LiveDaemon,
) -> None:
    await _seed(live_daemon, 250)
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await _until(lambda: _table(app).row_count == PAGE_SIZE, pilot)
        ids = _ids(app)
        assert ids[0] == 250 and ids == sorted(ids, reverse=True)
        assert "more below" in str(app.screen.query_one("#messages-status").render())
        # Scrolling down to the last row shown brings the older pages, one at a time.
        for _ in range(6):
            await pilot.press("ctrl+end")
            await pilot.pause(0.3)
            if _table(app).row_count == 250:
                break
        await _until(lambda: _table(app).row_count == 250, pilot)
        assert _ids(app) == list(range(250, 0, -1))
        assert "more below" not in str(app.screen.query_one("#messages-status").render())


async def test_filters_show_only_the_messages_asked_for(
    other_daemon: Callable[[str], LiveDaemon],
) -> None:
    live = other_daemon(STUCK)
    alerts = [_send(live, f"+1500555000{i}", kind="alert") for i in range(3)]
    manual = [_send(live, "+15005550100") for _ in range(2)]
    live.api("POST", f"/api/v1/messages/{manual[0]}/cancel")
    app = make_app(live.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await _until(lambda: _table(app).row_count == 5, pilot)
        await pilot.press("slash")
        screen = app.screen
        screen.query_one("#filter-status", Select).value = "cancelled"
        await _until(lambda: _ids(app) == [manual[0]], pilot)
        screen.query_one("#filter-status", Select).value = Select.NULL
        screen.query_one("#filter-kind", Select).value = "alert"
        await _until(lambda: _ids(app) == sorted(alerts, reverse=True), pilot)
        # Typed filters apply on Enter.
        screen.query_one("#filter-recipient", Input).focus()
        await pilot.press(*"+15005550001", "enter")
        await _until(lambda: _ids(app) == [alerts[1]], pilot)
        # A time that cannot be read is explained, and the rows stay as they were.
        screen.query_one("#filter-since", Input).focus()
        await pilot.press(*"yesterday", "enter")
        await _until(lambda: "is not a time" in _notes(app), pilot)
        assert _ids(app) == [alerts[1]]
        await pilot.press("escape", "x")
        await _until(lambda: _table(app).row_count == 5, pilot)


async def test_a_messages_history_shows_its_events(live_daemon: LiveDaemon) -> None:
    message_id = _send(live_daemon, body="your order is ready")
    for _ in range(100):
        if _status(live_daemon, message_id) == "sent":
            break
        await asyncio.sleep(0.05)
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await _until(lambda: _table(app).row_count == 1, pilot)
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, MessageDetailModal), pilot)
        modal = app.screen
        events = modal.query_one("#detail-events")
        states = [str(row[1]) for row in (events.get_row_at(i) for i in range(events.row_count))]  # type: ignore[attr-defined]
        assert states == ["queued", "sending", "sent"]
        assert "your order is ready" in str(modal.query_one("#detail-facts Static").render())
        await pilot.press("escape")
        await _until(lambda: isinstance(app.screen, MessagesScreen), pilot)


async def test_cancel_a_queued_message_and_a_second_cancel_is_explained(
    other_daemon: Callable[[str], LiveDaemon],
) -> None:
    live = other_daemon(STUCK)
    message_id = _send(live)
    app = make_app(live.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await _until(lambda: _table(app).row_count == 1, pilot)
        await pilot.press("c")
        await _until(lambda: _table(app).messages[message_id].status == "cancelled", pilot)
        assert _status(live, message_id) == "cancelled"
        await pilot.press("c")
        await _until(lambda: "only a queued message can be cancelled" in _notes(app), pilot)


async def test_retry_a_failed_message_from_its_history(
    other_daemon: Callable[[str], LiveDaemon],
) -> None:
    live = other_daemon(FAILING)
    message_id = _send(live)
    for _ in range(100):
        if _status(live, message_id) == "failed":
            break
        await asyncio.sleep(0.05)
    app = make_app(live.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await _until(lambda: _table(app).row_count == 1, pilot)
        assert _table(app).messages[message_id].status == "failed"
        await pilot.press("h")
        await _until(lambda: isinstance(app.screen, MessageDetailModal), pilot)
        await pilot.press("r")
        await _until(lambda: "queued again" in _notes(app), pilot)
    events = live.api("GET", f"/api/v1/messages/{message_id}")["events"]
    assert any("retried by hand after failed" in (e["detail"] or "") for e in events)


async def test_compose_an_sms_a_bad_number_is_shown_beside_the_field(
    live_daemon: LiveDaemon,
) -> None:
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await pilot.press("n")
        await _until(lambda: isinstance(app.screen, ComposeModal), pilot)
        modal = app.screen
        await pilot.press(*"12")
        modal.query_one("#body", Input).focus()
        await pilot.press(*"Your parcel is here", "enter")
        error = modal.query_one("#error-to", Label)
        await _until(lambda: "no country code" in str(error.render()), pilot)
        assert modal.query_one("#to", Input).value == "12"  # what was typed is kept
        assert live_daemon.api("GET", "/api/v1/messages")["messages"] == []
        modal.query_one("#to", Input).value = "+15005550006"
        modal.query_one("#body", Input).focus()
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, MessagesScreen), pilot)
        await _until(lambda: _table(app).row_count == 1, pilot)
    sent = live_daemon.api("GET", "/api/v1/messages")["messages"]
    assert [(m["recipient"], m["body"]) for m in sent] == [("+15005550006", "Your parcel is here")]


async def test_push_to_tokens_and_to_a_topic_from_compose(live_daemon: LiveDaemon) -> None:
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await pilot.press("n")
        await _until(lambda: isinstance(app.screen, ComposeModal), pilot)
        modal = app.screen
        modal.query_one("#target", Select).value = "tokens"
        await pilot.pause()
        modal.query_one("#tokens", Input).value = "device-token-one, device-token-two"
        modal.query_one("#title", Input).value = "Sale"
        modal.query_one("#body", Input).focus()
        await pilot.press(*"Half price today", "enter")
        await _until(lambda: isinstance(app.screen, MessagesScreen), pilot)
        await _until(lambda: "2 message(s)" in _notes(app), pilot)
        # A topic reaches every device on it: asked first, and "no" sends nothing.
        await pilot.press("n")
        await _until(lambda: isinstance(app.screen, ComposeModal), pilot)
        modal = app.screen
        modal.query_one("#target", Select).value = "topic"
        await pilot.pause()
        modal.query_one("#topic", Input).value = "deals"
        modal.query_one("#body", Input).focus()
        await pilot.press(*"Two for one", "enter")
        await _until(lambda: isinstance(app.screen, ConfirmModal), pilot)
        assert "topic 'deals'" in str(app.screen.query_one("#question", Label).render())
        await pilot.press("escape")
        await _until(lambda: app.screen is modal, pilot)
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, ConfirmModal), pilot)
        await pilot.press("y")
        await _until(lambda: "to topic deals" in _notes(app), pilot)
    pushes = live_daemon.api("GET", "/api/v1/messages", params={"channel": "push"})["messages"]
    assert sorted(m["recipient"] for m in pushes) == [
        "device-token-one",
        "device-token-two",
        "topic:deals",
    ]


async def test_broadcast_to_all_subscribers_counts_confirms_and_never_doubles(
    live_daemon: LiveDaemon,
) -> None:
    for i, opted_out in enumerate((False, False, True)):
        live_daemon.api(
            "POST",
            "/api/v1/subscribers",
            json={"name": f"S{i}", "phone": f"+1500555020{i}", "opted_out": opted_out},
        )
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await pilot.press("n")
        await _until(lambda: isinstance(app.screen, ComposeModal), pilot)
        app.screen.query_one("#target", Select).value = "all"
        await pilot.pause()
        app.screen.query_one("#body", Input).focus()
        await pilot.press(*"Fresh bread at 5", "enter")
        await _until(lambda: isinstance(app.screen, ConfirmModal), pilot)
        question = str(app.screen.query_one("#question", Label).render())
        assert "all 3 subscribers" in question and "1 opted out" in question
        await pilot.press("y")
        await _until(lambda: "2 queued" in _notes(app), pilot)
        assert "1 opted out (skipped)" in _notes(app)
        first = live_daemon.api("GET", "/api/v1/messages")["messages"]
        assert sorted(m["recipient"] for m in first) == ["+15005550200", "+15005550201"]
        # Sending the same broadcast again (say it stopped half-way) queues nobody twice.
        app.clear_notifications()
        await pilot.press("b")
        await _until(lambda: isinstance(app.screen, ConfirmModal), pilot)
        await pilot.press("y")
        await _until(lambda: "2 already sent before" in _notes(app), pilot)
        assert "0 queued" in _notes(app)
    assert len(live_daemon.api("GET", "/api/v1/messages")["messages"]) == 2


async def test_follow_mode_shows_a_message_sent_after_it_was_switched_on(
    live_daemon: LiveDaemon,
) -> None:
    first = _send(live_daemon, body="before")
    app = make_app(live_daemon.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(app, pilot)
        await _until(lambda: _ids(app) == [first], pilot)
        await pilot.press("f")
        await _until(
            lambda: "following" in str(app.screen.query_one("#messages-status").render()), pilot
        )
        later = await asyncio.to_thread(_send, live_daemon, "+15005550007", "after")
        await _until(lambda: _ids(app) == [later, first], pilot)
        # The status shown follows the daemon's too (queued → sent by the console).
        await _until(lambda: _table(app).messages[later].status == "sent", pilot)


def test_typed_times_read_as_the_shopkeeper_means_them() -> None:
    from datetime import UTC, datetime

    from tui.screens.messages import parse_moment

    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    assert parse_moment("2h", now) == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    assert parse_moment("30m", now) == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert parse_moment("3d", now) == datetime(2026, 11, 17, 10, 30, tzinfo=UTC)
    assert parse_moment("09:15", now) == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    assert parse_moment("2026-11-19", now) == datetime(2026, 11, 19, tzinfo=UTC)
    assert parse_moment("2026-11-19 14:00", now) == datetime(2026, 11, 19, 14, tzinfo=UTC)
    with pytest.raises(ValueError, match="'last week' is not a time; write 2026-11-20"):
        parse_moment("last week", now)
