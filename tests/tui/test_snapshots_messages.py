"""How the messages mode looks, from canned data at a fixed moment (80x24 and 120x40)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from tests.tui.conftest import FIXED_NOW, canned, make_app
from tui.app import ShopbellApp
from tui.modals.compose import ComposeModal
from tui.modals.message_detail import MessageDetailModal
from tui.widgets.message_table import MessageTable

STATUSES = ("sent", "delivered", "failed", "queued", "cancelled", "sent")
KINDS = ("manual", "alert", "otp", "report", "system")


def _message(i: int) -> dict[str, Any]:
    at = (FIXED_NOW - timedelta(minutes=7 * (30 - i))).isoformat().replace("+00:00", "Z")
    status = STATUSES[i % len(STATUSES)]
    kind = KINDS[i % len(KINDS)]
    push = i % 5 == 0
    return {
        "id": i,
        "channel": "push" if push else "sms",
        "recipient": f"device-token-{i:03d}" if push else f"+1500555{i:04d}",
        "subject": None,
        "body": "(hidden: one-time code)"
        if kind == "otp"
        else f"Bags ready at the corner shop #{i}",
        "kind": kind,
        "priority": 20,
        "status": status,
        "idempotency_key": None,
        "subscriber_id": None,
        "notification_id": None,
        "encoding": "gsm7",
        "segments": 1,
        "provider": None if status in ("queued", "cancelled", "failed") else "console",
        "provider_message_id": None,
        "attempts": 0 if status == "queued" else 1,
        "last_error": "no provider could send it: no sms provider is configured"
        if status == "failed"
        else None,
        "error_code": None,
        "created_at": at,
        "due_at": at,
        "sent_at": at if status in ("sent", "delivered") else None,
        "delivered_at": None,
        "updated_at": at,
    }


MESSAGES = [_message(i) for i in range(30, 0, -1)]
EVENTS = [
    {"at": MESSAGES[4]["created_at"], "state": "queued", "provider": None, "detail": None},
    {"at": MESSAGES[4]["created_at"], "state": "sending", "provider": "console", "detail": None},
    {
        "at": MESSAGES[4]["created_at"],
        "state": "failed",
        "provider": None,
        "detail": "no provider could send it: no sms provider is configured",
    },
]
ROUTES: dict[str, Any] = {
    "GET /api/health": {"status": "ok"},
    "GET /api/v1/messages": {"success": True, "messages": MESSAGES, "next_before": None},
    "GET /api/v1/messages/26": {"success": True, "message": MESSAGES[4], "events": EVENTS},
    "GET /api/v1/subscribers": {
        "success": True,
        "subscribers": [{"id": 1, "name": "Asha", "phone": "+15005550200", "opted_out": False}],
        "next_after": None,
    },
}


def _app() -> ShopbellApp:
    return make_app("http://daemon.test", transport=canned(ROUTES), clock=lambda: FIXED_NOW)


async def _loaded(pilot: Any) -> None:
    """Until the first page is on screen (the API answers in a worker)."""
    await pilot.press("5")
    for _ in range(200):
        tables = pilot.app.screen.query(MessageTable)
        if pilot.app.connected and tables and tables.first().row_count == len(MESSAGES):
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError("the first page never showed")
    # The dashboard (shown first) asked routes this data does not have; its toasts go.
    pilot.app.clear_notifications()
    await pilot.pause()


def _then(*keys: str, shows: type | None = None) -> Callable[[Any], Awaitable[None]]:
    async def run(pilot: Any) -> None:
        await _loaded(pilot)
        await pilot.press(*keys)
        for _ in range(200):
            if shows is None or isinstance(pilot.app.screen, shows):
                break
            await pilot.pause(0.02)
        await pilot.pause(0.1)

    return run


def test_the_log_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(_app(), run_before=_loaded, terminal_size=(80, 24))


def test_the_log_at_120x40(snap_compare: Any) -> None:
    assert snap_compare(_app(), run_before=_loaded, terminal_size=(120, 40))


def test_the_filters_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(_app(), run_before=_then("slash"), terminal_size=(80, 24))


def test_a_messages_history_at_80x24(snap_compare: Any) -> None:
    run = _then("down", "down", "down", "down", "h", shows=MessageDetailModal)
    assert snap_compare(_app(), run_before=run, terminal_size=(80, 24))


def test_compose_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(_app(), run_before=_then("n", shows=ComposeModal), terminal_size=(80, 24))


def test_compose_at_120x40(snap_compare: Any) -> None:
    run = _then("n", shows=ComposeModal)
    assert snap_compare(_app(), run_before=run, terminal_size=(120, 40))
