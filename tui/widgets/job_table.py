"""The scheduler's jobs: when each runs next and how its last run ended."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tui.format import when
from tui.records import Job

OUTCOME_STYLE = {"ok": "green", "error": "bold red", "running": "dark_orange", "skipped": "dim"}


class JobTable(DataTable[Any]):
    """One row per scheduled job (the stats answer's): next run, last run, outcome, detail."""

    DEFAULT_CSS = """
    JobTable { height: auto; max-height: 12; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.show_cursor = False
        self.add_columns("job", "next run", "last run", "outcome", "detail")

    def show_jobs(self, jobs: Sequence[Job], now: datetime) -> None:
        """`now` carries the shop's time zone: times are shown in the shop's wall time."""
        self.clear()
        if not jobs:
            self.add_row("the scheduler has not started", "", "", "", "")
            return
        for job in jobs:
            last = job.last_run
            outcome = last.outcome if last else "never run"
            self.add_row(
                job.id,
                when(job.next_run_at, now) if job.next_run_at else "paused",
                when(last.started_at, now) if last else "—",
                Text(outcome, style=OUTCOME_STYLE.get(outcome, "dim")),
                (last.detail if last else None) or "",
            )
