"""Each channel's health as /api/health shows it: its chain, its providers' states, and for
SMS the queue. One rule for the state: ok when every provider is ok, down when all are down
(or there is none), degraded in between."""

from __future__ import annotations

from collections.abc import Mapping

from daemon.services.outbox.router import Router
from providers.base import ProviderHealth
from storage.database import Database
from storage.messages import count_by_status


def _state(providers: Mapping[str, ProviderHealth]) -> str:
    states = {h.state for h in providers.values()}
    if not states or states == {"down"}:
        return "down"
    return "ok" if states == {"ok"} else "degraded"


async def _channel(router: Router, channel: str) -> dict[str, object]:
    providers = await router.health(channel)
    return {
        "state": _state(providers),
        "chain": [slot.name for slot in router.chain(channel)],
        "providers": {n: {"state": h.state, "detail": h.detail} for n, h in providers.items()},
    }


async def sms_health(
    router: Router, db: Database, left_out: Mapping[str, str]
) -> dict[str, object]:
    """The SMS chain, the providers the config named but left out (and why), and the queue."""
    queue = await db.execute(count_by_status)
    return await _channel(router, "sms") | {
        "left_out": dict(left_out),
        "queued": queue.get("queued", 0),
        "sending": queue.get("sending", 0),
        "failed": queue.get("failed", 0),
    }


async def push_health(router: Router) -> dict[str, object]:
    answer = await _channel(router, "push")
    return answer | {"detail": "" if answer["providers"] else "no push provider"}


async def email_health(router: Router) -> dict[str, object]:
    return await _channel(router, "email")
