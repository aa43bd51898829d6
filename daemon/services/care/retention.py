"""The daily clean-up of old finished rows, a bounded batch per transaction."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from daemon.runtime.clock import Clock, utc_iso
from storage import retention
from storage.database import Database

log = logging.getLogger(__name__)

# Messages (each with a few events and parts) and other rows deleted per transaction: about
# 5,000 rows either way, a few tens of milliseconds of the database thread on a Pi.
MESSAGE_BATCH = 1000
ROW_BATCH = 5000


class Retention:
    """Deletes finished rows older than `days` (0: keeps everything)."""

    def __init__(self, db: Database, clock: Clock, days: int) -> None:
        self._db = db
        self._clock = clock
        self.days = days

    async def run(self) -> str:
        # The planner's statistics follow the log as it grows and shrinks (a daemon runs for
        # months between restarts, and ANALYZE otherwise only happens at close).
        await self._db.write(lambda conn: conn.execute("PRAGMA optimize"))
        if self.days == 0:
            return "keeping everything ([retention] messages_days = 0)"
        before = utc_iso(self._clock.now() - timedelta(days=self.days))
        totals: Counter[str] = Counter()
        for step in retention.STEPS:
            limit = MESSAGE_BATCH if step is retention.delete_old_messages else ROW_BATCH
            while True:
                batch = await self._db.write(
                    lambda conn, step=step, limit=limit: step(conn, before, limit)
                )
                totals.update(batch.counts)
                if batch.primary < limit:
                    break
        went = ", ".join(f"{n} {table}" for table, n in totals.items() if n) or "nothing"
        log.info("retention: deleted %s older than %d days", went, self.days)
        return f"deleted {went}"
