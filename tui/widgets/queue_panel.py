"""The outbox at a glance: how many messages wait in each state, and today's sent figures."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from tui.format import span
from tui.records import Component, Today

# What still waits to go; everything else is told for today only.
QUEUE_ORDER = ("queued", "sending")
SEPARATOR = Text("  ·  ", style="dim")


class QueuePanel(Static):
    """Two short paragraphs that wrap to the width: the queue by state, then today's figures."""

    DEFAULT_CSS = """
    QueuePanel { height: auto; padding: 0 1; }
    """

    def show_stats(
        self, queue: Mapping[str, int], today: Today, outbox: Component | None = None
    ) -> None:
        """`queue` counts the messages waiting by their state (a state with none is left out);
        `outbox` (health's component) adds how long the SMS queue takes and the budget."""
        day = [
            ("sent", today.sent, ""),
            ("delivered", today.delivered, ""),
            ("failed", today.failed, "bold red"),
            ("undelivered", today.by_status.get("undelivered", 0), "dark_orange"),
            ("cancelled", today.by_status.get("cancelled", 0), ""),
        ]
        text = Text("Queue ", style="bold")
        for index, status in enumerate(QUEUE_ORDER):
            count = queue.get(status, 0)
            if index:
                text.append_text(SEPARATOR)
            text.append(f"{count:,}", style="bold" if count else "dim")
            text.append(f" {status}")
        text.append("\nToday ", style="bold")
        for index, (label, count, alert) in enumerate(day):
            if index:
                text.append_text(SEPARATOR)
            text.append(f"{count:,}", style=(alert or "bold") if count else "dim")
            text.append(f" {label}")
        if outbox is not None:
            text.append_text(_outbox_line(outbox))
        self.update(text)


def _outbox_line(outbox: Component) -> Text:
    """ "SMS about 3m 20s to send (10.0/s)  ·  Budget 412 of 500 today (82 %)"; empty when
    there is nothing to tell."""
    text = Text()
    sms = outbox.queues.get("sms")
    if sms is not None and sms.waiting:
        text.append("\nSMS ", style="bold")
        if sms.eta_seconds is None:
            text.append("no provider is sending", style="bold red")
        else:
            style = "bold dark_orange" if outbox.state != "ok" else "bold"
            text.append(f"about {span(sms.eta_seconds)}", style=style)
            text.append(" to send")
            if sms.rate_per_second:
                text.append(f" ({sms.rate_per_second:,.1f}/s)", style="dim")
        if sms.full:
            text.append_text(SEPARATOR)
            text.append("queue full: the API is refused", style="bold red")
    budget = outbox.budget
    if budget is not None and budget.state != "off":
        text.append("\nBudget ", style="bold")
        style = {"spent": "bold red", "warn": "bold dark_orange"}.get(budget.state, "bold")
        for index, (spend, when) in enumerate(((budget.day, "today"), (budget.month, "month"))):
            if spend is None:
                continue
            if index and budget.day is not None:
                text.append_text(SEPARATOR)
            text.append(f"{spend.segments:,} of {spend.limit:,}", style=style)
            money = f", {spend.money}" if spend.money else ""
            text.append(f" {when} ({spend.percent or 0:.0f} %{money})")
        if budget.state == "spent":
            text.append_text(SEPARATOR)
            text.append("spent: only codes and owner alerts go out", style="bold red")
    return text
