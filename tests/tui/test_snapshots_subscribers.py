"""The subscribers mode's looks at 80x24 and 120x40, from canned answers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import FIXED_NOW, canned, make_app
from tests.tui.test_snapshots_dashboard import ROUTES as DASHBOARD_ROUTES


def _subscriber(sid: int, name: str, phone: str, email: str | None, **extra: Any) -> dict:
    return {
        "id": sid,
        "name": name,
        "email": email,
        "phone": phone,
        "channels": ["sms"],
        "opted_out": False,
        "opted_out_at": None,
        "verified": False,
        "verified_at": None,
        "watch_items": [],
        "price_drop_alerts": False,
        "created_at": "2026-11-01T09:00:00Z",
        "updated_at": "2026-11-01T09:00:00Z",
        **extra,
    }


ANA = _subscriber(
    1,
    "Ana Lopez",
    "+33612345678",
    "ana@example.com",
    channels=["sms", "push"],
    verified=True,
    verified_at="2026-11-18T16:20:00Z",
    watch_items=["774625"],
    price_drop_alerts=True,
)
SUBSCRIBERS = [
    ANA,
    _subscriber(
        2,
        "Bo Martin",
        "+33698765432",
        "bo@shop.example",
        opted_out=True,
        opted_out_at="2026-11-19T08:00:00Z",
    ),
    _subscriber(3, "Chloé Durand", "+447700900123", None),
    _subscriber(4, "Dev Patel", "+919876543210", "dev.patel@example.in"),
]
ROUTES: dict[str, Any] = {
    **DASHBOARD_ROUTES,
    "GET /api/v1/subscribers": {"success": True, "subscribers": SUBSCRIBERS, "next_after": 4},
    "GET /api/v1/subscribers/1": {
        "success": True,
        "subscriber": ANA,
        "tgtg": {
            "id": 1,
            "subscriber_id": 1,
            "email": "ana@example.com",
            "state": "active",
            "state_detail": None,
            "logged_in": True,
            "last_poll_at": "2026-11-20T10:29:00Z",
            "last_success_at": "2026-11-20T10:29:00Z",
            "backoff_until": None,
            "failures": 0,
        },
    },
    "GET /api/v1/tgtg/favorites": {
        "success": True,
        "favorites": [
            {
                "subscriber_id": 1,
                "item_id": "774625",
                "store_name": "Bakery Blue",
                "display_name": "Magic bag",
                "items_available": 3,
                "pickup_start": None,
                "pickup_end": None,
                "price_minor": 399,
                "currency": "EUR",
                "last_alerted_at": None,
                "updated_at": "2026-11-20T10:29:00Z",
            },
            {
                "subscriber_id": 1,
                "item_id": "881122",
                "store_name": "Green Grocer",
                "display_name": "Vegetables",
                "items_available": 0,
                "pickup_start": None,
                "pickup_end": None,
                "price_minor": 450,
                "currency": "EUR",
                "last_alerted_at": None,
                "updated_at": "2026-11-20T10:29:00Z",
            },
        ],
    },
    "GET /api/v1/push-tokens": {
        "success": True,
        "tokens": [
            {
                "id": 7,
                "token": "fcm-abcdefghijklmnop-9f3k2a7q",
                "subscriber_id": 1,
                "platform": "android",
                "created_at": "2026-11-02T10:00:00Z",
                "last_seen_at": "2026-11-20T08:30:00Z",
                "valid": True,
                "invalid_at": None,
                "invalid_reason": None,
            }
        ],
        "next_before": None,
    },
}


def subscribers_app() -> Any:
    return make_app("http://daemon.test", transport=canned(ROUTES), clock=lambda: FIXED_NOW)


async def _loaded(pilot: Any) -> None:
    from tui.widgets.subscriber_detail import SubscriberDetail
    from tui.widgets.subscriber_table import SubscriberTable

    await pilot.press("2")
    screen = pilot.app.screen
    # The detail pane is there on a wide terminal only.
    wide = pilot.app.size.width >= 100
    for _ in range(200):
        table = screen.query_one(SubscriberTable)
        detail = screen.query_one(SubscriberDetail)
        if pilot.app.connected and table.row_count == 4 and (detail.file or not wide):
            break
        await pilot.pause(0.02)
    table.focus()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_subscribers_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(subscribers_app(), terminal_size=size, run_before=_loaded)


async def _detail_modal(pilot: Any) -> None:
    from tui.modals.subscriber_view import SubscriberViewModal

    await _loaded(pilot)
    await pilot.press("enter")
    for _ in range(200):
        if isinstance(pilot.app.screen, SubscriberViewModal):
            break
        await pilot.pause(0.02)
    await pilot.pause()


def test_subscriber_detail_modal_snapshot_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(subscribers_app(), terminal_size=(80, 24), run_before=_detail_modal)


async def _add_form(pilot: Any) -> None:
    from tui.modals.form import FormModal

    await _loaded(pilot)
    await pilot.press("a")
    for _ in range(200):
        if isinstance(pilot.app.screen, FormModal):
            break
        await pilot.pause(0.02)
    await pilot.pause()


def test_subscriber_form_snapshot_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(subscribers_app(), terminal_size=(80, 24), run_before=_add_form)
