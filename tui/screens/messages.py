"""The messages mode: the log newest first, filters, history, retry/cancel, compose, follow."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable, Static

from tui.client import ApiError
from tui.modals.compose import Broadcast, ComposeModal, ComposeOutcome, Sent, SubscriberChoice
from tui.modals.confirm import ConfirmModal
from tui.modals.message_detail import DetailAction, MessageDetailModal
from tui.records import LoggedMessage, MessageQuery
from tui.screens.base import ModeScreen
from tui.widgets.message_filters import TIME_HELP, MessageFilter, MessageFilters
from tui.widgets.message_table import MessageTable

# One page of the log: enough to fill a tall terminal twice, small enough to come back at once.
PAGE_SIZE = 100
FOLLOW_SECONDS = 1.0
# Follow mode fetches at most this many pages back to close a gap; more new messages than
# that between two polls (a burst) and it starts again from the newest.
FOLLOW_GAP_PAGES = 5
SUBSCRIBER_PAGE = 500
# Requests in flight at once during a broadcast: quick, without crowding a small daemon.
BROADCAST_CONCURRENCY = 8
RELATIVE = re.compile(r"^(\d+)\s*(m|min|h|d)$")
UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days"}


def parse_moment(text: str, now: datetime) -> datetime:
    """A time the shopkeeper typed: '2h' / '30m' / '3d' ago, a date, a date and time, or a
    time today. Without a zone it is the clock's zone. ValueError says what is accepted."""
    text = text.strip()
    if match := RELATIVE.match(text):
        return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}", text):
            hour, minute = (int(p) for p in text.split(":"))
            return now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time; write {TIME_HELP}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


@dataclass(frozen=True, slots=True)
class BroadcastTally:
    """How a broadcast went, one count per outcome."""

    queued: int = 0
    already: int = 0
    opted_out: int = 0
    refused: int = 0

    def add(self, outcome: str) -> BroadcastTally:
        counts = {name: getattr(self, name) for name in self.__slots__}
        counts[outcome] += 1
        return BroadcastTally(**counts)

    @property
    def done(self) -> int:
        return self.queued + self.already + self.opted_out + self.refused

    def describe(self) -> str:
        return (
            f"{self.queued} queued, {self.already} already sent before, "
            f"{self.opted_out} opted out (skipped), {self.refused} refused"
        )


class MessagesScreen(ModeScreen):
    """The outbox's log. Pages of PAGE_SIZE come in as the cursor nears the end."""

    TITLE = "Messages"
    BINDINGS = [
        Binding("n", "new_message", "New"),
        Binding("slash", "toggle_filters", "Filter"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("h", "show_message", "History"),
        Binding("r", "retry_message", "Retry"),
        Binding("c", "cancel_message", "Cancel"),
        Binding("x", "clear_filters", "Clear filters", show=False),
        Binding("b", "repeat_broadcast", "Broadcast again", show=False),
        Binding("escape", "hide_filters", "Hide filters", show=False),
    ]
    DEFAULT_CSS = """
    #messages-status {
        height: 1;
        padding: 0 1;
        background: $boost;
        color: $text-muted;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.filter = MessageFilter()
        self.next_before: int | None = None
        self.following = False
        self.note = ""
        self.last_broadcast: Broadcast | None = None
        self._loading_older = False
        self._follow_timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        # The filters are mounted the first time they are asked for: their six inputs cost
        # more to build than the first page of the log, and most visits never filter.
        yield Static("", id="messages-status")
        yield MessageTable(id="message-table")

    @property
    def table(self) -> MessageTable:
        return self.query_one(MessageTable)

    def on_mount(self) -> None:
        super().on_mount()
        self._follow_timer = self.set_interval(FOLLOW_SECONDS, self._follow_tick, pause=True)
        self.table.focus()

    def refresh_data(self) -> None:
        self.load_first_page()

    # -- loading ------------------------------------------------------------------------------

    def _params(self) -> MessageQuery:
        """The filter as the API's query; a time that cannot be read raises ValueError."""
        f = self.filter
        now = self.shop.clock()
        moments: dict[str, datetime | None] = {}
        for name in ("since", "until"):
            text = getattr(f, name)
            try:
                moments[name] = parse_moment(text, now) if text else None
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return MessageQuery(
            status=f.status,
            channel=f.channel,
            kind=f.kind,
            recipient=f.recipient,
            since=moments["since"],
            until=moments["until"],
        )

    @work(exclusive=True, group="messages-page", exit_on_error=False)
    async def load_first_page(self) -> None:
        """The newest page under the current filter; paging starts again from it."""
        try:
            params = self._params()
        except ValueError as exc:
            self.notify(str(exc), title="Filter", severity="error")
            return
        self.workers.cancel_group(self, "messages-older")
        self._loading_older = False
        table = self.table
        if not table.row_count:
            table.loading = True
        try:
            page = await self.api.messages(limit=PAGE_SIZE, query=params)
        finally:
            table.loading = False
        table.now = self.shop.clock()
        table.clear_messages()
        table.append_older(page.messages)
        self.next_before = page.next_before
        self._show_status()

    @work(exclusive=True, group="messages-older", exit_on_error=False)
    async def load_older(self) -> None:
        """The next older page, below the rows shown."""
        before = self.next_before
        if before is None:
            return
        self._loading_older = True
        try:
            page = await self.api.messages(limit=PAGE_SIZE, before=before, query=self._params())
        finally:
            self._loading_older = False
        if self.next_before != before:
            return  # the filter changed meanwhile: this page belongs to the old one
        self.table.append_older(page.messages)
        self.next_before = page.next_before
        self._show_status()

    @on(MessageTable.NearEnd)
    def _near_end(self) -> None:
        # Asked again here: the table says "near the end" while a page is still going in.
        if self.next_before is not None and not self._loading_older and self.table.near_end():
            self._loading_older = True
            self.load_older()

    def _show_status(self) -> None:
        table = self.table
        parts = [f"{table.row_count:,} shown" + (", more below" if self.next_before else "")]
        parts.append(f"filter: {self.filter.describe()}")
        if self.following:
            parts.append("following")
        if self.note:
            parts.append(self.note)
        self.query_one("#messages-status", Static).update(" · ".join(parts))

    # -- filters ------------------------------------------------------------------------------

    @on(MessageFilters.Changed)
    def _filter_changed(self, event: MessageFilters.Changed) -> None:
        self.filter = event.value
        self.next_before = None
        self.load_first_page()

    async def action_toggle_filters(self) -> None:
        found = self.query(MessageFilters)
        if not found:
            filters = MessageFilters(id="message-filters")
            await self.mount(filters, before="#messages-status")
        else:
            filters = found.first()
        filters.display = not filters.display
        if filters.display:
            filters.query_one("#filter-status").focus()
        else:
            self.table.focus()

    def action_hide_filters(self) -> None:
        for filters in self.query(MessageFilters):
            if filters.display:
                filters.display = False
                self.table.focus()

    def action_clear_filters(self) -> None:
        for filters in self.query(MessageFilters):
            filters.clear_all()

    # -- follow -------------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        self.following = not self.following
        assert self._follow_timer is not None
        if self.following:
            self._follow_timer.resume()
            self.poll_newer()
        else:
            self._follow_timer.pause()
        self._show_status()

    def _follow_tick(self) -> None:
        # A mode in the background does not poll; it reloads when it comes back.
        if self.following and self.app.screen is self:
            self.poll_newer()

    @work(exclusive=True, group="messages-follow", exit_on_error=False)
    async def poll_newer(self) -> None:
        """Put messages newer than the newest shown on top; refresh the statuses in view."""
        try:
            params = self._params()
        except ValueError:
            return  # the filter's time cannot be read: said once, when it was applied
        table = self.table
        newest = table.newest_id
        page = await self.api.messages(limit=PAGE_SIZE, query=params)
        rows: list[LoggedMessage] = list(page.messages)
        pages = 1
        # The API pages backward only: walk back until the newest shown row is reached.
        while (
            newest is not None
            and rows
            and rows[-1].id > newest
            and page.next_before
            and pages < FOLLOW_GAP_PAGES
        ):
            page = await self.api.messages(limit=PAGE_SIZE, before=page.next_before, query=params)
            rows.extend(page.messages)
            pages += 1
        if newest is not None and rows and rows[-1].id > newest and page.next_before:
            self.load_first_page()  # a burst bigger than the walk: start from the newest
            return
        was_empty = not table.row_count
        table.now = self.shop.clock()
        table.merge_newer(rows)
        if was_empty:
            self.next_before = page.next_before
        fetched_down_to = rows[-1].id if rows else None
        visible = table.visible_ids()
        if visible and fetched_down_to is not None and max(visible) < fetched_down_to:
            shown = await self.api.messages(
                limit=min(len(visible) + 1, 500), before=max(visible) + 1, query=params
            )
            for message in shown.messages:
                table.update_message(message)
        self._show_status()

    # -- one message ----------------------------------------------------------------------------

    def _highlighted(self) -> LoggedMessage | None:
        message = self.table.highlighted
        if message is None:
            self.notify("no message is highlighted", severity="warning")
        return message

    @on(DataTable.RowSelected, "#message-table")
    def _row_chosen(self) -> None:
        self.action_show_message()

    def action_show_message(self) -> None:
        if (message := self._highlighted()) is not None:
            self.open_history(message.id)

    @work(exclusive=True, group="messages-history", exit_on_error=False)
    async def open_history(self, message_id: int) -> None:
        history = await self.api.message(message_id)
        message = history.message
        self.table.update_message(message)
        events = history.events

        def chosen(action: DetailAction | None) -> None:
            if action is not None:
                self.change_message(message.id, action)

        self.app.push_screen(MessageDetailModal(message, events, self.shop.clock()), chosen)

    def action_retry_message(self) -> None:
        if (message := self._highlighted()) is not None:
            self.change_message(message.id, "retry")

    def action_cancel_message(self) -> None:
        if (message := self._highlighted()) is not None:
            self.change_message(message.id, "cancel")

    @work(exclusive=True, group="messages-action", exit_on_error=False)
    async def change_message(self, message_id: int, action: DetailAction) -> None:
        """Retry or cancel; the daemon's refusal (409: not in a state for it) is explained by
        the screen's one worker-error handler."""
        if action == "retry":
            message = await self.api.retry_message(message_id)
        else:
            message = await self.api.cancel_message(message_id)
        self.table.update_message(message)
        done = "queued again" if action == "retry" else "cancelled"
        self.notify(f"message {message_id} {done}", title="Messages")

    # -- compose ------------------------------------------------------------------------------

    def action_new_message(self) -> None:
        self.open_compose()

    @work(exclusive=True, group="messages-compose", exit_on_error=False)
    async def open_compose(self) -> None:
        """The first page of subscribers with a phone to pick from, then the form."""
        page = await self.api.recipients(limit=SUBSCRIBER_PAGE)
        choices = [
            SubscriberChoice(s.id, s.name or "", s.phone)
            for s in page.subscribers
            if s.phone and not s.opted_out
        ]
        self.app.push_screen(ComposeModal(choices), self._composed)

    def _composed(self, outcome: ComposeOutcome | None) -> None:
        if isinstance(outcome, Sent):
            self.notify(outcome.summary, title="Sent")
            self.poll_newer()
        elif isinstance(outcome, Broadcast):
            self.last_broadcast = outcome
            self.refresh_bindings()
            self.count_broadcast(outcome)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "repeat_broadcast":
            return self.last_broadcast is not None
        return True

    def action_repeat_broadcast(self) -> None:
        if self.last_broadcast is not None:
            self.count_broadcast(self.last_broadcast)

    @work(exclusive=True, group="messages-broadcast", exit_on_error=False)
    async def count_broadcast(self, plan: Broadcast) -> None:
        """Every subscriber with a phone, page by page; then ask before sending."""
        recipients: list[SubscriberChoice] = []
        opted_out = 0
        after = 0
        while True:
            page = await self.api.recipients(limit=SUBSCRIBER_PAGE, after=after)
            for s in page.subscribers:
                if s.phone:
                    recipients.append(SubscriberChoice(s.id, s.name or "", s.phone))
                    opted_out += s.opted_out
            if page.next_after is None:
                break
            after = page.next_after
        if not recipients:
            self.notify("no subscriber has a phone number", title="Broadcast", severity="warning")
            return
        preview = plan.body if len(plan.body) <= 50 else plan.body[:49] + "…"
        # Three short lines: the confirmation box is 60 columns wide at 80x24.
        question = (
            f"Send to all {len(recipients)} subscribers with a phone?\n"
            f"{opted_out} opted out: the daemon skips them.\n“{preview}”"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.send_broadcast(plan, recipients)

        self.app.push_screen(ConfirmModal(question, yes="Send to all"), answered)

    @work(exclusive=True, group="messages-broadcast", exit_on_error=False)
    async def send_broadcast(self, plan: Broadcast, recipients: Sequence[SubscriberChoice]) -> None:
        """One request per subscriber, each with a key made of the broadcast id: sending the
        same broadcast again (after a failure half-way) queues nobody twice."""
        tally = BroadcastTally()
        gate = asyncio.Semaphore(BROADCAST_CONCURRENCY)

        async def one(who: SubscriberChoice) -> str:
            key = f"broadcast-{plan.broadcast_id}-{who.id}"
            async with gate:
                try:
                    sent = await self.api.send_sms(who.phone, plan.body, idempotency_key=key)
                except ApiError as exc:
                    return "opted_out" if "opted out" in exc.message else "refused"
            return "queued" if sent.created else "already"

        tasks = [asyncio.create_task(one(who)) for who in recipients]
        try:
            for finished in asyncio.as_completed(tasks):
                tally = tally.add(await finished)
                self.note = f"broadcast: {tally.done} of {len(recipients)}"
                self._show_status()
        finally:
            for task in tasks:
                task.cancel()
        self.note = f"broadcast {plan.broadcast_id}: {tally.describe()}"
        self._show_status()
        self.notify(tally.describe(), title=f"Broadcast to {len(recipients)} subscribers")
        self.poll_newer()
