"""The daily clean-up of old finished rows, a bounded batch per transaction."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from daemon.runtime.clock import JUMP_TOLERANCE_SECONDS, Clock, describe_step, utc_iso
from storage import retention
from storage.database import Database

log = logging.getLogger(__name__)

# Messages (each with a few events and parts) and other rows deleted per transaction: about
# 5,000 rows either way, a few tens of milliseconds of the database thread on a Pi.
MESSAGE_BATCH = 1000
ROW_BATCH = 5000


class Retention:
    """Deletes finished rows older than `days` (0: keeps everything).

    Across a wall-clock jump (docs/clock.md) it deletes nothing early: between two runs of one
    process, the cut-off moves on no faster than the monotonic clock, so a clock stepped
    forward (by NTP answering late, or wrongly) does not pull rows into the window; a clock
    stepped back moves the cut-off back with it, which only keeps rows longer.
    """

    def __init__(self, db: Database, clock: Clock, days: int) -> None:
        self._db = db
        self._clock = clock
        self.days = days
        # The previous run's cut-off, and the monotonic time of that run.
        self._last: tuple[datetime, float] | None = None

    def cutoff(self) -> tuple[datetime, str]:
        """Rows older than this go; with a note when a clock step held the cut-off back."""
        wall = self._clock.now() - timedelta(days=self.days)
        mono = self._clock.monotonic()
        note = ""
        if self._last is not None:
            last, then = self._last
            ceiling = last + timedelta(seconds=mono - then)
            step = (wall - ceiling).total_seconds()
            if step > JUMP_TOLERANCE_SECONDS:
                note = (
                    f"the clock moved {describe_step(step)} more than time passed since the "
                    f"last clean-up; rows are kept that much longer (until a restart)"
                )
                wall = ceiling
        self._last = (wall, mono)
        return wall, note

    async def run(self) -> str:
        # The planner's statistics follow the log as it grows and shrinks (a daemon runs for
        # months between restarts, and ANALYZE otherwise only happens at close).
        await self._db.write(lambda conn: conn.execute("PRAGMA optimize"))
        if self.days == 0:
            return "keeping everything ([retention] messages_days = 0)"
        cut, note = self.cutoff()
        if note:
            log.warning("retention: %s", note)
        before = utc_iso(cut)
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
        return f"deleted {went}" + (f" ({note})" if note else "")
