"""The dashboard's looks at 80x24 and 120x40, from canned answers at a fixed moment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import FIXED_NOW, canned, make_app

HEALTH: dict[str, Any] = {
    "status": "degraded",
    "version": "0.9.0",
    "uptime_seconds": 9000.0,
    "time": "2026-11-20T10:30:00.000000+00:00",
    "database": {"ok": True},
    "components": {
        "sms": {
            "state": "degraded",
            "detail": "",
            "chain": ["twilio", "modem", "console"],
            "providers": {
                "twilio": {"state": "ok", "detail": ""},
                "modem": {"state": "ok", "detail": "ready: SIM800, Airtel, signal -71 dBm"},
                "console": {"state": "ok", "detail": ""},
            },
        },
        "push": {
            "state": "down",
            "detail": "",
            "chain": ["fcm"],
            "providers": {"fcm": {"state": "down", "detail": "circuit open: bad credentials"}},
        },
        "email": {
            "state": "ok",
            "detail": "",
            "chain": ["smtp"],
            "providers": {"smtp": {"state": "ok", "detail": ""}},
        },
        "tgtg": {"state": "ok", "detail": "2 accounts"},
    },
}

COUNTS = [0, 0, 0, 0, 0, 0, 1, 3, 8, 12, 9, 4, 2, 6, 11, 15, 7, 3, 1, 0, 0, 0, 2, 5]

STATS: dict[str, Any] = {
    "success": True,
    "time": "2026-11-20T10:30:00.000000+00:00",
    "shop": {"name": "Corner Shop", "currency": "INR", "timezone": "UTC"},
    "queue": {"queued": 4, "sending": 1},
    "today": {
        "date": "2026-11-20",
        "created": 61,
        "sent": 52,
        "delivered": 40,
        "failed": 2,
        "by_status": {
            "queued": 4,
            "sending": 1,
            "sent": 12,
            "delivered": 37,
            "undelivered": 3,
            "failed": 2,
            "cancelled": 2,
        },
    },
    "hourly": [
        {
            "start": f"2026-11-{19 + (11 + n) // 24:02d}T{(11 + n) % 24:02d}:00:00.000000+00:00",
            "count": count,
        }
        for n, count in enumerate(COUNTS)
    ],
    "jobs": [
        {
            "id": "otp-sweep",
            "next_run_at": "2026-11-20T10:31:00.000000+00:00",
            "last_run": {
                "started_at": "2026-11-20T10:30:00.000000+00:00",
                "finished_at": "2026-11-20T10:30:00.100000+00:00",
                "outcome": "ok",
                "detail": "0 expired",
            },
        },
        {
            "id": "report-daily",
            "next_run_at": "2026-11-21T07:00:00.000000+00:00",
            "last_run": {
                "started_at": "2026-11-20T07:00:00.000000+00:00",
                "finished_at": "2026-11-20T07:00:01.000000+00:00",
                "outcome": "error",
                "detail": "SMTPConnectError: mail server refused",
            },
        },
        {"id": "tgtg-poll", "next_run_at": "2026-11-20T10:30:30.000000+00:00", "last_run": None},
    ],
}

ACCOUNTS: dict[str, Any] = {
    "success": True,
    "accounts": [
        {
            "id": 1,
            "subscriber_id": 1,
            "email": "asha@example.com",
            "state": "active",
            "state_detail": None,
            "logged_in": True,
            "last_poll_at": "2026-11-20T10:29:15.000000+00:00",
            "last_success_at": "2026-11-20T10:29:15.000000+00:00",
            "backoff_until": None,
            "failures": 0,
        },
        {
            "id": 2,
            "subscriber_id": 2,
            "email": "ravi@example.com",
            "state": "blocked",
            "state_detail": "captcha; waiting 30 min",
            "logged_in": True,
            "last_poll_at": "2026-11-20T09:58:00.000000+00:00",
            "last_success_at": None,
            "backoff_until": "2026-11-20T10:45:00.000000+00:00",
            "failures": 3,
        },
    ],
}

ROUTES: dict[str, Any] = {
    "GET /api/health": HEALTH,
    "GET /api/v1/messages": {"success": True, "messages": []},
    "GET /api/v1/stats": STATS,
    "GET /api/v1/tgtg/accounts": ACCOUNTS,
}


def dashboard_app() -> Any:
    return make_app("http://daemon.test", transport=canned(ROUTES), clock=lambda: FIXED_NOW)


async def _loaded(pilot: Any) -> None:
    from tui.widgets.job_table import JobTable

    for _ in range(200):
        if pilot.app.connected and pilot.app.screen.query_one(JobTable).row_count == 3:
            break
        await pilot.pause(0.02)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(dashboard_app(), terminal_size=size, run_before=_loaded)
