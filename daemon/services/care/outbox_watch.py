"""The outbox as the owner needs to know it: how long the queues take to send, and how much
of the SMS budget is used. Health reads it at any time; the `outbox-watch` job recounts the
budget each minute and tells the owner when the budget passes its warning level or is spent,
and when the SMS queue would take longer than `[outbox] eta_alert_minutes` to send."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.runtime.clock import Clock, utc_iso
from daemon.runtime.durations import human_duration
from daemon.services.outbox.backpressure import QueueState
from daemon.services.outbox.budget import BudgetState, Spend
from daemon.services.outbox.service import CHANNELS, Outbox
from daemon.services.owner import OwnerAlerts
from storage.database import Database

KEY_BUDGET_WARN = "sms-budget-warn"
KEY_BUDGET_SPENT = "sms-budget-spent"
KEY_QUEUE_SLOW = "sms-queue-slow"


@dataclass(frozen=True, slots=True)
class OutboxView:
    """Every channel's queue and the budget, at one moment."""

    queues: tuple[QueueState, ...]
    budget: BudgetState | None

    def queue(self, channel: str) -> QueueState:
        return next(queue for queue in self.queues if queue.channel == channel)


class OutboxWatch:
    """Reads the queues and the budget; raises and clears the owner's alerts about them."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        outbox: Outbox,
        owner: OwnerAlerts,
        *,
        eta_alert_minutes: int = 60,
    ) -> None:
        self._db = db
        self._clock = clock
        self._outbox = outbox
        self._owner = owner
        self.eta_alert_seconds = eta_alert_minutes * 60

    async def view(self, *, recount: bool = False) -> OutboxView:
        """The queues now; the budget as last counted, or counted again with `recount`."""
        now = self._clock.now()
        backpressure, budget = self._outbox.backpressure, self._outbox.budget

        def read(conn):  # type: ignore[no-untyped-def]
            queues = tuple(backpressure.state(conn, c) for c in CHANNELS) if backpressure else ()
            if budget is None:
                return queues, None
            return queues, budget.recount(conn, now) if recount else budget.state(now)

        queues, state = await self._db.execute(read)
        return OutboxView(queues, state)

    def slow(self, queue: QueueState) -> bool:
        """The SMS queue would take longer than the alert's threshold to send."""
        return bool(self.eta_alert_seconds) and (
            (queue.eta_seconds is None and queue.waiting > 0)
            or (queue.eta_seconds or 0) > self.eta_alert_seconds
        )

    async def run(self) -> str:
        """The `outbox-watch` job: recount the budget, alert or clear; a line for job_runs."""
        view = await self.view(recount=True)
        said = []
        if view.budget is not None:
            said.append(await self._budget(view.budget))
        if view.queues:
            said.append(await self._queue(view.queue("sms")))
        return "; ".join(said) or "no limits set"

    async def health(self) -> dict[str, object]:
        """/api/health's "outbox" component: degraded while a queue is full or slow, or the
        budget is past its warning level."""
        view = await self.view()
        troubles = [q.channel for q in view.queues if q.full]
        if view.queues and self.slow(view.queue("sms")):
            troubles.append("sms slow")
        budget = view.budget
        if budget is not None and budget.state in ("warn", "spent"):
            troubles.append(f"budget {budget.state}")
        return {
            "state": "degraded" if troubles else "ok",
            "detail": _detail(view),
            "queues": {q.channel: _queue_json(q) for q in view.queues},
            "budget": _budget_json(budget),
        }

    async def _budget(self, budget: BudgetState) -> str:
        used = "; ".join(budget.describe(spend) for spend in budget.capped)
        if budget.state == "spent":
            spent = next(spend for spend in budget.capped if spend.spent)
            await self._owner.alert(
                KEY_BUDGET_SPENT,
                f"shopbell: the SMS budget is spent: {budget.describe(spent)}. Manual, API and "
                "TGTG alert SMS are refused until "
                f"{'midnight' if spent.period == 'day' else 'the 1st'}; one-time codes and these "
                "alerts still go out. Raise [sms] budget_per_day or budget_per_month to go on.",
                subject="shopbell: the SMS budget is spent",
            )
        else:
            await self._owner.clear(KEY_BUDGET_SPENT)
        if budget.state in ("warn", "spent"):
            await self._owner.alert(
                KEY_BUDGET_WARN,
                f"shopbell: {used} of the SMS budget are used (the warning is at "
                f"{budget.rules.warn_percent} %). At 100 % only one-time codes and the owner's "
                "alerts go out.",
                subject="shopbell: the SMS budget is nearly used",
            )
        else:
            await self._owner.clear(KEY_BUDGET_WARN)
        return f"budget {budget.state}: {used}"

    async def _queue(self, sms: QueueState) -> str:
        eta = _eta(sms)
        if self.slow(sms):
            await self._owner.alert(
                KEY_QUEUE_SLOW,
                f"shopbell: {sms.waiting:,} SMS wait to be sent and they take {eta} "
                f"(the alert is at {human_duration(self.eta_alert_seconds)}). Check the "
                "provider in `shopbell doctor`, or cancel what need not go.",
                subject="shopbell: the SMS queue is slow",
            )
        elif not sms.waiting or (sms.eta_seconds or 0) <= self.eta_alert_seconds / 2:
            # Cleared well under the threshold, so a queue hovering at it does not flap.
            await self._owner.clear(KEY_QUEUE_SLOW, "shopbell: the SMS queue is moving again.")
        return f"sms {sms.waiting:,} waiting, {eta}"


def _eta(queue: QueueState) -> str:
    if queue.eta_seconds is None:
        return "no provider is sending"
    rate = f" at {queue.rate_per_second:,.1f}/s" if queue.rate_per_second else ""
    return f"about {human_duration(queue.eta_seconds)}{rate}"


def _detail(view: OutboxView) -> str:
    parts = [
        f"{q.channel} {q.waiting:,} waiting" + (f", {_eta(q)}" if q.waiting else "")
        for q in view.queues
    ]
    if view.budget is not None:
        parts.append("budget " + "; ".join(view.budget.describe(s) for s in view.budget.capped))
    return "; ".join(parts)


def _queue_json(queue: QueueState) -> dict[str, object]:
    return {
        "waiting": queue.waiting,
        "rate_per_second": round(queue.rate_per_second, 3) if queue.rate_per_second else None,
        "eta_seconds": round(queue.eta_seconds, 1) if queue.eta_seconds is not None else None,
        "max_queued": queue.max_queued,
        "full": queue.full,
    }


def _spend_json(budget: BudgetState, spend: Spend) -> dict[str, object]:
    return {
        "segments": spend.segments,
        "limit": spend.limit,
        "percent": round(spend.percent, 1) if spend.percent is not None else None,
        "money": budget.money(spend.segments) or None,
        "resets_at": utc_iso(spend.ends),
    }


def _budget_json(budget: BudgetState | None) -> dict[str, object]:
    if budget is None:
        return {"state": "off"}
    return {
        "state": budget.state,
        "warn_percent": budget.rules.warn_percent,
        **{spend.period: _spend_json(budget, spend) for spend in budget.capped},
    }
