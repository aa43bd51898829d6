"""A one-line bar that says plainly when the daemon cannot be reached; hidden otherwise."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static


class ConnectionBar(Static):
    """Shows `problem`; empty problem means all is well and the bar takes no room."""

    problem: reactive[str] = reactive("")

    def watch_problem(self, problem: str) -> None:
        self.update(problem)
        self.display = bool(problem)
