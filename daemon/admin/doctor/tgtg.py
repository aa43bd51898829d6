"""The doctor's TGTG check: the watched accounts' states, and what to do about each."""

from __future__ import annotations

from daemon.admin.doctor.check import Check
from storage import tgtg as tgtg_rows


def tgtg_check(accounts: list[tgtg_rows.TgtgAccount]) -> Check:
    if not accounts:
        return Check("tgtg", "OK", "no accounts (nobody watches Too Good To Go)")
    counts: dict[str, int] = {}
    for account in accounts:
        counts[account.state] = counts.get(account.state, 0) + 1
    found = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    broken = [a for a in accounts if a.state == "error"]
    blocked = [a for a in accounts if a.state == "blocked"]
    pending = [a for a in accounts if a.state == "pending"]
    details = tuple(
        f"account {a.id} ({a.email}): {a.state}" + (f": {a.state_detail}" if a.state_detail else "")
        for a in [*broken, *blocked, *pending][:10]
    )
    if broken:
        return Check(
            "tgtg",
            "FAIL",
            found,
            "log them in again: `shopbell tgtg login EMAIL` for each account in error",
            details,
        )
    if blocked:
        return Check(
            "tgtg",
            "WARN",
            found,
            "TGTG blocked polling (captcha); the watcher backs off and retries by itself; "
            "lower [tgtg] requests_per_minute if it keeps happening",
            details,
        )
    if pending:
        return Check(
            "tgtg",
            "WARN",
            found,
            "a login waits for its e-mail link or PIN: `shopbell tgtg login EMAIL`",
            details,
        )
    return Check("tgtg", "OK", found)
