"""The doctor's replica check: is Litestream there, is the replica off the database's disk,
what does it hold, and (with the daemon running) how far behind is it."""

from __future__ import annotations

import asyncio
from typing import Any

from daemon.admin.doctor.check import Check, Context
from daemon.runtime.replica import ReplicaError, find_binary, list_replica, same_disk

FIX_UNREACHABLE = (
    "check [replica] url, that the disk is mounted or the host reachable, and the credentials "
    "in LITESTREAM_ACCESS_KEY_ID / LITESTREAM_SECRET_ACCESS_KEY (docs/replica.md)"
)


async def check_replica(ctx: Context) -> list[Check]:
    settings = ctx.settings
    replica = settings.replica
    if not replica.url:
        return [
            Check(
                "replica",
                "OK",
                "off ([replica] url is empty): the database and its nightly backups share "
                "this disk; set a url to keep a live copy elsewhere (docs/replica.md)",
            )
        ]
    try:
        binary = await asyncio.to_thread(find_binary, replica)
    except ReplicaError as exc:
        return [Check("replica", "FAIL", str(exc), "then restart the daemon")]
    checks: list[Check] = []
    if await asyncio.to_thread(same_disk, replica, settings.database_path):
        checks.append(
            Check(
                "replica disk",
                "WARN",
                f"{replica.url} is on the same disk as the database",
                "point [replica] url at another disk (a USB stick, a NAS), an SFTP host or a "
                "bucket: a dead SD card takes both otherwise",
            )
        )
    state = await ctx.daemon
    component = _component(state.health)
    if component is not None:
        checks.insert(0, _from_health(component, replica.lag_warn_seconds))
        return checks
    try:
        contents = await list_replica(replica, settings.database_path)
    except ReplicaError as exc:
        found = str(exc)
        status = "FAIL"
        if state.running:
            found += " (and the running daemon's health says nothing of it: restart it)"
        checks.insert(0, Check("replica", status, found, FIX_UNREACHABLE))
        return checks
    if not contents.files:
        what = "the daemon uploads at its next start" if not state.running else "restart it"
        checks.insert(
            0,
            Check(
                "replica",
                "WARN",
                f"{replica.url} holds nothing yet (litestream {binary})",
                f"{what}; a replica is only useful once it has a copy",
            ),
        )
        return checks
    newest = f"{contents.newest:%Y-%m-%d %H:%M:%S} UTC" if contents.newest else "an unknown time"
    checks.insert(
        0,
        Check(
            "replica",
            "OK",
            f"{replica.url} holds the database up to its change of {newest} "
            f"(transaction {contents.max_txid}); the daemon is not running, so no lag to show",
        ),
    )
    return checks


def _component(health: dict[str, Any] | None) -> dict[str, Any] | None:
    components = (health or {}).get("components") or {}
    found = components.get("replica") if isinstance(components, dict) else None
    return found if isinstance(found, dict) else None


def _from_health(component: dict[str, Any], warn: float) -> Check:
    detail = str(component.get("detail") or component.get("state") or "")
    lag = component.get("lag_seconds")
    restarts = int(component.get("restarts") or 0)
    extra = f"; litestream restarted {restarts} times" if restarts else ""
    state = component.get("state")
    if state == "ok":
        return Check("replica", "OK", f"{detail}{extra}")
    if state == "degraded":
        shown = f"{float(lag):.0f} s" if isinstance(lag, int | float) else "long"
        return Check(
            "replica",
            "WARN",
            f"{detail}{extra}",
            f"the replica lags {shown} (over [replica] lag_warn_seconds = {warn:g}); "
            + FIX_UNREACHABLE,
        )
    return Check(
        "replica",
        "FAIL",
        f"{detail}{extra}",
        "the database is not being replicated; the daemon's log says why (journalctl -u "
        "shopbell); fix it and restart the daemon",
    )
