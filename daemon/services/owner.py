"""Owner alerts: the one place the daemon tells the owner that something needs them."""

from __future__ import annotations

import logging
from datetime import timedelta

from daemon.runtime.clock import Clock, utc_iso
from daemon.services.outbox.service import EnqueueError, EnqueueRequest, Outbox
from storage import owner_alerts as rows
from storage.database import Database
from storage.messages import PRIORITY
from storage.models import OwnerAlert

log = logging.getLogger(__name__)

# An alert is one SMS segment or a few: a long provider error is cut, not refused, and cut
# with "..." (an ellipsis character would make the whole SMS UCS-2, halving its segments).
SMS_MAX_CHARS = 300
# Owner alerts go out before manual sends and reports, like the subscribers' alerts.
ALERT_PRIORITY = PRIORITY["alert"]


class OwnerAlerts:
    """Tells the owner by SMS and/or e-mail through the outbox, once per key until cleared.

    The state lives in `owner_alerts`, so a restart neither repeats an alert nor forgets one:
    each message has an idempotency key made from the alert's row id, and `resume()` queues
    what a crash left between writing the row and queueing its messages.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        outbox: Outbox,
        *,
        phone: str = "",
        email: str = "",
        max_per_hour: int = 6,
        shop_name: str = "shopbell",
    ) -> None:
        self._db = db
        self._clock = clock
        self._outbox = outbox
        self.phone = phone
        self.email = email
        self.max_per_hour = max_per_hour
        self._shop = shop_name
        # Keys whose suppression was logged: a condition checked every few minutes would
        # otherwise log the same "limited" line each time.
        self._quiet_keys: set[str] = set()

    @property
    def reachable(self) -> bool:
        """True when there is a phone or an e-mail address to tell."""
        return bool(self.phone or self.email)

    async def alert(self, key: str, text: str, *, subject: str | None = None) -> bool:
        """Tell the owner (SMS and/or e-mail through the outbox) that `key` needs them; at most
        once per key until clear(key), and never more than [owner] max_per_hour alerts in all;
        True if queued."""
        if not self.reachable:
            if key not in self._quiet_keys:
                self._quiet_keys.add(key)
                log.warning("owner alert %s: nobody to tell ([owner] phone/email): %s", key, text)
            return False
        now = self._clock.now()
        raised = await self._db.write(
            lambda conn: rows.raise_alert(
                conn,
                key,
                text,
                subject,
                now=utc_iso(now),
                hour_ago=utc_iso(now - timedelta(hours=1)),
                max_per_hour=self.max_per_hour,
            )
        )
        if raised.outcome == "open":
            return False
        if raised.outcome == "limited":
            if key not in self._quiet_keys:
                self._quiet_keys.add(key)
                log.warning(
                    "owner alert %s held back: %d alerts went out in the last hour "
                    "([owner] max_per_hour); it is tried again on the next check: %s",
                    key,
                    self.max_per_hour,
                    text,
                )
            return False
        self._quiet_keys.discard(key)
        assert raised.alert is not None
        queued = await self._queue(raised.alert)
        log.warning("owner alert %s (%d messages queued): %s", key, queued, text)
        return queued > 0

    async def clear(self, key: str, text: str | None = None) -> None:
        """The condition behind `key` is over; optionally tell the owner it recovered; the next
        alert(key) goes out again."""
        self._quiet_keys.discard(key)
        now = utc_iso(self._clock.now())
        closed = await self._db.write(lambda conn: rows.clear_alert(conn, key, now))
        if closed is None:
            return
        log.info("owner alert %s cleared%s", key, f": {text}" if text else "")
        # A recovery note only for an alert the owner was actually sent.
        if text and closed.queued_at is not None:
            await self._send(closed.id, "clear", text, f"{self._shop}: resolved: {key}")

    async def resume(self) -> int:
        """Queue the messages of alerts a crash left unqueued; returns how many alerts."""
        pending = await self._db.execute(rows.unqueued)
        for alert in pending:
            await self._queue(alert)
        return len(pending)

    async def open_alerts(self) -> list[OwnerAlert]:
        """The alerts not cleared yet (for health and `shopbell doctor`)."""
        return await self._db.execute(rows.open_alerts)

    async def health(self) -> dict[str, object]:
        """/api/health's "owner" component: degraded while an alert is open, with each one's
        key, subject and times. Not its text: health is public, and a text may name a
        customer's e-mail address."""
        alerts = await self.open_alerts()
        if alerts:
            detail = f"{len(alerts)} open: {', '.join(a.key for a in alerts[:5])}"
            detail += ", ..." if len(alerts) > 5 else ""
        elif self.reachable:
            detail = "nothing needs the owner"
        else:
            detail = "no [owner] phone or email: what needs the owner is only logged"
        return {
            "state": "degraded" if alerts else "ok",
            "detail": detail,
            "reachable": self.reachable,
            "open_alerts": [
                {
                    "key": alert.key,
                    "subject": alert.subject or f"{self._shop}: needs you: {alert.key}",
                    "raised_at": utc_iso(alert.raised_at),
                    # When its messages went into the outbox (None: a crash came in between;
                    # the next start queues them).
                    "queued_at": utc_iso(alert.queued_at) if alert.queued_at else None,
                }
                for alert in alerts
            ],
        }

    async def _queue(self, alert: OwnerAlert) -> int:
        subject = alert.subject or f"{self._shop}: needs you: {alert.key}"
        queued = await self._send(alert.id, "alert", alert.text, subject)
        now = utc_iso(self._clock.now())
        await self._db.write(lambda conn: rows.mark_queued(conn, alert.id, now))
        return queued

    async def _send(self, alert_id: int, what: str, text: str, subject: str) -> int:
        """Queue `text` to every configured address; the number queued."""
        sends: list[EnqueueRequest] = []
        if self.phone:
            body = text if len(text) <= SMS_MAX_CHARS else text[: SMS_MAX_CHARS - 3] + "..."
            sends.append(
                EnqueueRequest(
                    channel="sms",
                    recipient=self.phone,
                    body=body,
                    kind="system",
                    priority=ALERT_PRIORITY,
                    idempotency_key=f"owner:{alert_id}:{what}:sms",
                )
            )
        if self.email:
            sends.append(
                EnqueueRequest(
                    channel="email",
                    recipient=self.email,
                    body=f"{text}\n\n-- shopbell on {self._shop}\n",
                    subject=subject,
                    kind="system",
                    priority=ALERT_PRIORITY,
                    idempotency_key=f"owner:{alert_id}:{what}:email",
                )
            )
        queued = 0
        for request in sends:
            try:
                await self._outbox.enqueue(request)
            except EnqueueError as exc:
                log.warning("owner alert: cannot queue the %s: %s", request.channel, exc)
            else:
                queued += 1
        return queued
